//! Table definitions, the format record and the sequences.
//!
//! Keys are keyed hashes of the ids they stand for (byte strings), with a sequence number where a
//! table is a FIFO, so range scans of one hash follow the insertion order; values are the crate's
//! own records ([`crate::records`]), postcard-encoded and sealed ([`crate::sealing`]).

use aqm_core::vault::VaultStats;
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::error::{Ctx, Error};
use crate::records::{self, StatsRecord};
use crate::sealing::Sealing;

/// A table key: the keyed hash of the ids it stands for ([`crate::sealing::Sealing::ix`]), or
/// their concatenation in an unsealed file.
pub(crate) type Ix = &'static [u8];
/// A FIFO table key: `(index, seq)`, range scans of one index follow the insertion order.
pub(crate) type SeqKey = (Ix, u64);

/// Index domains, one per record kind: ids of different kinds never meet in one table key.
pub(crate) mod domain {
    /// Vault: key id.
    pub(crate) const VAULT: &[u8] = b"vault";
    /// Sessions: peer id ‖ direction byte.
    pub(crate) const SESSION: &[u8] = b"session";
    /// Pins: user id.
    pub(crate) const PIN: &[u8] = b"pin";
    /// Contacts: contact id.
    pub(crate) const CONTACT: &[u8] = b"contact";
    /// Cached coins: contact id ‖ tier byte.
    pub(crate) const INVENTORY: &[u8] = b"inventory";
    /// Cached coin slots: contact id ‖ key id.
    pub(crate) const INVENTORY_INDEX: &[u8] = b"inventory-index";
    /// Directory identities: user id.
    pub(crate) const DIR_IDENTITY: &[u8] = b"directory-identity";
    /// Unclaimed directory coins: owner ‖ tier byte.
    pub(crate) const DIR_COINS: &[u8] = b"directory-coins";
    /// Directory coins by key: owner ‖ key id.
    pub(crate) const DIR_KEY: &[u8] = b"directory-key";
    /// Quota use: owner ‖ requester ‖ tier byte.
    pub(crate) const DIR_QUOTA: &[u8] = b"directory-quota";
    /// Idempotent claims: requester ‖ idempotency key.
    pub(crate) const DIR_IDEMPOTENCY: &[u8] = b"directory-idempotency";
    /// An owner's last-resort coin slot: owner ‖ tier byte.
    pub(crate) const DIR_LAST_RESORT: &[u8] = b"directory-last-resort";
}

/// Vault: index(key id) → [`aqm_core::vault::VaultEntry`].
pub(crate) const VAULT: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("vault");
/// The kind of a vault entry that is not one-time: index(key id), as in [`VAULT`] → the kind
/// byte. No row means one-time, which is what every entry of a file written before this table
/// existed is (those files then open unchanged: no format bump).
pub(crate) const VAULT_KINDS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("vault_kinds");
/// What a last-resort key has opened: index(key id), as in [`VAULT`] →
/// [`aqm_core::vault::LastResortOpens`]. No row means nothing opened yet; the row goes when the
/// key burns, retires or is purged.
pub(crate) const LR_OPENS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("last_resort_opens");
/// Named counters: `"vault"` → [`VaultStats`].
pub(crate) const COUNTERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("counters");
/// Named insertion sequences (FIFO order, never wall-clock). In clear: see the README.
pub(crate) const SEQUENCES: TableDefinition<'_, &str, u64> = TableDefinition::new("sequences");
/// Sessions: index(peer ‖ direction byte) → (version, sealed session blob); saves are
/// compare-and-swap on the version.
pub(crate) const SESSIONS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("sessions");
/// Pinned identities: index(user id) → [`aqm_core::pins::Pinned`].
pub(crate) const PINS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("pins");
/// The format record: `"format"` → [`FORMAT_VERSION`], `"metadata_sealed"` → 1 or 0.
pub(crate) const FORMAT: TableDefinition<'_, &str, u32> = TableDefinition::new("aqm_format");
/// `"key_check"` → the keyed check value of the metadata key (sealed files only).
pub(crate) const AT_REST: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("aqm_at_rest");

