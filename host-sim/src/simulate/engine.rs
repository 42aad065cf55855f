//! The simulation's state and its steps: send (open chain → re-key from the inventory →
//! on-demand fetch), receive (burn in the owner's vault), and each device's nightly maintenance
//! (vault purge, garbage collection, pre-fetch, minting).
//!
//! The engine keeps only counts and expiry times — no keys — so that 100,000 users fit in memory
//! and a month runs in seconds; every decision is the core's: the tier range
//! ([`inventory::send_range`]), the scan of a selection ([`inventory::scan_step`]), the tier
//! ([`inventory::pick_tier`]), admission ([`inventory::admit`]), touch on select, replenish
//! needs, garbage collection ([`inventory::gc_plan`]), downgrade trims
//! ([`inventory::trim_plan`]), the storage report, the chain limit
//! ([`Policy::ratchet_limit`]), the directory's claimability, anti-drain quota and purge
//! thresholds, the vault's deadline and counters ([`VaultStats::apply`]), and last-resort coins:
//! when one is due ([`vault::last_resort_due`]), whether an upload replaces the directory's
//! ([`directory::last_resort_replaces`]), whether a claim hands it out
//! ([`directory::plan_claim`]) and what an open records or retires
//! ([`VaultEntry::open_last_resort`]). Where a core rule
//! takes a coin or a contact record, the engine fills one scratch value and passes it by
//! reference, so the rule is the core's even when the state is a count.

use std::collections::{HashMap, VecDeque};

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::directory;
use aqm_core::inventory::{self, CachedCoin, ContactMeta, GcReport, ScanStep, Selection, StorageReport};
use aqm_core::vault::{self, LastResortOpens, Transition, VaultEntry, VaultStats};
use aqm_core::{DeviceContext, KeyId, Policy, Priority, Tier, TierCounts, UnixSeconds, UserId, protocol};

use super::population::{self, DAY, HOUR, Population, User};
use super::prng::Prng;
use super::tally::{DayStats, HourLoad, Tally};

/// Most coins of one tier a contact can hold under any priority of the policy.
pub const SLOTS: usize = 8;

/// The run's first second: 2026-01-01 00:00 UTC.
pub const START: UnixSeconds = 20_454 * DAY;

/// Coins' expiry is kept as hours after this (64 days before the start, before any warm-start
/// coin was minted), in a `u16`.
const BASE: UnixSeconds = START - 64 * DAY;

/// Longest run the `u16` expiry hours allow (with room for the warm start and coin lifetime).
pub const MAX_DAYS: u32 = 2_000;

fn hour_of(t: UnixSeconds) -> u16 {
    ((t - BASE) / HOUR) as u16
}

fn secs(h: u16) -> UnixSeconds {
    BASE + u64::from(h) * HOUR
}

fn user_id(index: u32) -> UserId {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&index.to_be_bytes());
    UserId(b)
}

/// What a simulation may not be given.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The policy allows more cached coins of a tier than the engine has slots for.
    #[error("the policy caps {tier} at {cap} coins per contact; the simulator holds at most {SLOTS}: lower the cap")]
    CapTooLarge {
        /// The tier.
        tier: Tier,
        /// Its largest cap.
        cap: u32,
    },
    /// Too many days for the expiry counter.
    #[error("--days {0} is more than the simulator's {MAX_DAYS}: simulate fewer days")]
    TooManyDays(u32),
}

/// Knobs of the engine that are not the core's policy: how the app and the owners behave.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Apps pass `allow_classical` (a GOLD/SILVER send may fall back to BRONZE).
    pub allow_classical: bool,
    /// Each owner keeps this share of its contacts' caps unclaimed in the directory, per tier.
    pub stock_factor: f64,
    /// Plus this many coins per tier for strangers and on-demand fetches.
    pub stock_floor: TierCounts,
    /// Share of contacts whose priority changes per day.
    pub priority_changes_per_day: f64,
    /// Start every live contact on an open chain with a random number of messages left (a
    /// population in mid-life); off, every contact's first message opens a chain.
    pub warm_chains: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            allow_classical: false,
            stock_factor: 0.5,
            stock_floor: TierCounts([0, 2, 4]),
            priority_changes_per_day: 0.002,
            warm_chains: true,
        }
    }
}

/// A contact's cached coins: per tier, expiry hours in FIFO order (oldest first).
#[derive(Clone, Copy, Debug, Default)]
struct Inventory {
    len: [u8; 3],
    exp: [[u16; SLOTS]; 3],
}

impl Inventory {
    fn counts(&self) -> TierCounts {
        TierCounts([u32::from(self.len[0]), u32::from(self.len[1]), u32::from(self.len[2])])
    }
    fn len(&self, t: Tier) -> u32 {
        u32::from(self.len[t.index()])
    }
    fn front(&self, t: Tier) -> Option<u16> {
        let i = t.index();
        (self.len[i] > 0).then(|| self.exp[i][0])
    }
    fn pop_front(&mut self, t: Tier) {
        let i = t.index();
        let n = usize::from(self.len[i]);
        if n > 0 {
            self.exp[i].copy_within(1..n, 0);
            self.len[i] -= 1;
        }
    }
    fn pop_back(&mut self, t: Tier) {
        let i = t.index();
        self.len[i] = self.len[i].saturating_sub(1);
    }
    fn push(&mut self, t: Tier, exp: u16) -> bool {
        let i = t.index();
        let n = usize::from(self.len[i]);
        if n >= SLOTS {
            return false;
        }
        self.exp[i][n] = exp;
        self.len[i] += 1;
        true
    }
    fn clear(&mut self) {
        self.len = [0; 3];
    }
}

