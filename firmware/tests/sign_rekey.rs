//! `SignRekey` end to end: a user whose identity lives in the device sends with the core's
//! `Messenger`, the device signing each chain's first message over the serial link (in-process
//! device, as in `tests/protocol.rs`); refusals sign nothing and change nothing.

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity, encapsulate};
use aqm_core::envelope::MAX_ENVELOPE;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::Trust;
use aqm_core::rekey::{self, RekeyFields, RekeySigner};
use aqm_core::store::{Direction, PinStore, SessionStore, VaultStore};
use aqm_core::{DeviceContext, KeyId, Policy, StoreError, Tier, UserId};
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::host::InProcess;
use aqm_firmware::protocol::{DeviceError, RekeyRequest, Reply, SecretBytes};
use aqm_firmware::{Approver, Client, Device, DeviceSigner, Error, FlashVault, NoButton, NoLed, VaultLayout};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_700_000_000;
const PAGES: u32 = 12;

type Link<A> = InProcess<RamFlash<Vec<u8>>, 64, ChaCha20Rng, NoLed, A>;

fn device<A: Approver>(seed: u64, approver: A) -> Client<Link<A>> {
    let flash = RamFlash::new(vec![0xFF; (PAGES + 1) as usize * PAGE_SIZE]);
    let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 4, PAGES - 4).with_erase_log(PAGES * PAGE_SIZE as u32);
    let vault = FlashVault::open(flash, layout, Policy::DEFAULT).unwrap();
    let d =
        Device::new(vault, DeviceKey::from_bytes([seed as u8; 32]), ChaCha20Rng::seed_from_u64(seed), NoLed, approver)
            .unwrap();
    Client::new(InProcess::new(d))
}

/// Counts whether an approval was asked, and answers with `ok`.
struct Counting {
    ok: bool,
    asked: std::rc::Rc<std::cell::Cell<u32>>,
}

impl Approver for Counting {
    fn approve(&mut self) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.ok
    }
    fn required(&self) -> bool {
        true
    }
}

/// Bob: an in-memory identity and store, with one coin of every tier minted into his vault.
struct Bob {
    identity: Identity,
    key: DeviceKey,
    store: Box<MemoryStore>,
    coins: Vec<PublicCoin>,
}

fn bob(rng: &mut ChaCha20Rng) -> Bob {
    let identity = Identity::generate(rng);
    let key = DeviceKey::random(rng);
    let store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    let coins = Tier::ALL
        .iter()
        .map(|t| {
            let m = coin::mint(&identity, *t, &key, NOW, rng).unwrap();
            store.put(&m.vault).unwrap();
            m.public
        })
        .collect();
    Bob { identity, key, store, coins }
}

#[test]
fn a_messenger_whose_signer_is_the_device_sends_and_the_receiver_verifies() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let asked = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut client = device(1, Counting { ok: true, asked: asked.clone() });
    let signer = DeviceSigner::new(&mut client, NOW).unwrap();
    let alice_id = signer.identity().clone();
    assert_eq!(signer.user_id(), alice_id.user_id);

    let bob = bob(&mut rng);
    let alice_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    let alice_key = DeviceKey::random(&mut rng);
    alice_store.pin_identity(bob.identity.public(), Trust::Exchanged).unwrap();
    bob.store.pin_identity(&alice_id, Trust::Exchanged).unwrap();

    let alice = Messenger::new(&*alice_store, &signer, &alice_key);
    let b = Messenger::new(&*bob.store, &bob.identity, &bob.key);
    let mut wire = [0u8; MAX_ENVELOPE];
    for (n, coin) in bob.coins.iter().enumerate() {
        let text = format!("hi Bob, {} chain", coin.tier);
        let sent = alice.send_with_coin(&bob.identity.user_id(), coin, coin.tier, text.as_bytes(), NOW + 1, &mut rng);
        let sent = sent.unwrap();
        assert!(sent.rekeyed);
        assert_eq!(asked.get(), n as u32 + 1, "each re-key is approved on the device");
        let got = b.receive(sent.envelope.encode(&mut wire).unwrap(), NOW + 2, &mut rng).unwrap();
        assert_eq!((got.from, got.tier, got.rekeyed), (alice_id.user_id, coin.tier, true));
        assert_eq!(&got.plaintext[..], text.as_bytes());
    }
    // Later messages of a chain need no signature: nothing more is asked of the device.
    let ctx = DeviceContext::HOME_WIFI;
    let SendOutcome::Sent(next) =
        alice.send(&bob.identity.user_id(), &ctx, b"second", SendOptions::default(), NOW + 3, &mut rng).unwrap()
    else {
        panic!("the open chain is reused")
    };
    assert!(!next.rekeyed);
    assert_eq!(asked.get(), 3);
    let got = b.receive(next.envelope.encode(&mut wire).unwrap(), NOW + 4, &mut rng).unwrap();
    assert_eq!(&got.plaintext[..], b"second");
}

