//! Group commit for claims. A claim's own work in PostgreSQL is small; what bounds throughput is
//! one transaction — one commit, one WAL flush — per claim. Concurrent claims therefore wait in
//! one queue; a dispatcher takes every claim waiting (up to [`ClaimBatching::max_batch`]) and
//! runs them as one transaction on one of [`ClaimBatching::workers`] connections
//! (`PgDirectory::claim_many`), so one commit acknowledges many claims.
//!
//! Claims that would contend inside one transaction — one requester's claims on the same owner and
//! tier (the same quota row) or with the same idempotency key (the same reply) — never share a
//! batch: a later one waits for the next, and so does every claim behind it that contends with
//! it, so contending claims commit in the order they arrived. Different requesters' claims on one
//! owner's coins do share a batch (a popular owner's claims are the ones that need it): they read
//! the coins once and take turns on them in arrival order. So a batch gives each claim exactly
//! what it would get alone, one after the other, in arrival order.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use aqm_core::directory::{Claimed, IdempotencyKey};
use aqm_core::{Tier, UnixSeconds, UserId};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::PgDirectory;
use crate::ServerError;

/// How claims are grouped into transactions.
///
/// ```
/// use aqm_server::directory::ClaimBatching;
/// let b = ClaimBatching::default();
/// assert_eq!((b.max_batch, b.workers), (64, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimBatching {
    /// Most claims in one transaction. 1 turns batching off: each claim is its own transaction
    /// (what a Citus deployment wants, where a batch would span shards).
    pub max_batch: usize,
    /// Batches in flight at once, each on its own pooled connection.
    pub workers: usize,
}

impl Default for ClaimBatching {
    fn default() -> Self {
        // Measured on a 2-core machine (README, "Coin directory"): 2 workers keep PostgreSQL busy
        // while the next batch fills; more only split the same claims into smaller commits.
        ClaimBatching { max_batch: 64, workers: 2 }
    }
}

/// Claim transactions and the claims they carried since start; the same counters are exported
/// as Prometheus `aqm_claim_transactions` and `aqm_claim_batched` (their ratio is the batch size).
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Claim transactions run (committed or rolled back).
    pub transactions: Counter,
    /// Claims those transactions carried.
    pub claims: Counter,
}

impl BatchStats {
    pub(super) fn record(&self, claims: usize) {
        self.transactions.inc();
        self.claims.inc_by(claims as u64);
    }
}

/// One claim, as [`PgDirectory::claim`] takes it.
#[derive(Clone, Debug)]
pub(super) struct ClaimRequest {
    pub owner: UserId,
    pub requester: UserId,
    pub tier: Tier,
    pub count: u32,
    pub idempotency: Option<IdempotencyKey>,
    pub now: UnixSeconds,
}

/// The coins, and whether they replay an earlier claim with the same key.
pub(super) type ClaimResult = Result<(Claimed, bool), ServerError>;

struct Job {
    request: ClaimRequest,
    reply: oneshot::Sender<ClaimResult>,
}

/// The queue's sending end; the dispatcher stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub(super) struct ClaimQueue {
    jobs: mpsc::UnboundedSender<Job>,
}

impl ClaimQueue {
    /// Start the dispatcher for `directory` (which must not itself hold a queue) on the current
    /// tokio runtime.
    pub(super) fn start(directory: PgDirectory, batching: ClaimBatching) -> Result<ClaimQueue, ServerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ServerError::Config("claim batching starts on a tokio runtime: enable it from inside one".into())
        })?;
        let (jobs, queue) = mpsc::unbounded_channel();
        runtime.spawn(dispatch(directory, batching, queue));
        Ok(ClaimQueue { jobs })
    }

    /// Queue `request` and wait for its batch to commit.
    pub(super) async fn claim(&self, request: ClaimRequest) -> ClaimResult {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { request, reply })
            .map_err(|_| ServerError::Unavailable("the claim queue has stopped (server shutting down)".into()))?;
        answer.await.map_err(|_| {
            ServerError::Unavailable("the claim was dropped before it ran (server shutting down)".into())
        })?
    }
}

