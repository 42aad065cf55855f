//! The claim: hands out the oldest fresh coins of one owner and tier, each to exactly one
//! requester, within the anti-drain quota, idempotent on the client's key — for a batch of
//! claims that do not contend (`claim_queue`), in one transaction of five statements whatever
//! the batch's size, each claim getting what it would get alone in batch order. A single claim
//! is a batch of one. When a claim finds no one-time coin of the tier, the core may hand out the
//! owner's last-resort coin instead ([`directory::plan_claim`]): it is read (unlocked, never
//! written) by one more statement when some owner's one-time coins fell short, counts against
//! the quota and is named in the reply record, but stays unclaimed for the next requester.
//!
//! Order of locks, the same in every transaction so two never deadlock: the idempotency records
//! (inserted sorted; a retry with the same key waits here for the first attempt to end, then
//! replays it), then the quota rows of (owner, requester, tier) (upserted sorted; one requester's
//! concurrent claims are serialised, so the quota holds), then the coin rows `FOR UPDATE SKIP
//! LOCKED` (claims never wait for each other's coins and never get the same one).

use std::collections::{HashMap, HashSet};

use aqm_core::directory::{self, Claimed, DirectoryCoin, IdempotencyKey};
use aqm_core::{Tier, UnixSeconds, UserId};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::claim_queue::{ClaimRequest, ClaimResult};
use super::rows::{COIN_COLUMNS, coin_from_row, uuid};
use super::{PgDirectory, to_i64, to_u64};
use crate::ServerError;

impl PgDirectory {
    /// Claim up to `count` coins of `owner` and `tier` for `requester` at `now`
    /// ([`aqm_core::store::DirectoryStore::claim`]'s contract). Quota spent → `QuotaExceeded`
    /// and nothing recorded; a retry with the same `idempotency` key → the same coins.
    pub async fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Claimed, ServerError> {
        self.claim_reporting(owner, requester, tier, count, idempotency, now).await.map(|(c, _)| c)
    }