/// A send chain: its tier and the messages it may still carry.
#[derive(Clone, Copy, Debug, Default)]
struct Chain {
    tier: Option<Tier>,
    left: u32,
}

/// A requester's anti-drain quota use against one owner.
#[derive(Clone, Copy, Debug, Default)]
struct Quota {
    window: UnixSeconds,
    used: [u32; 3],
}

/// One side of a contact relationship, on the owner's device.
#[derive(Clone, Debug)]
struct Side {
    peer: u32,
    /// Index of the peer's side for this relationship (replies).
    rev: u32,
    priority: Priority,
    dormant: bool,
    last_msg_at: UnixSeconds,
    chain: Chain,
    quota: Quota,
    inv: Inventory,
}

/// Coins sharing one expiry hour.
#[derive(Clone, Copy, Debug)]
struct Run {
    exp: u16,
    count: u32,
}

fn push_run(q: &mut VecDeque<Run>, exp: u16, count: u32) {
    match q.back_mut() {
        Some(r) if r.exp == exp => r.count += count,
        _ => q.push_back(Run { exp, count }),
    }
}

/// An owner's newest last-resort coin of a tier: in its vault and (while `listed`) in the
/// directory, which hands it out, unclaimed, when the tier's one-time coins are gone.
#[derive(Clone, Copy, Debug)]
struct LastResort {
    /// Expiry hour.
    exp: u16,
    /// First messages it opened (its vault record's length).
    opens: u8,
    /// Its record filled up: the vault retired it (BURNED); the directory may still hand it out
    /// until the owner uploads the next one.
    retired: bool,
    /// The directory still holds it (not purged as stale or replaced).
    listed: bool,
}

/// One user as an owner of coins: its unclaimed coins in the directory and its vault.
#[derive(Clone, Debug, Default)]
struct Owner {
    directory: [VecDeque<Run>; 3],
    vault: [VecDeque<Run>; 3],
    /// The newest last-resort coin per tier.
    last_resort: [Option<LastResort>; 3],
    /// Older last-resort coins, replaced in the directory but ACTIVE in the vault until their
    /// deadline (by expiry hour, oldest first).
    last_resort_vault: [VecDeque<Run>; 3],
    stats: VaultStats,
    stock_target: TierCounts,
}

/// Who a conversation is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partner {
    /// A contact: the initiator's side index.
    Contact(u32),
    /// Someone the initiator holds no contact for.
    Stranger(u32),
}

/// A burst of messages between two users within one hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Who starts it.
    pub from: u32,
    /// With whom.
    pub with: Partner,
    /// Hour of the day.
    pub hour: u8,
    /// Messages the initiator sends.
    pub sent: u32,
    /// Messages the partner sends back.
    pub replies: u32,
}

/// Where one send went.
enum Target {
    Side(usize),
    Stranger(u32),
}

/// The simulation state.
pub struct Engine {
    policy: Policy,
    behaviour: Behaviour,
    seed: u64,
    users: Vec<User>,
    /// `sides[offsets[u]..offsets[u + 1]]` are user u's contacts.
    offsets: Vec<u32>,
    sides: Vec<Side>,
    owners: Vec<Owner>,
    strangers: HashMap<(u32, u32), (Chain, Quota)>,
    by_maintenance_hour: [Vec<u32>; 24],
    rng: Prng,
    coin: PublicCoin,
    /// Scratch last-resort coins for the directory's rules (the stored one, an upload).
    lr_coin: PublicCoin,
    lr_upload: PublicCoin,
    /// Scratch last-resort vault entry for the open rule.
    lr_entry: VaultEntry,
    meta: ContactMeta,
    selection: Selection,
    gc: GcReport,
    /// Everything counted so far.
    pub tally: Tally,
    /// Per day.
    pub days: Vec<DayStats>,
    /// Per hour of the run: what the directory served.
    pub hours: Vec<HourLoad>,
}

