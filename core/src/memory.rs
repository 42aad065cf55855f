//! The in-memory reference store: every storage trait over fixed-capacity `heapless` vectors,
//! no allocator, behind one `spin::Mutex` so it is `Sync`.
//!
//! It is the model implementation of "read a snapshot, ask the core, apply the answer": each
//! trait method takes the lock once, reads what it needs, calls the core's rule function
//! ([`crate::vault`], [`crate::inventory`], [`crate::directory`]) and writes the decision before
//! the lock is released, so every method is one atomic step. Counters are only ever moved by
//! [`VaultStats::apply`], never recomputed, which is what makes the conformance kit's
//! "counters equal a recount" checks meaningful.
//!
//! Capacities are const generics with defaults sized for tests and the host simulator; a
//! microcontroller picks smaller ones. A full table refuses with [`Error::CapacityFull`] and
//! changes nothing.
//!
//! ```
//! use aqm_core::memory::MemoryStore;
//! use aqm_core::store::{InventoryStore, VaultStore};
//! use aqm_core::{inventory::ContactMeta, Policy, Priority, UserId};
//!
//! let store: MemoryStore = MemoryStore::new(Policy::DEFAULT);
//! let bob = UserId([7; 16]);
//! assert!(store.register_contact(&ContactMeta::new(bob, Priority::Bestie, "bob", 0).unwrap()).unwrap());
//! assert_eq!(store.stats().unwrap().active.total(), 0);
//!
//! // A firmware-sized store: 8 vault keys, no inventory or directory to speak of. `new` is a
//! // `const fn`, so a device can keep its store in a `static` instead of on a small stack.
//! type Tiny = MemoryStore<8, 1, 1, 2, 1, 1, 1>;
//! static DEVICE: Tiny = Tiny::new(Policy::DEFAULT);
//! assert_eq!(DEVICE.stats().unwrap(), Default::default());
//! ```

use heapless::Vec;
use spin::Mutex;

use crate::coin::PublicCoin;
use crate::crypto::{PublicIdentity, RegistrationProof};
use crate::directory::{self, Claimed, DirectoryCoin, IdempotencyKey, MAX_CLAIM};
use crate::inventory::{self, CachedCoin, ContactMeta, GcReport, Selection, TierRange};
use crate::pins::{self, Pinned, Trust};
use crate::store::{
    Direction, DirectoryStore, InventoryStore, PinStore, SessionBlob, SessionStore, SessionVersion, StoredSession,
    VaultStore, next_session_version,
};
use crate::vault::{KeyStatus, PurgeAction, PurgeReport, Transition, VaultEntry, VaultStats};
use crate::{ContactId, Error, KeyId, Policy, Priority, Tier, TierCounts, UnixSeconds, UserId};

/// The reference store with the default capacities: 64 vault keys, 16 cached coins, 8 contacts,
/// 8 sessions, 16 directory coins, 4 directory identities and 16 claim records of each kind
/// (about 190 KB: a coin is up to 4.6 KB, a session record 2 KB).
pub type DefaultMemoryStore = MemoryStore;

/// A fixed-capacity, allocation-free implementation of [`VaultStore`], [`SessionStore`],
/// [`InventoryStore`] and [`DirectoryStore`].
///
/// Capacities: `KEYS` vault entries, `COINS` cached coins (all contacts together), `CONTACTS`
/// registered contacts, `SESSIONS` session records, `DIRECTORY` directory coins, `USERS` directory
/// identities, and `CLAIMS` quota records and as many idempotency records. Pinned identities
/// share the `SESSIONS` capacity (one pin per peer a session could exist with).
///
/// Visitor callbacks ([`VaultStore::active_ids`], [`InventoryStore::for_each_contact`]) run while
/// the store's lock is held: they must not call back into the same store.
pub struct MemoryStore<
    const KEYS: usize = 64,
    const COINS: usize = 16,
    const CONTACTS: usize = 8,
    const SESSIONS: usize = 8,
    const DIRECTORY: usize = 16,
    const USERS: usize = 4,
    const CLAIMS: usize = 16,
> {
    policy: Policy,
    inner: Mutex<Inner<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>>,
}

struct SessionRecord {
    peer: UserId,
    direction: Direction,
    blob: SessionBlob,
    version: SessionVersion,
}

