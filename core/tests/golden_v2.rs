//! Golden byte vectors of AQM's own protocol v2 formats (docs/protocol.md, §3.1, §5), committed as hex
//! under `tests/vectors/aqm-v2/` so another implementation can interoperate: the coin signed
//! message and signature of each tier, the registration message and proof, the re-key signed
//! bytes, transcript hash and signature of each tier, the seal AADs (vault seed, session), and a
//! full envelope exchange of each tier built through `Messenger` on a `MemoryStore` from a fixed
//! ChaCha20 seed. The BRONZE DHKEM derivation, computed independently, is
//! `kat_x25519::bronze_dhkem_golden`.
//!
//! Two checks: current code reproduces every file byte for byte, and what the files hold decodes
//! and verifies, read from the files alone (plus the fixed inputs documented in the README).
//! `AQM_GOLDEN_REGENERATE=1 cargo test -p aqm-core --test golden_v2 -- --ignored` rewrites them.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aqm_core::coin::{self, CoinKind, PublicCoin};
use aqm_core::crypto::{
    DeviceKey, Identity, IdentitySecret, PublicKeyBytes, RegistrationProof, SealedSecret, SecretSeed, SignatureBytes,
    encapsulate, public_key_from_seed,
};
use aqm_core::envelope::Envelope;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::Trust;
use aqm_core::ratchet::{SESSION_AAD_DOMAIN, SendChain};
use aqm_core::rekey::{self, RekeyFields, RekeySigner, coin_key_hash};
use aqm_core::store::{PinStore, VaultStore};
use aqm_core::vault::VaultEntry;
use aqm_core::{DeviceContext, KeyId, Policy, Tier, UnixSeconds, UserId, protocol};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

/// Mint time of every coin here (2023-11-14T22:13:20Z).
const NOW: UnixSeconds = 1_700_000_000;
/// Expiry of every coin: mint time + 30 days.
const EXPIRES_AT: UnixSeconds = NOW + 30 * 86_400;

fn alice() -> Identity {
    Identity::from_secret(IdentitySecret {
        user_id: UserId([0xaa; 16]),
        ed25519_seed: [0x01; 32],
        mldsa65_seed: [0x02; 32],
    })
}

fn bob() -> Identity {
    Identity::from_secret(IdentitySecret {
        user_id: UserId([0xbb; 16]),
        ed25519_seed: [0x03; 32],
        mldsa65_seed: [0x04; 32],
    })
}

fn name(tier: Tier) -> &'static str {
    match tier {
        Tier::Gold => "gold",
        Tier::Silver => "silver",
        Tier::Bronze => "bronze",
    }
}

/// The fixed coin of `tier` in the coin and re-key vectors: key id `c<t>…`, seed `5<t>…`.
fn fixed_coin(tier: Tier) -> (KeyId, SecretSeed, PublicKeyBytes) {
    let t = tier.to_byte();
    let seed = SecretSeed::from_slice(&vec![0x50 | t; tier.seed_len()]).expect("seed");
    let pk = public_key_from_seed(tier, &seed).expect("public key");
    (KeyId([0xc0 | t; 16]), seed, pk)
}

