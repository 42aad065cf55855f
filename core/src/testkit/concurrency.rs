//! Concurrency cases (the seed's `test_concurrency.py`, plus the directory): for `Sync` stores,
//! many threads on one store must see every rule hold as if the calls ran one at a time.
//! Every case takes a fresh, empty store; the caps and quotas it checks come from its policy.

use std::collections::HashSet;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::fixtures::{T0, fixtures, must};
use crate::coin::PublicCoin;
use crate::memory::MemoryStore;
use crate::messaging::{Messenger, SendOptions, SendOutcome};
use crate::pins::Trust;
use crate::store::{
    Direction, DirectoryStore, InventoryStore, PinStore, SessionBlob, SessionStore, SessionVersion, VaultStore,
};
use crate::{DeviceContext, Error, KeyId, Priority, StoreError, Tier, TierCounts, UserId};

pub use super::last_resort::concurrency::*;

/// How long the mixed store/select case runs.
pub const MIXED_RUN: Duration = Duration::from_secs(1);

/// seed `test_concurrent_store_respects_budget`: 10 threads store 10 different GOLD coins for one
/// BESTIE at once; exactly the cap (5 by default) succeed and the others get `BudgetExceeded`.
pub fn store_respects_budget<S: InventoryStore + Sync>(s: &S) {
    let bob = &fixtures().bob;
    let cap = s.policy().cap(Priority::Bestie, Tier::Gold);
    must(s.register_contact(&bob.as_contact(Priority::Bestie, T0)), "register");
    let go = Barrier::new(10);
    let results: Vec<Result<(), Option<Error>>> = thread::scope(|sc| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let go = &go;
                sc.spawn(move || {
                    go.wait();
                    s.store_coin(&bob.id(), bob.coin(Tier::Gold, i), T0).map_err(|e| e.as_core().copied())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("storer thread panicked")).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| **r == Err(Some(Error::BudgetExceeded { tier: Tier::Gold, cap }))).count();
    assert_eq!((ok, refused), (cap as usize, 10 - cap as usize), "results: {results:?}");
    assert_eq!(must(s.counts(&bob.id()), "counts"), TierCounts([cap, 0, 0]));
}

/// seed `test_concurrent_select_no_duplicates`: 5 SILVER coins (fewer if the cap is lower), 10
/// threads select at once; exactly that many get a coin, all different, and the rest get None.
pub fn select_no_duplicates<S: InventoryStore + Sync>(s: &S) {
    let carol = &fixtures().carol;
    must(s.register_contact(&carol.as_contact(Priority::Mate, T0)), "register");
    let n = 5.min(s.policy().cap(Priority::Mate, Tier::Silver) as usize);
    for i in 0..n {
        must(s.store_coin(&carol.id(), carol.coin(Tier::Silver, i), T0), "store");
    }
    let go = Barrier::new(10);
    let got: Vec<Option<KeyId>> = thread::scope(|sc| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let go = &go;
                sc.spawn(move || {
                    go.wait();
                    must(s.select_coin(&carol.id(), Tier::Silver, Tier::Bronze, T0 + 1), "select")
                        .coin
                        .map(|c| c.coin.key_id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("selector thread panicked")).collect()
    });
    let coins: Vec<KeyId> = got.iter().flatten().copied().collect();
    let distinct: HashSet<KeyId> = coins.iter().copied().collect();
    assert_eq!(coins.len(), n, "exactly {n} selections get a coin: {got:?}");
    assert_eq!(distinct.len(), n, "a coin was handed out twice: {got:?}");
    assert_eq!(must(s.counts(&carol.id()), "counts"), TierCounts::default());
}

/// seed `test_concurrent_burn_idempotent`: 5 threads burn one key at once; exactly one succeeds,
/// the others get `KeyAlreadyBurned`, and the counters move once.
pub fn burn_exactly_once<S: VaultStore + Sync>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Gold, 0, T0);
    must(s.put(&e), "put");
    let go = Barrier::new(5);
    let results: Vec<Result<(), Option<Error>>> = thread::scope(|sc| {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                let go = &go;
                let id = e.key_id;
                sc.spawn(move || {
                    go.wait();
                    s.burn(&id, T0 + 1).map_err(|e| e.as_core().copied())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("burner thread panicked")).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| **r == Err(Some(Error::KeyAlreadyBurned))).count();
    assert_eq!((ok, refused), (1, 4), "results: {results:?}");
    let stats = must(s.stats(), "stats");
    assert_eq!((stats.active.total(), stats.total_burned), (0, 1));
}

/// Opening one coin from 5 threads at once (each with its own session record, all creating the
/// receive session): exactly one burn-and-save succeeds, the others get `KeyAlreadyBurned` or
/// `SessionConflict`, and the saved receive session is the winner's.
pub fn burn_and_save_exactly_once<S: SessionStore + Sync>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Silver, 0, T0);
    must(s.put(&e), "put");
    let peer = UserId([0xA1; 16]);
    let go = Barrier::new(5);
    let results: Vec<(u8, Result<SessionVersion, Option<Error>>)> = thread::scope(|sc| {
        let handles: Vec<_> = (0..5u8)
            .map(|n| {
                let go = &go;
                let id = e.key_id;
                sc.spawn(move || {
                    let blob: SessionBlob = core::iter::repeat_n(n, 32).collect();
                    go.wait();
                    (n, s.burn_and_save_session(&id, T0 + 1, &peer, &blob, None).map_err(|e| e.as_core().copied()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("opener thread panicked")).collect()
    });
    let winners: Vec<u8> = results.iter().filter(|(_, r)| r.is_ok()).map(|(n, _)| *n).collect();
    let refused = results
        .iter()
        .filter(|(_, r)| matches!(r, Err(Some(Error::KeyAlreadyBurned | Error::SessionConflict))))
        .count();
    assert_eq!((winners.len(), refused), (1, 4), "results: {results:?}");
    let saved = must(s.load_session(&peer, Direction::Receive), "load").expect("the winner's session is saved");
    assert!(saved.blob.iter().all(|b| *b == winners[0]), "the saved session is not the winner's");
    assert_eq!(saved.version, SessionVersion::FIRST);
    let stats = must(s.stats(), "stats");
    assert_eq!((stats.active.total(), stats.total_burned), (0, 1));
}

/// 6 threads load the same session version and save over it at once: exactly one save wins, the
/// others get `SessionConflict`, and the record is the winner's at the next version. Then 6
/// threads create a record that does not exist yet: again exactly one wins.
pub fn concurrent_saves_one_wins<S: SessionStore + Sync>(s: &S) {
    let peer = UserId([0xA2; 16]);
    let first: SessionBlob = core::iter::repeat_n(0xEE, 40).collect();
    let v1 = must(s.save_session(&peer, Direction::Send, &first, None), "create");
    for (direction, expected) in [(Direction::Send, Some(v1)), (Direction::Receive, None)] {
        let go = Barrier::new(6);
        let results: Vec<(u8, Result<SessionVersion, Option<Error>>)> = thread::scope(|sc| {
            let handles: Vec<_> = (0..6u8)
                .map(|n| {
                    let go = &go;
                    sc.spawn(move || {
                        let blob: SessionBlob = core::iter::repeat_n(n, 64).collect();
                        go.wait();
                        (n, s.save_session(&peer, direction, &blob, expected).map_err(|e| e.as_core().copied()))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("saver thread panicked")).collect()
        });
        let winners: Vec<u8> = results.iter().filter(|(_, r)| r.is_ok()).map(|(n, _)| *n).collect();
        let conflicts = results.iter().filter(|(_, r)| *r == Err(Some(Error::SessionConflict))).count();
        assert_eq!((winners.len(), conflicts), (1, 5), "{direction:?}: {results:?}");
        let saved = must(s.load_session(&peer, direction), "load").expect("saved");
        assert!(saved.blob.iter().all(|b| *b == winners[0]), "{direction:?}: the record is not the winner's");
        let want = match expected {
            Some(v) => SessionVersion(v.0 + 1),
            None => SessionVersion::FIRST,
        };
        assert_eq!(saved.version, want);
    }
}

/// A race of concurrent receives from one peer: Carol sends Bob ten SILVER messages (fewer if
/// the policy's SILVER chain is shorter; the first
/// opens the chain), and 6 threads on Bob's device (the store under test) each try to receive
/// all ten, in different orders, at once. Every message is accepted exactly once across all
/// threads (the others see `Replay`, `KeyAlreadyBurned`, or `NoSession` until the chain opened),
/// and the coin is burned once.
pub fn concurrent_receives_accept_each_once<S, E>(s: &S)
where
    S: InventoryStore<Error = E> + SessionStore + VaultStore<Error = E> + PinStore<Error = E> + Sync,
    E: StoreError,
{
    let f = fixtures();
    let (bob, carol) = (&f.bob, &f.carol);
    let minted = bob.minted(Tier::Silver, 5);
    must(s.put(&minted.vault), "put");
    must(s.pin_identity(carol.identity.public(), Trust::Exchanged), "pin");
    // Carol's own device.
    let carol_store: std::boxed::Box<MemoryStore> = std::boxed::Box::new(MemoryStore::new(s.policy().clone()));
    let carol_dk = crate::crypto::DeviceKey::from_bytes([0xC0; 32]);
    must(carol_store.register_contact(&bob.as_contact(Priority::Bestie, T0)), "register");
    must(carol_store.pin_identity(bob.identity.public(), Trust::Exchanged), "pin");
    must(carol_store.store_coin(&bob.id(), &minted.public, T0), "store");
    let sender = Messenger::new(&*carol_store, &carol.identity, &carol_dk);
    let mut rng = super::fixtures::rng(77);
    // Ten messages, or as many as one SILVER chain carries under the store's policy.
    let n = s.policy().ratchet_limit(Tier::Silver).min(10) as usize;
    let wires: Vec<Vec<u8>> = (0..n as u8)
        .map(|n| {
            let out = must(
                sender.send(
                    &bob.id(),
                    &DeviceContext::OUTDOOR_CELLULAR,
                    &[n; 20],
                    SendOptions::default(),
                    T0,
                    &mut rng,
                ),
                "send",
            );
            let SendOutcome::Sent(sent) = out else { panic!("a coin was cached") };
            must(sent.envelope.to_vec(), "encode")
        })
        .collect();
    let receiver = Messenger::new(s, &bob.identity, &f.device_key);
    let accepted: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let go = Barrier::new(6);
    thread::scope(|sc| {
        for t in 0..6usize {
            let (go, wires, accepted, receiver) = (&go, &wires, &accepted, &receiver);
            sc.spawn(move || {
                let mut rng = super::fixtures::rng(100 + t as u64);
                // Each thread walks the messages in its own rotation, so the opening message is
                // sometimes first, sometimes late.
                let mut todo: Vec<usize> = (0..n).map(|i| (i + t * 3) % n).collect();
                go.wait();
                for _ in 0..200 {
                    if todo.is_empty() {
                        break;
                    }
                    todo.retain(|&i| match receiver.receive(&wires[i], T0 + 1, &mut rng) {
                        Ok(got) => {
                            assert_eq!(got.plaintext.as_slice(), &[i as u8; 20][..]);
                            accepted[i].fetch_add(1, Ordering::SeqCst);
                            false
                        }
                        Err(e) => match e.as_core() {
                            Some(Error::Replay | Error::KeyAlreadyBurned) => false,
                            Some(Error::NoSession | Error::SessionConflict) => true,
                            _ => panic!("thread {t}, message {i}: unexpected error {e}"),
                        },
                    });
                }
                assert!(todo.is_empty(), "thread {t} never settled messages {todo:?}");
            });
        }
    });
    let counts: Vec<u32> = accepted.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, std::vec![1; n], "a message was accepted twice or never");
    let stats = must(s.stats(), "stats");
    assert_eq!(stats.total_burned, 1);
}

/// seed `test_concurrent_store_and_select`: one thread keeps storing (recycling coins once they
/// were selected), another keeps selecting, for [`MIXED_RUN`]. No coin is ever selected while it
/// is not stored, no store is refused for anything but the cap, and at the end the counts equal
/// stores minus selections.
pub fn store_and_select_mixed<S: InventoryStore + Sync>(s: &S) {
    let carol = &fixtures().carol;
    must(s.register_contact(&carol.as_contact(Priority::Mate, T0)), "register");
    let pool: Vec<&PublicCoin> = (0..carol.pool(Tier::Silver))
        .map(|i| carol.coin(Tier::Silver, i))
        .chain((0..carol.pool(Tier::Bronze)).map(|i| carol.coin(Tier::Bronze, i)))
        .collect();
    // in_store[i]: coin i was handed to the store and not yet selected back.
    let in_store: Vec<AtomicBool> = pool.iter().map(|_| AtomicBool::new(false)).collect();
    let stored = AtomicU32::new(0);
    let selected = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + MIXED_RUN;
    let index_of = |id: &KeyId| pool.iter().position(|c| c.key_id == *id);
    thread::scope(|sc| {
        let storer = sc.spawn(|| {
            let mut i = 0;
            while Instant::now() < deadline {
                let n = i % pool.len();
                i += 1;
                if in_store[n].swap(true, Ordering::SeqCst) {
                    continue;
                }
                match s.store_coin(&carol.id(), pool[n], T0) {
                    Ok(()) => {
                        stored.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        in_store[n].store(false, Ordering::SeqCst);
                        assert!(
                            matches!(e.as_core(), Some(Error::BudgetExceeded { .. })),
                            "store refused for another reason than the cap: {e:?}"
                        );
                    }
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
        let selector = sc.spawn(|| {
            let mut tier = Tier::Silver;
            // The deadline bounds the loop even if the storer died.
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline + MIXED_RUN {
                if let Some(c) = must(s.select_coin(&carol.id(), tier, Tier::Bronze, T0 + 1), "select").coin {
                    let n = index_of(&c.coin.key_id).expect("selected coin comes from the pool");
                    assert!(in_store[n].swap(false, Ordering::SeqCst), "coin {:?} selected twice", c.coin.key_id);
                    selected.fetch_add(1, Ordering::SeqCst);
                }
                tier = if tier == Tier::Silver { Tier::Bronze } else { Tier::Silver };
            }
        });
        storer.join().expect("storer thread panicked");
        selector.join().expect("selector thread panicked");
    });
    let held = must(s.counts(&carol.id()), "counts");
    let stores = stored.load(Ordering::SeqCst);
    let selections = selected.load(Ordering::SeqCst);
    assert!(selections > 0, "the selector never got a coin");
    assert_eq!(held.total(), stores - selections, "counts disagree with stores minus selections");
    assert_eq!(held.total() as usize, in_store.iter().filter(|b| b.load(Ordering::SeqCst)).count());
    let caps = s.policy().caps_of(Priority::Mate);
    assert!(Tier::ALL.iter().all(|t| held.get(*t) <= caps.get(*t)), "caps broken: {held:?}");
}

/// Concurrent directory claims never hand a coin out twice: 8 requesters claim 2 coins each of
/// 12 at once; 12 distinct coins are handed out in total and none remains.
pub fn claims_never_duplicate<S: DirectoryStore + Sync>(s: &S) {
    let bob = &fixtures().bob;
    must(s.register_identity(bob.identity.public(), bob.proof()), "register_identity");
    let coins: Vec<PublicCoin> = (0..12).map(|i| bob.coin(Tier::Silver, i).clone()).collect();
    must(s.upload(&bob.id(), &coins, T0), "upload");
    let go = Barrier::new(8);
    let claimed: Vec<Vec<KeyId>> = thread::scope(|sc| {
        let handles: Vec<_> = (0..8u8)
            .map(|r| {
                let go = &go;
                sc.spawn(move || {
                    go.wait();
                    let requester = UserId([0x10 + r; 16]);
                    let got = must(s.claim(&bob.id(), &requester, Tier::Silver, 2, Some([r; 16]), T0), "claim");
                    got.iter().map(|c| c.key_id).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("claimer thread panicked")).collect()
    });
    let all: Vec<KeyId> = claimed.iter().flatten().copied().collect();
    let distinct: HashSet<KeyId> = all.iter().copied().collect();
    assert_eq!(all.len(), 12, "every coin is handed out: {claimed:?}");
    assert_eq!(distinct.len(), 12, "a coin was handed out twice: {claimed:?}");
    assert_eq!(must(s.available(&bob.id()), "available"), TierCounts::default());
}

/// The same claim retried from 4 threads at once (same requester, same idempotency key): every
/// thread gets the same coins, and they are claimed (and counted against the quota) once.
pub fn idempotent_claims_race<S: DirectoryStore + Sync>(s: &S) {
    let quota = s.policy().claim_quota(Tier::Bronze);
    let bob = &fixtures().bob;
    must(s.register_identity(bob.identity.public(), bob.proof()), "register_identity");
    let coins: Vec<PublicCoin> = (0..6).map(|i| bob.coin(Tier::Bronze, i).clone()).collect();
    must(s.upload(&bob.id(), &coins, T0), "upload");
    let requester = UserId([0x77; 16]);
    let go = Barrier::new(4);
    let claimed: Vec<Vec<KeyId>> = thread::scope(|sc| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let go = &go;
                sc.spawn(move || {
                    go.wait();
                    let got = must(s.claim(&bob.id(), &requester, Tier::Bronze, 2, Some([0x55; 16]), T0), "claim");
                    got.iter().map(|c| c.key_id).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("claimer thread panicked")).collect()
    });
    assert_eq!(claimed[0].len(), 2, "{claimed:?}");
    assert!(claimed.iter().all(|c| *c == claimed[0]), "retries returned different coins: {claimed:?}");
    assert_eq!(must(s.available(&bob.id()), "available"), TierCounts([0, 0, 4]));
    // Only 2 of the BRONZE quota (4 by default) were used.
    let more = must(s.claim(&bob.id(), &requester, Tier::Bronze, 4, None, T0 + 1), "claim");
    assert_eq!(more.len() as u32, (quota - 2).min(4));
}
