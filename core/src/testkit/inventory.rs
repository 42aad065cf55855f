//! Inventory cases: the seed's `test_inventory.py`, `test_gc.py` and storage-report lists, plus
//! FIFO within one second, no upward fallback and refusals that change nothing. Every case takes
//! a fresh, empty store; the caps, windows and lifetimes it checks come from the store's own
//! policy. Bob is the BESTIE, Carol the MATE.

use std::vec;
use std::vec::Vec;

use super::fixtures::{DAY, Party, T0, expect_core, fixtures, must};
use crate::inventory::{self, CachedCoin, ContactMeta, GcReport, StorageReport};
use crate::store::InventoryStore;
use crate::{ContactId, Error, KeyId, Priority, Tier, TierCounts};

pub use super::last_resort::inventory::*;

/// The store's cap of `tier` for `priority`.
fn cap<S: InventoryStore>(s: &S, priority: Priority, tier: Tier) -> u32 {
    s.policy().cap(priority, tier)
}

/// The store's caps for `priority`, as coin counts.
fn caps<S: InventoryStore>(s: &S, priority: Priority) -> [usize; 3] {
    Tier::ALL.map(|t| cap(s, priority, t) as usize)
}

/// A time at which a contact last active at T0 is due for GC: a day past the store's window.
fn gc_due<S: InventoryStore>(s: &S) -> u64 {
    T0 + s.policy().gc_inactive_secs + DAY
}

fn register<S: InventoryStore>(s: &S, who: &Party, priority: Priority) -> ContactId {
    assert!(must(s.register_contact(&who.as_contact(priority, T0)), "register_contact"), "fresh registration");
    who.id()
}

fn bestie<S: InventoryStore>(s: &S) -> ContactId {
    register(s, &fixtures().bob, Priority::Bestie)
}

fn mate<S: InventoryStore>(s: &S) -> ContactId {
    register(s, &fixtures().carol, Priority::Mate)
}

/// Store coins `range` of `tier` from `who`, all at the same second.
fn fill<S: InventoryStore>(s: &S, who: &Party, tier: Tier, range: core::ops::Range<usize>) -> Vec<KeyId> {
    range
        .map(|i| {
            let c = who.coin(tier, i);
            must(s.store_coin(&who.id(), c, T0), "store_coin");
            c.key_id
        })
        .collect()
}

fn select<S: InventoryStore>(s: &S, c: &ContactId, tier: Tier) -> Option<CachedCoin> {
    must(s.select_coin(c, tier, Tier::Bronze, T0 + 1), "select_coin").coin
}

fn selected_id<S: InventoryStore>(s: &S, c: &ContactId, tier: Tier) -> Option<KeyId> {
    select(s, c, tier).map(|cc| cc.coin.key_id)
}

fn counts<S: InventoryStore>(s: &S, c: &ContactId) -> TierCounts {
    must(s.counts(c), "counts")
}

/// Every contact with its counts, sorted by id.
fn snapshot<S: InventoryStore>(s: &S) -> Vec<(ContactMeta, TierCounts)> {
    let mut out = Vec::new();
    must(s.for_each_contact(&mut |m, c| out.push((m.clone(), c))), "for_each_contact");
    out.sort_by_key(|(m, _)| m.contact_id);
    out
}

// ── Contact management ────────────────────────────────────────────────────────────────────────

/// seed `test_register_contact_success`.
pub fn register_success<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let meta = must(s.contact(&bob), "contact").expect("registered contact");
    assert_eq!(meta, fixtures().bob.as_contact(Priority::Bestie, T0));
    assert_eq!(counts(s, &bob), TierCounts::default());
}

/// seed `test_register_contact_duplicate_is_idempotent`: returns false and overwrites nothing.
pub fn register_duplicate_is_idempotent<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..2);
    let again = ContactMeta::new(bob, Priority::Mate, "someone else", T0 + 99).expect("meta");
    assert!(!must(s.register_contact(&again), "register_contact"));
    assert_eq!(must(s.contact(&bob), "contact"), Some(fixtures().bob.as_contact(Priority::Bestie, T0)));
    assert_eq!(counts(s, &bob), TierCounts([2, 0, 0]));
}

/// seed `test_get_contact_meta` / `test_get_contact_meta_nonexistent_returns_none`.
pub fn contact_meta<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    assert_eq!(must(s.contact(&bob), "contact").map(|m| m.priority), Some(Priority::Bestie));
    assert_eq!(must(s.contact(&fixtures().dave.id()), "contact"), None);
}