/// Claims one requester made of one owner's coins of one tier in one quota window.
struct QuotaRecord {
    owner: UserId,
    requester: UserId,
    tier: Tier,
    window: UnixSeconds,
    used: u32,
}

/// The answer to a claim, kept so a retry with the same key gets the same coins.
struct IdempotencyRecord {
    requester: UserId,
    key: IdempotencyKey,
    owner: UserId,
    created_at: UnixSeconds,
    key_ids: Vec<KeyId, MAX_CLAIM>,
}

struct Inner<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> {
    vault: Vec<VaultEntry, KEYS>,
    stats: VaultStats,
    sessions: Vec<SessionRecord, SESSIONS>,
    pins: Vec<Pinned, SESSIONS>,
    contacts: Vec<ContactMeta, CONTACTS>,
    coins: Vec<CachedCoin, COINS>,
    next_coin_seq: u64,
    identities: Vec<PublicIdentity, USERS>,
    directory: Vec<DirectoryCoin, DIRECTORY>,
    next_directory_seq: u64,
    quotas: Vec<QuotaRecord, CLAIMS>,
    replies: Vec<IdempotencyRecord, CLAIMS>,
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    /// An empty store applying `policy`.
    pub const fn new(policy: Policy) -> Self {
        MemoryStore {
            policy,
            inner: Mutex::new(Inner {
                vault: Vec::new(),
                stats: VaultStats { active: TierCounts([0; 3]), total_burned: 0, total_expired: 0 },
                sessions: Vec::new(),
                pins: Vec::new(),
                contacts: Vec::new(),
                coins: Vec::new(),
                next_coin_seq: 0,
                identities: Vec::new(),
                directory: Vec::new(),
                next_directory_seq: 0,
                quotas: Vec::new(),
                replies: Vec::new(),
            }),
        }
    }

    /// The policy this store applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> Default for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    fn default() -> Self {
        Self::new(Policy::DEFAULT)
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> Inner<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    fn vault_index(&self, key_id: &KeyId) -> Option<usize> {
        self.vault.iter().position(|e| e.key_id == *key_id)
    }

    fn session_index(&self, peer: &UserId, direction: Direction) -> Option<usize> {
        self.sessions.iter().position(|s| s.peer == *peer && s.direction == direction)
    }

    /// Whether a session for `peer`/`direction` can be written (it exists, or there is room).
    fn session_fits(&self, peer: &UserId, direction: Direction) -> bool {
        self.session_index(peer, direction).is_some() || !self.sessions.is_full()
    }

    /// The version a compare-and-swap write of this record would get (nothing written).
    fn session_cas(
        &self,
        peer: &UserId,
        direction: Direction,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let current = self.session_index(peer, direction).and_then(|i| self.sessions.get(i)).map(|s| s.version);
        let version = next_session_version(current, expected)?;
        if !self.session_fits(peer, direction) {
            return Err(Error::CapacityFull { what: "session store" });
        }
        Ok(version)
    }

    /// Write a record whose version [`Inner::session_cas`] approved.
    fn write_session(&mut self, peer: &UserId, direction: Direction, blob: &SessionBlob, version: SessionVersion) {
        match self.session_index(peer, direction).and_then(|i| self.sessions.get_mut(i)) {
            Some(r) => {
                r.blob.clone_from(blob);
                r.version = version;
            }
            // `session_cas` checked there is room.
            None => {
                let _ = self.sessions.push(SessionRecord { peer: *peer, direction, blob: blob.clone(), version });
            }
        }
    }

    /// Coins of `contact` and `tier`, oldest first, that are no longer fresh at `now`.
    fn stale_coins(&self, policy: &Policy, contact: &ContactId, tier: Tier, now: UnixSeconds) -> usize {
        self.coins
            .iter()
            .filter(|c| c.coin.owner == *contact && c.coin.tier == tier && c.coin.check_fresh(policy, now).is_err())
            .count()
    }

    fn contact_index(&self, contact: &ContactId) -> Option<usize> {
        self.contacts.iter().position(|m| m.contact_id == *contact)
    }

    fn held(&self, contact: &ContactId) -> TierCounts {
        let mut held = TierCounts::default();
        for c in self.coins.iter().filter(|c| c.coin.owner == *contact) {
            *held.get_mut(c.coin.tier) += 1;
        }
        held
    }