impl Engine {
    /// A warm-started population: every contact's inventory full (coins minted over the days
    /// before the start, so some expire during the run), every owner's directory stocked, every
    /// live contact on an open chain.
    pub fn new(policy: Policy, behaviour: Behaviour, population: Population, seed: u64) -> Result<Engine, SetupError> {
        for t in Tier::ALL {
            let cap = Priority::ALL.iter().map(|p| policy.cap(*p, t)).max().unwrap_or(0);
            if cap as usize > SLOTS {
                return Err(SetupError::CapTooLarge { tier: t, cap });
            }
        }
        let mut rng = Prng::new(seed ^ 0x7761_726d);
        let n = population.users.len();
        let mut offsets = vec![0u32; n + 1];
        for c in &population.contacts {
            offsets[c.owner as usize + 1] += 1;
        }
        for u in 0..n {
            offsets[u + 1] += offsets[u];
        }
        let mut owners: Vec<Owner> = vec![Owner::default(); n];
        let mut vault_hours: Vec<[Vec<u16>; 3]> = vec![Default::default(); n];
        let mut sides = Vec::with_capacity(population.contacts.len());
        for c in &population.contacts {
            let last_msg_at = START.saturating_sub(c.idle_secs);
            let mut inv = Inventory::default();
            for t in Tier::ALL {
                let cap = policy.cap(c.priority, t);
                // Live contacts were topped up over the last ten days; quiet ones when they
                // last wrote.
                let mut minted: Vec<UnixSeconds> = (0..cap)
                    .map(|_| {
                        let back = if c.dormant { c.idle_secs + rng.below(3 * DAY) } else { rng.below(10 * DAY) };
                        (START - back) / HOUR * HOUR
                    })
                    .collect();
                minted.sort_unstable();
                for m in minted {
                    let exp = hour_of(protocol::coin_expiry(m));
                    inv.push(t, exp);
                    vault_hours[c.peer as usize][t.index()].push(exp);
                }
            }
            let chain = if c.dormant || !behaviour.warm_chains {
                Chain::default()
            } else {
                let tier = policy.ceiling(c.priority);
                Chain { tier: Some(tier), left: rng.below(u64::from(policy.ratchet_limit(tier))) as u32 }
            };
            sides.push(Side {
                peer: c.peer,
                rev: u32::MAX,
                priority: c.priority,
                dormant: c.dormant,
                last_msg_at,
                chain,
                quota: Quota::default(),
                inv,
            });
            let target = owners[c.peer as usize].stock_target;
            owners[c.peer as usize].stock_target = TierCounts([
                target.0[0] + policy.cap(c.priority, Tier::Gold),
                target.0[1] + policy.cap(c.priority, Tier::Silver),
                target.0[2] + policy.cap(c.priority, Tier::Bronze),
            ]);
        }
        for (side, c) in sides.iter_mut().zip(&population.contacts) {
            let range = offsets[side.peer as usize] as usize..offsets[side.peer as usize + 1] as usize;
            if let Ok(j) = population.contacts[range.clone()].binary_search_by_key(&c.owner, |c| c.peer) {
                side.rev = (range.start + j) as u32;
            }
        }
        let stock_mint = (START - DAY) / HOUR * HOUR;
        for (o, hours) in owners.iter_mut().zip(vault_hours) {
            for t in Tier::ALL {
                let sum = o.stock_target.get(t);
                let target = (f64::from(sum) * behaviour.stock_factor).ceil() as u32 + behaviour.stock_floor.get(t);
                *o.stock_target.get_mut(t) = target;
                let mut hs = hours[t.index()].clone();
                let stock_exp = hour_of(protocol::coin_expiry(stock_mint));
                hs.extend(std::iter::repeat_n(stock_exp, target as usize));
                hs.sort_unstable();
                for h in hs {
                    push_run(&mut o.vault[t.index()], h, 1);
                    o.stats.apply(Transition::Stored(t));
                }
                if target > 0 {
                    push_run(&mut o.directory[t.index()], stock_exp, target);
                    // A published tier has its last-resort coin, minted on one of the days
                    // before the start that leave it not yet due (renewed from day 0 on).
                    let lr_minted = (START - rng.below(4 * DAY)) / HOUR * HOUR;
                    let exp = hour_of(protocol::last_resort_expiry(lr_minted));
                    o.last_resort[t.index()] = Some(LastResort { exp, opens: 0, retired: false, listed: true });
                    o.stats.apply(Transition::Stored(t));
                }
            }
        }
        let mut by_maintenance_hour: [Vec<u32>; 24] = Default::default();
        for (i, u) in population.users.iter().enumerate() {
            by_maintenance_hour[usize::from(u.maintenance_hour % 24)].push(i as u32);
        }
        let coin = PublicCoin {
            owner: user_id(0),
            key_id: KeyId([0; 16]),
            tier: Tier::Gold,
            kind: CoinKind::OneTime,
            expires_at: 0,
            public_key: Default::default(),
            signature: Default::default(),
        };
        let lr_coin = PublicCoin { kind: CoinKind::LastResort, ..coin.clone() };
        let lr_upload = PublicCoin { key_id: KeyId([1; 16]), ..lr_coin.clone() };
        let sealed = aqm_core::crypto::SealedSecret { nonce: [0; 12], ciphertext: Default::default() };
        let lr_entry = VaultEntry::new_active(KeyId([0; 16]), Tier::Gold, CoinKind::LastResort, sealed, 0, 0);
        let meta = ContactMeta::new(user_id(0), Priority::Stranger, "", 0).expect("an empty display name fits");
        let selection = Selection { coin: Some(CachedCoin { coin: coin.clone(), seq: 0, fetched_at: 0 }), wasted: 0 };
        let mut vault_active_start = [0u64; 3];
        for o in &owners {
            for t in Tier::ALL {
                vault_active_start[t.index()] += u64::from(o.stats.active.get(t));
            }
        }
        let tally = Tally { users: n as u64, contacts: sides.len() as u64, vault_active_start, ..Tally::default() };
        Ok(Engine {
            policy,
            behaviour,
            seed,
            users: population.users,
            offsets,
            sides,
            owners,
            strangers: HashMap::new(),
            by_maintenance_hour,
            rng: Prng::new(seed ^ 0x0074_7261_6666_6963),
            coin,
            lr_coin,
            lr_upload,
            lr_entry,
            meta,
            selection,
            gc: GcReport::default(),
            tally,
            days: Vec::new(),
            hours: Vec::new(),
        })
    }

    /// The indices of user `u`'s contact sides.
    fn contact_range(&self, u: u32) -> std::ops::Range<usize> {
        self.offsets[u as usize] as usize..self.offsets[u as usize + 1] as usize
    }

