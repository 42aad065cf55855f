//! Last-resort coins end to end on the reference store (issue 14): a directory with no one-time
//! coin left still lets a new contact reach the owner, a second use of the same last-resort coin
//! opens with a different ciphertext, a replayed first message is refused, the coin retires when
//! its record is full, and it is never cached.

mod common;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::inventory::{ContactMeta, TierRange};
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::SendOptions;
use aqm_core::store::{DirectoryStore, InventoryStore, VaultStore};
use aqm_core::vault::{self, KeyStatus};
use aqm_core::{DeviceContext, Error, Policy, Priority, Tier, TierCounts};
use common::{Party, on_big_stack, wire};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CTX: DeviceContext = DeviceContext::HOME_WIFI;

/// A directory that knows `owner`, holding `owner`'s last-resort BRONZE coin (in its vault too)
/// and no one-time coin.
fn dry_directory(owner: &Party, rng: &mut ChaCha20Rng) -> (Box<MemoryStore>, PublicCoin) {
    let directory = common::new_store();
    directory.register_identity(owner.id.public(), &owner.id.registration_proof(rng).unwrap()).unwrap();
    let lr = coin::mint_last_resort(&owner.id, Tier::Bronze, &owner.dk, 0, rng).unwrap();
    owner.store.put(&lr.vault).unwrap();
    assert_eq!(directory.upload(&owner.me(), core::slice::from_ref(&lr.public), 0).unwrap(), 1);
    assert_eq!(directory.available(&owner.me()).unwrap(), TierCounts::default(), "last-resort coins are not counted");
    (directory, lr.public)
}

#[test]
fn a_dry_directory_still_reaches_the_owner_and_replays_are_refused() {
    on_big_stack(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(140);
        let (alice, bob, carol) = (Party::new(&mut rng), Party::new(&mut rng), Party::new(&mut rng));
        let (directory, lr) = dry_directory(&bob, &mut rng);
        for sender in [&alice, &carol] {
            sender.messenger().pin_from_directory(&*directory, &bob.me()).unwrap();
            bob.know(sender);
        }

        // Alice, a new contact, reaches Bob through his last-resort coin.
        let a = alice.messenger();
        let sent = a.send_or_fetch(&*directory, &bob.me(), &CTX, b"hi bob", SendOptions::default(), None, 10, &mut rng);
        let sent = sent.unwrap().expect("the last-resort coin is handed out");
        assert!(sent.last_resort && sent.rekeyed);
        assert_eq!(sent.envelope.chain, lr.key_id);
        let first = wire(&sent);
        let got = bob.receive(&first, &mut rng).unwrap();
        assert!(got.last_resort && got.rekeyed);
        assert_eq!(&got.plaintext[..], b"hi bob");
        assert_eq!(bob.store.status(&lr.key_id).unwrap(), Some(KeyStatus::Active), "opening it burns nothing");

        // A replay of that first message is refused and changes nothing.
        let before = bob.recv_blob(&alice);
        assert_eq!(bob.receive(&first, &mut rng).unwrap_err(), Error::Replay);
        assert_eq!(bob.recv_blob(&alice), before);

        // Carol, another new contact, uses the same coin: a different KEM ciphertext opens.
        let c = carol.messenger();
        let sent =
            c.send_or_fetch(&*directory, &bob.me(), &CTX, b"hi from carol", SendOptions::default(), None, 10, &mut rng);
        let sent = sent.unwrap().unwrap();
        assert!(sent.last_resort);
        assert_eq!(&bob.receive(&wire(&sent), &mut rng).unwrap().plaintext[..], b"hi from carol");

        // Alice opens a second chain on the same coin (the directory is still dry): it works,
        // and the chain's later messages follow it.
        let coin = a.fetch_on_demand(&*directory, &bob.me(), TierRange::only(Tier::Bronze), None, 10).unwrap().unwrap();
        assert_eq!(coin.key_id, lr.key_id);
        let again = a.send_with_coin(&bob.me(), &coin, Tier::Bronze, b"again", 10, &mut rng).unwrap();
        assert!(again.last_resort);
        assert_ne!(again.envelope.rekey, None);
        assert_eq!(&bob.receive(&wire(&again), &mut rng).unwrap().plaintext[..], b"again");
        let next = alice.send(&bob, &CTX, b"on the second chain", &mut rng);
        assert!(!next.last_resort && !next.rekeyed);
        assert_eq!(&bob.receive(&wire(&next), &mut rng).unwrap().plaintext[..], b"on the second chain");
        // The first chain's opening message is still a replay.
        assert_eq!(bob.receive(&first, &mut rng).unwrap_err(), Error::Replay);
        assert_eq!(bob.store.stats().unwrap().total_burned, 0);
    });
}

