//! aqm-storage-redb's record decoders on arbitrary bytes, through the public API: the input is a
//! list of (table, key, value) writes of raw bytes into the tables of an in-memory `RedbStore`
//! (via `RedbStore::database`, with the crate's table names and key types), then every read the
//! stores offer runs over them: the audit (every record of every table), the vault, sessions,
//! pins, inventory and directory reads, and the sweeps (purge, garbage collection). A record that
//! does not decode must come back as `Error::Corrupt`, never a panic.
//! Input: repeated `table (1) ‖ key (1) ‖ len (1) ‖ value (len)`.
#![no_main]

use aqm_core::store::{Direction, DirectoryStore, InventoryStore, PinStore, SessionStore, VaultStore};
use aqm_core::{KeyId, Policy, Tier, UserId};
use aqm_storage_redb::RedbStore;
use libfuzzer_sys::fuzz_target;
use redb::TableDefinition;

type Id = [u8; 16];
// Format 4's tables: keys are keyed hashes (`Ix` = bytes, `(Ix, seq)` for FIFO tables) and
// values sealed records. The store seals under a random key, so the fuzzer's keys never match a
// lookup: what it reaches is every scan (audit, purge, garbage collection, visits) opening and
// decoding arbitrary stored bytes, which must come back as `Error::Corrupt`, never a panic.
type Ix = &'static [u8];
const VAULT: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("vault");
const COUNTERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("counters");
const SESSIONS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("sessions");
const PINS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("pins");
const CONTACTS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("contacts");
const INV_COINS: TableDefinition<'_, (Ix, u64), &[u8]> = TableDefinition::new("inventory_coins");
const INV_INDEX: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("inventory_index");
const DIR_IDENTITIES: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_identities");
const DIR_UNCLAIMED: TableDefinition<'_, (Ix, u64), &[u8]> = TableDefinition::new("directory_unclaimed");
const DIR_CLAIMED: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_claimed");
const DIR_KEYS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_keys");
const DIR_IDEMPOTENCY: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_idempotency");

/// The ids the reads use: few, so that the stores' lookups run.
fn id(k: u8) -> Id {
    [k % 4; 16]
}

fn write(store: &RedbStore, mut data: &[u8]) -> Result<(), redb::Error> {
    let tx = store.database().begin_write()?;
    while let [table, key, len, rest @ ..] = data {
        let n = (*len as usize).min(rest.len());
        let (value, tail) = rest.split_at(n);
        data = tail;
        let k: &[u8] = &[*key; 32];
        let seq = u64::from(key >> 4);
        match table % 12 {
            0 => drop(tx.open_table(VAULT)?.insert(k, value)?),
            1 => drop(tx.open_table(COUNTERS)?.insert("vault", value)?),
            2 => drop(tx.open_table(SESSIONS)?.insert(k, value)?),
            3 => drop(tx.open_table(PINS)?.insert(k, value)?),
            4 => drop(tx.open_table(CONTACTS)?.insert(k, value)?),
            5 => drop(tx.open_table(INV_COINS)?.insert((k, seq), value)?),
            6 => drop(tx.open_table(INV_INDEX)?.insert(k, value)?),
            7 => drop(tx.open_table(DIR_IDENTITIES)?.insert(k, value)?),
            8 => drop(tx.open_table(DIR_UNCLAIMED)?.insert((k, seq), value)?),
            9 => drop(tx.open_table(DIR_CLAIMED)?.insert(k, value)?),
            10 => drop(tx.open_table(DIR_KEYS)?.insert(k, value)?),
            _ => drop(tx.open_table(DIR_IDEMPOTENCY)?.insert(k, value)?),
        }
    }
    tx.commit()?;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let store = RedbStore::in_memory(Policy::DEFAULT).expect("an in-memory store");
    write(&store, data).expect("raw writes succeed");
    let _ = store.audit();
    let now = 1_700_000_000;
    for k in 0..4u8 {
        let (user, key) = (UserId(id(k)), KeyId(id(k)));
        let _ = store.get(&key, now);
        let _ = store.status(&key);
        let _ = store.load_session(&user, Direction::Send);
        let _ = store.load_session(&user, Direction::Receive);
        let _ = store.pinned(&user);
        let _ = store.contact(&user);
        let _ = store.counts(&user);
        let _ = store.identity(&user);
        let _ = store.available(&user);
        let _ = store.select_coin(&user, Tier::Gold, Tier::Bronze, now);
        let _ = store.consume(&user, &key);
        let _ = store.claim(&user, &UserId(id(k + 1)), Tier::Silver, 2, Some(id(k + 1)), now);
    }
    let _ = store.stats();
    let _ = store.active_ids(None, &mut |_| {});
    let _ = store.for_each_contact(&mut |_, _| {});
    let _ = store.collect_garbage(now, true);
    let _ = store.purge(now);
    let _ = store.collect_garbage(now, false);
    let _ = store.purge_stale(now);
    let _ = store.hard_delete_claimed(now);
    let _ = store.audit();
});
