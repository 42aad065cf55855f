//! ML-DSA-65 (FIPS 204, pure, empty context) known answers through `aqm_core::crypto`:
//! key generation by [`Identity::from_secret`] (NIST ACVP keyGen), signing by
//! [`Identity::sign_mldsa65`] with the vector's `rnd` (or 32 zero bytes for the deterministic
//! variant) fed through a fixed RNG (Wycheproof sign, seeded and unseeded), and verification by
//! [`PublicIdentity::verify_mldsa65`] (Wycheproof verify).
//!
//! Signing goes through the identity's signer, `small_mldsa65`, on every build; verification is
//! `ml-dsa`.

mod kat_common;

use std::collections::HashMap;

use aqm_core::UserId;
use aqm_core::crypto::{Identity, IdentitySecret, PublicIdentity};
use kat_common::{Counts, FixedRng, field, id, load, opt_field, wycheproof_tests};
use serde_json::Value;

fn identity(xi: [u8; 32]) -> Identity {
    Identity::from_secret(IdentitySecret { user_id: UserId([7; 16]), ed25519_seed: [1; 32], mldsa65_seed: xi })
}

fn public(mldsa65: &[u8]) -> Option<PublicIdentity> {
    Some(PublicIdentity {
        user_id: UserId([7; 16]),
        ed25519: [0; 32],
        mldsa65: heapless::Vec::from_slice(mldsa65).ok()?,
    })
}

const SIGNER: &str = "small_mldsa65";

#[test]
fn keygen_acvp() {
    let file = load("acvp/ml_dsa_65_keygen.json");
    let mut counts = Counts::new("ML-DSA-65 keyGen (ACVP) via Identity::from_secret");
    for g in file["testGroups"].as_array().expect("groups") {
        assert_eq!(g["parameterSet"], "ML-DSA-65");
        for t in g["tests"].as_array().expect("tests") {
            let xi: [u8; 32] = field(t, "seed").try_into().expect("32-byte seed");
            let pk = field(t, "pk");
            assert_eq!(identity(xi).public().mldsa65.as_slice(), pk.as_slice(), "tcId {}", t["tcId"]);
            counts.ran("valid");
        }
    }
    println!("signer: {SIGNER}");
    counts.finish(&["valid"]);
}

/// One Wycheproof signing vector through `Identity::sign_mldsa65`, or the reason it cannot run.
fn sign_one(xi: [u8; 32], expected_pk: &[u8], t: &Value) -> Result<(), &'static str> {
    if opt_field(t, "ctx").is_some_and(|c| !c.is_empty()) {
        return Err("non-empty context: AQM signs with the empty context only");
    }
    let Some(msg) = opt_field(t, "msg") else {
        return Err("external mu (ML-DSA.Sign_internal): not an AQM interface");
    };
    let id = identity(xi);
    assert_eq!(id.public().mldsa65.as_slice(), expected_pk, "{}: public key", kat_common::id(t));
    // Deterministic signing is hedged signing with rnd = 0^32 (FIPS 204 Algorithm 2).
    let rnd = opt_field(t, "rnd").unwrap_or_else(|| vec![0; 32]);
    let mut rng = FixedRng::new(&rnd);
    let sig = id.kat_sign_mldsa65(&msg, &mut rng).expect("signs");
    assert!(rng.is_drained(), "{}: the signer must draw exactly 32 random bytes", kat_common::id(t));
    assert_eq!(hex_str(&sig), t["sig"].as_str().expect("sig"), "{}: signature", kat_common::id(t));
    // And what we sign, we verify.
    public(expected_pk).expect("pk fits").verify_mldsa65(&msg, &sig).expect("own signature verifies");
    Ok(())
}

fn hex_str(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sign_wycheproof_seeded() {
    let file = load("wycheproof/mldsa_65_sign_seed_test.json");
    let mut counts = Counts::new("ML-DSA-65 sign, seeded (Wycheproof) via Identity::sign_mldsa65");
    for (g, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        let Ok(xi) = <[u8; 32]>::try_from(field(g, "privateSeed")) else {
            // IdentitySecret holds `[u8; 32]`: a seed of another length cannot be expressed.
            assert_eq!(result, "invalid", "{}", id(t));
            counts.skip("seed not 32 bytes: unrepresentable in IdentitySecret");
            continue;
        };
        if result != "valid" {
            // The remaining invalid vectors are contexts over 255 bytes: we have no context.
            assert!(opt_field(t, "ctx").is_some_and(|c| c.len() > 255), "{}", id(t));
            counts.skip("context > 255 bytes: AQM has no context parameter");
            continue;
        }
        match sign_one(xi, &field(g, "publicKey"), t) {
            Ok(()) => counts.ran(result),
            Err(why) => counts.skip(why),
        }
    }
    println!("signer: {SIGNER}");
    counts.finish(&["valid"]);
}

#[test]
fn sign_wycheproof_noseed_via_matching_seed() {
    // The unseeded file gives expanded private keys, which AQM never holds; where a group's public
    // key is one of the seeded file's, sign with that seed and expect the same signature.
    let seeded = load("wycheproof/mldsa_65_sign_seed_test.json");
    let mut seeds: HashMap<Vec<u8>, [u8; 32]> = HashMap::new();
    for g in seeded["testGroups"].as_array().expect("groups") {
        if let Ok(xi) = <[u8; 32]>::try_from(field(g, "privateSeed")) {
            seeds.insert(field(g, "publicKey"), xi);
        }
    }
    let file = load("wycheproof/mldsa_65_sign_noseed_test.json");
    let mut counts = Counts::new("ML-DSA-65 sign, unseeded (Wycheproof) via Identity::sign_mldsa65");
    for (g, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        if result != "valid" {
            // Wrong-length or out-of-range expanded keys, and contexts over 255 bytes.
            counts.skip("invalid expanded key or context: no such AQM input");
            continue;
        }
        let pk = field(g, "publicKey");
        let Some(&xi) = seeds.get(&pk) else {
            counts.skip("expanded key only, no seed known");
            continue;
        };
        match sign_one(xi, &pk, t) {
            Ok(()) => counts.ran(result),
            Err(why) => counts.skip(why),
        }
    }
    println!("signer: {SIGNER}");
    counts.finish(&["valid"]);
}

#[test]
fn verify_wycheproof() {
    let file = load("wycheproof/mldsa_65_verify_test.json");
    let mut counts = Counts::new("ML-DSA-65 verify (Wycheproof) via PublicIdentity::verify_mldsa65");
    for (g, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        let ctx = opt_field(t, "ctx").unwrap_or_default();
        if !ctx.is_empty() {
            counts.skip("non-empty context: AQM verifies with the empty context only");
            continue;
        }
        let msg = field(t, "msg");
        let sig = field(t, "sig");
        let ok = match public(&field(g, "publicKey")) {
            Some(p) => p.verify_mldsa65(&msg, &sig).is_ok(),
            None => false, // longer than any ML-DSA-65 key: refused when building the identity
        };
        assert_eq!(ok, result == "valid", "{}: expected {result}", id(t));
        counts.ran(result);
    }
    counts.finish(&["valid", "invalid"]);
}
