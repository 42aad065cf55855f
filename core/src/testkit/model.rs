//! Model-based property tests: random sequences of vault and inventory operations on the store
//! under test, checked step by step against plain `HashMap`/`VecDeque` models that restate
//! the rules in docs/architecture.md §2 without the core's rule functions. The model takes only the numbers of the store's
//! policy (caps, lifetimes, graces, the GC window); every rule it applies to them is its own.
//!
//! Each property runs [`prop_cases`] random sequences, each on a fresh store from the factory.

use std::collections::{HashMap, VecDeque};
use std::vec::Vec;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::fixtures::{DAY, Party, T0, fixtures};
use crate::store::{InventoryStore, VaultStore};
use crate::vault::KeyStatus;
use crate::{Error, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds, UserId};

/// Random sequences each property runs: `AQM_KIT_PROP_CASES` if set, else 32 (the reference
/// store's own `model_props` run 128; a file-backed store pays a durable commit per step).
pub fn prop_cases() -> u32 {
    std::env::var("AQM_KIT_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

/// Every fixture coin was minted at T0: it expires 30 days later.
const COIN_EXPIRES: UnixSeconds = T0 + crate::protocol::COIN_LIFETIME_SECS;

/// The numbers of a policy the models use.
#[derive(Clone, Copy, Debug)]
struct Limits {
    caps: [[u32; 3]; 3],
    /// A key stays in the vault for the coin's life and then the vault grace.
    ttl: u64,
    grace: u64,
    gc_after: u64,
    min_life: u64,
}

impl Limits {
    fn of(p: &Policy) -> Self {
        Limits {
            caps: p.caps,
            ttl: crate::protocol::COIN_LIFETIME_SECS + p.vault_grace_secs,
            grace: p.burn_grace_secs,
            gc_after: p.gc_inactive_secs,
            min_life: p.coin_min_life_secs,
        }
    }
    fn cap(&self, p: Priority, t: Tier) -> u32 {
        let row = match p {
            Priority::Bestie => 0,
            Priority::Mate => 1,
            Priority::Stranger => 2,
        };
        let col = match t {
            Tier::Gold => 0,
            Tier::Silver => 1,
            Tier::Bronze => 2,
        };
        self.caps[row][col]
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: prop_cases(), failure_persistence: None, ..Config::default() })
}

/// Random vault operations (put, burn, purge, time passing) on fresh stores from `fresh`: after
/// every step the counters, statuses, `get` and `active_ids` equal the model's.
pub fn vault_matches_model<F, S: VaultStore>(fresh: impl Fn() -> F, store: impl Fn(&F) -> &S) {
    let result = runner().run(&prop::collection::vec(vault_op(), 1..60), |ops| {
        let fx = fresh();
        run_vault(store(&fx), &ops)
    });
    if let Err(e) = result {
        panic!("vault model: {e}");
    }
}

/// Random inventory operations (register, priority changes, stores of own and foreign coins,
/// selections over tier ranges, consumes, GC and dry runs, time passing) on fresh stores from
/// `fresh`: after every step each contact's counts and record equal the model's.
pub fn inventory_matches_model<F, S: InventoryStore>(fresh: impl Fn() -> F, store: impl Fn(&F) -> &S) {
    let result = runner().run(&prop::collection::vec(inv_op(), 1..80), |ops| {
        let fx = fresh();
        run_inventory(store(&fx), &ops)
    });
    if let Err(e) = result {
        panic!("inventory model: {e}");
    }
}

fn core_err<T, E: StoreError>(r: Result<T, E>) -> Result<T, Error> {
    r.map_err(|e| *e.as_core().unwrap_or_else(|| panic!("not a core refusal: {e}")))
}

fn advance() -> impl Strategy<Value = u64> {
    prop_oneof![Just(1), Just(59), Just(60), Just(DAY), Just(29 * DAY), Just(31 * DAY), 0..3 * DAY]
}

fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![Just(Tier::Gold), Just(Tier::Silver), Just(Tier::Bronze)]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![Just(Priority::Bestie), Just(Priority::Mate), Just(Priority::Stranger)]
}

// ── Vault ─────────────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Debug)]
enum VaultOp {
    /// Put pool entry `i`, created `age` seconds before now.
    Put(usize, u64),
    Burn(usize),
    Purge,
    Advance(u64),
}

