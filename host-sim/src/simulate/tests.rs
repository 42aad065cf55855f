//! The engine's accounting against small populations computed by hand, and its invariants on a
//! generated one.

use aqm_core::{DeviceContext, Policy, Priority, TierCounts};

use super::engine::{Behaviour, Conversation, Engine, Partner};
use super::population::{Contact, DAY, Population, Routine, Shape, User};
use super::tally::Tally;

fn user(ctx: DeviceContext) -> User {
    User { routine: Routine::Fixed(ctx), wake_hour: 7, drain_pct_per_hour: 0, signal_dbm: -80, maintenance_hour: 3 }
}

/// Alice (0) and Bob (1), BESTIEs both ways; Alice's device always in `ctx`.
fn pair(ctx: DeviceContext, idle_secs: u64) -> Engine {
    pair_under(Policy::DEFAULT, ctx, idle_secs)
}

fn pair_under(policy: Policy, ctx: DeviceContext, idle_secs: u64) -> Engine {
    let contacts = vec![
        Contact { owner: 0, peer: 1, priority: Priority::Bestie, dormant: false, idle_secs },
        Contact { owner: 1, peer: 0, priority: Priority::Bestie, dormant: false, idle_secs },
    ];
    let population = Population { users: vec![user(ctx), user(DeviceContext::HOME_WIFI)], contacts };
    // Bob keeps half his contact's caps in the directory (3 GOLD, 2 SILVER, 1 BRONZE), nothing
    // extra; no priority changes; no chain open at the start.
    let behaviour = Behaviour {
        stock_floor: TierCounts::default(),
        priority_changes_per_day: 0.0,
        warm_chains: false,
        ..Behaviour::default()
    };
    Engine::new(policy, behaviour, population, 1).unwrap()
}

fn alice_writes(engine: &mut Engine, day: u32, messages: u32) {
    let c = Conversation { from: 0, with: Partner::Contact(0), hour: 12, sent: messages, replies: 0 };
    engine.run_day(day, &[c], || {});
}

#[test]
fn one_gold_kem_carries_twenty_five_messages() {
    let mut e = pair(DeviceContext::HOME_WIFI, 0);
    alice_writes(&mut e, 0, 30);
    let t = &e.tally;
    // Messages 1 and 26 open GOLD chains (limit 25); the other 28 ride them.
    assert_eq!((t.messages, t.messages_by_tier, t.rekeys), (30, [30, 0, 0], [2, 0, 0]));
    assert_eq!(t.kem_per_message(), 2.0 / 30.0);
    assert_eq!((t.burned, t.fallbacks, t.failed), ([2, 0, 0], 0, 0));
    // Day 0's maintenance (03:00) ran before the messages: nothing to fetch or mint yet.
    assert_eq!((t.claimed_prefetch, t.minted), ([0, 0, 0], [0, 0, 0]));
    // Day 1 at 03:00: Alice claims her 2 GOLD deficit from Bob's stock of 3, and Bob (after her,
    // same hour) mints 2 GOLD to get back to 3. One claim request, one upload.
    e.run_day(1, &[], || {});
    let t = &e.tally;
    assert_eq!((t.claimed_prefetch, t.minted, t.prefetch_claims), ([2, 0, 0], [2, 0, 0], 1));
    assert_eq!(e.hours[24 + 3].uploads, 1);
    assert_eq!(e.hours[24 + 3].coins_claimed, 2);
    assert_eq!(t.vault_misses, 0);
}

#[test]
fn gold_runs_out_and_falls_back_to_silver() {
    let mut e = pair(DeviceContext::HOME_WIFI, 0);
    // 5 GOLD chains of 25, then the 126th message wants GOLD and opens SILVER.
    alice_writes(&mut e, 0, 130);
    let t = &e.tally;
    assert_eq!((t.rekeys, t.fallbacks, t.messages_by_tier), ([5, 1, 0], 1, [125, 5, 0]));
    assert_eq!(t.rekeys_on_demand, [0, 0, 0]);
}

#[test]
fn silver_stops_at_silver_on_demand_then_rides_the_last_resort_coin() {
    let mut e = pair(DeviceContext::OUTDOOR_CELLULAR, 0);
    // 4 cached SILVER chains of 10; then NeedCoin: 2 SILVER on demand from Bob's stock; then no
    // one-time SILVER coin is left, and BRONZE is not allowed without allow_classical: the
    // directory hands out Bob's SILVER last-resort coin, and it opens a chain (not burned).
    alice_writes(&mut e, 0, 62);
    let t = &e.tally;
    assert_eq!((t.messages, t.rekeys, t.rekeys_on_demand), (62, [0, 7, 0], [0, 3, 0]));
    assert_eq!((t.claimed_on_demand, t.failed, t.burned), ([0, 2, 0], 0, [0, 6, 0]));
    assert_eq!((t.last_resort_handed_out, t.last_resort_chains), ([0, 1, 0], [0, 1, 0]));
    assert_eq!(e.hours[12].on_demand, 3, "two claims that found a one-time coin, one the last-resort coin");
}

