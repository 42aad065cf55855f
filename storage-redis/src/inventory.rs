//! [`InventoryStore`] on Redis, with contact metadata sealed (issue 18).
//!
//! A contact's meta hash (`inv:v4:meta:{contact}`, the contact id hashed) holds three fields:
//! `rec`, the [`ContactMeta`] as registered, sealed; `last`, its last message time, sealed on its
//! own so that a selection writes it without reading the record; and `pt`, its priority as a
//! keyed token (one of three per contact, computed in Rust: [`Domain::Priority`]), which is all the
//! store script needs to pick the cap Rust computed from the policy. A cached coin is one string
//! (`inv:v4:key:{contact}:{coin}`) holding the sealed [`CachedCoin`]; its FIFO place is its score
//! in the tier's index, whose members are the hashed coin names. Freshness is judged in Rust
//! ([`inventory::scan_step`]) on each coin a selection pops.

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::{self, CachedCoin, ContactMeta, GcReport, ScanStep, Selection, TierRange};
use aqm_core::store::InventoryStore;
use aqm_core::{ContactId, KeyId, Priority, Tier, TierCounts, UnixSeconds};
use redis::Value;

use crate::pool::Resend;
use crate::scripts;
use crate::sealing::{Domain, Kind};
use crate::{Error, RedisStore};

/// A contact meta hash's `rec`, `pt` and `last`, as read.
type MetaFields = [Option<Vec<u8>>; 3];

/// Contacts read per round trip when listing.
const LIST_BATCH: usize = 256;

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => core::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn as_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// Per-tier numbers from a script's `{g, s, b}` reply; `None` for a negative status reply.
pub(crate) fn tier_counts(key: &str, v: &[Value]) -> Result<Result<TierCounts, i64>, Error> {
    let nums: Vec<i64> =
        v.iter().map(as_i64).collect::<Option<_>>().ok_or_else(|| Error::corrupt(key, "unexpected script reply"))?;
    match nums.as_slice() {
        [code] if *code < 0 => Ok(Err(*code)),
        [g, s, b] => {
            let c = |n: i64| u32::try_from(n).map_err(|_| Error::corrupt(key, "count out of range"));
            Ok(Ok(TierCounts([c(*g)?, c(*s)?, c(*b)?])))
        }
        _ => Err(Error::corrupt(key, "unexpected script reply")),
    }
}

/// The priority a meta hash's `pt` token stands for (tokens are per contact: see [`Domain::Priority`]).
fn priority_of(tokens: &[(Priority, String); 3], pt: &[u8]) -> Option<Priority> {
    tokens.iter().find(|(_, t)| t.as_bytes() == pt).map(|(p, _)| *p)
}

impl RedisStore {
    /// The hashed contact id: the name part of every inventory key of the contact.
    pub(crate) fn contact_ix(&self, contact: &ContactId) -> String {
        self.seal.index(Domain::Contact, contact.as_bytes())
    }

    /// The hashed name of a cached coin (contact id ‖ key id).
    pub(crate) fn coin_ix(&self, contact: &ContactId, key_id: &KeyId) -> String {
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(contact.as_bytes());
        id[16..].copy_from_slice(key_id.as_bytes());
        self.seal.index(Domain::Coin, &id)
    }

    /// The three priority tokens of `contact`.
    pub(crate) fn priority_tokens(&self, contact: &ContactId) -> [(Priority, String); 3] {
        priority_tokens_with(&self.seal, contact)
    }

    fn priority_token(&self, contact: &ContactId, p: Priority) -> String {
        let tokens = self.priority_tokens(contact);
        tokens.into_iter().find(|(q, _)| *q == p).map(|(_, t)| t).unwrap_or_default()
    }

    fn seal_last(&self, cix: &str, at: UnixSeconds) -> Result<Vec<u8>, Error> {
        self.seal.seal(Kind::LastMsg, cix, &at.to_le_bytes())
    }

