//! The send/receive lifecycle through the public API, on the in-memory reference store.

mod common;

use aqm_core::envelope::{MAX_ENVELOPE, MAX_MESSAGE};
use aqm_core::inventory::TierRange;
use aqm_core::messaging::{FetchError, SendOptions, SendOutcome, Sent};
use aqm_core::store::{Direction, DirectoryStore, InventoryStore, SessionStore, VaultStore};
use aqm_core::vault::KeyStatus;
use aqm_core::{DeviceContext, Error, Policy, Priority, Tier, TierCounts, UserId};
use common::{Party, new_store, on_big_stack, reencode, setup, wire};

#[test]
fn every_tier_round_trips_and_rekeys_exactly_at_its_limit() {
    on_big_stack(|| {
        let cases = [
            (Tier::Gold, Priority::Bestie, DeviceContext::HOME_WIFI, 25),
            (Tier::Silver, Priority::Bestie, DeviceContext::OUTDOOR_CELLULAR, 10),
            (Tier::Bronze, Priority::Mate, DeviceContext::UNDERGROUND, 5),
        ];
        for (i, (tier, priority, ctx, limit)) in cases.into_iter().enumerate() {
            assert_eq!(Policy::DEFAULT.ratchet_limit(tier), limit);
            let (mut rng, alice, bob) = setup(100 + i as u64);
            alice.befriend(&bob, priority);
            let first = bob.mint(tier, &mut rng);
            let second = bob.mint(tier, &mut rng);
            alice.cache(&first);
            alice.cache(&second);
            for n in 0..=limit {
                let text = format!("{tier} message {n}");
                let sent = alice.send(&bob, &ctx, text.as_bytes(), &mut rng);
                assert_eq!(sent.tier, tier);
                assert!(!sent.fell_back);
                let opens_chain = n == 0 || n == limit;
                assert_eq!(sent.rekeyed, opens_chain, "message {n}");
                assert_eq!(sent.envelope.rekey.is_some(), opens_chain);
                let expect_coin = if n < limit { first.key_id } else { second.key_id };
                assert_eq!(sent.envelope.chain, expect_coin);
                assert_eq!(sent.remaining, if n < limit { limit - n - 1 } else { limit - 1 });
                let got = bob.receive(&wire(&sent), &mut rng).unwrap();
                assert_eq!(got.plaintext, text.as_bytes());
                assert_eq!((got.from, got.tier, got.chain, got.rekeyed), (alice.me(), tier, expect_coin, opens_chain));
            }
            let stats = bob.store.stats().unwrap();
            assert_eq!(stats.total_burned, 2);
            assert_eq!(stats.active, TierCounts::default());
            assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts::default());
        }
    })
}

#[test]
fn out_of_order_within_the_bound_replays_refused() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(2);
        alice.befriend(&bob, Priority::Bestie);
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let msgs: Vec<Vec<u8>> = (0..10)
            .map(|n| wire(&alice.send(&bob, &DeviceContext::OUTDOOR_CELLULAR, &[n as u8; 40], &mut rng)))
            .collect();
        // The chain-opening message first, the rest shuffled.
        for n in [0usize, 5, 2, 9, 1, 3, 4, 8, 7, 6] {
            let got = bob.receive(&msgs[n], &mut rng).unwrap();
            assert_eq!((got.counter, got.plaintext.as_slice()), (n as u32, &[n as u8; 40][..]));
        }
        let before = bob.recv_blob(&alice);
        for n in [3usize, 9, 1] {
            assert_eq!(bob.receive(&msgs[n], &mut rng).unwrap_err(), Error::Replay);
        }
        assert_eq!(bob.recv_blob(&alice), before, "a refused replay saves nothing");
        // Replaying the chain-opening message finds its coin burned.
        assert_eq!(bob.receive(&msgs[0], &mut rng).unwrap_err(), Error::KeyAlreadyBurned);
        assert_eq!(bob.recv_blob(&alice), before);
    })
}

