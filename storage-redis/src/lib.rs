//! # aqm-storage-redis
//!
//! AQM's Redis backend for phones and app back-ends: the vault (with sessions) and the inventory
//! of contacts' coins, in the seed's key namespace (see [`keys`](crate#key-namespace)), under an
//! optional user prefix so several users share one server.
//!
//! Every change is one Lua script, loaded once and called by SHA: it reads what it needs, applies
//! the core's decision and writes, atomically. Hot-path calls (`select_coin`, `store_coin`,
//! `burn`, `burn_and_save_session`) are one round trip each. Where a script must restate a rule
//! of [`aqm_core`] server-side (cap check, fallback order, burn state machine, trim of the newest
//! excess, expiry cutoff), the crate's tests drive the script and the core function with the same
//! inputs and assert the same decision.
//!
//! Counters never drift: ACTIVE keys are never given a Redis TTL. They leave only through
//! `burn` or `purge`, both scripts that move the counters in the same step.
//!
//! ```no_run
//! use aqm_core::{crypto::DeviceKey, store::VaultStore, Policy};
//! use aqm_storage_redis::{RedisStore, Sealing};
//! // The device key comes from the device's keystore; it is never stored in Redis.
//! let device_key = DeviceKey::from_bytes([9; 32]);
//! let store = RedisStore::connect("redis://127.0.0.1:6379", "alice", Policy::DEFAULT, Sealing::sealed(&device_key))?;
//! println!("{:?}", store.stats()?);
//! # Ok::<(), aqm_storage_redis::Error>(())
//! ```
//!
//! ## Key namespace
//!
//! | Key | Type | Holds |
//! |-----|------|-------|
//! | `{p}vault:v3:key:{key_id}` | hash | `key_id`, `coin_category`, `encrypted_blob`, `encryption_iv`, `auth_tag`, `status`, `created_at`, `expires_at`, `coin_version`, `burned_at`, `put_op`, `burn_op` |
//! | `{p}vault:v3:stats` | hash | `active_gold`, `active_silver`, `active_bronze`, `total_burned`, `total_expired` |
//! | `{p}vault:v3:active:{TIER}` | sorted set | ACTIVE key ids by `expires_at` (expiry index: deleted at `expires_at + vault_grace`) |
//! | `{p}vault:v3:burned` | sorted set | BURNED key ids by `burned_at` (grace index) |
//! | `{p}sess:v3:{peer}:{SEND\|RECV}` | hash | `v` (version: saves are compare-and-swap), `blob` (sealed session), `op` |
//! | `{p}pin:v3:{user}` | hash | `ed25519`, `mldsa65`, `trust` (pinned identity) |
//! | `{p}inv:v3:key:{contact_id}:{key_id}` | hash | `contact_id`, `key_id`, `coin_category`, `public_key`, `signature`, `kind`, `expires_at`, `fetched_at`, `seq` |
//! | `{p}inv:v3:idx:{contact_id}:{TIER}` | sorted set | cached key ids by insertion sequence (FIFO) |
//! | `{p}inv:v3:meta:{contact_id}` | hash | `contact_id`, `priority`, `last_msg_at`, `display_name`, `require_pq` |
//! | `{p}inv:v3:contacts` | set | registered contact ids |
//! | `{p}inv:v3:seq` | string | insertion-sequence counter |
//!
//! `{p}` is `{prefix}:` (nothing for an empty prefix): the prefix in braces is Redis Cluster's
//! hash tag, so all of a user's keys live in one slot and every script runs on one node. Ids are
//! lowercase hyphenated UUIDs; binary fields are stored raw. `v3` is the at-rest format
//! ([`FORMAT_VERSION`]: protocol v2 records under hash-tagged names). Connecting to a prefix that
//! holds format-v1, v2 or v3 keys fails with [`Error::UnsupportedFormat`] (no upgrade is offered).
//! **Format v4** (issue 18, the table above shows v3's names): ids in names are keyed hashes and
//! contact metadata is sealed; see the crate README, "At-rest format v4". Last-resort coins
//! (issue 14) add a sealed `kind` field to vault entries and a `vault:v4:opens:{hash}` record per
//! last-resort key that opened something (same format, README "Last-resort coins").
//!
//! ## Redis Cluster
//!
//! [`RedisStore::connect`] takes one URL or a comma-separated list of cluster nodes
//! (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`); a single URL that names a cluster node works
//! too. The API and the round trips are the same. [`Options::durability`] makes every change wait
//! for a replica before it is acknowledged ([`Durability::Replicas`]).

mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod inventory;
mod keys;
mod pins;
mod pool;
mod scripts;
mod sealing;
mod vault;

use std::sync::atomic::{AtomicU64, Ordering};

use aqm_core::vault::VaultStats;
use aqm_core::{Policy, Tier, TierCounts};

pub use error::Error;
pub use sealing::Sealing;

/// The at-rest format this build reads and writes: the `v4` in every key name (v3's records with
/// contact ids and key ids hashed in names and contact metadata sealed, issue 18).
pub const FORMAT_VERSION: u32 = 4;
pub use pool::{Durability, Options};

use keys::Keys;
use pool::{Pool, Resend};

/// A vault, session store and inventory of one user on a Redis server.
///
/// `Send + Sync`: share it between threads (e.g. in an `Arc`); each call borrows one pooled
/// connection for its single round trip.
pub struct RedisStore {
    pool: Pool,
    /// The replicas a change waits for ([`Options::durability`]).
    wait: Option<scripts::Wait>,
    keys: Keys,
    /// Hashes the ids in key names and seals the records that describe contacts.
    seal: Sealing,
    prefix: String,
    policy: Policy,
    /// Random per store: with `ops`, makes every operation token unique across processes.
    op_base: [u64; 2],
    ops: AtomicU64,
}

impl core::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisStore").field("addr", &self.pool.addr()).field("prefix", &self.prefix).finish()
    }
}

/// What [`RedisStore::audit`] finds: the counters beside a recount of the contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// The stats hash.
    pub stats: VaultStats,
    /// ACTIVE entry hashes per tier, recounted.
    pub active_entries: TierCounts,
    /// Members of the ACTIVE expiry indexes per tier.
    pub active_index: TierCounts,
    /// BURNED entry hashes, recounted.
    pub burned_entries: u32,
    /// Members of the BURNED grace index.
    pub burned_index: u32,
}

impl Audit {
    /// Whether the counters and indexes agree with the entries.
    pub fn consistent(&self) -> bool {
        self.stats.active == self.active_entries
            && self.active_index == self.active_entries
            && self.burned_index == self.burned_entries
    }
}

impl RedisStore {
    /// Connect to `url` (`redis://[:password@]host:port[/db]`) with default [`Options`], keeping
    /// every key under `prefix` (empty: no prefix), applying `policy` in every step, with contact
    /// metadata kept as `sealing` says (normally [`Sealing::sealed`] with the device key). Fails
    /// with [`Error::Unavailable`] when the server cannot be reached, with
    /// [`Error::UnsupportedFormat`] beside an older format's keys, and with
    /// [`Error::SealingMismatch`] / [`Error::WrongDeviceKey`] when the namespace was created in the
    /// other mode or under another device key.
    ///
    /// For Redis Cluster, `url` is one node's URL or a comma-separated list of nodes (tried in
    /// turn to learn which master holds the store's slot); the prefix must not be empty (it is the
    /// hash tag that keeps the user's keys together).
    pub fn connect(url: &str, prefix: &str, policy: Policy, sealing: Sealing) -> Result<RedisStore, Error> {
        Self::connect_with(url, prefix, policy, sealing, Options::default())
    }

