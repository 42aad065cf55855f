//! The inventory's rules: per-contact, per-tier budget caps; strict FIFO by insertion sequence;
//! downward fallback; downgrade trimming; inactivity GC; storage report and replenish needs.

use serde::{Deserialize, Serialize};

use crate::coin::{self, PublicCoin};
use crate::{ContactId, DeviceContext, Error, Policy, Priority, Tier, TierCounts, UnixSeconds};

/// Longest display name kept for a contact.
pub const MAX_DISPLAY_NAME: usize = 32;

/// A registered contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactMeta {
    /// The contact's user id.
    pub contact_id: ContactId,
    /// Decides caps and tier ceiling.
    pub priority: Priority,
    /// Last time a coin of this contact was used to send (or registration time).
    pub last_msg_at: UnixSeconds,
    /// A human name for display.
    pub display_name: heapless::String<MAX_DISPLAY_NAME>,
    /// Never send to this contact without post-quantum protection: a BRONZE tier chosen by the
    /// device context is raised to SILVER, and the fallback stops at SILVER (docs/protocol.md).
    pub require_pq: bool,
}

impl ContactMeta {
    /// A new contact registered at `now`. Display names longer than 32 bytes are refused.
    pub fn new(contact_id: ContactId, priority: Priority, display_name: &str, now: UnixSeconds) -> Result<Self, Error> {
        let display_name = heapless::String::try_from(display_name).map_err(|_| Error::BadLength {
            what: "display name",
            expected: MAX_DISPLAY_NAME,
            got: display_name.len(),
        })?;
        Ok(ContactMeta { contact_id, priority, last_msg_at: now, display_name, require_pq: false })
    }

    /// The same contact, flagged to require post-quantum protection.
    pub fn requiring_pq(mut self) -> Self {
        self.require_pq = true;
        self
    }
}

/// The tiers one send may use, dearest first: from `desired` down to `lowest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierRange {
    /// The tier the device context and the contact's priority ask for.
    pub desired: Tier,
    /// The cheapest tier the fallback may reach.
    pub lowest: Tier,
}

impl TierRange {
    /// Exactly one tier.
    pub const fn only(tier: Tier) -> Self {
        TierRange { desired: tier, lowest: tier }
    }

    /// The tiers of the range, dearest first (empty if `lowest` is dearer than `desired`).
    pub fn tiers(self) -> impl Iterator<Item = Tier> {
        self.desired.fallback().filter(move |t| *t <= self.lowest)
    }

    /// Whether every tier of the range is post-quantum (no BRONZE).
    pub fn post_quantum(self) -> bool {
        self.lowest != Tier::Bronze
    }
}

/// The tiers a send to a contact of `priority` may use (docs/protocol.md, §4): the context's tier
/// capped by the priority's ceiling; a contact that requires post-quantum protection lifts a
/// BRONZE choice to SILVER; a GOLD or SILVER choice never falls back to BRONZE unless the app
/// passes `allow_classical` (and never for a contact that requires post-quantum protection).
/// A BRONZE choice by the context (low battery, underground) otherwise stays BRONZE.
///
/// ```
/// use aqm_core::inventory::{send_range, TierRange};
/// use aqm_core::{DeviceContext, Policy, Priority, Tier};
/// let p = Policy::DEFAULT;
/// let r = send_range(&p, &DeviceContext::HOME_WIFI, Priority::Bestie, false, false);
/// assert_eq!(r, TierRange { desired: Tier::Gold, lowest: Tier::Silver });
/// let r = send_range(&p, &DeviceContext::HOME_WIFI, Priority::Bestie, false, true);
/// assert_eq!(r.lowest, Tier::Bronze);
/// let r = send_range(&p, &DeviceContext::UNDERGROUND, Priority::Bestie, true, true);
/// assert_eq!(r, TierRange::only(Tier::Silver));
/// ```
pub fn send_range(
    policy: &Policy,
    ctx: &DeviceContext,
    priority: Priority,
    require_pq: bool,
    allow_classical: bool,
) -> TierRange {
    let mut desired = policy.choose_tier(ctx, priority);
    if require_pq && desired == Tier::Bronze {
        desired = Tier::Silver;
    }
    let lowest = if desired == Tier::Bronze || (allow_classical && !require_pq) { Tier::Bronze } else { Tier::Silver };
    TierRange { desired, lowest }
}

