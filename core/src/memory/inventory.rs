//! [`InventoryStore`] on the reference store: cached coins of every contact in one table,
//! ordered by their insertion sequence; counts are recounts of that table.

use super::{Inner, MemoryStore};
use crate::coin::PublicCoin;
use crate::inventory::{self, CachedCoin, Collection, ContactMeta, GcReport, ScanStep, Selection, TierRange};
use crate::store::InventoryStore;
use crate::{ContactId, Error, KeyId, Priority, Tier, TierCounts, UnixSeconds};

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
    /// Write what the core decided collecting a contact writes: its coins gone (all of them,
    /// which is what `plan.evict` counts) and its downgraded record.
    pub(super) fn apply_collection(&mut self, plan: Collection) {
        let id = plan.meta.contact_id;
        self.coins.retain(|c| c.coin.owner != id);
        if let Some(meta) = self.contact_mut(&id) {
            *meta = plan.meta;
        }
    }

    pub(super) fn contact_of(&self, contact: &ContactId) -> Option<&ContactMeta> {
        self.contacts.iter().find(|m| m.contact_id == *contact)
    }

    pub(super) fn contact_mut(&mut self, contact: &ContactId) -> Option<&mut ContactMeta> {
        self.contacts.iter_mut().find(|m| m.contact_id == *contact)
    }

    pub(super) fn held(&self, contact: &ContactId) -> TierCounts {
        let mut held = TierCounts::default();
        for c in self.coins.iter().filter(|c| c.coin.owner == *contact) {
            *held.get_mut(c.coin.tier) += 1;
        }
        held
    }

    /// Index of the cached coin of `contact` and `tier` with the lowest (`oldest`) or highest
    /// sequence number.
    pub(super) fn coin_at_end(&self, contact: &ContactId, tier: Tier, oldest: bool) -> Option<usize> {
        let candidates = self.coins.iter().enumerate().filter(|(_, c)| c.coin.owner == *contact && c.coin.tier == tier);
        if oldest {
            candidates.min_by_key(|(_, c)| c.seq).map(|(i, _)| i)
        } else {
            candidates.max_by_key(|(_, c)| c.seq).map(|(i, _)| i)
        }
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
> InventoryStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        if inner.contact_of(&meta.contact_id).is_some() {
            return Ok(false);
        }
        inner.contacts.push(meta.clone()).map_err(|_| Error::CapacityFull { what: "inventory contacts" })?;
        Ok(true)
    }

    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
        let inner = self.inner.lock();
        Ok(inner.contact_of(contact).cloned())
    }

    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Error> {
        let mut inner = self.inner.lock();
        inner.contact_of(contact).ok_or(Error::ContactNotRegistered)?;
        let evict = inventory::trim_plan(&self.policy, priority, &inner.held(contact));
        for tier in Tier::ALL {
            for _ in 0..evict.get(tier) {
                if let Some(i) = inner.coin_at_end(contact, tier, false) {
                    inner.coins.swap_remove(i);
                }
            }
        }
        if let Some(meta) = inner.contact_mut(contact) {
            meta.priority = priority;
        }
        Ok(evict.total())
    }

    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        let meta = inner.contact_of(contact);
        let held = inner.held(contact).get(coin.tier);
        let duplicate = inner.coins.iter().any(|c| c.coin.owner == *contact && c.coin.key_id == coin.key_id);
        inventory::admit(&self.policy, meta, coin, held, duplicate, now)?;
        let seq = inner.next_coin_seq;
        inner
            .coins
            .push(CachedCoin { coin: coin.clone(), seq, fetched_at: now })
            .map_err(|_| Error::CapacityFull { what: "inventory coins" })?;
        inner.next_coin_seq = seq + 1;
        Ok(())
    }

    fn select_coin(
        &self,
        contact: &ContactId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<Selection, Error> {
        let mut inner = self.inner.lock();
        inner.contact_of(contact).ok_or(Error::ContactNotRegistered)?;
        let mut selection = Selection::default();
        'tiers: for tier in (TierRange { desired, lowest }).tiers() {
            // Oldest first: the core says whether each coin is dropped (stale) or taken.
            while let Some(i) = inner.coin_at_end(contact, tier, true) {
                let cached = inner.coins.swap_remove(i);
                match inventory::scan_step(&self.policy, &cached.coin, now) {
                    ScanStep::Drop => selection.wasted += 1,
                    ScanStep::Take => {
                        selection.coin = Some(cached);
                        break 'tiers;
                    }
                }
            }
        }
        let touched = inner.contact_of(contact).and_then(|m| inventory::touch_on_select(m, &selection, now));
        if let (Some(meta), Some(slot)) = (touched, inner.contact_mut(contact)) {
            *slot = meta;
        }
        Ok(selection)
    }

    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        let meta = inner.contact_of(contact);
        let held = inner.held(contact).get(coin.coin.tier);
        let duplicate = inner.coins.iter().any(|c| c.coin.owner == *contact && c.coin.key_id == coin.coin.key_id);
        if inventory::admit(&self.policy, meta, &coin.coin, held, duplicate, coin.fetched_at).is_err() {
            return Ok(false);
        }
        // Its own `seq` puts it back at its FIFO place.
        inner.coins.push(coin.clone()).map_err(|_| Error::CapacityFull { what: "inventory coins" })?;
        Ok(true)
    }

    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        match inner.coins.iter().position(|c| c.coin.owner == *contact && c.coin.key_id == *key_id) {
            Some(i) => {
                inner.coins.swap_remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        Ok(self.inner.lock().held(contact))
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        let inner = self.inner.lock();
        for meta in &inner.contacts {
            visit(meta, inner.held(&meta.contact_id));
        }
        Ok(())
    }

    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Error> {
        let mut inner = self.inner.lock();
        let mut report = GcReport::default();
        let plans: heapless::Vec<Collection, CONTACTS> = inner
            .contacts
            .iter()
            .filter_map(|meta| {
                let held = inner.held(&meta.contact_id);
                inventory::gc_plan(&self.policy, meta, &held, now, dry_run, &mut report)
            })
            .collect();
        for plan in plans {
            inner.apply_collection(plan);
        }
        Ok(report)
    }

    fn collect_contact(&self, contact: &ContactId) -> Result<GcReport, Error> {
        let mut inner = self.inner.lock();
        let meta = inner.contact_of(contact).ok_or(Error::ContactNotRegistered)?;
        let mut report = GcReport::default();
        let plan = inventory::collect(meta, &inner.held(contact), &mut report);
        inner.apply_collection(plan);
        Ok(report)
    }
}