    /// [`Self::claim`], also saying whether the coins are a replay of an earlier claim with the
    /// same idempotency key (for metrics: a replay hands out nothing new). With claim batching
    /// on ([`Self::with_claim_batching`]) the claim shares a transaction with concurrent ones.
    pub async fn claim_reporting(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<(Claimed, bool), ServerError> {
        let request = ClaimRequest { owner: *owner, requester: *requester, tier, count, idempotency, now };
        match &self.claims {
            Some(queue) => queue.claim(request).await,
            None => self.claim_many(std::slice::from_ref(&request)).await.remove(0),
        }
    }

    /// Run `requests` (no two contending: `claim_queue::split`) in one transaction; one result
    /// per request, in order. A deadlock or serialization failure is retried once; any other
    /// failure of the transaction is every request's answer (nothing of it was committed).
    pub(super) async fn claim_many(&self, requests: &[ClaimRequest]) -> Vec<ClaimResult> {
        let mut outcome = self.claim_transaction(requests).await;
        if matches!(&outcome, Err(Failure::Pg(e)) if is_lock_conflict(e)) {
            outcome = self.claim_transaction(requests).await;
        }
        self.batch_stats.record(requests.len());
        match outcome {
            Ok(results) => results,
            Err(failure) => {
                let e = ServerError::from(failure);
                requests.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    async fn claim_transaction(&self, requests: &[ClaimRequest]) -> Result<Vec<ClaimResult>, Failure> {
        let mut client = self.pool.get().await.map_err(ServerError::from)?;
        let tx = client.transaction().await?;
        let results = claim_in(&tx, &self.policy, requests).await?;
        tx.commit().await?;
        Ok(results)
    }
}

/// Why a claim transaction failed: PostgreSQL's own error is kept to tell a deadlock (retried)
/// from the rest.
enum Failure {
    Pg(tokio_postgres::Error),
    Server(ServerError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<ServerError> for Failure {
    fn from(e: ServerError) -> Self {
        Failure::Server(e)
    }
}

impl From<Failure> for ServerError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Pg(e) => e.into(),
            Failure::Server(e) => e,
        }
    }
}

/// Deadlock detected (40P01) or serialization failure (40001): the transaction was rolled back
/// and may simply be run again.
fn is_lock_conflict(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| matches!(d.code().code(), "40P01" | "40001"))
}

/// Where one request stands while its transaction runs.
enum Step {
    /// Refused (quota spent); its fresh reply record is removed again.
    Refused(aqm_core::Error),
    /// An earlier claim with the same key: its coins are read back.
    Replay,
    /// Quota read: how many it may take, and what it had used.
    Granted { grant: u32, used: u32 },
}

async fn claim_in(
    tx: &Transaction<'_>,
    policy: &aqm_core::Policy,
    requests: &[ClaimRequest],
) -> Result<Vec<ClaimResult>, Failure> {
    let n = requests.len();
    let owners: Vec<Uuid> = requests.iter().map(|r| uuid(&r.owner.0)).collect();
    let requesters: Vec<Uuid> = requests.iter().map(|r| uuid(&r.requester.0)).collect();
    let nows: Vec<i64> = requests.iter().map(|r| to_i64(r.now)).collect::<Result<_, _>>()?;

    // 1. Reply records first: a concurrent attempt with the same key blocks on its record until
    //    that transaction ends, then finds it and replays. Filled in with the picks below.
    let keyed: Vec<usize> = (0..n).filter(|&i| requests[i].idempotency.is_some()).collect();
    let key_of = |i: usize| requests[i].idempotency.as_ref().map_or(&[][..], |k| k.as_slice());
    let mut fresh: HashSet<(Uuid, Uuid, Vec<u8>)> = HashSet::new();
    if !keyed.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO claim_replies (user_id, requester_id, idempotency_key, created_at, key_ids)
                 SELECT o, r, k, t, '{}' FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::bigint[]) AS x(o, r, k, t)
                 ORDER BY o, r, k
                 ON CONFLICT DO NOTHING
                 RETURNING user_id, requester_id, idempotency_key",
            )
            .await?;
        let rows = tx
            .query(
                &stmt,
                &[
                    &keyed.iter().map(|&i| owners[i]).collect::<Vec<_>>(),
                    &keyed.iter().map(|&i| requesters[i]).collect::<Vec<_>>(),
                    &keyed.iter().map(|&i| key_of(i)).collect::<Vec<_>>(),
                    &keyed.iter().map(|&i| nows[i]).collect::<Vec<_>>(),
                ],
            )
            .await?;
        for row in &rows {
            fresh.insert((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
    }
    let replays: Vec<usize> =
        keyed.iter().copied().filter(|&i| !fresh.contains(&(owners[i], requesters[i], key_of(i).to_vec()))).collect();
    let mut is_replay = vec![false; n];
    for &i in &replays {
        is_replay[i] = true;
    }

    // 2. The quota rows of the others, created or locked in one statement (the no-op update
    //    takes the row lock); the replays' coins read beside it, pipelined.
    let claiming: Vec<usize> = (0..n).filter(|&i| !is_replay[i]).collect();
    let windows: Vec<u64> = requests.iter().map(|r| directory::quota_window(policy, r.now)).collect();
    let quota_rows = async {
        if claiming.is_empty() {
            return Ok(Vec::new());
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO claim_quotas (user_id, requester_id, coin_category, window_start, used)
                 SELECT o, r, c, w, 0 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[]) AS x(o, r, c, w)
                 ORDER BY o, r, c
                 ON CONFLICT (user_id, requester_id, coin_category) DO UPDATE SET used = claim_quotas.used
                 RETURNING user_id, requester_id, coin_category, window_start, used",
            )
            .await?;
        tx.query(
            &stmt,
            &[
                &claiming.iter().map(|&i| owners[i]).collect::<Vec<_>>(),
                &claiming.iter().map(|&i| requesters[i]).collect::<Vec<_>>(),
                &claiming.iter().map(|&i| requests[i].tier.as_str()).collect::<Vec<_>>(),
                &claiming.iter().map(|&i| to_i64(windows[i])).collect::<Result<Vec<_>, _>>().map_err(Failure::from)?,
            ],
        )
        .await
        .map_err(Failure::from)
    };
    let replayed = read_replays(tx, &replays, &owners, &requesters, &key_of);
    let (quota_rows, mut replayed) = tokio::try_join!(quota_rows, replayed)?;
    let mut quota: HashMap<(Uuid, Uuid, Tier), (u64, u32)> = HashMap::new();
    for row in &quota_rows {
        let tier: Tier = row
            .try_get::<_, &str>(2)?
            .parse()
            .map_err(|_| ServerError::Database("corrupt claim_quotas row: coin_category".into()))?;
        let used = u32::try_from(row.try_get::<_, i32>(4)?).unwrap_or(0);
        quota.insert((row.try_get(0)?, row.try_get(1)?, tier), (to_u64(row.try_get(3)?)?, used));
    }

    // 3. How many each may take: the core's grant (QuotaExceeded when none is left).
    let mut steps: Vec<Step> = Vec::with_capacity(n);
    for (i, r) in requests.iter().enumerate() {
        if is_replay[i] {
            steps.push(Step::Replay);
            continue;
        }
        let used = directory::used_now(policy, quota.get(&(owners[i], requesters[i], r.tier)).copied(), r.now);
        steps.push(match directory::quota_grant(policy, r.tier, used, r.count) {
            Err(e) => Step::Refused(e),
            Ok(grant) => Step::Granted { grant, used },
        });
    }

    // 4. Candidates, once per owner and tier for all of the batch's claims on it (they take
    //    turns on one list below, in batch order, exactly as one after the other): only coins
    //    the core would find claimable (so expiring ones at the head of a queue do not use up
    //    the LIMIT), oldest first, locked; the core's plan checks each again.
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    for (i, r) in requests.iter().enumerate() {
        let Step::Granted { grant, .. } = steps[i] else { continue };
        if grant == 0 {
            continue;
        }
        let g = match groups.iter().position(|g| g.owner == owners[i] && g.tier == r.tier) {
            Some(g) => g,
            None => {
                groups.push(Group {
                    owner: owners[i],
                    tier: r.tier,
                    now: r.now,
                    limit: 0,
                    coins: Vec::new(),
                    last_resort: None,
                });
                groups.len() - 1
            }
        };
        // The latest `now` reads only coins claimable for every claim of the group.
        groups[g].now = groups[g].now.max(r.now);
        groups[g].limit += i64::from(grant);
        group_of[i] = Some(g);
    }
    if !groups.is_empty() {
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT c.*, x.g FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::int[]) AS x(o, t, fresh, lim, g)
                 CROSS JOIN LATERAL (
                     SELECT {COIN_COLUMNS} FROM coin_inventory
                     WHERE user_id = x.o AND coin_category = x.t AND coin_kind = 0 AND fetched_by IS NULL
                           AND expires_at > x.fresh
                     ORDER BY record_id LIMIT x.lim FOR UPDATE SKIP LOCKED) c"
            ))
            .await?;
        let fresh_after: Vec<i64> =
            groups.iter().map(|g| to_i64(directory::claimable_after(policy, g.now))).collect::<Result<_, _>>()?;
        let rows = tx
            .query(
                &stmt,
                &[
                    &groups.iter().map(|g| g.owner).collect::<Vec<_>>(),
                    &groups.iter().map(|g| g.tier.as_str()).collect::<Vec<_>>(),
                    &fresh_after,
                    &groups.iter().map(|g| g.limit).collect::<Vec<_>>(),
                    &(0..groups.len()).map(|g| g as i32).collect::<Vec<_>>(),
                ],
            )
            .await?;
        for row in &rows {
            let g =
                usize::try_from(row.try_get::<_, i32>(11)?).map_err(|_| ServerError::Database("bad group".into()))?;
            groups[g].coins.push(coin_from_row(row)?);
        }
        read_last_resort(tx, &mut groups).await?;
    }

    // 5. The plans' writes in one statement: the picks, the quotas' use (only where something was
    //    picked: an empty claim uses no quota), the replies for a retry, and the removal of the
    //    reply records of refused claims.
    let mut results: Vec<ClaimResult> = Vec::with_capacity(n);
    let mut w = Writes::default();
    for (i, r) in requests.iter().enumerate() {
        match &steps[i] {
            Step::Refused(e) => {
                if r.idempotency.is_some() {
                    w.undo.push(i);
                }
                results.push(Err(ServerError::Core(*e)));
            }
            Step::Replay => results.push(Ok((std::mem::take(&mut replayed[i]), true))),
            Step::Granted { used, .. } => {
                let none = Vec::new();
                let candidates = group_of[i].map_or(&none, |g| &groups[g].coins);
                let last_resort = group_of[i].and_then(|g| groups[g].last_resort.as_ref()).map(|d| &d.coin);
                let plan = directory::plan_claim(policy, r.tier, *used, r.count, r.now, candidates, last_resort)
                    .map_err(ServerError::from)?;
                let mut claimed = Claimed::new();
                for seq in &plan.picks {
                    if let Some(d) = candidates.iter().find(|d| d.seq == *seq) {
                        w.coins.push((i, uuid(&d.coin.key_id.0)));
                        if r.idempotency.is_some() {
                            w.replies.push((i, uuid(&d.coin.key_id.0), claimed.len() as i32));
                        }
                        // At most MAX_CLAIM picks, the capacity of `claimed`.
                        let _ = claimed.push(d.coin.clone());
                    }
                }
                // Handed out, not claimed: it stays for the next requester, and the reply record
                // names it so a retry gets it again.
                if let Some(c) = last_resort.filter(|c| plan.last_resort == Some(c.key_id)) {
                    if r.idempotency.is_some() {
                        w.replies.push((i, uuid(&c.key_id.0), claimed.len() as i32));
                    }
                    // Handed out only in place of picks: `claimed` has room.
                    let _ = claimed.push(c.clone());
                }
                // The next claim of the group plans on what is left.
                if let Some(g) = group_of[i] {
                    groups[g].coins.retain(|d| !plan.picks.contains(&d.seq));
                }
                if plan.hands_out() {
                    w.quotas.push((i, to_i64(plan.window)?, i32::try_from(plan.used_after).unwrap_or(i32::MAX)));
                }
                results.push(Ok((claimed, false)));
            }
        }
    }
    if !w.is_empty() {
        let stmt = tx
            .prepare_cached(
                "WITH coins AS (
                     UPDATE coin_inventory c SET fetched_by = x.r, fetched_at = x.t
                     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[]) AS x(o, k, r, t)
                     WHERE c.user_id = x.o AND c.key_id = x.k
                 ), quotas AS (
                     UPDATE claim_quotas q SET window_start = x.w, used = x.u
                     FROM unnest($5::uuid[], $6::uuid[], $7::text[], $8::bigint[], $9::int[]) AS x(o, r, t, w, u)
                     WHERE q.user_id = x.o AND q.requester_id = x.r AND q.coin_category = x.t
                 ), replies AS (
                     UPDATE claim_replies p SET key_ids = x.ids
                     FROM (SELECT o, r, k, array_agg(kid ORDER BY pos) AS ids
                           FROM unnest($10::uuid[], $11::uuid[], $12::bytea[], $13::uuid[], $14::int[]) AS y(o, r, k, kid, pos)
                           GROUP BY o, r, k) x
                     WHERE p.user_id = x.o AND p.requester_id = x.r AND p.idempotency_key = x.k
                 )
                 DELETE FROM claim_replies p USING unnest($15::uuid[], $16::uuid[], $17::bytea[]) AS x(o, r, k)
                 WHERE p.user_id = x.o AND p.requester_id = x.r AND p.idempotency_key = x.k",
            )
            .await?;
        let col = |v: &[usize], f: &dyn Fn(usize) -> Uuid| v.iter().map(|&i| f(i)).collect::<Vec<Uuid>>();
        let coin_rows: Vec<usize> = w.coins.iter().map(|c| c.0).collect();
        let quota_rows: Vec<usize> = w.quotas.iter().map(|q| q.0).collect();
        let reply_rows: Vec<usize> = w.replies.iter().map(|p| p.0).collect();
        tx.execute(
            &stmt,
            &[
                &col(&coin_rows, &|i| owners[i]),
                &w.coins.iter().map(|c| c.1).collect::<Vec<_>>(),
                &col(&coin_rows, &|i| requesters[i]),
                &coin_rows.iter().map(|&i| nows[i]).collect::<Vec<_>>(),
                &col(&quota_rows, &|i| owners[i]),
                &col(&quota_rows, &|i| requesters[i]),
                &quota_rows.iter().map(|&i| requests[i].tier.as_str()).collect::<Vec<_>>(),
                &w.quotas.iter().map(|q| q.1).collect::<Vec<_>>(),
                &w.quotas.iter().map(|q| q.2).collect::<Vec<_>>(),
                &col(&reply_rows, &|i| owners[i]),
                &col(&reply_rows, &|i| requesters[i]),
                &reply_rows.iter().map(|&i| key_of(i)).collect::<Vec<_>>(),
                &w.replies.iter().map(|p| p.1).collect::<Vec<_>>(),
                &w.replies.iter().map(|p| p.2).collect::<Vec<_>>(),
                &col(&w.undo, &|i| owners[i]),
                &col(&w.undo, &|i| requesters[i]),
                &w.undo.iter().map(|&i| key_of(i)).collect::<Vec<_>>(),
            ],
        )
        .await?;
    }
    Ok(results)
}

