//! A full consistency check of one database against the invariants of the rules in docs/architecture.md §2, in one read
//! transaction: counters equal a recount, caps hold, indexes match the records they point to.
//! Crash tests run it after every reopen; an operator can run it on a suspicious file.

use std::collections::{BTreeMap, BTreeSet};

use aqm_core::directory::DirectoryCoin;
use aqm_core::inventory::{CachedCoin, ContactMeta};
use aqm_core::vault::{KeyStatus, VaultEntry, VaultStats};
use aqm_core::{KeyId, Tier, TierCounts};
use redb::ReadableTable;

use crate::RedbStore;
use crate::codec::{
    self, CONTACTS, COUNTERS, DIR_CLAIMED, DIR_KEYS, DIR_LAST_RESORT, DIR_UNCLAIMED, INV_COINS, INV_INDEX, LR_OPENS,
    VAULT, VAULT_KINDS,
};
use crate::error::{Ctx, Error};
use crate::records;
use crate::sealing::seq_key;
use crate::{directory, inventory};

/// What [`RedbStore::audit`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// The vault counters as stored.
    pub vault_stats: VaultStats,
    /// ACTIVE vault keys per tier, recounted from the entries.
    pub vault_active: TierCounts,
    /// ACTIVE vault key ids.
    pub active_keys: BTreeSet<KeyId>,
    /// BURNED vault key ids still kept (within their grace).
    pub burned_keys: BTreeSet<KeyId>,
    /// Cached coins per contact, recounted: key ids in FIFO order per tier.
    pub cached: BTreeMap<aqm_core::ContactId, [Vec<KeyId>; 3]>,
    /// Every violated invariant, in words. Empty when the database is consistent.
    pub problems: Vec<String>,
}

impl Audit {
    /// Whether no invariant is violated.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

impl RedbStore {
    /// Recount everything and check every invariant; O(size of the database).
    pub fn audit(&self) -> Result<Audit, Error> {
        self.read("audit", |tx| {
            let mut a = Audit::default();
            let counters = tx.open_table(COUNTERS).ctx("audit: open table counters")?;
            a.vault_stats = codec::vault_stats(&self.sealing, &counters)?;
            let kinds = tx.open_table(VAULT_KINDS).ctx("audit: open table vault_kinds")?;
            // Key (as stored) → whether that entry is an ACTIVE last-resort one.
            let mut live_last_resort = BTreeMap::new();
            for row in tx.open_table(VAULT).ctx("audit: open table vault")?.iter().ctx("audit: scan table vault")? {
                let (k, v) = row.ctx("audit: scan table vault")?;
                let mut e: VaultEntry =
                    records::decode::<records::VaultRecord>(&self.sealing, "vault", k.value(), v.value())?;
                e.kind = crate::vault::kind_in(self, &kinds, k.value())?;
                live_last_resort.insert(k.value().to_vec(), e.is_last_resort() && e.status() == KeyStatus::Active);
                if crate::vault::vault_key(self, &e.key_id) != k.value() {
                    a.problems.push(format!("vault entry {} stored under another key id", e.key_id));
                }
                match e.status() {
                    KeyStatus::Active => {
                        *a.vault_active.get_mut(e.tier) += 1;
                        a.active_keys.insert(e.key_id);
                    }
                    KeyStatus::Burned => {
                        a.burned_keys.insert(e.key_id);
                    }
                }
            }
            if a.vault_stats.active != a.vault_active {
                a.problems.push(format!(
                    "vault active counters {:?} differ from the recount {:?}",
                    a.vault_stats.active, a.vault_active
                ));
            }
            // A kind belongs to a stored entry; opens to a live last-resort one (burn, retirement
            // and purge drop them).
            for row in kinds.iter().ctx("audit: scan table vault_kinds")? {
                let (k, _) = row.ctx("audit: scan table vault_kinds")?;
                if !live_last_resort.contains_key(k.value()) {
                    a.problems.push("a vault kind record has no vault entry".to_owned());
                }
            }
            for row in tx.open_table(LR_OPENS).ctx("audit: open table last_resort_opens")?.iter().ctx("audit: scan")? {
                let (k, v) = row.ctx("audit: scan table last_resort_opens")?;
                records::decode::<records::OpensRecord>(&self.sealing, "last_resort_opens", k.value(), v.value())?;
                if live_last_resort.get(k.value()) != Some(&true) {
                    a.problems
                        .push("last-resort opens kept for a key that is not an ACTIVE last-resort key".to_owned());
                }
            }
            if a.vault_stats.total_burned < a.burned_keys.len() as u64 {
                a.problems.push(format!(
                    "vault counts {} burned keys but holds {}",
                    a.vault_stats.total_burned,
                    a.burned_keys.len()
                ));
            }
            self.audit_inventory(tx, &mut a)?;
            self.audit_directory(tx, &mut a)?;
            Ok(a)
        })
    }

