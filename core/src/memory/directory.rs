//! [`DirectoryStore`] on the reference store: published coins in upload order, quota and
//! idempotency records in fixed tables that are checked for room before anything changes.

use heapless::Vec;

use super::{IdempotencyRecord, Inner, MemoryStore, QuotaRecord};
use crate::coin::PublicCoin;
use crate::crypto::{PublicIdentity, RegistrationProof};
use crate::directory::{self, Claimed, DirectoryCoin, IdempotencyKey, MAX_CLAIM};
use crate::store::DirectoryStore;
use crate::{Error, KeyId, Tier, TierCounts, UnixSeconds, UserId};

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> Inner<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    pub(super) fn identity_of(&self, user: &UserId) -> Option<&PublicIdentity> {
        self.identities.iter().find(|i| i.user_id == *user)
    }

    pub(super) fn directory_coin(&self, owner: &UserId, key_id: &KeyId) -> Option<&DirectoryCoin> {
        self.directory.iter().find(|d| d.coin.owner == *owner && d.coin.key_id == *key_id)
    }
}

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> DirectoryStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Error> {
        directory::verify_registration(identity, proof)?;
        let mut inner = self.inner.lock();
        match inner.identity_of(&identity.user_id) {
            Some(known) if known == identity => Ok(()),
            Some(_) => Err(Error::KeyAlreadyExists),
            None => inner
                .identities
                .push(identity.clone())
                .map_err(|_| Error::CapacityFull { what: "directory identities" }),
        }
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, Error> {
        Ok(self.inner.lock().identity_of(user).cloned())
    }

    fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, Error> {
        // Signatures are checked outside the lock (ML-DSA is slow); a registered identity never
        // changes, so the check still holds when the batch is written below.
        let identity = self.identity(owner)?.ok_or(Error::UnknownUser)?;
        directory::verify_upload(&self.policy, &identity, coins, now)?;
        let mut inner = self.inner.lock();
        let is_new = |inner: &Inner<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>, i: usize| {
            let (earlier, rest) = coins.split_at_checked(i).unwrap_or((coins, &[]));
            rest.first().is_some_and(|c| {
                inner.directory_coin(owner, &c.key_id).is_none() && !earlier.iter().any(|p| p.key_id == c.key_id)
            })
        };
        let fresh = (0..coins.len()).filter(|i| is_new(&inner, *i)).count();
        if inner.directory.len() + fresh > DIRECTORY {
            return Err(Error::CapacityFull { what: "directory coins" });
        }
        for (i, coin) in coins.iter().enumerate() {
            if !is_new(&inner, i) {
                continue;
            }
            let seq = inner.next_directory_seq;
            inner.next_directory_seq = seq + 1;
            let record =
                DirectoryCoin { coin: coin.clone(), uploaded_at: now, seq, claimed_by: None, claimed_at: None };
            inner.directory.push(record).map_err(|_| Error::CapacityFull { what: "directory coins" })?;
        }
        Ok(fresh as u32)
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
        let mut inner = self.inner.lock();
        if let Some(key) = idempotency
            && let Some(reply) = inner.replies.iter().find(|r| r.requester == *requester && r.key == key)
        {
            let mut again = Claimed::new();
            for id in &reply.key_ids {
                if let Some(d) = inner.directory_coin(&reply.owner, id) {
                    // `key_ids` holds at most MAX_CLAIM ids, the capacity of `again`.
                    let _ = again.push(d.coin.clone());
                }
            }
            return Ok(again);
        }

        let window = directory::quota_window(&self.policy, now);
        let quota = inner.quotas.iter().position(|q| q.owner == *owner && q.requester == *requester && q.tier == tier);
        let used =
            directory::used_now(&self.policy, quota.and_then(|q| inner.quotas.get(q)).map(|q| (q.window, q.used)), now);
        // The owner's unclaimed coins of this tier in upload order: the core picks from them.
        let mut oldest_first: Vec<&DirectoryCoin, DIRECTORY> = inner
            .directory
            .iter()
            .filter(|d| d.coin.owner == *owner && d.coin.tier == tier && d.claimed_by.is_none())
            .collect();
        oldest_first.sort_unstable_by_key(|d| d.seq);
        let plan = directory::plan_claim(&self.policy, tier, used, count, now, oldest_first.iter().copied())?;
        drop(oldest_first);
        let mut picked: Vec<usize, MAX_CLAIM> = Vec::new();
        for seq in &plan.picks {
            if let Some(i) = inner.directory.iter().position(|d| d.coin.owner == *owner && d.seq == *seq) {
                // At most MAX_CLAIM picks.
                let _ = picked.push(i);
            }
        }

        // Find room for the records before anything changes, so a full table changes nothing.
        let quota_slot = match quota {
            Some(q) => Some(q),
            None if picked.is_empty() => None,
            None => match inner.quotas.iter().position(|q| q.window != window) {
                Some(stale) => Some(stale),
                None if !inner.quotas.is_full() => None,
                None => return Err(Error::CapacityFull { what: "directory claim records" }),
            },
        };
        let reply_slot = match idempotency {
            None => None,
            Some(_) => {
                match inner.replies.iter().position(|r| directory::claim_expired(&self.policy, r.created_at, now)) {
                    Some(old) => Some(old),
                    None if !inner.replies.is_full() => None,
                    None => return Err(Error::CapacityFull { what: "directory claim records" }),
                }
            }
        };

        let mut claimed = Claimed::new();
        let mut key_ids: Vec<KeyId, MAX_CLAIM> = Vec::new();
        for &i in &picked {
            let Some(d) = inner.directory.get_mut(i) else { continue };
            d.claim(requester, now);
            // Both hold at most MAX_CLAIM entries, as does `picked`.
            let _ = key_ids.push(d.coin.key_id);
            let _ = claimed.push(d.coin.clone());
        }
        if !picked.is_empty() {
            let record = QuotaRecord { owner: *owner, requester: *requester, tier, window, used: plan.used_after };
            match quota_slot {
                Some(q) => {
                    if let Some(slot) = inner.quotas.get_mut(q) {
                        *slot = record;
                    }
                }
                // Room was checked above.
                None => {
                    let _ = inner.quotas.push(record);
                }
            }
        }
        if let Some(key) = idempotency {
            let record = IdempotencyRecord { requester: *requester, key, owner: *owner, created_at: now, key_ids };
            match reply_slot {
                Some(r) => {
                    if let Some(slot) = inner.replies.get_mut(r) {
                        *slot = record;
                    }
                }
                // Room was checked above.
                None => {
                    let _ = inner.replies.push(record);
                }
            }
        }
        Ok(claimed)
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, Error> {
        let inner = self.inner.lock();
        let mut counts = TierCounts::default();
        for d in inner.directory.iter().filter(|d| d.coin.owner == *owner && d.claimed_by.is_none()) {
            *counts.get_mut(d.coin.tier) += 1;
        }
        Ok(counts)
    }

    fn purge_stale(&self, now: UnixSeconds) -> Result<u32, Error> {
        let mut inner = self.inner.lock();
        let before = inner.directory.len();
        inner.directory.retain(|d| d.claimed_by.is_some() || !directory::is_stale(&self.policy, d, now));
        Ok((before - inner.directory.len()) as u32)
    }

    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, Error> {
        let mut inner = self.inner.lock();
        let before = inner.directory.len();
        let policy = &self.policy;
        inner.directory.retain(|d| !d.claimed_at.is_some_and(|at| directory::claim_expired(policy, at, now)));
        inner.replies.retain(|r| !directory::claim_expired(policy, r.created_at, now));
        Ok((before - inner.directory.len()) as u32)
    }
}