/// seed `test_set_priority_upgrade`: nothing evicted, the new caps apply at once.
pub fn set_priority_upgrade<S: InventoryStore>(s: &S) {
    let carol = mate(s);
    fill(s, &fixtures().carol, Tier::Silver, 0..3);
    expect_core(
        s.store_coin(&carol, fixtures().carol.coin(Tier::Gold, 0), T0),
        Error::BudgetExceeded { tier: Tier::Gold, cap: 0 },
        "MATE storing GOLD",
    );
    assert_eq!(must(s.set_priority(&carol, Priority::Bestie), "set_priority"), 0);
    assert_eq!(must(s.contact(&carol), "contact").map(|m| m.priority), Some(Priority::Bestie));
    must(s.store_coin(&carol, fixtures().carol.coin(Tier::Gold, 0), T0), "store GOLD as BESTIE");
    assert_eq!(counts(s, &carol), TierCounts([1, 3, 0]));
}

/// seed `test_set_priority_downgrade_trims_excess`: a full BESTIE downgraded to MATE loses its
/// GOLD coins, keeps the rest.
pub fn set_priority_downgrade_trims_excess<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let f = fixtures();
    let [g, sv, b] = caps(s, Priority::Bestie);
    fill(s, &f.bob, Tier::Gold, 0..g);
    fill(s, &f.bob, Tier::Silver, 0..sv);
    fill(s, &f.bob, Tier::Bronze, 0..b);
    let mate = caps(s, Priority::Mate);
    let kept = [0, 1, 2].map(|i| [g, sv, b][i].min(mate[i]) as u32);
    let evicted = (g + sv + b) as u32 - kept.iter().sum::<u32>();
    assert!(evicted >= g as u32, "the MATE caps drop GOLD at least");
    assert_eq!(must(s.set_priority(&bob, Priority::Mate), "set_priority"), evicted);
    assert_eq!(counts(s, &bob), TierCounts(kept));
    assert_eq!(must(s.contact(&bob), "contact").map(|m| m.priority), Some(Priority::Mate));
}

/// A trim evicts the newest coins and keeps the oldest, in FIFO order.
pub fn trim_evicts_newest<S: InventoryStore>(s: &S) {
    let carol = mate(s);
    let f = fixtures();
    let [_, ms, mb] = caps(s, Priority::Mate);
    let [_, bs, bb] = caps(s, Priority::Bestie);
    let silver = fill(s, &f.carol, Tier::Silver, 0..ms);
    let bronze = fill(s, &f.carol, Tier::Bronze, 0..mb);
    // MATE → BESTIE: a tier whose BESTIE cap is lower loses its newest coins.
    let (ks, kb) = (ms.min(bs), mb.min(bb));
    assert!(ks + kb < ms + mb, "the policy must make this change evict something");
    assert_eq!(must(s.set_priority(&carol, Priority::Bestie), "set_priority") as usize, ms + mb - ks - kb);
    assert_eq!(counts(s, &carol), TierCounts([0, ks as u32, kb as u32]));
    // One tier at a time (no fallback), oldest first: exactly the oldest ones are left.
    let only = |tier| must(s.select_coin(&carol, tier, tier, T0 + 1), "select").coin.map(|c| c.coin.key_id);
    let out: Vec<_> = (0..ms).filter_map(|_| only(Tier::Silver)).collect();
    assert_eq!(out, silver[..ks]);
    let out: Vec<_> = (0..mb).filter_map(|_| only(Tier::Bronze)).collect();
    assert_eq!(out, bronze[..kb]);
}

/// seed `test_set_priority_unregistered_raises`: `ContactNotRegistered`, nothing changes.
pub fn set_priority_unregistered_refused<S: InventoryStore>(s: &S) {
    bestie(s);
    let before = snapshot(s);
    expect_core(s.set_priority(&fixtures().dave.id(), Priority::Mate), Error::ContactNotRegistered, "set_priority");
    assert_eq!(snapshot(s), before);
}

// ── Store ─────────────────────────────────────────────────────────────────────────────────────

/// seed `test_store_key_success`.
pub fn store_success<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let c = fixtures().bob.coin(Tier::Gold, 0);
    must(s.store_coin(&bob, c, T0), "store_coin");
    assert_eq!(counts(s, &bob), TierCounts([1, 0, 0]));
    let got = select(s, &bob, Tier::Gold).expect("stored coin");
    assert_eq!(&got.coin, c, "the cached coin must come back byte for byte");
    assert_eq!(got.fetched_at, T0);
}

