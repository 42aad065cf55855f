//! One ratchet message each way beside raw AES-256-GCM of the same size; the envelope's
//! encode/decode (owned and borrowed) beside raw postcard of an equivalent struct; one message through the whole
//! lifecycle (sealed session load/save on the reference store); and per tier the first message of
//! a chain (protocol v2): the re-key signature and its verification alone, then the whole send
//! (encapsulate, sign, ratchet, save) and the whole receive (verify before anything else,
//! decapsulate, decrypt, burn and save).
//!
//! `cargo bench -p aqm-core --bench messaging`
#![allow(missing_docs)]

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aqm_core::coin;
use aqm_core::crypto::{
    DeviceKey, Identity, KemCiphertext, SignatureBytes, decapsulate, encapsulate, generate_keypair,
};
use aqm_core::envelope::{Envelope, EnvelopeRef, MAX_ENVELOPE, MessageCiphertext, RekeyHeader};
use aqm_core::inventory::ContactMeta;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::Trust;
use aqm_core::ratchet::{RecvChain, RecvSession, SendChain};
use aqm_core::rekey::{self, RekeyFields, RekeySigner};
use aqm_core::store::{Direction, InventoryStore, PinStore, SessionStore, VaultStore};
use aqm_core::{DeviceContext, KeyId, Policy, Priority, Tier, UserId};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

const MSG: usize = 256;
const ALICE: UserId = UserId([0xa1; 16]);
const BOB: UserId = UserId([0xb0; 16]);
const COIN: KeyId = KeyId([0xc0; 16]);
const T: [u8; 32] = [0x5e; 32];