#[test]
fn late_messages_of_the_previous_chain_still_open() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(3);
        alice.befriend(&bob, Priority::Mate);
        for _ in 0..2 {
            alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        }
        let msgs: Vec<Sent> =
            (0..7).map(|n| alice.send(&bob, &DeviceContext::UNDERGROUND, &[n; 3], &mut rng)).collect();
        assert!(msgs[5].rekeyed);
        for n in [0usize, 1, 5, 6, 3, 2, 4] {
            let got = bob.receive(&wire(&msgs[n]), &mut rng).unwrap();
            assert_eq!(got.plaintext.as_slice(), &[n as u8; 3]);
        }
    })
}

#[test]
fn a_chain_message_before_its_opening_message_is_no_session() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(4);
        alice.befriend(&bob, Priority::Bestie);
        alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        let first = alice.send(&bob, &DeviceContext::UNDERGROUND, b"one", &mut rng);
        let second = alice.send(&bob, &DeviceContext::UNDERGROUND, b"two", &mut rng);
        assert_eq!(bob.receive(&wire(&second), &mut rng).unwrap_err(), Error::NoSession);
        bob.receive(&wire(&first), &mut rng).unwrap();
        // Retried after the chain opened, it goes through.
        assert_eq!(bob.receive(&wire(&second), &mut rng).unwrap().plaintext, b"two");
    })
}

#[test]
fn tampering_is_refused_and_changes_nothing() {
    on_big_stack(|| {
        for tier in Tier::ALL {
            let (mut rng, alice, bob) = setup(50 + tier.to_byte() as u64);
            alice.befriend(&bob, Priority::Bestie);
            let coin = bob.mint(tier, &mut rng);
            alice.cache(&coin);
            let ctx = match tier {
                Tier::Gold => DeviceContext::HOME_WIFI,
                Tier::Silver => DeviceContext::OUTDOOR_CELLULAR,
                Tier::Bronze => DeviceContext::UNDERGROUND,
            };
            let first = alice.send(&bob, &ctx, b"opening", &mut rng);
            let second = alice.send(&bob, &ctx, b"follow-up", &mut rng);

            let mut tampered: Vec<(&str, Vec<u8>)> = Vec::new();
            let mut ct = first.envelope.clone();
            let last = ct.ciphertext.len() - 1;
            ct.ciphertext[last] ^= 0x01;
            tampered.push(("tag", reencode(&ct)));
            let mut ct = first.envelope.clone();
            ct.ciphertext[0] ^= 0x80;
            tampered.push(("ciphertext", reencode(&ct)));
            let mut nonce = first.envelope.clone();
            nonce.nonce[0] ^= 0x01;
            let mut kem = first.envelope.clone();
            kem.rekey.as_mut().unwrap().kem_ciphertext[7] ^= 0x10;
            let mut sig = first.envelope.clone();
            sig.rekey.as_mut().unwrap().signature[3] ^= 0x10;
            let mut counter = first.envelope.clone();
            counter.counter = 1;
            let mut sender = first.envelope.clone();
            sender.sender = UserId([9; 16]);
            let mut expected: Vec<(&str, Vec<u8>, Error)> =
                tampered.into_iter().map(|(w, b)| (w, b, Error::DecryptFailed)).collect();
            // The nonce and the KEM ciphertext are signed: the signature check refuses them
            // before anything is decapsulated.
            expected.push(("nonce", reencode(&nonce), Error::BadSignature));
            expected.push(("KEM ciphertext", reencode(&kem), Error::BadSignature));
            expected.push(("signature", reencode(&sig), Error::BadSignature));
            expected.push(("header counter", reencode(&counter), Error::RekeyNotFirst));
            expected.push(("header sender", reencode(&sender), Error::IdentityNotPinned));

            for (what, bytes, want) in &expected {
                assert_eq!(bob.receive(bytes, &mut rng).unwrap_err(), *want, "{tier} {what}");
                assert_eq!(
                    bob.store.status(&coin.key_id).unwrap(),
                    Some(KeyStatus::Active),
                    "{tier} {what}: not burned"
                );
                assert_eq!(bob.recv_blob(&alice), None, "{tier} {what}: nothing saved");
            }
            // A wrong-size KEM ciphertext and an unknown tier byte are typed decode errors.
            let mut short = wire(&first);
            short[1 + 48 + 1] = 9;
            assert_eq!(bob.receive(&short, &mut rng).unwrap_err(), Error::UnknownTier(9));

            bob.receive(&wire(&first), &mut rng).unwrap();
            let saved = bob.recv_blob(&alice);
            let mut ct = second.envelope.clone();
            ct.ciphertext[3] ^= 0x04;
            assert_eq!(bob.receive(&reencode(&ct), &mut rng).unwrap_err(), Error::DecryptFailed);
            assert_eq!(bob.recv_blob(&alice), saved, "{tier}: session blob unchanged");
            assert_eq!(bob.receive(&wire(&second), &mut rng).unwrap().plaintext, b"follow-up");
        }
    })
}