/// seed `test_store_key_budget_exceeded_raises`: a BESTIE's GOLD cap (5 by default) fits, the
/// next coin is refused and changes nothing.
pub fn store_budget_exceeded<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let [g, _, b] = caps(s, Priority::Bestie);
    fill(s, &fixtures().bob, Tier::Gold, 0..g);
    expect_core(
        s.store_coin(&bob, fixtures().bob.coin(Tier::Gold, g), T0),
        Error::BudgetExceeded { tier: Tier::Gold, cap: g as u32 },
        "GOLD past the cap",
    );
    assert_eq!(counts(s, &bob), TierCounts([g as u32, 0, 0]));
    // Other tiers still have room.
    fill(s, &fixtures().bob, Tier::Bronze, 0..b);
    expect_core(
        s.store_coin(&bob, fixtures().bob.coin(Tier::Bronze, b), T0),
        Error::BudgetExceeded { tier: Tier::Bronze, cap: b as u32 },
        "BRONZE past the cap",
    );
}

/// seed `test_store_key_mate_cannot_store_gold`.
pub fn store_mate_cannot_store_gold<S: InventoryStore>(s: &S) {
    let carol = mate(s);
    expect_core(
        s.store_coin(&carol, fixtures().carol.coin(Tier::Gold, 0), T0),
        Error::BudgetExceeded { tier: Tier::Gold, cap: 0 },
        "MATE storing GOLD",
    );
    assert_eq!(counts(s, &carol), TierCounts::default());
}

/// seed `test_store_key_stranger_cannot_store_anything`.
pub fn store_stranger_cannot_store_anything<S: InventoryStore>(s: &S) {
    let dave = register(s, &fixtures().dave, Priority::Stranger);
    for t in Tier::ALL {
        expect_core(
            s.store_coin(&dave, fixtures().dave.coin(t, 0), T0),
            Error::BudgetExceeded { tier: t, cap: 0 },
            "STRANGER storing",
        );
    }
    assert_eq!(counts(s, &dave), TierCounts::default());
}

/// seed `test_store_key_unregistered_contact_raises`.
pub fn store_unregistered_refused<S: InventoryStore>(s: &S) {
    let bob = fixtures().bob.id();
    expect_core(
        s.store_coin(&bob, fixtures().bob.coin(Tier::Silver, 0), T0),
        Error::ContactNotRegistered,
        "store for an unregistered contact",
    );
    assert_eq!(counts(s, &bob), TierCounts::default());
    assert!(snapshot(s).is_empty());
}

/// A coin of another user, or one already cached, is refused and changes nothing.
pub fn store_foreign_or_duplicate_refused<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let c = fixtures().bob.coin(Tier::Silver, 0);
    must(s.store_coin(&bob, c, T0), "store_coin");
    expect_core(s.store_coin(&bob, c, T0 + 1), Error::CoinAlreadyCached, "duplicate coin");
    expect_core(
        s.store_coin(&bob, fixtures().carol.coin(Tier::Silver, 0), T0),
        Error::WrongOwner,
        "Carol's coin offered as Bob's",
    );
    assert_eq!(counts(s, &bob), TierCounts([0, 1, 0]));
    assert_eq!(select(s, &bob, Tier::Silver).map(|c| c.fetched_at), Some(T0), "the first copy is kept");
}

/// seed `test_store_key_updates_sorted_set_index`: counts and the FIFO index follow stores.
pub fn store_updates_index<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let ids = fill(s, &fixtures().bob, Tier::Silver, 0..3);
    assert_eq!(counts(s, &bob), TierCounts([0, 3, 0]));
    assert!(snapshot(s).iter().any(|(m, c)| m.contact_id == bob && *c == TierCounts([0, 3, 0])));
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(ids[0]));
}

// ── Select ────────────────────────────────────────────────────────────────────────────────────

/// seed `test_select_coin_returns_correct_tier`.
pub fn select_correct_tier<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let f = fixtures();
    fill(s, &f.bob, Tier::Gold, 0..1);
    fill(s, &f.bob, Tier::Silver, 0..1);
    fill(s, &f.bob, Tier::Bronze, 0..1);
    for t in Tier::ALL {
        assert_eq!(select(s, &bob, t).map(|c| c.coin.tier), Some(t));
    }
}

