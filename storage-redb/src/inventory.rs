//! [`InventoryStore`]: each method one redb transaction.
//!
//! Coins of a contact and tier sit under keys `(contact, tier, seq)`, so the oldest coin is the
//! first key of that range and the newest the last: FIFO by a persisted insertion sequence.
//! Counts are the lengths of those ranges (at most a cap, about ten), never a counter kept beside
//! them, so they cannot drift.

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::{self, CachedCoin, ContactMeta, GcReport, Selection, TierRange};
use aqm_core::store::InventoryStore;
use aqm_core::{ContactId, KeyId, Priority, Tier, TierCounts, UnixSeconds};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::RedbStore;
use crate::codec::{self, CONTACTS, INV_COINS, INV_INDEX, Id, SEQ_INVENTORY};
use crate::error::{Ctx, Error};

/// The registered meta of `contact`, if any.
fn meta_in<T: ReadableTable<Id, &'static [u8]>>(t: &T, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
    match t.get(contact.0).ctx("read table contacts")? {
        Some(g) => codec::decode("contacts", g.value()).map(Some),
        None => Ok(None),
    }
}

type CoinKey = (Id, u8, u64);

/// The cached coins of `contact` per tier: the lengths of its key ranges.
fn counts_in<T: ReadableTable<CoinKey, &'static [u8]>>(t: &T, contact: &ContactId) -> Result<TierCounts, Error> {
    let mut held = TierCounts::default();
    for tier in Tier::ALL {
        let b = tier.to_byte();
        let n = t.range((contact.0, b, 0)..=(contact.0, b, u64::MAX)).ctx("scan table inventory_coins")?.count();
        *held.get_mut(tier) = u32::try_from(n).unwrap_or(u32::MAX);
    }
    Ok(held)
}

fn coins_table(tx: &WriteTransaction) -> Result<Table<'_, CoinKey, &'static [u8]>, Error> {
    tx.open_table(INV_COINS).ctx("open table inventory_coins")
}

/// Cache `cached` for `contact` under its own sequence number (with its index entry).
fn insert_cached(tx: &WriteTransaction, contact: &ContactId, cached: &CachedCoin) -> Result<(), Error> {
    let tier = cached.coin.tier.to_byte();
    let bytes = codec::encode("inventory_coins", cached)?;
    coins_table(tx)?.insert((contact.0, tier, cached.seq), bytes.as_slice()).ctx("write table inventory_coins")?;
    let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
    index.insert((contact.0, cached.coin.key_id.0), (tier, cached.seq)).ctx("write table inventory_index")?;
    Ok(())
}

/// Whether `contact` already caches `key_id`.
fn is_cached(tx: &WriteTransaction, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
    let index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
    Ok(index.get((contact.0, key_id.0)).ctx("read table inventory_index")?.is_some())
}

fn put_meta(tx: &WriteTransaction, meta: &ContactMeta) -> Result<(), Error> {
    let mut t = tx.open_table(CONTACTS).ctx("open table contacts")?;
    let bytes = codec::encode("contacts", meta)?;
    t.insert(meta.contact_id.0, bytes.as_slice()).ctx("write table contacts")?;
    Ok(())
}

/// Remove the `n` newest coins of `contact` and `tier` (with their index entries).
fn evict_newest(tx: &WriteTransaction, contact: &ContactId, tier: Tier, n: u32) -> Result<u32, Error> {
    if n == 0 {
        return Ok(0);
    }
    let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
    let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
    let b = tier.to_byte();
    let mut doomed = Vec::new();
    for row in coins.range((contact.0, b, 0)..=(contact.0, b, u64::MAX)).ctx("scan table inventory_coins")?.rev() {
        if doomed.len() == n as usize {
            break;
        }
        let (k, v) = row.ctx("scan table inventory_coins")?;
        let cached: CachedCoin = codec::decode("inventory_coins", v.value())?;
        doomed.push((k.value(), cached.coin.key_id));
    }
    for (k, key_id) in &doomed {
        coins.remove(*k).ctx("delete from table inventory_coins")?;
        index.remove((contact.0, key_id.0)).ctx("delete from table inventory_index")?;
    }
    Ok(doomed.len() as u32)
}

/// Drop every cached coin of `contact` and downgrade it to STRANGER.
fn collect_in(tx: &WriteTransaction, meta: &mut ContactMeta, held: &TierCounts) -> Result<(), Error> {
    for tier in Tier::ALL {
        evict_newest(tx, &meta.contact_id, tier, held.get(tier))?;
    }
    meta.priority = Priority::Stranger;
    put_meta(tx, meta)
}

