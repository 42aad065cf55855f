//! Protocol v2 (docs/protocol.md) tried as an attacker would: each attack of the security review gets
//! a typed refusal and changes nothing, and the honest parties carry on.

mod common;

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::{Identity, PublicIdentity, SignatureBytes};
use aqm_core::inventory::{CachedCoin, ContactMeta, GcReport, Selection, TierRange};
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::{Pinned, Trust};
use aqm_core::rekey::{RekeyFields, RekeySigner};
use aqm_core::store::{
    Direction, DirectoryStore, HasPolicy, InventoryStore, PinStore, SessionBlob, SessionStore, SessionVersion,
    StoredSession, VaultStore,
};
use aqm_core::vault::{KeyStatus, PurgeReport, VaultEntry, VaultStats};
use aqm_core::{
    ContactId, DeviceContext, Error, KeyId, Policy, Priority, Tier, TierCounts, UnixSeconds, UserId, protocol,
};
use common::{Party, new_store, on_big_stack, reencode, setup, wire};
use rand_core::CryptoRng;

/// Mallory's signer: it claims to be `claims`, but all it holds is Mallory's own identity.
struct Impersonator<'a> {
    claims: UserId,
    real: &'a Identity,
}

impl RekeySigner for Impersonator<'_> {
    fn user_id(&self) -> UserId {
        self.claims
    }

    fn sign_rekey<R: CryptoRng + ?Sized>(
        &self,
        fields: &RekeyFields<'_>,
        rng: &mut R,
    ) -> Result<SignatureBytes, Error> {
        // The best Mallory can do: a valid signature of hers over the same fields under her id.
        let mut own = *fields;
        own.sender = self.real.user_id();
        self.real.sign_rekey(&own, rng)
    }
}

/// A signer that refuses (a secure element whose approval button was not pressed).
struct Refusing(UserId);

impl RekeySigner for Refusing {
    fn user_id(&self) -> UserId {
        self.0
    }
    fn sign_rekey<R: CryptoRng + ?Sized>(&self, _: &RekeyFields<'_>, _: &mut R) -> Result<SignatureBytes, Error> {
        Err(Error::SignerFailed)
    }
}

#[test]
fn a_refused_signature_sends_nothing_and_keeps_the_coin() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(224);
        alice.befriend(&bob, Priority::Bestie);
        let coins: Vec<PublicCoin> = (0..2).map(|_| bob.mint(Tier::Silver, &mut rng)).collect();
        for c in &coins {
            alice.cache(c);
        }
        let refusing = Refusing(alice.me());
        let m = Messenger::new(&*alice.store, &refusing, &alice.dk);
        let ctx = DeviceContext::OUTDOOR_CELLULAR;
        assert_eq!(m.send(&bob.me(), &ctx, b"x", SendOptions::default(), 10, &mut rng), Err(Error::SignerFailed));
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts([0, 2, 0]), "the coin went back");
        assert_eq!(alice.store.load_session(&bob.me(), Direction::Send).unwrap(), None, "nothing saved");
        // With the signer back, the oldest coin is the one used.
        let sent = alice.send(&bob, &ctx, b"approved", &mut rng);
        assert_eq!(sent.envelope.chain, coins[0].key_id);
    })
}

