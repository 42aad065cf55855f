//! Rule parity: every rule a Lua script restates server-side is driven through the script and
//! through the core's function with the same inputs, edge cases included, and must decide the
//! same. Burn state machine and expiry at `expires_at + vault_grace` (`VaultEntry::burn`), purge
//! (`VaultEntry::purge_action`), cap and freshness check (`inventory::admit`), fallback within a
//! range (`inventory::pick_tier`), the selection's freshness cut (`Policy::coin_is_fresh`), trim
//! of the newest excess (`inventory::trim_plan`) and inactivity (`inventory::is_inactive`).

mod common;

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::inventory::{self, CachedCoin, ContactMeta, TierRange};
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::vault::{KeyStatus, PurgeAction};
use aqm_core::{KeyId, Policy, Priority, StoreError, Tier, TierCounts, UserId, protocol};
use common::{Mint, TestStore};
use redis::Commands;

const BIG: u64 = 1 << 53;

/// Times around every boundary that matters, including past 2^53 where doubles lose precision.
fn around(points: &[u64]) -> Vec<u64> {
    let mut v: Vec<u64> = points
        .iter()
        .flat_map(|p| [p.saturating_sub(1), *p, p.saturating_add(1)])
        .chain([0, 1, BIG - 1, BIG, BIG + 1, BIG + 2, u64::MAX - 1, u64::MAX])
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A policy with the vault grace `ttl` (after a coin's expiry) and the burn grace `grace`.
fn policy(ttl: u64, grace: u64) -> Policy {
    Policy { vault_grace_secs: ttl, burn_grace_secs: grace, ..Policy::DEFAULT }
}

/// When the vault deletes the secret of a coin minted at `created` under a vault grace of `ttl`.
fn deadline(created: u64, ttl: u64) -> u64 {
    protocol::coin_expiry(created).saturating_add(ttl)
}

#[test]
fn burn_script_matches_vault_entry_burn() {
    let mut mint = Mint::new(7);
    let mut checked = 0;
    for ttl in [0, 1, 60, 30 * 86_400, BIG, u64::MAX] {
        let store = TestStore::with_policy("burn-parity", policy(ttl, 60));
        for created in [0, 1, 1_700_000_000, BIG - 1, BIG + 1, u64::MAX - 1] {
            let nows = around(&[created, deadline(created, ttl), protocol::coin_expiry(created)]);
            for now in nows {
                let mut entry = mint.coin(Tier::Bronze, created).vault;
                store.put(&entry).unwrap();
                let want = entry.burn(store.policy(), now);
                let got = store.burn(&entry.key_id, now);
                assert_eq!(
                    got.as_ref().err().and_then(|e| e.as_core()),
                    want.as_ref().err(),
                    "ttl {ttl} created {created} now {now}"
                );
                let status = store.status(&entry.key_id).unwrap();
                assert_eq!(status, Some(entry.status()), "status after burn, ttl {ttl} created {created} now {now}");
                // A second burn: the state machine's answer for the state reached.
                let want2 = entry.burn(store.policy(), now);
                let got2 = store.burn(&entry.key_id, now);
                assert_eq!(got2.as_ref().err().and_then(|e| e.as_core()), want2.as_ref().err());
                checked += 1;
            }
        }
        let audit = store.audit().unwrap();
        assert!(audit.consistent(), "{audit:?}");
    }
    assert!(checked > 100);
}

#[test]
fn purge_script_matches_purge_action() {
    let mut mint = Mint::new(8);
    for (ttl, grace) in [(0, 0), (1, 1), (60, 60), (30 * 86_400, 60), (BIG, BIG), (u64::MAX, u64::MAX)] {
        let pol = policy(ttl, grace);
        let creates = [0, 1_700_000_000, BIG - 1, BIG + 1, u64::MAX - 1];
        let mut nows = around(&creates.iter().map(|c| deadline(*c, ttl)).collect::<Vec<_>>());
        nows.extend(around(&creates.iter().map(|c| c.saturating_add(grace)).collect::<Vec<_>>()));
        nows.sort();
        nows.dedup();
        for now in nows {
            let store = TestStore::with_policy("purge-parity", pol.clone());
            let mut entries = Vec::new();
            for created in creates {
                let active = mint.coin(Tier::Bronze, created).vault;
                store.put(&active).unwrap();
                entries.push(active);
                // A burned twin, burned at `created` when it is still usable then.
                let mut burned = mint.coin(Tier::Silver, created).vault;
                store.put(&burned).unwrap();
                if burned.burn(&pol, created).is_ok() {
                    store.burn(&burned.key_id, created).unwrap();
                }
                entries.push(burned);
            }
            let before = store.stats().unwrap();
            let report = store.purge(now).unwrap();
            let (mut expired, mut deleted) = (0, 0);
            for e in &entries {
                let action = e.purge_action(&pol, now);
                let status = store.status(&e.key_id).unwrap();
                match action {
                    PurgeAction::Keep => {
                        assert_eq!(status, Some(e.status()), "ttl {ttl} grace {grace} now {now} {e:?}")
                    }
                    PurgeAction::Expire => {
                        expired += 1;
                        assert_eq!(status, None, "expire: ttl {ttl} now {now} created {}", e.created_at);
                    }
                    PurgeAction::Delete => {
                        deleted += 1;
                        assert_eq!(status, None, "delete: grace {grace} now {now} {e:?}");
                    }
                }
            }
            assert_eq!(
                (report.expired, report.deleted_burned),
                (expired, deleted),
                "ttl {ttl} grace {grace} now {now}"
            );
            let after = store.stats().unwrap();
            assert_eq!(after.total_expired, before.total_expired + u64::from(expired));
            let audit = store.audit().unwrap();
            assert!(audit.consistent(), "{audit:?}");
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The raw key id of the `i`-th raw coin of `tier`.
fn raw_id(tier: Tier, i: u32) -> KeyId {
    format!("00000000-0000-4000-8000-{:012x}", u64::from(i) + 1 + 1000 * tier.to_byte() as u64).parse().unwrap()
}

/// The index member (hashed coin name; in an unsealed store the hex of contact id ‖ key id).
fn member(contact: &UserId, id: &KeyId) -> String {
    format!("{}{}", hex(contact.as_bytes()), hex(id.as_bytes()))
}

/// Put `n` raw entries into a contact's tier index of an unsealed store, bypassing the cap (to
/// reach states past it): the records the store writes, in clear.
fn raw_fill(store: &TestStore, contact: &UserId, tier: Tier, n: u32) {
    assert!(!store.is_sealed(), "raw states need an unsealed store");
    let mut con = store.raw();
    let c = hex(contact.as_bytes());
    for i in 0..n {
        let id = raw_id(tier, i);
        let idx = store.key(&format!("inv:v4:idx:{c}:{}", tier.as_str()));
        let m = member(contact, &id);
        let seq: u64 = con.incr(store.key("inv:v4:seq"), 1).unwrap();
        let coin = PublicCoin {
            owner: *contact,
            key_id: id,
            tier,
            kind: CoinKind::OneTime,
            expires_at: 2_000_000_000,
            public_key: heapless::Vec::new(),
            signature: heapless::Vec::new(),
        };
        let rec = postcard::to_allocvec(&CachedCoin { coin, seq: 0, fetched_at: 0 }).unwrap();
        let _: () = con.set(store.key(&format!("inv:v4:key:{c}:{m}")), rec).unwrap();
        let _: () = con.zadd(&idx, &m, seq).unwrap();
    }
}

#[test]
fn store_script_matches_admit() {
    let mut mint = Mint::new(9);
    let mut other = Mint::new(10);
    let pol = Policy::DEFAULT;
    let mut cases = 0;
    for tier in Tier::ALL {
        let proto = mint.coin(tier, 0).public;
        let foreign = other.coin(tier, 0).public;
        for prio in [None, Some(Priority::Bestie), Some(Priority::Mate), Some(Priority::Stranger)] {
            let cap = prio.map(|p| pol.cap(p, tier)).unwrap_or(0);
            let mut helds = vec![0, cap.saturating_sub(1), cap, cap + 1];
            helds.dedup();
            for held in helds {
                for (dup, wrong_owner, late) in [
                    (false, false, false),
                    (true, false, false),
                    (false, true, false),
                    (true, true, false),
                    (false, false, true),
                    (true, false, true),
                ] {
                    // `late`: at the coin's selection limit, no longer fresh.
                    let now = if late { proto.expires_at - pol.coin_min_life_secs } else { 10 };
                    let store = TestStore::unsealed("admit-parity", pol.clone());
                    let contact = mint.owner.user_id();
                    let meta = prio.map(|p| ContactMeta::new(contact, p, "c", 5).unwrap());
                    if let Some(m) = &meta {
                        store.register_contact(m).unwrap();
                    }
                    raw_fill(&store, &contact, tier, held);
                    let mut coin: PublicCoin = if wrong_owner { foreign.clone() } else { proto.clone() };
                    coin.key_id = mint.coin(Tier::Bronze, 0).public.key_id;
                    if dup {
                        // The same key id already cached for this contact.
                        let mut con = store.raw();
                        let c = hex(contact.as_bytes());
                        let key = store.key(&format!("inv:v4:key:{c}:{}", member(&contact, &coin.key_id)));
                        let _: () = con.set(&key, "x").unwrap();
                    }
                    let before = store.counts(&contact).unwrap();
                    let want = inventory::admit(&pol, meta.as_ref(), &coin, held, dup, now);
                    let got = store.store_coin(&contact, &coin, now);
                    assert_eq!(
                        got.as_ref().err().map(|e| e.as_core().copied().ok_or(e.to_string())),
                        want.err().map(Ok),
                        "tier {tier} prio {prio:?} held {held} dup {dup} wrong owner {wrong_owner} late {late}"
                    );
                    let after = store.counts(&contact).unwrap();
                    let mut expect = before;
                    if want.is_ok() {
                        *expect.get_mut(tier) += 1;
                    }
                    assert_eq!(after, expect);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases >= 100, "{cases}");
}

#[test]
fn select_script_matches_pick_tier() {
    let mint = Mint::new(11);
    let contact = mint.owner.user_id();
    for pattern in 0..27u32 {
        let held = TierCounts([pattern % 3, pattern / 3 % 3, pattern / 9 % 3]);
        for (desired, lowest) in Tier::ALL.into_iter().flat_map(|d| d.fallback().map(move |l| (d, l))) {
            let store = TestStore::unsealed("pick-parity", Policy::DEFAULT);
            store.register_contact(&ContactMeta::new(contact, Priority::Bestie, "c", 0).unwrap()).unwrap();
            for t in Tier::ALL {
                raw_fill(&store, &contact, t, held.get(t));
            }
            let want = inventory::pick_tier(TierRange { desired, lowest }, &held);
            let got = store.select_coin(&contact, desired, lowest, 1);
            match want {
                None => {
                    assert!(got.unwrap().coin.is_none(), "desired {desired} lowest {lowest} held {held:?}");
                    assert_eq!(store.counts(&contact).unwrap(), held, "an empty selection takes nothing");
                }
                Some(_) => {
                    // Raw fills carry empty keys; a well-formed pop returns the tier, so compare the
                    // counts, which say which tier lost a coin.
                    let _ = got;
                    let after = store.counts(&contact).unwrap();
                    let mut expect = held;
                    *expect.get_mut(want.unwrap()) -= 1;
                    assert_eq!(after, expect, "desired {desired} held {held:?}");
                }
            }
        }
    }
}

#[test]
fn select_returns_the_tier_pick_tier_names() {
    let mut mint = Mint::new(12);
    let contact = mint.owner.user_id();
    for pattern in 0..8u32 {
        let held = TierCounts([pattern & 1, pattern >> 1 & 1, pattern >> 2 & 1]);
        for desired in Tier::ALL {
            let store = TestStore::new("pick-real");
            store.register_contact(&ContactMeta::new(contact, Priority::Bestie, "c", 0).unwrap()).unwrap();
            for t in Tier::ALL {
                for _ in 0..held.get(t) {
                    store.store_coin(&contact, &mint.coin(t, 0).public, 0).unwrap();
                }
            }
            let got = store.select_coin(&contact, desired, Tier::Bronze, 1).unwrap().coin.map(|c| c.coin.tier);
            let want = inventory::pick_tier(TierRange { desired, lowest: Tier::Bronze }, &held);
            assert_eq!(got, want, "desired {desired} held {held:?}");
        }
    }
}

#[test]
fn set_priority_script_matches_trim_plan() {
    let mint = Mint::new(13);
    let contact = mint.owner.user_id();
    let pol = Policy::DEFAULT;
    for from in Priority::ALL {
        for to in Priority::ALL {
            for over in [0, 2] {
                let store = TestStore::unsealed("trim-parity", pol.clone());
                store.register_contact(&ContactMeta::new(contact, from, "c", 0).unwrap()).unwrap();
                // Fill to the old caps plus `over` past them (raw), oldest first.
                let mut held = pol.caps_of(from);
                for t in Tier::ALL {
                    *held.get_mut(t) += over;
                    raw_fill(&store, &contact, t, held.get(t));
                }
                let plan = inventory::trim_plan(&pol, to, &held);
                let evicted = store.set_priority(&contact, to).unwrap();
                assert_eq!(evicted, plan.total(), "{from} -> {to} over {over}");
                let after = store.counts(&contact).unwrap();
                let mut con = store.raw();
                for t in Tier::ALL {
                    assert_eq!(after.get(t), held.get(t) - plan.get(t), "{from} -> {to} {t}");
                    // The survivors are the oldest ones: sequence order intact from the start.
                    let idx = store.key(&format!("inv:v4:idx:{}:{}", hex(contact.as_bytes()), t.as_str()));
                    let left: Vec<String> = con.zrange(&idx, 0, -1).unwrap();
                    let expect: Vec<String> = (0..after.get(t)).map(|i| member(&contact, &raw_id(t, i))).collect();
                    assert_eq!(left, expect);
                }
                assert_eq!(store.contact(&contact).unwrap().unwrap().priority, to);
            }
        }
    }
}

#[test]
fn gc_follows_is_inactive_at_the_boundary() {
    let mut mint = Mint::new(14);
    let pol = Policy::DEFAULT;
    let last = 1_700_000_000;
    for now in around(&[last + pol.gc_inactive_secs]) {
        let store = TestStore::new("gc-parity");
        let contact = mint.owner.user_id();
        store.register_contact(&ContactMeta::new(contact, Priority::Mate, "c", last).unwrap()).unwrap();
        store.store_coin(&contact, &mint.coin(Tier::Bronze, last).public, last).unwrap();
        let report = store.collect_garbage(now, false).unwrap();
        let inactive = inventory::is_inactive(&pol, last, now);
        assert_eq!(report.contacts_cleaned, u32::from(inactive), "now {now}");
        assert_eq!(store.counts(&contact).unwrap().total(), u32::from(!inactive));
        let prio = store.contact(&contact).unwrap().unwrap().priority;
        assert_eq!(prio, if inactive { Priority::Stranger } else { Priority::Mate });
    }
}

#[test]
fn burned_status_is_kept_until_purged() {
    // No Redis TTL on anything: a burned entry stays (as BURNED) until purge decides.
    let store = TestStore::new("no-ttl");
    let mut mint = Mint::new(15);
    let e = mint.coin(Tier::Gold, 100).vault;
    store.put(&e).unwrap();
    store.burn(&e.key_id, 100).unwrap();
    let mut con = store.raw();
    let key = store.all_keys().into_iter().find(|k| k.contains(":vault:v4:key:")).expect("the entry");
    let ttl: i64 = con.ttl(&key).unwrap();
    assert_eq!(ttl, -1, "no Redis TTL on vault entries");
    // The secret is dropped at burn time.
    let blob: Option<Vec<u8>> = con.hget(&key, "encrypted_blob").unwrap();
    assert_eq!(blob, None);
    assert_eq!(store.status(&e.key_id).unwrap(), Some(KeyStatus::Burned));
}

#[test]
fn select_drops_exactly_the_coins_the_core_calls_stale() {
    let mut mint = Mint::new(16);
    let contact = mint.owner.user_id();
    let pol = Policy::DEFAULT;
    let coin = mint.coin(Tier::Silver, 1_700_000_000).public;
    let limit = coin.expires_at - pol.coin_min_life_secs;
    for now in around(&[limit]) {
        if now > limit + 1 || now + 1 < limit {
            continue;
        }
        let store = TestStore::new("fresh-parity");
        store.register_contact(&ContactMeta::new(contact, Priority::Bestie, "c", 0).unwrap()).unwrap();
        store.store_coin(&contact, &coin, 1_700_000_000).unwrap();
        let sel = store.select_coin(&contact, Tier::Silver, Tier::Silver, now).unwrap();
        let fresh = pol.coin_is_fresh(coin.expires_at, now);
        assert_eq!((sel.coin.is_some(), sel.wasted), (fresh, u32::from(!fresh)), "now {now} limit {limit}");
        assert_eq!(store.counts(&contact).unwrap(), TierCounts::default());
    }
}
