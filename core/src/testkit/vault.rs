//! Vault cases: the seed's `test_vault.py` list, plus expiry counters, the burn grace and
//! refusals that change nothing. Every case takes a fresh, empty store; the lifetimes and graces
//! it checks come from the store's own policy.

use std::vec;
use std::vec::Vec;

use super::fixtures::{DAY, T0, expect_core, fixtures, must};
use crate::store::VaultStore;
use crate::vault::{KeyStatus, PurgeReport, VaultStats};
use crate::{Error, KeyId, Tier, TierCounts};

pub use super::last_resort::vault::*;

/// How long after minting an ACTIVE key stays in the vault: the coin's life, then the store's
/// grace.
fn vault_life<S: VaultStore>(s: &S) -> u64 {
    crate::protocol::COIN_LIFETIME_SECS + s.policy().vault_grace_secs
}

fn ids<S: VaultStore>(s: &S, tier: Option<Tier>) -> Vec<KeyId> {
    let mut out = Vec::new();
    must(s.active_ids(tier, &mut |id| out.push(id)), "active_ids");
    out.sort();
    out
}

fn sorted(mut v: Vec<KeyId>) -> Vec<KeyId> {
    v.sort();
    v
}

/// Check that the active counters equal a recount of the ACTIVE entries, tier by tier.
#[track_caller]
pub fn assert_counters_match_recount<S: VaultStore>(s: &S) {
    let stats = must(s.stats(), "stats");
    let mut recount = TierCounts::default();
    for t in Tier::ALL {
        *recount.get_mut(t) = ids(s, Some(t)).len() as u32;
    }
    assert_eq!(stats.active, recount, "active counters drifted from the entries");
    assert_eq!(ids(s, None).len() as u32, recount.total(), "active_ids(None) disagrees with the per-tier lists");
}

/// Store three entries (one per tier) and return their ids.
fn store_one_per_tier<S: VaultStore>(s: &S) -> [KeyId; 3] {
    let bob = &fixtures().bob;
    Tier::ALL.map(|t| {
        let e = bob.vault_entry(t, 0, T0);
        must(s.put(&e), "put");
        e.key_id
    })
}

/// seed `test_store_key_success`: a stored entry reads back ACTIVE.
pub fn store_success<S: VaultStore>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Gold, 0, T0);
    must(s.put(&e), "put");
    assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
    assert_eq!(must(s.get(&e.key_id, T0), "get").as_ref(), Some(&e));
}

/// seed `test_store_key_duplicate_raises`: a second put of the key id is refused and changes
/// nothing.
pub fn store_duplicate_refused<S: VaultStore>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Silver, 0, T0);
    must(s.put(&e), "put");
    let before = must(s.stats(), "stats");
    let mut other = fixtures().bob.vault_entry(Tier::Bronze, 0, T0 + 5);
    other.key_id = e.key_id;
    expect_core(s.put(&other), Error::KeyAlreadyExists, "duplicate put");
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(must(s.get(&e.key_id, T0), "get").as_ref(), Some(&e), "the original entry must be untouched");
}

/// Invalid input (the seed's `test_store_key_invalid_category_raises`; an unknown tier is
/// unrepresentable here, so the bad input is an entry that is not freshly minted): refused with
/// `Malformed`, nothing stored, counters unchanged.
pub fn store_not_fresh_refused<S: VaultStore>(s: &S) {
    let mut burned = fixtures().bob.vault_entry(Tier::Gold, 1, T0);
    must(burned.burn(s.policy(), T0 + 1), "burn the copy");
    expect_core(s.put(&burned), Error::Malformed, "put of a burned entry");
    assert_eq!(must(s.status(&burned.key_id), "status"), None);
    assert_eq!(must(s.stats(), "stats"), VaultStats::default());
}