    /// A contact's meta fields, opened: the registered record with the current priority and last
    /// message time. None when the contact is not registered.
    pub(crate) fn open_meta(&self, cix: &str, f: MetaFields) -> Result<Option<ContactMeta>, Error> {
        open_meta_with(&self.seal, cix, f).map_err(|e| match e {
            Error::Corrupt { what, .. } => Error::corrupt(&self.keys.inv_meta(cix), what),
            e => e,
        })
    }
}

/// [`RedisStore::open_meta`] under `seal` (also the fuzz target's entry).
pub(crate) fn open_meta_with(seal: &crate::Sealing, cix: &str, f: MetaFields) -> Result<Option<ContactMeta>, Error> {
    {
        let key = cix;
        let [rec, pt, last] = f;
        let Some(rec) = rec else { return Ok(None) };
        let plain = seal.open(Kind::ContactMeta, cix, &rec, key)?;
        let mut meta: ContactMeta =
            postcard::from_bytes(&plain).map_err(|_| Error::corrupt(key, "bad contact record"))?;
        let pt = pt.ok_or_else(|| Error::corrupt(key, "contact without its priority"))?;
        meta.priority = priority_of(&priority_tokens_with(seal, &meta.contact_id), &pt)
            .ok_or_else(|| Error::corrupt(key, "priority token of another contact or device key"))?;
        let last = last.ok_or_else(|| Error::corrupt(key, "contact without its last message time"))?;
        let last = seal.open(Kind::LastMsg, cix, &last, key)?;
        meta.last_msg_at =
            u64::from_le_bytes(last.as_slice().try_into().map_err(|_| Error::corrupt(key, "bad last message time"))?);
        Ok(Some(meta))
    }
}

/// A cached coin record's plain bytes as the coin of `contact` at FIFO place `seq`.
pub(crate) fn decode_coin(key: &str, contact: &ContactId, plain: &[u8], seq: u64) -> Result<CachedCoin, Error> {
    let mut cached: CachedCoin = postcard::from_bytes(plain).map_err(|_| Error::corrupt(key, "bad coin record"))?;
    if cached.coin.owner != *contact {
        return Err(Error::corrupt(key, "coin record of another contact"));
    }
    cached.seq = seq;
    Ok(cached)
}

/// The three priority tokens of `contact` under `seal`.
fn priority_tokens_with(seal: &crate::Sealing, contact: &ContactId) -> [(Priority, String); 3] {
    Priority::ALL.map(|p| {
        let mut id = [0u8; 17];
        id[..16].copy_from_slice(contact.as_bytes());
        id[16] = p.to_byte();
        (p, seal.index(Domain::Priority, &id))
    })
}

impl RedisStore {
    /// A cached coin record, opened: it must be `contact`'s (its owner) and carry `seq`, its
    /// score in the index.
    pub(crate) fn open_coin(
        &self,
        contact: &ContactId,
        cix: &str,
        member: &str,
        rec: &[u8],
        seq: u64,
    ) -> Result<CachedCoin, Error> {
        let key = self.keys.inv_coin(cix, member);
        let plain = self.seal.open(Kind::CachedCoin, member, rec, &key)?;
        let cached = decode_coin(&key, contact, &plain, seq)?;
        if self.coin_ix(contact, &cached.coin.key_id) != member {
            return Err(Error::corrupt(&key, "coin record of another key"));
        }
        Ok(cached)
    }

    /// Metadata and counts of several contacts (by hashed id) in one round trip (one read-only
    /// script: one snapshot, on one node), with the `last` field as read (the GC's guard).
    fn contacts_with_counts(&self, ixs: &[String]) -> Result<Vec<(ContactMeta, TierCounts, Vec<u8>)>, Error> {
        let rows = self.read_counts(ixs)?;
        let mut out = Vec::with_capacity(ixs.len());
        for (ix, (meta, held)) in ixs.iter().zip(rows) {
            let last = meta[2].clone().unwrap_or_default();
            if let Some(m) = self.open_meta(ix, meta)? {
                out.push((m, held, last));
            }
        }
        Ok(out)
    }

