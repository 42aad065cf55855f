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
//! use aqm_core::{Policy, Priority, inventory::ContactMeta, store::InventoryStore, UserId};
//! use aqm_storage_redb::RedbStore;
//!
//! let dir = tempfile::tempdir()?;
//! let store = RedbStore::open(dir.path().join("alice.redb"), Policy::DEFAULT)?;
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
mod vault;

pub use codec::FORMAT_VERSION;

use std::path::Path;

use aqm_core::Policy;
use aqm_core::store::HasPolicy;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

pub use audit::Audit;
use error::Ctx;
pub use error::Error;

/// One redb database holding every AQM store of a device.
///
/// Cheap to share between threads (`&RedbStore` is `Sync`); redb serialises the writers.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    policy: Policy,
}

impl RedbStore {
    /// Open the database at `path`, creating it (and its tables) if it does not exist.
    ///
    /// After a crash redb repairs the file on open; every operation that had committed is there.
    pub fn open(path: impl AsRef<Path>, policy: Policy) -> Result<RedbStore, Error> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
        RedbStore::init(db, policy)
    }

    /// A database held in memory only (tests, throw-away simulations): same code path, no file.
    pub fn in_memory(policy: Policy) -> Result<RedbStore, Error> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|source| Error::Open { path: "<memory>".into(), source })?;
        RedbStore::init(db, policy)
    }

    fn init(db: Database, policy: Policy) -> Result<RedbStore, Error> {
        let store = RedbStore { db, policy };
        store.write("check format and create tables", |tx| {
            let found = {
                let known = tx.list_tables().ctx("check format: list tables")?.any(|t| t.name() == "vault");
                let format = tx.open_table(codec::FORMAT).ctx("check format: open table aqm_format")?;
                let stored = format.get("format").ctx("check format: read table aqm_format")?.map(|g| g.value());
                // A file with AQM tables but no format record was written before formats were
                // versioned: protocol v1.
                stored.or(known.then_some(1))
            };
            match found {
                Some(codec::FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(Error::UnsupportedFormat { found: other, supported: codec::FORMAT_VERSION });
                }
                None => {
                    let mut format = tx.open_table(codec::FORMAT).ctx("write format: open table aqm_format")?;
                    format.insert("format", codec::FORMAT_VERSION).ctx("write format: table aqm_format")?;
                }
            }
            codec::create_tables(tx)
        })?;
        Ok(store)
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
