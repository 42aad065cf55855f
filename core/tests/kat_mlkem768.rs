//! ML-KEM-768 (FIPS 203), the SILVER tier, through `aqm_core::crypto`: key generation from the
//! 64-byte seed d‖z by [`public_key_from_seed`], encapsulation by [`encapsulate`] with the
//! vector's `m` fed through a fixed RNG, and decapsulation by [`decapsulate`], including the
//! implicit-rejection answers K̄ = J(z ‖ c) for ciphertexts that do not re-encrypt (counted apart,
//! and checked against an independent SHAKE256 of z ‖ c).

mod kat_common;

use aqm_core::crypto::{SecretSeed, decapsulate, encapsulate, public_key_from_seed};
use aqm_core::{Error, Tier};
use kat_common::{Counts, FixedRng, field, id, load, wycheproof_tests};
use shake::{ExtendableOutput, Shake256, Update, XofReader};

/// J(z ‖ c): the FIPS 203 implicit-rejection key.
fn j(z: &[u8], c: &[u8]) -> [u8; 32] {
    let mut h = Shake256::default();
    h.update(z);
    h.update(c);
    let mut out = [0u8; 32];
    h.finalize_xof().read(&mut out);
    out
}

#[test]
fn keygen_from_seed_wycheproof() {
    let file = load("wycheproof/mlkem_768_keygen_seed_test.json");
    let mut counts = Counts::new("ML-KEM-768 keygen from seed (Wycheproof) via public_key_from_seed");
    for (g, t) in wycheproof_tests(&file) {
        assert_eq!(g["parameterSet"], "ML-KEM-768");
        assert_eq!(t["result"], "valid");
        let seed = SecretSeed::from_slice(&field(t, "seed")).expect("64-byte seed");
        let pk = public_key_from_seed(Tier::Silver, &seed).expect("derives");
        assert_eq!(pk.as_slice(), field(t, "ek").as_slice(), "{}", id(t));
        counts.ran("valid");
    }
    counts.finish(&["valid"]);
}

#[test]
fn keygen_and_decaps_wycheproof() {
    let file = load("wycheproof/mlkem_768_test.json");
    let mut counts = Counts::new("ML-KEM-768 keygen + decaps (Wycheproof) via decapsulate");
    for (_, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        let seed = field(t, "seed");
        let c = field(t, "c");
        let seed = SecretSeed::from_slice(&seed);
        if result == "invalid" {
            // Seeds of the wrong length and ciphertexts of the wrong length are refused.
            let got = seed.and_then(|s| decapsulate(Tier::Silver, &s, &c));
            assert!(matches!(got, Err(Error::BadLength { .. })), "{}: {got:?}", id(t));
            counts.ran("invalid");
            continue;
        }
        let seed = seed.expect("64-byte seed");
        let pk = public_key_from_seed(Tier::Silver, &seed).expect("derives");
        if let Some(ek) = kat_common::opt_field(t, "ek") {
            assert_eq!(pk.as_slice(), ek.as_slice(), "{}: ek", id(t));
        }
        let k = decapsulate(Tier::Silver, &seed, &c).expect("decapsulates");
        let expected = field(t, "K");
        assert_eq!(k.as_bytes().as_slice(), expected.as_slice(), "{}: K", id(t));
        if expected == j(&seed.as_bytes()[32..], &c) {
            counts.ran("valid (implicit rejection)");
        } else {
            counts.ran("valid");
        }
    }
    counts.finish(&["valid", "invalid"]);
}

#[test]
fn encaps_wycheproof() {
    let file = load("wycheproof/mlkem_768_encaps_test.json");
    let mut counts = Counts::new("ML-KEM-768 encaps (Wycheproof) via encapsulate with m through a fixed RNG");
    for (_, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        let mut rng = FixedRng::new(&field(t, "m"));
        let got = encapsulate(Tier::Silver, &field(t, "ek"), &mut rng);
        match result {
            "valid" => {
                let (c, k) = got.unwrap_or_else(|e| panic!("{}: {e:?}", id(t)));
                assert!(rng.is_drained(), "{}: m is 32 bytes", id(t));
                assert_eq!(c.as_slice(), field(t, "c").as_slice(), "{}: c", id(t));
                assert_eq!(k.as_bytes().as_slice(), field(t, "K").as_slice(), "{}: K", id(t));
            }
            _ => {
                // Unreduced coefficients (the FIPS 203 modulus check) and wrong lengths.
                assert!(matches!(got, Err(Error::BadPublicKey | Error::BadLength { .. })), "{}: {got:?}", id(t));
            }
        }
        counts.ran(result);
    }
    counts.finish(&["valid", "invalid"]);
}

#[test]
fn implicit_rejection_of_tampered_ciphertexts() {
    // Independent of the vectors: for every keygen seed, flip one bit in an honest ciphertext and
    // expect exactly J(z ‖ c'), not an error.
    let file = load("wycheproof/mlkem_768_keygen_seed_test.json");
    let mut counts = Counts::new("ML-KEM-768 implicit rejection via decapsulate (tampered ciphertexts)");
    for (i, (_, t)) in wycheproof_tests(&file).enumerate() {
        let seed = SecretSeed::from_slice(&field(t, "seed")).expect("64-byte seed");
        let pk = public_key_from_seed(Tier::Silver, &seed).expect("derives");
        let m = [i as u8; 32];
        let (mut c, k) = encapsulate(Tier::Silver, &pk, &mut FixedRng::new(&m)).expect("encapsulates");
        assert_eq!(decapsulate(Tier::Silver, &seed, &c).expect("decapsulates"), k);
        let at = (i * 37) % c.len();
        c[at] ^= 1 << (i % 8);
        let k2 = decapsulate(Tier::Silver, &seed, &c).expect("implicit rejection is not an error");
        assert_eq!(k2.as_bytes(), &j(&seed.as_bytes()[32..], &c), "{}", id(t));
        counts.ran("valid (implicit rejection)");
    }
    counts.finish(&["valid (implicit rejection)"]);
}
