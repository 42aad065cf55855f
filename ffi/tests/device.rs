//! `AqmDevice` through its Rust API: real redb files in temp dirs (and Redis at 127.0.0.1:6379),
//! real crypto. The same scenarios run from Python (`ffi/python/tests`) and C (`ffi/examples`).

use std::sync::Arc;

use aqm_ffi::{AqmContext, AqmDevice, AqmError, AqmPriority, AqmSendOutcome, AqmSent, AqmTier, AqmTierCounts};

const HOME: AqmContext = AqmContext { battery_pct: 85, wifi: true, signal_dbm: -60 };
const OUTDOOR: AqmContext = AqmContext { battery_pct: 60, wifi: false, signal_dbm: -85 };
const UNDERGROUND: AqmContext = AqmContext { battery_pct: 40, wifi: false, signal_dbm: -110 };

fn open(dir: &tempfile::TempDir, name: &str, key: u8) -> Arc<AqmDevice> {
    AqmDevice::open(format!("redb://{}", dir.path().join(name).display()), vec![key; 32]).unwrap()
}

/// Alice and Bob, each the other's BESTIE, with `g/s/b` of Bob's coins in Alice's inventory.
fn pair(dir: &tempfile::TempDir, g: u32, s: u32, b: u32) -> (Arc<AqmDevice>, Arc<AqmDevice>) {
    let (alice, bob) = (open(dir, "alice.redb", 1), open(dir, "bob.redb", 2));
    assert!(alice.add_contact(bob.user_id(), bob.public_identity().unwrap(), AqmPriority::Bestie).unwrap());
    assert!(bob.add_contact(alice.user_id(), alice.public_identity().unwrap(), AqmPriority::Bestie).unwrap());
    let coins = bob.mint(g, s, b).unwrap();
    assert_eq!(alice.cache_coins(bob.user_id(), coins).unwrap(), g + s + b);
    (alice, bob)
}

fn sent(o: AqmSendOutcome) -> AqmSent {
    match o {
        AqmSendOutcome::Sent { sent } => sent,
        other => panic!("expected a sent message, got {other:?}"),
    }
}

#[test]
fn conversation_across_tiers_burns_each_coin_once() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(&dir, 1, 1, 1);
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts { gold: 1, silver: 1, bronze: 1 });
    let gold = sent(alice.send(bob.user_id(), b"home".to_vec(), HOME, false).unwrap());
    assert_eq!((gold.tier, gold.rekeyed, gold.post_quantum), (AqmTier::Gold, true, true));
    let got = bob.receive(gold.envelope.clone()).unwrap();
    assert_eq!(
        (got.plaintext.as_slice(), got.sender.clone(), got.tier),
        (&b"home"[..], alice.user_id(), AqmTier::Gold)
    );
    assert!(!got.unverified);
    // Burn after open: the same envelope again is refused, and the vault counted the burn.
    assert!(matches!(
        bob.receive(gold.envelope),
        Err(AqmError::KeyAlreadyBurned { .. }) | Err(AqmError::Replay { .. })
    ));
    assert_eq!(bob.vault_stats().unwrap().total_burned, 1);
    // A follow-up rides the open GOLD chain (no coin used).
    let next = sent(alice.send(bob.user_id(), b"again".to_vec(), OUTDOOR, false).unwrap());
    assert_eq!((next.tier, next.rekeyed), (AqmTier::Gold, false));
    assert_eq!(bob.receive(next.envelope).unwrap().plaintext, b"again");
    // Bob answers on a chain of his own: he holds none of Alice's coins.
    match bob.send(alice.user_id(), b"hi".to_vec(), UNDERGROUND, false).unwrap() {
        AqmSendOutcome::NeedCoin { desired, lowest, .. } => {
            assert_eq!((desired, lowest), (AqmTier::Bronze, AqmTier::Bronze))
        }
        other => panic!("{other:?}"),
    }
    let coin = alice.mint(0, 0, 1).unwrap().remove(0);
    let reply = bob.send_with_coin(alice.user_id(), coin, b"hi".to_vec()).unwrap();
    assert_eq!((reply.tier, reply.post_quantum), (AqmTier::Bronze, false));
    assert_eq!(alice.receive(reply.envelope).unwrap().plaintext, b"hi");
    let stats = bob.vault_stats().unwrap();
    assert_eq!((stats.active.gold, stats.active.silver, stats.active.bronze), (0, 1, 1));
    let report = alice.storage_report().unwrap();
    assert_eq!(report.contacts, 1);
    assert!(report.total_bytes > 0 && !report.over_budget);
    // Sealed, every cached coin also holds a 28-byte nonce and tag and a 32-byte name.
    assert!(report.stored_bytes > report.total_bytes, "{report:?}");
}

