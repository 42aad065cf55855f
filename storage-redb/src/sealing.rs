//! How table keys and values are written at rest: through the core's
//! [`aqm_core::crypto::MetadataKey`] (keyed hashes for keys, AES-256-GCM for values), or in clear
//! for a file created with [`crate::RedbStore::open_unsealed`].
//!
//! The store never decides anything about the cryptography: it names the record kind (the
//! index domain or the table) and the bytes, and the core's derivations do the rest.

use aqm_core::crypto::MetadataKey;

use crate::error::Error;

/// The at-rest treatment of one open store.
#[derive(Debug, Clone)]
pub(crate) struct Sealing {
    /// `None`: a file created unsealed; table keys hold raw ids and values plain records.
    key: Option<MetadataKey>,
}

impl Sealing {
    pub(crate) fn sealed(key: MetadataKey) -> Sealing {
        Sealing { key: Some(key) }
    }

    pub(crate) fn unsealed() -> Sealing {
        Sealing { key: None }
    }

    /// Whether values are sealed and ids hashed.
    pub(crate) fn is_sealed(&self) -> bool {
        self.key.is_some()
    }

    /// The table key standing for `parts` (fixed-length ids, tier bytes) in `domain`: their keyed
    /// hash, or their concatenation in an unsealed file.
    pub(crate) fn ix(&self, domain: &'static [u8], parts: &[&[u8]]) -> Vec<u8> {
        let id = parts.concat();
        match &self.key {
            Some(k) => k.index(domain, &id).to_vec(),
            None => id,
        }
    }

    /// The keyed check value stored beside the format record: opening with another device key
    /// gives another value, which the open refuses before reading any record.
    pub(crate) fn key_check(&self) -> Option<Vec<u8>> {
        self.key.as_ref().map(|k| k.index(b"key-check", b"").to_vec())
    }

    /// The value `plain` of a record of `table` stored under `record_key`, as written.
    pub(crate) fn seal(&self, table: &'static str, record_key: &[u8], plain: Vec<u8>) -> Result<Vec<u8>, Error> {
        match &self.key {
            Some(k) => k
                .seal(table.as_bytes(), record_key, &plain, &mut rand::rng())
                .map_err(|_| Error::Corrupt { table, detail: "value does not seal" }),
            None => Ok(plain),
        }
    }

    /// The plain value of a record of `table` read from under `record_key`.
    pub(crate) fn open(&self, table: &'static str, record_key: &[u8], stored: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.key {
            Some(k) => k.open(table.as_bytes(), record_key, stored).map_err(|_| Error::Corrupt {
                table,
                detail: "sealed record does not open under this device's metadata key (tampered with or moved)",
            }),
            None => Ok(stored.to_vec()),
        }
    }
}

/// A table key of a FIFO table, `(index, seq)`, as the bytes its record is bound to.
pub(crate) fn seq_key(ix: &[u8], seq: u64) -> Vec<u8> {
    [ix, &seq.to_be_bytes()].concat()
}