    /// Draw one day of conversations from the traffic model (`per_day` conversations per user on
    /// average, `length` messages on average, a `stranger` share written to someone who is no
    /// contact), in hour order.
    pub fn draw_day(&mut self, per_day: f64, length: f64, stranger: f64) -> Vec<Conversation> {
        // Relative traffic per hour of the day: quiet at night, peaks at lunch and the evening.
        const DIURNAL: [f64; 24] = [
            0.3, 0.15, 0.08, 0.05, 0.05, 0.1, 0.4, 0.8, 1.0, 1.0, 1.0, 1.2, 1.4, 1.1, 1.0, 1.0, 1.1, 1.3, 1.5, 1.8,
            2.0, 1.8, 1.2, 0.6,
        ];
        let total: f64 = DIURNAL.iter().sum();
        let mut by_hour: [Vec<Conversation>; 24] = Default::default();
        let n = self.users.len() as u32;
        for from in 0..n {
            let k = self.rng.poisson(per_day);
            for _ in 0..k {
                let mut x = self.rng.unit() * total;
                let mut hour = 23u8;
                for (h, w) in DIURNAL.iter().enumerate() {
                    if x < *w {
                        hour = h as u8;
                        break;
                    }
                    x -= w;
                }
                let with = if self.rng.chance(stranger) {
                    let mut to = self.rng.below(u64::from(n - 1)) as u32;
                    if to >= from {
                        to += 1;
                    }
                    Partner::Stranger(to)
                } else {
                    match self.pick_contact(from) {
                        Some(i) => Partner::Contact(i as u32),
                        None => continue,
                    }
                };
                let len = self.rng.geometric(length);
                let sent = (0..len).filter(|_| self.rng.chance(0.55)).count() as u32;
                by_hour[usize::from(hour)].push(Conversation { from, with, hour, sent, replies: len - sent });
            }
        }
        by_hour.into_iter().flatten().collect()
    }

    /// A live contact of `from`, closer contacts more often (BESTIE 4 : MATE 1 : STRANGER 1).
    fn pick_contact(&mut self, from: u32) -> Option<usize> {
        let weight = |s: &Side| -> u64 {
            if s.dormant {
                0
            } else {
                match s.priority {
                    Priority::Bestie => 4,
                    _ => 1,
                }
            }
        };
        let range = self.contact_range(from);
        let total: u64 = self.sides[range.clone()].iter().map(weight).sum();
        if total == 0 {
            return None;
        }
        let mut x = self.rng.below(total);
        for i in range {
            let w = weight(&self.sides[i]);
            if x < w {
                return Some(i);
            }
            x -= w;
        }
        None
    }

    /// Run day `day` (0-based): priority changes, the directory's daily purge, then hour by hour
    /// each device's maintenance at its hour and the conversations of that hour. `tick` is
    /// called after each hour.
    pub fn run_day(&mut self, day: u32, conversations: &[Conversation], mut tick: impl FnMut()) {
        let day_start = START + u64::from(day) * DAY;
        self.days.push(DayStats { day, ..DayStats::default() });
        self.change_priorities();
        self.purge_directory(day_start);
        let mut next = 0;
        for hour in 0..24u8 {
            self.hours.push(HourLoad::default());
            let now = day_start + u64::from(hour) * HOUR;
            for k in 0..self.by_maintenance_hour[usize::from(hour)].len() {
                let u = self.by_maintenance_hour[usize::from(hour)][k];
                self.maintain(u, now);
            }
            // Messages within the hour are sent half past it.
            let at = now + HOUR / 2;
            while next < conversations.len() && conversations[next].hour <= hour {
                let c = conversations[next];
                next += 1;
                self.converse(c, day, at);
            }
            tick();
        }
        self.sample_storage();
    }

    /// Garbage-collection and priority counters end up in the tally.
    pub fn finish(&mut self) {
        self.tally.gc_keys_deleted = u64::from(self.gc.keys_deleted);
        self.tally.gc_bytes_freed = self.gc.bytes_freed;
        let mut active = TierCounts::default();
        for o in &self.owners {
            for t in Tier::ALL {
                *active.get_mut(t) += o.stats.active.get(t);
            }
        }
        self.tally.vault_active_end = active.0.map(u64::from);
    }

    fn converse(&mut self, c: Conversation, day: u32, at: UnixSeconds) {
        let hour = ((at - START) % DAY / HOUR) as u8;
        let ctx_from = population::context_at(self.seed, c.from, &self.users[c.from as usize], day, hour);
        match c.with {
            Partner::Contact(i) => {
                let peer = self.sides[i as usize].peer;
                let rev = self.sides[i as usize].rev;
                let ctx_peer = population::context_at(self.seed, peer, &self.users[peer as usize], day, hour);
                for _ in 0..c.sent {
                    self.send(c.from, Target::Side(i as usize), &ctx_from, at);
                }
                for _ in 0..c.replies {
                    let target = if rev == u32::MAX { Target::Stranger(c.from) } else { Target::Side(rev as usize) };
                    self.send(peer, target, &ctx_peer, at);
                }
            }
            Partner::Stranger(to) => {
                let ctx_to = population::context_at(self.seed, to, &self.users[to as usize], day, hour);
                for _ in 0..c.sent {
                    self.send(c.from, Target::Stranger(to), &ctx_from, at);
                }
                for _ in 0..c.replies {
                    self.send(to, Target::Stranger(c.from), &ctx_to, at);
                }
            }
        }
    }