    /// The `inv_counts` script for `ixs`: per contact its three meta fields and coins held per tier.
    fn read_counts(&self, ixs: &[String]) -> Result<Vec<(MetaFields, TierCounts)>, Error> {
        let k = &self.keys;
        let replies: Vec<Value> = self.pool.run(Resend::Safe, |c| {
            let mut inv = scripts::call(&scripts::INV_COUNTS);
            for ix in ixs {
                inv.key(k.inv_meta(ix));
                for t in Tier::ALL {
                    inv.key(k.inv_idx(ix, t));
                }
            }
            inv.invoke(c, None)
        })?;
        if replies.len() != ixs.len() {
            return Err(Error::corrupt(&k.inv_contacts(), "unexpected counts script reply"));
        }
        let mut out = Vec::with_capacity(ixs.len());
        for (ix, row) in ixs.iter().zip(replies) {
            let key = k.inv_meta(ix);
            out.push(decode_counts_row(&key, row)?);
        }
        Ok(out)
    }

    /// Every registered contact (hashed ids: the contacts set's members).
    fn contact_members(&self) -> Result<Vec<String>, Error> {
        let key = self.keys.inv_contacts();
        let mut ixs: Vec<String> = self.pool.run(Resend::Safe, |c| redis::cmd("SMEMBERS").arg(&key).query(c))?;
        ixs.sort();
        Ok(ixs)
    }

    /// Every registered contact with its counts and `last` field, in contact id order.
    fn all_contacts(&self) -> Result<Vec<(ContactMeta, TierCounts, Vec<u8>)>, Error> {
        let mut all = Vec::new();
        for chunk in self.contact_members()?.chunks(LIST_BATCH) {
            all.extend(self.contacts_with_counts(chunk)?);
        }
        all.sort_by_key(|(m, _, _)| m.contact_id);
        Ok(all)
    }

