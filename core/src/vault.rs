//! The vault's rules: ACTIVE → BURNED (kept for a grace period) → deleted; ACTIVE past
//! `expires_at + vault_grace` (docs/protocol.md) → expired and deleted; counters that follow every
//! transition.
//!
//! Backends read an entry, ask these functions what happens, and apply the answer atomically.

use serde::{Deserialize, Serialize};

use crate::crypto::SealedSecret;
use crate::{Error, KeyId, Policy, Tier, TierCounts, UnixSeconds};

/// Where a vault key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyStatus {
    /// Usable once.
    Active,
    /// Opened; kept for diagnostics until the burn grace passes.
    Burned,
}

impl KeyStatus {
    /// Upper-case name, as in the seed's Redis hashes.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "ACTIVE",
            KeyStatus::Burned => "BURNED",
        }
    }
    /// Parse the upper-case name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "ACTIVE" => Ok(KeyStatus::Active),
            "BURNED" => Ok(KeyStatus::Burned),
            _ => Err(Error::Malformed),
        }
    }
}

/// One private key in the vault: its sealed seed and its state.
///
/// The state (`status`, `burned_at`) is private: only the state machine moves it
/// ([`VaultEntry::burn`]), so no caller can hand a store an entry that un-burns a key or burns
/// it without the counters knowing. A backend reading its own record back rebuilds an entry with
/// [`VaultEntry::from_stored`], which refuses an inconsistent state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultEntry {
    /// The coin's key id.
    pub key_id: KeyId,
    /// The coin's tier.
    pub tier: Tier,
    /// The secret seed, sealed under the device key.
    pub sealed: SealedSecret,
    /// ACTIVE or BURNED.
    status: KeyStatus,
    /// When the coin was minted.
    pub created_at: UnixSeconds,
    /// The coin's signed expiry; the secret is deleted at `expires_at + vault_grace`.
    pub expires_at: UnixSeconds,
    /// When the coin was burned, if it was.
    burned_at: Option<UnixSeconds>,
}

impl VaultEntry {
    /// A freshly minted, ACTIVE entry of a coin expiring at `expires_at`.
    pub fn new_active(
        key_id: KeyId,
        tier: Tier,
        sealed: SealedSecret,
        now: UnixSeconds,
        expires_at: UnixSeconds,
    ) -> Self {
        VaultEntry { key_id, tier, sealed, status: KeyStatus::Active, created_at: now, expires_at, burned_at: None }
    }

    /// An entry as a backend stored it: ACTIVE with no burn time, or BURNED at `burned_at`.
    /// Any other combination is [`Error::Malformed`] (a corrupt record, not a state).
    pub fn from_stored(
        key_id: KeyId,
        tier: Tier,
        sealed: SealedSecret,
        created_at: UnixSeconds,
        expires_at: UnixSeconds,
        status: KeyStatus,
        burned_at: Option<UnixSeconds>,
    ) -> Result<Self, Error> {
        match (status, burned_at) {
            (KeyStatus::Active, None) | (KeyStatus::Burned, Some(_)) => {
                Ok(VaultEntry { key_id, tier, sealed, status, created_at, expires_at, burned_at })
            }
            _ => Err(Error::Malformed),
        }
    }

    /// ACTIVE or BURNED.
    pub fn status(&self) -> KeyStatus {
        self.status
    }

    /// When the key was burned (None while ACTIVE).
    pub fn burned_at(&self) -> Option<UnixSeconds> {
        self.burned_at
    }

    /// Check that an entry offered to [`crate::store::VaultStore::put`] is freshly minted (ACTIVE,
    /// never burned), and return the counter transition storing it makes. Anything else is
    /// refused with [`Error::Malformed`], so the counters can never drift from the entries.
    pub fn check_new(&self) -> Result<Transition, Error> {
        if self.status == KeyStatus::Active && self.burned_at.is_none() {
            Ok(Transition::Stored(self.tier))
        } else {
            Err(Error::Malformed)
        }
    }

    /// Whether an ACTIVE entry is past `expires_at + vault_grace` at `now`.
    pub fn is_expired(&self, policy: &Policy, now: UnixSeconds) -> bool {
        // `expires_at + grace <= now`, written without an addition that could saturate (stores
        // that index by `expires_at` compare it with `now - grace`, and must agree exactly).
        self.status == KeyStatus::Active
            && now.checked_sub(policy.vault_grace_secs).is_some_and(|t| self.expires_at <= t)
    }

    /// Whether the entry may be opened at `now`: ACTIVE and not expired.
    pub fn is_usable(&self, policy: &Policy, now: UnixSeconds) -> bool {
        self.status == KeyStatus::Active && !self.is_expired(policy, now)
    }

    /// The burn transition. ACTIVE → BURNED; a burned key gives [`Error::KeyAlreadyBurned`], an
    /// expired one [`Error::CoinExpired`] (its secret is as good as gone), and neither changes.
    pub fn burn(&mut self, policy: &Policy, now: UnixSeconds) -> Result<(), Error> {
        match self.status {
            KeyStatus::Burned => Err(Error::KeyAlreadyBurned),
            KeyStatus::Active if self.is_expired(policy, now) => Err(Error::CoinExpired),
            KeyStatus::Active => {
                self.status = KeyStatus::Burned;
                self.burned_at = Some(now);
                Ok(())
            }
        }
    }

