//! Table definitions, the format record and the sequences.
//!
//! Keys are typed redb tuples of raw ids, tier bytes and sequence numbers, so range scans follow
//! the FIFO order; values are the crate's own records ([`crate::records`]), postcard-encoded.

use aqm_core::vault::VaultStats;
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::error::{Ctx, Error};
use crate::records::{self, StatsRecord};

/// Raw 16-byte id (user id, contact id or key id).
pub(crate) type Id = [u8; 16];

/// Vault: key id → [`aqm_core::vault::VaultEntry`].
pub(crate) const VAULT: TableDefinition<'_, Id, &[u8]> = TableDefinition::new("vault");
/// Named counters: `"vault"` → [`VaultStats`].
pub(crate) const COUNTERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("counters");
/// Named insertion sequences (FIFO order, never wall-clock).
pub(crate) const SEQUENCES: TableDefinition<'_, &str, u64> = TableDefinition::new("sequences");
/// Sessions: (peer, direction byte) → (version, sealed session blob); saves are compare-and-swap
/// on the version.
pub(crate) const SESSIONS: TableDefinition<'_, (Id, u8), (u64, &[u8])> = TableDefinition::new("sessions");
/// Pinned identities: user id → [`aqm_core::pins::Pinned`].
pub(crate) const PINS: TableDefinition<'_, Id, &[u8]> = TableDefinition::new("pins");
/// The format record: `"format"` → [`FORMAT_VERSION`].
pub(crate) const FORMAT: TableDefinition<'_, &str, u32> = TableDefinition::new("aqm_format");

/// The at-rest format this build writes and reads. 3 = protocol v2 (coins with expiry, versioned
/// sessions, pinned identities) with every value one of the crate's own records
/// (module `records`); 2 was the same tables holding postcard encodings of the core's types,
/// which a change to a core struct could silently break. Files of another version are refused
/// at open, naming both versions; `tests/golden/` holds a file of this one.
pub const FORMAT_VERSION: u32 = 3;
/// Contacts: contact id → [`aqm_core::inventory::ContactMeta`].
pub(crate) const CONTACTS: TableDefinition<'_, Id, &[u8]> = TableDefinition::new("contacts");
/// Cached coins: (contact, tier byte, seq) → [`aqm_core::inventory::CachedCoin`].
pub(crate) const INV_COINS: TableDefinition<'_, (Id, u8, u64), &[u8]> = TableDefinition::new("inventory_coins");
/// Where a cached coin sits: (contact, key id) → (tier byte, seq).
pub(crate) const INV_INDEX: TableDefinition<'_, (Id, Id), (u8, u64)> = TableDefinition::new("inventory_index");
/// Registered identities: user id → [`aqm_core::crypto::PublicIdentity`].
pub(crate) const DIR_IDENTITIES: TableDefinition<'_, Id, &[u8]> = TableDefinition::new("directory_identities");
/// Unclaimed coins: (owner, tier byte, seq) → [`aqm_core::directory::DirectoryCoin`].
pub(crate) const DIR_UNCLAIMED: TableDefinition<'_, (Id, u8, u64), &[u8]> = TableDefinition::new("directory_unclaimed");
/// Claimed coins awaiting hard delete: (owner, key id) → [`aqm_core::directory::DirectoryCoin`].
pub(crate) const DIR_CLAIMED: TableDefinition<'_, (Id, Id), &[u8]> = TableDefinition::new("directory_claimed");
/// Every coin the directory holds: (owner, key id) → (tier byte, seq, claimed).
pub(crate) const DIR_KEYS: TableDefinition<'_, (Id, Id), (u8, u64, bool)> = TableDefinition::new("directory_keys");
/// Anti-drain quota use: (owner, requester, tier byte, window start) → coins claimed.
pub(crate) const DIR_QUOTA: TableDefinition<'_, (Id, Id, u8, u64), u32> = TableDefinition::new("directory_quota");
/// Idempotent claims: (requester, idempotency key) → the claimed coins.
pub(crate) const DIR_IDEMPOTENCY: TableDefinition<'_, (Id, [u8; 16]), &[u8]> =
    TableDefinition::new("directory_idempotency");

/// Sequence name of the inventory FIFO.
pub(crate) const SEQ_INVENTORY: &str = "inventory";
/// Sequence name of the directory upload order.
pub(crate) const SEQ_DIRECTORY: &str = "directory";
/// Counter name of the vault statistics.
pub(crate) const COUNTER_VAULT: &str = "vault";

/// Create every table so that read transactions never meet a missing one.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), Error> {
    tx.open_table(VAULT).ctx("create table vault")?;
    tx.open_table(COUNTERS).ctx("create table counters")?;
    tx.open_table(SEQUENCES).ctx("create table sequences")?;
    tx.open_table(SESSIONS).ctx("create table sessions")?;
    tx.open_table(PINS).ctx("create table pins")?;
    tx.open_table(CONTACTS).ctx("create table contacts")?;
    tx.open_table(INV_COINS).ctx("create table inventory_coins")?;
    tx.open_table(INV_INDEX).ctx("create table inventory_index")?;
    tx.open_table(DIR_IDENTITIES).ctx("create table directory_identities")?;
    tx.open_table(DIR_UNCLAIMED).ctx("create table directory_unclaimed")?;
    tx.open_table(DIR_CLAIMED).ctx("create table directory_claimed")?;
    tx.open_table(DIR_KEYS).ctx("create table directory_keys")?;
    tx.open_table(DIR_QUOTA).ctx("create table directory_quota")?;
    tx.open_table(DIR_IDEMPOTENCY).ctx("create table directory_idempotency")?;
    Ok(())
}

/// Decode a tier byte stored in a key of `table`.
pub(crate) fn tier(table: &'static str, byte: u8) -> Result<aqm_core::Tier, Error> {
    aqm_core::Tier::try_from(byte).map_err(|_| Error::Corrupt { table, detail: "unknown tier byte in key" })
}

/// Take the next value of a named sequence (first value 1).
pub(crate) fn next_seq(tx: &WriteTransaction, name: &'static str) -> Result<u64, Error> {
    let mut t = tx.open_table(SEQUENCES).ctx("open table sequences")?;
    let next = t.get(name).ctx("read table sequences")?.map_or(0, |g| g.value()) + 1;
    t.insert(name, next).ctx("write table sequences")?;
    Ok(next)
}

/// The stored vault counters.
pub(crate) fn vault_stats<T: ReadableTable<&'static str, &'static [u8]>>(t: &T) -> Result<VaultStats, Error> {
    match t.get(COUNTER_VAULT).ctx("read table counters")? {
        Some(g) => records::decode::<StatsRecord>("counters", g.value()),
        None => Ok(VaultStats::default()),
    }
}

/// Replace the stored vault counters.
pub(crate) fn put_vault_stats(t: &mut Table<'_, &'static str, &'static [u8]>, s: &VaultStats) -> Result<(), Error> {
    let bytes = records::encode::<StatsRecord>("counters", s)?;
    t.insert(COUNTER_VAULT, bytes.as_slice()).ctx("write table counters")?;
    Ok(())
}