#[test]
fn malformed_and_misaddressed_envelopes_are_refused() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(6);
        let carol = Party::new(&mut rng);
        alice.befriend(&bob, Priority::Bestie);
        let coin = bob.mint(Tier::Bronze, &mut rng);
        alice.cache(&coin);
        let sent = alice.send(&bob, &DeviceContext::UNDERGROUND, b"for Bob", &mut rng);
        let bytes = wire(&sent);
        assert_eq!(carol.receive(&bytes, &mut rng).unwrap_err(), Error::NotForUs);
        assert_eq!(bob.receive(&bytes[..bytes.len() - 2], &mut rng).unwrap_err(), Error::Malformed);
        let mut v9 = bytes.clone();
        v9[0] = 9;
        assert_eq!(bob.receive(&v9, &mut rng).unwrap_err(), Error::UnsupportedVersion(9));
        let huge = vec![1u8; MAX_ENVELOPE + 1];
        assert!(matches!(bob.receive(&huge, &mut rng).unwrap_err(), Error::EnvelopeTooLarge { .. }));
        assert_eq!(bob.store.status(&coin.key_id).unwrap(), Some(KeyStatus::Active));
        assert_eq!(bob.recv_blob(&alice), None);
        assert_eq!(bob.receive(&bytes, &mut rng).unwrap().plaintext, b"for Bob");
    })
}

#[test]
fn forged_coins_are_refused() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(7);
        let mallory = Party::new(&mut rng);
        alice.befriend(&bob, Priority::Bestie);
        // Mallory's coin relabelled as Bob's: the signature does not verify against Bob.
        let mut forged = mallory.mint(Tier::Silver, &mut rng);
        forged.owner = bob.me();
        let m = alice.messenger();
        assert_eq!(m.send_with_coin(&bob.me(), &forged, Tier::Silver, b"x", 10, &mut rng), Err(Error::BadSignature));
        // Mallory's own coin offered for Bob.
        let hers = mallory.mint(Tier::Silver, &mut rng);
        assert_eq!(m.send_with_coin(&bob.me(), &hers, Tier::Silver, b"x", 10, &mut rng), Err(Error::WrongOwner));
        assert_eq!(alice.store.load_session(&bob.me(), Direction::Send).unwrap(), None);
        // A forged coin that slipped into the cache is dropped and refused when popped.
        alice.cache(&forged);
        let ctx = DeviceContext::OUTDOOR_CELLULAR;
        let opts = SendOptions::default();
        assert_eq!(m.send(&bob.me(), &ctx, b"x", opts, 10, &mut rng), Err(Error::BadSignature));
        assert_eq!(
            m.send(&bob.me(), &ctx, b"x", opts, 10, &mut rng),
            Ok(SendOutcome::NeedCoin { range: TierRange::only(Tier::Silver), wasted: 0 })
        );
    })
}