#[test]
fn a_spoofed_sender_is_refused_and_the_real_chain_survives() {
    on_big_stack(|| {
        for tier in Tier::ALL {
            let (mut rng, alice, bob) = setup(200 + u64::from(tier.to_byte()));
            let mallory = Party::new(&mut rng);
            alice.befriend(&bob, Priority::Bestie);
            let ctx = match tier {
                Tier::Gold => DeviceContext::HOME_WIFI,
                Tier::Silver => DeviceContext::OUTDOOR_CELLULAR,
                Tier::Bronze => DeviceContext::UNDERGROUND,
            };
            // Alice opens a real chain to Bob.
            alice.cache(&bob.mint(tier, &mut rng));
            let first = alice.send(&bob, &ctx, b"it's alice", &mut rng);
            bob.receive(&wire(&first), &mut rng).unwrap();
            let before = bob.recv_blob(&alice);

            // Mallory claims two of Bob's coins (any registered user may) and writes "as Alice".
            let claimed = [bob.mint(tier, &mut rng), bob.mint(tier, &mut rng)];
            mallory.store.register_contact(&ContactMeta::new(bob.me(), Priority::Bestie, "bob", 0).unwrap()).unwrap();
            mallory.know(&bob);
            let forger = Impersonator { claims: alice.me(), real: &mallory.id };
            let m = Messenger::new(&*mallory.store, &forger, &mallory.dk);
            let forged = m.send_with_coin(&bob.me(), &claimed[0], tier, b"it's 'alice'", 10, &mut rng).unwrap();
            assert_eq!(forged.envelope.sender, alice.me());
            assert_eq!(bob.receive(&wire(&forged), &mut rng).unwrap_err(), Error::BadSignature, "{tier}");
            // Nothing changed: the coin is not burned, Alice's receive chain is intact.
            assert_eq!(bob.store.status(&claimed[0].key_id).unwrap(), Some(KeyStatus::Active));
            assert_eq!(bob.recv_blob(&alice), before, "{tier}: the forged re-key replaced nothing");

            // A re-key signed by Mallory's identity for her own id opens a chain as Mallory, not
            // as Alice: Bob has not pinned Mallory, so it is refused too.
            let m = Messenger::new(&*mallory.store, &mallory.id, &mallory.dk);
            let hers = m.send_with_coin(&bob.me(), &claimed[1], tier, b"hi", 10, &mut rng).unwrap();
            assert_eq!(bob.receive(&wire(&hers), &mut rng).unwrap_err(), Error::IdentityNotPinned);
            // Her envelope relabelled as Alice's fails Alice's signature check.
            let mut relabelled = hers.envelope.clone();
            relabelled.sender = alice.me();
            assert_eq!(bob.receive(&reencode(&relabelled), &mut rng).unwrap_err(), Error::BadSignature);

            // Alice's genuine next message still opens.
            let next = alice.send(&bob, &ctx, b"still alice", &mut rng);
            assert!(!next.rekeyed);
            let got = bob.receive(&wire(&next), &mut rng).unwrap();
            assert_eq!((got.from, got.plaintext.as_slice()), (alice.me(), &b"still alice"[..]));
        }
    })
}

#[test]
fn a_gold_rekey_needs_both_signatures() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(210);
        alice.befriend(&bob, Priority::Bestie);
        let coin = bob.mint(Tier::Gold, &mut rng);
        alice.cache(&coin);
        let sent = alice.send(&bob, &DeviceContext::HOME_WIFI, b"gold", &mut rng);
        let sig = &sent.envelope.rekey.as_ref().unwrap().signature;
        assert_eq!(sig.len(), 64 + 3309);
        // Valid Ed25519 half, bad ML-DSA-65 half; then the reverse.
        for at in [64 + 500, 20] {
            let mut bad = sent.envelope.clone();
            bad.rekey.as_mut().unwrap().signature[at] ^= 0x01;
            assert_eq!(bob.receive(&reencode(&bad), &mut rng).unwrap_err(), Error::BadSignature, "byte {at}");
            assert_eq!(bob.store.status(&coin.key_id).unwrap(), Some(KeyStatus::Active));
            assert_eq!(bob.recv_blob(&alice), None);
        }
        assert_eq!(bob.receive(&wire(&sent), &mut rng).unwrap().plaintext, b"gold");
    })
}

#[test]
fn a_replayed_first_message_is_refused() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(211);
        alice.befriend(&bob, Priority::Bestie);
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let first = wire(&alice.send(&bob, &DeviceContext::OUTDOOR_CELLULAR, b"one", &mut rng));
        let second = wire(&alice.send(&bob, &DeviceContext::OUTDOOR_CELLULAR, b"two", &mut rng));
        bob.receive(&first, &mut rng).unwrap();
        bob.receive(&second, &mut rng).unwrap();
        let saved = bob.recv_blob(&alice);
        assert_eq!(bob.receive(&first, &mut rng).unwrap_err(), Error::KeyAlreadyBurned);
        assert_eq!(bob.receive(&second, &mut rng).unwrap_err(), Error::Replay);
        assert_eq!(bob.recv_blob(&alice), saved, "a refused replay saves nothing");
    })
}