/// The at-rest format this build writes and reads. 4 = format 3's records with every table key
/// that held a contact, peer or key id replaced by a keyed hash and every value sealed under
/// the device's metadata key (docs/protocol.md §6), or, in a file created unsealed, the same
/// tables in clear; 3 was the crate's own records (module `records`) keyed by raw ids and stored
/// in clear; 2 held postcard encodings of the core's types. Files of another version are refused
/// at open, naming both versions, and left untouched; `tests/golden/` holds a file of format 3
/// (refused) and one of this one.
pub const FORMAT_VERSION: u32 = 4;
/// Contacts: index(contact id) → [`aqm_core::inventory::ContactMeta`].
pub(crate) const CONTACTS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("contacts");
/// Cached coins: (index(contact ‖ tier byte), seq) → [`aqm_core::inventory::CachedCoin`].
pub(crate) const INV_COINS: TableDefinition<'_, SeqKey, &[u8]> = TableDefinition::new("inventory_coins");
/// Where a cached coin sits: index(contact ‖ key id) → (tier, seq).
pub(crate) const INV_INDEX: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("inventory_index");
/// Registered identities: index(user id) → [`aqm_core::crypto::PublicIdentity`].
pub(crate) const DIR_IDENTITIES: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_identities");
/// Unclaimed coins: (index(owner ‖ tier byte), seq) → [`aqm_core::directory::DirectoryCoin`].
pub(crate) const DIR_UNCLAIMED: TableDefinition<'_, SeqKey, &[u8]> = TableDefinition::new("directory_unclaimed");
/// Claimed coins awaiting hard delete: index(owner ‖ key id) → [`aqm_core::directory::DirectoryCoin`].
pub(crate) const DIR_CLAIMED: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_claimed");
/// Every coin the directory holds: index(owner ‖ key id) → (tier, seq, claimed).
pub(crate) const DIR_KEYS: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_keys");
/// Anti-drain quota use: (index(owner ‖ requester ‖ tier byte), window start) → coins claimed.
pub(crate) const DIR_QUOTA: TableDefinition<'_, SeqKey, &[u8]> = TableDefinition::new("directory_quota");
/// Idempotent claims: index(requester ‖ idempotency key) → the claimed coins.
pub(crate) const DIR_IDEMPOTENCY: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_idempotency");
/// Each owner's one live last-resort coin per tier: index(owner ‖ tier byte) →
/// [`aqm_core::directory::DirectoryCoin`] (never claimed: it is handed out to many).
pub(crate) const DIR_LAST_RESORT: TableDefinition<'_, Ix, &[u8]> = TableDefinition::new("directory_last_resort");

/// Sequence name of the inventory FIFO.
pub(crate) const SEQ_INVENTORY: &str = "inventory";
/// Sequence name of the directory upload order.
pub(crate) const SEQ_DIRECTORY: &str = "directory";
/// Counter name of the vault statistics.
pub(crate) const COUNTER_VAULT: &str = "vault";

/// Create every table so that read transactions never meet a missing one.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), Error> {
    tx.open_table(VAULT).ctx("create table vault")?;
    tx.open_table(VAULT_KINDS).ctx("create table vault_kinds")?;
    tx.open_table(LR_OPENS).ctx("create table last_resort_opens")?;
    tx.open_table(COUNTERS).ctx("create table counters")?;
    tx.open_table(SEQUENCES).ctx("create table sequences")?;
    tx.open_table(SESSIONS).ctx("create table sessions")?;
    tx.open_table(PINS).ctx("create table pins")?;
    tx.open_table(AT_REST).ctx("create table aqm_at_rest")?;
    tx.open_table(CONTACTS).ctx("create table contacts")?;
    tx.open_table(INV_COINS).ctx("create table inventory_coins")?;
    tx.open_table(INV_INDEX).ctx("create table inventory_index")?;
    tx.open_table(DIR_IDENTITIES).ctx("create table directory_identities")?;
    tx.open_table(DIR_UNCLAIMED).ctx("create table directory_unclaimed")?;
    tx.open_table(DIR_CLAIMED).ctx("create table directory_claimed")?;
    tx.open_table(DIR_KEYS).ctx("create table directory_keys")?;
    tx.open_table(DIR_QUOTA).ctx("create table directory_quota")?;
    tx.open_table(DIR_IDEMPOTENCY).ctx("create table directory_idempotency")?;
    tx.open_table(DIR_LAST_RESORT).ctx("create table directory_last_resort")?;
    Ok(())
}

/// Take the next value of a named sequence (first value 1).
pub(crate) fn next_seq(tx: &WriteTransaction, name: &'static str) -> Result<u64, Error> {
    let mut t = tx.open_table(SEQUENCES).ctx("open table sequences")?;
    let next = t.get(name).ctx("read table sequences")?.map_or(0, |g| g.value()) + 1;
    t.insert(name, next).ctx("write table sequences")?;
    Ok(next)
}

/// The stored vault counters.
pub(crate) fn vault_stats<T: ReadableTable<&'static str, &'static [u8]>>(
    sealing: &Sealing,
    t: &T,
) -> Result<VaultStats, Error> {
    match t.get(COUNTER_VAULT).ctx("read table counters")? {
        Some(g) => records::decode::<StatsRecord>(sealing, "counters", COUNTER_VAULT.as_bytes(), g.value()),
        None => Ok(VaultStats::default()),
    }
}

/// Replace the stored vault counters.
pub(crate) fn put_vault_stats(
    sealing: &Sealing,
    t: &mut Table<'_, &'static str, &'static [u8]>,
    s: &VaultStats,
) -> Result<(), Error> {
    let bytes = records::encode::<StatsRecord>(sealing, "counters", COUNTER_VAULT.as_bytes(), s)?;
    t.insert(COUNTER_VAULT, bytes.as_slice()).ctx("write table counters")?;
    Ok(())
}