/// seed `test_select_coin_fifo_order`, strengthened: coins stored in the same second (same
/// `now`) come out in insertion order, whatever their key ids.
///
/// Two rounds, one stored in descending and one in ascending key-id order, so that no ordering by
/// key id (or by time, which is equal) can pass both.
pub fn select_fifo_within_one_second<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let f = fixtures();
    let mut coins: Vec<_> = (0..8).map(|i| f.bob.coin(Tier::Silver, i)).collect();
    coins.sort_by_key(|c| core::cmp::Reverse(c.key_id));
    let (first, rest) = coins.split_at(4);
    let mut second = rest.to_vec();
    second.sort_by_key(|c| c.key_id);
    for round in [first, &second[..]] {
        for c in round {
            must(s.store_coin(&bob, c, T0), "store_coin");
        }
        let out: Vec<_> = (0..4).filter_map(|_| selected_id(s, &bob, Tier::Silver)).collect();
        let want: Vec<_> = round.iter().map(|c| c.key_id).collect();
        assert_eq!(out, want, "FIFO must follow insertion order, not time or key id");
    }
}

/// FIFO survives interleaving: coins of two tiers and two contacts stored alternately in one
/// second still come out per contact and tier in insertion order, including after refills.
pub fn select_fifo_interleaved<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    let f = fixtures();
    let mut want_bob = Vec::new();
    let mut want_carol = Vec::new();
    for i in 0..4 {
        must(s.store_coin(&carol, f.carol.coin(Tier::Silver, i), T0), "store");
        want_carol.push(f.carol.coin(Tier::Silver, i).key_id);
        must(s.store_coin(&bob, f.bob.coin(Tier::Silver, i), T0), "store");
        want_bob.push(f.bob.coin(Tier::Silver, i).key_id);
    }
    // Take two of Bob's, then refill with two more: the refills queue behind the rest.
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(want_bob[0]));
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(want_bob[1]));
    for i in 4..6 {
        must(s.store_coin(&bob, f.bob.coin(Tier::Silver, i), T0), "refill");
        want_bob.push(f.bob.coin(Tier::Silver, i).key_id);
    }
    let got_bob: Vec<_> = (0..4).filter_map(|_| selected_id(s, &bob, Tier::Silver)).collect();
    assert_eq!(got_bob, want_bob[2..]);
    let got_carol: Vec<_> = (0..4).filter_map(|_| selected_id(s, &carol, Tier::Silver)).collect();
    assert_eq!(got_carol, want_carol);
}

/// seed `test_select_coin_fallback_gold_to_silver`.
pub fn select_fallback_gold_to_silver<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let sv = fill(s, &fixtures().bob, Tier::Silver, 0..1);
    fill(s, &fixtures().bob, Tier::Bronze, 0..1);
    assert_eq!(selected_id(s, &bob, Tier::Gold), Some(sv[0]));
}

/// seed `test_select_coin_fallback_silver_to_bronze` (and GOLD all the way to BRONZE).
pub fn select_fallback_to_bronze<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let b = fill(s, &fixtures().bob, Tier::Bronze, 0..1);
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(b[0]));
    let b = fill(s, &fixtures().bob, Tier::Bronze, 1..2);
    assert_eq!(selected_id(s, &bob, Tier::Gold), Some(b[0]));
}

/// seed `test_select_coin_no_upward_fallback`: BRONZE wanted, only GOLD/SILVER held → None, and
/// nothing is taken.
pub fn select_no_upward_fallback<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..2);
    fill(s, &fixtures().bob, Tier::Silver, 0..1);
    let before = must(s.contact(&bob), "contact");
    assert_eq!(select(s, &bob, Tier::Bronze), None);
    assert_eq!(counts(s, &bob), TierCounts([2, 1, 0]));
    // SILVER wanted never takes GOLD either.
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(fixtures().bob.coin(Tier::Silver, 0).key_id));
    assert_eq!(select(s, &bob, Tier::Silver), None);
    assert_eq!(counts(s, &bob), TierCounts([2, 0, 0]));
    assert_eq!(before.map(|m| m.priority), Some(Priority::Bestie));
}

/// seed `test_select_coin_empty_returns_none`: None, and the contact is not touched.
pub fn select_empty_is_none<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    for t in Tier::ALL {
        assert_eq!(select(s, &bob, t), None);
    }
    assert_eq!(must(s.contact(&bob), "contact").map(|m| m.last_msg_at), Some(T0));
}