fn vault_op() -> impl Strategy<Value = VaultOp> {
    prop_oneof![
        4 => (0..24usize, prop_oneof![Just(0u64), 0..40 * DAY]).prop_map(|(i, a)| VaultOp::Put(i, a)),
        3 => (0..24usize).prop_map(VaultOp::Burn),
        1 => Just(VaultOp::Purge),
        2 => advance().prop_map(VaultOp::Advance),
    ]
}

/// The vault pool: Bob's coins of every tier, 8 each.
fn vault_pool(i: usize) -> (Tier, usize) {
    (Tier::ALL[i % 3], i / 3)
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct ModelKey {
    tier: Tier,
    created: UnixSeconds,
    burned_at: Option<UnixSeconds>,
}

struct VaultModel {
    lim: Limits,
    keys: HashMap<KeyId, ModelKey>,
    burned: u64,
    expired: u64,
}

impl VaultModel {
    fn expired(&self, k: &ModelKey, now: UnixSeconds) -> bool {
        k.burned_at.is_none() && now.saturating_sub(k.created) >= self.lim.ttl
    }

    fn put(&mut self, id: KeyId, tier: Tier, created: UnixSeconds) -> Result<(), Error> {
        if self.keys.contains_key(&id) {
            return Err(Error::KeyAlreadyExists);
        }
        self.keys.insert(id, ModelKey { tier, created, burned_at: None });
        Ok(())
    }

    fn burn(&mut self, id: KeyId, now: UnixSeconds) -> Result<(), Error> {
        let k = self.keys.get_mut(&id).ok_or(Error::KeyNotFound)?;
        if k.burned_at.is_some() {
            return Err(Error::KeyAlreadyBurned);
        }
        if now.saturating_sub(k.created) >= self.lim.ttl {
            return Err(Error::CoinExpired);
        }
        k.burned_at = Some(now);
        self.burned += 1;
        Ok(())
    }

    fn purge(&mut self, now: UnixSeconds) -> (u32, u32) {
        let (mut expired, mut deleted) = (0, 0);
        let lim = self.lim;
        self.keys.retain(|_, k| match k.burned_at {
            None if now.saturating_sub(k.created) >= lim.ttl => {
                expired += 1;
                false
            }
            Some(at) if now.saturating_sub(at) >= lim.grace => {
                deleted += 1;
                false
            }
            _ => true,
        });
        self.expired += u64::from(expired);
        (expired, deleted)
    }

    fn active(&self) -> TierCounts {
        let mut c = TierCounts::default();
        for k in self.keys.values().filter(|k| k.burned_at.is_none()) {
            c.0[k.tier.index()] += 1;
        }
        c
    }
}

fn run_vault<S: VaultStore>(s: &S, ops: &[VaultOp]) -> Result<(), TestCaseError> {
    let bob = &fixtures().bob;
    let mut m = VaultModel { lim: Limits::of(s.policy()), keys: HashMap::new(), burned: 0, expired: 0 };
    let mut now = T0;
    for op in ops {
        match *op {
            VaultOp::Put(i, age) => {
                let (t, n) = vault_pool(i);
                let created = now.saturating_sub(age);
                let e = bob.vault_entry(t, n, created);
                prop_assert_eq!(core_err(s.put(&e)), m.put(e.key_id, t, created), "{:?}", op);
            }
            VaultOp::Burn(i) => {
                let (t, n) = vault_pool(i);
                let id = bob.coin(t, n).key_id;
                prop_assert_eq!(core_err(s.burn(&id, now)), m.burn(id, now), "{:?}", op);
            }
            VaultOp::Purge => {
                let r = core_err(s.purge(now)).expect("purge never refuses");
                prop_assert_eq!((r.expired, r.deleted_burned), m.purge(now));
            }
            VaultOp::Advance(d) => now += d,
        }
        let stats = core_err(s.stats()).expect("stats");
        prop_assert_eq!(stats.active, m.active(), "active counters after {:?}", op);
        prop_assert_eq!((stats.total_burned, stats.total_expired), (m.burned, m.expired));
        for i in 0..24 {
            let (t, n) = vault_pool(i);
            let id = bob.coin(t, n).key_id;
            let k = m.keys.get(&id);
            let want = k.map(|k| if k.burned_at.is_some() { KeyStatus::Burned } else { KeyStatus::Active });
            prop_assert_eq!(core_err(s.status(&id)).expect("status"), want);
            let usable = k.is_some_and(|k| k.burned_at.is_none() && !m.expired(k, now));
            prop_assert_eq!(core_err(s.get(&id, now)).expect("get").is_some(), usable);
        }
        let mut listed = 0;
        core_err(s.active_ids(None, &mut |_| listed += 1)).expect("active_ids");
        prop_assert_eq!(listed, m.active().total());
    }
    Ok(())
}

// ── Inventory ─────────────────────────────────────────────────────────────────────────────────

fn party(p: usize) -> &'static Party {
    let f = fixtures();
    [&f.bob, &f.carol, &f.dave][p % 3]
}