fn ratchet(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (seed, pk) = generate_keypair(Tier::Bronze, &mut rng);
    let (kem, ss) = encapsulate(Tier::Bronze, &pk, &mut rng).unwrap();
    let ss_bob = decapsulate(Tier::Bronze, &seed, &kem).unwrap();
    let aad = [0x42u8; 53];

    let mut g = c.benchmark_group("ratchet_message_256B");
    g.throughput(Throughput::Bytes(MSG as u64));

    let key = [7u8; 32];
    let nonce = Nonce::from([0u8; 12]);
    g.bench_function("raw_aes256gcm_encrypt", |b| {
        let mut buf = [0u8; MSG];
        b.iter(|| {
            // A fresh key per message, as the ratchet has: key schedule included.
            let tag = Aes256Gcm::new(&black_box(key).into())
                .encrypt_inout_detached(&nonce, &aad, (&mut buf[..]).into())
                .unwrap();
            black_box(tag)
        })
    });
    // A chain that never exhausts (the protocol caps a BRONZE chain at 5; the state is reset).
    let fresh = SendChain::new(&ss, &ALICE, &BOB, COIN, Tier::Bronze, 5, &T);
    let n = [0x11u8; 12];
    g.bench_function("ratchet_encrypt", |b| {
        let mut buf = [0u8; MSG];
        b.iter_batched_ref(
            || fresh.clone(),
            |send| black_box(send.encrypt(&aad, &n, &mut buf).unwrap()),
            BatchSize::SmallInput,
        )
    });

    let mut ct = [0u8; MSG];
    let tag = Aes256Gcm::new(&key.into()).encrypt_inout_detached(&nonce, &aad, (&mut ct[..]).into()).unwrap();
    g.bench_function("raw_aes256gcm_decrypt", |b| {
        b.iter(|| {
            let mut buf = ct;
            Aes256Gcm::new(&black_box(key).into())
                .decrypt_inout_detached(&nonce, &aad, (&mut buf[..]).into(), &tag)
                .unwrap();
            black_box(buf)
        })
    });
    let mut alice = SendChain::new(&ss, &ALICE, &BOB, COIN, Tier::Bronze, 2, &T);
    let mut msg = [0u8; MSG];
    let (counter, rtag) = alice.encrypt(&aad, &n, &mut msg).unwrap();
    let session = RecvSession::new(ALICE, RecvChain::new(&ss_bob, &ALICE, &BOB, COIN, Tier::Bronze, &T));
    g.bench_function("ratchet_decrypt", |b| {
        b.iter_batched_ref(
            || (session.clone(), msg),
            |(s, buf)| s.decrypt(32, &COIN, counter, &n, &aad, buf, &rtag).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The envelope's fields as a plain serde struct, for the raw postcard baseline.
#[derive(Serialize, Deserialize)]
struct RawEnvelope {
    version: u8,
    sender: [u8; 16],
    recipient: [u8; 16],
    chain: [u8; 16],
    rekey: Option<(u8, KemCiphertext, SignatureBytes)>,
    counter: u32,
    nonce: [u8; 12],
    ciphertext: MessageCiphertext,
}

fn envelope(c: &mut Criterion) {
    let cases = [
        ("envelope_256B", None),
        (
            "envelope_gold_rekey_256B",
            Some(RekeyHeader {
                tier: Tier::Gold,
                kem_ciphertext: KemCiphertext::from_slice(&[5u8; 1120]).unwrap(),
                signature: SignatureBytes::from_slice(&[6u8; 3373]).unwrap(),
            }),
        ),
    ];
    for (name, rekey) in cases {
        let ciphertext = MessageCiphertext::from_slice(&[9u8; MSG + 16]).unwrap();
        let env = Envelope::new(ALICE, BOB, COIN, rekey.clone(), 17, [3; 12], ciphertext.clone());
        let raw = RawEnvelope {
            version: 2,
            sender: ALICE.0,
            recipient: BOB.0,
            chain: COIN.0,
            rekey: rekey.map(|r| (r.tier.to_byte(), r.kem_ciphertext, r.signature)),
            counter: 17,
            nonce: [3; 12],
            ciphertext,
        };
        let mut buf = [0u8; MAX_ENVELOPE];
        let wire = env.encode(&mut buf).unwrap().to_vec();
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("raw_postcard_encode", |b| {
            b.iter(|| black_box(postcard::to_slice(black_box(&raw), &mut buf).unwrap().len()))
        });
        g.bench_function("encode", |b| b.iter(|| black_box(black_box(&env).encode(&mut buf).unwrap().len())));
        g.bench_function("raw_postcard_decode", |b| {
            b.iter(|| black_box(postcard::from_bytes::<RawEnvelope>(black_box(&wire)).unwrap().counter))
        });
        g.bench_function("decode", |b| b.iter(|| black_box(Envelope::decode(black_box(&wire)).unwrap().counter)));
        g.bench_function("decode_borrowed", |b| {
            b.iter(|| black_box(EnvelopeRef::decode(black_box(&wire)).unwrap().counter))
        });
        g.finish();
    }
}

/// One message on an open chain through `Messenger`: encrypt, seal and save the send session;
/// decode, load and open the receive session, decrypt, seal and save it. (A SILVER chain carries
/// 10 messages; one in ten sends re-keys, so the send figure includes that amortized cost.)
fn lifecycle(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    // Chains that never exhaust, so every iteration measures a message on an open chain.
    let policy = Policy::DEFAULT;
    let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    let (adk, bdk) = (DeviceKey::random(&mut rng), DeviceKey::random(&mut rng));
    let astore: Box<MemoryStore> = Box::new(MemoryStore::new(policy.clone()));
    let bstore: Box<MemoryStore> = Box::new(MemoryStore::new(policy.clone()));
    let minted = coin::mint(&bob, Tier::Silver, &bdk, 0, &mut rng).unwrap();
    bstore.put(&minted.vault).unwrap();
    astore.register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", 0).unwrap()).unwrap();
    astore.store_coin(&bob.user_id(), &minted.public, 0).unwrap();
    astore.pin_identity(bob.public(), Trust::Exchanged).unwrap();
    bstore.pin_identity(alice.public(), Trust::Exchanged).unwrap();
    let a = Messenger::new(&*astore, &alice, &adk);
    let b = Messenger::new(&*bstore, &bob, &bdk);
    let ctx = DeviceContext::OUTDOOR_CELLULAR;
    let text = [1u8; MSG];
    let mut wire = [0u8; MAX_ENVELOPE];
    let mut send = |rng: &mut ChaCha20Rng| -> Vec<u8> {
        match a.send(&bob.user_id(), &ctx, &text, SendOptions::default(), 1, rng).unwrap() {
            SendOutcome::Sent(s) => s.envelope.encode(&mut wire).unwrap().to_vec(),
            SendOutcome::NeedCoin { .. } => unreachable!("coins are cached"),
        }
    };
    let first = send(&mut rng);
    b.receive(&first, 2, &mut rng).unwrap();
    // Snapshots of both open sessions after the chain's first message: every iteration starts
    // from them, so it measures message 1 of an open chain (a chain carries at most 10 SILVER
    // messages; without the reset the benchmark would measure re-keys).
    let a_snap = astore.load_session(&bob.user_id(), Direction::Send).unwrap().unwrap();
    let b_snap = bstore.load_session(&alice.user_id(), Direction::Receive).unwrap().unwrap();
    let reset = || {
        let v = astore.load_session(&bob.user_id(), Direction::Send).unwrap().map(|s| s.version);
        astore.save_session(&bob.user_id(), Direction::Send, &a_snap.blob, v).unwrap();
        let v = bstore.load_session(&alice.user_id(), Direction::Receive).unwrap().map(|s| s.version);
        bstore.save_session(&alice.user_id(), Direction::Receive, &b_snap.blob, v).unwrap();
    };

    let mut g = c.benchmark_group("lifecycle_message_256B");
    g.throughput(Throughput::Bytes(MSG as u64));
    let mut rng2 = ChaCha20Rng::seed_from_u64(3);
    g.bench_function("receive_on_open_chain", |bn| {
        bn.iter_batched(
            || {
                reset();
                send(&mut rng)
            },
            |w| black_box(b.receive(&w, 2, &mut rng2).unwrap().counter),
            // Every input needs the reset just before it: one input per batch.
            BatchSize::PerIteration,
        )
    });
    g.bench_function("send_on_open_chain", |bn| {
        bn.iter_batched(reset, |()| black_box(send(&mut rng)), BatchSize::PerIteration)
    });
    g.finish();
}

/// The first message of a chain per tier (docs/protocol.md): what v2 added (the sender's re-key
/// signature and its verification) beside the whole first send and the whole first receive.
fn first_message(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    let (adk, bdk) = (DeviceKey::random(&mut rng), DeviceKey::random(&mut rng));
    let astore: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    let bstore: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    astore.pin_identity(bob.public(), Trust::Exchanged).unwrap();
    bstore.pin_identity(alice.public(), Trust::Exchanged).unwrap();
    let a = Messenger::new(&*astore, &alice, &adk);
    let b = Messenger::new(&*bstore, &bob, &bdk);
    let text = [1u8; MSG];
    for tier in Tier::ALL {
        let mut g = c.benchmark_group(format!("first_message/{tier}"));
        g.sample_size(20);
        let coin = coin::mint(&bob, tier, &bdk, 0, &mut rng).unwrap().public;
        let (kem, _) = encapsulate(tier, &coin.public_key, &mut rng).unwrap();
        let fields = RekeyFields {
            sender: alice.user_id(),
            recipient: bob.user_id(),
            coin: coin.key_id,
            tier,
            kem_ciphertext: &kem,
            coin_public_key_hash: rekey::coin_key_hash(&coin.public_key),
            counter: 0,
            nonce: [7; 12],
        };
        g.bench_function("sign_rekey", |bn| bn.iter(|| black_box(alice.sign_rekey(&fields, &mut rng).unwrap())));
        let sig = alice.sign_rekey(&fields, &mut rng).unwrap();
        g.bench_function("verify_rekey", |bn| {
            bn.iter(|| rekey::verify(black_box(alice.public()), &fields, &sig).unwrap())
        });
        g.bench_function("send_first", |bn| {
            bn.iter(|| black_box(a.send_with_coin(&bob.user_id(), &coin, tier, &text, 1, &mut rng).unwrap()))
        });
        let mut rng2 = ChaCha20Rng::seed_from_u64(5);
        g.bench_function("receive_first", |bn| {
            bn.iter_batched(
                || {
                    // A fresh coin in Bob's vault and its first message; burned coins are purged.
                    bstore.purge(1_000).unwrap();
                    let m = coin::mint(&bob, tier, &bdk, 0, &mut rng).unwrap();
                    bstore.put(&m.vault).unwrap();
                    let sent = a.send_with_coin(&bob.user_id(), &m.public, tier, &text, 1, &mut rng).unwrap();
                    sent.envelope.to_vec().unwrap()
                },
                |w| black_box(b.receive(&w, 2, &mut rng2).unwrap().counter),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, ratchet, envelope, lifecycle, first_message);
criterion_main!(benches);
