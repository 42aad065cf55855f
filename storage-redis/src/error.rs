//! The crate's one error type.

use aqm_core::StoreError;

/// Everything [`crate::RedisStore`] can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A refusal of the core's rules (budget exceeded, key already burned, ...). Nothing changed.
    #[error(transparent)]
    Core(#[from] aqm_core::Error),

    /// Redis could not be reached, or the connection broke, after a bounded number of attempts.
    ///
    /// `outcome_known` tells whether the failed call is known to have changed nothing. When it is
    /// false the request reached the server before the connection broke: the change was applied
    /// whole or not at all (every change is one atomic script), but which one cannot be told;
    /// re-read the state (e.g. [`aqm_core::store::VaultStore::status`]) before repeating it.
    #[error(
        "Redis at {addr} is unavailable after {attempts} attempt(s): {reason}{}; \
         check that the server runs and that the URL is right",
        if *outcome_known { "" } else { " (the request may or may not have been applied; re-read before retrying)" }
    )]
    Unavailable {
        /// The server address (host:port/db), never with credentials.
        addr: String,
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt failed with.
        reason: String,
        /// True when the call is known to have had no effect.
        outcome_known: bool,
    },

    /// The server answered with an error (out of memory, read-only replica, script error, ...).
    #[error("Redis refused the request: {0}; check the server's log and its maxmemory / replica settings")]
    Server(String),

    /// A record in Redis does not decode: written by something else or damaged.
    #[error("corrupt record {key}: {what}; remove it or restore from a backup")]
    Corrupt {
        /// The Redis key.
        key: String,
        /// What is wrong with it.
        what: &'static str,
    },

    /// The change was applied on the master, but fewer replicas than
    /// [`crate::Durability::Replicas`] asks for confirmed it in time: if that master fails over
    /// now, the change may be lost. Re-read the state before repeating it.
    #[error(
        "the change was applied on the Redis master {addr} but not confirmed by its replicas ({detail}): \
         it may be lost if that master fails now; re-read the state before repeating it, and check that \
         the master's replicas are up and linked (INFO replication)"
    )]
    NotReplicated {
        /// The master (host:port).
        addr: String,
        /// How many replicas confirmed, of how many, within which timeout.
        detail: String,
    },

    /// The prefix holds keys of another at-rest format than this build reads.
    #[error(
        "the Redis prefix '{prefix}' holds AQM format v{found} keys, but this build reads only format v{supported}; {}",
        upgrade_hint(*found, prefix)
    )]
    UnsupportedFormat {
        /// The user prefix.
        prefix: String,
        /// The format found.
        found: u32,
        /// The format this build reads and writes.
        supported: u32,
    },

    /// The namespace was created in the other sealing mode than the store was opened with
    /// ([`crate::Sealing::sealed`] vs [`crate::Sealing::unsealed`]). Nothing was changed.
    #[error(
        "the Redis prefix '{prefix}' was created {found}, but the store was opened {requested}; open it \
         {found} (a sealed namespace needs its device key), or use another prefix"
    )]
    SealingMismatch {
        /// The user prefix.
        prefix: String,
        /// How the namespace was created: "sealed" or "unsealed".
        found: &'static str,
        /// How it was opened.
        requested: &'static str,
    },

    /// The namespace is sealed under another device key than the one given: none of its
    /// records would open. Nothing was changed.
    #[error(
        "the Redis prefix '{prefix}' is sealed under another device key; open it with the device key it \
         was created with (from the device's keystore), or use another prefix"
    )]
    WrongDeviceKey {
        /// The user prefix.
        prefix: String,
    },

    /// A last-resort open found its vault entry changed by other calls on every one of its
    /// attempts (each attempt reads, lets the core decide, and commits only if nothing moved).
    /// Nothing was written by this call.
    #[error(
        "the vault entry {key} changed under each of {attempts} attempts to open it; nothing was written: \
         retry the open (another client is writing this entry at a very high rate)"
    )]
    Contended {
        /// The Redis key of the entry.
        key: String,
        /// How many read-decide-commit rounds were tried.
        attempts: u32,
    },

    /// The connection URL or the key prefix is unusable.
    #[error("invalid Redis configuration: {0}")]
    Config(String),
}

impl StoreError for Error {
    fn as_core(&self) -> Option<&aqm_core::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

/// What to do about a store of format `found`.
fn upgrade_hint(found: u32, prefix: &str) -> String {
    match found {
        1 => format!(
            "v1 keys hold protocol v1 coins and sessions, which v2 refuses: delete them \
             (e.g. redis-cli --scan --pattern '{prefix}:*:v1:*' | xargs redis-cli del) or use another prefix"
        ),
        2 => format!(
            "v2 keys hold contact ids, key ids and contact metadata in clear, and this build offers no upgrade: \
             keep the older build for this prefix, or delete them (redis-cli --scan --pattern '{prefix}:*:v2:*' | \
             xargs redis-cli del) and let the device re-register its contacts and mint new coins"
        ),
        _ => format!(
            "v{found} keys hold contact ids, key ids and contact metadata in clear, and this build offers no \
             upgrade: keep the older build for this prefix, or delete them (redis-cli --scan --pattern \
             '{{{prefix}}}:*:v{found}:*' | xargs redis-cli del) and let the device re-register its contacts and \
             mint new coins"
        ),
    }
}

impl Error {
    pub(crate) fn corrupt(key: &str, what: &'static str) -> Self {
        Error::Corrupt { key: key.to_owned(), what }
    }
}