    /// What a purge at `now` does with this entry.
    pub fn purge_action(&self, policy: &Policy, now: UnixSeconds) -> PurgeAction {
        match self.status {
            KeyStatus::Active if self.is_expired(policy, now) => PurgeAction::Expire,
            KeyStatus::Active => PurgeAction::Keep,
            KeyStatus::Burned => {
                let at = self.burned_at.unwrap_or(self.created_at);
                if now.saturating_sub(at) >= policy.burn_grace_secs { PurgeAction::Delete } else { PurgeAction::Keep }
            }
        }
    }
}

/// The outcome of [`VaultEntry::purge_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeAction {
    /// Leave the entry.
    Keep,
    /// Delete an ACTIVE entry past its deadline, counting it as expired.
    Expire,
    /// Delete a BURNED entry past its grace (already counted as burned).
    Delete,
}

/// Vault counters. Must always equal what a recount of the entries gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultStats {
    /// ACTIVE keys per tier.
    pub active: TierCounts,
    /// Keys ever burned.
    pub total_burned: u64,
    /// Keys ever expired.
    pub total_expired: u64,
}

/// A state change that moves the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A new ACTIVE key.
    Stored(Tier),
    /// An ACTIVE key burned.
    Burned(Tier),
    /// An ACTIVE key expired and deleted.
    Expired(Tier),
}

impl VaultStats {
    /// Apply one transition.
    pub fn apply(&mut self, t: Transition) {
        // Saturating both ways: counters read back from a store are outside input, and a
        // corrupt maximum must not panic (debug) or wrap to zero (release) here.
        match t {
            Transition::Stored(tier) => {
                let a = self.active.get_mut(tier);
                *a = a.saturating_add(1);
            }
            Transition::Burned(tier) => {
                let a = self.active.get_mut(tier);
                *a = a.saturating_sub(1);
                self.total_burned = self.total_burned.saturating_add(1);
            }
            Transition::Expired(tier) => {
                let a = self.active.get_mut(tier);
                *a = a.saturating_sub(1);
                self.total_expired = self.total_expired.saturating_add(1);
            }
        }
    }
}

/// What one purge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// ACTIVE keys expired and deleted.
    pub expired: u32,
    /// BURNED keys past their grace deleted.
    pub deleted_burned: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let mut s =
            VaultStats { active: TierCounts([u32::MAX, 0, 0]), total_burned: u64::MAX, total_expired: u64::MAX };
        s.apply(Transition::Stored(Tier::Gold));
        s.apply(Transition::Burned(Tier::Silver));
        s.apply(Transition::Expired(Tier::Bronze));
        assert_eq!(
            s,
            VaultStats { active: TierCounts([u32::MAX, 0, 0]), total_burned: u64::MAX, total_expired: u64::MAX }
        );
    }

    fn entry(now: UnixSeconds) -> VaultEntry {
        let sealed = SealedSecret { nonce: [0; 12], ciphertext: heapless::Vec::new() };
        VaultEntry::new_active(KeyId([1; 16]), Tier::Silver, sealed, now, now + crate::protocol::COIN_LIFETIME_SECS)
    }

    fn deadline(p: &Policy) -> UnixSeconds {
        p.vault_deadline(crate::protocol::COIN_LIFETIME_SECS)
    }

    #[test]
    fn burn_is_once_and_expiry_blocks_it() {
        let p = Policy::DEFAULT;
        let mut e = entry(0);
        assert!(e.is_usable(&p, 10));
        e.burn(&p, 10).unwrap();
        assert_eq!(e.burned_at(), Some(10));
        let before = e.clone();
        assert_eq!(e.burn(&p, 11), Err(Error::KeyAlreadyBurned));
        assert_eq!(e, before);
        let mut old = entry(0);
        assert!(old.is_usable(&p, deadline(&p) - 1), "a late first message still opens within the grace");
        assert_eq!(old.burn(&p, deadline(&p)), Err(Error::CoinExpired));
        assert_eq!(old.status, KeyStatus::Active);
    }

    #[test]
    fn purge_actions() {
        let p = Policy::DEFAULT;
        let mut e = entry(0);
        assert_eq!(e.purge_action(&p, deadline(&p) - 1), PurgeAction::Keep);
        assert_eq!(e.purge_action(&p, deadline(&p)), PurgeAction::Expire);
        e.burn(&p, 100).unwrap();
        assert_eq!(e.purge_action(&p, 100 + p.burn_grace_secs - 1), PurgeAction::Keep);
        assert_eq!(e.purge_action(&p, 100 + p.burn_grace_secs), PurgeAction::Delete);
    }

    #[test]
    fn counters_follow_transitions() {
        let mut s = VaultStats::default();
        s.apply(Transition::Stored(Tier::Gold));
        s.apply(Transition::Stored(Tier::Gold));
        s.apply(Transition::Burned(Tier::Gold));
        s.apply(Transition::Expired(Tier::Gold));
        assert_eq!(s, VaultStats { active: TierCounts([0, 0, 0]), total_burned: 1, total_expired: 1 });
    }
}
