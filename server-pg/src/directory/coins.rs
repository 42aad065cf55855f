//! Upload, counts and the two sweeps.

use aqm_core::coin::PublicCoin;
use aqm_core::{Policy, Tier, TierCounts, UnixSeconds, UserId, directory};
use uuid::Uuid;

use super::rows::uuid;
use super::{PgDirectory, to_i64};
use crate::ServerError;

impl PgDirectory {
    /// Publish `coins` of a registered `owner`: all verified by the core first
    /// ([`directory::verify_upload`], off the async threads), then inserted in one statement in
    /// their order, idempotent on (owner, key id). Returns how many were new.
    pub async fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, ServerError> {
        let identity = self.identity(owner).await?.ok_or(aqm_core::Error::UnknownUser)?;
        let policy = self.policy.clone();
        let batch = coins.to_vec();
        let batch = tokio::task::spawn_blocking(move || {
            directory::verify_upload(&policy, &identity, &batch, now).map(|()| batch)
        })
        .await
        .map_err(|e| ServerError::Database(format!("verification task failed: {e}")))??;
        if batch.is_empty() {
            return Ok(0);
        }
        let key_ids: Vec<Uuid> = batch.iter().map(|c| uuid(&c.key_id.0)).collect();
        let tiers: Vec<&str> = batch.iter().map(|c| c.tier.as_str()).collect();
        let kinds: Vec<i16> = batch.iter().map(|c| i16::from(c.kind.to_byte())).collect();
        let expires: Vec<i64> = batch.iter().map(|c| to_i64(c.expires_at)).collect::<Result<_, _>>()?;
        let keys: Vec<&[u8]> = batch.iter().map(|c| c.public_key.as_slice()).collect();
        let sigs: Vec<&[u8]> = batch.iter().map(|c| c.signature.as_slice()).collect();
        let client = self.pool.get().await?;
        // ORDER BY the batch position so upload order (record_id) follows the request; a key id
        // repeated inside the batch or already stored is skipped by ON CONFLICT.
        let inserted = client
            .execute(
                "INSERT INTO coin_inventory
                     (user_id, key_id, coin_category, coin_kind, expires_at, public_key_blob, signature_blob, uploaded_at)
                 SELECT $1, k, c, d, e, p, s, $8
                 FROM unnest($2::uuid[], $3::text[], $4::int2[], $5::int8[], $6::bytea[], $7::bytea[])
                      WITH ORDINALITY AS t(k, c, d, e, p, s, n)
                 ORDER BY n
                 ON CONFLICT (user_id, key_id) DO NOTHING",
                &[&uuid(&owner.0), &key_ids, &tiers, &kinds, &expires, &keys, &sigs, &to_i64(now)?],
            )
            .await?;
        Ok(u32::try_from(inserted).unwrap_or(u32::MAX))
    }

    /// Unclaimed coins per tier of `owner`.
    pub async fn available(&self, owner: &UserId) -> Result<TierCounts, ServerError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT coin_category, count(*) FROM coin_inventory
                 WHERE user_id = $1 AND fetched_by IS NULL GROUP BY coin_category",
                &[&uuid(&owner.0)],
            )
            .await?;
        let mut counts = TierCounts::default();
        for row in &rows {
            let tier: Tier = row
                .try_get::<_, &str>(0)?
                .parse()
                .map_err(|_| ServerError::Database("corrupt directory row: coin_category".into()))?;
            *counts.get_mut(tier) = u32::try_from(row.try_get::<_, i64>(1)?).unwrap_or(u32::MAX);
        }
        Ok(counts)
    }

    /// Delete unclaimed coins that are stale at `now` under `policy` (the directory's own, or
    /// one with an admin's stale age): [`directory::is_stale`] as a query, through the core's
    /// thresholds ([`directory::stale_uploaded_at_or_before`], [`directory::claimable_after`]).
    pub async fn purge_stale_with(&self, policy: &Policy, now: UnixSeconds) -> Result<u32, ServerError> {
        // The core's thresholds for these rules; -1 (None) matches no row.
        let uploaded_before = directory::stale_uploaded_at_or_before(policy, now).map_or(Ok(-1), to_i64)?;
        let fresh_after = to_i64(directory::claimable_after(policy, now))?;
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM coin_inventory
                 WHERE fetched_by IS NULL AND (uploaded_at <= $1 OR expires_at <= $2)",
                &[&uploaded_before, &fresh_after],
            )
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// [`Self::purge_stale_with`] under the directory's policy.
    pub async fn purge_stale(&self, now: UnixSeconds) -> Result<u32, ServerError> {
        let policy = self.policy.clone();
        self.purge_stale_with(&policy, now).await
    }

    /// Delete claimed coins, and idempotency records, past the claim grace at `now` under
    /// `policy` ([`directory::claim_expired`] through [`directory::claim_expired_at_or_before`]).
    /// Returns how many coins.
    pub async fn hard_delete_claimed_with(&self, policy: &Policy, now: UnixSeconds) -> Result<u32, ServerError> {
        let claimed_before = directory::claim_expired_at_or_before(policy, now).map_or(Ok(-1), to_i64)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute("DELETE FROM coin_inventory WHERE fetched_by IS NOT NULL AND fetched_at <= $1", &[&claimed_before])
            .await?;
        tx.execute("DELETE FROM claim_replies WHERE created_at <= $1", &[&claimed_before]).await?;
        tx.commit().await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// [`Self::hard_delete_claimed_with`] under the directory's policy.
    pub async fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, ServerError> {
        let policy = self.policy.clone();
        self.hard_delete_claimed_with(&policy, now).await
    }
}