/// A coin in the inventory, with the sequence number that orders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedCoin {
    /// The coin.
    pub coin: PublicCoin,
    /// Strictly increasing per store: the FIFO order (never wall-clock).
    pub seq: u64,
    /// When it was stored.
    pub fetched_at: UnixSeconds,
}

/// Decide whether `coin` may be stored for `contact` at `now`, given what the store holds right
/// now.
///
/// `contact` is the registered meta (None if unregistered), `held` the contact's current count for
/// the coin's tier and `duplicate` whether this key id is already cached. A coin no longer fresh
/// ([`Policy::coin_is_fresh`]) → [`Error::CoinExpired`]; a last-resort coin →
/// [`Error::LastResortNotCached`] (it serves only the send that fetched it). Backends call this
/// inside the same transaction that inserts, so the cap holds under concurrency.
///
/// ```
/// use aqm_core::{inventory::{admit, ContactMeta}, Error, Policy, Priority, Tier};
/// # use aqm_core::{coin::PublicCoin, KeyId, UserId};
/// # let id = UserId([1; 16]);
/// # let coin = PublicCoin { owner: id, key_id: KeyId([2; 16]), tier: Tier::Gold,
/// #     kind: aqm_core::coin::CoinKind::OneTime, expires_at: 30 * 86_400,
/// #     public_key: Default::default(), signature: Default::default() };
/// let mate = ContactMeta::new(id, Priority::Mate, "bob", 0).unwrap();
/// assert_eq!(admit(&Policy::DEFAULT, Some(&mate), &coin, 0, false, 0),
///            Err(Error::BudgetExceeded { tier: Tier::Gold, cap: 0 }));
/// ```
pub fn admit(
    policy: &Policy,
    contact: Option<&ContactMeta>,
    coin: &PublicCoin,
    held: u32,
    duplicate: bool,
    now: UnixSeconds,
) -> Result<(), Error> {
    let meta = contact.ok_or(Error::ContactNotRegistered)?;
    if coin.is_last_resort() {
        return Err(Error::LastResortNotCached);
    }
    if coin.owner != meta.contact_id {
        return Err(Error::WrongOwner);
    }
    if duplicate {
        return Err(Error::CoinAlreadyCached);
    }
    let cap = policy.cap(meta.priority, coin.tier);
    if held >= cap {
        return Err(Error::BudgetExceeded { tier: coin.tier, cap });
    }
    coin.check_fresh(policy, now)
}

/// The tier to pop for a send over `range`: the first non-empty tier of the downward fallback
/// that stays within the range, or None (the caller then fetches one coin on demand).
pub fn pick_tier(range: TierRange, held: &TierCounts) -> Option<Tier> {
    range.tiers().find(|t| held.get(*t) > 0)
}

/// What [`crate::store::InventoryStore::select_coin`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The oldest fresh coin of the first tier of the range that held one.
    pub coin: Option<CachedCoin>,
    /// Coins dropped because they were no longer fresh (wasted: fetched but never used).
    pub wasted: u32,
}

/// How many of the newest coins per tier a change to `new_priority` evicts.
pub fn trim_plan(policy: &Policy, new_priority: Priority, held: &TierCounts) -> TierCounts {
    let caps = policy.caps_of(new_priority);
    let mut evict = TierCounts::default();
    for t in Tier::ALL {
        *evict.get_mut(t) = held.get(t).saturating_sub(caps.get(t));
    }
    evict
}

/// Whether a contact last active at `last_msg_at` is due for garbage collection at `now`.
pub fn is_inactive(policy: &Policy, last_msg_at: UnixSeconds, now: UnixSeconds) -> bool {
    now.saturating_sub(last_msg_at) > policy.gc_inactive_secs
}

/// What collecting one contact writes (the rules in docs/architecture.md §2, "garbage-collected"; also a block): drop
/// every coin it holds — `evict` per tier, which is everything `held` — and store `meta`, the
/// contact downgraded to STRANGER. Returned by [`collect`] and [`gc_plan`], so that no backend
/// spells the flow out itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    /// The contact's record to write: unchanged but for its priority, now STRANGER.
    pub meta: ContactMeta,
    /// Coins to delete per tier (all of them).
    pub evict: TierCounts,
}