#[test]
fn a_rolled_back_send_state_reuses_no_key_nonce_pair_and_is_refused() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(212);
        alice.befriend(&bob, Priority::Bestie);
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let ctx = DeviceContext::OUTDOOR_CELLULAR;
        bob.receive(&wire(&alice.send(&bob, &ctx, b"hello", &mut rng)), &mut rng).unwrap();
        // Save Alice's send session, send, then put the saved record back (a Redis failover that
        // lost the last SET, a restored backup) and send again.
        let saved = alice.store.load_session(&bob.me(), Direction::Send).unwrap().unwrap();
        let (p1, p2) = (b"attack at dawn!!", b"retreat at noon!");
        let m1 = alice.send(&bob, &ctx, p1, &mut rng);
        let now = alice.store.load_session(&bob.me(), Direction::Send).unwrap().unwrap();
        alice.store.save_session(&bob.me(), Direction::Send, &saved.blob, Some(now.version)).unwrap();
        let m2 = alice.send(&bob, &ctx, p2, &mut rng);
        assert_eq!((m1.envelope.chain, m1.envelope.counter), (m2.envelope.chain, m2.envelope.counter));
        assert_ne!(m1.envelope.nonce, m2.envelope.nonce, "every message has a fresh nonce");
        let c1 = &m1.envelope.ciphertext[..p1.len()];
        let c2 = &m2.envelope.ciphertext[..p2.len()];
        let cx: Vec<u8> = c1.iter().zip(c2).map(|(a, b)| a ^ b).collect();
        let px: Vec<u8> = p1.iter().zip(p2).map(|(a, b)| a ^ b).collect();
        assert_ne!(cx, px, "C1 xor C2 must not reveal P1 xor P2");
        assert_eq!(bob.receive(&wire(&m1), &mut rng).unwrap().plaintext, p1);
        let before = bob.recv_blob(&alice);
        assert_eq!(bob.receive(&wire(&m2), &mut rng).unwrap_err(), Error::Replay, "decrypted twice");
        assert_eq!(bob.recv_blob(&alice), before);
    })
}

#[test]
fn a_counter_past_the_chain_limit_is_refused() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(213);
        alice.befriend(&bob, Priority::Mate);
        alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        let ctx = DeviceContext::UNDERGROUND;
        let msgs: Vec<_> = (0..3).map(|n| alice.send(&bob, &ctx, &[n; 4], &mut rng)).collect();
        bob.receive(&wire(&msgs[0]), &mut rng).unwrap();
        let before = bob.recv_blob(&alice);
        for counter in [protocol::chain_limit(Tier::Bronze), 1_000, u32::MAX] {
            let mut far = msgs[1].envelope.clone();
            far.counter = counter;
            assert_eq!(
                bob.receive(&reencode(&far), &mut rng).unwrap_err(),
                Error::CounterPastLimit { limit: 5 },
                "counter {counter}"
            );
        }
        assert_eq!(bob.recv_blob(&alice), before);
        assert_eq!(bob.receive(&wire(&msgs[1]), &mut rng).unwrap().counter, 1);
    })
}

fn small_order(mut id: PublicIdentity) -> PublicIdentity {
    // The point of order 2, (0, -1), canonically encoded: y = p - 1.
    let mut y = [0xffu8; 32];
    y[0] = 0xec;
    y[31] = 0x7f;
    id.ed25519 = y;
    id
}

