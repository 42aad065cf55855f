//! The coin directory on PostgreSQL: each operation of
//! [`DirectoryStore`](aqm_core::store::DirectoryStore) as one SQL transaction on a pooled
//! connection. The rules are [`aqm_core::directory`]'s: this module reads what they need, asks
//! them, and writes their answer.
//!
//! `now` is always the caller's (the HTTP layer passes the server clock; the conformance kit
//! passes its own), as everywhere in AQM.

mod claim;
mod claim_queue;
mod coins;
mod identities;
mod rows;

use std::sync::Arc;

use aqm_core::Policy;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

pub use claim_queue::{BatchStats, ClaimBatching};
pub use identities::Registered;

use crate::ServerError;

/// How long a request waits for a pooled connection, or for a new one to connect, before it
/// is answered 503: an outage must not hold requests until the client gives up.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The directory on a PostgreSQL pool, applying one [`Policy`].
#[derive(Clone)]
pub struct PgDirectory {
    pool: Pool,
    policy: Arc<Policy>,
    /// Set by [`PgDirectory::with_claim_batching`]: claims share transactions.
    claims: Option<claim_queue::ClaimQueue>,
    batch_stats: Arc<BatchStats>,
}

impl core::fmt::Debug for PgDirectory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PgDirectory").field("pool", &self.pool.status()).finish_non_exhaustive()
    }
}

impl PgDirectory {
    /// A pool of up to `pool_size` connections to `database_url`
    /// (`postgres://user@host:port/db` or key=value form). Connects lazily; see [`Self::migrate`].
    pub fn connect(database_url: &str, pool_size: usize, policy: Policy) -> Result<PgDirectory, ServerError> {
        let mut config: tokio_postgres::Config =
            database_url.parse().map_err(|e| ServerError::Config(format!("database URL: {e}")))?;
        config.connect_timeout(POOL_WAIT);
        config.application_name("aqm-server");
        Self::from_config(config, pool_size, policy)
    }

    /// Like [`Self::connect`], from a parsed configuration (tests set `search_path` through it).
    pub fn from_config(
        config: tokio_postgres::Config,
        pool_size: usize,
        policy: Policy,
    ) -> Result<PgDirectory, ServerError> {
        // `Fast` recycling trusts a returned connection; a broken one fails its next query, is
        // dropped, and the request is answered 503 (the client retries). `Verified` would add a
        // round trip to every request.
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts { wait: Some(POOL_WAIT), create: Some(POOL_WAIT), recycle: Some(POOL_WAIT) })
            .build()
            .map_err(|e| ServerError::Config(format!("connection pool: {e}")))?;
        Ok(PgDirectory { pool, policy: Arc::new(policy), claims: None, batch_stats: Arc::default() })
    }

    /// Group concurrent claims into shared transactions (group commit; see
    /// [`ClaimBatching`]). Must be called on a tokio runtime, which then runs the dispatcher
    /// until the last clone of this directory is dropped. `max_batch` 1 leaves every claim its
    /// own transaction.
    ///
    /// Each claim still gets exactly what it would get alone; what changes is that one commit
    /// acknowledges many. On Citus keep `max_batch` 1: a batch spans owners, so it would be a
    /// multi-shard transaction.
    pub fn with_claim_batching(mut self, batching: ClaimBatching) -> Result<PgDirectory, ServerError> {
        self.claims = None;
        if batching.max_batch > 1 {
            self.claims = Some(claim_queue::ClaimQueue::start(self.clone(), batching)?);
        }
        Ok(self)
    }

    /// Claim transactions and the claims they carried since start.
    pub fn batch_stats(&self) -> &Arc<BatchStats> {
        &self.batch_stats
    }

    /// Apply pending migrations ([`crate::migrate::apply`]).
    pub async fn migrate(&self) -> Result<crate::migrate::Applied, ServerError> {
        let mut client = self.pool.get().await?;
        crate::migrate::apply(&mut client).await
    }

    /// The policy every operation applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The pool (for metrics: size and idle connections).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether a trivial query reaches PostgreSQL now.
    pub async fn ping(&self) -> bool {
        match self.pool.get().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

/// A `u64` the core uses (time, count) as PostgreSQL's `BIGINT`.
pub(crate) fn to_i64(v: u64) -> Result<i64, ServerError> {
    i64::try_from(v).map_err(|_| ServerError::BadRequest(format!("{v} is out of range (at most {})", i64::MAX)))
}

/// A `BIGINT` read back as the core's `u64`; negative means a corrupt row.
pub(crate) fn to_u64(v: i64) -> Result<u64, ServerError> {
    u64::try_from(v).map_err(|_| ServerError::Database(format!("negative time or count {v} in the directory")))
}