/// seed `test_store_key_sets_ttl`: usable until the TTL, gone for `get` from then on, expired by
/// the next purge.
pub fn store_sets_ttl<S: VaultStore>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Bronze, 0, T0);
    must(s.put(&e), "put");
    assert!(must(s.get(&e.key_id, T0 + vault_life(s) - 1), "get").is_some());
    assert!(must(s.get(&e.key_id, T0 + vault_life(s)), "get").is_none());
    assert_eq!(must(s.purge(T0 + vault_life(s) - 1), "purge"), PurgeReport::default());
    assert_eq!(must(s.purge(T0 + vault_life(s)), "purge"), PurgeReport { expired: 1, deleted_burned: 0 });
    assert_eq!(must(s.status(&e.key_id), "status"), None);
}

/// seed `test_store_key_increments_stats`.
pub fn store_increments_stats<S: VaultStore>(s: &S) {
    let bob = &fixtures().bob;
    must(s.put(&bob.vault_entry(Tier::Gold, 0, T0)), "put");
    must(s.put(&bob.vault_entry(Tier::Silver, 0, T0)), "put");
    must(s.put(&bob.vault_entry(Tier::Silver, 1, T0)), "put");
    assert_eq!(must(s.stats(), "stats").active, TierCounts([1, 2, 0]));
    assert_counters_match_recount(s);
}

/// seed `test_fetch_existing_key`.
pub fn fetch_existing<S: VaultStore>(s: &S) {
    let [g, _, b] = store_one_per_tier(s);
    let got = must(s.get(&g, T0 + 10), "get").expect("stored key must be found");
    assert_eq!((got.key_id, got.tier, got.status(), got.created_at), (g, Tier::Gold, KeyStatus::Active, T0));
    assert_eq!(must(s.get(&b, T0 + 10), "get").map(|e| e.tier), Some(Tier::Bronze));
}

/// seed `test_fetch_nonexistent_returns_none`.
pub fn fetch_missing_is_none<S: VaultStore>(s: &S) {
    store_one_per_tier(s);
    assert_eq!(must(s.get(&KeyId([0xEE; 16]), T0), "get"), None);
    assert_eq!(must(s.status(&KeyId([0xEE; 16])), "status"), None);
}

/// seed `test_fetch_burned_key_returns_none`.
pub fn fetch_burned_is_none<S: VaultStore>(s: &S) {
    let [g, ..] = store_one_per_tier(s);
    must(s.burn(&g, T0 + 1), "burn");
    assert_eq!(must(s.get(&g, T0 + 2), "get"), None);
    assert_eq!(must(s.status(&g), "status"), Some(KeyStatus::Burned));
}

/// seed `test_fetch_preserves_binary_blobs`: the sealed bytes come back exactly and still open.
pub fn fetch_preserves_blobs<S: VaultStore>(s: &S) {
    let f = fixtures();
    for t in Tier::ALL {
        let e = f.bob.vault_entry(t, 2, T0);
        must(s.put(&e), "put");
        let got = must(s.get(&e.key_id, T0), "get").expect("stored key must be found");
        assert_eq!(got.sealed, e.sealed, "sealed bytes changed in the store");
        let seed = must(got.sealed.open(&f.device_key, &got.key_id, t), "open the stored seed");
        assert_eq!(seed.as_bytes().len(), t.seed_len());
    }
}

/// seed `test_burn_key_success`.
pub fn burn_success<S: VaultStore>(s: &S) {
    let [_, sv, _] = store_one_per_tier(s);
    must(s.burn(&sv, T0 + 3), "burn");
    assert_eq!(must(s.status(&sv), "status"), Some(KeyStatus::Burned));
}

/// seed `test_burn_nonexistent_raises`: `KeyNotFound`, nothing changes.
pub fn burn_missing_refused<S: VaultStore>(s: &S) {
    store_one_per_tier(s);
    let before = must(s.stats(), "stats");
    expect_core(s.burn(&KeyId([0xAB; 16]), T0), Error::KeyNotFound, "burn of a missing key");
    assert_eq!(must(s.stats(), "stats"), before);
}