/// Collect `meta`'s contact now, whatever its activity
/// ([`crate::store::InventoryStore::collect_contact`]): the backend deletes `evict` coins per
/// tier and writes `meta`, in one atomic step, and `report` accounts for it.
///
/// ```
/// use aqm_core::inventory::{collect, ContactMeta, GcReport};
/// use aqm_core::{Priority, TierCounts, UserId};
/// let meta = ContactMeta::new(UserId([1; 16]), Priority::Bestie, "bob", 0).unwrap();
/// let mut report = GcReport::default();
/// let plan = collect(&meta, &TierCounts([2, 1, 0]), &mut report);
/// assert_eq!((plan.meta.priority, plan.evict), (Priority::Stranger, TierCounts([2, 1, 0])));
/// assert_eq!((report.contacts_cleaned, report.keys_deleted), (1, 3));
/// ```
pub fn collect(meta: &ContactMeta, held: &TierCounts, report: &mut GcReport) -> Collection {
    report.add_contact(held);
    let mut meta = meta.clone();
    meta.priority = Priority::Stranger;
    Collection { meta, evict: *held }
}

/// The garbage collector's decision for one contact at `now`
/// ([`crate::store::InventoryStore::collect_garbage`]): None if it is still active; else it is
/// counted in `report` and, unless `dry_run`, the [`Collection`] to write is returned. A dry run
/// counts exactly what the real run then removes.
pub fn gc_plan(
    policy: &Policy,
    meta: &ContactMeta,
    held: &TierCounts,
    now: UnixSeconds,
    dry_run: bool,
    report: &mut GcReport,
) -> Option<Collection> {
    if !is_inactive(policy, meta.last_msg_at, now) {
        return None;
    }
    let plan = collect(meta, held, report);
    (!dry_run).then_some(plan)
}

/// What a selection does with the oldest remaining coin of a scanned tier: drop it (no longer
/// fresh, counted in [`Selection::wasted`]) or take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStep {
    /// Delete it and look at the next one: it can never be used.
    Drop,
    /// Delete it and return it: the selection ends.
    Take,
}

/// One step of [`crate::store::InventoryStore::select_coin`]'s scan, oldest coin first, tier by
/// tier over the [`TierRange`].
pub fn scan_step(policy: &Policy, coin: &PublicCoin, now: UnixSeconds) -> ScanStep {
    if coin.check_fresh(policy, now).is_ok() { ScanStep::Take } else { ScanStep::Drop }
}

/// "Touch on select": the contact record a finished selection writes — `meta` marked active at
/// `now` if a coin was returned (it is then safe from the inactivity GC), None (write nothing)
/// if the selection came back empty, even if it dropped stale coins.
pub fn touch_on_select(meta: &ContactMeta, selection: &Selection, now: UnixSeconds) -> Option<ContactMeta> {
    selection.coin.as_ref()?;
    let mut meta = meta.clone();
    meta.last_msg_at = now;
    Some(meta)
}

/// Bytes a contact's cached coins occupy.
pub fn held_bytes(held: &TierCounts) -> u64 {
    Tier::ALL.iter().map(|t| u64::from(held.get(*t)) * coin::stored_bytes(*t)).sum()
}

/// Bytes one cached coin of `tier` occupies as a sealed device store writes it (redb, Redis):
/// the coin ([`coin::stored_bytes`]), the nonce and tag its sealed record adds
/// ([`crate::crypto::at_rest::SEAL_OVERHEAD`]) and the keyed hash it is filed under
/// ([`crate::crypto::at_rest::Index`]). The database's own overhead (pages, b-tree or hash
/// nodes) and the few bytes of bookkeeping per coin (its FIFO sequence number and slot row)
/// come on top.
///
/// ```
/// use aqm_core::{coin, inventory, Tier};
/// assert_eq!(inventory::sealed_stored_bytes(Tier::Bronze), coin::stored_bytes(Tier::Bronze) + 28 + 32);
/// ```
pub const fn sealed_stored_bytes(tier: Tier) -> u64 {
    coin::stored_bytes(tier)
        + crate::crypto::at_rest::SEAL_OVERHEAD as u64
        + core::mem::size_of::<crate::crypto::at_rest::Index>() as u64
}

/// Bytes a contact's cached coins occupy as stored, sealed ([`sealed_stored_bytes`]).
pub fn held_bytes_as_stored(held: &TierCounts) -> u64 {
    Tier::ALL.iter().map(|t| u64::from(held.get(*t)) * sealed_stored_bytes(*t)).sum()
}

