//! ML-DSA-65 signing speed on this machine, from the identity's seed as the product signs (key
//! expansion included), on a GOLD coin-sized message: the identity's signer (`small_mldsa65`)
//! beside `ml-dsa` 0.1.2 used the way `Identity` used it on hosts before (`SigningKey::from_seed`,
//! then `sign_randomized`). Run in a release build:
//!
//! ```text
//! cargo run --release -p aqm-core --example mldsa_sign_speed [signatures=300] [rounds=3]
//! ```
//!
//! Rounds alternate between the two signers; the last lines give each one's best round mean, and
//! `ml-dsa` signing with a key expanded once, for reference.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aqm_core::crypto::Identity;
use ml_dsa::{MlDsa65, SigningKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn time(n: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>().expect("a number"));
    let n = args.next().unwrap_or(300);
    let rounds = args.next().unwrap_or(3);
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
    let id = Identity::generate(&mut rng);
    let seed = id.secret().mldsa65_seed;
    // A GOLD coin's signed message is 1275 bytes (domain, ids, tier, kind, expiry, 1216-byte key).
    let msg = [0x5a; 1275];

    let mut small = || drop(black_box(id.kat_sign_mldsa65(black_box(&msg), &mut rng).expect("signs")));
    let mut rng2 = ChaCha20Rng::seed_from_u64(0x5eee);
    let mut crate_signer = || {
        let key = SigningKey::<MlDsa65>::from_seed(&black_box(seed).into());
        black_box(key.expanded_key().sign_randomized(black_box(&msg), &[], &mut rng2).expect("signs").encode());
    };
    time(20, &mut small);
    time(20, &mut crate_signer);
    let (mut best_small, mut best_crate) = (Duration::MAX, Duration::MAX);
    for round in 1..=rounds {
        let s = time(n, &mut small);
        let c = time(n, &mut crate_signer);
        best_small = best_small.min(s);
        best_crate = best_crate.min(c);
        println!("round {round}: {n} signatures each: small_mldsa65 {s:?}, ml-dsa {c:?} per signature");
    }
    // For reference, not how an identity signs: `ml-dsa` with its ~64 KiB key expanded once.
    let expanded = SigningKey::<MlDsa65>::from_seed(&seed.into());
    let pre = time(n, || {
        black_box(expanded.expanded_key().sign_randomized(black_box(&msg), &[], &mut rng2).expect("signs").encode());
    });
    println!("ml-dsa with the key expanded once (reference): {pre:?} per signature");
    let k = n / 10 + 1;
    let keygen_small = time(k, || drop(black_box(Identity::from_secret(id.secret().clone()))));
    let keygen_crate = time(k, || {
        let key = SigningKey::<MlDsa65>::from_seed(&black_box(seed).into());
        black_box(key.expanded_key().verifying_key().encode());
    });
    println!("sign (seed → signature), best round mean: small_mldsa65 {best_small:?}, ml-dsa {best_crate:?}");
    println!(
        "small_mldsa65 / ml-dsa: {:.2}×; public key from seed: small_mldsa65 {keygen_small:?} \
         (with Ed25519), ml-dsa {keygen_crate:?}",
        best_small.as_secs_f64() / best_crate.as_secs_f64()
    );
}