    /// One message from `from` to `target`: ride the open chain, or open one as
    /// [`aqm_core::messaging::Messenger::send`] does — the range, a selection from the
    /// inventory, else one on-demand fetch over the same range — and the receiver burns the coin.
    fn send(&mut self, from: u32, target: Target, ctx: &DeviceContext, now: UnixSeconds) {
        let (to, mut chain, mut quota, registered) = match target {
            Target::Side(i) => {
                let s = &self.sides[i];
                (s.peer, s.chain, s.quota, Some(s.priority))
            }
            Target::Stranger(to) => {
                let (chain, quota) = self.strangers.get(&(from, to)).copied().unwrap_or_default();
                (to, chain, quota, None)
            }
        };
        if let Some(tier) = chain.tier
            && chain.left > 0
        {
            chain.left -= 1;
            self.count_message(tier, false);
            self.store_chain(&target, from, chain, quota);
            return;
        }
        // An unregistered peer counts as a STRANGER (Messenger::send_range).
        let priority = registered.unwrap_or(Priority::Stranger);
        let range = inventory::send_range(&self.policy, ctx, priority, false, self.behaviour.allow_classical);
        let mut picked: Option<(Tier, u16, bool)> = None;
        let mut last_resort_picked = false;
        if let Target::Side(i) = target {
            // InventoryStore::select_coin: per tier of the range, oldest coin first, drop the
            // stale ones, take the first fresh one.
            let mut fresh = TierCounts::default();
            for t in range.tiers() {
                while let Some(exp) = self.sides[i].inv.front(t) {
                    self.coin.tier = t;
                    self.coin.expires_at = secs(exp);
                    match inventory::scan_step(&self.policy, &self.coin, now) {
                        ScanStep::Drop => {
                            self.sides[i].inv.pop_front(t);
                            self.tally.wasted_stale[t.index()] += 1;
                        }
                        ScanStep::Take => break,
                    }
                }
                *fresh.get_mut(t) = self.sides[i].inv.len(t);
                if fresh.get(t) > 0 {
                    break;
                }
            }
            if let Some(t) = inventory::pick_tier(range, &fresh)
                && let Some(exp) = self.sides[i].inv.front(t)
            {
                self.sides[i].inv.pop_front(t);
                self.fill_meta(i);
                if let Some(touched) = inventory::touch_on_select(&self.meta, &self.selection, now) {
                    self.sides[i].last_msg_at = touched.last_msg_at;
                }
                picked = Some((t, exp, false));
            }
        }
        if picked.is_none() {
            // SendOutcome::NeedCoin → Messenger::fetch_on_demand over the same range.
            let window = directory::quota_window(&self.policy, now);
            if quota.window != window {
                quota = Quota { window, used: [0; 3] };
            }
            // A tier without one-time coins hands out the owner's last-resort coin instead; it is
            // kept aside while cheaper tiers are tried (Messenger::fetch_on_demand).
            let mut aside: Option<(Tier, u16)> = None;
            for t in range.tiers() {
                if directory::quota_grant(&self.policy, t, quota.used[t.index()], 1).is_err() {
                    self.tally.quota_refusals += 1;
                    continue;
                }
                self.hour().on_demand += 1;
                if let Some(exp) = self.claim_one(to, t, now) {
                    quota.used[t.index()] += 1;
                    self.tally.coin_verifies[t.index()] += 1;
                    self.tally.claimed_on_demand[t.index()] += 1;
                    self.hour().coins_claimed += 1;
                    picked = Some((t, exp, true));
                    break;
                }
                if let Some((exp, used_after)) = self.hand_out_last_resort(to, t, quota.used[t.index()], 1, now) {
                    quota.used[t.index()] = used_after;
                    self.tally.coin_verifies[t.index()] += 1;
                    self.tally.last_resort_handed_out[t.index()] += 1;
                    self.hour().coins_claimed += 1;
                    aside = aside.or(Some((t, exp)));
                }
            }
            if picked.is_none()
                && let Some((t, exp)) = aside
            {
                if self.open_last_resort(to, t, now) {
                    picked = Some((t, exp, true));
                    last_resort_picked = true;
                } else {
                    // The receiver's vault refuses it (retired, or past its deadline): the first
                    // message does not open.
                    self.tally.last_resort_refused += 1;
                }
            }
        }
        let Some((tier, exp, on_demand)) = picked else {
            self.tally.failed += 1;
            if range.post_quantum() {
                self.tally.failed_classical += 1;
            }
            self.day().failed += 1;
            self.store_chain(&target, from, chain, quota);
            return;
        };
        if tier != range.desired {
            self.tally.fallbacks += 1;
            self.day().fallbacks += 1;
        }
        if on_demand {
            self.tally.rekeys_on_demand[tier.index()] += 1;
            self.day().on_demand += 1;
        }
        chain = Chain { tier: Some(tier), left: self.policy.ratchet_limit(tier).saturating_sub(1) };
        if last_resort_picked {
            // Recorded by open_last_resort, not burned.
            self.tally.last_resort_chains[tier.index()] += 1;
        } else {
            self.burn(to, tier, exp, now);
        }
        self.count_message(tier, true);
        self.store_chain(&target, from, chain, quota);
    }