/// seed `test_select_coin_removes_from_inventory`.
pub fn select_removes_coin<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let ids = fill(s, &fixtures().bob, Tier::Gold, 0..2);
    assert_eq!(selected_id(s, &bob, Tier::Gold), Some(ids[0]));
    assert_eq!(counts(s, &bob), TierCounts([1, 0, 0]));
    assert!(!must(s.consume(&bob, &ids[0]), "consume"), "a selected coin is gone");
}

/// seed `test_select_coin_updates_last_msg_at`.
pub fn select_updates_last_msg_at<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Bronze, 0..1);
    let at = T0 + 3 * DAY;
    assert!(must(s.select_coin(&bob, Tier::Bronze, Tier::Bronze, at), "select").coin.is_some());
    assert_eq!(must(s.contact(&bob), "contact").map(|m| m.last_msg_at), Some(at));
}

/// Selecting for an unregistered contact is refused.
pub fn select_unregistered_refused<S: InventoryStore>(s: &S) {
    bestie(s);
    expect_core(
        s.select_coin(&fixtures().dave.id(), Tier::Gold, Tier::Bronze, T0),
        Error::ContactNotRegistered,
        "select",
    );
}

// ── Consume ───────────────────────────────────────────────────────────────────────────────────

/// seed `test_consume_key_success`.
pub fn consume_success<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let ids = fill(s, &fixtures().bob, Tier::Silver, 0..3);
    assert!(must(s.consume(&bob, &ids[1]), "consume"));
    assert_eq!(counts(s, &bob), TierCounts([0, 2, 0]));
    let rest: Vec<_> = (0..2).filter_map(|_| selected_id(s, &bob, Tier::Silver)).collect();
    assert_eq!(rest, vec![ids[0], ids[2]]);
}

/// seed `test_consume_nonexistent_returns_false`: nothing changes.
pub fn consume_missing_is_false<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Silver, 0..1);
    assert!(!must(s.consume(&bob, &KeyId([0x5A; 16])), "consume"));
    assert!(!must(s.consume(&fixtures().carol.id(), &fixtures().bob.coin(Tier::Silver, 0).key_id), "consume"));
    assert_eq!(counts(s, &bob), TierCounts([0, 1, 0]));
}

// ── Queries ───────────────────────────────────────────────────────────────────────────────────

/// seed `test_get_inventory_single_contact`.
pub fn inventory_single_contact<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..2);
    fill(s, &fixtures().bob, Tier::Bronze, 0..1);
    assert_eq!(counts(s, &bob), TierCounts([2, 0, 1]));
    assert_eq!(counts(s, &fixtures().dave.id()), TierCounts::default(), "unregistered → zeros");
}

/// seed `test_get_inventory_all_contacts`.
pub fn inventory_all_contacts<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..1);
    fill(s, &fixtures().carol, Tier::Silver, 0..2);
    let all = snapshot(s);
    assert_eq!(all.len(), 2);
    for (m, c) in all {
        if m.contact_id == bob {
            assert_eq!((m.priority, c), (Priority::Bestie, TierCounts([1, 0, 0])));
        } else {
            assert_eq!((m.contact_id, m.priority, c), (carol, Priority::Mate, TierCounts([0, 2, 0])));
        }
    }
}

/// seed `test_has_keys_for_true` / `test_has_keys_for_false` and `test_get_available_tiers`.
pub fn has_keys_and_available_tiers<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    assert_eq!(counts(s, &bob).total(), 0);
    fill(s, &fixtures().bob, Tier::Silver, 0..1);
    fill(s, &fixtures().bob, Tier::Bronze, 0..1);
    let held = counts(s, &bob);
    assert!(held.total() > 0);
    let tiers: Vec<_> = Tier::ALL.into_iter().filter(|t| held.get(*t) > 0).collect();
    assert_eq!(tiers, vec![Tier::Silver, Tier::Bronze]);
}

// ── Edge cases ────────────────────────────────────────────────────────────────────────────────

/// seed `test_store_after_select_refills`.
pub fn store_after_select_refills<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let g = cap(s, Priority::Bestie, Tier::Gold) as usize;
    fill(s, &fixtures().bob, Tier::Gold, 0..g);
    while select(s, &bob, Tier::Gold).is_some() {}
    assert_eq!(counts(s, &bob), TierCounts::default());
    let again = fill(s, &fixtures().bob, Tier::Gold, g..2 * g);
    assert_eq!(counts(s, &bob), TierCounts([g as u32, 0, 0]));
    assert_eq!(selected_id(s, &bob, Tier::Gold), Some(again[0]));
}