#[test]
fn need_coin_then_on_demand_fetch() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(8);
        let directory = new_store();
        directory.register_identity(bob.id.public(), &bob.id.registration_proof(&mut rng).unwrap()).unwrap();
        let gold = bob.mint(Tier::Gold, &mut rng);
        let silver = bob.mint(Tier::Silver, &mut rng);
        let bronze = bob.mint(Tier::Bronze, &mut rng);
        directory.upload(&bob.me(), &[gold.clone(), silver.clone(), bronze.clone()], 0).unwrap();
        let m = alice.messenger();
        let ctx = DeviceContext::HOME_WIFI;
        let opts = SendOptions::default();

        // Nobody pinned Bob's identity yet: nothing can be sent to him.
        assert_eq!(m.send(&bob.me(), &ctx, b"hi", opts, 10, &mut rng), Err(Error::IdentityNotPinned));
        alice.know(&bob);
        bob.know(&alice);
        // A stranger: nothing cached, BRONZE is the ceiling.
        assert_eq!(
            m.send(&bob.me(), &ctx, b"hi", opts, 10, &mut rng),
            Ok(SendOutcome::NeedCoin { range: TierRange::only(Tier::Bronze), wasted: 0 })
        );
        // A registered BESTIE with an empty cache wants GOLD, and may fall back to SILVER only.
        alice.befriend(&bob, Priority::Bestie);
        let SendOutcome::NeedCoin { range, .. } = m.send(&bob.me(), &ctx, b"hi", opts, 10, &mut rng).unwrap() else {
            panic!("nothing is cached")
        };
        assert_eq!(range, TierRange { desired: Tier::Gold, lowest: Tier::Silver });
        assert_eq!(alice.store.load_session(&bob.me(), Direction::Send).unwrap(), None);
        let coin = m.fetch_on_demand(&*directory, &bob.me(), range, None, 10).unwrap().unwrap();
        assert_eq!(coin, gold);
        let sent = m.send_with_coin(&bob.me(), &coin, range.desired, b"hi", 10, &mut rng).unwrap();
        assert!(sent.rekeyed && !sent.fell_back && sent.remaining == 24 && sent.post_quantum);
        assert_eq!(bob.receive(&wire(&sent), &mut rng).unwrap().plaintext, b"hi");

        // GOLD is gone from the directory: the fetch falls back to SILVER, and then stops: BRONZE
        // is reached only when the app allows classical crypto.
        assert_eq!(m.fetch_on_demand(&*directory, &bob.me(), range, None, 10).unwrap(), Some(silver));
        assert_eq!(m.fetch_on_demand(&*directory, &bob.me(), range, None, 10).unwrap(), None);
        let classical = TierRange { desired: Tier::Gold, lowest: Tier::Bronze };
        assert_eq!(m.fetch_on_demand(&*directory, &bob.me(), classical, None, 10).unwrap(), Some(bronze));
        assert_eq!(m.fetch_on_demand(&*directory, &bob.me(), classical, None, 10).unwrap(), None);
    })
}

#[test]
fn send_or_fetch_reaches_a_stranger_and_gives_up_when_nothing_is_left() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(9);
        let directory = new_store();
        directory.register_identity(bob.id.public(), &bob.id.registration_proof(&mut rng).unwrap()).unwrap();
        directory.register_identity(alice.id.public(), &alice.id.registration_proof(&mut rng).unwrap()).unwrap();
        directory.upload(&bob.me(), &[bob.mint(Tier::Bronze, &mut rng)], 0).unwrap();
        let m = alice.messenger();
        let ctx = DeviceContext::HOME_WIFI;
        let opts = SendOptions::default();
        // Strangers learn each other's identity from the directory.
        m.pin_from_directory(&*directory, &bob.me()).unwrap();
        let sent = m.send_or_fetch(&*directory, &bob.me(), &ctx, b"hello stranger", opts, None, 10, &mut rng).unwrap();
        let sent = sent.unwrap();
        assert_eq!((sent.tier, sent.post_quantum), (Tier::Bronze, false));
        assert_eq!(bob.receive(&wire(&sent), &mut rng).unwrap_err(), Error::IdentityNotPinned);
        bob.messenger().pin_from_directory(&*directory, &alice.me()).unwrap();
        let got = bob.receive(&wire(&sent), &mut rng).unwrap();
        assert_eq!(got.plaintext, b"hello stranger");
        assert!(got.unverified(), "a sender known only from the directory is reported unverified");
        // The chain carries four more messages without any coin.
        for _ in 0..4 {
            assert!(
                m.send_or_fetch(&*directory, &bob.me(), &ctx, b"more", opts, None, 10, &mut rng).unwrap().is_some()
            );
        }
        assert_eq!(m.send_or_fetch(&*directory, &bob.me(), &ctx, b"more", opts, None, 10, &mut rng).unwrap(), None);
    })
}