#[test]
fn a_refused_approval_is_signer_failed_and_changes_nothing() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let asked = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut client = device(2, Counting { ok: false, asked: asked.clone() });
    client.mint(NOW, Tier::Bronze, 2, |_| {}).unwrap();
    let device_before = client.status(NOW).unwrap();
    let signer = DeviceSigner::new(&mut client, NOW).unwrap();
    let bob = bob(&mut rng);
    let alice_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    let alice_key = DeviceKey::random(&mut rng);
    alice_store.pin_identity(bob.identity.public(), Trust::Exchanged).unwrap();
    let alice = Messenger::new(&*alice_store, &signer, &alice_key);
    let peer = bob.identity.user_id();
    for coin in &bob.coins {
        let err = alice.send_with_coin(&peer, coin, coin.tier, b"hi", NOW + 1, &mut rng).unwrap_err();
        assert_eq!(err.as_core(), Some(&aqm_core::Error::SignerFailed));
        assert_eq!(signer.last_error(), Some(Error::Device(DeviceError::NotApproved)));
    }
    assert_eq!(asked.get(), 3);
    // Nothing was saved on the host, nothing changed on the device.
    assert!(alice_store.load_session(&peer, Direction::Send).unwrap().is_none());
    assert_eq!(client.status(NOW).unwrap(), device_before);
}

fn request(tier: Tier, recipient: UserId, counter: u32) -> (RekeyRequest, Vec<u8>) {
    let kem = vec![0x5A; tier.ciphertext_len()];
    let fields = RekeyFields {
        sender: UserId([0; 16]),
        recipient,
        coin: KeyId([3; 16]),
        tier,
        kem_ciphertext: &kem,
        coin_public_key_hash: [4; 32],
        counter,
        nonce: [5; 12],
    };
    (RekeyRequest::from_fields(&fields).unwrap(), kem)
}

#[test]
fn wrong_counters_lengths_and_forgeries_are_refused() {
    let asked = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut client = device(3, Counting { ok: true, asked: asked.clone() });
    let me = client.info(NOW).unwrap().identity;
    let bob = UserId([2; 16]);
    for (signed, tier) in Tier::ALL.into_iter().enumerate() {
        // Counter past 0: refused before the button is asked.
        let (r, _) = request(tier, bob, 1);
        assert_eq!(client.sign_rekey(NOW, r).unwrap_err(), Error::Device(DeviceError::RekeyNotFirst));
        // A ciphertext of another tier's size.
        let (mut r, _) = request(tier, bob, 0);
        r.kem_ciphertext.pop();
        assert!(matches!(client.sign_rekey(NOW, r).unwrap_err(), Error::Device(DeviceError::BadLength { .. })));
        assert_eq!(asked.get(), signed as u32, "refused requests never reach the button");
        // What the device signs covers every field: change one and the signature fails.
        let (r, kem) = request(tier, bob, 0);
        let sig = client.sign_rekey(NOW, r.clone()).unwrap();
        assert_eq!(sig.len(), tier.signature_len());
        let fields = r.fields(me.user_id);
        rekey::verify(&me, &fields, &sig).unwrap();
        let mut other = fields;
        other.recipient = UserId([9; 16]);
        assert_eq!(rekey::verify(&me, &other, &sig), Err(aqm_core::Error::BadSignature));
        let mut other = fields;
        other.counter = 1;
        assert_eq!(rekey::verify(&me, &other, &sig), Err(aqm_core::Error::BadSignature));
        assert_eq!(fields.kem_ciphertext, &kem[..]);
    }
    assert_eq!(asked.get(), 3);

    // Through the signer: another sender is not the device's to sign, and a wrong counter is a
    // failed signer, with the device's reason kept.
    let signer = DeviceSigner::new(&mut client, NOW).unwrap();
    let kem = vec![0; Tier::Bronze.ciphertext_len()];
    let mut f = RekeyFields {
        sender: UserId([7; 16]),
        recipient: bob,
        coin: KeyId([1; 16]),
        tier: Tier::Bronze,
        kem_ciphertext: &kem,
        coin_public_key_hash: [0; 32],
        counter: 0,
        nonce: [0; 12],
    };
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    assert_eq!(signer.sign_rekey(&f, &mut rng), Err(aqm_core::Error::WrongOwner));
    f.sender = me.user_id;
    f.counter = 4;
    assert_eq!(signer.sign_rekey(&f, &mut rng), Err(aqm_core::Error::SignerFailed));
    assert_eq!(signer.last_error(), Some(Error::Device(DeviceError::RekeyNotFirst)));
    f.counter = 0;
    let sig = signer.sign_rekey(&f, &mut rng).unwrap();
    rekey::verify(&me, &f, &sig).unwrap();
    assert_eq!(signer.last_error(), None);
}