#[derive(Clone, Debug)]
enum InvOp {
    Register(usize, Priority),
    SetPriority(usize, Priority),
    /// Store, for contact `.0`, coin `(tier, i)` of party `.1` (usually the contact itself).
    Store(usize, usize, Tier, usize),
    /// Select for contact `.0` from tier `.1` down to tier `.2`.
    Select(usize, Tier, Tier),
    Consume(usize, Tier, usize),
    Gc(bool),
    Advance(u64),
}

fn inv_op() -> impl Strategy<Value = InvOp> {
    prop_oneof![
        2 => (0..3usize, priority()).prop_map(|(c, p)| InvOp::Register(c, p)),
        1 => (0..3usize, priority()).prop_map(|(c, p)| InvOp::SetPriority(c, p)),
        8 => (0..3usize, prop_oneof![9 => Just(None), 1 => (0..3usize).prop_map(Some)], tier(), 0..16usize)
            .prop_map(|(c, from, t, i)| InvOp::Store(c, from.unwrap_or(c), t, i)),
        5 => (0..3usize, tier(), tier()).prop_map(|(c, t, low)| InvOp::Select(c, t, low)),
        1 => (0..3usize, tier(), 0..16usize).prop_map(|(c, t, i)| InvOp::Consume(c, t, i)),
        1 => any::<bool>().prop_map(InvOp::Gc),
        2 => advance().prop_map(InvOp::Advance),
    ]
}

fn coin_of(p: usize, t: Tier, i: usize) -> &'static crate::coin::PublicCoin {
    let who = party(p);
    who.coin(t, i % who.pool(t))
}

struct InvModel {
    lim: Limits,
    contacts: HashMap<UserId, (Priority, UnixSeconds)>,
    queues: HashMap<(UserId, Tier), VecDeque<KeyId>>,
}

impl InvModel {
    fn queue(&mut self, c: UserId, t: Tier) -> &mut VecDeque<KeyId> {
        self.queues.entry((c, t)).or_default()
    }

    fn counts(&self, c: UserId) -> TierCounts {
        TierCounts(Tier::ALL.map(|t| self.queues.get(&(c, t)).map_or(0, |q| q.len() as u32)))
    }

    fn trim(&mut self, c: UserId, p: Priority) -> u32 {
        let mut evicted = 0;
        for t in Tier::ALL {
            let cap = self.lim.cap(p, t);
            let q = self.queue(c, t);
            while q.len() as u32 > cap {
                q.pop_back();
                evicted += 1;
            }
        }
        evicted
    }

    fn store(&mut self, c: UserId, owner: UserId, key: KeyId, t: Tier, now: UnixSeconds) -> Result<(), Error> {
        let (p, _) = *self.contacts.get(&c).ok_or(Error::ContactNotRegistered)?;
        if owner != c {
            return Err(Error::WrongOwner);
        }
        let (cap, min_life) = (self.lim.cap(p, t), self.lim.min_life);
        let q = self.queue(c, t);
        if q.contains(&key) {
            return Err(Error::CoinAlreadyCached);
        }
        if q.len() as u32 >= cap {
            return Err(Error::BudgetExceeded { tier: t, cap });
        }
        if now + min_life >= COIN_EXPIRES {
            return Err(Error::CoinExpired);
        }
        q.push_back(key);
        Ok(())
    }

