//! The claim: one transaction that hands out the oldest fresh coins of one owner and tier, each
//! to exactly one requester, within the anti-drain quota, idempotent on the client's key.
//!
//! Order of locks, the same in every claim so two never deadlock: the idempotency record (a
//! retry with the same key waits here for the first attempt, then replays it), then the quota
//! row of (owner, requester, tier) (one requester's concurrent claims are serialised, so the
//! quota holds), then the coin rows `FOR UPDATE SKIP LOCKED` (different requesters never wait
//! for each other's coins and never get the same one).

use aqm_core::directory::{self, Claimed, DirectoryCoin, IdempotencyKey};
use aqm_core::{Tier, UnixSeconds, UserId};
use tokio_postgres::Transaction;
use uuid::Uuid;

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
    /// same idempotency key (for metrics: a replay hands out nothing new).
    pub async fn claim_reporting(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<(Claimed, bool), ServerError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let claimed = self.claim_in(&tx, owner, requester, tier, count, idempotency, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    #[allow(clippy::too_many_arguments)]
    async fn claim_in(
        &self,
        tx: &Transaction<'_>,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<(Claimed, bool), ServerError> {
        let (owner_id, requester_id, now_i) = (uuid(&owner.0), uuid(&requester.0), to_i64(now)?);
        if let Some(key) = idempotency {
            // Insert the record first: a concurrent attempt with the same key blocks on it until
            // this transaction ends, then sees it and replays. Filled in with the picks below;
            // rolled back with everything else if the claim is refused.
            let fresh = tx
                .execute(
                    "INSERT INTO claim_replies (user_id, requester_id, idempotency_key, created_at, key_ids)
                     VALUES ($1, $2, $3, $4, '{}') ON CONFLICT DO NOTHING",
                    &[&owner_id, &requester_id, &key.as_slice(), &now_i],
                )
                .await?;
            if fresh == 0 {
                return Ok((replay(tx, owner_id, requester_id, &key).await?, true));
            }
        }

        let window = directory::quota_window(&self.policy, now);
        // Create or lock the quota row in one statement (the no-op update takes the row lock).
        let quota = tx
            .query_one(
                "INSERT INTO claim_quotas (user_id, requester_id, coin_category, window_start, used)
                 VALUES ($1, $2, $3, $4, 0)
                 ON CONFLICT (user_id, requester_id, coin_category) DO UPDATE SET used = claim_quotas.used
                 RETURNING window_start, used",
                &[&owner_id, &requester_id, &tier.as_str(), &to_i64(window)?],
            )
            .await?;
        let used = if to_u64(quota.try_get(0)?)? == window {
            u32::try_from(quota.try_get::<_, i32>(1)?).unwrap_or(0)
        } else {
            0
        };
        // How many to read: the core's grant (QuotaExceeded when none is left).
        let grant = directory::quota_grant(&self.policy, tier, used, count)?;
        if grant == 0 {
            return Ok((Claimed::new(), false));
        }
        // Only coins the core would find claimable are read (so expiring ones at the head of
        // the queue do not use up the LIMIT); the core's plan checks each again.
        let fresh_after = to_i64(directory::claimable_after(&self.policy, now))?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {COIN_COLUMNS} FROM coin_inventory
                     WHERE user_id = $1 AND coin_category = $2 AND fetched_by IS NULL AND expires_at > $3
                     ORDER BY record_id LIMIT $4 FOR UPDATE SKIP LOCKED"
                ),
                &[&owner_id, &tier.as_str(), &fresh_after, &i64::from(grant)],
            )
            .await?;
        let candidates: Vec<DirectoryCoin> = rows.iter().map(coin_from_row).collect::<Result<_, _>>()?;
        let plan = directory::plan_claim(&self.policy, tier, used, count, now, &candidates)?;
        let mut claimed = Claimed::new();
        let mut picked: Vec<Uuid> = Vec::with_capacity(plan.picks.len());
        for seq in &plan.picks {
            if let Some(d) = candidates.iter().find(|d| d.seq == *seq) {
                picked.push(uuid(&d.coin.key_id.0));
                // At most MAX_CLAIM picks, the capacity of `claimed`.
                let _ = claimed.push(d.coin.clone());
            }
        }
        // The plan's writes in one statement: the picks, the quota's use (only if something was
        // picked: an empty claim uses no quota) and the reply for a retry.
        let key: &[u8] = idempotency.as_ref().map_or(&[], |k| k.as_slice());
        if picked.is_empty() && idempotency.is_none() {
            return Ok((claimed, false));
        }
        tx.execute(
            "WITH coins AS (
                 UPDATE coin_inventory SET fetched_by = $2, fetched_at = $3
                 WHERE user_id = $1 AND key_id = ANY($4) AND cardinality($4) > 0
             ), quota AS (
                 UPDATE claim_quotas SET window_start = $5, used = $6
                 WHERE user_id = $1 AND requester_id = $2 AND coin_category = $7 AND cardinality($4) > 0
             )
             UPDATE claim_replies SET key_ids = $4
             WHERE user_id = $1 AND requester_id = $2 AND idempotency_key = $8",
            &[
                &owner_id,
                &requester_id,
                &now_i,
                &picked,
                &to_i64(plan.window)?,
                &i32::try_from(plan.used_after).unwrap_or(i32::MAX),
                &tier.as_str(),
                &key,
            ],
        )
        .await?;
        Ok((claimed, false))
    }
}

/// The coins an earlier claim with this idempotency key handed out (those not yet hard-deleted).
async fn replay(
    tx: &Transaction<'_>,
    owner: Uuid,
    requester: Uuid,
    key: &IdempotencyKey,
) -> Result<Claimed, ServerError> {
    let row = tx
        .query_one(
            "SELECT key_ids FROM claim_replies WHERE user_id = $1 AND requester_id = $2 AND idempotency_key = $3",
            &[&owner, &requester, &key.as_slice()],
        )
        .await?;
    let ids: Vec<Uuid> = row.try_get(0)?;
    let rows = tx
        .query(
            &format!(
                "SELECT {COIN_COLUMNS} FROM coin_inventory WHERE user_id = $1 AND key_id = ANY($2) ORDER BY record_id"
            ),
            &[&owner, &ids],
        )
        .await?;
    let mut again = Claimed::new();
    for row in &rows {
        // A reply names at most MAX_CLAIM coins, the capacity of `again`.
        let _ = again.push(coin_from_row(row)?.coin);
    }
    Ok(again)
}
