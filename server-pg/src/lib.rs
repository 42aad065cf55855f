//! # aqm-server: the AQM coin directory on PostgreSQL, and its client
//!
//! The directory is the one piece of AQM every user shares: owners upload the public halves of
//! their coins, contacts claim them, each coin handed out at most once. The rules — what an
//! upload must prove, which coins a claim hands out, the anti-drain quota, what is stale — are
//! [`aqm_core::directory`]'s; this crate stores their answers in PostgreSQL and serves them over
//! HTTP (docs/http-api.md paths and JSON shapes, compatible with the Python prototype's clients).
//!
//! - [`directory::PgDirectory`] (feature `server`): the directory on a `deadpool-postgres` pool,
//!   one SQL transaction per operation, with the schema of `migrations/` applied by
//!   [`migrate`]. [`blocking::BlockingDirectory`] wraps it as a core
//!   [`DirectoryStore`](aqm_core::store::DirectoryStore), which is how it runs the core's
//!   conformance kit.
//! - [`http`] (feature `server`): the axum service: auth, JSON errors, metrics, OpenAPI.
//! - `client` (feature `client`): typed calls for every endpoint, upload, prefetch into any
//!   core inventory (every coin verified against its owner), on-demand fetch, retries with the
//!   same `Idempotency-Key`.
//! - [`wire`]: the JSON types both sides share.

#![forbid(unsafe_code)]

pub mod error;
pub mod token;
pub mod wire;

#[cfg(feature = "server")]
pub mod blocking;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod directory;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod migrate;

#[cfg(feature = "client")]
pub mod client;

pub use error::ServerError;

/// The server's clock in Unix seconds. The core never reads a clock; the HTTP layer reads this
/// once per request and passes it down as `now`.
pub fn unix_now() -> aqm_core::UnixSeconds {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
