//! [`InventoryStore`]: each method one redb transaction.
//!
//! Coins of a contact and tier sit under keys `(contact, tier, seq)`, so the oldest coin is the
//! first key of that range and the newest the last: FIFO by a persisted insertion sequence.

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::{self, CachedCoin, ContactMeta, GcReport};
use aqm_core::store::InventoryStore;
use aqm_core::{ContactId, KeyId, Priority, Tier, TierCounts, UnixSeconds};
use redb::{ReadableTable, WriteTransaction};

use crate::RedbStore;
use crate::codec::{self, CONTACTS, INV_COINS, INV_COUNTS, INV_INDEX, Id, SEQ_INVENTORY};
use crate::error::{Ctx, Error};

/// The registered meta of `contact`, if any.
fn meta_in<T: ReadableTable<Id, &'static [u8]>>(t: &T, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
    match t.get(contact.0).ctx("read table contacts")? {
        Some(g) => codec::decode("contacts", g.value()).map(Some),
        None => Ok(None),
    }
}

/// The stored per-tier counts of `contact` (zeros if none).
fn counts_in<T: ReadableTable<Id, [u32; 3]>>(t: &T, contact: &ContactId) -> Result<TierCounts, Error> {
    Ok(TierCounts(t.get(contact.0).ctx("read table inventory_counts")?.map_or([0; 3], |g| g.value())))
}

fn put_meta(tx: &WriteTransaction, meta: &ContactMeta) -> Result<(), Error> {
    let mut t = tx.open_table(CONTACTS).ctx("open table contacts")?;
    let bytes = codec::encode("contacts", meta)?;
    t.insert(meta.contact_id.0, bytes.as_slice()).ctx("write table contacts")?;
    Ok(())
}

fn put_counts(tx: &WriteTransaction, contact: &ContactId, counts: &TierCounts) -> Result<(), Error> {
    let mut t = tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?;
    t.insert(contact.0, counts.0).ctx("write table inventory_counts")?;
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
    put_counts(tx, &meta.contact_id, &TierCounts::default())?;
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
            put_counts(tx, &meta.contact_id, &TierCounts::default())?;
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
            let mut held = counts_in(&tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?, contact)?;
            let plan = inventory::trim_plan(&self.policy, priority, &held);
            let mut evicted = 0;
            for tier in Tier::ALL {
                let n = evict_newest(tx, contact, tier, plan.get(tier))?;
                *held.get_mut(tier) -= n;
                evicted += n;
            }
            put_counts(tx, contact, &held)?;
            meta.priority = priority;
            put_meta(tx, &meta)?;
            Ok(evicted)
        })
    }

    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        self.write("store_coin", |tx| {
            let meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?;
            let mut held = counts_in(&tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?, contact)?;
            let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
            let duplicate = index.get((contact.0, coin.key_id.0)).ctx("read table inventory_index")?.is_some();
            inventory::admit(&self.policy, meta.as_ref(), coin, held.get(coin.tier), duplicate)?;
            let seq = codec::next_seq(tx, SEQ_INVENTORY)?;
            let tier = coin.tier.to_byte();
            let cached = CachedCoin { coin: coin.clone(), seq, fetched_at: now };
            let bytes = codec::encode("inventory_coins", &cached)?;
            let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            coins.insert((contact.0, tier, seq), bytes.as_slice()).ctx("write table inventory_coins")?;
            index.insert((contact.0, coin.key_id.0), (tier, seq)).ctx("write table inventory_index")?;
            *held.get_mut(coin.tier) += 1;
            drop((coins, index));
            put_counts(tx, contact, &held)
        })
    }

    fn select_coin(&self, contact: &ContactId, desired: Tier, now: UnixSeconds) -> Result<Option<CachedCoin>, Error> {
        self.write("select_coin", |tx| {
            let mut meta = meta_in(&tx.open_table(CONTACTS).ctx("open table contacts")?, contact)?
                .ok_or(aqm_core::Error::ContactNotRegistered)?;
            let mut held = counts_in(&tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?, contact)?;
            let Some(tier) = inventory::pick_tier(desired, &held) else { return Ok(None) };
            let b = tier.to_byte();
            let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            let (key, cached) = {
                let mut range =
                    coins.range((contact.0, b, 0)..=(contact.0, b, u64::MAX)).ctx("scan table inventory_coins")?;
                let Some(row) = range.next() else {
                    return Err(Error::Corrupt {
                        table: "inventory_counts",
                        detail: "count says a coin is cached but none is",
                    });
                };
                let (k, v) = row.ctx("scan table inventory_coins")?;
                (k.value(), codec::decode::<CachedCoin>("inventory_coins", v.value())?)
            };
            coins.remove(key).ctx("delete from table inventory_coins")?;
            let mut index = tx.open_table(INV_INDEX).ctx("open table inventory_index")?;
            index.remove((contact.0, cached.coin.key_id.0)).ctx("delete from table inventory_index")?;
            drop((coins, index));
            *held.get_mut(tier) -= 1;
            put_counts(tx, contact, &held)?;
            meta.last_msg_at = now;
            put_meta(tx, &meta)?;
            Ok(Some(cached))
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
            let tier = codec::tier("inventory_index", b)?;
            let mut coins = tx.open_table(INV_COINS).ctx("open table inventory_coins")?;
            coins.remove((contact.0, b, seq)).ctx("delete from table inventory_coins")?;
            drop((coins, index));
            let mut held = counts_in(&tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?, contact)?;
            let c = held.get_mut(tier);
            *c = c.saturating_sub(1);
            put_counts(tx, contact, &held)?;
            Ok(true)
        })
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        self.read("counts", |tx| counts_in(&tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?, contact))
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        self.read("for_each_contact", |tx| {
            let contacts = tx.open_table(CONTACTS).ctx("open table contacts")?;
            let counts = tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?;
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
                let counts = tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?;
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
            let held = counts_in(&tx.open_table(INV_COUNTS).ctx("open table inventory_counts")?, contact)?;
            let mut report = GcReport::default();
            report.add_contact(&held);
            collect_in(tx, &mut meta, &held)?;
            Ok(report)
        })
    }
}