    /// Run the collect script on one contact; `expect_last` (the `last` field as read) guards a
    /// GC decision.
    fn run_collect(&self, contact: &ContactId, expect_last: Option<&[u8]>) -> Result<Result<TierCounts, i64>, Error> {
        let k = &self.keys;
        let cix = self.contact_ix(contact);
        let meta = k.inv_meta(&cix);
        let stranger = self.priority_token(contact, Priority::Stranger);
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_COLLECT)
                .key(&meta)
                .key(k.inv_idx(&cix, Tier::Gold))
                .key(k.inv_idx(&cix, Tier::Silver))
                .key(k.inv_idx(&cix, Tier::Bronze))
                .arg(k.inv_coin_prefix(&cix))
                .arg(expect_last.unwrap_or_default())
                .arg(&stranger)
                .invoke(c, self.wait)
        })?;
        tier_counts(&meta, &reply)
    }

    /// Cache a coin if `inventory::admit` allows it, in one script: a new coin takes the next
    /// sequence number, a restored one (`restore`) keeps its own. The outer error is Redis'; the
    /// inner one the core's refusal, recomputed by `admit` from the snapshot the script decided on.
    fn run_store(
        &self,
        contact: &ContactId,
        cached: &CachedCoin,
        restore: bool,
        now: UnixSeconds,
    ) -> Result<Result<(), aqm_core::Error>, Error> {
        let k = &self.keys;
        let coin = &cached.coin;
        let cix = self.contact_ix(contact);
        let meta_key = k.inv_meta(&cix);
        let tier = coin.tier;
        let member = self.coin_ix(contact, &coin.key_id);
        let owner_ok = if coin.owner == *contact { "1" } else { "0" };
        let fresh = if coin.check_fresh(&self.policy, now).is_ok() { "1" } else { "0" };
        let seq = if restore { cached.seq.to_string() } else { String::new() };
        // admit() refuses a last-resort coin (it serves only the send that fetched it).
        let cacheable = if coin.is_last_resort() { "0" } else { "1" };
        // The record leaves its FIFO place to the index's score.
        let plain = postcard::to_allocvec(&CachedCoin { seq: 0, ..cached.clone() })
            .map_err(|_| Error::corrupt(&meta_key, "coin does not encode"))?;
        let rec = self.seal.seal(Kind::CachedCoin, &member, &plain)?;
        let tokens = self.priority_tokens(contact);
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            let mut inv = scripts::call(&scripts::INV_STORE);
            inv.key(&meta_key).key(k.inv_coin(&cix, &member)).key(k.inv_idx(&cix, tier)).key(k.inv_seq()).arg(owner_ok);
            for (p, token) in &tokens {
                inv.arg(token).arg(self.policy.cap(*p, tier));
            }
            inv.arg(&member).arg(&rec).arg(fresh).arg(&seq).arg(cacheable).invoke(c, self.wait)
        })?;
        let bad = || Error::corrupt(&meta_key, "unexpected store script reply");
        let [stored, prio, held, dup] = reply.as_slice() else { return Err(bad()) };
        let stored = as_i64(stored).ok_or_else(bad)?;
        let prio = as_i64(prio).ok_or_else(bad)?;
        let held = as_i64(held).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
        let dup = as_i64(dup).ok_or_else(bad)? == 1;
        // The snapshot the script decided on, put to the core's rule for the exact refusal.
        let meta = match prio {
            0 => None,
            1..=3 => {
                let p = tokens[usize::try_from(prio - 1).map_err(|_| bad())?].0;
                Some(ContactMeta::new(*contact, p, "", now)?)
            }
            _ => return Err(Error::corrupt(&meta_key, "priority token of another contact or device key")),
        };
        let verdict = inventory::admit(&self.policy, meta.as_ref(), coin, held, dup, now);
        match (stored == 1, verdict) {
            (true, Ok(())) => Ok(Ok(())),
            (false, Err(e)) => Ok(Err(e)),
            // The script and the core disagree: a bug, reported rather than hidden.
            (true, Err(_)) | (false, Ok(())) => {
                Err(Error::corrupt(&meta_key, "store script disagrees with inventory::admit"))
            }
        }
    }

    /// Put back the `last` field a selection overwrote before it found every coin it popped
    /// stale (`touch_on_select` writes nothing then), unless another selection wrote since.
    fn undo_touch(&self, cix: &str, ours: &[u8], before: &[u8]) -> Result<(), Error> {
        let meta = self.keys.inv_meta(cix);
        let _: i64 = self.pool.run(Resend::Safe, |c| {
            scripts::call(&scripts::INV_UNTOUCH).key(&meta).arg(ours).arg(before).invoke(c, self.wait)
        })?;
        Ok(())
    }
}

/// One row of the counts script: `{rec, pt, last, gold, silver, bronze}`.
pub(crate) fn decode_counts_row(key: &str, row: Value) -> Result<(MetaFields, TierCounts), Error> {
    let bad = || Error::corrupt(key, "unexpected counts script reply");
    let Value::Array(row) = row else { return Err(bad()) };
    let [r, p, l, g, s, b] = <[Value; 6]>::try_from(row).map_err(|_| bad())?;
    let field = |v: Value| -> Option<Vec<u8>> { if v == Value::Nil { None } else { as_bytes(v) } };
    let count = |v: &Value| as_i64(v).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad);
    let held = TierCounts([count(&g)?, count(&s)?, count(&b)?]);
    Ok(([field(r), field(p), field(l)], held))
}