#[test]
fn the_identity_survives_reopening_and_needs_its_device_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&dir, "d.redb", 7);
    let (id, public) = (first.user_id(), first.public_identity().unwrap());
    let sealed = first.identity().unwrap();
    assert_eq!(sealed.len(), aqm_ffi::identity::SEALED_IDENTITY_LEN);
    drop(first);
    let again = open(&dir, "d.redb", 7);
    assert_eq!((again.user_id(), again.public_identity().unwrap()), (id, public));
    drop(again);
    let url = format!("redb://{}", dir.path().join("d.redb").display());
    assert!(matches!(AqmDevice::open(url.clone(), vec![8; 32]), Err(AqmError::SealBroken { .. })));
    assert!(matches!(AqmDevice::open(url, vec![7; 31]), Err(AqmError::BadDeviceKey { got: 31, .. })));
    assert!(matches!(AqmDevice::open("ftp://x".into(), vec![7; 32]), Err(AqmError::InvalidUrl { .. })));
}

#[test]
fn a_backed_up_identity_restores_into_a_new_store_only() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(&dir, 0, 0, 0);
    let backup = bob.identity().unwrap();
    let url = |name: &str| format!("redb://{}", dir.path().join(name).display());
    // The wrong device key does not open the backup; another user's store is refused; nothing
    // is written either way.
    assert!(matches!(
        AqmDevice::restore(url("new.redb"), vec![9; 32], backup.clone()),
        Err(AqmError::SealBroken { .. })
    ));
    let other = open(&dir, "other.redb", 2);
    drop(other);
    assert!(matches!(
        AqmDevice::restore(url("other.redb"), vec![2; 32], backup.clone()),
        Err(AqmError::IdMismatch { .. })
    ));
    assert!(AqmDevice::restore(url("x.redb"), vec![2; 32], vec![1; 10]).is_err());
    drop(bob);
    // On a new phone: the same user, who can mint and receive again (old coins are gone).
    let restored = AqmDevice::restore(url("new.redb"), vec![2; 32], backup.clone()).unwrap();
    assert_eq!(restored.identity().unwrap().len(), backup.len());
    assert_eq!(restored.public_identity().unwrap(), open(&dir, "bob.redb", 2).public_identity().unwrap());
    let coins = restored.mint(0, 1, 0).unwrap();
    alice.cache_coins(restored.user_id(), coins).unwrap();
    restored.add_contact(alice.user_id(), alice.public_identity().unwrap(), AqmPriority::Bestie).unwrap();
    let sent = sent(alice.send(restored.user_id(), b"welcome back".to_vec(), HOME, false).unwrap());
    assert_eq!(restored.receive(sent.envelope).unwrap().plaintext, b"welcome back");
    // Restoring again into the same store is a no-op.
    drop(restored);
    assert!(AqmDevice::restore(url("new.redb"), vec![2; 32], backup).is_ok());
}

#[test]
fn bad_input_gets_typed_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(&dir, 0, 1, 0);
    let before = bob.vault_stats().unwrap();
    for garbage in [vec![], vec![0xff; 10], vec![2; 300], vec![0; 70_000]] {
        let e = bob.receive(garbage).unwrap_err();
        assert!(
            matches!(
                e,
                AqmError::Malformed { .. } | AqmError::UnsupportedVersion { .. } | AqmError::EnvelopeTooLarge { .. }
            ),
            "{e:?}"
        );
    }
    assert!(matches!(alice.inventory(vec![1, 2, 3]), Err(AqmError::BadLength { expected: 16, got: 3, .. })));
    assert!(matches!(alice.add_contact(vec![9; 16], vec![1, 2], AqmPriority::Mate), Err(AqmError::Malformed { .. })));
    assert!(matches!(
        alice.add_contact(vec![9; 16], bob.public_identity().unwrap(), AqmPriority::Mate),
        Err(AqmError::IdMismatch { .. })
    ));
    assert!(matches!(alice.cache_coins(bob.user_id(), vec![vec![0xC1, 0]]), Err(AqmError::Malformed { .. })));
    assert!(matches!(
        alice.send(bob.user_id(), vec![0; 5000], HOME, false),
        Err(AqmError::MessageTooLarge { max: 4096, .. })
    ));
    assert!(matches!(alice.send(vec![5; 16], b"x".to_vec(), HOME, false), Err(AqmError::IdentityNotPinned { .. })));
    // A tampered envelope does not open and burns nothing.
    let mut env = sent(alice.send(bob.user_id(), b"secret".to_vec(), HOME, false).unwrap()).envelope;
    let last = env.len() - 1;
    env[last] ^= 1;
    assert!(matches!(bob.receive(env.clone()), Err(AqmError::DecryptFailed { .. })));
    assert_eq!(bob.vault_stats().unwrap(), before);
    env[last] ^= 1;
    assert_eq!(bob.receive(env).unwrap().plaintext, b"secret");
}

