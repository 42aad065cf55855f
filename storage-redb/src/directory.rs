//! [`DirectoryStore`]: a local coin directory (the simulator's stand-in for the server), each
//! method one redb transaction.
//!
//! Unclaimed coins sit under `(index(owner ‖ tier), seq)`, so a claim takes the first keys of the range
//! (oldest first) and moves them to the claimed table in the same transaction: each coin goes to
//! exactly one requester.
//!
//! A last-resort coin never joins that queue: each owner has at most one per tier, in its own
//! slot (`directory_last_resort`, keyed by index(owner ‖ tier)), replaced only when
//! [`directory::last_resort_replaces`] says so, handed out by a claim only where
//! [`directory::plan_claim`] says so and never marked claimed, never counted by `available`.

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::directory::{self, Claimed, DirectoryCoin, IdempotencyKey};
use aqm_core::store::DirectoryStore;
use aqm_core::{KeyId, Tier, TierCounts, UnixSeconds, UserId};
use redb::ReadableTable;

use crate::RedbStore;
use crate::codec::{
    self, DIR_CLAIMED, DIR_IDEMPOTENCY, DIR_IDENTITIES, DIR_KEYS, DIR_LAST_RESORT, DIR_QUOTA, DIR_UNCLAIMED, Ix,
    SEQ_DIRECTORY, domain,
};
use crate::error::{Ctx, Error};
use crate::records;
use crate::sealing::seq_key;

fn identity_key(s: &RedbStore, user: &UserId) -> Vec<u8> {
    s.sealing.ix(domain::DIR_IDENTITY, &[&user.0])
}

/// The index of `owner`'s unclaimed coins of `tier`.
pub(crate) fn unclaimed_ix(s: &RedbStore, owner: &UserId, tier: Tier) -> Vec<u8> {
    s.sealing.ix(domain::DIR_COINS, &[&owner.0, &[tier.to_byte()]])
}

/// The key of `owner`'s coin `key_id` in the claimed and key tables.
pub(crate) fn coin_key(s: &RedbStore, owner: &UserId, key_id: &KeyId) -> Vec<u8> {
    s.sealing.ix(domain::DIR_KEY, &[&owner.0, &key_id.0])
}

/// The key of `owner`'s last-resort slot of `tier`.
pub(crate) fn last_resort_key(s: &RedbStore, owner: &UserId, tier: Tier) -> Vec<u8> {
    s.sealing.ix(domain::DIR_LAST_RESORT, &[&owner.0, &[tier.to_byte()]])
}

/// `owner`'s stored last-resort coin of `tier`, if any.
fn last_resort_in<T: ReadableTable<Ix, &'static [u8]>>(
    s: &RedbStore,
    t: &T,
    owner: &UserId,
    tier: Tier,
) -> Result<Option<DirectoryCoin>, Error> {
    let key = last_resort_key(s, owner, tier);
    match t.get(key.as_slice()).ctx("read table directory_last_resort")? {
        Some(g) => {
            records::decode::<records::DirectoryRecord>(&s.sealing, "directory_last_resort", &key, g.value()).map(Some)
        }
        None => Ok(None),
    }
}

fn identity_in<T: ReadableTable<Ix, &'static [u8]>>(
    s: &RedbStore,
    t: &T,
    user: &UserId,
) -> Result<Option<PublicIdentity>, Error> {
    let key = identity_key(s, user);
    match t.get(key.as_slice()).ctx("read table directory_identities")? {
        Some(g) => {
            records::decode::<records::IdentityRecord>(&s.sealing, "directory_identities", &key, g.value()).map(Some)
        }
        None => Ok(None),
    }
}

