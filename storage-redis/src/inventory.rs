//! [`InventoryStore`] on Redis.

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::inventory::{self, CachedCoin, ContactMeta, GcReport, Selection, TierRange};
use aqm_core::store::InventoryStore;
use aqm_core::{ContactId, KeyId, Priority, Tier, TierCounts, UnixSeconds};
use redis::Value;

use crate::pool::Resend;
use crate::scripts;
use crate::{Error, RedisStore, parse_u64};

/// A contact meta hash's `priority`, `last_msg_at`, `display_name` and `require_pq`, as read.
type MetaFields = Vec<Option<Vec<u8>>>;

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

fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => core::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
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

pub(crate) fn decode_meta(key: &str, contact: ContactId, f: &[Option<Vec<u8>>]) -> Result<Option<ContactMeta>, Error> {
    let [prio, last, name, pq] = f else { return Err(Error::corrupt(key, "unexpected reply")) };
    let Some(prio) = prio else { return Ok(None) };
    let priority: Priority = core::str::from_utf8(prio)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corrupt(key, "unknown priority"))?;
    let last_msg_at = parse_u64(key, "bad last_msg_at", last.as_deref().unwrap_or_default())?;
    let name = core::str::from_utf8(name.as_deref().unwrap_or_default())
        .map_err(|_| Error::corrupt(key, "display_name is not UTF-8"))?;
    let mut meta = ContactMeta::new(contact, priority, name, last_msg_at)
        .map_err(|_| Error::corrupt(key, "display_name too long"))?;
    meta.require_pq = pq.as_deref() == Some(b"1");
    Ok(Some(meta))
}

impl RedisStore {
    /// Metadata and counts of several contacts in one round trip (one read-only script: one
    /// snapshot, on one node).
    fn contacts_with_counts(&self, ids: &[ContactId]) -> Result<Vec<(ContactMeta, TierCounts)>, Error> {
        let k = &self.keys;
        let rows = self.read_counts(ids)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, (meta, held)) in ids.iter().zip(rows) {
            if let Some(m) = decode_meta(&k.inv_meta(id), *id, &meta)? {
                out.push((m, held));
            }
        }
        Ok(out)
    }

    /// The `inv_counts` script for `ids`: per contact its four meta fields and coins held per tier.
    fn read_counts(&self, ids: &[ContactId]) -> Result<Vec<(MetaFields, TierCounts)>, Error> {
        let k = &self.keys;
        let replies: Vec<Value> = self.pool.run(Resend::Safe, |c| {
            let mut inv = scripts::call(&scripts::INV_COUNTS);
            for id in ids {
                inv.key(k.inv_meta(id));
                for t in Tier::ALL {
                    inv.key(k.inv_idx(id, t));
                }
            }
            inv.invoke(c, None)
        })?;
        if replies.len() != ids.len() {
            return Err(Error::corrupt(&k.inv_contacts(), "unexpected counts script reply"));
        }
        let mut out = Vec::with_capacity(ids.len());
        for (id, row) in ids.iter().zip(replies) {
            let key = k.inv_meta(id);
            let bad = || Error::corrupt(&key, "unexpected counts script reply");
            let Value::Array(row) = row else { return Err(bad()) };
            let [p, l, n, q, g, s, b] = <[Value; 7]>::try_from(row).map_err(|_| bad())?;
            let field = |v: Value| -> Option<Vec<u8>> { if v == Value::Nil { None } else { as_bytes(v) } };
            let count = |v: &Value| as_i64(v).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad);
            let held = TierCounts([count(&g)?, count(&s)?, count(&b)?]);
            out.push((vec![field(p), field(l), field(n), field(q)], held));
        }
        Ok(out)
    }

    fn contact_ids(&self) -> Result<Vec<ContactId>, Error> {
        let key = self.keys.inv_contacts();
        let ids: Vec<String> = self.pool.run(Resend::Safe, |c| redis::cmd("SMEMBERS").arg(&key).query(c))?;
        let mut ids: Vec<ContactId> = ids
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| Error::corrupt(&key, "bad contact id"))?;
        ids.sort();
        Ok(ids)
    }

    /// Run the collect script on one contact; `expect_last` guards a GC decision.
    fn run_collect(
        &self,
        contact: &ContactId,
        expect_last: Option<UnixSeconds>,
    ) -> Result<Result<TierCounts, i64>, Error> {
        let k = &self.keys;
        let meta = k.inv_meta(contact);
        let expect = expect_last.map(|t| t.to_string()).unwrap_or_default();
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_COLLECT)
                .key(&meta)
                .key(k.inv_idx(contact, Tier::Gold))
                .key(k.inv_idx(contact, Tier::Silver))
                .key(k.inv_idx(contact, Tier::Bronze))
                .arg(k.inv_coin_prefix(contact))
                .arg(&expect)
                .invoke(c, self.wait)
        })?;
        tier_counts(&meta, &reply)
    }
}

