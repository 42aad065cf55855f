//! Property tests: random sequences of vault and inventory operations on the reference store,
//! checked step by step against plain `HashMap`/`VecDeque` models that restate DESIGN §4 without
//! using the core's rule functions.

use std::collections::{HashMap, VecDeque};

use aqm_core::memory::MemoryStore;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::testkit::fixtures::{DAY, Party, T0, fixtures};
use aqm_core::vault::KeyStatus;
use aqm_core::{Error, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds, UserId};
use proptest::prelude::*;

/// Room for three contacts at their largest caps (10 coins each).
type Store = MemoryStore<64, 32, 4, 2, 1, 1, 1>;

/// A key stays in the vault for the coin's 30 days of life and then the 14-day grace.
const TTL: u64 = 44 * DAY;
/// Every fixture coin was minted at T0: it expires 30 days later and may be stored or selected
/// only while now + 2 days < that.
const COIN_EXPIRES: UnixSeconds = T0 + 30 * DAY;
const MIN_LIFE: u64 = 2 * DAY;
const GRACE: u64 = 60;
const GC_AFTER: u64 = 30 * DAY;

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

#[derive(Default)]
struct VaultModel {
    keys: HashMap<KeyId, ModelKey>,
    burned: u64,
    expired: u64,
}

impl VaultModel {
    fn expired(k: &ModelKey, now: UnixSeconds) -> bool {
        k.burned_at.is_none() && now.saturating_sub(k.created) >= TTL
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
        if now.saturating_sub(k.created) >= TTL {
            return Err(Error::CoinExpired);
        }
        k.burned_at = Some(now);
        self.burned += 1;
        Ok(())
    }

    fn purge(&mut self, now: UnixSeconds) -> (u32, u32) {
        let (mut expired, mut deleted) = (0, 0);
        self.keys.retain(|_, k| match k.burned_at {
            None if Self::expired(k, now) => {
                expired += 1;
                false
            }
            Some(at) if now.saturating_sub(at) >= GRACE => {
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

fn run_vault(ops: &[VaultOp]) -> Result<(), TestCaseError> {
    let bob = &fixtures().bob;
    let s = Store::default();
    let mut m = VaultModel::default();
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
            let usable = k.is_some_and(|k| k.burned_at.is_none() && !VaultModel::expired(k, now));
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

fn coin_of(p: usize, t: Tier, i: usize) -> &'static aqm_core::coin::PublicCoin {
    let who = party(p);
    who.coin(t, i % who.pool(t))
}

#[derive(Default)]
struct InvModel {
    contacts: HashMap<UserId, (Priority, UnixSeconds)>,
    queues: HashMap<(UserId, Tier), VecDeque<KeyId>>,
}

/// DESIGN §4 caps, restated.
fn cap(p: Priority, t: Tier) -> u32 {
    match (p, t) {
        (Priority::Bestie, Tier::Gold) => 5,
        (Priority::Bestie, Tier::Silver) => 4,
        (Priority::Bestie, Tier::Bronze) => 1,
        (Priority::Mate, Tier::Silver) => 6,
        (Priority::Mate, Tier::Bronze) => 4,
        _ => 0,
    }
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
            let q = self.queue(c, t);
            while q.len() as u32 > cap(p, t) {
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
        let q = self.queue(c, t);
        if q.contains(&key) {
            return Err(Error::CoinAlreadyCached);
        }
        if q.len() as u32 >= cap(p, t) {
            return Err(Error::BudgetExceeded { tier: t, cap: cap(p, t) });
        }
        if now + MIN_LIFE >= COIN_EXPIRES {
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
            if now + MIN_LIFE >= COIN_EXPIRES {
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
            if now.saturating_sub(self.contacts[&c].1) <= GC_AFTER {
                continue;
            }
            cleaned += 1;
            for t in Tier::ALL {
                let n = self.queue(c, t).len() as u32;
                keys += n;
                bytes += u64::from(n) * aqm_core::coin::stored_bytes(t);
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

fn run_inventory(ops: &[InvOp]) -> Result<(), TestCaseError> {
    let s = Store::default();
    let mut m = InvModel::default();
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn vault_matches_model(ops in prop::collection::vec(vault_op(), 1..60)) {
        run_vault(&ops)?;
    }

    #[test]
    fn inventory_matches_model(ops in prop::collection::vec(inv_op(), 1..80)) {
        run_inventory(&ops)?;
    }
}

#[test]
fn policy_restated_by_the_model_is_the_default() {
    for p in Priority::ALL {
        for t in Tier::ALL {
            assert_eq!(cap(p, t), Policy::DEFAULT.cap(p, t));
        }
    }
    let p = Policy::DEFAULT;
    assert_eq!(
        (TTL, GRACE, GC_AFTER, MIN_LIFE),
        (
            aqm_core::protocol::COIN_LIFETIME_SECS + p.vault_grace_secs,
            p.burn_grace_secs,
            p.gc_inactive_secs,
            p.coin_min_life_secs
        )
    );
    assert_eq!(fixtures().bob.coin(Tier::Gold, 0).expires_at, COIN_EXPIRES);
}
