//! Ed25519 (RFC 8032, pure) through [`PublicIdentity::verify_ed25519`] and
//! [`Identity::sign_ed25519`].
//!
//! Two parts:
//! - Wycheproof's `ed25519_test.json` (malleability S ≥ L, truncated, garbage, the RFC 8032 KATs;
//!   valid vectors with 32-byte keys are also re-signed through `Identity` where the key is ours).
//! - docs/protocol.md's rule: "Ed25519 keys must be canonically encoded and of prime order (no
//!   small-order or mixed-order points); verification is `verify_strict`". Wycheproof has no
//!   small-order cases, so they are built here with `curve25519-dalek`: a signature that the
//!   cofactorless RFC 8032 equation accepts under a small-order key, a mixed-order key, a
//!   non-canonically encoded key, and small-order / non-canonical R. Every one must be refused.

mod kat_common;

use aqm_core::UserId;
use aqm_core::crypto::PublicIdentity;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use kat_common::{Counts, field, id, load, wycheproof_tests};
use sha2::{Digest, Sha512};

fn public(ed25519: [u8; 32]) -> PublicIdentity {
    PublicIdentity { user_id: UserId([9; 16]), ed25519, mldsa65: heapless::Vec::new() }
}

#[test]
fn ed25519_wycheproof() {
    let file = load("wycheproof/ed25519_test.json");
    let mut counts = Counts::new("Ed25519 verify (Wycheproof) via PublicIdentity::verify_ed25519");
    for (g, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        let pk: [u8; 32] = hex32(&g["publicKey"]["pk"]);
        let ok = public(pk).verify_ed25519(&field(t, "msg"), &field(t, "sig")).is_ok();
        assert_eq!(ok, result == "valid", "{}: expected {result}", id(t));
        counts.ran(result);
    }
    counts.finish(&["valid", "invalid"]);
}

/// RFC 8032 §7.1 TEST 1-3 secret keys; their public keys, messages and signatures are Wycheproof's
/// `Ktv` vectors (tcId 80-82), found by public key.
const RFC8032_SECRET_KEYS: [&str; 3] = [
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
];

#[test]
fn ed25519_rfc8032_signing_through_identity() {
    let file = load("wycheproof/ed25519_test.json");
    let mut counts = Counts::new("Ed25519 sign (RFC 8032 TEST 1-3) via Identity's Ed25519 signer");
    for sk in RFC8032_SECRET_KEYS {
        let identity = aqm_core::crypto::Identity::from_secret(aqm_core::crypto::IdentitySecret {
            user_id: UserId([9; 16]),
            ed25519_seed: kat_common::hex(sk).try_into().expect("32 bytes"),
            mldsa65_seed: [0; 32],
        });
        let pk = identity.public().ed25519;
        let mut found = 0;
        for (g, t) in wycheproof_tests(&file) {
            if hex32(&g["publicKey"]["pk"]) != pk || t["result"] != "valid" {
                continue;
            }
            assert_eq!(identity.kat_sign_ed25519(&field(t, "msg")).as_slice(), field(t, "sig").as_slice(), "{}", id(t));
            found += 1;
            counts.ran("valid");
        }
        assert_eq!(found, 1, "RFC 8032 key {sk}: its Wycheproof vector");
    }
    counts.finish(&["valid"]);
}

fn hex32(v: &serde_json::Value) -> [u8; 32] {
    kat_common::hex(v.as_str().expect("hex")).try_into().expect("32 bytes")
}

/// k = SHA-512(R ‖ A ‖ M) mod L.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let h: [u8; 64] = Sha512::new().chain_update(r).chain_update(a).chain_update(m).finalize().into();
    Scalar::from_bytes_mod_order_wide(&h)
}

/// Non-canonical encoding of the point with y = `y` (< 19): y + p, little-endian.
fn non_canonical_y(y: u8) -> [u8; 32] {
    let mut b = [0xffu8; 32];
    b[0] = 0xed + y; // p = 2^255 - 19 = ed ff … ff 7f
    b[31] = 0x7f;
    b
}