    /// Index of the cached coin of `contact` and `tier` with the lowest (`oldest`) or highest
    /// sequence number.
    fn coin_at_end(&self, contact: &ContactId, tier: Tier, oldest: bool) -> Option<usize> {
        let candidates = self.coins.iter().enumerate().filter(|(_, c)| c.coin.owner == *contact && c.coin.tier == tier);
        if oldest {
            candidates.min_by_key(|(_, c)| c.seq).map(|(i, _)| i)
        } else {
            candidates.max_by_key(|(_, c)| c.seq).map(|(i, _)| i)
        }
    }

    fn pin_index(&self, user: &UserId) -> Option<usize> {
        self.pins.iter().position(|p| p.identity.user_id == *user)
    }

    fn identity_of(&self, user: &UserId) -> Option<&PublicIdentity> {
        self.identities.iter().find(|i| i.user_id == *user)
    }

    fn directory_coin(&self, owner: &UserId, key_id: &KeyId) -> Option<&DirectoryCoin> {
        self.directory.iter().find(|d| d.coin.owner == *owner && d.coin.key_id == *key_id)
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> VaultStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn put(&self, entry: &VaultEntry) -> Result<(), Error> {
        let transition = entry.check_new()?;
        let mut inner = self.inner.lock();
        if inner.vault_index(&entry.key_id).is_some() {
            return Err(Error::KeyAlreadyExists);
        }
        inner.vault.push(entry.clone()).map_err(|_| Error::CapacityFull { what: "vault" })?;
        inner.stats.apply(transition);
        Ok(())
    }

    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        let inner = self.inner.lock();
        Ok(inner.vault.iter().find(|e| e.key_id == *key_id && e.is_usable(&self.policy, now)).cloned())
    }

    fn status(&self, key_id: &KeyId) -> Result<Option<KeyStatus>, Error> {
        let inner = self.inner.lock();
        Ok(inner.vault.iter().find(|e| e.key_id == *key_id).map(|e| e.status))
    }