    fn store_chain(&mut self, target: &Target, from: u32, chain: Chain, quota: Quota) {
        match *target {
            Target::Side(i) => {
                self.sides[i].chain = chain;
                self.sides[i].quota = quota;
            }
            Target::Stranger(to) => {
                self.strangers.insert((from, to), (chain, quota));
            }
        }
    }

    fn count_message(&mut self, tier: Tier, rekey: bool) {
        self.tally.messages += 1;
        self.tally.messages_by_tier[tier.index()] += 1;
        let d = self.days.last_mut().expect("a day is running");
        d.messages += 1;
        d.messages_by_tier[tier.index()] += 1;
        if rekey {
            self.tally.rekeys[tier.index()] += 1;
            d.rekeys[tier.index()] += 1;
        }
    }

    fn day(&mut self) -> &mut DayStats {
        self.days.last_mut().expect("a day is running")
    }

    fn hour(&mut self) -> &mut HourLoad {
        self.hours.last_mut().expect("an hour is running")
    }

    /// The scratch contact record of side `i`, for the core's rules that take one.
    fn fill_meta(&mut self, i: usize) {
        let s = &self.sides[i];
        self.meta.contact_id = user_id(s.peer);
        self.meta.priority = s.priority;
        self.meta.last_msg_at = s.last_msg_at;
    }

    /// The receiver opens the chain: the coin's secret burns in its vault.
    fn burn(&mut self, owner: u32, tier: Tier, exp: u16, now: UnixSeconds) {
        let o = &mut self.owners[owner as usize];
        let q = &mut o.vault[tier.index()];
        let found = q.iter().position(|r| r.exp == exp);
        match found {
            // The vault still holds it only until its deadline (a purge may not have run yet).
            Some(k) if self.policy.vault_deadline(secs(exp)) > now => {
                q[k].count -= 1;
                if q[k].count == 0 {
                    q.remove(k);
                }
                o.stats.apply(Transition::Burned(tier));
                self.tally.burned[tier.index()] += 1;
            }
            _ => self.tally.vault_misses += 1,
        }
    }

    /// The directory hands out the oldest claimable coin of `owner`'s `tier`.
    fn claim_one(&mut self, owner: u32, tier: Tier, now: UnixSeconds) -> Option<u16> {
        let after = directory::claimable_after(&self.policy, now);
        let q = &mut self.owners[owner as usize].directory[tier.index()];
        let k = q.iter().position(|r| secs(r.exp) > after && r.count > 0)?;
        let exp = q[k].exp;
        q[k].count -= 1;
        if q[k].count == 0 {
            q.remove(k);
        }
        Some(exp)
    }

    /// A claim of `count` coins of `owner`'s `tier` that found no one-time coin, by a requester
    /// that used `used` of its quota: whether [`directory::plan_claim`] hands out the owner's
    /// last-resort coin instead (the coin's expiry hour and the quota use after the claim).
    fn hand_out_last_resort(
        &mut self,
        owner: u32,
        tier: Tier,
        used: u32,
        count: u32,
        now: UnixSeconds,
    ) -> Option<(u16, u32)> {
        let lr = self.owners[owner as usize].last_resort[tier.index()].filter(|l| l.listed)?;
        self.lr_coin.tier = tier;
        self.lr_coin.expires_at = secs(lr.exp);
        let plan = directory::plan_claim(&self.policy, tier, used, count, now, std::iter::empty(), Some(&self.lr_coin))
            .ok()?;
        plan.last_resort.map(|_| (lr.exp, plan.used_after))
    }

    /// The owner's vault opens a first message to its last-resort coin of `tier`
    /// ([`VaultEntry::open_last_resort`], its record rebuilt from the count of earlier opens,
    /// each a distinct first message): recorded, or retired when the record fills. False when the
    /// vault refuses (retired already, or past its deadline).
    fn open_last_resort(&mut self, owner: u32, tier: Tier, now: UnixSeconds) -> bool {
        let Some(mut lr) = self.owners[owner as usize].last_resort[tier.index()] else { return false };
        if lr.retired {
            // Its vault entry is BURNED: the open would be KeyAlreadyBurned.
            return false;
        }
        let sealed = self.lr_entry.sealed.clone();
        let key_id = KeyId([0; 16]);
        let expires_at = secs(lr.exp);
        let created = expires_at - protocol::LAST_RESORT_LIFETIME_SECS;
        self.lr_entry = VaultEntry::new_active(key_id, tier, CoinKind::LastResort, sealed, created, expires_at);
        let mut opens = LastResortOpens::default();
        let first_message = |k: u8| vault::open_digest(&key_id, &[k]);
        for k in 0..lr.opens {
            if self.lr_entry.open_last_resort(&mut opens, first_message(k), &self.policy, created).is_err() {
                return false;
            }
        }
        let o = &mut self.owners[owner as usize];
        match self.lr_entry.open_last_resort(&mut opens, first_message(lr.opens), &self.policy, now) {
            Ok(retired) => {
                lr.opens += 1;
                if let Some(t) = retired {
                    lr.retired = true;
                    o.stats.apply(t);
                    self.tally.last_resort_retired[tier.index()] += 1;
                }
                o.last_resort[tier.index()] = Some(lr);
                true
            }
            Err(_) => false,
        }
    }