#[test]
fn the_last_resort_coin_serves_until_the_quota_then_sends_fail() {
    let mut e = pair(DeviceContext::OUTDOOR_CELLULAR, 0);
    // 40 cached, 20 on two on-demand coins, then the last-resort coin for every chain after —
    // handed out again each time, each a quota use: SILVER's quota of 6 allows 4 of them (40
    // messages); the next two sends are refused by the quota and fail.
    alice_writes(&mut e, 0, 102);
    let t = &e.tally;
    assert_eq!((t.messages, t.failed, t.quota_refusals), (100, 2, 2));
    assert_eq!((t.last_resort_chains, t.last_resort_refused, t.last_resort_retired), ([0, 4, 0], 0, [0, 0, 0]));
    assert_eq!(t.burned, [0, 6, 0], "only the one-time coins burn");
}

#[test]
fn a_full_record_retires_the_last_resort_coin_until_the_owner_renews_it() {
    // Two opens fill a record: the second retires the coin. The directory still hands it out
    // (it cannot know), and Bob's vault refuses the next two first messages (quota uses 5 and 6);
    // then the quota refuses. Bob's next maintenance (day 1, 03:00) finds no live last-resort
    // coin (due) and publishes a new one with his new one-time stock; once Alice has used that
    // stock, the new coin opens a chain again.
    let policy = Policy { last_resort_max_opens: 2, ..Policy::DEFAULT };
    let mut e = pair_under(policy, DeviceContext::OUTDOOR_CELLULAR, 0);
    alice_writes(&mut e, 0, 60 + 30);
    let t = &e.tally;
    assert_eq!((t.last_resort_chains, t.last_resort_retired, t.last_resort_refused), ([0, 2, 0], [0, 1, 0], 2));
    assert_eq!((t.messages, t.failed), (80, 10));
    let minted = t.last_resort_minted;
    alice_writes(&mut e, 1, 21);
    let t = &e.tally;
    assert_eq!(t.last_resort_minted[1], minted[1] + 1, "renewed after retiring");
    assert_eq!((t.messages, t.failed, t.claimed_on_demand), (101, 10, [0, 4, 0]));
    assert_eq!(e.tally.last_resort_chains, [0, 3, 0]);
}

#[test]
fn an_inactive_contact_is_collected_after_thirty_days() {
    // Idle 29 days 20 hours at the start: 29 days 23 hours at day 0's 03:00 (still active), past
    // 30 days at day 1's.
    let mut e = pair(DeviceContext::HOME_WIFI, 30 * DAY - 4 * 3600);
    e.run_day(0, &[], || {});
    assert_eq!(e.tally.gc_contacts_cleaned, 0);
    e.run_day(1, &[], || {});
    e.finish();
    let t = &e.tally;
    // Both sides are collected with their full BESTIE inventories (5 + 4 + 1 each).
    assert_eq!((t.gc_contacts_cleaned, t.gc_keys_deleted), (2, 20));
    assert_eq!(t.wasted_gc, [10, 8, 2]);
    // A third night counts nothing again.
    e.run_day(2, &[], || {});
    assert_eq!(e.tally.gc_contacts_cleaned, 2);
}

fn generated(seed: u64) -> Tally {
    let shape = Shape { users: 400, besties: 2, mates: 5, dormant: 0.2 };
    let mut e = Engine::new(Policy::DEFAULT, Behaviour::default(), Population::generate(&shape, seed), seed).unwrap();
    for day in 0..6 {
        let c = e.draw_day(5.0, 5.0, 0.05);
        e.run_day(day, &c, || {});
    }
    e.finish();
    e.tally.clone()
}

#[test]
fn a_generated_population_keeps_every_account_balanced() {
    let t = generated(3);
    assert!(t.messages > 10_000, "{t:?}");
    assert_eq!(t.messages, t.messages_by_tier.iter().sum::<u64>());
    // Every chain opened burned exactly one coin in its receiver's vault, or was opened by a
    // last-resort coin (recorded, not burned), which only an on-demand fetch hands out.
    for i in 0..3 {
        assert_eq!(t.rekeys[i], t.burned[i] + t.last_resort_chains[i], "tier {i}");
        assert_eq!(t.rekeys_on_demand[i], t.claimed_on_demand[i] + t.last_resort_chains[i], "tier {i}");
    }
    assert_eq!(t.vault_misses, 0);
    // Vault counters (VaultStats::apply) agree with the flows: start + minted − burned − expired,
    // one-time and last-resort coins alike (a retired last-resort coin counts as burned).
    for i in 0..3 {
        assert_eq!(
            t.vault_active_end[i]
                + t.burned[i]
                + t.expired_vault[i]
                + t.last_resort_retired[i]
                + t.last_resort_expired[i],
            t.vault_active_start[i] + t.minted[i] + t.last_resort_minted[i],
            "tier {i}"
        );
    }
    // Every owner keeps one per published tier, renewed every few days.
    assert!(t.last_resort_minted.iter().all(|m| *m > 0), "{t:?}");
    assert!(t.gc_contacts_cleaned > 0 && t.rekeys_on_demand[2] > 0 && t.minted.iter().all(|m| *m > 0));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    assert_eq!(generated(5), generated(5));
    assert_ne!(generated(5), generated(6));
}
