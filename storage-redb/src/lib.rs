//! # aqm-storage-redb
//!
//! AQM's embedded storage: the vault (sealed private halves of one's own coins), the receive and
//! send sessions, the inventory of contacts' public coins, and a local coin directory (for the
//! simulator, so nothing needs a server), all in one [redb](https://docs.rs/redb) file.
//!
//! Every trait method of [`aqm_core::store`] is **one** redb transaction: a write transaction
//! that reads what it needs, asks the core's rule function what to do ([`aqm_core::vault`],
//! [`aqm_core::inventory`], [`aqm_core::directory`]), writes the answer and commits durably; or
//! one read transaction. A refused or failed operation aborts its transaction, so it changes
//! nothing. redb serialises write transactions, which is what makes caps, exactly-once burns and
//! at-most-once claims hold under concurrency, and its copy-on-write commit is what makes a
//! process killed at any moment reopen to the last committed state.
//!
//! ## Secrets at rest
//!
//! Vault entries hold the core's [`aqm_core::crypto::SealedSecret`] (AES-256-GCM under the
//! device key, which is never stored here). Burning a key marks it BURNED and
//! [`VaultStore::purge`](aqm_core::store::VaultStore::purge) later unlinks the record; redb
//! cannot overwrite the old bytes in place, so freed pages may keep the sealed blob until they
//! are reused. That residue is ciphertext: its confidentiality rests on the sealing key.
//! Session records are stored as the opaque sealed blobs the core hands over.
//!
//! ```
//! use aqm_core::{Policy, Priority, crypto::DeviceKey, inventory::ContactMeta, store::InventoryStore, UserId};
//! use aqm_storage_redb::RedbStore;
//!
//! let dir = tempfile::tempdir()?;
//! // The device key lives in the device's keystore, never beside the file.
//! let device_key = DeviceKey::from_bytes([9; 32]);
//! let store = RedbStore::open(dir.path().join("alice.redb"), Policy::DEFAULT, &device_key)?;
//! let bob = UserId([7; 16]);
//! assert!(store.register_contact(&ContactMeta::new(bob, Priority::Bestie, "bob", 0)?)?);
//! assert_eq!(store.counts(&bob)?.total(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audit;
mod codec;
mod directory;
mod error;
mod inventory;
mod pins;
mod records;
mod sealing;
mod vault;

pub use codec::FORMAT_VERSION;

use std::path::Path;

use aqm_core::Policy;
use aqm_core::crypto::{DeviceKey, MetadataKey};
use aqm_core::store::HasPolicy;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

pub use audit::Audit;
use error::Ctx;
pub use error::Error;
use sealing::Sealing;

/// One redb database holding every AQM store of a device.
///
/// Cheap to share between threads (`&RedbStore` is `Sync`); redb serialises the writers.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    policy: Policy,
    sealing: Sealing,
}

impl RedbStore {
    /// Open the database at `path`, creating it (and its tables) if it does not exist, with the
    /// contact metadata sealed under keys derived from `device_key`
    /// ([`aqm_core::crypto::MetadataKey`]): the same device key the vault's seeds are sealed
    /// with, never stored here.
    ///
    /// Refused, leaving the file as it was: another format version
    /// ([`Error::UnsupportedFormat`]), a file created with [`RedbStore::open_unsealed`]
    /// ([`Error::SealingMismatch`]), or a file sealed under another device key
    /// ([`Error::WrongDeviceKey`]). After a crash redb repairs the file on open; every operation
    /// that had committed is there.
    pub fn open(path: impl AsRef<Path>, policy: Policy, device_key: &DeviceKey) -> Result<RedbStore, Error> {
        RedbStore::open_with(path.as_ref(), policy, Sealing::sealed(MetadataKey::derive(device_key)))
    }

    /// Open (or create) a database that keeps contact metadata **in clear**: contact, peer and
    /// key ids in table keys, display names, priorities, times and cached coins readable by
    /// anyone who reads the file. It exists to measure what sealing costs (the crate's
    /// benchmarks) and for files that hold nothing private (a directory stand-in); a device
    /// store opens with [`RedbStore::open`]. The choice is recorded in the file: an unsealed
    /// file never opens sealed and a sealed one never opens unsealed ([`Error::SealingMismatch`]).
    pub fn open_unsealed(path: impl AsRef<Path>, policy: Policy) -> Result<RedbStore, Error> {
        RedbStore::open_with(path.as_ref(), policy, Sealing::unsealed())
    }