    fn burn(&self, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        let i = inner.vault_index(key_id).ok_or(Error::KeyNotFound)?;
        let entry = inner.vault.get_mut(i).ok_or(Error::KeyNotFound)?;
        let tier = entry.tier;
        entry.burn(&self.policy, now)?;
        inner.stats.apply(Transition::Burned(tier));
        Ok(())
    }

    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        let mut inner = self.inner.lock();
        let mut report = PurgeReport::default();
        let mut i = 0;
        while i < inner.vault.len() {
            match inner.vault.get(i).map_or(PurgeAction::Keep, |e| e.purge_action(&self.policy, now)) {
                PurgeAction::Keep => i += 1,
                PurgeAction::Expire => {
                    let tier = inner.vault.remove(i).tier;
                    inner.stats.apply(Transition::Expired(tier));
                    report.expired += 1;
                }
                PurgeAction::Delete => {
                    inner.vault.remove(i);
                    report.deleted_burned += 1;
                }
            }
        }
        Ok(report)
    }

    fn stats(&self) -> Result<VaultStats, Error> {
        Ok(self.inner.lock().stats)
    }

    fn active_ids(&self, tier: Option<Tier>, visit: &mut dyn FnMut(KeyId)) -> Result<(), Error> {
        let inner = self.inner.lock();
        inner
            .vault
            .iter()
            .filter(|e| e.status == KeyStatus::Active && tier.is_none_or(|t| e.tier == t))
            .for_each(|e| visit(e.key_id));
        Ok(())
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> SessionStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    fn load_session(&self, peer: &UserId, direction: Direction) -> Result<Option<StoredSession>, Error> {
        let inner = self.inner.lock();
        Ok(inner
            .session_index(peer, direction)
            .and_then(|i| inner.sessions.get(i))
            .map(|r| StoredSession { blob: r.blob.clone(), version: r.version }))
    }

    fn save_session(
        &self,
        peer: &UserId,
        direction: Direction,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let mut inner = self.inner.lock();
        let version = inner.session_cas(peer, direction, expected)?;
        inner.write_session(peer, direction, blob, version);
        Ok(version)
    }

    fn burn_and_save_session(
        &self,
        key_id: &KeyId,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let mut inner = self.inner.lock();
        let i = inner.vault_index(key_id).ok_or(Error::KeyNotFound)?;
        // Decide both halves first, so that neither is written unless both can be.
        let mut burned = inner.vault.get(i).ok_or(Error::KeyNotFound)?.clone();
        burned.burn(&self.policy, now)?;
        let version = inner.session_cas(peer, Direction::Receive, expected)?;
        inner.write_session(peer, Direction::Receive, blob, version);
        let tier = burned.tier;
        *inner.vault.get_mut(i).ok_or(Error::KeyNotFound)? = burned;
        inner.stats.apply(Transition::Burned(tier));
        Ok(version)
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> PinStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn pin_identity(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, Error> {
        let mut inner = self.inner.lock();
        let at = inner.pin_index(&identity.user_id);
        match pins::decide(at.and_then(|i| inner.pins.get(i)), identity, trust)? {
            None => Ok(at.and_then(|i| inner.pins.get(i)).cloned().ok_or(Error::Malformed)?),
            Some(pin) => {
                match at {
                    Some(i) => *inner.pins.get_mut(i).ok_or(Error::Malformed)? = pin.clone(),
                    None => {
                        inner.pins.push(pin.clone()).map_err(|_| Error::CapacityFull { what: "pinned identities" })?
                    }
                }
                Ok(pin)
            }
        }
    }

    fn pinned(&self, user: &UserId) -> Result<Option<Pinned>, Error> {
        let inner = self.inner.lock();
        Ok(inner.pin_index(user).and_then(|i| inner.pins.get(i)).cloned())
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> InventoryStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        if inner.contact_index(&meta.contact_id).is_some() {
            return Ok(false);
        }
        inner.contacts.push(meta.clone()).map_err(|_| Error::CapacityFull { what: "inventory contacts" })?;
        Ok(true)
    }

    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
        let inner = self.inner.lock();
        Ok(inner.contact_index(contact).and_then(|i| inner.contacts.get(i)).cloned())
    }

    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Error> {
        let mut inner = self.inner.lock();
        let ci = inner.contact_index(contact).ok_or(Error::ContactNotRegistered)?;
        let evict = inventory::trim_plan(&self.policy, priority, &inner.held(contact));
        for tier in Tier::ALL {
            for _ in 0..evict.get(tier) {
                if let Some(i) = inner.coin_at_end(contact, tier, false) {
                    inner.coins.swap_remove(i);
                }
            }
        }
        inner.contacts.get_mut(ci).ok_or(Error::ContactNotRegistered)?.priority = priority;
        Ok(evict.total())
    }

    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        let meta = inner.contact_index(contact).and_then(|i| inner.contacts.get(i));
        let held = inner.held(contact).get(coin.tier);
        let duplicate = inner.coins.iter().any(|c| c.coin.owner == *contact && c.coin.key_id == coin.key_id);
        inventory::admit(&self.policy, meta, coin, held, duplicate, now)?;
        let seq = inner.next_coin_seq;
        inner
            .coins
            .push(CachedCoin { coin: coin.clone(), seq, fetched_at: now })
            .map_err(|_| Error::CapacityFull { what: "inventory coins" })?;
        inner.next_coin_seq = seq + 1;
        Ok(())
    }

    fn select_coin(
        &self,
        contact: &ContactId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<Selection, Error> {
        let mut inner = self.inner.lock();
        let ci = inner.contact_index(contact).ok_or(Error::ContactNotRegistered)?;
        let range = TierRange { desired, lowest };
        let mut selection = Selection::default();
        for tier in range.tiers() {
            // Coins past their selection limit go first: they can never be used.
            selection.wasted += inner.stale_coins(&self.policy, contact, tier, now) as u32;
            let policy = &self.policy;
            inner.coins.retain(|c| {
                !(c.coin.owner == *contact && c.coin.tier == tier && c.coin.check_fresh(policy, now).is_err())
            });
            if let Some(i) = inner.coin_at_end(contact, tier, true) {
                selection.coin = Some(inner.coins.swap_remove(i));
                inner.contacts.get_mut(ci).ok_or(Error::ContactNotRegistered)?.last_msg_at = now;
                break;
            }
        }
        Ok(selection)
    }

    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        let meta = inner.contact_index(contact).and_then(|i| inner.contacts.get(i));
        let held = inner.held(contact).get(coin.coin.tier);
        let duplicate = inner.coins.iter().any(|c| c.coin.owner == *contact && c.coin.key_id == coin.coin.key_id);
        if inventory::admit(&self.policy, meta, &coin.coin, held, duplicate, coin.fetched_at).is_err() {
            return Ok(false);
        }
        // Its own `seq` puts it back at its FIFO place.
        inner.coins.push(coin.clone()).map_err(|_| Error::CapacityFull { what: "inventory coins" })?;
        Ok(true)
    }

    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        match inner.coins.iter().position(|c| c.coin.owner == *contact && c.coin.key_id == *key_id) {
            Some(i) => {
                inner.coins.swap_remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        Ok(self.inner.lock().held(contact))
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        let inner = self.inner.lock();
        for meta in &inner.contacts {
            visit(meta, inner.held(&meta.contact_id));
        }
        Ok(())
    }

    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Error> {
        let mut inner = self.inner.lock();
        let mut report = GcReport::default();
        for ci in 0..inner.contacts.len() {
            let Some(meta) = inner.contacts.get(ci) else { continue };
            if !inventory::is_inactive(&self.policy, meta.last_msg_at, now) {
                continue;
            }
            let id = meta.contact_id;
            report.add_contact(&inner.held(&id));
            if !dry_run {
                inner.coins.retain(|c| c.coin.owner != id);
                inner.contacts.get_mut(ci).ok_or(Error::ContactNotRegistered)?.priority = Priority::Stranger;
            }
        }
        Ok(report)
    }

    fn collect_contact(&self, contact: &ContactId) -> Result<GcReport, Error> {
        let mut inner = self.inner.lock();
        let ci = inner.contact_index(contact).ok_or(Error::ContactNotRegistered)?;
        let mut report = GcReport::default();
        report.add_contact(&inner.held(contact));
        inner.coins.retain(|c| c.coin.owner != *contact);
        inner.contacts.get_mut(ci).ok_or(Error::ContactNotRegistered)?.priority = Priority::Stranger;
        Ok(report)
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> DirectoryStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Error> {
        directory::verify_registration(identity, proof)?;
        let mut inner = self.inner.lock();
        match inner.identity_of(&identity.user_id) {
            Some(known) if known == identity => Ok(()),
            Some(_) => Err(Error::KeyAlreadyExists),
            None => inner
                .identities
                .push(identity.clone())
                .map_err(|_| Error::CapacityFull { what: "directory identities" }),
        }
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, Error> {
        Ok(self.inner.lock().identity_of(user).cloned())
    }

    fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, Error> {
        // Signatures are checked outside the lock (ML-DSA is slow); a registered identity never
        // changes, so the check still holds when the batch is written below.
        let identity = self.identity(owner)?.ok_or(Error::UnknownUser)?;
        directory::verify_upload(&self.policy, &identity, coins, now)?;
        let mut inner = self.inner.lock();
        let is_new = |inner: &Inner<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>, i: usize| {
            let Some((c, earlier)) = coins.get(..=i).and_then(|upto| upto.split_last()) else { return false };
            inner.directory_coin(owner, &c.key_id).is_none() && !earlier.iter().any(|p| p.key_id == c.key_id)
        };
        let fresh = (0..coins.len()).filter(|i| is_new(&inner, *i)).count();
        if inner.directory.len() + fresh > DIRECTORY {
            return Err(Error::CapacityFull { what: "directory coins" });
        }
        for (i, coin) in coins.iter().enumerate() {
            if !is_new(&inner, i) {
                continue;
            }
            let seq = inner.next_directory_seq;
            inner.next_directory_seq = seq + 1;
            let record =
                DirectoryCoin { coin: coin.clone(), uploaded_at: now, seq, claimed_by: None, claimed_at: None };
            inner.directory.push(record).map_err(|_| Error::CapacityFull { what: "directory coins" })?;
        }
        Ok(fresh as u32)
    }

    fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Claimed, Error> {
        let mut inner = self.inner.lock();
        if let Some(key) = idempotency
            && let Some(reply) = inner.replies.iter().find(|r| r.requester == *requester && r.key == key)
        {
            let mut again = Claimed::new();
            for id in &reply.key_ids {
                if let Some(d) = inner.directory_coin(&reply.owner, id) {
                    // `key_ids` holds at most MAX_CLAIM ids, the capacity of `again`.
                    let _ = again.push(d.coin.clone());
                }
            }
            return Ok(again);
        }

        let window = directory::quota_window(&self.policy, now);
        let quota = inner.quotas.iter().position(|q| q.owner == *owner && q.requester == *requester && q.tier == tier);
        let used = quota.and_then(|q| inner.quotas.get(q)).filter(|q| q.window == window).map_or(0, |q| q.used);
        let grant = directory::quota_grant(&self.policy, tier, used, count)?;

        // The oldest unclaimed coins of this owner and tier, in upload order.
        let mut picked: Vec<usize, MAX_CLAIM> = Vec::new();
        while (picked.len() as u32) < grant {
            let next = inner
                .directory
                .iter()
                .enumerate()
                .filter(|(i, d)| {
                    d.coin.owner == *owner
                        && d.coin.tier == tier
                        && d.claimed_by.is_none()
                        && directory::claimable(&self.policy, &d.coin, now)
                        && !picked.contains(i)
                })
                .min_by_key(|(_, d)| d.seq)
                .map(|(i, _)| i);
            match next {
                Some(i) if picked.push(i).is_ok() => {}
                _ => break,
            }
        }

        // Find room for the records before anything changes, so a full table changes nothing.
        let quota_slot = match quota {
            Some(q) => Some(q),
            None if picked.is_empty() => None,
            None => match inner.quotas.iter().position(|q| q.window != window) {
                Some(stale) => Some(stale),
                None if !inner.quotas.is_full() => None,
                None => return Err(Error::CapacityFull { what: "directory claim records" }),
            },
        };
        let reply_slot = match idempotency {
            None => None,
            Some(_) => {
                match inner.replies.iter().position(|r| directory::claim_expired(&self.policy, r.created_at, now)) {
                    Some(old) => Some(old),
                    None if !inner.replies.is_full() => None,
                    None => return Err(Error::CapacityFull { what: "directory claim records" }),
                }
            }
        };

        let mut claimed = Claimed::new();
        let mut key_ids: Vec<KeyId, MAX_CLAIM> = Vec::new();
        for &i in &picked {
            let Some(d) = inner.directory.get_mut(i) else { continue };
            d.claimed_by = Some(*requester);
            d.claimed_at = Some(now);
            // Both hold at most MAX_CLAIM entries, as does `picked`.
            let _ = key_ids.push(d.coin.key_id);
            let _ = claimed.push(d.coin.clone());
        }
        if !picked.is_empty() {
            let record =
                QuotaRecord { owner: *owner, requester: *requester, tier, window, used: used + picked.len() as u32 };
            match quota_slot {
                Some(q) => {
                    *inner.quotas.get_mut(q).ok_or(Error::CapacityFull { what: "directory claim records" })? = record
                }
                // Room was checked above.
                None => {
                    let _ = inner.quotas.push(record);
                }
            }
        }
        if let Some(key) = idempotency {
            let record = IdempotencyRecord { requester: *requester, key, owner: *owner, created_at: now, key_ids };
            match reply_slot {
                Some(r) => {
                    *inner.replies.get_mut(r).ok_or(Error::CapacityFull { what: "directory claim records" })? = record
                }
                // Room was checked above.
                None => {
                    let _ = inner.replies.push(record);
                }
            }
        }
        Ok(claimed)
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, Error> {
        let inner = self.inner.lock();
        let mut counts = TierCounts::default();
        for d in inner.directory.iter().filter(|d| d.coin.owner == *owner && d.claimed_by.is_none()) {
            *counts.get_mut(d.coin.tier) += 1;
        }
        Ok(counts)
    }

    fn purge_stale(&self, now: UnixSeconds) -> Result<u32, Error> {
        let mut inner = self.inner.lock();
        let before = inner.directory.len();
        inner.directory.retain(|d| d.claimed_by.is_some() || !directory::is_stale(&self.policy, d, now));
        Ok((before - inner.directory.len()) as u32)
    }

    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, Error> {
        let mut inner = self.inner.lock();
        let before = inner.directory.len();
        let policy = &self.policy;
        inner.directory.retain(|d| !d.claimed_at.is_some_and(|at| directory::claim_expired(policy, at, now)));
        inner.replies.retain(|r| !directory::claim_expired(policy, r.created_at, now));
        Ok((before - inner.directory.len()) as u32)
    }
}