impl InventoryStore for RedisStore {
    type Error = Error;

    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Error> {
        let k = &self.keys;
        let cix = self.contact_ix(&meta.contact_id);
        let plain =
            postcard::to_allocvec(meta).map_err(|_| Error::corrupt(&k.inv_meta(&cix), "contact does not encode"))?;
        let rec = self.seal.seal(Kind::ContactMeta, &cix, &plain)?;
        let last = self.seal_last(&cix, meta.last_msg_at)?;
        let pt = self.priority_token(&meta.contact_id, meta.priority);
        // Not resent: a second run would answer "already registered" for our own registration.
        let n: i64 = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_REGISTER)
                .key(k.inv_meta(&cix))
                .key(k.inv_contacts())
                .arg(&cix)
                .arg(&rec)
                .arg(&pt)
                .arg(&last)
                .invoke(c, self.wait)
        })?;
        Ok(n == 1)
    }

    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
        let cix = self.contact_ix(contact);
        let key = self.keys.inv_meta(&cix);
        let [r, p, l]: MetaFields =
            self.pool.run(Resend::Safe, |c| redis::cmd("HMGET").arg(&key).arg("rec").arg("pt").arg("last").query(c))?;
        let meta = self.open_meta(&cix, [r, p, l])?;
        match meta {
            Some(m) if m.contact_id != *contact => Err(Error::corrupt(&key, "contact record of another contact")),
            m => Ok(m),
        }
    }

    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Error> {
        let k = &self.keys;
        let cix = self.contact_ix(contact);
        let meta = k.inv_meta(&cix);
        let caps = self.policy.caps_of(priority);
        let pt = self.priority_token(contact, priority);
        // Not resent: a second run would report no evictions for the first run's.
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_SET_PRIORITY)
                .key(&meta)
                .key(k.inv_idx(&cix, Tier::Gold))
                .key(k.inv_idx(&cix, Tier::Silver))
                .key(k.inv_idx(&cix, Tier::Bronze))
                .arg(&pt)
                .arg(caps.get(Tier::Gold))
                .arg(caps.get(Tier::Silver))
                .arg(caps.get(Tier::Bronze))
                .arg(k.inv_coin_prefix(&cix))
                .invoke(c, self.wait)
        })?;
        match tier_counts(&meta, &reply)? {
            Ok(evicted) => Ok(evicted.total()),
            Err(_) => Err(aqm_core::Error::ContactNotRegistered.into()),
        }
    }

    fn store_coin(&self, contact: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        let cached = CachedCoin { coin: coin.clone(), seq: 0, fetched_at: now };
        self.run_store(contact, &cached, false, now).and_then(|stored| match stored {
            Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        })
    }

    /// Oldest coin first, tier by tier over the core's range: each step pops one coin in one
    /// script (which also marks the contact active, the common case being a fresh coin), and
    /// [`inventory::scan_step`] decides on it in Rust. A stale coin stays deleted (counted as
    /// wasted) and the next step pops the next; if none was fresh, the contact's `last` field is
    /// put back (unless another selection wrote it meanwhile). So a selection of a fresh coin is
    /// one round trip, and every pop is atomic: no coin is ever handed out twice.
    fn select_coin(
        &self,
        contact: &ContactId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<Selection, Error> {
        let k = &self.keys;
        let cix = self.contact_ix(contact);
        let meta_key = k.inv_meta(&cix);
        let touched = self.seal_last(&cix, now)?;
        let tiers: Vec<Tier> = (TierRange { desired, lowest }).tiers().collect();
        let mut selection = Selection::default();
        let mut before: Option<Vec<u8>> = None;
        loop {
            let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
                let mut inv = scripts::call(&scripts::INV_SELECT);
                inv.key(&meta_key).arg(k.inv_coin_prefix(&cix)).arg(&touched);
                for t in &tiers {
                    inv.key(k.inv_idx(&cix, *t));
                }
                inv.invoke(c, self.wait)
            })?;
            match decode_pop(&meta_key, &tiers, reply)? {
                Pop::Unregistered => return Err(aqm_core::Error::ContactNotRegistered.into()),
                Pop::Empty => {
                    if let Some(before) = before.filter(|b| !b.is_empty()) {
                        self.undo_touch(&cix, &touched, &before)?;
                    }
                    return Ok(selection);
                }
                Pop::Coin { member, seq, rec, last } => {
                    before.get_or_insert(last);
                    let coin = match rec {
                        Some(rec) => Some(self.open_coin(contact, &cix, &member, &rec, seq)?),
                        // An index member without its coin (never written by this crate): gone.
                        None => None,
                    };
                    match coin {
                        Some(c) if inventory::scan_step(&self.policy, &c.coin, now) == ScanStep::Take => {
                            selection.coin = Some(c);
                            return Ok(selection);
                        }
                        _ => selection.wasted += 1,
                    }
                }
            }
        }
    }

    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        Ok(self.run_store(contact, coin, true, coin.fetched_at)?.is_ok())
    }

    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
        let k = &self.keys;
        let cix = self.contact_ix(contact);
        let member = self.coin_ix(contact, key_id);
        let n: i64 = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_CONSUME)
                .key(k.inv_coin(&cix, &member))
                .key(k.inv_idx(&cix, Tier::Gold))
                .key(k.inv_idx(&cix, Tier::Silver))
                .key(k.inv_idx(&cix, Tier::Bronze))
                .arg(&member)
                .invoke(c, self.wait)
        })?;
        Ok(n == 1)
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        let rows = self.read_counts(core::slice::from_ref(&self.contact_ix(contact)))?;
        Ok(rows.into_iter().next().map(|(_, held)| held).unwrap_or_default())
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        for (meta, held, _) in self.all_contacts()? {
            visit(&meta, held);
        }
        Ok(())
    }

    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Error> {
        let mut report = GcReport::default();
        for (meta, held, last) in self.all_contacts()? {
            if !inventory::is_inactive(&self.policy, meta.last_msg_at, now) {
                continue;
            }
            if dry_run {
                report.add_contact(&held);
                continue;
            }
            // Applied only if the contact is still as inactive as the core judged it: its sealed
            // `last` field unchanged, byte for byte.
            if let Ok(dropped) = self.run_collect(&meta.contact_id, Some(&last))? {
                report.add_contact(&dropped);
            }
        }
        Ok(report)
    }

    fn collect_contact(&self, contact: &ContactId) -> Result<GcReport, Error> {
        match self.run_collect(contact, None)? {
            Ok(dropped) => {
                let mut report = GcReport::default();
                report.add_contact(&dropped);
                Ok(report)
            }
            Err(_) => Err(aqm_core::Error::ContactNotRegistered.into()),
        }
    }
}

