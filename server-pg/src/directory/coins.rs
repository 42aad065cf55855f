//! Upload, counts and the two sweeps.

use aqm_core::coin::PublicCoin;
use aqm_core::{Policy, Tier, TierCounts, UnixSeconds, UserId, directory};
use uuid::Uuid;

use deadpool_postgres::Transaction;
use tokio_postgres::GenericClient;

use super::rows::{COIN_COLUMNS, coin_from_row, uuid};
use super::{PgDirectory, to_i64};
use crate::ServerError;

impl PgDirectory {
    /// Publish `coins` of a registered `owner`: all verified by the core first
    /// ([`directory::verify_upload`], off the async threads), then stored in one transaction:
    /// one-time coins inserted in one statement in their order, idempotent on (owner, key id);
    /// each last-resort coin put in its (owner, tier) slot when [`directory::last_resort_replaces`]
    /// says it replaces the one there (which is deleted). Returns how many were new.
    pub async fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, ServerError> {
        let identity = self.identity(owner).await?.ok_or(aqm_core::Error::UnknownUser)?;
        let policy = self.policy.clone();
        let batch = coins.to_vec();
        let batch = tokio::task::spawn_blocking(move || {
            directory::verify_upload(&policy, &identity, &batch, now).map(|()| batch)
        })
        .await
        .map_err(|e| ServerError::Database(format!("verification task failed: {e}")))??;
        let (last_resort, one_time): (Vec<PublicCoin>, Vec<PublicCoin>) =
            batch.into_iter().partition(PublicCoin::is_last_resort);
        let mut client = self.pool.get().await?;
        if last_resort.is_empty() {
            // The common upload: one statement, no transaction round trips.
            return insert_one_time(&**client, owner, &one_time, now).await;
        }
        let tx = client.transaction().await?;
        let mut inserted = insert_one_time(&*tx, owner, &one_time, now).await?;
        // An owner's last-resort uploads take turns on its identity row, so two of them never
        // both find a slot empty (or holding the same coin) and both write it. Claims do not lock
        // this row; registering a token only takes a key-share lock on it, which does not wait.
        tx.execute("SELECT 1 FROM identities WHERE user_id = $1 FOR NO KEY UPDATE", &[&uuid(&owner.0)]).await?;
        for coin in &last_resort {
            inserted += put_last_resort(&tx, owner, coin, now).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Unclaimed one-time coins per tier of `owner` (a last-resort coin is never used up, so it
    /// is not counted: [`aqm_core::store::DirectoryStore::available`]).
    pub async fn available(&self, owner: &UserId) -> Result<TierCounts, ServerError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT coin_category, count(*) FROM coin_inventory
                 WHERE user_id = $1 AND coin_kind = 0 AND fetched_by IS NULL GROUP BY coin_category",
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

/// Insert one-time coins in their order; a key id repeated inside the batch or already stored is
/// skipped (idempotent upload). Returns how many were new.
async fn insert_one_time(
    client: &impl GenericClient,
    owner: &UserId,
    batch: &[PublicCoin],
    now: UnixSeconds,
) -> Result<u32, ServerError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let key_ids: Vec<Uuid> = batch.iter().map(|c| uuid(&c.key_id.0)).collect();
    let tiers: Vec<&str> = batch.iter().map(|c| c.tier.as_str()).collect();
    let kinds: Vec<i16> = batch.iter().map(|c| i16::from(c.kind.to_byte())).collect();
    let expires: Vec<i64> = batch.iter().map(|c| to_i64(c.expires_at)).collect::<Result<_, _>>()?;
    let keys: Vec<&[u8]> = batch.iter().map(|c| c.public_key.as_slice()).collect();
    let sigs: Vec<&[u8]> = batch.iter().map(|c| c.signature.as_slice()).collect();
    // ORDER BY the batch position so upload order (record_id) follows the request.
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

/// Put one last-resort coin in its owner's slot of its tier, inside the upload's transaction
/// (which holds the owner's lock): read what the slot holds, ask the core whether `coin`
/// replaces it, and if so delete it and insert `coin`. Returns 1 when `coin` was stored.
async fn put_last_resort(
    tx: &Transaction<'_>,
    owner: &UserId,
    coin: &PublicCoin,
    now: UnixSeconds,
) -> Result<u32, ServerError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {COIN_COLUMNS} FROM coin_inventory
                 WHERE user_id = $1 AND (key_id = $2 OR (coin_kind = 1 AND coin_category = $3))"
            ),
            &[&uuid(&owner.0), &uuid(&coin.key_id.0), &coin.tier.as_str()],
        )
        .await?;
    let stored = rows.iter().map(coin_from_row).collect::<Result<Vec<_>, _>>()?;
    if stored.iter().any(|d| d.coin.key_id == coin.key_id) {
        // Already stored (an idempotent repeat; or, if the owner signed two coins with one key
        // id, the first one stays, as for one-time coins).
        return Ok(0);
    }
    let current = stored.iter().find(|d| d.coin.is_last_resort() && d.coin.tier == coin.tier);
    if !directory::last_resort_replaces(current.map(|d| &d.coin), coin) {
        return Ok(0);
    }
    if let Some(old) = current {
        tx.execute(
            "DELETE FROM coin_inventory WHERE user_id = $1 AND key_id = $2",
            &[&uuid(&owner.0), &uuid(&old.coin.key_id.0)],
        )
        .await?;
    }
    insert_one(tx, owner, coin, now).await
}

async fn insert_one(
    tx: &Transaction<'_>,
    owner: &UserId,
    coin: &PublicCoin,
    now: UnixSeconds,
) -> Result<u32, ServerError> {
    let n = tx
        .execute(
            "INSERT INTO coin_inventory
                 (user_id, key_id, coin_category, coin_kind, expires_at, public_key_blob, signature_blob, uploaded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &uuid(&owner.0),
                &uuid(&coin.key_id.0),
                &coin.tier.as_str(),
                &i16::from(coin.kind.to_byte()),
                &to_i64(coin.expires_at)?,
                &coin.public_key.as_slice(),
                &coin.signature.as_slice(),
                &to_i64(now)?,
            ],
        )
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}
