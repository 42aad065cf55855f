//! [`InventoryStore`]: each method one redb transaction.
//!
//! Coins of a contact and tier sit under keys `(contact, tier, seq)`, so the oldest coin is the
//! first key of that range and the newest the last: FIFO by a persisted insertion sequence.
//! Counts are the lengths of those ranges (at most a cap, about ten), never a counter kept beside
//! them, so they cannot drift.

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::{self, CachedCoin, Collection, ContactMeta, GcReport, ScanStep, Selection, TierRange};
use aqm_core::store::InventoryStore;
use aqm_core::{ContactId, KeyId, Priority, Tier, TierCounts, UnixSeconds};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::RedbStore;
use crate::codec::{self, CONTACTS, INV_COINS, INV_INDEX, Ix, SEQ_INVENTORY, SeqKey, domain};
use crate::error::{Ctx, Error};
use crate::records;
use crate::sealing::seq_key;

/// The contacts table key of `contact`.
pub(crate) fn contact_key(s: &RedbStore, contact: &ContactId) -> Vec<u8> {
    s.sealing.ix(domain::CONTACT, &[&contact.0])
}

/// The index of `contact`'s cached coins of `tier` in the coins table.
pub(crate) fn coins_ix(s: &RedbStore, contact: &ContactId, tier: Tier) -> Vec<u8> {
    s.sealing.ix(domain::INVENTORY, &[&contact.0, &[tier.to_byte()]])
}

/// The slot table key of `contact`'s cached `key_id`.
pub(crate) fn slot_key(s: &RedbStore, contact: &ContactId, key_id: &KeyId) -> Vec<u8> {
    s.sealing.ix(domain::INVENTORY_INDEX, &[&contact.0, &key_id.0])
}

/// The registered meta of `contact`, if any.
fn meta_in<T: ReadableTable<Ix, &'static [u8]>>(
    s: &RedbStore,
    t: &T,
    contact: &ContactId,
) -> Result<Option<ContactMeta>, Error> {
    let key = contact_key(s, contact);
    match t.get(key.as_slice()).ctx("read table contacts")? {
        Some(g) => records::decode::<records::ContactRecord>(&s.sealing, "contacts", &key, g.value()).map(Some),
        None => Ok(None),
    }
}

/// The cached coins of `contact` per tier: the lengths of its key ranges.
fn counts_in<T: ReadableTable<SeqKey, &'static [u8]>>(
    s: &RedbStore,
    t: &T,
    contact: &ContactId,
) -> Result<TierCounts, Error> {
    let mut held = TierCounts::default();
    for tier in Tier::ALL {
        let ix = coins_ix(s, contact, tier);
        let n = t.range((ix.as_slice(), 0)..=(ix.as_slice(), u64::MAX)).ctx("scan table inventory_coins")?.count();
        *held.get_mut(tier) = u32::try_from(n).unwrap_or(u32::MAX);
    }
    Ok(held)
}

fn coins_table(tx: &WriteTransaction) -> Result<Table<'_, SeqKey, &'static [u8]>, Error> {
    tx.open_table(INV_COINS).ctx("open table inventory_coins")
}

/// Cache `cached` for `contact` under its own sequence number (with its slot record).
fn insert_cached(s: &RedbStore, tx: &WriteTransaction, contact: &ContactId, cached: &CachedCoin) -> Result<(), Error> {
    let tier = cached.coin.tier;
    let ix = coins_ix(s, contact, tier);
    let bytes =
        records::encode::<records::CachedRecord>(&s.sealing, "inventory_coins", &seq_key(&ix, cached.seq), cached)?;
    coins_table(tx)?.insert((ix.as_slice(), cached.seq), bytes.as_slice()).ctx("write table inventory_coins")?;
    let slot = slot_key(s, contact, &cached.coin.key_id);
    let bytes = records::encode::<records::SlotRecord>(&s.sealing, "inventory_index", &slot, &(tier, cached.seq))?;
    let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
    index.insert(slot.as_slice(), bytes.as_slice()).ctx("write table inventory_index")?;
    Ok(())
}

/// Whether `contact` already caches `key_id`.
fn is_cached(s: &RedbStore, tx: &WriteTransaction, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
    let index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
    Ok(index.get(slot_key(s, contact, key_id).as_slice()).ctx("read table inventory_index")?.is_some())
}

