//! Multi-threaded cases beyond the conformance kit's: a file-backed store shared by threads.
//! Selects racing over every tier with fallback never hand out a coin twice; a plain burn racing
//! burn-and-save of the same key: exactly one wins and the session is saved iff burn-and-save won;
//! stores racing over several contacts and tiers never pass any cap.

use std::collections::HashSet;
use std::sync::Barrier;
use std::thread;

use aqm_core::coin::{self, MintedCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::{Error, KeyId, Policy, Priority, StoreError, Tier};
use aqm_storage_redb::RedbStore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const T0: u64 = 1_700_000_000;

fn mint(owner: &Identity, dk: &DeviceKey, tiers: &[(Tier, usize)], rng: &mut ChaCha20Rng) -> Vec<MintedCoin> {
    tiers
        .iter()
        .flat_map(|(t, n)| std::iter::repeat_n(*t, *n))
        .map(|t| coin::mint(owner, t, dk, T0, rng).expect("mint"))
        .collect()
}

fn store_file() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s =
        RedbStore::open(dir.path().join("t.redb"), Policy::DEFAULT, &DeviceKey::from_bytes([0xC0; 32])).expect("open");
    (dir, s)
}

#[test]
fn racing_selects_with_fallback_never_share_a_coin() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let bob = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    let (_d, s) = store_file();
    s.register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", T0).expect("meta")).expect("register");
    let coins = mint(&bob, &dk, &[(Tier::Gold, 5), (Tier::Silver, 4), (Tier::Bronze, 1)], &mut rng);
    for c in &coins {
        s.store_coin(&bob.user_id(), &c.public, T0).expect("store");
    }
    let go = Barrier::new(6);
    let got: Vec<Vec<(Tier, KeyId)>> = thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let (s, go, bob) = (&s, &go, bob.user_id());
                sc.spawn(move || {
                    go.wait();
                    let want = Tier::ALL[i % 3];
                    let mut mine = Vec::new();
                    while let Some(c) = s.select_coin(&bob, want, Tier::Bronze, T0 + 1).expect("select").coin {
                        assert!(c.coin.tier >= want, "fallback went upward: wanted {want}, got {}", c.coin.tier);
                        mine.push((c.coin.tier, c.coin.key_id));
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let all: Vec<KeyId> = got.iter().flatten().map(|(_, k)| *k).collect();
    let distinct: HashSet<KeyId> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a coin was selected twice");
    // Every BRONZE wanter drained BRONZE; GOLD wanters may take everything, so the union is a
    // subset of the ten cached coins and nothing selected is still cached.
    let counts = s.counts(&bob.user_id()).expect("counts");
    assert_eq!(all.len() as u32 + counts.total(), 10);
    assert!(s.audit().expect("audit").is_consistent());
}

#[test]
fn plain_burn_racing_burn_and_save_has_one_winner() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let bob = Identity::generate(&mut rng);
    let alice = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    let (_d, s) = store_file();
    let coins = mint(&bob, &dk, &[(Tier::Bronze, 8)], &mut rng);
    for c in &coins {
        s.put(&c.vault).expect("put");
    }
    let blob = SessionBlob::from_slice(b"sealed session").expect("blob");
    for (n, c) in coins.iter().enumerate() {
        let k = c.public.key_id;
        let peer = aqm_core::UserId([n as u8; 16]);
        let go = Barrier::new(4);
        let results: Vec<(bool, Result<(), Option<Error>>)> = thread::scope(|sc| {
            // Each opener creates its peer's receive session ("none" = create only if absent).
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let (s, go, blob) = (&s, &go, &blob);
                    sc.spawn(move || {
                        go.wait();
                        let with_session = i % 2 == 0;
                        let r = if with_session {
                            s.burn_and_save_session(&k, T0 + 1, &peer, blob, None).map(|_| ())
                        } else {
                            s.burn(&k, T0 + 1)
                        };
                        (with_session, r.map_err(|e| e.as_core().copied()))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (_, r) in &results {
            if let Err(e) = r {
                assert_eq!(*e, Some(Error::KeyAlreadyBurned));
            }
        }
        let saved = s.load_session(&peer, Direction::Receive).expect("load").is_some();
        assert_eq!(saved, winners[0].0, "session saved iff burn-and-save won");
    }
    let _ = alice;
    let stats = s.stats().expect("stats");
    assert_eq!(stats.total_burned, 8);
    assert_eq!(stats.active.total(), 0);
}

#[test]
fn racing_stores_over_contacts_and_tiers_never_pass_a_cap() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let dk = DeviceKey::random(&mut rng);
    let (_d, s) = store_file();
    let bestie = Identity::generate(&mut rng);
    let mate = Identity::generate(&mut rng);
    s.register_contact(&ContactMeta::new(bestie.user_id(), Priority::Bestie, "b", T0).expect("m")).expect("reg");
    s.register_contact(&ContactMeta::new(mate.user_id(), Priority::Mate, "m", T0).expect("m")).expect("reg");
    let mix = [(Tier::Silver, 9), (Tier::Bronze, 7)];
    let b = mint(&bestie, &dk, &mix, &mut rng);
    let m = mint(&mate, &dk, &mix, &mut rng);
    let jobs: Vec<(aqm_core::UserId, &MintedCoin)> =
        b.iter().map(|c| (bestie.user_id(), c)).chain(m.iter().map(|c| (mate.user_id(), c))).collect();
    let go = Barrier::new(4);
    thread::scope(|sc| {
        for part in jobs.chunks(jobs.len().div_ceil(4)) {
            let (s, go) = (&s, &go);
            sc.spawn(move || {
                go.wait();
                for (who, c) in part {
                    match s.store_coin(who, &c.public, T0) {
                        Ok(()) => {}
                        Err(e) => assert!(matches!(e.as_core(), Some(Error::BudgetExceeded { .. })), "{e}"),
                    }
                }
            });
        }
    });
    let p = Policy::DEFAULT;
    for (who, prio) in [(bestie.user_id(), Priority::Bestie), (mate.user_id(), Priority::Mate)] {
        let held = s.counts(&who).expect("counts");
        for (tier, offered) in mix {
            assert_eq!(held.get(tier), p.cap(prio, tier).min(offered as u32), "{prio} {tier}");
        }
    }
    assert!(s.audit().expect("audit").is_consistent());
}