impl RedisStore {
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
        let meta_key = k.inv_meta(contact);
        let tier = coin.tier;
        let id = coin.key_id.to_string();
        let fetched = cached.fetched_at.to_string();
        let owner_ok = if coin.owner == *contact { "1" } else { "0" };
        let fresh = if coin.check_fresh(&self.policy, now).is_ok() { "1" } else { "0" };
        let seq = if restore { cached.seq.to_string() } else { String::new() };
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            let mut inv = scripts::call(&scripts::INV_STORE);
            inv.key(&meta_key)
                .key(k.inv_coin(contact, &coin.key_id))
                .key(k.inv_idx(contact, tier))
                .key(k.inv_seq())
                .arg(owner_ok);
            for p in Priority::ALL {
                inv.arg(self.policy.cap(p, tier));
            }
            inv.arg(contact.to_string())
                .arg(&id)
                .arg(tier.as_str())
                .arg(coin.public_key.as_slice())
                .arg(coin.signature.as_slice())
                .arg(&fetched)
                .arg(coin.kind.to_byte().to_string())
                .arg(coin.expires_at.to_string())
                .arg(fresh)
                .arg(&seq)
                .invoke(c, self.wait)
        })?;
        let bad = || Error::corrupt(&meta_key, "unexpected store script reply");
        let [stored, prio, held, dup] = reply.as_slice() else { return Err(bad()) };
        let stored = as_i64(stored).ok_or_else(bad)?;
        let prio = as_str(prio).ok_or_else(bad)?;
        let held = as_i64(held).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
        let dup = as_i64(dup).ok_or_else(bad)? == 1;
        // The snapshot the script decided on, put to the core's rule for the exact refusal.
        let meta = if prio.is_empty() {
            None
        } else {
            let p: Priority = prio.parse().map_err(|_| Error::corrupt(&meta_key, "unknown priority"))?;
            Some(ContactMeta::new(*contact, p, "", now)?)
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
}

impl InventoryStore for RedisStore {
    type Error = Error;

