//! [`VaultStore`] on the reference store: entries in one table, counters moved only by
//! [`VaultStats::apply`].

use super::{Inner, MemoryStore};
use crate::store::VaultStore;
use crate::vault::{
    KeyStatus, LastResortOpens, OpenDigest, PurgeAction, PurgeReport, Transition, VaultEntry, VaultStats,
};
use crate::{Error, KeyId, Policy, Tier, UnixSeconds};

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
    pub(super) fn vault_index(&self, key_id: &KeyId) -> Option<usize> {
        self.vault.iter().position(|e| e.key_id == *key_id)
    }

    /// The opens recorded for a last-resort key (empty if none yet).
    pub(super) fn opens_of(&self, key_id: &KeyId) -> LastResortOpens {
        self.last_resort_opens.iter().find(|(id, _)| id == key_id).map(|(_, o)| o.clone()).unwrap_or_default()
    }

    /// Whether the opens of `key_id` can be written (a record exists, or there is room).
    pub(super) fn opens_fit(&self, key_id: &KeyId) -> bool {
        self.last_resort_opens.iter().any(|(id, _)| id == key_id) || !self.last_resort_opens.is_full()
    }

    /// Write the opens of `key_id` (room checked by [`Inner::opens_fit`]), or drop them when the
    /// key is retired or deleted (`None`): a retired key refuses every open anyway.
    pub(super) fn write_opens(&mut self, key_id: &KeyId, opens: Option<LastResortOpens>) {
        let at = self.last_resort_opens.iter().position(|(id, _)| id == key_id);
        match (at, opens) {
            (Some(i), Some(o)) => {
                if let Some(slot) = self.last_resort_opens.get_mut(i) {
                    slot.1 = o;
                }
            }
            (None, Some(o)) => {
                let _ = self.last_resort_opens.push((*key_id, o));
            }
            (Some(i), None) => {
                self.last_resort_opens.swap_remove(i);
            }
            (None, None) => {}
        }
    }

    /// Decide a last-resort open of `key_id` (nothing written): the entry as it would be after
    /// it, its opens, and the retirement if the open fills the record.
    pub(super) fn decide_open(
        &self,
        key_id: &KeyId,
        digest: &OpenDigest,
        policy: &Policy,
        now: UnixSeconds,
    ) -> Result<DecidedOpen, Error> {
        let mut entry = self.vault.iter().find(|e| e.key_id == *key_id).ok_or(Error::KeyNotFound)?.clone();
        let mut opens = self.opens_of(key_id);
        let retired = entry.open_last_resort(&mut opens, *digest, policy, now)?;
        if retired.is_none() && !self.opens_fit(key_id) {
            return Err(Error::CapacityFull { what: "last-resort opens" });
        }
        Ok(DecidedOpen { entry, opens, retired })
    }

    /// Write what [`Inner::decide_open`] decided.
    pub(super) fn apply_open(&mut self, open: DecidedOpen) {
        let key_id = open.entry.key_id;
        match open.retired {
            Some(transition) => {
                if let Some(stored) = self.vault.iter_mut().find(|e| e.key_id == key_id) {
                    *stored = open.entry;
                }
                self.stats.apply(transition);
                self.write_opens(&key_id, None);
            }
            None => self.write_opens(&key_id, Some(open.opens)),
        }
    }
}

/// A last-resort open decided but not yet written.
pub(super) struct DecidedOpen {
    entry: VaultEntry,
    opens: LastResortOpens,
    retired: Option<Transition>,
}

impl DecidedOpen {
    /// Whether the open retires the key.
    pub(super) fn retires(&self) -> bool {
        self.retired.is_some()
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
> VaultStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn put(&self, entry: &VaultEntry) -> Result<(), Error> {
        let transition = entry.check_new()?;
        let mut inner = self.inner.lock();
        if inner.vault_index(&entry.key_id).is_some() {
            return Err(Error::KeyAlreadyExists);
        }
        inner.vault.push(entry.clone()).map_err(|_| Error::CapacityFull { what: "vault" })?;
        inner.stats.apply(transition);
        Ok(())
    }

    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        let inner = self.inner.lock();
        Ok(inner.vault.iter().find(|e| e.key_id == *key_id && e.is_usable(&self.policy, now)).cloned())
    }

    fn status(&self, key_id: &KeyId) -> Result<Option<KeyStatus>, Error> {
        let inner = self.inner.lock();
        Ok(inner.vault.iter().find(|e| e.key_id == *key_id).map(|e| e.status()))
    }

    fn burn(&self, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        let entry = inner.vault.iter_mut().find(|e| e.key_id == *key_id).ok_or(Error::KeyNotFound)?;
        let tier = entry.tier;
        entry.burn(&self.policy, now)?;
        inner.stats.apply(Transition::Burned(tier));
        inner.write_opens(key_id, None);
        Ok(())
    }

    fn open_last_resort(&self, key_id: &KeyId, digest: &OpenDigest, now: UnixSeconds) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        let open = inner.decide_open(key_id, digest, &self.policy, now)?;
        let retires = open.retires();
        inner.apply_open(open);
        Ok(retires)
    }

    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        let mut inner = self.inner.lock();
        let mut report = PurgeReport::default();
        let mut i = 0;
        while let Some(entry) = inner.vault.get(i) {
            match entry.purge_action(&self.policy, now) {
                PurgeAction::Keep => i += 1,
                PurgeAction::Expire => {
                    let gone = inner.vault.remove(i);
                    inner.stats.apply(Transition::Expired(gone.tier));
                    inner.write_opens(&gone.key_id, None);
                    report.expired += 1;
                }
                PurgeAction::Delete => {
                    let gone = inner.vault.remove(i);
                    inner.write_opens(&gone.key_id, None);
                    report.deleted_burned += 1;
                }
            }
        }
        Ok(report)
    }

    fn stats(&self) -> Result<VaultStats, Error> {
        Ok(self.inner.lock().stats)
    }

    fn active_ids(&self, tier: Option<Tier>, visit: &mut dyn FnMut(KeyId)) -> Result<(), Error> {
        let inner = self.inner.lock();
        inner
            .vault
            .iter()
            .filter(|e| e.status() == KeyStatus::Active && tier.is_none_or(|t| e.tier == t))
            .for_each(|e| visit(e.key_id));
        Ok(())
    }
}