/// seed `test_priority_downgrade_then_select`: after BESTIE → MATE no GOLD is ever returned.
pub fn downgrade_then_select<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..cap(s, Priority::Bestie, Tier::Gold) as usize);
    let sv = fill(s, &fixtures().bob, Tier::Silver, 0..1);
    must(s.set_priority(&bob, Priority::Mate), "set_priority");
    assert_eq!(selected_id(s, &bob, Tier::Gold), Some(sv[0]));
    assert_eq!(select(s, &bob, Tier::Gold), None);
}

// ── Garbage collection (seed test_gc.py) ──────────────────────────────────────────────────────

/// seed `test_gc_removes_inactive_contacts`: a day past the window (31 days by default) without
/// a message → coins dropped.
pub fn gc_removes_inactive<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..3);
    let report = must(s.collect_garbage(gc_due(s), false), "collect_garbage");
    assert_eq!(report.contacts_cleaned, 1);
    assert_eq!(counts(s, &bob), TierCounts::default());
}

/// seed `test_gc_keeps_active_contacts`, including the exact boundary of the window (30 days by
/// default).
pub fn gc_keeps_active<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let window = s.policy().gc_inactive_secs;
    fill(s, &fixtures().bob, Tier::Silver, 0..2);
    assert_eq!(must(s.collect_garbage(T0 + window, false), "gc"), GcReport::default());
    assert_eq!(counts(s, &bob), TierCounts([0, 2, 0]));
    // A send refreshes activity: a whole window after it, the contact is still not due.
    let sent = T0 + window / 2;
    assert!(must(s.select_coin(&bob, Tier::Silver, Tier::Bronze, sent), "select").coin.is_some());
    assert_eq!(must(s.collect_garbage(sent + window, false), "gc"), GcReport::default());
    assert_eq!(counts(s, &bob), TierCounts([0, 1, 0]));
}

/// seed `test_gc_returns_correct_counts`: contacts, keys and bytes of exactly the inactive ones.
pub fn gc_returns_correct_counts<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    let f = fixtures();
    fill(s, &f.bob, Tier::Gold, 0..2);
    fill(s, &f.bob, Tier::Bronze, 0..1);
    fill(s, &f.carol, Tier::Silver, 0..3);
    // Carol stays active.
    assert!(must(s.select_coin(&carol, Tier::Silver, Tier::Bronze, T0 + 2 * DAY), "select").coin.is_some());
    let report = must(s.collect_garbage(gc_due(s), false), "gc");
    let mut want = GcReport::default();
    want.add_contact(&TierCounts([2, 0, 1]));
    assert_eq!(report, want);
    assert_eq!(report.keys_deleted, 3);
    assert_eq!(report.bytes_freed, 2 * crate::coin::stored_bytes(Tier::Gold) + crate::coin::stored_bytes(Tier::Bronze));
    assert_eq!(counts(s, &bob), TierCounts::default());
    assert_eq!(counts(s, &carol), TierCounts([0, 2, 0]));
}

/// seed `test_gc_downgrades_to_stranger`: the contact stays registered, as a STRANGER, and can no
/// longer cache coins.
pub fn gc_downgrades_to_stranger<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..1);
    must(s.collect_garbage(gc_due(s), false), "gc");
    assert_eq!(must(s.contact(&bob), "contact").map(|m| m.priority), Some(Priority::Stranger));
    expect_core(
        s.store_coin(&bob, fixtures().bob.coin(Tier::Gold, 1), gc_due(s)),
        Error::BudgetExceeded { tier: Tier::Gold, cap: 0 },
        "store after GC",
    );
}

/// seed `test_collect_single_contact`: drops one contact's coins now, whatever its activity.
pub fn collect_single_contact<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    fill(s, &fixtures().bob, Tier::Silver, 0..2);
    fill(s, &fixtures().carol, Tier::Bronze, 0..2);
    let report = must(s.collect_contact(&bob), "collect_contact");
    let mut want = GcReport::default();
    want.add_contact(&TierCounts([0, 2, 0]));
    assert_eq!(report, want);
    assert_eq!(counts(s, &bob), TierCounts::default());
    assert_eq!(must(s.contact(&bob), "contact").map(|m| m.priority), Some(Priority::Stranger));
    assert_eq!(counts(s, &carol), TierCounts([0, 0, 2]));
    let before = snapshot(s);
    expect_core(s.collect_contact(&fixtures().dave.id()), Error::ContactNotRegistered, "collect unregistered");
    assert_eq!(snapshot(s), before);
}

