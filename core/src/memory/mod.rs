//! The in-memory reference store: every storage trait over fixed-capacity `heapless` vectors,
//! no allocator, behind one `spin::Mutex` so it is `Sync`.
//!
//! It is the model implementation of "read a snapshot, ask the core, apply the answer": each
//! trait method takes the lock once, reads what it needs, calls the core's rule function
//! ([`crate::vault`], [`crate::inventory`], [`crate::directory`]) and writes the decision before
//! the lock is released, so every method is one atomic step. Counters are only ever moved by
//! [`VaultStats::apply`](crate::vault::VaultStats::apply), never recomputed, which is what makes the conformance kit's
//! "counters equal a recount" checks meaningful.
//!
//! Capacities are const generics with defaults sized for tests and the host simulator; a
//! microcontroller picks smaller ones. A full table refuses with [`Error::CapacityFull`](crate::Error::CapacityFull) and
//! changes nothing.
//!
//! One file per concern, as in the redb crate (`vault`, `session`, `pins`, `inventory`,
//! `directory`); this module holds the struct, its tables and the capacities.
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

mod directory;
mod inventory;
mod pins;
mod session;
mod vault;

use heapless::Vec;
use spin::Mutex;

use crate::crypto::PublicIdentity;
use crate::directory::{DirectoryCoin, IdempotencyKey, MAX_CLAIM};
use crate::inventory::{CachedCoin, ContactMeta};
use crate::pins::Pinned;
use crate::store::{Direction, HasPolicy, SessionBlob, SessionVersion};
use crate::vault::{LastResortOpens, VaultEntry, VaultStats};
use crate::{KeyId, Policy, Tier, TierCounts, UnixSeconds, UserId};

/// Last-resort vault entries whose opens the reference store can keep at once (a live coin per
/// tier, its predecessor while it drains, and room for early rotations). Retired and deleted
/// entries free their slot.
pub const LAST_RESORT_SLOTS: usize = 8;

/// The reference store with the default capacities: 64 vault keys, 16 cached coins, 8 contacts,
/// 8 sessions, 16 directory coins, 4 directory identities and 16 claim records of each kind
/// (about 190 KB: a coin is up to 4.6 KB, a session record 2 KB).
pub type DefaultMemoryStore = MemoryStore;

/// A fixed-capacity, allocation-free implementation of [`VaultStore`](crate::store::VaultStore),
/// [`SessionStore`](crate::store::SessionStore), [`PinStore`](crate::store::PinStore),
/// [`InventoryStore`](crate::store::InventoryStore) and [`DirectoryStore`](crate::store::DirectoryStore).
///
/// Capacities: `KEYS` vault entries, `COINS` cached coins (all contacts together), `CONTACTS`
/// registered contacts, `SESSIONS` session records, `DIRECTORY` directory coins, `USERS` directory
/// identities, and `CLAIMS` quota records and as many idempotency records. Pinned identities
/// share the `SESSIONS` capacity (one pin per peer a session could exist with).
///
/// Visitor callbacks ([`active_ids`](crate::store::VaultStore::active_ids),
/// [`for_each_contact`](crate::store::InventoryStore::for_each_contact)) run while
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
    last_resort_opens: Vec<(KeyId, LastResortOpens), LAST_RESORT_SLOTS>,
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
                last_resort_opens: Vec::new(),
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
> HasPolicy for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    fn policy(&self) -> &Policy {
        &self.policy
    }
}