#[test]
fn small_order_and_non_canonical_identities_are_refused() {
    let (mut rng, alice, _) = setup(214);
    let identity = alice.id.public().clone();
    let weak = small_order(identity.clone());
    assert_eq!(weak.validate(), Err(Error::WeakIdentityKey));
    let mut identity_point = identity.clone();
    identity_point.ed25519 = [0; 32];
    identity_point.ed25519[0] = 1;
    assert_eq!(identity_point.validate(), Err(Error::WeakIdentityKey));
    // A non-canonical encoding of a valid point: y + p (only possible for small y).
    let mut noncanonical = identity.clone();
    noncanonical.ed25519 = [0; 32];
    noncanonical.ed25519[0] = 0xee; // 1 + p, low byte (p = 2^255 - 19)
    noncanonical.ed25519[1..31].fill(0xff);
    noncanonical.ed25519[31] = 0x7f;
    assert_eq!(noncanonical.validate(), Err(Error::WeakIdentityKey));
    let store = new_store();
    assert_eq!(store.pin_identity(&weak, Trust::Exchanged), Err(Error::WeakIdentityKey));
    assert_eq!(store.pinned(&weak.user_id), Ok(None));
    let proof = alice.id.registration_proof(&mut rng).unwrap();
    assert_eq!(store.register_identity(&weak, &proof), Err(Error::WeakIdentityKey));
    // A signature "by" a small-order key never verifies, whatever the message.
    assert_eq!(weak.verify_ed25519(b"anything", &[0u8; 64]), Err(Error::BadSignature));
    assert!(identity.validate().is_ok());
}

#[test]
fn expired_and_nearly_expired_coins_are_never_used() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(215);
        alice.befriend(&bob, Priority::Bestie);
        let coin = bob.mint(Tier::Silver, &mut rng);
        let min_life = Policy::DEFAULT.coin_min_life_secs;
        let late = coin.expires_at - min_life;
        // Admit: a coin about to expire is not cached.
        assert_eq!(alice.store.store_coin(&bob.me(), &coin, late), Err(Error::CoinExpired));
        // Select: cached while fresh, dropped (wasted) once it is not, and the send needs a coin.
        alice.cache(&coin);
        let m = alice.messenger();
        let out = m.send(&bob.me(), &DeviceContext::OUTDOOR_CELLULAR, b"x", SendOptions::default(), late, &mut rng);
        assert_eq!(out, Ok(SendOutcome::NeedCoin { range: TierRange::only(Tier::Silver), wasted: 1 }));
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts::default());
        // On demand: an expiring coin from anywhere is refused.
        assert_eq!(m.send_with_coin(&bob.me(), &coin, Tier::Silver, b"x", late, &mut rng), Err(Error::CoinExpired));
        assert_eq!(alice.store.load_session(&bob.me(), Direction::Send).unwrap(), None);
        // Upload and claim are the directory kit's cases (upload_expiry_checked,
        // claim_skips_expiring_coins).
    })
}

#[test]
fn a_late_first_message_opens_within_the_vault_grace_and_not_after() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(216);
        alice.befriend(&bob, Priority::Bestie);
        let coin = bob.mint(Tier::Bronze, &mut rng);
        alice.cache(&coin);
        let messenger = alice.messenger();
        let sent = |rng: &mut _| match messenger
            .send_rekeyed(&bob.me(), &DeviceContext::UNDERGROUND, b"late", SendOptions::default(), 10, rng)
            .unwrap()
        {
            SendOutcome::Sent(s) => s,
            other => panic!("{other:?}"),
        };
        let msg = sent(&mut rng);
        let deadline = Policy::DEFAULT.vault_deadline(coin.expires_at);
        // Delivered after expires_at (a delayed message, a skewed clock) but inside the grace.
        let b = bob.messenger();
        assert_eq!(b.receive(&wire(&msg), deadline, &mut rng).unwrap_err(), Error::CoinExpired);
        assert_eq!(bob.store.status(&coin.key_id).unwrap(), Some(KeyStatus::Active), "refusal burned nothing");
        let got = b.receive(&wire(&msg), coin.expires_at + 1, &mut rng).unwrap();
        assert_eq!(got.plaintext, b"late");
        // After the vault's purge the secret is gone for good.
        let (mut rng2, alice2, bob2) = setup(217);
        alice2.befriend(&bob2, Priority::Bestie);
        let c2 = bob2.mint(Tier::Bronze, &mut rng2);
        alice2.cache(&c2);
        let m2 = alice2.send(&bob2, &DeviceContext::UNDERGROUND, b"too late", &mut rng2);
        let d2 = Policy::DEFAULT.vault_deadline(c2.expires_at);
        assert_eq!(bob2.store.purge(d2).unwrap(), PurgeReport { expired: 1, deleted_burned: 0 });
        assert_eq!(bob2.messenger().receive(&wire(&m2), d2, &mut rng2).unwrap_err(), Error::KeyNotFound);
    })
}