/// One owner's coins of one tier, read once for every claim of the batch on them.
struct Group {
    owner: Uuid,
    tier: Tier,
    now: UnixSeconds,
    /// The sum of the claims' grants.
    limit: i64,
    /// One-time coins, oldest first; each claim removes its picks.
    coins: Vec<DirectoryCoin>,
    /// The owner's last-resort coin of the tier, if it has one (the core decides whether a
    /// claim gets it).
    last_resort: Option<DirectoryCoin>,
}

/// Read the owner's last-resort coin for each group whose one-time coins fell short of its
/// claims' grants: only there can the core hand it out ([`directory::plan_claim`] gives it to a
/// claim that picked no one-time coin, and when a group found as many claimable coins as it was
/// granted, every claim of it picks its full grant). So a claim on an owner with coins left costs
/// nothing more; a dry owner's costs one more statement per batch. Unlocked: the coin is never
/// written by a claim, and an upload replacing it meanwhile leaves this claim the coin that was
/// live when it read.
async fn read_last_resort(tx: &Transaction<'_>, groups: &mut [Group]) -> Result<(), Failure> {
    let short: Vec<usize> = (0..groups.len()).filter(|&g| (groups[g].coins.len() as i64) < groups[g].limit).collect();
    if short.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT c.*, x.g FROM unnest($1::uuid[], $2::text[], $3::int[]) AS x(o, t, g)
             JOIN LATERAL (
                 SELECT {COIN_COLUMNS} FROM coin_inventory
                 WHERE user_id = x.o AND coin_category = x.t AND coin_kind = 1) c ON true"
        ))
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &short.iter().map(|&g| groups[g].owner).collect::<Vec<_>>(),
                &short.iter().map(|&g| groups[g].tier.as_str()).collect::<Vec<_>>(),
                &short.iter().map(|&g| g as i32).collect::<Vec<_>>(),
            ],
        )
        .await?;
    for row in &rows {
        let g = usize::try_from(row.try_get::<_, i32>(11)?).map_err(|_| ServerError::Database("bad group".into()))?;
        let coin = coin_from_row(row)?;
        if !coin.coin.is_last_resort() {
            return Err(ServerError::Database("corrupt directory row: coin_kind".into()).into());
        }
        groups.get_mut(g).ok_or_else(|| ServerError::Database("bad group".into()))?.last_resort = Some(coin);
    }
    Ok(())
}