/// Each tier's deficit against the caps of `priority` (0 = fully stocked).
pub fn replenish_needs(policy: &Policy, priority: Priority, held: &TierCounts) -> TierCounts {
    let caps = policy.caps_of(priority);
    let mut need = TierCounts::default();
    for t in Tier::ALL {
        *need.get_mut(t) = caps.get(t).saturating_sub(held.get(t));
    }
    need
}

/// What a garbage collection removed (or, in a dry run, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Contacts whose coins were dropped and who were downgraded to STRANGER.
    pub contacts_cleaned: u32,
    /// Coins deleted.
    pub keys_deleted: u32,
    /// Bytes freed.
    pub bytes_freed: u64,
}

impl GcReport {
    /// Account for one collected contact holding `held`.
    pub fn add_contact(&mut self, held: &TierCounts) {
        self.contacts_cleaned += 1;
        self.keys_deleted += held.total();
        self.bytes_freed += held_bytes(held);
    }
}

/// Bytes held against the device budget.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StorageReport {
    /// Bytes held by all cached coins: what the budget counts.
    pub total_bytes: u64,
    /// The same coins as a sealed device store writes them ([`held_bytes_as_stored`]): the
    /// budget's figure plus what sealing and keyed-hash names add.
    pub stored_bytes: u64,
    /// The device budget.
    pub budget_bytes: u64,
    /// Registered contacts counted.
    pub contacts: u32,
}

impl StorageReport {
    /// An empty report against the policy's budget.
    pub fn new(policy: &Policy) -> Self {
        StorageReport { total_bytes: 0, stored_bytes: 0, budget_bytes: policy.storage_budget_bytes, contacts: 0 }
    }
    /// Account for one contact.
    pub fn add_contact(&mut self, held: &TierCounts) {
        self.contacts += 1;
        self.total_bytes += held_bytes(held);
        self.stored_bytes += held_bytes_as_stored(held);
    }
    /// Share of the budget used, in percent.
    pub fn utilization_pct(&self) -> f64 {
        if self.budget_bytes == 0 { 0.0 } else { self.total_bytes as f64 * 100.0 / self.budget_bytes as f64 }
    }
    /// Whether the cache is over budget.
    pub fn over_budget(&self) -> bool {
        self.total_bytes > self.budget_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_and_trim() {
        let held = TierCounts([0, 2, 1]);
        let all = TierRange { desired: Tier::Gold, lowest: Tier::Bronze };
        assert_eq!(pick_tier(all, &held), Some(Tier::Silver));
        assert_eq!(pick_tier(TierRange::only(Tier::Bronze), &TierCounts([5, 4, 0])), None);
        // GOLD/SILVER drained: the post-quantum range finds nothing rather than BRONZE.
        let pq = TierRange { desired: Tier::Gold, lowest: Tier::Silver };
        assert_eq!(pick_tier(pq, &TierCounts([0, 0, 1])), None);
        assert_eq!(pq.tiers().collect::<std::vec::Vec<_>>(), [Tier::Gold, Tier::Silver]);
        let p = Policy::DEFAULT;
        assert_eq!(trim_plan(&p, Priority::Mate, &TierCounts([5, 4, 1])), TierCounts([5, 0, 0]));
        assert_eq!(trim_plan(&p, Priority::Stranger, &TierCounts([5, 4, 1])), TierCounts([5, 4, 1]));
        assert_eq!(replenish_needs(&p, Priority::Bestie, &TierCounts([2, 4, 0])), TierCounts([3, 0, 1]));
    }

    #[test]
    fn inactivity_is_strictly_after_the_window() {
        let p = Policy::DEFAULT;
        assert!(!is_inactive(&p, 0, p.gc_inactive_secs));
        assert!(is_inactive(&p, 0, p.gc_inactive_secs + 1));
    }

    #[test]
    fn a_full_bestie_fits_the_budget() {
        let p = Policy::DEFAULT;
        let mut r = StorageReport::new(&p);
        r.add_contact(&p.caps_of(Priority::Bestie));
        assert!(!r.over_budget(), "{} bytes", r.total_bytes);
    }

    #[test]
    fn stored_bytes_count_the_sealing() {
        let p = Policy::DEFAULT;
        let mut r = StorageReport::new(&p);
        let held = TierCounts([2, 1, 3]);
        r.add_contact(&held);
        // Every coin adds a 28-byte nonce and tag and a 32-byte keyed-hash name.
        assert_eq!(r.stored_bytes, r.total_bytes + 6 * (28 + 32));
        assert_eq!(held_bytes_as_stored(&TierCounts::default()), 0);
    }
}