/// seed `test_dry_run_does_not_delete`: the dry run reports exactly what the real run then does.
pub fn gc_dry_run_does_not_delete<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..2);
    fill(s, &fixtures().carol, Tier::Silver, 0..4);
    let before = snapshot(s);
    let dry = must(s.collect_garbage(gc_due(s), true), "dry run");
    assert_eq!(dry.contacts_cleaned, 2);
    assert_eq!(dry.keys_deleted, 6);
    assert_eq!(snapshot(s), before, "a dry run changes nothing");
    let real = must(s.collect_garbage(gc_due(s), false), "gc");
    assert_eq!(real, dry);
    assert_eq!((counts(s, &bob), counts(s, &carol)), (TierCounts::default(), TierCounts::default()));
}

/// seed `test_gc_handles_empty_inventory`.
pub fn gc_empty<S: InventoryStore>(s: &S) {
    assert_eq!(must(s.collect_garbage(T0 + 365 * DAY, false), "gc"), GcReport::default());
    assert_eq!(must(s.collect_garbage(T0 + 365 * DAY, true), "dry run"), GcReport::default());
}

// ── Stats (seed stats.py: storage usage and replenish needs) ──────────────────────────────────

/// seed `get_storage_usage` / `get_replenish_needs`: computed from the store's per-contact counts
/// with the core's report functions.
pub fn storage_report_and_replenish_needs<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    fill(s, &fixtures().bob, Tier::Gold, 0..2);
    fill(s, &fixtures().bob, Tier::Silver, 0..4);
    fill(s, &fixtures().carol, Tier::Bronze, 0..1);
    let p = s.policy();
    let mut report = StorageReport::new(p);
    let mut needs = Vec::new();
    must(
        s.for_each_contact(&mut |m, held| {
            report.add_contact(&held);
            needs.push((m.contact_id, inventory::replenish_needs(p, m.priority, &held)));
        }),
        "for_each_contact",
    );
    let bytes = 2 * crate::coin::stored_bytes(Tier::Gold)
        + 4 * crate::coin::stored_bytes(Tier::Silver)
        + crate::coin::stored_bytes(Tier::Bronze);
    assert_eq!((report.contacts, report.total_bytes, report.budget_bytes), (2, bytes, p.storage_budget_bytes));
    assert_eq!(report.over_budget(), bytes > p.storage_budget_bytes);
    assert!(report.utilization_pct() > 0.0);
    needs.sort_by_key(|(id, _)| *id);
    let [bg, bs, bb] = caps(s, Priority::Bestie).map(|c| c as u32);
    let [mg, ms, mb] = caps(s, Priority::Mate).map(|c| c as u32);
    let mut want = vec![(bob, TierCounts([bg - 2, bs - 4, bb])), (carol, TierCounts([mg, ms, mb - 1]))];
    want.sort_by_key(|(id, _)| *id);
    assert_eq!(needs, want);
}

/// docs/protocol.md: a send that wants GOLD or SILVER never falls back to BRONZE unless its range
/// says so: with only BRONZE cached, the range GOLD..SILVER selects nothing and changes nothing.
pub fn select_stops_at_lowest<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let b = fill(s, &fixtures().bob, Tier::Bronze, 0..1);
    let before = snapshot(s);
    let sel = must(s.select_coin(&bob, Tier::Gold, Tier::Silver, T0 + 5), "select");
    assert_eq!((sel.coin, sel.wasted), (None, 0));
    assert_eq!(snapshot(s), before, "an empty selection touches nothing");
    let sel = must(s.select_coin(&bob, Tier::Gold, Tier::Bronze, T0 + 5), "select");
    assert_eq!(sel.coin.map(|c| c.coin.key_id), Some(b[0]));
}