    /// Publishing keeps one last-resort coin per published tier (a tier the owner stocks): when
    /// [`vault::last_resort_due`] says so, mint one, and upload it, replacing the directory's
    /// per [`directory::last_resort_replaces`]. Returns the coins uploaded.
    fn keep_last_resort(&mut self, u: u32, now: UnixSeconds) -> u64 {
        let mut uploaded = 0;
        for t in Tier::ALL {
            let o = &mut self.owners[u as usize];
            if o.stock_target.get(t) == 0 {
                continue;
            }
            let current = o.last_resort[t.index()];
            let live = current.filter(|l| !l.retired && self.policy.vault_deadline(secs(l.exp)) > now);
            if !vault::last_resort_due(&self.policy, live.map(|l| secs(l.exp)), now) {
                continue;
            }
            let exp = hour_of(protocol::last_resort_expiry(now));
            o.stats.apply(Transition::Stored(t));
            self.tally.last_resort_minted[t.index()] += 1;
            uploaded += 1;
            self.lr_upload.tier = t;
            self.lr_upload.expires_at = secs(exp);
            let listed = current.filter(|l| l.listed);
            let replaces = match listed {
                None => directory::last_resort_replaces(None, &self.lr_upload),
                Some(l) => {
                    self.lr_coin.tier = t;
                    self.lr_coin.expires_at = secs(l.exp);
                    directory::last_resort_replaces(Some(&self.lr_coin), &self.lr_upload)
                }
            };
            let fresh = LastResort { exp, opens: 0, retired: false, listed: true };
            if !replaces {
                // The directory keeps the one it holds (never with a later expiry): the new coin
                // waits in the vault only.
                push_run(&mut o.last_resort_vault[t.index()], exp, 1);
                continue;
            }
            o.last_resort[t.index()] = Some(fresh);
            // The replaced coin stays ACTIVE in the vault until its deadline (a retired one is
            // BURNED already). Each replaced coin expires after the one replaced before it.
            if let Some(old) = live {
                push_run(&mut o.last_resort_vault[t.index()], old.exp, 1);
            }
        }
        uploaded
    }

    /// The directory's daily purge: unclaimed coins past the stale age or no longer claimable.
    fn purge_directory(&mut self, now: UnixSeconds) {
        let after = directory::claimable_after(&self.policy, now);
        let stale_upload = directory::stale_uploaded_at_or_before(&self.policy, now);
        for o in &mut self.owners {
            for t in Tier::ALL {
                let q = &mut o.directory[t.index()];
                while let Some(r) = q.front() {
                    let uploaded = secs(r.exp) - protocol::COIN_LIFETIME_SECS;
                    if secs(r.exp) <= after || stale_upload.is_some_and(|s| uploaded <= s) {
                        self.tally.expired_directory[t.index()] += u64::from(r.count);
                        q.pop_front();
                    } else {
                        break;
                    }
                }
                // The last-resort coin goes the same way (directory::purge_stale).
                if let Some(lr) = &mut o.last_resort[t.index()] {
                    let uploaded = secs(lr.exp) - protocol::LAST_RESORT_LIFETIME_SECS;
                    if lr.listed && (secs(lr.exp) <= after || stale_upload.is_some_and(|s| uploaded <= s)) {
                        lr.listed = false;
                    }
                }
            }
        }
    }

