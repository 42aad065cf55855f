//! The vault's rules: ACTIVE → BURNED (kept for a grace period) → deleted; ACTIVE past
//! `expires_at + vault_grace` (docs/protocol.md) → expired and deleted; counters that follow every
//! transition. A last-resort entry is not burned by opening: it records a digest of each first
//! message's KEM ciphertext ([`LastResortOpens`]) and refuses a repeat, and retires (BURNED) when
//! that record is full.
//!
//! Backends read an entry, ask these functions what happens, and apply the answer atomically.

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::coin::CoinKind;
use crate::crypto::SealedSecret;
#[cfg(feature = "alloc")]
use crate::store::VaultStore;
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
    /// One-time (burned when opened) or last-resort (records its opens, see
    /// [`VaultEntry::open_last_resort`]).
    pub kind: CoinKind,
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
    /// A freshly minted, ACTIVE entry of a coin of `kind` expiring at `expires_at`.
    pub fn new_active(
        key_id: KeyId,
        tier: Tier,
        kind: CoinKind,
        sealed: SealedSecret,
        now: UnixSeconds,
        expires_at: UnixSeconds,
    ) -> Self {
        VaultEntry {
            key_id,
            tier,
            kind,
            sealed,
            status: KeyStatus::Active,
            created_at: now,
            expires_at,
            burned_at: None,
        }
    }

    /// An entry as a backend stored it: ACTIVE with no burn time, or BURNED at `burned_at`.
    /// Any other combination is [`Error::Malformed`] (a corrupt record, not a state).
    #[allow(clippy::too_many_arguments)]
    pub fn from_stored(
        key_id: KeyId,
        tier: Tier,
        kind: CoinKind,
        sealed: SealedSecret,
        created_at: UnixSeconds,
        expires_at: UnixSeconds,
        status: KeyStatus,
        burned_at: Option<UnixSeconds>,
    ) -> Result<Self, Error> {
        match (status, burned_at) {
            (KeyStatus::Active, None) | (KeyStatus::Burned, Some(_)) => {
                Ok(VaultEntry { key_id, tier, kind, sealed, status, created_at, expires_at, burned_at })
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

    /// Whether this is a last-resort entry.
    pub fn is_last_resort(&self) -> bool {
        self.kind == CoinKind::LastResort
    }

    /// The burn transition. ACTIVE → BURNED; a burned key gives [`Error::KeyAlreadyBurned`], an
    /// expired one [`Error::CoinExpired`] (its secret is as good as gone), and neither changes.
    /// On a last-resort entry this retires it early (its owner rotates it).
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

    /// The open transition of a last-resort entry: record `digest` (of the first message's KEM
    /// ciphertext, [`open_digest`]) in `opens`, the entry's record of what it opened. A repeat is
    /// [`Error::Replay`]; a one-time entry [`Error::NotLastResort`]; a retired one
    /// [`Error::KeyAlreadyBurned`]; one past its vault deadline [`Error::CoinExpired`]. A refusal
    /// changes neither argument.
    ///
    /// The open that fills the record to `policy.last_resort_max_opens` is accepted and retires
    /// the entry (ACTIVE → BURNED, as a burn): the record cannot grow, and without it a replay
    /// could not be told from a new sender. Then `Some(Transition::Burned)` is returned for the
    /// counters and the owner's next [`last_resort_due`] asks for a fresh coin.
    ///
    /// ```
    /// use aqm_core::coin::CoinKind;
    /// use aqm_core::crypto::SealedSecret;
    /// use aqm_core::vault::{open_digest, LastResortOpens, VaultEntry};
    /// use aqm_core::{Error, KeyId, Policy, Tier};
    ///
    /// let sealed = SealedSecret { nonce: [0; 12], ciphertext: heapless::Vec::new() };
    /// let mut e = VaultEntry::new_active(KeyId([1; 16]), Tier::Bronze, CoinKind::LastResort, sealed, 0, 7 * 86_400);
    /// let mut opens = LastResortOpens::default();
    /// let p = Policy::DEFAULT;
    /// assert_eq!(e.open_last_resort(&mut opens, open_digest(&e.key_id, b"ct one"), &p, 10), Ok(None));
    /// assert_eq!(e.open_last_resort(&mut opens, open_digest(&e.key_id, b"ct two"), &p, 11), Ok(None));
    /// // The same first message again is a replay, and changes nothing.
    /// assert_eq!(e.open_last_resort(&mut opens, open_digest(&e.key_id, b"ct one"), &p, 12), Err(Error::Replay));
    /// assert_eq!(opens.len(), 2);
    /// ```
    pub fn open_last_resort(
        &mut self,
        opens: &mut LastResortOpens,
        digest: OpenDigest,
        policy: &Policy,
        now: UnixSeconds,
    ) -> Result<Option<Transition>, Error> {
        if self.kind != CoinKind::LastResort {
            return Err(Error::NotLastResort);
        }
        match self.status {
            KeyStatus::Burned => return Err(Error::KeyAlreadyBurned),
            KeyStatus::Active if self.is_expired(policy, now) => return Err(Error::CoinExpired),
            KeyStatus::Active => {}
        }
        if opens.contains(&digest) {
            return Err(Error::Replay);
        }
        let max = policy.last_resort_max_opens.clamp(1, MAX_LAST_RESORT_OPENS as u32) as usize;
        // A record already at the bound belongs to a retired entry; one read back over it is
        // corrupt, not a state to open from.
        if opens.len() >= max {
            return Err(Error::Malformed);
        }
        opens.digests.push(digest).map_err(|_| Error::Malformed)?;
        if opens.len() >= max {
            self.status = KeyStatus::Burned;
            self.burned_at = Some(now);
            return Ok(Some(Transition::Burned(self.tier)));
        }
        Ok(None)
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

/// Most first messages one last-resort coin opens before it retires ([`VaultEntry::open_last_resort`]).
pub const MAX_LAST_RESORT_OPENS: usize = 32;

/// Domain separation of [`open_digest`].
pub const OPEN_DIGEST_DOMAIN: &[u8] = b"AQM-last-resort-open-v1";

/// The digest a last-resort entry keeps of one first message: the first 16 bytes of
/// `SHA-256("AQM-last-resort-open-v1" ‖ key id ‖ KEM ciphertext)`. 128 bits suffice: a sender
/// cannot choose another sender's ciphertext, so only a second preimage would make a fresh first
/// message look like a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenDigest(pub [u8; 16]);

/// The [`OpenDigest`] of a first message to `key_id` carrying `kem_ciphertext`.
pub fn open_digest(key_id: &KeyId, kem_ciphertext: &[u8]) -> OpenDigest {
    let mut h = Sha256::new();
    h.update(OPEN_DIGEST_DOMAIN);
    h.update(key_id.as_bytes());
    h.update(kem_ciphertext);
    let full = h.finalize();
    let mut d = [0u8; 16];
    d.iter_mut().zip(full.iter()).for_each(|(o, i)| *o = *i);
    OpenDigest(d)
}

/// Bytes of the largest encoded [`LastResortOpens`] (a one-byte length and the digests).
pub const LAST_RESORT_OPENS_BYTES: usize = 1 + 16 * MAX_LAST_RESORT_OPENS;

/// What one last-resort entry has opened: the digests of its first messages, kept until the
/// entry is deleted. Stores keep it beside the entry (one-time entries have none) and move it
/// only through [`VaultEntry::open_last_resort`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResortOpens {
    digests: heapless::Vec<OpenDigest, MAX_LAST_RESORT_OPENS>,
}

impl LastResortOpens {
    /// How many first messages were opened.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether nothing was opened yet.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether this first message was opened already.
    pub fn contains(&self, digest: &OpenDigest) -> bool {
        self.digests.contains(digest)
    }

    /// The digests, oldest first.
    pub fn digests(&self) -> &[OpenDigest] {
        &self.digests
    }

    /// The stored encoding (postcard), at most [`LAST_RESORT_OPENS_BYTES`].
    pub fn to_bytes(&self) -> heapless::Vec<u8, LAST_RESORT_OPENS_BYTES> {
        let mut buf = [0u8; LAST_RESORT_OPENS_BYTES];
        // The buffer holds the largest record, so encoding cannot fail.
        let used = postcard::to_slice(self, &mut buf).map(|b| b.len()).unwrap_or(0);
        heapless::Vec::from_slice(buf.get(..used).unwrap_or(&[])).unwrap_or_default()
    }

    /// Decode a stored record; anything but one exact encoding is [`Error::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        match postcard::take_from_bytes::<LastResortOpens>(bytes) {
            Ok((opens, [])) => Ok(opens),
            _ => Err(Error::Malformed),
        }
    }
}

/// Whether the owner should mint its next last-resort coin of a tier, given the newest live one
/// (`None`: none, or only retired ones): when there is none, or when it has no more than
/// `policy.last_resort_renew_secs` of hand-out life left (the directory stops handing a coin out
/// `coin_min_life_secs` before it expires, so the next one must be uploaded before that).
///
/// ```
/// use aqm_core::{protocol, vault, Policy};
/// let p = Policy::DEFAULT;
/// let expires_at = protocol::last_resort_expiry(0);
/// assert!(vault::last_resort_due(&p, None, 0));
/// assert!(!vault::last_resort_due(&p, Some(expires_at), 0));
/// let renew_at = expires_at - p.coin_min_life_secs - p.last_resort_renew_secs;
/// assert!(!vault::last_resort_due(&p, Some(expires_at), renew_at - 1));
/// assert!(vault::last_resort_due(&p, Some(expires_at), renew_at));
/// ```
pub fn last_resort_due(policy: &Policy, newest_live_expires_at: Option<UnixSeconds>, now: UnixSeconds) -> bool {
    newest_live_expires_at.is_none_or(|e| !policy.coin_is_fresh(e, now.saturating_add(policy.last_resort_renew_secs)))
}

/// The newest usable (ACTIVE, not expired) last-resort entry of `tier` in `vault`, if any: what
/// [`last_resort_due`] is asked about. A scan of the tier's ACTIVE ids (background use); the ids
/// are collected first because a store may hold a lock while it visits them.
#[cfg(feature = "alloc")]
pub fn newest_last_resort<V: VaultStore + ?Sized>(
    vault: &V,
    tier: Tier,
    now: UnixSeconds,
) -> Result<Option<VaultEntry>, V::Error> {
    let mut ids = alloc::vec::Vec::new();
    vault.active_ids(Some(tier), &mut |id| ids.push(id))?;
    let mut found: Option<VaultEntry> = None;
    for id in ids {
        if let Some(e) = vault.get(&id, now)?
            && e.is_last_resort()
            && found.as_ref().is_none_or(|f| e.expires_at > f.expires_at)
        {
            found = Some(e);
        }
    }
    Ok(found)
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
        VaultEntry::new_active(
            KeyId([1; 16]),
            Tier::Silver,
            CoinKind::OneTime,
            sealed,
            now,
            now + crate::protocol::COIN_LIFETIME_SECS,
        )
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