/// seed `test_burn_already_burned_raises`: `KeyAlreadyBurned`, counters move once only.
pub fn burn_twice_refused<S: VaultStore>(s: &S) {
    let [g, ..] = store_one_per_tier(s);
    must(s.burn(&g, T0 + 1), "burn");
    let after_first = must(s.stats(), "stats");
    expect_core(s.burn(&g, T0 + 2), Error::KeyAlreadyBurned, "second burn");
    assert_eq!(must(s.stats(), "stats"), after_first);
    assert_eq!(after_first.total_burned, 1);
}

/// An ACTIVE key past `expires_at + vault_grace` cannot be burned (`CoinExpired`) and the
/// refusal changes nothing.
pub fn burn_expired_refused<S: VaultStore>(s: &S) {
    let [g, ..] = store_one_per_tier(s);
    let before = must(s.stats(), "stats");
    expect_core(s.burn(&g, T0 + vault_life(s)), Error::CoinExpired, "burn of an expired key");
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(must(s.status(&g), "status"), Some(KeyStatus::Active));
}

/// seed `test_burn_sets_short_ttl`: a burned key is kept for the 60 s grace, then purged.
pub fn burn_grace_then_purged<S: VaultStore>(s: &S) {
    let [g, sv, _] = store_one_per_tier(s);
    let at = T0 + 100;
    must(s.burn(&g, at), "burn");
    assert_eq!(must(s.purge(at + s.policy().burn_grace_secs - 1), "purge"), PurgeReport::default());
    assert_eq!(must(s.status(&g), "status"), Some(KeyStatus::Burned));
    assert_eq!(must(s.purge(at + s.policy().burn_grace_secs), "purge"), PurgeReport { expired: 0, deleted_burned: 1 });
    assert_eq!(must(s.status(&g), "status"), None);
    expect_core(s.burn(&g, at + s.policy().burn_grace_secs + 1), Error::KeyNotFound, "burn after purge");
    // The purge neither touched the other keys nor the counters.
    assert_eq!(must(s.status(&sv), "status"), Some(KeyStatus::Active));
    let stats = must(s.stats(), "stats");
    assert_eq!((stats.active, stats.total_burned, stats.total_expired), (TierCounts([0, 1, 1]), 1, 0));
}

/// seed `test_burn_decrements_active_count`.
pub fn burn_decrements_active<S: VaultStore>(s: &S) {
    let [g, ..] = store_one_per_tier(s);
    must(s.burn(&g, T0 + 1), "burn");
    assert_eq!(must(s.stats(), "stats").active, TierCounts([0, 1, 1]));
    assert_counters_match_recount(s);
}

/// seed `test_burn_increments_burned_count`.
pub fn burn_increments_burned<S: VaultStore>(s: &S) {
    let [g, sv, b] = store_one_per_tier(s);
    for (i, id) in [g, sv, b].iter().enumerate() {
        must(s.burn(id, T0 + 1), "burn");
        assert_eq!(must(s.stats(), "stats").total_burned, i as u64 + 1);
    }
}

/// seed `test_count_active_all_tiers`.
pub fn count_active_all_tiers<S: VaultStore>(s: &S) {
    let bob = &fixtures().bob;
    for i in 0..3 {
        must(s.put(&bob.vault_entry(Tier::Gold, i, T0)), "put");
    }
    must(s.put(&bob.vault_entry(Tier::Silver, 0, T0)), "put");
    assert_eq!(must(s.stats(), "stats").active, TierCounts([3, 1, 0]));
}

/// seed `test_count_active_single_tier`.
pub fn count_active_single_tier<S: VaultStore>(s: &S) {
    let bob = &fixtures().bob;
    must(s.put(&bob.vault_entry(Tier::Gold, 0, T0)), "put");
    must(s.put(&bob.vault_entry(Tier::Gold, 1, T0)), "put");
    assert_eq!(must(s.stats(), "stats").active.get(Tier::Gold), 2);
    assert_eq!(must(s.stats(), "stats").active.get(Tier::Bronze), 0);
}