    /// A device's nightly maintenance at `now`: vault purge, garbage collection, pre-fetch of
    /// every contact's deficit, and minting to keep its own directory stock.
    fn maintain(&mut self, u: u32, now: UnixSeconds) {
        // Vault purge: ACTIVE secrets past their deadline are deleted (counted as expired).
        for t in Tier::ALL {
            let o = &mut self.owners[u as usize];
            while let Some(r) = o.vault[t.index()].front().copied() {
                if self.policy.vault_deadline(secs(r.exp)) > now {
                    break;
                }
                o.vault[t.index()].pop_front();
                for _ in 0..r.count {
                    o.stats.apply(Transition::Expired(t));
                }
                self.tally.expired_vault[t.index()] += u64::from(r.count);
            }
            // Last-resort coins past their deadline: the replaced ones, and the newest if it was
            // never renewed (an owner whose tier is no longer published).
            while let Some(r) = o.last_resort_vault[t.index()].front().copied() {
                if self.policy.vault_deadline(secs(r.exp)) > now {
                    break;
                }
                o.last_resort_vault[t.index()].pop_front();
                for _ in 0..r.count {
                    o.stats.apply(Transition::Expired(t));
                }
                self.tally.last_resort_expired[t.index()] += u64::from(r.count);
            }
            if let Some(lr) = o.last_resort[t.index()]
                && self.policy.vault_deadline(secs(lr.exp)) <= now
            {
                if !lr.retired {
                    o.stats.apply(Transition::Expired(t));
                    self.tally.last_resort_expired[t.index()] += 1;
                }
                o.last_resort[t.index()] = None;
            }
        }
        let window = directory::quota_window(&self.policy, now);
        for i in self.contact_range(u) {
            self.fill_meta(i);
            let held = self.sides[i].inv.counts();
            if let Some(collected) = inventory::gc_plan(&self.policy, &self.meta, &held, now, false, &mut self.gc) {
                // The core's report counts every inactive contact on every run, also one already
                // collected; the tally counts contacts this collection changed.
                if held.total() > 0 || self.sides[i].priority != collected.meta.priority {
                    self.tally.gc_contacts_cleaned += 1;
                }
                for t in Tier::ALL {
                    self.tally.wasted_gc[t.index()] += u64::from(held.get(t));
                }
                self.sides[i].inv.clear();
                self.sides[i].priority = collected.meta.priority;
                self.meta.priority = collected.meta.priority;
            }
            let needs = inventory::replenish_needs(&self.policy, self.sides[i].priority, &self.sides[i].inv.counts());
            if needs.total() == 0 {
                continue;
            }
            if self.sides[i].quota.window != window {
                self.sides[i].quota = Quota { window, used: [0; 3] };
            }
            let peer = self.sides[i].peer;
            for t in Tier::ALL {
                let need = needs.get(t);
                if need == 0 {
                    continue;
                }
                let grant = match directory::quota_grant(&self.policy, t, self.sides[i].quota.used[t.index()], need) {
                    Ok(g) => g,
                    Err(_) => {
                        self.tally.quota_refusals += 1;
                        continue;
                    }
                };
                self.tally.prefetch_claims += 1;
                self.hour().claims += 1;
                let mut got = 0;
                for _ in 0..grant {
                    let Some(exp) = self.claim_one(peer, t, now) else { break };
                    got += 1;
                    self.tally.coin_verifies[t.index()] += 1;
                    self.coin.owner = user_id(peer);
                    self.coin.tier = t;
                    self.coin.expires_at = secs(exp);
                    let held_t = self.sides[i].inv.len(t);
                    match inventory::admit(&self.policy, Some(&self.meta), &self.coin, held_t, false, now) {
                        Ok(()) if self.sides[i].inv.push(t, exp) => self.tally.claimed_prefetch[t.index()] += 1,
                        _ => self.tally.rejected[t.index()] += 1,
                    }
                }
                self.sides[i].quota.used[t.index()] += got;
                self.hour().coins_claimed += u64::from(got);
                if got == 0 {
                    // No one-time coin: the directory hands out the owner's last-resort coin,
                    // which Messenger::prefetch drops (never cached); it still uses quota.
                    let used = self.sides[i].quota.used[t.index()];
                    if let Some((_, used_after)) = self.hand_out_last_resort(peer, t, used, need, now) {
                        self.sides[i].quota.used[t.index()] = used_after;
                        self.tally.last_resort_prefetch_dropped[t.index()] += 1;
                        self.hour().coins_claimed += 1;
                    }
                }
            }
        }
        // Minting: top the directory stock back up to the target; one upload request.
        let after = directory::claimable_after(&self.policy, now);
        let exp = hour_of(protocol::coin_expiry(now));
        let mut uploaded = 0u64;
        let o = &mut self.owners[u as usize];
        for t in Tier::ALL {
            let stock: u32 = o.directory[t.index()].iter().filter(|r| secs(r.exp) > after).map(|r| r.count).sum();
            let target = o.stock_target.get(t);
            if stock >= target {
                continue;
            }
            let m = target - stock;
            push_run(&mut o.directory[t.index()], exp, m);
            push_run(&mut o.vault[t.index()], exp, m);
            for _ in 0..m {
                o.stats.apply(Transition::Stored(t));
            }
            self.tally.minted[t.index()] += u64::from(m);
            uploaded += u64::from(m);
        }
        uploaded += self.keep_last_resort(u, now);
        if uploaded > 0 {
            let h = self.hour();
            h.uploads += 1;
            h.coins_uploaded += uploaded;
        }
    }

    /// A share of contacts change priority: BESTIE ↔ MATE; a downgrade evicts the newest excess
    /// coins ([`inventory::trim_plan`]).
    fn change_priorities(&mut self) {
        if self.sides.is_empty() {
            return;
        }
        let k = (self.sides.len() as f64 * self.behaviour.priority_changes_per_day).round() as u64;
        for _ in 0..k {
            let i = self.rng.below(self.sides.len() as u64) as usize;
            let new = match self.sides[i].priority {
                Priority::Bestie => Priority::Mate,
                Priority::Mate => Priority::Bestie,
                Priority::Stranger => continue,
            };
            let evict = inventory::trim_plan(&self.policy, new, &self.sides[i].inv.counts());
            for t in Tier::ALL {
                for _ in 0..evict.get(t) {
                    self.sides[i].inv.pop_back(t);
                }
                self.tally.wasted_trim[t.index()] += u64::from(evict.get(t));
            }
            self.sides[i].priority = new;
            if new == Priority::Bestie {
                self.tally.upgrades += 1;
            } else {
                self.tally.downgrades += 1;
            }
        }
    }

    /// Each device's storage report (cached coins against the budget) at the end of the day.
    fn sample_storage(&mut self) {
        let mut pct: Vec<f64> = Vec::with_capacity(self.users.len());
        let mut over = 0u64;
        let mut bytes = 0u64;
        for u in 0..self.users.len() as u32 {
            let mut r = StorageReport::new(&self.policy);
            for i in self.contact_range(u) {
                r.add_contact(&self.sides[i].inv.counts());
            }
            pct.push(r.utilization_pct());
            over += u64::from(r.over_budget());
            bytes += r.total_bytes;
        }
        pct.sort_by(f64::total_cmp);
        let at = |q: f64| pct.get(((pct.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        let d = self.days.last_mut().expect("a day is running");
        d.storage_p50_pct = at(0.5);
        d.storage_p95_pct = at(0.95);
        d.storage_max_pct = at(1.0);
        d.over_budget_users = over;
        d.storage_mean_bytes = bytes / self.users.len().max(1) as u64;
        let mut hist = [0u64; 11];
        for p in &pct {
            hist[((*p / 10.0) as usize).min(10)] += 1;
        }
        self.tally.storage_histogram = hist;
    }
}