#[test]
fn tier_ceiling_and_downward_fallback() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(10);
        // A MATE is never sent GOLD: capped to SILVER by the ceiling, not a fallback.
        alice.befriend(&bob, Priority::Mate);
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let sent = alice.send(&bob, &DeviceContext::HOME_WIFI, b"mate", &mut rng);
        assert_eq!((sent.tier, sent.desired, sent.fell_back), (Tier::Silver, Tier::Silver, false));
        assert_eq!(bob.receive(&wire(&sent), &mut rng).unwrap().tier, Tier::Silver);

        // A BESTIE on Wi-Fi wants GOLD; with no GOLD cached the oldest SILVER goes instead.
        let (mut rng, alice, bob) = setup(11);
        alice.befriend(&bob, Priority::Bestie);
        let s1 = bob.mint(Tier::Silver, &mut rng);
        alice.cache(&s1);
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        let sent = alice.send(&bob, &DeviceContext::HOME_WIFI, b"bestie", &mut rng);
        assert_eq!((sent.tier, sent.desired, sent.fell_back), (Tier::Silver, Tier::Gold, true));
        assert_eq!(sent.envelope.chain, s1.key_id, "FIFO: the oldest coin first");
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts([0, 1, 1]));
        // Reusing the chain is not a fallback.
        let again = alice.send(&bob, &DeviceContext::HOME_WIFI, b"again", &mut rng);
        assert_eq!((again.rekeyed, again.fell_back, again.remaining), (false, false, 8));
    })
}

#[test]
fn a_burned_coin_opens_once() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(12);
        alice.befriend(&bob, Priority::Bestie);
        let coin = bob.mint(Tier::Gold, &mut rng);
        alice.cache(&coin);
        let sent = wire(&alice.send(&bob, &DeviceContext::HOME_WIFI, b"once", &mut rng));
        bob.receive(&sent, &mut rng).unwrap();
        assert_eq!(bob.store.status(&coin.key_id).unwrap(), Some(KeyStatus::Burned));
        let saved = bob.recv_blob(&alice);
        assert_eq!(bob.receive(&sent, &mut rng).unwrap_err(), Error::KeyAlreadyBurned);
        assert_eq!(bob.recv_blob(&alice), saved);
        // After the burn grace the key is gone altogether.
        bob.store.purge(20 + Policy::DEFAULT.burn_grace_secs).unwrap();
        assert_eq!(bob.receive(&sent, &mut rng).unwrap_err(), Error::KeyNotFound);
    })
}

#[test]
fn oversize_messages_use_no_coin() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(13);
        alice.befriend(&bob, Priority::Bestie);
        alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        let m = alice.messenger();
        let big = vec![0u8; MAX_MESSAGE + 1];
        assert_eq!(
            m.send(&bob.me(), &DeviceContext::UNDERGROUND, &big, SendOptions::default(), 10, &mut rng),
            Err(Error::MessageTooLarge { max: MAX_MESSAGE })
        );
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts([0, 0, 1]));
        let full = alice.send(&bob, &DeviceContext::UNDERGROUND, &big[..MAX_MESSAGE], &mut rng);
        assert_eq!(bob.receive(&wire(&full), &mut rng).unwrap().plaintext.len(), MAX_MESSAGE);
    })
}