    /// [`RedisStore::connect`] with explicit connection and retry [`Options`].
    pub fn connect_with(
        url: &str,
        prefix: &str,
        policy: Policy,
        sealing: Sealing,
        options: Options,
    ) -> Result<RedisStore, Error> {
        let keys = Keys::new(prefix)?;
        let wait = options.durability.wait();
        let pool = Pool::new(url, keys.slot(), options)?;
        let store = RedisStore {
            wait,
            pool,
            keys,
            seal: sealing,
            prefix: prefix.to_owned(),
            policy,
            op_base: [random_u64(), random_u64()],
            ops: AtomicU64::new(0),
        };
        store.ping()?;
        store.check_format()?;
        Ok(store)
    }

    /// Refuse to run beside an older format's store under the same prefix (its records would
    /// silently be invisible to this build, and v1–v3 keep contact metadata in clear):
    /// [`Error::UnsupportedFormat`] names both versions, and nothing is written. Then record
    /// (first connect) or check the namespace's format marker: the sealing mode and, sealed, a
    /// keyed check value of the device key.
    ///
    /// On a cluster only the v3 names are checked: v1 and v2 could not run there (their keys had
    /// no hash tag), and their names hash to other nodes.
    fn check_format(&self) -> Result<(), Error> {
        let cluster = self.pool.is_cluster();
        for (version, marker) in self.keys.legacy_markers() {
            if cluster && version < 3 {
                continue;
            }
            let found: i64 = self.pool.run(Resend::Safe, |c| redis::cmd("EXISTS").arg(&marker).query(c))?;
            if found > 0 {
                return Err(Error::UnsupportedFormat {
                    prefix: self.prefix.clone(),
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
        }
        let want = self.seal.marker();
        let key = self.keys.format();
        // SET NX GET: writes the marker only if absent, and returns what was there (one step, so
        // two first connects of different modes cannot both win).
        let found: Option<String> =
            self.pool.run(Resend::Safe, |c| redis::cmd("SET").arg(&key).arg(&want).arg("NX").arg("GET").query(c))?;
        let Some(found) = found else { return Ok(()) };
        if found == want {
            return Ok(());
        }
        let mode = |m: &str| match m.split(' ').nth(1) {
            Some("sealed") => Some("sealed"),
            Some("unsealed") => Some("unsealed"),
            _ => None,
        };
        let requested = if self.seal.is_sealed() { "sealed" } else { "unsealed" };
        match mode(&found) {
            Some(m) if m != requested => {
                Err(Error::SealingMismatch { prefix: self.prefix.clone(), found: m, requested })
            }
            Some(_) if found.starts_with(&format!("{FORMAT_VERSION} ")) => {
                Err(Error::WrongDeviceKey { prefix: self.prefix.clone() })
            }
            _ => Err(Error::corrupt(&key, "unknown format marker")),
        }
    }

    /// Whether this store runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.pool.is_cluster()
    }

    /// The node this store's requests go to now (`host:port`; on a cluster, the master of its
    /// slot, which changes after a failover or a migration of the slot).
    pub fn node(&self) -> String {
        self.pool.node()
    }

    /// The Redis Cluster hash slot of every key of this store (`None` without a prefix).
    pub fn slot(&self) -> Option<u16> {
        self.keys.slot()
    }

    /// A fresh operation token (128 bits: random per store, counted per call) for the scripts
    /// that recognise their own earlier run.
    fn op_token(&self) -> String {
        let n = self.ops.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", self.op_base[0], self.op_base[1] ^ n)
    }

    /// Whether this store seals contact metadata ([`Sealing::sealed`]).
    pub fn is_sealed(&self) -> bool {
        self.seal.is_sealed()
    }

    /// The policy this store applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key prefix (empty when none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// One raw `PING` round trip on a pooled connection (health check; the benchmark's baseline).
    pub fn ping(&self) -> Result<(), Error> {
        self.pool.run(Resend::Safe, |c| redis::cmd("PING").query::<String>(c)).map(drop)
    }

    /// Recount the vault's contents and compare them with its counters (O(n), for diagnostics
    /// and tests). Not one snapshot: run it when no other client writes.
    pub fn audit(&self) -> Result<Audit, Error> {
        let mut a = Audit { stats: self.vault_stats()?, ..Audit::default() };
        if self.pool.is_cluster() {
            // SCAN reads one node: make sure it is the slot's current owner.
            self.ping()?;
        }
        // On a cluster the node that owns the store's slot holds every key of it: SCAN there.
        let pattern = format!("{}*", glob_escape(&self.keys.vault_entry_prefix()));
        let entries: Vec<String> = self.pool.run(Resend::Safe, |c| {
            let it = redis::cmd("SCAN").cursor_arg(0).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).clone();
            let keys: Vec<String> = it.iter::<String>(c)?.collect::<Result<_, _>>()?;
            Ok(keys)
        })?;
        for chunk in entries.chunks(500) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("HMGET").arg(key).arg("status").arg("coin_category");
            }
            let rows: Vec<(Option<String>, Option<String>)> = self.pool.run(Resend::Safe, |c| pipe.query(c))?;
            for (key, (status, tier)) in chunk.iter().zip(rows) {
                match (status.as_deref(), tier.as_deref().map(str::parse::<Tier>)) {
                    (Some("ACTIVE"), Some(Ok(t))) => *a.active_entries.get_mut(t) += 1,
                    (Some("BURNED"), _) => a.burned_entries += 1,
                    (None, _) => {} // deleted since the scan
                    _ => return Err(Error::corrupt(key, "unknown status or tier")),
                }
            }
        }
        for t in Tier::ALL {
            let n: u32 =
                self.pool.run(Resend::Safe, |c| redis::cmd("ZCARD").arg(self.keys.vault_active(t)).query(c))?;
            *a.active_index.get_mut(t) = n;
        }
        a.burned_index = self.pool.run(Resend::Safe, |c| redis::cmd("ZCARD").arg(self.keys.vault_burned()).query(c))?;
        Ok(a)
    }

    /// Delete every key under this store's prefix (a user leaving, or a test cleaning up).
    /// Refused for an empty prefix, which would reach other users' keys. Returns the keys deleted.
    /// On a cluster it reads the node that owns the store's slot: do not run it while that slot
    /// is being migrated.
    pub fn destroy_all(&self) -> Result<u64, Error> {
        if self.prefix.is_empty() {
            return Err(Error::Config("destroy_all needs a prefix: it would delete other users' keys".into()));
        }
        let pattern = self.keys.all_pattern();
        let keys: Vec<String> = self.pool.run(Resend::Safe, |c| {
            let it = redis::cmd("SCAN").cursor_arg(0).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).clone();
            let keys: Vec<String> = it.iter::<String>(c)?.collect::<Result<_, _>>()?;
            Ok(keys)
        })?;
        let mut deleted = 0;
        for chunk in keys.chunks(500) {
            let n: u64 = self.pool.run(Resend::Safe, |c| redis::cmd("UNLINK").arg(chunk).query(c))?;
            deleted += n;
        }
        Ok(deleted)
    }
}

/// 64 random bits from the standard library's OS-seeded hasher keys (uniqueness, not secrecy:
/// tokens only tell one caller's retries from another caller's calls).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Escape Redis glob metacharacters so a prefix matches only itself.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Parse a canonical decimal u64 stored by this crate.
pub(crate) fn parse_u64(key: &str, what: &'static str, v: &[u8]) -> Result<u64, Error> {
    core::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Error::corrupt(key, what))
}

impl aqm_core::store::HasPolicy for RedisStore {
    fn policy(&self) -> &Policy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_escaped_and_checked() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert!(Keys::new("bad prefix").is_err());
        assert!(Keys::new("ok-prefix").is_ok());
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<RedisStore>();
    }
}
