//! [`DirectoryStore`]: a local coin directory (the simulator's stand-in for the server), each
//! method one redb transaction.
//!
//! Unclaimed coins sit under `(owner, tier, seq)`, so a claim takes the first keys of the range
//! (oldest first) and moves them to the claimed table in the same transaction: each coin goes to
//! exactly one requester.

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::directory::{self, Claimed, DirectoryCoin, IdempotencyKey};
use aqm_core::store::DirectoryStore;
use aqm_core::{Tier, TierCounts, UnixSeconds, UserId};
use redb::ReadableTable;

use crate::RedbStore;
use crate::codec::{
    self, DIR_CLAIMED, DIR_IDEMPOTENCY, DIR_IDENTITIES, DIR_KEYS, DIR_QUOTA, DIR_UNCLAIMED, Id, SEQ_DIRECTORY,
};
use crate::error::{Ctx, Error};
use crate::records;

fn identity_in<T: ReadableTable<Id, &'static [u8]>>(t: &T, user: &UserId) -> Result<Option<PublicIdentity>, Error> {
    match t.get(user.0).ctx("read table directory_identities")? {
        Some(g) => records::decode::<records::IdentityRecord>("directory_identities", g.value()).map(Some),
        None => Ok(None),
    }
}

impl DirectoryStore for RedbStore {
    type Error = Error;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Error> {
        directory::verify_registration(identity, proof)?;
        self.write("register_identity", |tx| {
            let mut t = tx.open_table(DIR_IDENTITIES).ctx("open table directory_identities")?;
            match identity_in(&t, &identity.user_id)? {
                Some(known) if known == *identity => Ok(()),
                Some(_) => Err(aqm_core::Error::KeyAlreadyExists.into()),
                None => {
                    let bytes = records::encode::<records::IdentityRecord>("directory_identities", identity)?;
                    t.insert(identity.user_id.0, bytes.as_slice()).ctx("write table directory_identities")?;
                    Ok(())
                }
            }
        })
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, Error> {
        self.read("identity", |tx| {
            identity_in(&tx.open_table(DIR_IDENTITIES).ctx("open table directory_identities")?, user)
        })
    }

    fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, Error> {
        // Signatures are checked before the write transaction (ML-DSA is slow and would hold the
        // writer lock); a registered identity never changes, so the check still holds below.
        let identity = self.identity(owner)?.ok_or(aqm_core::Error::UnknownUser)?;
        directory::verify_upload(&self.policy, &identity, coins, now)?;
        self.write("upload", |tx| {
            let mut keys = tx.open_table(DIR_KEYS).ctx("open table directory_keys")?;
            let mut unclaimed = tx.open_table(DIR_UNCLAIMED).ctx("open table directory_unclaimed")?;
            let mut inserted = 0;
            for coin in coins {
                if keys.get((owner.0, coin.key_id.0)).ctx("read table directory_keys")?.is_some() {
                    continue;
                }
                let seq = codec::next_seq(tx, SEQ_DIRECTORY)?;
                let tier = coin.tier.to_byte();
                let record =
                    DirectoryCoin { coin: coin.clone(), uploaded_at: now, seq, claimed_by: None, claimed_at: None };
                let bytes = records::encode::<records::DirectoryRecord>("directory_unclaimed", &record)?;
                unclaimed.insert((owner.0, tier, seq), bytes.as_slice()).ctx("write table directory_unclaimed")?;
                keys.insert((owner.0, coin.key_id.0), (tier, seq, false)).ctx("write table directory_keys")?;
                inserted += 1;
            }
            Ok(inserted)
        })
    }

    fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Claimed, Error> {
        self.write("claim", |tx| {
            let mut idem = tx.open_table(DIR_IDEMPOTENCY).ctx("open table directory_idempotency")?;
            if let Some(k) = idempotency
                && let Some(g) = idem.get((requester.0, k)).ctx("read table directory_idempotency")?
            {
                let (_, coins): (UnixSeconds, Claimed) =
                    records::decode::<records::ReplyRecord>("directory_idempotency", g.value())?;
                return Ok(coins);
            }
            let b = tier.to_byte();
            let window = directory::quota_window(&self.policy, now);
            let mut quota = tx.open_table(DIR_QUOTA).ctx("open table directory_quota")?;
            let qkey = (owner.0, requester.0, b, window);
            let used = quota.get(qkey).ctx("read table directory_quota")?.map_or(0, |g| g.value());

            let mut unclaimed = tx.open_table(DIR_UNCLAIMED).ctx("open table directory_unclaimed")?;
            // The owner's unclaimed coins of this tier, oldest first, up to what the quota can
            // grant (skipped coins are not claimable: at most that many more are read).
            let grant = directory::quota_grant(&self.policy, tier, used, count)? as usize;
            let mut candidates = Vec::new();
            let mut unusable = 0;
            for row in
                unclaimed.range((owner.0, b, 0)..=(owner.0, b, u64::MAX)).ctx("scan table directory_unclaimed")?
            {
                if candidates.len() - unusable >= grant {
                    break;
                }
                let (_, v) = row.ctx("scan table directory_unclaimed")?;
                let record = records::decode::<records::DirectoryRecord>("directory_unclaimed", v.value())?;
                if !directory::claimable(&self.policy, &record.coin, now) {
                    unusable += 1;
                }
                candidates.push(record);
            }
            let plan = directory::plan_claim(&self.policy, tier, used, count, now, &candidates)?;
            let mut claimed_t = tx.open_table(DIR_CLAIMED).ctx("open table directory_claimed")?;
            let mut keys = tx.open_table(DIR_KEYS).ctx("open table directory_keys")?;
            let mut out = Claimed::new();
            for mut record in candidates.into_iter().filter(|d| plan.picks.contains(&d.seq)) {
                unclaimed.remove((owner.0, b, record.seq)).ctx("delete from table directory_unclaimed")?;
                record.claim(requester, now);
                let bytes = records::encode::<records::DirectoryRecord>("directory_claimed", &record)?;
                claimed_t
                    .insert((owner.0, record.coin.key_id.0), bytes.as_slice())
                    .ctx("write table directory_claimed")?;
                keys.insert((owner.0, record.coin.key_id.0), (b, record.seq, true))
                    .ctx("write table directory_keys")?;
                out.push(record.coin).map_err(|_| aqm_core::Error::CapacityFull { what: "claim result" })?;
            }
            if !out.is_empty() {
                quota.insert(qkey, plan.used_after).ctx("write table directory_quota")?;
            }
            if let Some(k) = idempotency {
                let bytes = records::encode::<records::ReplyRecord>("directory_idempotency", &(now, out.clone()))?;
                idem.insert((requester.0, k), bytes.as_slice()).ctx("write table directory_idempotency")?;
            }
            Ok(out)
        })
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, Error> {
        self.read("available", |tx| {
            let t = tx.open_table(DIR_UNCLAIMED).ctx("open table directory_unclaimed")?;
            let mut counts = TierCounts::default();
            for tier in Tier::ALL {
                let b = tier.to_byte();
                let n =
                    t.range((owner.0, b, 0)..=(owner.0, b, u64::MAX)).ctx("scan table directory_unclaimed")?.count();
                *counts.get_mut(tier) = n as u32;
            }
            Ok(counts)
        })
    }

    fn purge_stale(&self, now: UnixSeconds) -> Result<u32, Error> {
        self.write("purge_stale", |tx| {
            let mut unclaimed = tx.open_table(DIR_UNCLAIMED).ctx("open table directory_unclaimed")?;
            let mut keys = tx.open_table(DIR_KEYS).ctx("open table directory_keys")?;
            let mut doomed = Vec::new();
            for row in unclaimed.iter().ctx("scan table directory_unclaimed")? {
                let (k, v) = row.ctx("scan table directory_unclaimed")?;
                let record: DirectoryCoin =
                    records::decode::<records::DirectoryRecord>("directory_unclaimed", v.value())?;
                if directory::is_stale(&self.policy, &record, now) {
                    doomed.push((k.value(), record.coin.key_id));
                }
            }
            for (k, key_id) in &doomed {
                unclaimed.remove(*k).ctx("delete from table directory_unclaimed")?;
                keys.remove((k.0, key_id.0)).ctx("delete from table directory_keys")?;
            }
            Ok(doomed.len() as u32)
        })
    }

    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, Error> {
        self.write("hard_delete_claimed", |tx| {
            let mut claimed = tx.open_table(DIR_CLAIMED).ctx("open table directory_claimed")?;
            let mut keys = tx.open_table(DIR_KEYS).ctx("open table directory_keys")?;
            let mut doomed = Vec::new();
            for row in claimed.iter().ctx("scan table directory_claimed")? {
                let (k, v) = row.ctx("scan table directory_claimed")?;
                let record: DirectoryCoin =
                    records::decode::<records::DirectoryRecord>("directory_claimed", v.value())?;
                if directory::claim_expired(&self.policy, record.claimed_at.unwrap_or(record.uploaded_at), now) {
                    doomed.push(k.value());
                }
            }
            for k in &doomed {
                claimed.remove(*k).ctx("delete from table directory_claimed")?;
                keys.remove(*k).ctx("delete from table directory_keys")?;
            }
            drop((claimed, keys));
            // Retry records and quota windows live as long as the claims they describe.
            let mut idem = tx.open_table(DIR_IDEMPOTENCY).ctx("open table directory_idempotency")?;
            let mut stale_idem = Vec::new();
            for row in idem.iter().ctx("scan table directory_idempotency")? {
                let (k, v) = row.ctx("scan table directory_idempotency")?;
                let (at, _): (UnixSeconds, Claimed) =
                    records::decode::<records::ReplyRecord>("directory_idempotency", v.value())?;
                if directory::claim_expired(&self.policy, at, now) {
                    stale_idem.push(k.value());
                }
            }
            for k in stale_idem {
                idem.remove(k).ctx("delete from table directory_idempotency")?;
            }
            let current = directory::quota_window(&self.policy, now);
            tx.open_table(DIR_QUOTA)
                .ctx("open table directory_quota")?
                .retain(|(_, _, _, window), _| window >= current)
                .ctx("delete from table directory_quota")?;
            Ok(doomed.len() as u32)
        })
    }
}
