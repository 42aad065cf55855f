//! [`DirectoryStore`] on the reference store: published coins in upload order, quota and
//! idempotency records in fixed tables that are checked for room before anything changes.

use heapless::Vec;

use super::{IdempotencyRecord, Inner, MemoryStore, QuotaRecord};
use crate::coin::{CoinKind, PublicCoin};
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

    /// The owner's stored last-resort coin of `tier` (at most one is kept).
    pub(super) fn last_resort_of(&self, owner: &UserId, tier: Tier) -> Option<&DirectoryCoin> {
        self.directory.iter().find(|d| d.coin.owner == *owner && d.coin.tier == tier && d.coin.is_last_resort())
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
        // Decide every coin of the batch before writing any: a one-time coin is new unless its
        // key id is known (stored, or earlier in the batch); a last-resort coin is stored when
        // it replaces the owner's current one of its tier ([`directory::last_resort_replaces`]),
        // judged against the batch's earlier decisions.
        // A batch longer than the whole table cannot be decided in fixed space: refused whole.
        let mut take: Vec<bool, DIRECTORY> = Vec::new();
        take.resize(coins.len(), false).map_err(|_| Error::CapacityFull { what: "directory coins" })?;
        let mut current: [Option<&PublicCoin>; 3] = Tier::ALL.map(|t| inner.last_resort_of(owner, t).map(|d| &d.coin));
        let mut grows = 0usize;
        for (i, coin) in coins.iter().enumerate() {
            let (earlier, _) = coins.split_at_checked(i).unwrap_or((coins, &[]));
            let known = inner.directory_coin(owner, &coin.key_id).is_some()
                || earlier.iter().zip(take.iter()).any(|(p, taken)| *taken && p.key_id == coin.key_id);
            let slot = current.get_mut(coin.tier.index()).ok_or(Error::Malformed)?;
            let stored = match coin.kind {
                CoinKind::OneTime => !known,
                CoinKind::LastResort => !known && directory::last_resort_replaces(*slot, coin),
            };
            if !stored {
                continue;
            }
            // A replacement takes its predecessor's place; only a tier's first one grows the table.
            if coin.kind == CoinKind::OneTime || slot.is_none() {
                grows += 1;
            }
            if coin.kind == CoinKind::LastResort {
                *slot = Some(coin);
            }
            *take.get_mut(i).ok_or(Error::CapacityFull { what: "directory upload batch" })? = true;
        }
        if inner.directory.len() + grows > DIRECTORY {
            return Err(Error::CapacityFull { what: "directory coins" });
        }
        let mut fresh = 0u32;
        for (coin, _) in coins.iter().zip(take).filter(|(_, t)| *t) {
            if coin.kind == CoinKind::LastResort {
                inner
                    .directory
                    .retain(|d| !(d.coin.owner == *owner && d.coin.tier == coin.tier && d.coin.is_last_resort()));
            }
            let seq = inner.next_directory_seq;
            inner.next_directory_seq = seq + 1;
            let record =
                DirectoryCoin { coin: coin.clone(), uploaded_at: now, seq, claimed_by: None, claimed_at: None };
            inner.directory.push(record).map_err(|_| Error::CapacityFull { what: "directory coins" })?;
            fresh += 1;
        }
        Ok(fresh)
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
            .filter(|d| {
                d.coin.owner == *owner && d.coin.tier == tier && !d.coin.is_last_resort() && d.claimed_by.is_none()
            })
            .collect();
        oldest_first.sort_unstable_by_key(|d| d.seq);
        let last_resort = inner.last_resort_of(owner, tier).map(|d| &d.coin);
        let plan =
            directory::plan_claim(&self.policy, tier, used, count, now, oldest_first.iter().copied(), last_resort)?;
        let last_resort = plan.last_resort.and(last_resort.cloned());
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
            None if !plan.hands_out() => None,
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
        // The last-resort coin is handed out only in place of picks, so there is room for it.
        if let Some(coin) = last_resort {
            let _ = key_ids.push(coin.key_id);
            let _ = claimed.push(coin);
        }
        if plan.hands_out() {
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
        for d in inner
            .directory
            .iter()
            .filter(|d| d.coin.owner == *owner && !d.coin.is_last_resort() && d.claimed_by.is_none())
        {
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
