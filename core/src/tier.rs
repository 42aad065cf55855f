//! Coin tiers and contact priorities, with their pinned byte and text encodings.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The cost/strength tier of a coin. Byte encoding is pinned: GOLD = 1, SILVER = 2, BRONZE = 3.
///
/// ```
/// use aqm_core::Tier;
/// assert_eq!(Tier::try_from(2u8), Ok(Tier::Silver));
/// assert_eq!("BRONZE".parse::<Tier>(), Ok(Tier::Bronze));
/// assert_eq!(Tier::Gold.fallback().collect::<Vec<_>>(), [Tier::Gold, Tier::Silver, Tier::Bronze]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum Tier {
    /// X-Wing (ML-KEM-768 + X25519), signed with ML-DSA-65.
    Gold = 1,
    /// ML-KEM-768, signed with Ed25519.
    Silver = 2,
    /// X25519 DHKEM, signed with Ed25519.
    Bronze = 3,
}

impl Tier {
    /// Every tier, dearest first.
    pub const ALL: [Tier; 3] = [Tier::Gold, Tier::Silver, Tier::Bronze];

    /// The pinned wire byte.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }

    /// Zero-based index (GOLD = 0), for per-tier arrays.
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// This tier's entry of a per-tier array (GOLD first): [`Self::index`] without an
    /// index that could be out of bounds.
    pub(crate) const fn of<T>(self, per: &[T; 3]) -> &T {
        match self {
            Tier::Gold => &per[0],
            Tier::Silver => &per[1],
            Tier::Bronze => &per[2],
        }
    }

    /// Mutable [`Self::of`].
    pub(crate) fn of_mut<T>(self, per: &mut [T; 3]) -> &mut T {
        match self {
            Tier::Gold => &mut per[0],
            Tier::Silver => &mut per[1],
            Tier::Bronze => &mut per[2],
        }
    }

    /// The upper-case name used in JSON, Redis keys and the seed documents.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Gold => "GOLD",
            Tier::Silver => "SILVER",
            Tier::Bronze => "BRONZE",
        }
    }

    /// The tiers to try, in order, when `self` is wanted: `self` and then every cheaper tier.
    /// Never a dearer one.
    pub fn fallback(self) -> impl Iterator<Item = Tier> + Clone {
        Tier::ALL.into_iter().filter(move |t| *t >= self)
    }

    /// The cheaper of two tiers (a ceiling caps a wish this way).
    pub fn cheaper(self, other: Tier) -> Tier {
        if self >= other { self } else { other }
    }
}

impl TryFrom<u8> for Tier {
    type Error = Error;
    fn try_from(b: u8) -> Result<Self, Error> {
        match b {
            1 => Ok(Tier::Gold),
            2 => Ok(Tier::Silver),
            3 => Ok(Tier::Bronze),
            other => Err(Error::UnknownTier(other)),
        }
    }
}

impl From<Tier> for u8 {
    fn from(t: Tier) -> u8 {
        t.to_byte()
    }
}

impl FromStr for Tier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Tier::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s)).ok_or(Error::UnknownTierName)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How close a contact is; decides the inventory caps and the tier ceiling.
/// Byte encoding: BESTIE = 1, MATE = 2, STRANGER = 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum Priority {
    /// Closest contacts: all tiers cached.
    Bestie = 1,
    /// Regular contacts: SILVER and BRONZE cached.
    Mate = 2,
    /// Nothing cached; reached by on-demand fetch.
    Stranger = 3,
}

impl Priority {
    /// Every priority, closest first.
    pub const ALL: [Priority; 3] = [Priority::Bestie, Priority::Mate, Priority::Stranger];

    /// Zero-based index (BESTIE = 0), for per-priority arrays.
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// This priority's entry of a per-priority array (BESTIE first): [`Self::index`] without an
    /// index that could be out of bounds.
    pub(crate) const fn of<T>(self, per: &[T; 3]) -> &T {
        match self {
            Priority::Bestie => &per[0],
            Priority::Mate => &per[1],
            Priority::Stranger => &per[2],
        }
    }

    /// The pinned byte.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }

    /// The upper-case name used in JSON, Redis and the seed documents.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Bestie => "BESTIE",
            Priority::Mate => "MATE",
            Priority::Stranger => "STRANGER",
        }
    }
}

impl TryFrom<u8> for Priority {
    type Error = Error;
    fn try_from(b: u8) -> Result<Self, Error> {
        match b {
            1 => Ok(Priority::Bestie),
            2 => Ok(Priority::Mate),
            3 => Ok(Priority::Stranger),
            other => Err(Error::UnknownPriority(other)),
        }
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.to_byte()
    }
}

impl FromStr for Priority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Priority::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(s)).ok_or(Error::UnknownPriorityName)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A count per tier (GOLD, SILVER, BRONZE), e.g. cached coins, caps or deficits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TierCounts(pub [u32; 3]);

impl TierCounts {
    /// The count of one tier.
    pub const fn get(&self, tier: Tier) -> u32 {
        *tier.of(&self.0)
    }
    /// Mutable count of one tier.
    pub fn get_mut(&mut self, tier: Tier) -> &mut u32 {
        tier.of_mut(&mut self.0)
    }
    /// Sum over all tiers.
    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bytes_and_names_are_typed_errors() {
        assert_eq!(Tier::try_from(0), Err(Error::UnknownTier(0)));
        assert_eq!(Tier::try_from(4), Err(Error::UnknownTier(4)));
        assert_eq!(Priority::try_from(9), Err(Error::UnknownPriority(9)));
        assert_eq!("PLATINUM".parse::<Tier>(), Err(Error::UnknownTierName));
        assert_eq!("FRIEND".parse::<Priority>(), Err(Error::UnknownPriorityName));
    }

    #[test]
    fn fallback_never_goes_upward() {
        assert_eq!(Tier::Bronze.fallback().collect::<heapless::Vec<_, 3>>(), [Tier::Bronze]);
        assert_eq!(Tier::Silver.fallback().collect::<heapless::Vec<_, 3>>(), [Tier::Silver, Tier::Bronze]);
    }

    #[test]
    fn serde_rejects_unknown_tier_byte() {
        let mut buf = [0u8; 4];
        let bytes = postcard::to_slice(&7u8, &mut buf).unwrap();
        assert!(postcard::from_bytes::<Tier>(bytes).is_err());
        let ok = postcard::to_slice(&Tier::Silver, &mut buf).unwrap();
        assert_eq!(ok, [2]);
    }
}
