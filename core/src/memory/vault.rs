//! [`VaultStore`] on the reference store: entries in one table, counters moved only by
//! [`VaultStats::apply`].

use super::{Inner, MemoryStore};
use crate::store::VaultStore;
use crate::vault::{KeyStatus, PurgeAction, PurgeReport, Transition, VaultEntry, VaultStats};
use crate::{Error, KeyId, Tier, UnixSeconds};

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
        Ok(())
    }

    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        let mut inner = self.inner.lock();
        let mut report = PurgeReport::default();
        let mut i = 0;
        while let Some(entry) = inner.vault.get(i) {
            match entry.purge_action(&self.policy, now) {
                PurgeAction::Keep => i += 1,
                PurgeAction::Expire => {
                    let tier = inner.vault.remove(i).tier;
                    inner.stats.apply(Transition::Expired(tier));
                    report.expired += 1;
                }
                PurgeAction::Delete => {
                    inner.vault.remove(i);
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
