//! Storage traits. Each method is one atomic step a backend performs in one transaction (redb),
//! one script (Redis), one SQL transaction (PostgreSQL) or one power-fail-safe record (flash).
//! Inside that step the backend reads what it needs, asks the core's rule functions
//! ([`crate::vault`], [`crate::inventory`], [`crate::directory`]) what to do, and writes the answer.
//!
//! Each backend is built with a [`crate::Policy`] and applies that policy in every step; it
//! says which one through [`HasPolicy`], a supertrait of every store that applies rules, so the
//! messenger plans under the very policy its store admits under (and the conformance kit checks
//! the store against its own policy, not against the defaults).
//!
//! Methods take `&self`: a backend that is `Sync` can be shared between threads, and the
//! conformance kit (`aqm_core::testkit`, feature `testkit`) then proves its atomicity concurrently.

use serde::{Deserialize, Serialize};

use crate::coin::PublicCoin;
use crate::crypto::{PublicIdentity, RegistrationProof};
use crate::directory::{Claimed, IdempotencyKey};
use crate::inventory::{CachedCoin, ContactMeta, GcReport, Selection};
use crate::pins::{Pinned, Trust};
use crate::vault::{KeyStatus, OpenDigest, PurgeReport, VaultEntry, VaultStats};
use crate::{ContactId, Error, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds, UserId};

/// A store built with a [`Policy`], which it applies in every step.
///
/// A supertrait of [`VaultStore`], [`InventoryStore`] and [`DirectoryStore`]: whoever holds a
/// store can ask it which rules it enforces, instead of being handed a second policy that might
/// disagree (a prefetch planned under one set of caps while the store admits under another).
pub trait HasPolicy {
    /// The policy every operation of this store applies.
    fn policy(&self) -> &Policy;
}

impl<T: HasPolicy + ?Sized> HasPolicy for &T {
    fn policy(&self) -> &Policy {
        (**self).policy()
    }
}

/// The vault of one device: sealed private halves of its own coins.
pub trait VaultStore: HasPolicy {
    /// The backend's error; core refusals come back as [`crate::Error`] inside it.
    type Error: StoreError;

    /// Store a freshly minted ACTIVE entry. A key id already present → `KeyAlreadyExists`.
    fn put(&self, entry: &VaultEntry) -> Result<(), Self::Error>;

    /// The entry if it is usable at `now` (ACTIVE, not expired); None otherwise. Never modifies.
    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Self::Error>;

    /// The stored status, whatever it is (None if no record exists).
    fn status(&self, key_id: &KeyId) -> Result<Option<KeyStatus>, Self::Error>;

    /// Burn an ACTIVE key, exactly once under concurrency: missing → `KeyNotFound`, past its
    /// vault deadline → `CoinExpired`, burned → `KeyAlreadyBurned`.
    fn burn(&self, key_id: &KeyId, now: UnixSeconds) -> Result<(), Self::Error>;

    /// Expire ACTIVE keys past `expires_at + vault_grace` and delete BURNED keys past their grace.
    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Self::Error>;

    /// The counters. They always equal a recount of the entries.
    fn stats(&self) -> Result<VaultStats, Self::Error>;

    /// Visit the ids of ACTIVE keys (of one tier, or all). Background use: O(n).
    fn active_ids(&self, tier: Option<Tier>, visit: &mut dyn FnMut(KeyId)) -> Result<(), Self::Error>;

    /// Record that the last-resort key `key_id` opened the first message whose KEM ciphertext
    /// has `digest` ([`crate::vault::open_digest`]), in one atomic step: read the entry (missing
    /// → `KeyNotFound`) and its [`crate::vault::LastResortOpens`] (none yet → empty), apply
    /// [`VaultEntry::open_last_resort`] (`Replay`, `NotLastResort`, `KeyAlreadyBurned`,
    /// `CoinExpired` change nothing), write the opens and, when the open retired the key, the
    /// BURNED entry and its counter transition. Returns whether the key retired.
    ///
    /// For a vault whose sessions live elsewhere (the firmware's flash: the host keeps them);
    /// a store that also keeps sessions opens through
    /// [`SessionStore::open_last_resort_and_save_session`] so the session is saved in the
    /// same step.
    fn open_last_resort(&self, key_id: &KeyId, digest: &OpenDigest, now: UnixSeconds) -> Result<bool, Self::Error>;
}