/// seed `test_count_active_empty_vault` and `test_get_stats_empty`.
pub fn stats_empty<S: VaultStore>(s: &S) {
    assert_eq!(must(s.stats(), "stats"), VaultStats::default());
    assert!(ids(s, None).is_empty());
}

/// seed `test_exists_true` / `test_exists_false`.
pub fn exists<S: VaultStore>(s: &S) {
    let [g, ..] = store_one_per_tier(s);
    assert!(must(s.status(&g), "status").is_some());
    assert!(must(s.status(&KeyId([3; 16])), "status").is_none());
}

/// seed `test_get_all_active_ids`.
pub fn active_ids_all<S: VaultStore>(s: &S) {
    let all = store_one_per_tier(s);
    assert_eq!(ids(s, None), sorted(all.to_vec()));
}

/// seed `test_get_all_active_ids_filtered`.
pub fn active_ids_filtered<S: VaultStore>(s: &S) {
    let [g, sv, b] = store_one_per_tier(s);
    let g2 = fixtures().bob.vault_entry(Tier::Gold, 1, T0);
    must(s.put(&g2), "put");
    assert_eq!(ids(s, Some(Tier::Gold)), sorted(vec![g, g2.key_id]));
    assert_eq!(ids(s, Some(Tier::Silver)), vec![sv]);
    assert_eq!(ids(s, Some(Tier::Bronze)), vec![b]);
}

/// seed `test_get_all_active_ids_excludes_burned`.
pub fn active_ids_exclude_burned<S: VaultStore>(s: &S) {
    let [g, sv, b] = store_one_per_tier(s);
    must(s.burn(&sv, T0 + 1), "burn");
    assert_eq!(ids(s, None), sorted(vec![g, b]));
    assert!(ids(s, Some(Tier::Silver)).is_empty());
}

/// seed `test_purge_expired_removes_old_keys`: a key past its coin's expiry and the vault grace
/// (30 + 14 days after minting) is expired and deleted.
pub fn purge_removes_old<S: VaultStore>(s: &S) {
    let old = fixtures().bob.vault_entry(Tier::Silver, 3, T0);
    must(s.put(&old), "put");
    assert_eq!(must(s.purge(T0 + vault_life(s) - 1), "purge"), PurgeReport::default());
    let report = must(s.purge(T0 + vault_life(s)), "purge");
    assert_eq!(report, PurgeReport { expired: 1, deleted_burned: 0 });
    assert_eq!(must(s.status(&old.key_id), "status"), None);
}

/// seed `test_purge_expired_keeps_recent_keys`.
pub fn purge_keeps_recent<S: VaultStore>(s: &S) {
    let [g, sv, b] = store_one_per_tier(s);
    assert_eq!(must(s.purge(T0 + DAY), "purge"), PurgeReport::default());
    for id in [g, sv, b] {
        assert_eq!(must(s.status(&id), "status"), Some(KeyStatus::Active));
    }
}

/// seed `test_purge_updates_stats`: expiry moves the counters exactly like a burn does.
pub fn purge_updates_stats<S: VaultStore>(s: &S) {
    let bob = &fixtures().bob;
    must(s.put(&bob.vault_entry(Tier::Gold, 0, T0 - 50 * DAY)), "put");
    must(s.put(&bob.vault_entry(Tier::Gold, 1, T0 - vault_life(s))), "put");
    must(s.put(&bob.vault_entry(Tier::Silver, 0, T0)), "put");
    must(s.purge(T0), "purge");
    let stats = must(s.stats(), "stats");
    assert_eq!(stats, VaultStats { active: TierCounts([0, 1, 0]), total_burned: 0, total_expired: 2 });
    assert_counters_match_recount(s);
}