fn put_meta(s: &RedbStore, tx: &WriteTransaction, meta: &ContactMeta) -> Result<(), Error> {
    let key = contact_key(s, &meta.contact_id);
    let mut t = tx.open_table(CONTACTS).ctx("open table contacts")?;
    let bytes = records::encode::<records::ContactRecord>(&s.sealing, "contacts", &key, meta)?;
    t.insert(key.as_slice(), bytes.as_slice()).ctx("write table contacts")?;
    Ok(())
}

/// Remove the `n` newest coins of `contact` and `tier` (with their slot records).
fn evict_newest(s: &RedbStore, tx: &WriteTransaction, contact: &ContactId, tier: Tier, n: u32) -> Result<u32, Error> {
    if n == 0 {
        return Ok(0);
    }
    let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
    let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
    let ix = coins_ix(s, contact, tier);
    let mut doomed = Vec::new();
    for row in coins.range((ix.as_slice(), 0)..=(ix.as_slice(), u64::MAX)).ctx("scan table inventory_coins")?.rev() {
        if doomed.len() == n as usize {
            break;
        }
        let (k, v) = row.ctx("scan table inventory_coins")?;
        let seq = k.value().1;
        let cached: CachedCoin =
            records::decode::<records::CachedRecord>(&s.sealing, "inventory_coins", &seq_key(&ix, seq), v.value())?;
        doomed.push((seq, cached.coin.key_id));
    }
    for (seq, key_id) in &doomed {
        coins.remove((ix.as_slice(), *seq)).ctx("delete from table inventory_coins")?;
        index.remove(slot_key(s, contact, key_id).as_slice()).ctx("delete from table inventory_index")?;
    }
    Ok(doomed.len() as u32)
}

/// Write what the core decided collecting a contact writes ([`inventory::collect`]): its coins
/// gone and its downgraded record.
fn apply_collection(s: &RedbStore, tx: &WriteTransaction, plan: &Collection) -> Result<(), Error> {
    for tier in Tier::ALL {
        evict_newest(s, tx, &plan.meta.contact_id, tier, plan.evict.get(tier))?;
    }
    put_meta(s, tx, &plan.meta)
}

/// Every registered contact with its counts, in table order (the order of the keyed hashes).
fn all_contacts<C, K>(s: &RedbStore, contacts: &C, coins: &K) -> Result<Vec<(ContactMeta, TierCounts)>, Error>
where
    C: ReadableTable<Ix, &'static [u8]>,
    K: ReadableTable<SeqKey, &'static [u8]>,
{
    let mut out = Vec::new();
    for row in contacts.iter().ctx("scan table contacts")? {
        let (k, v) = row.ctx("scan table contacts")?;
        let meta: ContactMeta =
            records::decode::<records::ContactRecord>(&s.sealing, "contacts", k.value(), v.value())?;
        let held = counts_in(s, coins, &meta.contact_id)?;
        out.push((meta, held));
    }
    Ok(out)
}