#[test]
fn drained_post_quantum_coins_give_need_coin_not_bronze() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(218);
        alice.befriend(&bob, Priority::Bestie);
        let bronze = bob.mint(Tier::Bronze, &mut rng);
        alice.cache(&bronze);
        let m = alice.messenger();
        let wifi = DeviceContext::HOME_WIFI;
        // GOLD and SILVER drained: no silent fall to BRONZE.
        let out = m.send(&bob.me(), &wifi, b"x", SendOptions::default(), 10, &mut rng).unwrap();
        assert_eq!(
            out,
            SendOutcome::NeedCoin { range: TierRange { desired: Tier::Gold, lowest: Tier::Silver }, wasted: 0 }
        );
        assert_eq!(alice.store.counts(&bob.me()).unwrap(), TierCounts([0, 0, 1]), "the BRONZE coin stays");
        // The app may allow it explicitly; the outcome says it is not post-quantum.
        let classical = SendOptions { allow_classical: true };
        let SendOutcome::Sent(sent) = m.send(&bob.me(), &wifi, b"x", classical, 10, &mut rng).unwrap() else {
            panic!("BRONZE allowed")
        };
        assert_eq!((sent.tier, sent.post_quantum, sent.fell_back), (Tier::Bronze, false, true));
        let got = bob.receive(&wire(&sent), &mut rng).unwrap();
        assert!(!got.post_quantum);

        // A context-chosen BRONZE (underground) stays BRONZE without any flag...
        let (mut rng, alice, bob) = setup(219);
        alice.befriend(&bob, Priority::Bestie);
        alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let m = alice.messenger();
        let underground = DeviceContext::UNDERGROUND;
        let SendOutcome::Sent(s) = m.send(&bob.me(), &underground, b"x", SendOptions::default(), 10, &mut rng).unwrap()
        else {
            panic!("BRONZE cached")
        };
        assert_eq!(s.tier, Tier::Bronze);
        // ...but a contact flagged require_pq lifts it to SILVER, even with allow_classical.
        let (mut rng, alice, bob) = setup(220);
        alice
            .store
            .register_contact(&ContactMeta::new(bob.me(), Priority::Bestie, "bob", 0).unwrap().requiring_pq())
            .unwrap();
        alice.know(&bob);
        bob.know(&alice);
        alice.cache(&bob.mint(Tier::Bronze, &mut rng));
        let m = alice.messenger();
        let out = m.send(&bob.me(), &underground, b"x", classical, 10, &mut rng).unwrap();
        assert_eq!(out, SendOutcome::NeedCoin { range: TierRange::only(Tier::Silver), wasted: 0 });
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let SendOutcome::Sent(s) = m.send(&bob.me(), &underground, b"x", classical, 10, &mut rng).unwrap() else {
            panic!("SILVER cached")
        };
        assert_eq!((s.tier, s.post_quantum), (Tier::Silver, true));
    })
}

