//! Pinned identities and safety numbers (docs/protocol.md).
//!
//! The first [`PublicIdentity`] accepted for a user id — from a contact exchange or from the
//! directory — is pinned; a different one later is [`Error::IdentityChanged`], never a silent
//! replacement. How far a pin is trusted only ever rises: directory → exchanged → verified (the
//! two users compared their [`SafetyNumber`] out of band). Stores apply [`decide`] inside the one
//! atomic step of [`crate::store::PinStore::pin_identity`].

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::crypto::PublicIdentity;

/// Domain tag of the safety number.
pub const SAFETY_DOMAIN: &[u8] = b"AQM-safety-v2";

/// Where a pinned identity came from, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum Trust {
    /// Learned from the directory only: messages from this sender are reported unverified.
    Directory = 1,
    /// Received in a contact exchange (QR code, invitation).
    Exchanged = 2,
    /// The safety number was compared out of band.
    Verified = 3,
}

impl Trust {
    /// The byte stores keep.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }

    /// Whether messages from a sender pinned at this level are reported unverified.
    pub const fn is_unverified(self) -> bool {
        matches!(self, Trust::Directory)
    }
}

impl TryFrom<u8> for Trust {
    type Error = Error;
    fn try_from(b: u8) -> Result<Self, Error> {
        match b {
            1 => Ok(Trust::Directory),
            2 => Ok(Trust::Exchanged),
            3 => Ok(Trust::Verified),
            _ => Err(Error::Malformed),
        }
    }
}

impl From<Trust> for u8 {
    fn from(t: Trust) -> u8 {
        t.to_byte()
    }
}

/// A pinned identity and how far it is trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// The identity.
    pub identity: PublicIdentity,
    /// How it was learned.
    pub trust: Trust,
}

/// What pinning `offered` at `trust` does, given the pin held now.
///
/// - nothing pinned: the identity's keys must be valid ([`PublicIdentity::validate`]); pin it;
/// - the same identity: raise the trust if `trust` is higher (Ok(None) when nothing changes);
/// - another identity for the user id: [`Error::IdentityChanged`], nothing changes.
///
/// Returns the record to write, if any.
///
/// ```
/// use aqm_core::crypto::Identity;
/// use aqm_core::pins::{decide, Pinned, Trust};
/// use aqm_core::Error;
/// let mut rng = rand::rng();
/// let alice = Identity::generate(&mut rng);
/// let pin = decide(None, alice.public(), Trust::Directory).unwrap().unwrap();
/// assert_eq!(decide(Some(&pin), alice.public(), Trust::Directory), Ok(None));
/// assert_eq!(decide(Some(&pin), alice.public(), Trust::Verified).unwrap().unwrap().trust, Trust::Verified);
/// let mut forged = alice.public().clone();
/// forged.ed25519 = Identity::generate(&mut rng).public().ed25519;
/// assert_eq!(decide(Some(&pin), &forged, Trust::Verified), Err(Error::IdentityChanged));
/// ```
pub fn decide(existing: Option<&Pinned>, offered: &PublicIdentity, trust: Trust) -> Result<Option<Pinned>, Error> {
    match existing {
        None => {
            offered.validate()?;
            Ok(Some(Pinned { identity: offered.clone(), trust }))
        }
        Some(p) if p.identity.user_id != offered.user_id => Err(Error::Malformed),
        Some(p) if p.identity != *offered => Err(Error::IdentityChanged),
        Some(p) if trust > p.trust => Ok(Some(Pinned { identity: p.identity.clone(), trust })),
        Some(_) => Ok(None),
    }
}

/// The number two users compare out of band to verify each other's identity:
/// SHA-256(`"AQM-safety-v2"` ‖ for each party sorted by user id: `id ‖ ed25519 pk ‖
/// SHA-256(mldsa65 pk)`), shown as 30 digits in six groups of five ([`SafetyNumber`]'s
/// `Display`: each group is one 5-byte big-endian chunk of the digest, modulo 100 000).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SafetyNumber(pub [u8; 32]);

impl SafetyNumber {
    /// The safety number of `a` and `b` (the same whichever comes first).
    ///
    /// ```
    /// use aqm_core::crypto::Identity;
    /// use aqm_core::pins::SafetyNumber;
    /// let mut rng = rand::rng();
    /// let (a, b) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    /// assert_eq!(SafetyNumber::of(a.public(), b.public()), SafetyNumber::of(b.public(), a.public()));
    /// assert_eq!(SafetyNumber::of(a.public(), b.public()).to_string().len(), 35);
    /// ```
    pub fn of(a: &PublicIdentity, b: &PublicIdentity) -> SafetyNumber {
        let (first, second) = if a.user_id <= b.user_id { (a, b) } else { (b, a) };
        let mut h = Sha256::new();
        h.update(SAFETY_DOMAIN);
        for p in [first, second] {
            h.update(p.user_id.as_bytes());
            h.update(p.ed25519);
            h.update(Sha256::digest(&p.mldsa65));
        }
        SafetyNumber(h.finalize().into())
    }

    /// The six five-digit groups.
    pub fn groups(&self) -> [u32; 6] {
        let mut out = [0u32; 6];
        for (g, group) in out.iter_mut().zip(self.0.chunks_exact(5)) {
            let mut v: u64 = 0;
            for b in group {
                v = (v << 8) | u64::from(*b);
            }
            // A value below 100 000 always fits a u32.
            *g = (v % 100_000) as u32;
        }
        out
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.groups().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{g:05}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    use crate::UserId;
    use crate::crypto::{Identity, IdentitySecret};

    fn fixed(id: u8, seed: u8) -> Identity {
        Identity::from_secret(IdentitySecret {
            user_id: UserId([id; 16]),
            ed25519_seed: [seed; 32],
            mldsa65_seed: [seed.wrapping_add(1); 32],
        })
    }

    #[test]
    fn safety_number_golden() {
        let (a, b) = (fixed(1, 10), fixed(2, 20));
        let n = SafetyNumber::of(a.public(), b.public());
        // Recomputed here from docs/protocol.md by hand, independently of `of`.
        let mut h = Sha256::new();
        h.update(b"AQM-safety-v2");
        for p in [a.public(), b.public()] {
            h.update(p.user_id.0);
            h.update(p.ed25519);
            h.update(Sha256::digest(p.mldsa65.as_slice()));
        }
        assert_eq!(n.0, <[u8; 32]>::from(h.finalize()));
        // The golden value other implementations must reproduce for these two fixed identities.
        assert_eq!(n.to_string(), GOLDEN_SAFETY_NUMBER);
    }

    const GOLDEN_SAFETY_NUMBER: &str = "97363 67988 49988 24549 89849 27652";

    #[test]
    fn trust_only_rises() {
        let a = fixed(1, 10);
        let pin = decide(None, a.public(), Trust::Verified).unwrap().unwrap();
        assert_eq!(decide(Some(&pin), a.public(), Trust::Directory), Ok(None));
        let mut other_id = a.public().clone();
        other_id.user_id = UserId([9; 16]);
        assert_eq!(decide(Some(&pin), &other_id, Trust::Directory), Err(Error::Malformed));
    }

    #[test]
    fn weak_keys_are_never_pinned() {
        let mut weak = fixed(1, 10).public().clone();
        // The identity point (small order 1), canonically encoded.
        weak.ed25519 = [0; 32];
        weak.ed25519[0] = 1;
        assert_eq!(decide(None, &weak, Trust::Exchanged), Err(Error::WeakIdentityKey));
    }
}