/// The rows statement 5 writes, by request index.
#[derive(Default)]
struct Writes {
    /// (request, coin key id) for every pick.
    coins: Vec<(usize, Uuid)>,
    /// (request, window start, used after) where something was picked.
    quotas: Vec<(usize, i64, i32)>,
    /// (request, coin key id, position in its reply) for keyed requests.
    replies: Vec<(usize, Uuid, i32)>,
    /// Keyed requests refused: their fresh reply records go.
    undo: Vec<usize>,
}

impl Writes {
    fn is_empty(&self) -> bool {
        // A last-resort hand-out writes a quota and maybe a reply but no coin.
        self.coins.is_empty() && self.quotas.is_empty() && self.replies.is_empty() && self.undo.is_empty()
    }
}

/// The coins earlier claims with these keys handed out (those not yet hard-deleted), oldest
/// first, by request index.
async fn read_replays<'k>(
    tx: &Transaction<'_>,
    replays: &[usize],
    owners: &[Uuid],
    requesters: &[Uuid],
    key_of: &(dyn Fn(usize) -> &'k [u8] + Sync),
) -> Result<Vec<Claimed>, Failure> {
    let mut out = vec![Claimed::new(); owners.len()];
    if replays.is_empty() {
        return Ok(out);
    }
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT c.*, x.i FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::int[]) AS x(o, r, k, i)
             JOIN claim_replies p ON p.user_id = x.o AND p.requester_id = x.r AND p.idempotency_key = x.k
             CROSS JOIN LATERAL (
                 SELECT {COIN_COLUMNS} FROM coin_inventory WHERE user_id = x.o AND key_id = ANY(p.key_ids)) c
             ORDER BY x.i, c.record_id"
        ))
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &replays.iter().map(|&i| owners[i]).collect::<Vec<_>>(),
                &replays.iter().map(|&i| requesters[i]).collect::<Vec<_>>(),
                &replays.iter().map(|&i| key_of(i)).collect::<Vec<_>>(),
                &replays.iter().map(|&i| i as i32).collect::<Vec<_>>(),
            ],
        )
        .await?;
    for row in &rows {
        let i = usize::try_from(row.try_get::<_, i32>(11)?).map_err(|_| ServerError::Database("bad index".into()))?;
        // A reply names at most MAX_CLAIM coins, the capacity of a `Claimed`.
        let _ = out[i].push(coin_from_row(row)?.coin);
    }
    Ok(out)
}