#[test]
fn forged_and_foreign_coins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(&dir, 0, 0, 0);
    let carol = open(&dir, "carol.redb", 3);
    let mut coin = bob.mint(0, 1, 0).unwrap().remove(0);
    let n = coin.len();
    coin[n - 5] ^= 0x01; // inside the signature
    assert!(matches!(alice.cache_coins(bob.user_id(), vec![coin.clone()]), Err(AqmError::BadSignature { .. })));
    assert!(matches!(alice.send_with_coin(bob.user_id(), coin, b"x".to_vec()), Err(AqmError::BadSignature { .. })));
    let carols = carol.mint(0, 1, 0).unwrap();
    assert!(matches!(alice.cache_coins(bob.user_id(), carols), Err(AqmError::WrongOwner { .. })));
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts::default());
}

#[test]
fn many_threads_send_at_once_and_every_message_opens_once() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(&dir, 5, 4, 1);
    let envelopes: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (alice, to) = (alice.clone(), bob.user_id());
                s.spawn(move || {
                    (0..3)
                        .map(|i| {
                            let text = format!("t{t} m{i}").into_bytes();
                            loop {
                                match alice.send(to.clone(), text.clone(), HOME, false) {
                                    Ok(o) => break sent(o).envelope,
                                    Err(AqmError::SessionConflict { .. }) => continue,
                                    Err(e) => panic!("{e:?}"),
                                }
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(envelopes.len(), 24);
    // Deliver first messages of chains first (a later message of a chain needs its first).
    let mut pending = envelopes;
    let mut opened = std::collections::HashSet::new();
    for _ in 0..24 {
        pending.retain(|e| match bob.receive(e.clone()) {
            Ok(r) => {
                assert!(opened.insert(r.plaintext));
                false
            }
            Err(AqmError::NoSession { .. }) => true,
            Err(e) => panic!("{e:?}"),
        });
    }
    assert!(pending.is_empty());
    assert_eq!(opened.len(), 24);
    // Sends to one contact take turns: one chain (GOLD carries 25 messages), so one coin spent
    // and none lost to a racer.
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts { gold: 4, silver: 4, bronze: 1 });
}

#[test]
fn housekeeping_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = pair(&dir, 0, 2, 0);
    let now = aqm_ffi::unix_now();
    assert_eq!(bob.purge(now).unwrap().expired, 0);
    // Far in the future Bob's unopened coins are past their life.
    assert_eq!(bob.purge(now + 60 * 86_400).unwrap().expired, 2);
    let dry = alice.collect_garbage(now + 40 * 86_400, true).unwrap();
    assert_eq!((dry.contacts_cleaned, dry.keys_deleted), (1, 2));
    assert_eq!(alice.inventory(bob.user_id()).unwrap().silver, 2);
    assert_eq!(alice.set_priority(bob.user_id(), AqmPriority::Stranger).unwrap(), 2);
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts::default());
    assert!(alice.safety_number(bob.user_id()).unwrap() == bob.safety_number(alice.user_id()).unwrap());
}

#[test]
fn redis_url_picks_the_redis_store() {
    let run: u64 = rand::random();
    let url = |who: &str| format!("redis://127.0.0.1:6379/0?prefix=aqm-ffi-test-{run:016x}-{who}");
    let alice = AqmDevice::open(url("alice"), vec![1; 32]).unwrap();
    let bob = AqmDevice::open(url("bob"), vec![2; 32]).unwrap();
    alice.add_contact(bob.user_id(), bob.public_identity().unwrap(), AqmPriority::Mate).unwrap();
    bob.add_contact(alice.user_id(), alice.public_identity().unwrap(), AqmPriority::Mate).unwrap();
    alice.cache_coins(bob.user_id(), bob.mint(0, 1, 0).unwrap()).unwrap();
    let m = sent(alice.send(bob.user_id(), b"over redis".to_vec(), HOME, false).unwrap());
    assert_eq!(m.tier, AqmTier::Silver);
    assert_eq!(bob.receive(m.envelope.clone()).unwrap().plaintext, b"over redis");
    assert!(matches!(bob.receive(m.envelope), Err(AqmError::KeyAlreadyBurned { .. })));
    // Reopening finds the same identity in Redis.
    let id = bob.user_id();
    drop(bob);
    assert_eq!(AqmDevice::open(url("bob"), vec![2; 32]).unwrap().user_id(), id);
    assert!(matches!(AqmDevice::open(url("bob"), vec![3; 32]), Err(AqmError::SealBroken { .. })));
}