    fn audit_inventory(&self, tx: &redb::ReadTransaction, a: &mut Audit) -> Result<(), Error> {
        let contacts = tx.open_table(CONTACTS).ctx("audit: open table contacts")?;
        let index = tx.open_table(INV_INDEX).ctx("audit: open table inventory_index")?;
        let mut metas = BTreeMap::new();
        for row in contacts.iter().ctx("audit: scan table contacts")? {
            let (k, v) = row.ctx("audit: scan table contacts")?;
            let m: ContactMeta =
                records::decode::<records::ContactRecord>(&self.sealing, "contacts", k.value(), v.value())?;
            if inventory::contact_key(self, &m.contact_id) != k.value() {
                a.problems.push(format!("contact {} stored under another key", m.contact_id));
            }
            metas.insert(m.contact_id, m);
        }
        let mut index_rows = 0usize;
        for row in index.iter().ctx("audit: scan table inventory_index")? {
            row.ctx("audit: scan table inventory_index")?;
            index_rows += 1;
        }
        let mut coin_rows = 0usize;
        for row in tx.open_table(INV_COINS).ctx("audit: open table inventory_coins")?.iter().ctx("audit: scan")? {
            let (k, v) = row.ctx("audit: scan table inventory_coins")?;
            let (ix, seq) = k.value();
            let c: CachedCoin = records::decode::<records::CachedRecord>(
                &self.sealing,
                "inventory_coins",
                &seq_key(ix, seq),
                v.value(),
            )?;
            coin_rows += 1;
            let contact = c.coin.owner;
            let tier = c.coin.tier;
            if c.seq != seq || inventory::coins_ix(self, &contact, tier) != ix {
                a.problems.push(format!("cached coin {} is filed under the wrong key", c.coin.key_id));
            }
            let slot = inventory::slot_key(self, &contact, &c.coin.key_id);
            let found = match index.get(slot.as_slice()).ctx("audit: read table inventory_index")? {
                Some(g) => {
                    Some(records::decode::<records::SlotRecord>(&self.sealing, "inventory_index", &slot, g.value())?)
                }
                None => None,
            };
            if found != Some((tier, seq)) {
                a.problems.push(format!("cached coin {} has no matching index entry", c.coin.key_id));
            }
            a.cached.entry(contact).or_default()[tier.index()].push(c.coin.key_id);
        }
        if coin_rows != index_rows {
            a.problems.push(format!("{coin_rows} cached coins but {index_rows} index entries"));
        }
        for (contact, lists) in &a.cached {
            if !metas.contains_key(contact) {
                a.problems.push(format!("coins cached for unregistered contact {contact}"));
            }
            let mut seen = BTreeSet::new();
            for k in lists.iter().flatten() {
                if !seen.insert(*k) {
                    a.problems.push(format!("coin {k} cached twice for {contact}"));
                }
            }
        }
        for (id, meta) in &metas {
            let lists = a.cached.get(id);
            for tier in Tier::ALL {
                let real = lists.map_or(0, |l| l[tier.index()].len() as u32);
                let cap = self.policy.cap(meta.priority, tier);
                if real > cap {
                    a.problems.push(format!("{id}: {real} {tier} coins cached above the cap of {cap}"));
                }
            }
        }
        Ok(())
    }

    fn audit_directory(&self, tx: &redb::ReadTransaction, a: &mut Audit) -> Result<(), Error> {
        let keys = tx.open_table(DIR_KEYS).ctx("audit: open table directory_keys")?;
        let mut records = 0usize;
        let key_record = |key: &[u8]| -> Result<Option<(Tier, u64, bool)>, Error> {
            match keys.get(key).ctx("audit: read table directory_keys")? {
                Some(g) => {
                    Ok(Some(records::decode::<records::DirKeyRecord>(&self.sealing, "directory_keys", key, g.value())?))
                }
                None => Ok(None),
            }
        };
        for row in
            tx.open_table(DIR_UNCLAIMED).ctx("audit: open table directory_unclaimed")?.iter().ctx("audit: scan")?
        {
            let (k, v) = row.ctx("audit: scan table directory_unclaimed")?;
            let (ix, seq) = k.value();
            let c: DirectoryCoin = records::decode::<records::DirectoryRecord>(
                &self.sealing,
                "directory_unclaimed",
                &seq_key(ix, seq),
                v.value(),
            )?;
            records += 1;
            let ck = directory::coin_key(self, &c.coin.owner, &c.coin.key_id);
            if c.claimed_by.is_some()
                || directory::unclaimed_ix(self, &c.coin.owner, c.coin.tier) != ix
                || key_record(&ck)? != Some((c.coin.tier, seq, false))
            {
                a.problems.push(format!("directory coin {} is inconsistent with its key record", c.coin.key_id));
            }
        }
        for row in tx.open_table(DIR_CLAIMED).ctx("audit: open table directory_claimed")?.iter().ctx("audit: scan")? {
            let (k, v) = row.ctx("audit: scan table directory_claimed")?;
            let c: DirectoryCoin =
                records::decode::<records::DirectoryRecord>(&self.sealing, "directory_claimed", k.value(), v.value())?;
            records += 1;
            let ok = key_record(k.value())?.is_some_and(|(_, _, claimed)| claimed);
            if c.claimed_by.is_none() || !ok {
                a.problems.push(format!("claimed directory coin {} is inconsistent", c.coin.key_id));
            }
        }
        let mut key_rows = 0usize;
        for row in keys.iter().ctx("audit: scan table directory_keys")? {
            row.ctx("audit: scan table directory_keys")?;
            key_rows += 1;
        }
        if key_rows != records {
            a.problems.push(format!("{records} directory coins but {key_rows} key records"));
        }
        for row in
            tx.open_table(DIR_LAST_RESORT).ctx("audit: open table directory_last_resort")?.iter().ctx("audit: scan")?
        {
            let (k, v) = row.ctx("audit: scan table directory_last_resort")?;
            let c: DirectoryCoin = records::decode::<records::DirectoryRecord>(
                &self.sealing,
                "directory_last_resort",
                k.value(),
                v.value(),
            )?;
            if !c.coin.is_last_resort()
                || c.claimed_by.is_some()
                || directory::last_resort_key(self, &c.coin.owner, c.coin.tier) != k.value()
            {
                a.problems.push(format!("last-resort directory coin {} is inconsistent with its slot", c.coin.key_id));
            }
        }
        Ok(())
    }
}