impl DirectoryStore for RedbStore {
    type Error = Error;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Error> {
        directory::verify_registration(identity, proof)?;
        self.write("register_identity", |tx| {
            let mut t = tx.open_table(DIR_IDENTITIES).ctx("open table directory_identities")?;
            match identity_in(self, &t, &identity.user_id)? {
                Some(known) if known == *identity => Ok(()),
                Some(_) => Err(aqm_core::Error::KeyAlreadyExists.into()),
                None => {
                    let key = identity_key(self, &identity.user_id);
                    let bytes = records::encode::<records::IdentityRecord>(
                        &self.sealing,
                        "directory_identities",
                        &key,
                        identity,
                    )?;
                    t.insert(key.as_slice(), bytes.as_slice()).ctx("write table directory_identities")?;
                    Ok(())
                }
            }
        })
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, Error> {
        self.read("identity", |tx| {
            identity_in(self, &tx.open_table(DIR_IDENTITIES).ctx("open table directory_identities")?, user)
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
            let mut last_resort = tx.open_table(DIR_LAST_RESORT).ctx("open table directory_last_resort")?;
            let mut inserted = 0;
            // Coin by coin, each decided against what the batch's earlier coins wrote: a key id
            // already held (queued, claimed, or in one of the owner's last-resort slots) is a
            // repeat; a last-resort coin goes to its slot if it replaces the current one.
            for coin in coins {
                let ck = coin_key(self, owner, &coin.key_id);
                let mut known = keys.get(ck.as_slice()).ctx("read table directory_keys")?.is_some();
                for tier in Tier::ALL {
                    known |=
                        last_resort_in(self, &last_resort, owner, tier)?.is_some_and(|d| d.coin.key_id == coin.key_id);
                }
                if known {
                    continue;
                }
                let seq = match coin.kind {
                    CoinKind::OneTime => codec::next_seq(tx, SEQ_DIRECTORY)?,
                    CoinKind::LastResort => {
                        let current = last_resort_in(self, &last_resort, owner, coin.tier)?;
                        if !directory::last_resort_replaces(current.as_ref().map(|d| &d.coin), coin) {
                            continue;
                        }
                        let seq = codec::next_seq(tx, SEQ_DIRECTORY)?;
                        let lk = last_resort_key(self, owner, coin.tier);
                        let record = DirectoryCoin {
                            coin: coin.clone(),
                            uploaded_at: now,
                            seq,
                            claimed_by: None,
                            claimed_at: None,
                        };
                        let bytes = records::encode::<records::DirectoryRecord>(
                            &self.sealing,
                            "directory_last_resort",
                            &lk,
                            &record,
                        )?;
                        last_resort.insert(lk.as_slice(), bytes.as_slice()).ctx("write table directory_last_resort")?;
                        inserted += 1;
                        continue;
                    }
                };
                let ix = unclaimed_ix(self, owner, coin.tier);
                let record =
                    DirectoryCoin { coin: coin.clone(), uploaded_at: now, seq, claimed_by: None, claimed_at: None };
                let bytes = records::encode::<records::DirectoryRecord>(
                    &self.sealing,
                    "directory_unclaimed",
                    &seq_key(&ix, seq),
                    &record,
                )?;
                unclaimed.insert((ix.as_slice(), seq), bytes.as_slice()).ctx("write table directory_unclaimed")?;
                let bytes = records::encode::<records::DirKeyRecord>(
                    &self.sealing,
                    "directory_keys",
                    &ck,
                    &(coin.tier, seq, false),
                )?;
                keys.insert(ck.as_slice(), bytes.as_slice()).ctx("write table directory_keys")?;
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
            let idem_key = idempotency.map(|k| self.sealing.ix(domain::DIR_IDEMPOTENCY, &[&requester.0, &k]));
            if let Some(ik) = &idem_key
                && let Some(g) = idem.get(ik.as_slice()).ctx("read table directory_idempotency")?
            {
                let (_, coins): (UnixSeconds, Claimed) =
                    records::decode::<records::ReplyRecord>(&self.sealing, "directory_idempotency", ik, g.value())?;
                return Ok(coins);
            }
            let window = directory::quota_window(&self.policy, now);
            let mut quota = tx.open_table(DIR_QUOTA).ctx("open table directory_quota")?;
            let qix = self.sealing.ix(domain::DIR_QUOTA, &[&owner.0, &requester.0, &[tier.to_byte()]]);
            let qkey = seq_key(&qix, window);
            let used = match quota.get((qix.as_slice(), window)).ctx("read table directory_quota")? {
                Some(g) => records::decode::<records::QuotaRecord>(&self.sealing, "directory_quota", &qkey, g.value())?,
                None => 0,
            };

            let ix = unclaimed_ix(self, owner, tier);
            let mut unclaimed = tx.open_table(DIR_UNCLAIMED).ctx("open table directory_unclaimed")?;
            // The owner's unclaimed coins of this tier, oldest first, up to what the quota can
            // grant (skipped coins are not claimable: at most that many more are read).
            let grant = directory::quota_grant(&self.policy, tier, used, count)? as usize;
            let mut candidates = Vec::new();
            let mut unusable = 0;
            for row in
                unclaimed.range((ix.as_slice(), 0)..=(ix.as_slice(), u64::MAX)).ctx("scan table directory_unclaimed")?
            {
                if candidates.len() - unusable >= grant {
                    break;
                }
                let (k, v) = row.ctx("scan table directory_unclaimed")?;
                let record_key = seq_key(&ix, k.value().1);
                let record = records::decode::<records::DirectoryRecord>(
                    &self.sealing,
                    "directory_unclaimed",
                    &record_key,
                    v.value(),
                )?;
                if !directory::claimable(&self.policy, &record.coin, now) {
                    unusable += 1;
                }
                candidates.push(record);
            }
            let last_resort = last_resort_in(
                self,
                &tx.open_table(DIR_LAST_RESORT).ctx("open table directory_last_resort")?,
                owner,
                tier,
            )?
            .map(|d| d.coin);
            let plan = directory::plan_claim(&self.policy, tier, used, count, now, &candidates, last_resort.as_ref())?;
            let mut claimed_t = tx.open_table(DIR_CLAIMED).ctx("open table directory_claimed")?;
            let mut keys = tx.open_table(DIR_KEYS).ctx("open table directory_keys")?;
            let mut out = Claimed::new();
            for mut record in candidates.into_iter().filter(|d| plan.picks.contains(&d.seq)) {
                unclaimed.remove((ix.as_slice(), record.seq)).ctx("delete from table directory_unclaimed")?;
                record.claim(requester, now);
                let ck = coin_key(self, owner, &record.coin.key_id);
                let bytes =
                    records::encode::<records::DirectoryRecord>(&self.sealing, "directory_claimed", &ck, &record)?;
                claimed_t.insert(ck.as_slice(), bytes.as_slice()).ctx("write table directory_claimed")?;
                let bytes = records::encode::<records::DirKeyRecord>(
                    &self.sealing,
                    "directory_keys",
                    &ck,
                    &(tier, record.seq, true),
                )?;
                keys.insert(ck.as_slice(), bytes.as_slice()).ctx("write table directory_keys")?;
                out.push(record.coin).map_err(|_| aqm_core::Error::CapacityFull { what: "claim result" })?;
            }
            // Handed out in place of picks and left in its slot, unclaimed: the next sender
            // gets it too. The reply record below keeps it, so a retry returns it again.
            if let Some(coin) = last_resort.filter(|c| plan.last_resort == Some(c.key_id)) {
                out.push(coin).map_err(|_| aqm_core::Error::CapacityFull { what: "claim result" })?;
            }
            if plan.hands_out() {
                let bytes =
                    records::encode::<records::QuotaRecord>(&self.sealing, "directory_quota", &qkey, &plan.used_after)?;
                quota.insert((qix.as_slice(), window), bytes.as_slice()).ctx("write table directory_quota")?;
            }
            if let Some(ik) = &idem_key {
                let bytes = records::encode::<records::ReplyRecord>(
                    &self.sealing,
                    "directory_idempotency",
                    ik,
                    &(now, out.clone()),
                )?;
                idem.insert(ik.as_slice(), bytes.as_slice()).ctx("write table directory_idempotency")?;
            }
            Ok(out)
        })
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, Error> {
        self.read("available", |tx| {
            let t = tx.open_table(DIR_UNCLAIMED).ctx("open table directory_unclaimed")?;
            let mut counts = TierCounts::default();
            for tier in Tier::ALL {
                let ix = unclaimed_ix(self, owner, tier);
                let n = t
                    .range((ix.as_slice(), 0)..=(ix.as_slice(), u64::MAX))
                    .ctx("scan table directory_unclaimed")?
                    .count();
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
                let (ix, seq) = k.value();
                let record: DirectoryCoin = records::decode::<records::DirectoryRecord>(
                    &self.sealing,
                    "directory_unclaimed",
                    &seq_key(ix, seq),
                    v.value(),
                )?;
                if directory::is_stale(&self.policy, &record, now) {
                    doomed.push((ix.to_vec(), seq, coin_key(self, &record.coin.owner, &record.coin.key_id)));
                }
            }
            for (ix, seq, ck) in &doomed {
                unclaimed.remove((ix.as_slice(), *seq)).ctx("delete from table directory_unclaimed")?;
                keys.remove(ck.as_slice()).ctx("delete from table directory_keys")?;
            }
            // A last-resort coin goes stale by the same rule; its owner's next upload refills the slot.
            let mut last_resort = tx.open_table(DIR_LAST_RESORT).ctx("open table directory_last_resort")?;
            let mut stale = Vec::new();
            for row in last_resort.iter().ctx("scan table directory_last_resort")? {
                let (k, v) = row.ctx("scan table directory_last_resort")?;
                let record: DirectoryCoin = records::decode::<records::DirectoryRecord>(
                    &self.sealing,
                    "directory_last_resort",
                    k.value(),
                    v.value(),
                )?;
                if directory::is_stale(&self.policy, &record, now) {
                    stale.push(k.value().to_vec());
                }
            }
            for k in &stale {
                last_resort.remove(k.as_slice()).ctx("delete from table directory_last_resort")?;
            }
            Ok((doomed.len() + stale.len()) as u32)
        })
    }

    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, Error> {
        self.write("hard_delete_claimed", |tx| {
            let mut claimed = tx.open_table(DIR_CLAIMED).ctx("open table directory_claimed")?;
            let mut keys = tx.open_table(DIR_KEYS).ctx("open table directory_keys")?;
            let mut doomed = Vec::new();
            for row in claimed.iter().ctx("scan table directory_claimed")? {
                let (k, v) = row.ctx("scan table directory_claimed")?;
                let record: DirectoryCoin = records::decode::<records::DirectoryRecord>(
                    &self.sealing,
                    "directory_claimed",
                    k.value(),
                    v.value(),
                )?;
                if directory::claim_expired(&self.policy, record.claimed_at.unwrap_or(record.uploaded_at), now) {
                    doomed.push(k.value().to_vec());
                }
            }
            for k in &doomed {
                claimed.remove(k.as_slice()).ctx("delete from table directory_claimed")?;
                keys.remove(k.as_slice()).ctx("delete from table directory_keys")?;
            }
            drop((claimed, keys));
            // Retry records and quota windows live as long as the claims they describe.
            let mut idem = tx.open_table(DIR_IDEMPOTENCY).ctx("open table directory_idempotency")?;
            let mut stale_idem = Vec::new();
            for row in idem.iter().ctx("scan table directory_idempotency")? {
                let (k, v) = row.ctx("scan table directory_idempotency")?;
                let (at, _): (UnixSeconds, Claimed) = records::decode::<records::ReplyRecord>(
                    &self.sealing,
                    "directory_idempotency",
                    k.value(),
                    v.value(),
                )?;
                if directory::claim_expired(&self.policy, at, now) {
                    stale_idem.push(k.value().to_vec());
                }
            }
            for k in stale_idem {
                idem.remove(k.as_slice()).ctx("delete from table directory_idempotency")?;
            }
            let current = directory::quota_window(&self.policy, now);
            tx.open_table(DIR_QUOTA)
                .ctx("open table directory_quota")?
                .retain(|(_, window), _| window >= current)
                .ctx("delete from table directory_quota")?;
            Ok(doomed.len() as u32)
        })
    }
}
