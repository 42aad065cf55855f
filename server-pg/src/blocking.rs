//! [`PgDirectory`] as the core's synchronous [`DirectoryStore`]: each call runs on a tokio
//! runtime this adapter owns. This is how the PostgreSQL directory runs the core's conformance
//! kit, and how a synchronous program (a tool, a test) can use it in-process.

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::directory::{Claimed, IdempotencyKey};
use aqm_core::store::{DirectoryStore, HasPolicy};
use aqm_core::{Policy, Tier, TierCounts, UnixSeconds, UserId};

use crate::ServerError;
use crate::directory::PgDirectory;

/// A [`PgDirectory`] with its own multi-threaded runtime. `Sync`: many threads may call it at
/// once, each call a transaction of its own.
pub struct BlockingDirectory {
    runtime: tokio::runtime::Runtime,
    directory: PgDirectory,
}

impl BlockingDirectory {
    /// Connect ([`PgDirectory::from_config`]) and apply pending migrations.
    pub fn open(config: tokio_postgres::Config, pool_size: usize, policy: Policy) -> Result<Self, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ServerError::Config(format!("tokio runtime: {e}")))?;
        let directory = runtime.block_on(async {
            let d = PgDirectory::from_config(config, pool_size, policy)?;
            d.migrate().await?;
            Ok::<_, ServerError>(d)
        })?;
        Ok(BlockingDirectory { runtime, directory })
    }

    /// Turn on claim batching ([`PgDirectory::with_claim_batching`]) on this adapter's runtime:
    /// concurrent calls from many threads then share claim transactions, as in the server.
    pub fn with_claim_batching(mut self, batching: crate::directory::ClaimBatching) -> Result<Self, ServerError> {
        let directory = self.directory.clone();
        self.directory = self.runtime.block_on(async move { directory.with_claim_batching(batching) })?;
        Ok(self)
    }

    /// The async directory inside.
    pub fn inner(&self) -> &PgDirectory {
        &self.directory
    }

    /// Run a future on this adapter's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

impl HasPolicy for BlockingDirectory {
    fn policy(&self) -> &Policy {
        self.directory.policy()
    }
}

impl DirectoryStore for BlockingDirectory {
    type Error = ServerError;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), ServerError> {
        // The trait has no clock; the registration time is only recorded, never ruled on.
        self.block_on(self.directory.register(identity, proof, crate::unix_now())).map(|_| ())
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, ServerError> {
        self.block_on(self.directory.identity(user))
    }

    fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, ServerError> {
        self.block_on(self.directory.upload(owner, coins, now))
    }

    fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Claimed, ServerError> {
        self.block_on(self.directory.claim(owner, requester, tier, count, idempotency, now))
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, ServerError> {
        self.block_on(self.directory.available(owner))
    }

    fn purge_stale(&self, now: UnixSeconds) -> Result<u32, ServerError> {
        self.block_on(self.directory.purge_stale(now))
    }

    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, ServerError> {
        self.block_on(self.directory.hard_delete_claimed(now))
    }
}