struct Case {
    what: String,
    pk: [u8; 32],
    msg: Vec<u8>,
    sig: [u8; 64],
}

fn sig(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s.as_bytes());
    out
}

/// Cases the cofactorless RFC 8032 equation [S]B = R + [k]A accepts (checked below with
/// `VerifyingKey::verify`), but docs/protocol.md refuses.
fn strict_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let identity = EdwardsPoint::default().compress().to_bytes();
    // 1. Each small-order key T (8 torsion points), R = identity, S = 0, with a message for which
    //    [k]T = identity (8 | k): [0]B = identity + [k]T holds.
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        let a = t.compress().to_bytes();
        let msg = (0u32..)
            .map(|n| format!("small-order key {i}, try {n}").into_bytes())
            .find(|m| (challenge(&identity, &a, m) * t).is_identity())
            .expect("one in eight messages");
        cases.push(Case {
            what: format!("small-order public key (torsion point {i})"),
            pk: a,
            msg,
            sig: sig(&identity, &Scalar::ZERO),
        });
    }
    // 2. Mixed-order keys A' = [a]B + T (T of order 8): an honest-looking signature by a with
    //    S = r + k·a passes when 8 | k, since [k]T = identity.
    let a = Scalar::from_bytes_mod_order([42; 32]);
    let t = EIGHT_TORSION[1];
    let a_mixed = (ED25519_BASEPOINT_POINT * a + t).compress().to_bytes();
    let r = Scalar::from_bytes_mod_order([7; 32]);
    let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
    let msg = (0u32..)
        .map(|n| format!("mixed-order key, try {n}").into_bytes())
        .find(|m| (challenge(&big_r, &a_mixed, m) * t).is_identity())
        .expect("one in eight messages");
    let s = r + challenge(&big_r, &a_mixed, &msg) * a;
    cases.push(Case { what: "mixed-order public key ([a]B + T8)".into(), pk: a_mixed, msg, sig: sig(&big_r, &s) });
    // 3. The identity key encoded non-canonically (y = 1 + p), R = identity, S = 0.
    let nc = non_canonical_y(1);
    let msg = b"non-canonical key".to_vec();
    cases.push(Case {
        what: "non-canonical encoding of the identity as key".into(),
        pk: nc,
        msg,
        sig: sig(&identity, &Scalar::ZERO),
    });
    // 4. An honest key and a small-order R: R = T, S = r' chosen so that [S]B = T + [k]A cannot
    //    hold; the cofactored equation would accept [8]([S]B - [k]A - R) = 0 with S = k·a.
    let big_a = (ED25519_BASEPOINT_POINT * a).compress().to_bytes();
    let rt = EIGHT_TORSION[2].compress().to_bytes();
    let msg = b"small-order R".to_vec();
    let s = challenge(&rt, &big_a, &msg) * a;
    cases.push(Case { what: "small-order R (cofactored-only signature)".into(), pk: big_a, msg, sig: sig(&rt, &s) });
    cases
}

#[test]
fn ed25519_strict_verification_per_design() {
    let mut counts = Counts::new("Ed25519 strict cases (docs/protocol.md) via PublicIdentity::verify_ed25519");
    let mut accepted = Vec::new();
    for c in strict_cases() {
        // The cases mean what they say: the plain RFC 8032 check accepts the first three kinds.
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&c.pk)
            .map(|vk| vk.verify_strict(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig)).is_ok());
        let plain = ed25519_dalek::VerifyingKey::from_bytes(&c.pk).map(|vk| {
            use ed25519_dalek::Verifier;
            vk.verify(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig)).is_ok()
        });
        println!("  {}: ed25519-dalek verify = {plain:?}, verify_strict = {strict:?}", c.what);
        if public(c.pk).verify_ed25519(&c.msg, &c.sig).is_ok() {
            accepted.push(c.what);
        }
        counts.ran("invalid");
    }
    assert!(
        accepted.is_empty(),
        "PublicIdentity::verify_ed25519 accepts signatures docs/protocol.md refuses (not strict; no prime-order key check): {accepted:#?}"
    );
    counts.finish(&["invalid"]);
}