fn rng(label: &str, tier: Option<Tier>) -> ChaCha20Rng {
    // ChaCha20 seed: SHA-256("AQM-golden-v2 " ‖ label ‖ [tier byte]).
    let mut h = Sha256::new().chain_update(b"AQM-golden-v2 ").chain_update(label.as_bytes());
    if let Some(t) = tier {
        h.update([t.to_byte()]);
    }
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// The plaintexts of the envelope exchange of `tier`, messages 0 and 1.
fn plaintexts(tier: Tier) -> [Vec<u8>; 2] {
    [format!("AQM golden v2, {} message 0", name(tier)).into_bytes(), b"and message 1".to_vec()]
}

/// Every vector as current code computes it, by file name (without `.hex`).
fn compute() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let (alice, bob) = (alice(), bob());

    // Identities (inputs of everything below, pinned so a change of derivation shows).
    for (who, id) in [("alice", &alice), ("bob", &bob)] {
        out.insert(format!("identity-{who}-ed25519-public"), id.public().ed25519.to_vec());
        out.insert(format!("identity-{who}-mldsa65-public"), id.public().mldsa65.to_vec());
    }

    // Registration: message and proof (ML-DSA-65 hedged with a fixed ChaCha20 stream).
    let reg = alice.public().registration_message();
    out.insert("register-alice-message".into(), reg.to_vec());
    let proof = alice.registration_proof(&mut rng("register", None)).expect("signs");
    out.insert("register-alice-ed25519".into(), proof.ed25519.to_vec());
    out.insert("register-alice-mldsa65".into(), proof.mldsa65.to_vec());

    for tier in Tier::ALL {
        let n = name(tier);
        let (key_id, seed, pk) = fixed_coin(tier);

        // Coin of Bob's: signed message and signature field.
        let msg = PublicCoin::signed_message(&bob.user_id(), &key_id, tier, CoinKind::OneTime, EXPIRES_AT, &pk);
        out.insert(format!("coin-{n}-message"), msg.to_vec());
        let mut sig = bob.kat_sign_ed25519(&msg).to_vec();
        if tier.hybrid_signature() {
            sig.extend_from_slice(&bob.kat_sign_mldsa65(&msg, &mut rng("coin", Some(tier))).expect("signs"));
        }
        out.insert(format!("coin-{n}-signature"), sig);

        // Re-key of a chain Alice opens with that coin.
        let (kem, _) = encapsulate(tier, &pk, &mut rng("rekey-kem", Some(tier))).expect("encapsulates");
        let fields = rekey_fields(&alice, tier, &kem, &pk);
        out.insert(format!("rekey-{n}-signed"), fields.signed_bytes().expect("signed bytes").to_vec());
        out.insert(format!("rekey-{n}-transcript"), fields.transcript_hash().expect("hash").to_vec());
        let sig = alice.sign_rekey(&fields, &mut rng("rekey-sig", Some(tier))).expect("signs");
        out.insert(format!("rekey-{n}-signature"), sig.to_vec());

        // Vault seal: AAD = key id ‖ tier byte; sealed = nonce ‖ ciphertext ‖ tag under device key d2….
        let mut aad = key_id.as_bytes().to_vec();
        aad.push(tier.to_byte());
        out.insert(format!("seal-vault-{n}-aad"), aad);
        let sealed =
            SealedSecret::seal(&bob_device_key(), &key_id, tier, &seed, &mut rng("vault", Some(tier))).expect("seals");
        out.insert(format!("seal-vault-{n}-sealed"), [sealed.nonce.as_slice(), &sealed.ciphertext].concat());

        // A full exchange through Messenger.
        let [e0, e1, coin_seed, coin_pk] = exchange(tier);
        out.insert(format!("envelope-{n}-0"), e0);
        out.insert(format!("envelope-{n}-1"), e1);
        out.insert(format!("envelope-{n}-coin-seed"), coin_seed);
        out.insert(format!("envelope-{n}-coin-public"), coin_pk);
    }

    // Session seal AADs, for peer Bob: domain ‖ peer ‖ direction byte (send 1, receive 2).
    for (dir, byte) in [("send", 1u8), ("receive", 2)] {
        out.insert(format!("seal-session-{dir}-aad"), [SESSION_AAD_DOMAIN, bob.user_id().as_bytes(), &[byte]].concat());
    }
    out
}

fn bob_device_key() -> DeviceKey {
    DeviceKey::from_bytes([0xd2; 32])
}

fn rekey_fields<'a>(alice: &Identity, tier: Tier, kem: &'a [u8], coin_pk: &[u8]) -> RekeyFields<'a> {
    RekeyFields {
        sender: alice.user_id(),
        recipient: UserId([0xbb; 16]),
        coin: fixed_coin(tier).0,
        tier,
        kem_ciphertext: kem,
        coin_public_key_hash: coin_key_hash(coin_pk),
        counter: 0,
        nonce: [0x4e; 12],
    }
}