/// Which way a session's chain runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// We encrypt to the peer.
    Send,
    /// The peer encrypts to us.
    Receive,
}

/// Most bytes a sealed session record may take.
pub const MAX_SESSION_BLOB: usize = 2048;

/// A session record as stored: opaque, sealed bytes produced by the core.
pub type SessionBlob = heapless::Vec<u8, MAX_SESSION_BLOB>;

/// The version of a stored session record: 1 when created, one more at every save. Saves are
/// compare-and-swap on it (docs/protocol.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionVersion(pub u64);

impl SessionVersion {
    /// The version of a newly created record.
    pub const FIRST: SessionVersion = SessionVersion(1);
}

/// A session record with the version it was loaded at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    /// The sealed record.
    pub blob: SessionBlob,
    /// Pass this to the next save.
    pub version: SessionVersion,
}

/// The compare-and-swap rule every session store applies inside its atomic step: `current` is
/// the stored version (None: no record), `expected` what the caller loaded (None: "create only
/// if absent"). Returns the version to write, or [`Error::SessionConflict`] (write nothing).
///
/// ```
/// use aqm_core::store::{next_session_version, SessionVersion};
/// use aqm_core::Error;
/// assert_eq!(next_session_version(None, None), Ok(SessionVersion(1)));
/// assert_eq!(next_session_version(Some(SessionVersion(4)), Some(SessionVersion(4))), Ok(SessionVersion(5)));
/// assert_eq!(next_session_version(Some(SessionVersion(5)), Some(SessionVersion(4))), Err(Error::SessionConflict));
/// assert_eq!(next_session_version(Some(SessionVersion(1)), None), Err(Error::SessionConflict));
/// assert_eq!(next_session_version(None, Some(SessionVersion(1))), Err(Error::SessionConflict));
/// ```
pub fn next_session_version(
    current: Option<SessionVersion>,
    expected: Option<SessionVersion>,
) -> Result<SessionVersion, Error> {
    match (current, expected) {
        (None, None) => Ok(SessionVersion::FIRST),
        (Some(c), Some(e)) if c == e => c.0.checked_add(1).map(SessionVersion).ok_or(Error::SessionConflict),
        _ => Err(Error::SessionConflict),
    }
}

/// Session records, stored beside the vault so that opening a coin can burn it in the same
/// atomic step that saves the session it opened. Every save is a compare-and-swap on the version
/// the caller loaded ([`next_session_version`]); a lost race is [`Error::SessionConflict`] with
/// nothing written. Replay protection assumes the store never loses a committed write.
pub trait SessionStore: VaultStore {
    /// The record for `peer` in `direction` and its version, if any.
    fn load_session(&self, peer: &UserId, direction: Direction) -> Result<Option<StoredSession>, Self::Error>;

