//! Crypto benchmarks: each AQM operation beside the raw crate primitive it is built on, so the
//! overhead reads as a ratio.
//!
//! - `mint/<TIER>/aqm`: [`coin::mint`] (key id, key pair from a fresh seed, domain-separated
//!   owner signature, AES-256-GCM sealing of the seed).
//!   `mint/<TIER>/raw`: the crate key generation plus one signature by an already expanded key
//!   (X-Wing / ML-KEM-768 / X25519 keygen; ML-DSA-65 for GOLD, Ed25519 otherwise).
//!   `mint/GOLD/raw_seeded`: the same with the ML-DSA-65 key expanded from its seed for each
//!   signature, as AQM's seed-only [`Identity`] does.
//! - `encapsulate/<TIER>/aqm`: [`crypto::encapsulate`] from the coin's public key bytes.
//!   `encapsulate/<TIER>/raw`: the crate call on an already parsed key (BRONZE: X25519
//!   ephemeral key + DH, without AQM's HKDF).
//! - `decapsulate/<TIER>/aqm`: [`crypto::decapsulate`] from the stored seed (the key is
//!   regenerated from its seed each time: the vault keeps seeds only).
//!   `decapsulate/<TIER>/raw`: the crate call on an already expanded key.
//!
//! Run: `cargo bench -p aqm-core --bench crypto`.

use std::hint::black_box;
use std::time::Duration;

use aqm_core::coin::{self, CoinKind, PublicCoin};
use aqm_core::crypto::{self, DeviceKey, Identity};
use aqm_core::{KeyId, Tier};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use ml_dsa::MlDsa65;
use ml_kem::{DecapsulationKey768, EncapsulationKey768};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use x_wing::{Decapsulate, Decapsulator, Encapsulate, KeyExport};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0xBE_7C)
}

fn seed<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut s = [0u8; N];
    rng.fill_bytes(&mut s);
    s
}

fn message(pk: &[u8], tier: Tier) -> Vec<u8> {
    let pk = aqm_core::crypto::PublicKeyBytes::from_slice(pk).expect("public key size");
    PublicCoin::signed_message(&aqm_core::UserId([1; 16]), &KeyId([2; 16]), tier, CoinKind::OneTime, 30 * 86_400, &pk)
        .to_vec()
}

fn mint(c: &mut Criterion) {
    let mut r = rng();
    let identity = Identity::generate(&mut r);
    let device_key = DeviceKey::random(&mut r);
    let ed = ed25519_dalek::SigningKey::from_bytes(&seed(&mut r));
    let mldsa = ml_dsa::SigningKey::<MlDsa65>::from_seed(&seed::<32>(&mut r).into());
    let mut g = c.benchmark_group("mint");
    for tier in Tier::ALL {
        g.bench_function(format!("{tier}/aqm"), |b| {
            b.iter(|| coin::mint(&identity, tier, &device_key, 0, &mut r).expect("mint"))
        });
    }
    g.bench_function("GOLD/raw", |b| {
        b.iter(|| {
            let dk = x_wing::DecapsulationKey::from(seed::<32>(&mut r));
            let pk = dk.encapsulation_key().to_bytes();
            let sig = mldsa.expanded_key().sign_randomized(&message(&pk, Tier::Gold), &[], &mut r).expect("sign");
            black_box((pk, sig))
        })
    });
    // The same, but expanding the ML-DSA-65 key from its seed for each signature, as an identity
    // that keeps only seeds does: isolates the cost of that choice.
    let mldsa_seed = seed::<32>(&mut r);
    g.bench_function("GOLD/raw_seeded", |b| {
        b.iter(|| {
            let dk = x_wing::DecapsulationKey::from(seed::<32>(&mut r));
            let pk = dk.encapsulation_key().to_bytes();
            let key = ml_dsa::SigningKey::<MlDsa65>::from_seed(&mldsa_seed.into());
            let sig = key.expanded_key().sign_randomized(&message(&pk, Tier::Gold), &[], &mut r).expect("sign");
            black_box((pk, sig))
        })
    });
    g.bench_function("SILVER/raw", |b| {
        b.iter(|| {
            let s = seed::<64>(&mut r);
            let dk = DecapsulationKey768::from_seed(ml_kem::Seed::try_from(&s[..]).expect("seed"));
            let pk = dk.encapsulation_key().to_bytes();
            black_box((ed.sign(&message(&pk, Tier::Silver)), pk))
        })
    });
    g.bench_function("BRONZE/raw", |b| {
        b.iter(|| {
            let sk = x25519_dalek::StaticSecret::random_from_rng(&mut r);
            let pk = x25519_dalek::PublicKey::from(&sk);
            black_box((ed.sign(&message(pk.as_bytes(), Tier::Bronze)), pk))
        })
    });
    g.finish();
}

fn kem(c: &mut Criterion) {
    let mut r = rng();
    let keys = Tier::ALL.map(|t| crypto::generate_keypair(t, &mut r));
    let mut enc = c.benchmark_group("encapsulate");
    for tier in Tier::ALL {
        let pk = &keys[tier.index()].1;
        enc.bench_function(format!("{tier}/aqm"), |b| b.iter(|| crypto::encapsulate(tier, pk, &mut r).expect("encap")));
    }
    let gold_ek = x_wing::EncapsulationKey::try_from(&keys[0].1[..]).expect("X-Wing key");
    enc.bench_function("GOLD/raw", |b| b.iter(|| gold_ek.encapsulate_with_rng(&mut r)));
    let silver_ek =
        EncapsulationKey768::new(&ml_kem::array::Array::try_from(&keys[1].1[..]).expect("size")).expect("ML-KEM key");
    enc.bench_function("SILVER/raw", |b| b.iter(|| silver_ek.encapsulate_with_rng(&mut r)));
    let bronze_pk = x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(&keys[2].1[..]).expect("size"));
    enc.bench_function("BRONZE/raw", |b| {
        b.iter(|| {
            let eph = x25519_dalek::StaticSecret::random_from_rng(&mut r);
            black_box((x25519_dalek::PublicKey::from(&eph), eph.diffie_hellman(&bronze_pk)))
        })
    });
    enc.finish();

    let cts = Tier::ALL.map(|t| crypto::encapsulate(t, &keys[t.index()].1, &mut r).expect("encap").0);
    let mut dec = c.benchmark_group("decapsulate");
    for tier in Tier::ALL {
        let (seed, _) = &keys[tier.index()];
        let ct = &cts[tier.index()];
        dec.bench_function(format!("{tier}/aqm"), |b| b.iter(|| crypto::decapsulate(tier, seed, ct).expect("decap")));
    }
    let gold_dk = x_wing::DecapsulationKey::from(<[u8; 32]>::try_from(keys[0].0.as_bytes()).expect("size"));
    dec.bench_function("GOLD/raw", |b| b.iter(|| gold_dk.decapsulate_slice(&cts[0]).expect("decap")));
    let silver_dk = DecapsulationKey768::from_seed(ml_kem::Seed::try_from(keys[1].0.as_bytes()).expect("size"));
    dec.bench_function("SILVER/raw", |b| b.iter(|| silver_dk.decapsulate_slice(&cts[1]).expect("decap")));
    let bronze_sk = x25519_dalek::StaticSecret::from(<[u8; 32]>::try_from(keys[2].0.as_bytes()).expect("size"));
    let eph = x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(&cts[2][..]).expect("size"));
    dec.bench_function("BRONZE/raw", |b| b.iter(|| bronze_sk.diffie_hellman(&eph)));
    dec.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = mint, kem
}
criterion_main!(benches);
