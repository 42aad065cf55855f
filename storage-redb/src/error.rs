//! The crate's one error type.

use std::path::PathBuf;

/// Everything a [`crate::RedbStore`] operation can fail with.
///
/// Every failed operation leaves the database as it was: the write transaction is aborted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A refusal of the core's rules (cap reached, key already burned, bad signature, ...).
    #[error(transparent)]
    Core(#[from] aqm_core::Error),
    /// The database file could not be created or opened.
    #[error(
        "cannot open the redb database {path}: {source}. Check that the directory exists and is writable, \
         and that no other process has the file open"
    )]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::DatabaseError,
    },
    /// A redb transaction, table or commit failed.
    #[error(
        "redb failed during `{op}`: {source}. Check free disk space and permissions on the database file; \
         nothing of this operation was written"
    )]
    Redb {
        /// The operation (and table) that failed.
        op: &'static str,
        /// What redb reported.
        #[source]
        source: redb::Error,
    },
    /// The file was written in another at-rest format than this build reads. The file is left
    /// as it was.
    #[error(
        "this redb file is in AQM format v{found}, but this build reads only format v{supported}: \
         format v3 files keep contact ids, display names and cached coins in clear, which v4 seals; \
         format v2 files hold core types raw; format v1 files hold protocol v1 coins and sessions. \
         The file was not changed: delete it and re-provision (mint new coins, re-exchange contacts)"
    )]
    UnsupportedFormat {
        /// The format version the file records (1 if it predates format records).
        found: u32,
        /// The format version this build reads and writes.
        supported: u32,
    },
    /// The file's contact metadata is sealed and it was opened unsealed, or the other way round.
    #[error(
        "this redb file was created with contact metadata {}, so it opens only with {}; the file was not changed",
        if *file_sealed { "sealed" } else { "in clear" },
        if *file_sealed { "`RedbStore::open` and its device key" } else { "`RedbStore::open_unsealed`" }
    )]
    SealingMismatch {
        /// Whether the file seals its metadata.
        file_sealed: bool,
    },
    /// The file's contact metadata is sealed under keys derived from another device key.
    #[error(
        "this redb file's contact metadata is sealed under another device key: open it with the device key \
         it was created with (the one its vault seeds are sealed under); the file was not changed"
    )]
    WrongDeviceKey,
    /// A stored record does not decode.
    #[error(
        "a record in table `{table}` does not decode ({detail}): the file is corrupt or was written by an \
         incompatible AQM version; restore it from a backup"
    )]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// What the decoder reported.
        detail: &'static str,
    },
}

impl aqm_core::StoreError for Error {
    fn as_core(&self) -> Option<&aqm_core::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

/// Attach the failing operation to a redb error.
pub(crate) trait Ctx<T> {
    /// Convert into [`Error::Redb`] naming `op`.
    fn ctx(self, op: &'static str) -> Result<T, Error>;
}

impl<T, E: Into<redb::Error>> Ctx<T> for Result<T, E> {
    fn ctx(self, op: &'static str) -> Result<T, Error> {
        self.map_err(|e| Error::Redb { op, source: e.into() })
    }
}