    /// Write the record for `peer` in `direction` if its version is still `expected` (None:
    /// only if no record exists). Returns the new version; `SessionConflict` otherwise.
    fn save_session(
        &self,
        peer: &UserId,
        direction: Direction,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Self::Error>;

    /// Burn `key_id` and save the receive session it opened, atomically: both happen or neither.
    /// Errors as [`VaultStore::burn`] and [`SessionStore::save_session`]; on error nothing is
    /// written.
    fn burn_and_save_session(
        &self,
        key_id: &KeyId,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Self::Error>;

    /// Record that the last-resort key `key_id` opened the first message whose KEM ciphertext
    /// has `digest` ([`crate::vault::open_digest`]) and save the receive session it opened,
    /// atomically: both happen or neither. Inside the step the store reads the entry (missing →
    /// `KeyNotFound`) and its [`crate::vault::LastResortOpens`] (none yet → empty), applies
    /// [`VaultEntry::open_last_resort`] (`Replay`, `NotLastResort`, `KeyAlreadyBurned`,
    /// `CoinExpired`), compare-and-swaps the session, writes the opens and, when the open
    /// retired the key, the BURNED entry and its counter transition (the opens of a retired key
    /// may be dropped: it refuses every open). On error nothing is written.
    fn open_last_resort_and_save_session(
        &self,
        key_id: &KeyId,
        digest: &OpenDigest,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Self::Error>;
}

/// Identities pinned per user id ([`crate::pins`]).
pub trait PinStore {
    /// The backend's error.
    type Error: StoreError;

    /// Pin `identity` at `trust`, applying [`crate::pins::decide`] in one atomic step: the
    /// first identity is pinned, the same one may only raise its trust, another one is
    /// `IdentityChanged` (nothing written). Returns the pin as stored.
    fn pin_identity(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, Self::Error>;

    /// The pin for `user`, if any.
    fn pinned(&self, user: &UserId) -> Result<Option<Pinned>, Self::Error>;
}

/// A device's cache of its contacts' public coins.
pub trait InventoryStore: HasPolicy {
    /// The backend's error.
    type Error: StoreError;

    /// Register a contact. Returns false (and changes nothing) if it was already registered.
    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Self::Error>;

    /// The contact's metadata, if registered.
    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Self::Error>;

    /// Change a contact's priority; a downgrade evicts the newest coins above the new caps in the
    /// same step. Returns the number evicted. Unregistered → `ContactNotRegistered`.
    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Self::Error>;

    /// Cache a coin if [`crate::inventory::admit`] allows it, atomically with the cap check.
    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Self::Error>;

    /// Pop the oldest fresh coin of the first tier from `desired` down to `lowest` (the fallback
    /// never goes below `lowest`) that holds one, and mark the contact active at `now` when a
    /// coin is returned. Coins of the scanned tiers that are no longer fresh at `now`
    /// ([`crate::Policy::coin_is_fresh`]) are deleted in the same step and counted in
    /// [`Selection::wasted`]. Unregistered → `ContactNotRegistered`.
    fn select_coin(
        &self,
        contact: &ContactId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<Selection, Self::Error>;

    /// Put back a coin that [`InventoryStore::select_coin`] returned but that was never sent
    /// (its send lost a session race), at its original FIFO position (`seq`). Refused as
    /// [`crate::inventory::admit`] would refuse it (the cap filled meanwhile, a duplicate);
    /// returns whether it went back.
    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Self::Error>;

    /// Remove one cached coin (error recovery). Returns whether it was there.
    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Self::Error>;

    /// Cached coins per tier for a contact (zeros if unregistered).
    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Self::Error>;

    /// Visit every registered contact with its counts.
    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Self::Error>;

    /// Drop the coins of contacts inactive at `now` and downgrade them to STRANGER; with
    /// `dry_run`, only report what would go.
    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Self::Error>;

    /// Drop one contact's coins now and downgrade it to STRANGER (e.g. after blocking).
    /// Unregistered → `ContactNotRegistered`.
    fn collect_contact(&self, contact: &ContactId) -> Result<GcReport, Self::Error>;
}

/// The coin directory: publishes coins and hands each out at most once.
pub trait DirectoryStore: HasPolicy {
    /// The backend's error.
    type Error: StoreError;

    /// Register an identity so its uploads can be verified, once its proof of possession verifies
    /// ([`crate::directory::verify_registration`]: bad proof → `BadSignature`, weak key →
    /// `WeakIdentityKey`). Registering the same identity again is a no-op; a different identity
    /// under a known user id → `KeyAlreadyExists`.
    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Self::Error>;

    /// The registered identity of a user.
    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, Self::Error>;

    /// Publish coins of a registered owner ([`crate::directory::verify_upload`]: all or nothing,
    /// including each coin's expiry against `now`).
    /// Idempotent on (owner, key id): returns how many were new.
    fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, Self::Error>;

    /// Claim up to `count` of the oldest unclaimed fresh coins of `owner` and `tier` for
    /// `requester`, each to exactly one requester, within the anti-drain quota (coins no longer
    /// fresh at `now` are never handed out). A retry with the same
    /// `idempotency` key returns the same coins and claims nothing more.
    fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Claimed, Self::Error>;

    /// Unclaimed coins per tier of `owner`.
    fn available(&self, owner: &UserId) -> Result<TierCounts, Self::Error>;

    /// Delete unclaimed coins past the stale age. Returns how many.
    fn purge_stale(&self, now: UnixSeconds) -> Result<u32, Self::Error>;

    /// Delete claimed coins past the claim grace. Returns how many.
    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, Self::Error>;
}