#[test]
fn prefetch_fills_the_caps_with_verified_coins() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(14);
        let directory = new_store();
        directory.register_identity(bob.id.public(), &bob.id.registration_proof(&mut rng).unwrap()).unwrap();
        let mut coins = Vec::new();
        for (tier, n) in [(Tier::Gold, 6), (Tier::Silver, 5), (Tier::Bronze, 2)] {
            for _ in 0..n {
                coins.push(bob.mint(tier, &mut rng));
            }
        }
        directory.upload(&bob.me(), &coins, 0).unwrap();
        let m = alice.messenger();
        assert_eq!(
            m.prefetch(&*directory, &bob.me(), None, 5),
            Err(FetchError::Store(Error::ContactNotRegistered)),
            "only registered contacts are prefetched"
        );
        alice.befriend(&bob, Priority::Bestie);
        let key = [7u8; 16];
        let report = m.prefetch(&*directory, &bob.me(), Some(key), 5).unwrap();
        assert_eq!(report.requested, TierCounts([5, 4, 1]));
        assert_eq!(report.stored, TierCounts([5, 4, 1]));
        assert_eq!(report.rejected, 0);
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts([5, 4, 1]));
        assert_eq!(directory.available(&bob.me()).unwrap(), TierCounts([1, 1, 1]));
        // Stocked: nothing more is asked.
        let again = m.prefetch(&*directory, &bob.me(), Some(key), 6).unwrap();
        assert_eq!((again.requested, again.stored), (TierCounts::default(), TierCounts::default()));
        // The prefetched coins work.
        let sent = alice.send(&bob, &DeviceContext::HOME_WIFI, b"gold", &mut rng);
        assert_eq!(sent.tier, Tier::Gold);
        assert_eq!(bob.receive(&wire(&sent), &mut rng).unwrap().plaintext, b"gold");
    })
}

#[test]
fn send_rekeyed_opens_a_new_chain_at_the_tier_the_context_now_affords() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(40);
        alice.befriend(&bob, Priority::Bestie);
        for tier in [Tier::Gold, Tier::Silver] {
            let coin = bob.mint(tier, &mut rng);
            alice.cache(&coin);
        }
        let first = alice.send(&bob, &DeviceContext::HOME_WIFI, b"home", &mut rng);
        assert_eq!((first.tier, first.rekeyed), (Tier::Gold, true));
        // `send` would keep riding the open GOLD chain; `send_rekeyed` re-keys with SILVER.
        let SendOutcome::Sent(second) = alice
            .messenger()
            .send_rekeyed(&bob.me(), &DeviceContext::OUTDOOR_CELLULAR, b"outside", SendOptions::default(), 11, &mut rng)
            .unwrap()
        else {
            panic!("a SILVER coin was cached")
        };
        assert_eq!((second.tier, second.rekeyed, second.fell_back), (Tier::Silver, true, false));
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts([0, 0, 0]));
        assert_eq!(bob.receive(&wire(&first), &mut rng).unwrap().plaintext.as_slice(), b"home");
        assert_eq!(bob.receive(&wire(&second), &mut rng).unwrap().plaintext.as_slice(), b"outside");
        // Nothing cached any more: NeedCoin, and the open SILVER chain is untouched.
        let before = alice.store.load_session(&bob.me(), Direction::Send).unwrap();
        let outcome = alice
            .messenger()
            .send_rekeyed(&bob.me(), &DeviceContext::UNDERGROUND, b"metro", SendOptions::default(), 12, &mut rng)
            .unwrap();
        assert_eq!(outcome, SendOutcome::NeedCoin { range: TierRange::only(Tier::Bronze), wasted: 0 });
        assert_eq!(alice.store.load_session(&bob.me(), Direction::Send).unwrap(), before);
    });
}