impl InventoryStore for RedbStore {
    type Error = Error;

    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Error> {
        self.write("register_contact", |tx| {
            let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
            if meta_in(&contacts, &meta.contact_id)?.is_some() {
                return Ok(false);
            }
            drop(contacts);
            put_meta(tx, meta)?;
            Ok(true)
        })
    }

    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
        self.read("contact", |tx| meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact))
    }

    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Error> {
        self.write("set_priority", |tx| {
            let mut meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let held = counts_in(&coins_table(tx)?, contact)?;
            let plan = inventory::trim_plan(&self.policy, priority, &held);
            let mut evicted = 0;
            for tier in Tier::ALL {
                evicted += evict_newest(tx, contact, tier, plan.get(tier))?;
            }
            meta.priority = priority;
            put_meta(tx, &meta)?;
            Ok(evicted)
        })
    }

    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        self.write("store_coin", |tx| {
            let meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?;
            let held = counts_in(&coins_table(tx)?, contact)?;
            let duplicate = is_cached(tx, contact, &coin.key_id)?;
            inventory::admit(&self.policy, meta.as_ref(), coin, held.get(coin.tier), duplicate, now)?;
            let seq = codec::next_seq(tx, SEQ_INVENTORY)?;
            insert_cached(tx, contact, &CachedCoin { coin: coin.clone(), seq, fetched_at: now })
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
            let mut meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let mut selection = Selection::default();
            let mut coins = coins_table(tx)?;
            let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
            'tiers: for tier in (TierRange { desired, lowest }).tiers() {
                let b = tier.to_byte();
                // Oldest first: coins no longer fresh are dropped (wasted) until a fresh one comes.
                loop {
                    let next = {
                        let mut range = coins
                            .range((contact.0, b, 0)..=(contact.0, b, u64::MAX))
                            .ctx("scan table inventory_coins")?;
                        match range.next() {
                            None => None,
                            Some(row) => {
                                let (k, v) = row.ctx("scan table inventory_coins")?;
                                Some((k.value(), codec::decode::<CachedCoin>("inventory_coins", v.value())?))
                            }
                        }
                    };
                    let Some((key, cached)) = next else { continue 'tiers };
                    coins.remove(key).ctx("delete from table inventory_coins")?;
                    index.remove((contact.0, cached.coin.key_id.0)).ctx("delete from table inventory_index")?;
                    if cached.coin.check_fresh(&self.policy, now).is_err() {
                        selection.wasted += 1;
                        continue;
                    }
                    selection.coin = Some(cached);
                    break 'tiers;
                }
            }
            drop((coins, index));
            if selection.coin.is_some() {
                meta.last_msg_at = now;
                put_meta(tx, &meta)?;
            }
            Ok(selection)
        })
    }

    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        self.write("restore_coin", |tx| {
            let meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?;
            let held = counts_in(&coins_table(tx)?, contact)?;
            let duplicate = is_cached(tx, contact, &coin.coin.key_id)?;
            let tier = coin.coin.tier;
            if inventory::admit(&self.policy, meta.as_ref(), &coin.coin, held.get(tier), duplicate, coin.fetched_at)
                .is_err()
            {
                return Ok(false);
            }
            // Its own sequence number puts it back at its FIFO place.
            insert_cached(tx, contact, coin)?;
            Ok(true)
        })
    }

    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
        self.write("consume", |tx| {
            let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
            let Some((b, seq)) =
                index.remove((contact.0, key_id.0)).ctx("delete from table inventory_index")?.map(|g| g.value())
            else {
                return Ok(false);
            };
            codec::tier("inventory_index", b)?;
            let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            coins.remove((contact.0, b, seq)).ctx("delete from table inventory_coins")?;
            Ok(true)
        })
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        self.read("counts", |tx| counts_in(&tx.open_table(INV_COINS).ctx("open table inventory_coins")?, contact))
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        self.read("for_each_contact", |tx| {
            let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
            let counts = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            for row in contacts.iter().ctx("scan table contacts")? {
                let (_, v) = row.ctx("scan table contacts")?;
                let meta: ContactMeta = codec::decode("contacts", v.value())?;
                let held = counts_in(&counts, &meta.contact_id)?;
                visit(&meta, held);
            }
            Ok(())
        })
    }

    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Error> {
        self.write("collect_garbage", |tx| {
            let mut due = Vec::new();
            {
                let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
                let counts = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
                for row in contacts.iter().ctx("scan table contacts")? {
                    let (_, v) = row.ctx("scan table contacts")?;
                    let meta: ContactMeta = codec::decode("contacts", v.value())?;
                    if inventory::is_inactive(&self.policy, meta.last_msg_at, now) {
                        let held = counts_in(&counts, &meta.contact_id)?;
                        due.push((meta, held));
                    }
                }
            }
            let mut report = GcReport::default();
            for (mut meta, held) in due {
                report.add_contact(&held);
                if !dry_run {
                    collect_in(tx, &mut meta, &held)?;
                }
            }
            Ok(report)
        })
    }

    fn collect_contact(&self, contact: &ContactId) -> Result<GcReport, Error> {
        self.write("collect_contact", |tx| {
            let mut meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let held = counts_in(&coins_table(tx)?, contact)?;
            let mut report = GcReport::default();
            report.add_contact(&held);
            collect_in(tx, &mut meta, &held)?;
            Ok(report)
        })
    }
}
