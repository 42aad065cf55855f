//! The device's store, picked by URL (the prototype's "database factory"), and the one record
//! this crate adds to it: the sealed identity ([`crate::identity`]).
//!
//! | URL | Store | Identity kept in |
//! |-----|-------|------------------|
//! | `redb:///path/to/device.redb` | [`RedbStore`], one file (created if absent) | table `aqm_ffi_identity`, key `identity` |
//! | `redis://[:password@]host:port[/db][?prefix=NAME]` (or `rediss://`) | [`RedisStore`] under key prefix `NAME` (default none) | string `{NAME:}ffi:v1:identity` |

use aqm_core::Policy;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_storage_redb::RedbStore;
use aqm_storage_redis::RedisStore;
use redb::{ReadableTable, TableDefinition};

use crate::{AqmError, identity};

/// The redb table holding the sealed identity (owned by this crate, beside `aqm-storage-redb`'s).
const IDENTITY_TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("aqm_ffi_identity");

/// One device store. Built once per device and never moved in a hot path, so the size
/// difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Backend {
    /// The embedded default.
    Redb(RedbStore),
    /// An app back-end's Redis, with the URL (for the identity record) and key prefix.
    Redis { store: RedisStore, url: String, prefix: String },
}

/// Run `$body` with `$s` bound to the concrete store (each arm is type-checked for its own store
/// type, so the core's generic `Messenger` is monomorphised per backend).
macro_rules! with_store {
    ($backend:expr, |$s:ident| $body:expr) => {
        match $backend {
            $crate::backend::Backend::Redb($s) => $body,
            $crate::backend::Backend::Redis { store: $s, .. } => $body,
        }
    };
}
pub(crate) use with_store;

impl Backend {
    /// Open the store `url` names.
    pub(crate) fn open(url: &str, policy: Policy, device_key: &DeviceKey) -> Result<Backend, AqmError> {
        if let Some(path) = url.strip_prefix("redb://") {
            if path.is_empty() {
                return Err(AqmError::InvalidUrl {
                    detail: "redb:// needs a file path, e.g. redb:///data/aqm/device.redb".into(),
                });
            }
            return Ok(Backend::Redb(RedbStore::open(path, policy, device_key)?));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            let (base, prefix) = split_prefix(url)?;
            let store = RedisStore::connect(&base, &prefix, policy, aqm_storage_redis::Sealing::sealed(device_key))?;
            return Ok(Backend::Redis { store, url: base, prefix });
        }
        Err(AqmError::InvalidUrl {
            detail: "unknown store URL scheme: use redb:///path/to/device.redb or redis://host:port/db?prefix=NAME"
                .into(),
        })
    }

    /// The identity stored here, opened with `device_key`; a fresh one is generated, sealed and
    /// stored on first open (atomically: two processes opening a new store at once end up with
    /// the same identity).
    pub(crate) fn load_or_create_identity(&self, device_key: &DeviceKey) -> Result<Identity, AqmError> {
        let fresh = identity::seal(&Identity::generate(&mut rand::rng()), device_key)?;
        self.load_or_store_identity(fresh, device_key)
    }

    /// The store's identity; if it has none yet, `fresh` (sealed under `device_key`) becomes it.
    pub(crate) fn load_or_store_identity(&self, fresh: Vec<u8>, device_key: &DeviceKey) -> Result<Identity, AqmError> {
        let sealed = match self {
            Backend::Redb(store) => {
                let db = store.database();
                let tx = db.begin_write().map_err(redb::Error::from)?;
                let stored = {
                    let mut table = tx.open_table(IDENTITY_TABLE).map_err(redb::Error::from)?;
                    let existing = table.get("identity").map_err(redb::Error::from)?.map(|g| g.value().to_vec());
                    match existing {
                        Some(v) => v,
                        None => {
                            table.insert("identity", fresh.as_slice()).map_err(redb::Error::from)?;
                            fresh
                        }
                    }
                };
                tx.commit().map_err(redb::Error::from)?;
                stored
            }
            Backend::Redis { url, prefix, .. } => {
                let key =
                    if prefix.is_empty() { "ffi:v1:identity".to_owned() } else { format!("{prefix}:ffi:v1:identity") };
                let client = redis::Client::open(url.as_str())?;
                let mut conn = client.get_connection()?;
                let _: Option<String> = redis::cmd("SET").arg(&key).arg(fresh.as_slice()).arg("NX").query(&mut conn)?;
                let stored: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut conn)?;
                stored.ok_or_else(|| AqmError::Storage {
                    detail: format!("Redis lost the identity record {key} right after writing it: check maxmemory-policy (noeviction)"),
                })?
            }
        };
        identity::open(&sealed, device_key)
    }

    /// The policy the store applies.
    pub(crate) fn policy(&self) -> &Policy {
        with_store!(self, |s| s.policy())
    }
}

/// Split `?prefix=NAME` off a Redis URL (the redis crate does not know that parameter).
fn split_prefix(url: &str) -> Result<(String, String), AqmError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), String::new()));
    };
    let mut prefix = String::new();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("prefix=") {
            Some(p) => prefix = p.to_owned(),
            None => rest.push(pair),
        }
    }
    let base = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((base, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_split_off_and_other_parameters_kept() {
        assert_eq!(split_prefix("redis://h:1/0").unwrap(), ("redis://h:1/0".into(), String::new()));
        assert_eq!(split_prefix("redis://h:1/0?prefix=alice").unwrap(), ("redis://h:1/0".into(), "alice".into()));
        assert_eq!(
            split_prefix("redis://h:1/0?protocol=resp3&prefix=a").unwrap(),
            ("redis://h:1/0?protocol=resp3".into(), "a".into())
        );
    }

    #[test]
    fn unknown_schemes_and_empty_paths_are_refused() {
        for url in ["", "file:///tmp/x", "redb://", "postgres://x"] {
            let dk = DeviceKey::from_bytes([0; 32]);
            assert!(matches!(Backend::open(url, Policy::DEFAULT, &dk), Err(AqmError::InvalidUrl { .. })), "{url}");
        }
    }
}
