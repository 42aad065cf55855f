//! What `aqm-sim chat` can fail with. Each message says what went wrong and what to do about it;
//! none of them carries a secret (errors of the stores and the directory name keys by id only).

use std::path::PathBuf;

use aqm_core::inventory::TierRange;

/// Everything the chat can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The Redis server that carries the messages (pub/sub) does not answer.
    #[error(
        "cannot reach Redis at {url} for the chat's pub/sub ({detail}). Start one with `redis-server --daemonize yes` \
         (Debian: `apt-get install redis-server`; or `docker run -d -p 6379:6379 redis:7`), or point --pubsub at a running server"
    )]
    RedisUnreachable {
        /// The URL that was tried.
        url: String,
        /// What the client reported.
        detail: String,
    },
    /// The pub/sub connection broke after it was set up.
    #[error(
        "the pub/sub connection to Redis at {url} failed: {detail}; check that Redis is still running, then restart the chat"
    )]
    Transport {
        /// The pub/sub server.
        url: String,
        /// What the client reported.
        detail: String,
    },
    /// The aqm-server given with `--server` does not answer, or has no database.
    #[error(
        "cannot use the aqm-server at {url}: {detail}. Start it (see server-pg/README.md) or drop --server to use the shared directory file"
    )]
    ServerUnreachable {
        /// The server's URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The data directory cannot be prepared.
    #[error("data directory {}: {detail}", path.display())]
    DataDir {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong and what to do.
        detail: String,
    },
    /// The device's store (vault, sessions, pins, inventory) refused or failed.
    #[error("{op}: {detail}")]
    Store {
        /// The step that failed.
        op: &'static str,
        /// The store's own message.
        detail: String,
    },
    /// The coin directory refused or failed.
    #[error("{op}: coin directory: {detail}")]
    Directory {
        /// The step that failed.
        op: &'static str,
        /// The directory's own message.
        detail: String,
    },
    /// Neither a cached coin nor the directory can open a chain to the partner now.
    #[error(
        "no coin of {partner}'s from {} down to {} is cached or left in the directory (or today's anti-drain quota \
         is used up): the message was not sent. Wait until {partner} restocks the directory, or change the context \
         (e.g. /underground allows BRONZE)",
        range.desired, range.lowest
    )]
    NoCoin {
        /// The partner's name.
        partner: String,
        /// The tiers the send could use.
        range: TierRange,
    },
    /// A message was typed before the partner's process announced itself.
    #[error(
        "{partner} has not joined yet: start `aqm-sim chat --user {partner} --partner {me}` in another terminal (same --pubsub, --prefix and directory)"
    )]
    NotJoined {
        /// Who we wait for.
        partner: String,
        /// Who we are.
        me: String,
    },
    /// A frame on our channel did not decode.
    #[error("ignored a frame on the chat channel that does not decode ({0}); is another program publishing there?")]
    BadFrame(String),
    /// The command line makes no sense.
    #[error("{0}")]
    Usage(String),
}

/// Turn a store's or a directory's error into a [`ChatError`] naming the step.
pub(crate) trait Ctx<T> {
    /// As [`ChatError::Store`].
    fn store(self, op: &'static str) -> Result<T, ChatError>;
    /// As [`ChatError::Directory`].
    fn directory(self, op: &'static str) -> Result<T, ChatError>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn store(self, op: &'static str) -> Result<T, ChatError> {
        self.map_err(|e| ChatError::Store { op, detail: e.to_string() })
    }
    fn directory(self, op: &'static str) -> Result<T, ChatError> {
        self.map_err(|e| ChatError::Directory { op, detail: e.to_string() })
    }
}