async fn dispatch(directory: PgDirectory, batching: ClaimBatching, mut queue: mpsc::UnboundedReceiver<Job>) {
    let max = batching.max_batch.max(1);
    let permits = Arc::new(Semaphore::new(batching.workers.max(1)));
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut open = true;
    loop {
        if pending.is_empty() {
            if !open {
                break;
            }
            match queue.recv().await {
                Some(job) => pending.push_back(job),
                None => break,
            }
        }
        // While every worker is busy, claims pile up in the queue: the next batch is larger.
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        while open && pending.len() < max {
            match queue.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        // A caller that gave up (request timeout, dropped connection) gets no coins it would
        // never see.
        pending.retain(|job| !job.reply.is_closed());
        let (batch, carried) = split(std::mem::take(&mut pending), max, |job| contended(&job.request));
        pending = carried;
        if batch.is_empty() {
            continue;
        }
        let directory = directory.clone();
        tokio::spawn(async move {
            let requests: Vec<ClaimRequest> = batch.iter().map(|job| job.request.clone()).collect();
            let results = directory.claim_many(&requests).await;
            for (job, result) in batch.into_iter().zip(results) {
                // The caller may have gone meanwhile; its coins are then in its idempotent reply.
                let _ = job.reply.send(result);
            }
            drop(permit);
        });
    }
}

/// What a claim uses inside its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Contended {
    /// An owner's coins of one tier: claims of one batch share them, taking turns in order.
    Coins(UserId, Tier),
    /// A requester's quota row for an owner's coins of one tier: one claim per batch.
    Quota(UserId, UserId, Tier),
    /// The reply record of one idempotency key: one claim per batch.
    Reply(UserId, UserId, IdempotencyKey),
}

/// What `r` uses, and whether only one claim of a batch may use it.
pub(super) fn contended(r: &ClaimRequest) -> impl Iterator<Item = (Contended, bool)> + use<> {
    let reply = r.idempotency.map(|k| (Contended::Reply(r.owner, r.requester, k), true));
    [(Contended::Coins(r.owner, r.tier), false), (Contended::Quota(r.owner, r.requester, r.tier), true)]
        .into_iter()
        .chain(reply)
}

/// Take up to `max` items in order for one batch. `keys` names what an item uses, each marked
/// exclusive (one item per batch) or shared (any number, in order). An item joins unless an item
/// already in the batch holds one of its exclusive keys, or an item left for later holds any of
/// its keys — so no item overtakes an earlier one it shares anything with. The rest, in order,
/// are left for later.
pub(super) fn split<T, K, I>(items: VecDeque<T>, max: usize, keys: impl Fn(&T) -> I) -> (Vec<T>, VecDeque<T>)
where
    K: std::hash::Hash + Eq,
    I: Iterator<Item = (K, bool)>,
{
    let mut batch = Vec::with_capacity(items.len().min(max));
    let mut later = VecDeque::new();
    let (mut taken, mut blocked) = (HashSet::new(), HashSet::new());
    for item in items {
        let k: Vec<(K, bool)> = keys(&item).collect();
        let free = !k.iter().any(|(k, exclusive)| blocked.contains(k) || (*exclusive && taken.contains(k)));
        if batch.len() < max && free {
            taken.extend(k.into_iter().filter(|(_, exclusive)| *exclusive).map(|(k, _)| k));
            batch.push(item);
        } else {
            blocked.extend(k.into_iter().map(|(k, _)| k));
            later.push_back(item);
        }
    }
    (batch, later)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items are (exclusive slot, optional shared pool).
    fn run(items: &[(u8, Option<u8>)], max: usize) -> (Vec<usize>, Vec<usize>) {
        let items: VecDeque<(usize, (u8, Option<u8>))> = items.iter().copied().enumerate().collect();
        let (batch, later) = split(items, max, |(_, (slot, pool))| {
            std::iter::once((u16::from(*slot), true)).chain(pool.map(|p| (1000 + u16::from(p), false)))
        });
        (batch.into_iter().map(|(i, _)| i).collect(), later.into_iter().map(|(i, _)| i).collect())
    }

    #[test]
    fn contending_items_wait_and_keep_their_order() {
        // 0 and 2 share a slot: 2 waits; 3 shares a pool with 2, so it waits behind it even though
        // nothing in the batch holds that pool.
        assert_eq!(
            run(&[(1, None), (2, Some(7)), (1, Some(8)), (3, Some(8)), (4, None)], 64),
            (vec![0, 1, 4], vec![2, 3])
        );
    }

    #[test]
    fn a_shared_pool_is_shared_until_someone_waits_for_it() {
        // 0, 1 and 3 share pool 5 in one batch; 2 waits for slot 1, so 4 (pool 5) may not
        // overtake it.
        assert_eq!(
            run(&[(1, Some(5)), (2, Some(5)), (1, Some(5)), (3, Some(6)), (4, Some(5))], 64),
            (vec![0, 1, 3], vec![2, 4])
        );
    }

    #[test]
    fn a_full_batch_leaves_the_rest_in_order() {
        assert_eq!(run(&[(1, None), (2, None), (3, None), (4, None)], 2), (vec![0, 1], vec![2, 3]));
        assert_eq!(run(&[(1, None), (1, None), (1, None)], 64), (vec![0], vec![1, 2]));
    }

    #[test]
    fn the_first_item_always_goes() {
        assert_eq!(run(&[(9, Some(9))], 1), (vec![0], vec![]));
        assert_eq!(run(&[], 4), (vec![], vec![]));
    }
}