    fn register_contact(&self, meta: &ContactMeta) -> Result<bool, Error> {
        let k = &self.keys;
        let id = meta.contact_id.to_string();
        let last = meta.last_msg_at.to_string();
        // Not resent: a second run would answer "already registered" for our own registration.
        let n: i64 = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_REGISTER)
                .key(k.inv_meta(&meta.contact_id))
                .key(k.inv_contacts())
                .arg(&id)
                .arg(meta.priority.as_str())
                .arg(&last)
                .arg(meta.display_name.as_str())
                .arg(if meta.require_pq { "1" } else { "0" })
                .invoke(c, self.wait)
        })?;
        Ok(n == 1)
    }

    fn contact(&self, contact: &ContactId) -> Result<Option<ContactMeta>, Error> {
        let key = self.keys.inv_meta(contact);
        let f: Vec<Option<Vec<u8>>> = self.pool.run(Resend::Safe, |c| {
            redis::cmd("HMGET")
                .arg(&key)
                .arg("priority")
                .arg("last_msg_at")
                .arg("display_name")
                .arg("require_pq")
                .query(c)
        })?;
        decode_meta(&key, *contact, &f)
    }

    fn set_priority(&self, contact: &ContactId, priority: Priority) -> Result<u32, Error> {
        let k = &self.keys;
        let meta = k.inv_meta(contact);
        let caps = self.policy.caps_of(priority);
        // Not resent: a second run would report no evictions for the first run's.
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_SET_PRIORITY)
                .key(&meta)
                .key(k.inv_idx(contact, Tier::Gold))
                .key(k.inv_idx(contact, Tier::Silver))
                .key(k.inv_idx(contact, Tier::Bronze))
                .arg(priority.as_str())
                .arg(caps.get(Tier::Gold))
                .arg(caps.get(Tier::Silver))
                .arg(caps.get(Tier::Bronze))
                .arg(k.inv_coin_prefix(contact))
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

    fn select_coin(
        &self,
        contact: &ContactId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<Selection, Error> {
        let k = &self.keys;
        let meta_key = k.inv_meta(contact);
        let now_s = now.to_string();
        // A coin is fresh while expires_at > now + coin_min_life (Policy::coin_is_fresh).
        let fresh_after = now.saturating_add(self.policy.coin_min_life_secs).to_string();
        let reply: Vec<Value> = self.pool.run(Resend::Never, |c| {
            let mut inv = scripts::call(&scripts::INV_SELECT);
            inv.key(&meta_key).arg(&now_s).arg(k.inv_coin_prefix(contact)).arg(&fresh_after);
            // The core's range, dearest first; the script pops from the first with a fresh coin.
            for t in (TierRange { desired, lowest }).tiers() {
                inv.key(k.inv_idx(contact, t)).arg(t.as_str());
            }
            inv.invoke(c, self.wait)
        })?;
        decode_selection(k, contact, reply)
    }

    fn restore_coin(&self, contact: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        Ok(self.run_store(contact, coin, true, coin.fetched_at)?.is_ok())
    }

    fn consume(&self, contact: &ContactId, key_id: &KeyId) -> Result<bool, Error> {
        let k = &self.keys;
        let id = key_id.to_string();
        let n: i64 = self.pool.run(Resend::Never, |c| {
            scripts::call(&scripts::INV_CONSUME)
                .key(k.inv_coin(contact, key_id))
                .key(k.inv_idx(contact, Tier::Gold))
                .key(k.inv_idx(contact, Tier::Silver))
                .key(k.inv_idx(contact, Tier::Bronze))
                .arg(&id)
                .invoke(c, self.wait)
        })?;
        Ok(n == 1)
    }

    fn counts(&self, contact: &ContactId) -> Result<TierCounts, Error> {
        let rows = self.read_counts(core::slice::from_ref(contact))?;
        Ok(rows.into_iter().next().map(|(_, held)| held).unwrap_or_default())
    }

    fn for_each_contact(&self, visit: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        for chunk in self.contact_ids()?.chunks(LIST_BATCH) {
            for (meta, held) in self.contacts_with_counts(chunk)? {
                visit(&meta, held);
            }
        }
        Ok(())
    }

    fn collect_garbage(&self, now: UnixSeconds, dry_run: bool) -> Result<GcReport, Error> {
        let mut report = GcReport::default();
        for chunk in self.contact_ids()?.chunks(LIST_BATCH) {
            for (meta, held) in self.contacts_with_counts(chunk)? {
                if !inventory::is_inactive(&self.policy, meta.last_msg_at, now) {
                    continue;
                }
                if dry_run {
                    report.add_contact(&held);
                    continue;
                }
                // Applied only if the contact is still as inactive as the core judged it.
                if let Ok(dropped) = self.run_collect(&meta.contact_id, Some(meta.last_msg_at))? {
                    report.add_contact(&dropped);
                }
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

/// The select script's reply: `found` (1, 0 or -1 for an unregistered contact), the wasted
/// count, then for a found coin its tier, key id, public key, signature, seq, fetched_at, kind
/// and expires_at.
pub(crate) fn decode_selection(
    k: &crate::keys::Keys,
    contact: &ContactId,
    reply: Vec<Value>,
) -> Result<Selection, Error> {
    let meta_key = k.inv_meta(contact);
    let bad = || Error::corrupt(&meta_key, "unexpected select script reply");
    let mut it = reply.into_iter();
    let found = it.next().as_ref().and_then(as_i64);
    if found == Some(-1) {
        return Err(aqm_core::Error::ContactNotRegistered.into());
    }
    let wasted = it.next().as_ref().and_then(as_i64).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
    match found {
        Some(0) => Ok(Selection { coin: None, wasted }),
        Some(1) => {
            let mut s = || it.next().and_then(as_bytes);
            let (tier, id, pk, sig, seq, fetched, kind, expires) = (s(), s(), s(), s(), s(), s(), s(), s());
            let tier: Tier =
                tier.and_then(|t| String::from_utf8(t).ok()).and_then(|t| t.parse().ok()).ok_or_else(bad)?;
            let key_id: KeyId =
                id.and_then(|t| String::from_utf8(t).ok()).and_then(|t| t.parse().ok()).ok_or_else(bad)?;
            let coin_key = k.inv_coin(contact, &key_id);
            let missing = || Error::corrupt(&coin_key, "cached coin hash incomplete");
            let public_key = heapless::Vec::from_slice(&pk.ok_or_else(missing)?)
                .map_err(|_| Error::corrupt(&coin_key, "public key too long"))?;
            let signature = heapless::Vec::from_slice(&sig.ok_or_else(missing)?)
                .map_err(|_| Error::corrupt(&coin_key, "signature too long"))?;
            let seq = parse_u64(&coin_key, "bad seq", &seq.ok_or_else(missing)?)?;
            let fetched_at = parse_u64(&coin_key, "bad fetched_at", &fetched.ok_or_else(missing)?)?;
            let kind = parse_u64(&coin_key, "bad kind", &kind.ok_or_else(missing)?)?;
            let kind = u8::try_from(kind)
                .ok()
                .and_then(|k| CoinKind::try_from(k).ok())
                .ok_or_else(|| Error::corrupt(&coin_key, "unknown coin kind"))?;
            let expires_at = parse_u64(&coin_key, "bad expires_at", &expires.ok_or_else(missing)?)?;
            let coin = PublicCoin { owner: *contact, key_id, tier, kind, expires_at, public_key, signature };
            Ok(Selection { coin: Some(CachedCoin { coin, seq, fetched_at }), wasted })
        }
        _ => Err(bad()),
    }
}