impl InventoryStore for RedbStore {
    type Error = Error;

    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Error> {
        self.write("register_contact", |tx| {
            let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
            if meta_in(self, &contacts, &meta.contact_id)?.is_some() {
                return Ok(false);
            }
            drop(contacts);
            put_meta(self, tx, meta)?;
            Ok(true)
        })
    }

    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
        self.read("contact", |tx| meta_in(self, &tx.open_table(CONTACTS).ctx("open table contacts")?, contact))
    }

    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Error> {
        self.write("set_priority", |tx| {
            let mut meta = meta_in(self, &tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let held = counts_in(self, &coins_table(tx)?, contact)?;
            let plan = inventory::trim_plan(&self.policy, priority, &held);
            let mut evicted = 0;
            for tier in Tier::ALL {
                evicted += evict_newest(self, tx, contact, tier, plan.get(tier))?;
            }
            meta.priority = priority;
            put_meta(self, tx, &meta)?;
            Ok(evicted)
        })
    }

    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        self.write("store_coin", |tx| {
            let meta = meta_in(self, &tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?;
            let held = counts_in(self, &coins_table(tx)?, contact)?;
            let duplicate = is_cached(self, tx, contact, &coin.key_id)?;
            inventory::admit(&self.policy, meta.as_ref(), coin, held.get(coin.tier), duplicate, now)?;
            let seq = codec::next_seq(tx, SEQ_INVENTORY)?;
            insert_cached(self, tx, contact, &CachedCoin { coin: coin.clone(), seq, fetched_at: now })
        })
    }

    fn select_coin(
        &self,
        contact: &ContactId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<Selection, Error> {
        self.write("select_coin", |tx| {
            let meta = meta_in(self, &tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let mut selection = Selection::default();
            let mut coins = coins_table(tx)?;
            let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
            'tiers: for tier in (TierRange { desired, lowest }).tiers() {
                let ix = coins_ix(self, contact, tier);
                // Oldest first: coins no longer fresh are dropped (wasted) until a fresh one comes.
                loop {
                    let next = {
                        let mut range = coins
                            .range((ix.as_slice(), 0)..=(ix.as_slice(), u64::MAX))
                            .ctx("scan table inventory_coins")?;
                        match range.next() {
                            None => None,
                            Some(row) => {
                                let (k, v) = row.ctx("scan table inventory_coins")?;
                                let seq = k.value().1;
                                let record_key = seq_key(&ix, seq);
                                Some((
                                    seq,
                                    records::decode::<records::CachedRecord>(
                                        &self.sealing,
                                        "inventory_coins",
                                        &record_key,
                                        v.value(),
                                    )?,
                                ))
                            }
                        }
                    };
                    let Some((seq, cached)) = next else { continue 'tiers };
                    coins.remove((ix.as_slice(), seq)).ctx("delete from table inventory_coins")?;
                    index
                        .remove(slot_key(self, contact, &cached.coin.key_id).as_slice())
                        .ctx("delete from table inventory_index")?;
                    match inventory::scan_step(&self.policy, &cached.coin, now) {
                        ScanStep::Drop => selection.wasted += 1,
                        ScanStep::Take => {
                            selection.coin = Some(cached);
                            break 'tiers;
                        }
                    }
                }
            }
            drop((coins, index));
            if let Some(touched) = inventory::touch_on_select(&meta, &selection, now) {
                put_meta(self, tx, &touched)?;
            }
            Ok(selection)
        })
    }

    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        self.write("restore_coin", |tx| {
            let meta = meta_in(self, &tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?;
            let held = counts_in(self, &coins_table(tx)?, contact)?;
            let duplicate = is_cached(self, tx, contact, &coin.coin.key_id)?;
            let tier = coin.coin.tier;
            if inventory::admit(&self.policy, meta.as_ref(), &coin.coin, held.get(tier), duplicate, coin.fetched_at)
                .is_err()
            {
                return Ok(false);
            }
            // Its own sequence number puts it back at its FIFO place.
            insert_cached(self, tx, contact, coin)?;
            Ok(true)
        })
    }

    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
        self.write("consume", |tx| {
            let slot = slot_key(self, contact, key_id);
            let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
            let Some(bytes) =
                index.remove(slot.as_slice()).ctx("delete from table inventory_index")?.map(|g| g.value().to_vec())
            else {
                return Ok(false);
            };
            let (tier, seq) = records::decode::<records::SlotRecord>(&self.sealing, "inventory_index", &slot, &bytes)?;
            let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            let ix = coins_ix(self, contact, tier);
            coins.remove((ix.as_slice(), seq)).ctx("delete from table inventory_coins")?;
            Ok(true)
        })
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        self.read("counts", |tx| counts_in(self, &tx.open_table(INV_COINS).ctx("open table inventory_coins")?, contact))
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        self.read("for_each_contact", |tx| {
            let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
            let coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            for (meta, held) in all_contacts(self, &contacts, &coins)? {
                visit(&meta, held);
            }
            Ok(())
        })
    }

    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Error> {
        self.write("collect_garbage", |tx| {
            let due = {
                let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
                let coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
                all_contacts(self, &contacts, &coins)?
            };
            let mut report = GcReport::default();
            for (meta, held) in due {
                if let Some(plan) = inventory::gc_plan(&self.policy, &meta, &held, now, dry_run, &mut report) {
                    apply_collection(self, tx, &plan)?;
                }
            }
            Ok(report)
        })
    }

    fn collect_contact(&self, contact: &ContactId) -> Result<GcReport, Error> {
        self.write("collect_contact", |tx| {
            let meta = meta_in(self, &tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let held = counts_in(self, &coins_table(tx)?, contact)?;
            let mut report = GcReport::default();
            let plan = inventory::collect(&meta, &held, &mut report);
            apply_collection(self, tx, &plan)?;
            Ok(report)
        })
    }
}