#[test]
fn one_time_coins_go_first_and_the_coin_retires_when_its_record_is_full() {
    on_big_stack(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(141);
        let policy = Policy { last_resort_max_opens: 2, ..Policy::DEFAULT };
        let bob = Party { store: Box::new(MemoryStore::new(policy.clone())), ..Party::new(&mut rng) };
        let (directory, lr) = dry_directory(&bob, &mut rng);
        let one_time = bob.mint(Tier::Bronze, &mut rng);
        directory.upload(&bob.me(), core::slice::from_ref(&one_time), 0).unwrap();

        let senders: Vec<Party> = (0..4).map(|_| Party::new(&mut rng)).collect();
        let mut wires = Vec::new();
        for s in &senders {
            s.messenger().pin_from_directory(&*directory, &bob.me()).unwrap();
            bob.know(s);
            let sent = s.messenger().send_or_fetch(
                &*directory,
                &bob.me(),
                &CTX,
                b"x",
                SendOptions::default(),
                None,
                10,
                &mut rng,
            );
            wires.push(sent.unwrap().unwrap());
        }
        // The one-time coin went to the first sender; the others got the last-resort coin.
        assert_eq!(wires[0].envelope.chain, one_time.key_id);
        assert!(!wires[0].last_resort);
        assert!(wires[1..].iter().all(|s| s.last_resort && s.envelope.chain == lr.key_id));

        assert!(bob.receive(&wire(&wires[0]), &mut rng).is_ok());
        assert!(bob.receive(&wire(&wires[1]), &mut rng).unwrap().last_resort);
        assert_eq!(
            vault::newest_last_resort(&*bob.store, Tier::Bronze, 20).unwrap().map(|e| e.key_id),
            Some(lr.key_id)
        );
        assert!(!vault::last_resort_due(&policy, Some(lr.expires_at), 20));
        // The second open fills the record (2): the coin retires and the owner is told to mint.
        assert!(bob.receive(&wire(&wires[2]), &mut rng).is_ok());
        assert_eq!(bob.store.status(&lr.key_id).unwrap(), Some(KeyStatus::Burned));
        assert_eq!(vault::newest_last_resort(&*bob.store, Tier::Bronze, 20).unwrap(), None);
        assert!(vault::last_resort_due(&policy, None, 20));
        let before = bob.recv_blob(&senders[3]);
        assert_eq!(bob.receive(&wire(&wires[3]), &mut rng).unwrap_err(), Error::KeyAlreadyBurned);
        assert_eq!(bob.recv_blob(&senders[3]), before);
    });
}

#[test]
fn a_last_resort_coin_is_never_cached_and_the_directory_keeps_the_newest() {
    on_big_stack(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(142);
        let (alice, bob) = (Party::new(&mut rng), Party::new(&mut rng));
        let (directory, lr) = dry_directory(&bob, &mut rng);
        alice.store.register_contact(&ContactMeta::new(bob.me(), Priority::Mate, "bob", 0).unwrap()).unwrap();
        let a = alice.messenger();
        a.pin_from_directory(&*directory, &bob.me()).unwrap();

        // Prefetch is handed the last-resort coin (BRONZE is dry) and drops it.
        let report = a.prefetch(&*directory, &bob.me(), None, 10).unwrap();
        assert_eq!(report.last_resort, 1);
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts::default());
        assert_eq!(alice.store.store_coin(&bob.me(), &lr, 10).unwrap_err(), Error::LastResortNotCached);

        // A newer last-resort coin replaces it; re-uploading the older one changes nothing.
        let newer = coin::mint_last_resort(&bob.id, Tier::Bronze, &bob.dk, 100, &mut rng).unwrap();
        assert_eq!(directory.upload(&bob.me(), core::slice::from_ref(&newer.public), 100).unwrap(), 1);
        assert_eq!(directory.upload(&bob.me(), core::slice::from_ref(&lr), 100).unwrap(), 0);
        let got = directory.claim(&bob.me(), &alice.me(), Tier::Bronze, 1, Some([7; 16]), 100).unwrap();
        assert_eq!(got.iter().map(|c| c.key_id).collect::<Vec<_>>(), vec![newer.public.key_id]);
        // An idempotent retry returns it again; it is never used up.
        let again = directory.claim(&bob.me(), &alice.me(), Tier::Bronze, 1, Some([7; 16]), 100).unwrap();
        assert_eq!(again, got);

        // The anti-drain quota still applies: each hand-out counts one.
        let quota = Policy::DEFAULT.claim_quota(Tier::Bronze);
        let carol = Party::new(&mut rng);
        for _ in 0..quota {
            assert_eq!(directory.claim(&bob.me(), &carol.me(), Tier::Bronze, 1, None, 100).unwrap().len(), 1);
        }
        assert!(matches!(
            directory.claim(&bob.me(), &carol.me(), Tier::Bronze, 1, None, 100),
            Err(Error::QuotaExceeded { .. })
        ));

        // A last-resort coin too close to its expiry is refused at upload.
        let far = coin::mint_last_resort(&bob.id, Tier::Bronze, &bob.dk, 100, &mut rng).unwrap();
        assert_eq!(
            directory.upload(&bob.me(), core::slice::from_ref(&far.public), 100 + 7 * 86_400).unwrap_err(),
            Error::CoinExpired
        );
    });
}