/// seed `test_get_stats_after_operations`.
pub fn stats_after_operations<S: VaultStore>(s: &S) {
    let bob = &fixtures().bob;
    for i in 0..3 {
        must(s.put(&bob.vault_entry(Tier::Bronze, i, T0)), "put");
    }
    let g = bob.vault_entry(Tier::Gold, 0, T0);
    must(s.put(&g), "put");
    must(s.burn(&g.key_id, T0 + 5), "burn");
    must(s.burn(&bob.vault_entry(Tier::Bronze, 0, T0).key_id, T0 + 5), "burn");
    let stats = must(s.stats(), "stats");
    assert_eq!(stats, VaultStats { active: TierCounts([0, 0, 2]), total_burned: 2, total_expired: 0 });
    assert_counters_match_recount(s);
}

/// Counters stay exact across expiry: keys expire while others are burned and purged, and the
/// active counts always equal a recount; totals match what happened.
pub fn counters_exact_after_expiry<S: VaultStore>(s: &S) {
    let bob = &fixtures().bob;
    // Two generations: old keys (created 20 days before T0) and young ones (at T0).
    let old: Vec<_> = (0..3).map(|i| bob.vault_entry(Tier::Silver, i, T0 - 20 * DAY)).collect();
    let young: Vec<_> = (3..6).map(|i| bob.vault_entry(Tier::Silver, i, T0)).collect();
    for e in old.iter().chain(&young) {
        must(s.put(e), "put");
    }
    must(s.burn(&old[0].key_id, T0), "burn old");
    must(s.burn(&young[0].key_id, T0), "burn young");
    assert_counters_match_recount(s);
    // 25 days later the old generation is past its vault deadline (expiry at T0 + 10 days,
    // then the 14-day grace): a burn is refused, the purge expires two (the burned one is only
    // deleted).
    let later = T0 + 25 * DAY;
    expect_core(s.burn(&old[1].key_id, later), Error::CoinExpired, "burn of an expired key");
    assert_counters_match_recount(s);
    assert_eq!(must(s.purge(later), "purge"), PurgeReport { expired: 2, deleted_burned: 2 });
    assert_counters_match_recount(s);
    let stats = must(s.stats(), "stats");
    assert_eq!(stats, VaultStats { active: TierCounts([0, 2, 0]), total_burned: 2, total_expired: 2 });
    // A second purge at the same time is a no-op.
    assert_eq!(must(s.purge(later), "purge"), PurgeReport::default());
    assert_eq!(must(s.stats(), "stats"), stats);
}

/// Refusals change nothing: after a series of bad calls the store equals its state before them.
pub fn bad_input_changes_nothing<S: VaultStore>(s: &S) {
    let [g, sv, b] = store_one_per_tier(s);
    must(s.burn(&b, T0 + 1), "burn");
    let before = must(s.stats(), "stats");
    let listed = ids(s, None);
    let mut dup = fixtures().bob.vault_entry(Tier::Bronze, 5, T0);
    dup.key_id = g;
    expect_core(s.put(&dup), Error::KeyAlreadyExists, "duplicate put");
    expect_core(s.burn(&b, T0 + 2), Error::KeyAlreadyBurned, "second burn");
    expect_core(s.burn(&KeyId([9; 16]), T0 + 2), Error::KeyNotFound, "burn of a missing key");
    expect_core(s.burn(&sv, T0 + vault_life(s)), Error::CoinExpired, "burn of an expired key");
    let mut stale = fixtures().bob.vault_entry(Tier::Gold, 6, T0);
    must(stale.burn(s.policy(), T0), "burn the copy");
    expect_core(s.put(&stale), Error::Malformed, "put of a burned entry");
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(ids(s, None), listed);
    assert_eq!(must(s.status(&b), "status"), Some(KeyStatus::Burned));
    assert_eq!(must(s.status(&stale.key_id), "status"), None);
}