#[test]
fn a_changed_identity_is_refused_and_directory_pins_are_unverified() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(221);
        let mallory = Party::new(&mut rng);
        // Bob learns Alice's identity from the directory only.
        let directory = new_store();
        directory.register_identity(alice.id.public(), &alice.id.registration_proof(&mut rng).unwrap()).unwrap();
        let pin = bob.messenger().pin_from_directory(&*directory, &alice.me()).unwrap();
        assert_eq!(pin.trust, Trust::Directory);
        // Someone offers another identity for Alice's id: refused, the pin stays.
        let mut swapped = mallory.id.public().clone();
        swapped.user_id = alice.me();
        for trust in [Trust::Directory, Trust::Exchanged, Trust::Verified] {
            assert_eq!(bob.store.pin_identity(&swapped, trust), Err(Error::IdentityChanged));
        }
        assert_eq!(bob.store.pinned(&alice.me()).unwrap(), Some(pin));
        // Alice writes; Bob's app must show the message as unverified.
        alice.store.register_contact(&ContactMeta::new(bob.me(), Priority::Bestie, "bob", 0).unwrap()).unwrap();
        alice.know(&bob);
        alice.cache(&bob.mint(Tier::Silver, &mut rng));
        let m1 = alice.send(&bob, &DeviceContext::OUTDOOR_CELLULAR, b"hi", &mut rng);
        let got = bob.receive(&wire(&m1), &mut rng).unwrap();
        assert!(got.unverified());
        // They compare safety numbers out of band: verified from now on.
        let number = aqm_core::pins::SafetyNumber::of(alice.id.public(), bob.id.public());
        assert_eq!(number, aqm_core::pins::SafetyNumber::of(bob.id.public(), alice.id.public()));
        bob.store.pin_identity(alice.id.public(), Trust::Verified).unwrap();
        let m2 = alice.send(&bob, &DeviceContext::OUTDOOR_CELLULAR, b"verified", &mut rng);
        let got = bob.receive(&wire(&m2), &mut rng).unwrap();
        assert_eq!((got.trust, got.unverified()), (Trust::Verified, false));
    })
}

#[test]
fn registration_signs_the_pinned_bytes() {
    let (mut rng, alice, _) = setup(222);
    let id = alice.id.public();
    let msg = id.registration_message();
    let mut want = b"AQM-register-v2".to_vec();
    want.extend_from_slice(id.user_id.as_bytes());
    want.extend_from_slice(&id.ed25519);
    want.extend_from_slice(&id.mldsa65);
    assert_eq!(msg.as_slice(), want.as_slice());
    assert_eq!(msg.len(), 15 + 16 + 32 + 1952);
    let proof = alice.id.registration_proof(&mut rng).unwrap();
    assert_eq!((proof.ed25519.len(), proof.mldsa65.len()), (64, 3309));
    assert!(id.verify_ed25519(&want, &proof.ed25519).is_ok());
    assert!(id.verify_mldsa65(&want, &proof.mldsa65).is_ok());
}

/// A device store whose first send-session save loses a race: just before it, "another device
/// thread" writes the send record.
struct Racing {
    inner: Box<MemoryStore>,
    raced: std::sync::atomic::AtomicBool,
}

impl HasPolicy for Racing {
    fn policy(&self) -> &Policy {
        self.inner.policy()
    }
}

impl VaultStore for Racing {
    type Error = Error;
    fn put(&self, e: &VaultEntry) -> Result<(), Error> {
        self.inner.put(e)
    }
    fn get(&self, k: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        self.inner.get(k, now)
    }
    fn status(&self, k: &KeyId) -> Result<Option<KeyStatus>, Error> {
        self.inner.status(k)
    }
    fn burn(&self, k: &KeyId, now: UnixSeconds) -> Result<(), Error> {
        self.inner.burn(k, now)
    }
    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        self.inner.purge(now)
    }
    fn stats(&self) -> Result<VaultStats, Error> {
        self.inner.stats()
    }
    fn active_ids(&self, t: Option<Tier>, v: &mut dyn FnMut(KeyId)) -> Result<(), Error> {
        self.inner.active_ids(t, v)
    }
    fn open_last_resort(&self, k: &KeyId, d: &aqm_core::vault::OpenDigest, now: UnixSeconds) -> Result<bool, Error> {
        self.inner.open_last_resort(k, d, now)
    }
}

impl SessionStore for Racing {
    fn load_session(&self, p: &UserId, d: Direction) -> Result<Option<StoredSession>, Error> {
        self.inner.load_session(p, d)
    }
    fn save_session(
        &self,
        p: &UserId,
        d: Direction,
        b: &SessionBlob,
        v: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        if d == Direction::Send && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let other = SessionBlob::from_slice(&[0u8; 40]).unwrap();
            self.inner.save_session(p, d, &other, v)?;
        }
        self.inner.save_session(p, d, b, v)
    }
    fn burn_and_save_session(
        &self,
        k: &KeyId,
        now: UnixSeconds,
        p: &UserId,
        b: &SessionBlob,
        v: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        self.inner.burn_and_save_session(k, now, p, b, v)
    }
    fn open_last_resort_and_save_session(
        &self,
        k: &KeyId,
        d: &aqm_core::vault::OpenDigest,
        now: UnixSeconds,
        p: &UserId,
        b: &SessionBlob,
        v: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        self.inner.open_last_resort_and_save_session(k, d, now, p, b, v)
    }
}