/// What one step of a selection popped.
pub(crate) enum Pop {
    /// The contact is not registered.
    Unregistered,
    /// No coin left in the range.
    Empty,
    /// The oldest coin of the first non-empty tier: its hashed name, FIFO place, sealed record
    /// (None if the index named a coin that is not there) and the `last` field before the step.
    Coin { member: String, seq: u64, rec: Option<Vec<u8>>, last: Vec<u8> },
}

/// The select script's reply: `{-1}`, `{0}`, or `{1, tier position, member, seq, record, last}`.
pub(crate) fn decode_pop(key: &str, tiers: &[Tier], reply: Vec<Value>) -> Result<Pop, Error> {
    let bad = || Error::corrupt(key, "unexpected select script reply");
    let mut it = reply.into_iter();
    match it.next().as_ref().and_then(as_i64) {
        Some(-1) => Ok(Pop::Unregistered),
        Some(0) => Ok(Pop::Empty),
        Some(1) => {
            let pos = it.next().as_ref().and_then(as_i64).ok_or_else(bad)?;
            if pos < 1 || usize::try_from(pos).map_or(true, |p| p > tiers.len()) {
                return Err(bad());
            }
            let member = it.next().and_then(as_bytes).and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad)?;
            let seq = it
                .next()
                .and_then(as_bytes)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(bad)?;
            let rec =
                it.next().and_then(|v| if v == Value::Nil || v == Value::Boolean(false) { None } else { as_bytes(v) });
            let last = it.next().and_then(as_bytes).unwrap_or_default();
            Ok(Pop::Coin { member, seq, rec, last })
        }
        _ => Err(bad()),
    }
}