#[test]
fn a_signature_from_another_device_does_not_pass_as_this_one() {
    // Mallory's device signs fields naming Alice's device as the sender: it signs as itself, so
    // the result never verifies against Alice's identity.
    let mut alice = device(4, NoButton);
    let mut mallory = device(5, NoButton);
    let alice_id = alice.info(NOW).unwrap().identity;
    let (r, _) = request(Tier::Gold, UserId([2; 16]), 0);
    let sig = mallory.sign_rekey(NOW, r.clone()).unwrap();
    assert_eq!(rekey::verify(&alice_id, &r.fields(alice_id.user_id), &sig), Err(aqm_core::Error::BadSignature));
    // And a GOLD field whose ML-DSA half is damaged fails even though its Ed25519 half is good.
    let mut sig = alice.sign_rekey(NOW, r.clone()).unwrap();
    sig[64 + 11] ^= 1;
    assert_eq!(rekey::verify(&alice_id, &r.fields(alice_id.user_id), &sig), Err(aqm_core::Error::BadSignature));
}

#[test]
fn opened_replies_never_print_the_secret() {
    let reply = Reply::Opened { shared_secret: SecretBytes([0xAB; 32]) };
    let shown = format!("{reply:?}");
    assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "), "{shown}");
    assert!(shown.contains("redacted"));
    // The real path too: an open through the client.
    let mut client = device(6, NoButton);
    let mut coins = Vec::new();
    client.mint(NOW, Tier::Bronze, 1, |c| coins.push(c)).unwrap();
    let (ct, ss) = encapsulate(Tier::Bronze, &coins[0].public_key, &mut ChaCha20Rng::seed_from_u64(6)).unwrap();
    let got = client.open(NOW, coins[0].key_id, &ct).unwrap();
    assert_eq!(&*got, ss.as_bytes());
}

#[test]
fn minted_coins_are_v2() {
    let mut client = device(7, NoButton);
    let me = client.info(NOW).unwrap().identity;
    let p = Policy::DEFAULT;
    let mut coins = Vec::new();
    for tier in Tier::ALL {
        client.mint(NOW, tier, 1, |c| coins.push(c)).unwrap();
    }
    for c in &coins {
        let tier = c.tier;
        assert_eq!(c.expires_at, aqm_core::protocol::coin_expiry(NOW));
        assert_eq!(c.kind, aqm_core::coin::CoinKind::OneTime);
        assert_eq!(c.signature.len(), tier.signature_len());
        c.verify_fresh(&me, &p, NOW).unwrap();
        // Sent late but within the vault grace, the coin still opens; after it, it is gone.
        let (ct, _) = encapsulate(tier, &c.public_key, &mut ChaCha20Rng::seed_from_u64(7)).unwrap();
        let late = p.vault_deadline(c.expires_at) - 1;
        client.open(late, c.key_id, &ct).unwrap();
    }
    let mut coins = Vec::new();
    let now = client.status(NOW).unwrap().now;
    client.mint(now, Tier::Bronze, 1, |c| coins.push(c)).unwrap();
    let (ct, _) = encapsulate(Tier::Bronze, &coins[0].public_key, &mut ChaCha20Rng::seed_from_u64(8)).unwrap();
    let deadline = p.vault_deadline(coins[0].expires_at);
    assert_eq!(client.open(deadline, coins[0].key_id, &ct).unwrap_err(), Error::Device(DeviceError::CoinExpired));
    assert_eq!(client.purge(deadline).unwrap(), (1, 3));
}