/// Bob mints a coin of `tier` at [`NOW`]; Alice, who pinned Bob, opens a chain with it a minute
/// later (message 0, signed re-key) and sends message 1 on it. One ChaCha20 stream drives all of
/// it. Returns both envelopes, the coin's secret seed and its public key.
fn exchange(tier: Tier) -> [Vec<u8>; 4] {
    let mut rng = rng("envelope", Some(tier));
    let (alice, bob) = (alice(), bob());
    let alice_store = Box::new(MemoryStore::<4, 2, 2, 4, 2, 2, 2>::new(Policy::DEFAULT));
    alice_store.pin_identity(bob.public(), Trust::Exchanged).expect("pins");
    let minted = coin::mint(&bob, tier, &bob_device_key(), NOW, &mut rng).expect("mints");
    let alice_dk = DeviceKey::from_bytes([0xd1; 32]);
    let a = Messenger::new(&*alice_store, &alice, &alice_dk);
    let [p0, p1] = plaintexts(tier);
    let m0 = a.send_with_coin(&bob.user_id(), &minted.public, tier, &p0, NOW + 60, &mut rng).expect("sends");
    let SendOutcome::Sent(m1) = a
        .send(&bob.user_id(), &DeviceContext::HOME_WIFI, &p1, SendOptions::default(), NOW + 61, &mut rng)
        .expect("sends")
    else {
        panic!("the open chain carries message 1")
    };
    assert!(m0.rekeyed && !m1.rekeyed);
    let seed = minted.vault.sealed.open(&bob_device_key(), &minted.public.key_id, tier).expect("opens");
    [
        m0.envelope.to_vec().expect("encodes"),
        m1.envelope.to_vec().expect("encodes"),
        seed.as_bytes().to_vec(),
        minted.public.public_key.to_vec(),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/aqm-v2")
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let s = text.trim();
    assert!(s.len().is_multiple_of(2) && s.bytes().all(|c| c.is_ascii_hexdigit()), "{name}: not hex");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn current_code_reproduces_every_vector() {
    common::on_big_stack(|| {
        let got = compute();
        let mut on_disk: Vec<String> = std::fs::read_dir(dir())
            .expect("vector dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".hex").map(str::to_owned))
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, got.keys().cloned().collect::<Vec<_>>(), "files on disk and vectors computed differ");
        for (name, bytes) in &got {
            assert_eq!(to_hex(&read(name)), to_hex(bytes), "{name}.hex differs from what current code computes");
        }
        println!("golden v2: {} vectors reproduced byte for byte", got.len());
    });
}

/// Rewrites the files (after a deliberate format change, reviewed in the diff).
#[test]
#[ignore = "rewrites tests/vectors/aqm-v2; run with AQM_GOLDEN_REGENERATE=1"]
fn regenerate() {
    assert_eq!(std::env::var("AQM_GOLDEN_REGENERATE").as_deref(), Ok("1"), "set AQM_GOLDEN_REGENERATE=1");
    common::on_big_stack(|| {
        std::fs::create_dir_all(dir()).expect("vector dir");
        for entry in std::fs::read_dir(dir()).expect("vector dir").flatten() {
            if entry.path().extension().is_some_and(|e| e == "hex") {
                std::fs::remove_file(entry.path()).expect("remove");
            }
        }
        for (name, bytes) in compute() {
            std::fs::write(dir().join(format!("{name}.hex")), to_hex(&bytes) + "\n").expect("write");
        }
    });
}

/// The vectors decode and verify, read from the files (only the fixed inputs come from code).
#[test]
fn vectors_decode_and_verify() {
    common::on_big_stack(|| {
        let (alice, bob) = (alice(), bob());
        let mut checked = 0;

        // Registration.
        let reg = read("register-alice-message");
        assert_eq!(
            reg,
            [
                b"AQM-register-v2".as_slice(),
                &[0xaa; 16],
                &read("identity-alice-ed25519-public"),
                &read("identity-alice-mldsa65-public")
            ]
            .concat()
        );
        let proof = RegistrationProof {
            ed25519: SignatureBytes::from_slice(&read("register-alice-ed25519")).expect("fits"),
            mldsa65: SignatureBytes::from_slice(&read("register-alice-mldsa65")).expect("fits"),
        };
        alice.public().verify_registration(&proof).expect("the registration proof verifies");
        checked += 1;

        for tier in Tier::ALL {
            let n = name(tier);
            let (key_id, _, pk) = fixed_coin(tier);

            // Coin: the layout of docs/protocol.md, and the signature verifies as a PublicCoin.
            let msg = read(&format!("coin-{n}-message"));
            let want = [
                b"AQM-coin-v2".as_slice(),
                &[0xbb; 16],
                key_id.as_bytes(),
                &[tier.to_byte(), 0],
                &EXPIRES_AT.to_be_bytes(),
                &pk,
            ]
            .concat();
            assert_eq!(msg, want, "coin-{n}-message layout");
            let coin = PublicCoin {
                owner: bob.user_id(),
                key_id,
                tier,
                kind: CoinKind::OneTime,
                expires_at: EXPIRES_AT,
                public_key: pk.clone(),
                signature: SignatureBytes::from_slice(&read(&format!("coin-{n}-signature"))).expect("fits"),
            };
            coin.verify(bob.public()).expect("the coin verifies");

            // Re-key: layout, transcript hash, signature.
            let signed = read(&format!("rekey-{n}-signed"));
            let ct_len = tier.ciphertext_len();
            let head = [
                b"AQM-rekey-v2".as_slice(),
                &[2],
                &[0xaa; 16],
                &[0xbb; 16],
                key_id.as_bytes(),
                &[tier.to_byte()],
                &(ct_len as u16).to_be_bytes(),
            ]
            .concat();
            assert_eq!(signed[..head.len()], head[..], "rekey-{n}-signed header");
            let kem = &signed[head.len()..head.len() + ct_len];
            let tail = [Sha256::digest(&pk).as_slice(), &0u32.to_be_bytes(), &[0x4e; 12]].concat();
            assert_eq!(signed[head.len() + ct_len..], tail[..], "rekey-{n}-signed tail");
            assert_eq!(read(&format!("rekey-{n}-transcript")), Sha256::digest(&signed).to_vec());
            let fields = rekey_fields(&alice, tier, kem, &pk);
            rekey::verify(alice.public(), &fields, &read(&format!("rekey-{n}-signature")))
                .expect("the re-key verifies");

            // Vault seal: opens with AES-256-GCM under the AAD of the file.
            let aad = read(&format!("seal-vault-{n}-aad"));
            assert_eq!(aad, [key_id.as_bytes().as_slice(), &[tier.to_byte()]].concat());
            let sealed = read(&format!("seal-vault-{n}-sealed"));
            let body = aes_open(&[0xd2; 32], &sealed, &aad).expect("the sealed seed opens under its AAD");
            assert_eq!(body, fixed_coin(tier).1.as_bytes());

            // Envelopes: decode, the re-key verifies against Alice, and Bob opens both messages.
            let coin_seed = SecretSeed::from_slice(&read(&format!("envelope-{n}-coin-seed"))).expect("seed");
            let coin_pk = read(&format!("envelope-{n}-coin-public"));
            assert_eq!(public_key_from_seed(tier, &coin_seed).expect("pk").as_slice(), coin_pk.as_slice());
            let (w0, w1) = (read(&format!("envelope-{n}-0")), read(&format!("envelope-{n}-1")));
            let e0 = Envelope::decode(&w0).expect("message 0 decodes");
            let e1 = Envelope::decode(&w1).expect("message 1 decodes");
            let r = e0.rekey.as_ref().expect("message 0 opens the chain");
            assert_eq!((r.tier, e0.counter, e1.counter, e1.rekey.is_none(), e1.chain), (tier, 0, 1, true, e0.chain));
            let fields = RekeyFields {
                sender: alice.user_id(),
                recipient: bob.user_id(),
                coin: e0.chain,
                tier,
                kem_ciphertext: &r.kem_ciphertext,
                coin_public_key_hash: coin_key_hash(&coin_pk),
                counter: 0,
                nonce: e0.nonce,
            };
            rekey::verify(alice.public(), &fields, &r.signature).expect("the envelope's re-key verifies");
            let bob_store = Box::new(MemoryStore::<4, 2, 2, 4, 2, 2, 2>::new(Policy::DEFAULT));
            bob_store.pin_identity(alice.public(), Trust::Exchanged).expect("pins");
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let sealed = SealedSecret::seal(&bob_device_key(), &e0.chain, tier, &coin_seed, &mut rng).expect("seals");
            bob_store
                .put(&VaultEntry::new_active(
                    e0.chain,
                    tier,
                    CoinKind::OneTime,
                    sealed,
                    NOW,
                    protocol::coin_expiry(NOW),
                ))
                .expect("stores");
            let bob_dk = bob_device_key();
            let b = Messenger::new(&*bob_store, &bob, &bob_dk);
            let [p0, p1] = plaintexts(tier);
            assert_eq!(&b.receive(&w0, NOW + 120, &mut rng).expect("Bob opens message 0").plaintext[..], &p0[..]);
            assert_eq!(&b.receive(&w1, NOW + 121, &mut rng).expect("Bob opens message 1").plaintext[..], &p1[..]);
            checked += 4;
        }

        // Session seal AADs: a send chain sealed by the core opens under the send AAD.
        let send_aad = read("seal-session-send-aad");
        assert_eq!(send_aad, [b"AQM-session-v2".as_slice(), &[0xbb; 16], &[1]].concat());
        assert_eq!(read("seal-session-receive-aad"), [b"AQM-session-v2".as_slice(), &[0xbb; 16], &[2]].concat());
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (_, pk) = aqm_core::crypto::generate_keypair(Tier::Bronze, &mut rng);
        let (_, ss) = encapsulate(Tier::Bronze, &pk, &mut rng).expect("encapsulates");
        let chain = SendChain::new(&ss, &alice.user_id(), &bob.user_id(), KeyId([1; 16]), Tier::Bronze, 5, &[0; 32]);
        let blob = chain.seal(&bob_device_key(), &mut rng).expect("seals");
        aes_open(&[0xd2; 32], &blob, &send_aad).expect("a sealed session opens under the send AAD");
        assert!(aes_open(&[0xd2; 32], &blob, &read("seal-session-receive-aad")).is_none());
        checked += 1;
        println!("golden v2: {checked} groups decoded and verified");
    });
}

/// AES-256-GCM open of `nonce (12) ‖ ciphertext ‖ tag (16)`, independent of the core.
fn aes_open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let (nonce, rest) = sealed.split_at_checked(12)?;
    let (ct, tag) = rest.split_at_checked(rest.len().checked_sub(16)?)?;
    let mut body = ct.to_vec();
    Aes256Gcm::new(&(*key).into())
        .decrypt_inout_detached(
            &Nonce::from(<[u8; 12]>::try_from(nonce).ok()?),
            aad,
            body.as_mut_slice().into(),
            &Tag::try_from(tag).ok()?,
        )
        .ok()?;
    Some(body)
}