    /// Returns the coin picked and how many expired coins were dropped on the way.
    fn select(
        &mut self,
        c: UserId,
        desired: Tier,
        lowest: Tier,
        now: UnixSeconds,
    ) -> Result<(Option<KeyId>, u32), Error> {
        if !self.contacts.contains_key(&c) {
            return Err(Error::ContactNotRegistered);
        }
        let mut wasted = 0;
        // Downward only: the desired tier, then every cheaper one down to `lowest`.
        for t in Tier::ALL.into_iter().filter(|t| t.to_byte() >= desired.to_byte() && t.to_byte() <= lowest.to_byte()) {
            if now + self.lim.min_life >= COIN_EXPIRES {
                // Every coin of the tier is past its selection limit: all dropped, none used.
                let q = self.queue(c, t);
                wasted += q.len() as u32;
                q.clear();
                continue;
            }
            if let Some(k) = self.queue(c, t).pop_front() {
                if let Some(meta) = self.contacts.get_mut(&c) {
                    meta.1 = now;
                }
                return Ok((Some(k), wasted));
            }
        }
        Ok((None, wasted))
    }

    fn gc(&mut self, now: UnixSeconds, dry: bool) -> (u32, u32, u64) {
        let (mut cleaned, mut keys, mut bytes) = (0, 0, 0);
        let ids: Vec<UserId> = self.contacts.keys().copied().collect();
        for c in ids {
            if now.saturating_sub(self.contacts[&c].1) <= self.lim.gc_after {
                continue;
            }
            cleaned += 1;
            for t in Tier::ALL {
                let n = self.queue(c, t).len() as u32;
                keys += n;
                bytes += u64::from(n) * crate::coin::stored_bytes(t);
                if !dry {
                    self.queue(c, t).clear();
                }
            }
            if !dry && let Some(meta) = self.contacts.get_mut(&c) {
                meta.0 = Priority::Stranger;
            }
        }
        (cleaned, keys, bytes)
    }
}

fn run_inventory<S: InventoryStore>(s: &S, ops: &[InvOp]) -> Result<(), TestCaseError> {
    let mut m = InvModel { lim: Limits::of(s.policy()), contacts: HashMap::new(), queues: HashMap::new() };
    let mut now = T0;
    for op in ops {
        match *op {
            InvOp::Register(c, p) => {
                let meta = party(c).as_contact(p, now);
                let fresh = !m.contacts.contains_key(&meta.contact_id);
                if fresh {
                    m.contacts.insert(meta.contact_id, (p, now));
                }
                prop_assert_eq!(core_err(s.register_contact(&meta)), Ok(fresh));
            }
            InvOp::SetPriority(c, p) => {
                let id = party(c).id();
                let want = match m.contacts.get_mut(&id) {
                    None => Err(Error::ContactNotRegistered),
                    Some(meta) => {
                        meta.0 = p;
                        Ok(m.trim(id, p))
                    }
                };
                prop_assert_eq!(core_err(s.set_priority(&id, p)), want, "{:?}", op);
            }
            InvOp::Store(c, from, t, i) => {
                let coin = coin_of(from, t, i);
                let id = party(c).id();
                let want = m.store(id, coin.owner, coin.key_id, t, now);
                prop_assert_eq!(core_err(s.store_coin(&id, coin, now)), want, "{:?}", op);
            }
            InvOp::Select(c, t, low) => {
                let id = party(c).id();
                let got = core_err(s.select_coin(&id, t, low, now))
                    .map(|sel| (sel.coin.map(|cc| cc.coin.key_id), sel.wasted));
                prop_assert_eq!(got, m.select(id, t, low, now), "{:?}", op);
            }
            InvOp::Consume(c, t, i) => {
                let id = party(c).id();
                let key = coin_of(c, t, i).key_id;
                let q = m.queue(id, t);
                let want = q.iter().position(|k| *k == key).map(|at| q.remove(at)).is_some();
                prop_assert_eq!(core_err(s.consume(&id, &key)), Ok(want), "{:?}", op);
            }
            InvOp::Gc(dry) => {
                let r = core_err(s.collect_garbage(now, dry)).expect("gc never refuses");
                prop_assert_eq!((r.contacts_cleaned, r.keys_deleted, r.bytes_freed), m.gc(now, dry), "{:?}", op);
            }
            InvOp::Advance(d) => now += d,
        }
        for p in 0..3 {
            let id = party(p).id();
            prop_assert_eq!(core_err(s.counts(&id)).expect("counts"), m.counts(id), "counts after {:?}", op);
            let meta = core_err(s.contact(&id)).expect("contact").map(|c| (c.priority, c.last_msg_at));
            prop_assert_eq!(meta, m.contacts.get(&id).copied(), "contact after {:?}", op);
        }
    }
    Ok(())
}