    fn open_with(path: &Path, policy: Policy, sealing: Sealing) -> Result<RedbStore, Error> {
        if path.exists() {
            // Check the format from a read-only handle first, so that a refused file is not
            // touched (a writable open may repair or rewrite its header). A file the read-only
            // handle cannot open (one to repair after a crash, one held by another store) goes
            // to the writable open, which checks the format again before anything else.
            if let Ok(db) = redb::ReadOnlyDatabase::open(path) {
                let tx = db.begin_read().ctx("check format")?;
                check_format_read(&tx, &sealing)?;
            }
        }
        let db = Database::create(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
        RedbStore::init(db, policy, sealing)
    }

    /// A database held in memory only (tests, throw-away simulations): same code path, no file;
    /// its metadata is sealed under a fresh random key, gone with the store.
    pub fn in_memory(policy: Policy) -> Result<RedbStore, Error> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|source| Error::Open { path: "<memory>".into(), source })?;
        let key = MetadataKey::derive(&DeviceKey::random(&mut rand::rng()));
        RedbStore::init(db, policy, Sealing::sealed(key))
    }

    fn init(db: Database, policy: Policy, sealing: Sealing) -> Result<RedbStore, Error> {
        let store = RedbStore { db, policy, sealing };
        store.write("check format and create tables", |tx| {
            let known = tx.list_tables().ctx("check format: list tables")?.any(|t| t.name() == "vault");
            let (stored, sealed) = {
                let format = tx.open_table(codec::FORMAT).ctx("check format: open table aqm_format")?;
                let stored = format.get("format").ctx("check format: read table aqm_format")?.map(|g| g.value());
                let sealed =
                    format.get("metadata_sealed").ctx("check format: read table aqm_format")?.map(|g| g.value());
                (stored, sealed)
            };
            // A file with AQM tables but no format record was written before formats were
            // versioned: protocol v1.
            match stored.or(known.then_some(1)) {
                Some(found) => {
                    let check = {
                        let t = tx.open_table(codec::AT_REST).ctx("check format: open table aqm_at_rest")?;
                        t.get("key_check").ctx("check format: read table aqm_at_rest")?.map(|g| g.value().to_vec())
                    };
                    check_format(found, sealed, check, &store.sealing)?;
                }
                None => {
                    let mut format = tx.open_table(codec::FORMAT).ctx("write format: open table aqm_format")?;
                    format.insert("format", codec::FORMAT_VERSION).ctx("write format: table aqm_format")?;
                    format
                        .insert("metadata_sealed", u32::from(store.sealing.is_sealed()))
                        .ctx("write format: table aqm_format")?;
                    if let Some(check) = store.sealing.key_check() {
                        let mut t = tx.open_table(codec::AT_REST).ctx("write format: open table aqm_at_rest")?;
                        t.insert("key_check", check.as_slice()).ctx("write format: table aqm_at_rest")?;
                    }
                }
            }
            codec::create_tables(tx)
        })?;
        Ok(store)
    }

    /// Whether this store seals contact metadata ([`RedbStore::open`]) or keeps it in clear
    /// ([`RedbStore::open_unsealed`]).
    pub fn is_sealed(&self) -> bool {
        self.sealing.is_sealed()
    }

    /// The policy every operation applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The underlying redb database (e.g. to open it read-only for inspection or compact it).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Shrink the file to the pages it uses: redb's copy-on-write commits leave freed pages
    /// behind and the file never shrinks by itself (`aqm-sim footprint` measures by how much).
    /// Compacts until redb can move nothing more and returns whether anything moved. `&mut self`
    /// means no operation of this store runs meanwhile; call it during maintenance (after a purge
    /// or garbage collection), not per message.
    pub fn compact(&mut self) -> Result<bool, Error> {
        let mut moved = false;
        while self.db.compact().ctx("compact")? {
            moved = true;
        }
        Ok(moved)
    }

    /// Run `f` in one write transaction and commit it durably; on any error the transaction is
    /// aborted and nothing is written.
    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tx = self.db.begin_write().ctx(op)?;
        match f(&tx) {
            Ok(v) => {
                tx.commit().ctx(op)?;
                Ok(v)
            }
            Err(e) => {
                // The abort itself only releases pages; the refusal is the error worth reporting.
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// Run `f` in one read transaction (a consistent snapshot).
    pub(crate) fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&ReadTransaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tx = self.db.begin_read().ctx(op)?;
        f(&tx)
    }
}

impl HasPolicy for RedbStore {
    fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// The format check of an existing file, from a read transaction (no table is created).
fn check_format_read(tx: &ReadTransaction, sealing: &Sealing) -> Result<(), Error> {
    let names: Vec<String> = tx.list_tables().ctx("check format: list tables")?.map(|t| t.name().to_owned()).collect();
    let has = |n: &str| names.iter().any(|t| t == n);
    if !has("aqm_format") {
        // An empty file (created, nothing committed) or one from before format records.
        return if has("vault") {
            Err(Error::UnsupportedFormat { found: 1, supported: codec::FORMAT_VERSION })
        } else {
            Ok(())
        };
    }
    let format = tx.open_table(codec::FORMAT).ctx("check format: open table aqm_format")?;
    let Some(found) = format.get("format").ctx("check format: read table aqm_format")?.map(|g| g.value()) else {
        return Ok(());
    };
    let sealed = format.get("metadata_sealed").ctx("check format: read table aqm_format")?.map(|g| g.value());
    let check = if has("aqm_at_rest") {
        let t = tx.open_table(codec::AT_REST).ctx("check format: open table aqm_at_rest")?;
        t.get("key_check").ctx("check format: read table aqm_at_rest")?.map(|g| g.value().to_vec())
    } else {
        None
    };
    check_format(found, sealed, check, sealing)
}

/// Whether a file of format `found`, sealed as `sealed` says with key check `check`, opens
/// with `sealing`.
fn check_format(found: u32, sealed: Option<u32>, check: Option<Vec<u8>>, sealing: &Sealing) -> Result<(), Error> {
    if found != codec::FORMAT_VERSION {
        return Err(Error::UnsupportedFormat { found, supported: codec::FORMAT_VERSION });
    }
    let file_sealed = match sealed {
        Some(1) => true,
        Some(0) => false,
        _ => return Err(Error::Corrupt { table: "aqm_format", detail: "no valid metadata_sealed record" }),
    };
    if file_sealed != sealing.is_sealed() {
        return Err(Error::SealingMismatch { file_sealed });
    }
    if check != sealing.key_check() {
        return Err(Error::WrongDeviceKey);
    }
    Ok(())
}