impl PinStore for Racing {
    type Error = Error;
    fn pin_identity(&self, i: &PublicIdentity, t: Trust) -> Result<Pinned, Error> {
        self.inner.pin_identity(i, t)
    }
    fn pinned(&self, u: &UserId) -> Result<Option<Pinned>, Error> {
        self.inner.pinned(u)
    }
}

impl InventoryStore for Racing {
    type Error = Error;
    fn register_contact(&self, m: &ContactMeta) -> Result<bool, Error> {
        self.inner.register_contact(m)
    }
    fn contact(&self, c: &ContactId) -> Result<Option<ContactMeta>, Error> {
        self.inner.contact(c)
    }
    fn set_priority(&self, c: &ContactId, p: Priority) -> Result<u32, Error> {
        self.inner.set_priority(c, p)
    }
    fn store_coin(&self, c: &ContactId, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
        self.inner.store_coin(c, coin, now)
    }
    fn select_coin(&self, c: &ContactId, d: Tier, l: Tier, now: UnixSeconds) -> Result<Selection, Error> {
        self.inner.select_coin(c, d, l, now)
    }
    fn restore_coin(&self, c: &ContactId, coin: &CachedCoin) -> Result<bool, Error> {
        self.inner.restore_coin(c, coin)
    }
    fn consume(&self, c: &ContactId, k: &KeyId) -> Result<bool, Error> {
        self.inner.consume(c, k)
    }
    fn counts(&self, c: &ContactId) -> Result<TierCounts, Error> {
        self.inner.counts(c)
    }
    fn for_each_contact(&self, v: &mut dyn FnMut(&ContactMeta, TierCounts)) -> Result<(), Error> {
        self.inner.for_each_contact(v)
    }
    fn collect_garbage(&self, now: UnixSeconds, dry: bool) -> Result<GcReport, Error> {
        self.inner.collect_garbage(now, dry)
    }
    fn collect_contact(&self, c: &ContactId) -> Result<GcReport, Error> {
        self.inner.collect_contact(c)
    }
}

#[test]
fn a_rekey_that_loses_the_session_race_puts_its_coin_back_in_fifo_order() {
    on_big_stack(|| {
        let (mut rng, alice, bob) = setup(223);
        let racing = Racing { inner: new_store(), raced: false.into() };
        racing.register_contact(&ContactMeta::new(bob.me(), Priority::Bestie, "bob", 0).unwrap()).unwrap();
        racing.pin_identity(bob.id.public(), Trust::Exchanged).unwrap();
        bob.know(&alice);
        let coins: Vec<PublicCoin> = (0..3).map(|_| bob.mint(Tier::Silver, &mut rng)).collect();
        for c in &coins {
            racing.store_coin(&bob.me(), c, 0).unwrap();
        }
        let m = Messenger::new(&racing, &alice.id, &alice.dk);
        let ctx = DeviceContext::OUTDOOR_CELLULAR;
        let SendOutcome::Sent(sent) =
            m.send(&bob.me(), &ctx, b"after the race", SendOptions::default(), 10, &mut rng).unwrap()
        else {
            panic!("coins are cached")
        };
        // The first attempt popped the oldest coin and lost; the coin went back to the head of the
        // queue, and the retry used it: one coin spent, FIFO order kept.
        assert!(racing.raced.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(sent.envelope.chain, coins[0].key_id);
        assert_eq!(racing.counts(&bob.me()).unwrap(), TierCounts([0, 2, 0]));
        let next = racing.select_coin(&bob.me(), Tier::Silver, Tier::Silver, 10).unwrap().coin.unwrap();
        assert_eq!(next.coin.key_id, coins[1].key_id);
        assert_eq!(bob.receive(&wire(&sent), &mut rng).unwrap().plaintext, b"after the race");
    })
}