/// A coin is stored only while fresh (`now + coin_min_life < expires_at`, else `CoinExpired`),
/// and selection drops the coins of the scanned tiers that are no longer fresh, counting them
/// as wasted, before it picks.
pub fn expiring_coins_are_refused_and_dropped<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let f = fixtures();
    let late = f.bob.coin(Tier::Silver, 0).expires_at - s.policy().coin_min_life_secs;
    expect_core(s.store_coin(&bob, f.bob.coin(Tier::Silver, 0), late), Error::CoinExpired, "nearly expired");
    assert_eq!(counts(s, &bob), TierCounts::default());
    fill(s, &f.bob, Tier::Silver, 0..2);
    fill(s, &f.bob, Tier::Gold, 0..1);
    // Still fresh one second earlier.
    let sel = must(s.select_coin(&bob, Tier::Silver, Tier::Silver, late - 1), "select");
    assert_eq!(sel.wasted, 0);
    assert!(sel.coin.is_some());
    // At `late` every cached coin is past its selection limit: GOLD and SILVER are dropped,
    // nothing is returned, and the contact is not marked active.
    let before_meta = must(s.contact(&bob), "contact");
    let sel = must(s.select_coin(&bob, Tier::Gold, Tier::Silver, late), "select");
    assert_eq!((sel.coin, sel.wasted), (None, 2));
    assert_eq!(counts(s, &bob), TierCounts::default());
    assert_eq!(must(s.contact(&bob), "contact"), before_meta);
}

/// A coin put back after a lost session race returns to its FIFO place (ahead of coins stored
/// after it); a duplicate or a coin over the cap is not put back.
pub fn restore_returns_coin_to_its_place<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let ids = fill(s, &fixtures().bob, Tier::Silver, 0..3);
    let first = select(s, &bob, Tier::Silver).expect("a coin");
    assert_eq!(first.coin.key_id, ids[0]);
    assert!(must(s.restore_coin(&bob, &first), "restore"));
    assert!(!must(s.restore_coin(&bob, &first), "restore twice"), "a duplicate is not put back");
    assert_eq!(counts(s, &bob), TierCounts([0, 3, 0]));
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(ids[0]), "back at the head of the queue");
    assert_eq!(selected_id(s, &bob, Tier::Silver), Some(ids[1]));
    // Fill to the cap (4 by default), then a restored coin would exceed it.
    let extra = select(s, &bob, Tier::Silver).expect("a coin");
    let sv = cap(s, Priority::Bestie, Tier::Silver) as usize;
    fill(s, &fixtures().bob, Tier::Silver, 3..3 + sv);
    assert!(!must(s.restore_coin(&bob, &extra), "restore over the cap"));
    assert_eq!(counts(s, &bob), TierCounts([0, sv as u32, 0]));
}

/// Refusals change nothing: a series of bad calls leaves every contact and count as it was.
pub fn bad_input_changes_nothing<S: InventoryStore>(s: &S) {
    let bob = bestie(s);
    let carol = mate(s);
    let f = fixtures();
    let g = cap(s, Priority::Bestie, Tier::Gold);
    fill(s, &f.bob, Tier::Gold, 0..g as usize);
    fill(s, &f.carol, Tier::Silver, 0..cap(s, Priority::Mate, Tier::Silver) as usize);
    let before = snapshot(s);
    let dave = f.dave.id();
    expect_core(
        s.store_coin(&bob, f.bob.coin(Tier::Gold, g as usize), T0),
        Error::BudgetExceeded { tier: Tier::Gold, cap: g },
        "over cap",
    );
    expect_core(s.store_coin(&bob, f.bob.coin(Tier::Gold, 0), T0), Error::CoinAlreadyCached, "duplicate");
    expect_core(s.store_coin(&carol, f.bob.coin(Tier::Silver, 0), T0), Error::WrongOwner, "foreign coin");
    expect_core(s.store_coin(&dave, f.dave.coin(Tier::Bronze, 0), T0), Error::ContactNotRegistered, "unregistered");
    expect_core(
        s.select_coin(&dave, Tier::Bronze, Tier::Bronze, T0 + 5),
        Error::ContactNotRegistered,
        "select unregistered",
    );
    expect_core(s.set_priority(&dave, Priority::Bestie), Error::ContactNotRegistered, "priority unregistered");
    expect_core(s.collect_contact(&dave), Error::ContactNotRegistered, "collect unregistered");
    assert_eq!(select(s, &carol, Tier::Bronze), None);
    assert!(!must(s.consume(&bob, &KeyId([1; 16])), "consume"));
    assert!(!must(s.register_contact(&f.bob.as_contact(Priority::Stranger, T0 + 9)), "re-register"));
    assert_eq!(snapshot(s), before);
}
