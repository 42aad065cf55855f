//! X25519 (RFC 7748) as the BRONZE DHKEM, through `aqm_core::crypto`, on every Wycheproof vector.
//!
//! BRONZE is DHKEM: ciphertext = the sender's ephemeral public key; shared secret =
//! HKDF-SHA256(ikm = X25519 output, no salt, info = "AQM-bronze-v1" ‖ ephemeral pk ‖ recipient pk)
//! (docs/protocol.md). The expected secret is recomputed here from the vector's raw X25519 output with
//! the `hkdf` crate directly, independent of the wrapper.
//!
//! What BRONZE refuses, and why (this test pins it):
//! - **Refused: every point whose X25519 output is all zero** — the low-order points (order 1, 2,
//!   4, 8, on the curve or the twist) in any encoding, canonical or not. Their shared secret does
//!   not depend on our secret, so anyone could compute it. `encapsulate` (as recipient key) and
//!   `decapsulate` (as ciphertext) return `BadPublicKey`.
//! - **Accepted: non-canonical encodings** (u ≥ 2^255 - 19, or bit 255 set), which RFC 7748 §5
//!   says to accept (mask bit 255, reduce mod p), unless their point is one of the above. This
//!   gives no malleability: the HKDF info binds the 32 raw bytes of the ciphertext and of the
//!   recipient key, so two encodings of one point derive unrelated secrets, and an honest
//!   sender's ephemeral key is always canonical.
//! - **Accepted: points on the twist** of other than low order; X25519 is twist-secure and the
//!   result is only ever used through HKDF.

mod kat_common;

use aqm_core::crypto::{SecretSeed, decapsulate, encapsulate, public_key_from_seed};
use aqm_core::{Error, Tier};
use hkdf::Hkdf;
use kat_common::{Counts, FixedRng, field, has_flag, id, load, wycheproof_tests};
use sha2::Sha256;

fn bronze_secret(dh: &[u8], eph_pk: &[u8], recipient_pk: &[u8]) -> [u8; 32] {
    let mut info = b"AQM-bronze-v1".to_vec();
    info.extend_from_slice(eph_pk);
    info.extend_from_slice(recipient_pk);
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, dh).expand(&info, &mut out).expect("32 bytes");
    out
}

#[test]
fn x25519_wycheproof_through_bronze() {
    let file = load("wycheproof/x25519_test.json");
    let mut counts = Counts::new("X25519 (Wycheproof) via BRONZE encapsulate/decapsulate");
    let mut refused = 0usize;
    let mut non_canonical_accepted = 0usize;
    for (g, t) in wycheproof_tests(&file) {
        assert_eq!(g["curve"], "curve25519");
        let result = t["result"].as_str().expect("result");
        let private = field(t, "private");
        let public = field(t, "public");
        let shared = field(t, "shared");
        let seed = SecretSeed::from_slice(&private).expect("32 bytes");
        let own_pk = public_key_from_seed(Tier::Bronze, &seed).expect("derives");

        // Receiver: `public` arrives as the ciphertext.
        let dec = decapsulate(Tier::Bronze, &seed, &public);
        // Sender: `public` is the recipient's coin key, `private` the ephemeral secret.
        let enc = encapsulate(Tier::Bronze, &public, &mut FixedRng::new(&private));

        if shared == [0u8; 32] {
            assert_eq!(dec.unwrap_err(), Error::BadPublicKey, "{}", id(t));
            assert_eq!(enc.unwrap_err(), Error::BadPublicKey, "{}", id(t));
            assert!(result == "acceptable", "{}: a zero output is never `valid`", id(t));
            refused += 1;
        } else {
            let dec = dec.unwrap_or_else(|e| panic!("{}: {e:?}", id(t)));
            assert_eq!(dec.as_bytes(), &bronze_secret(&shared, &public, &own_pk), "{}: decaps", id(t));
            let (ct, ss) = enc.unwrap_or_else(|e| panic!("{}: {e:?}", id(t)));
            assert_eq!(ct.as_slice(), own_pk.as_slice(), "{}: ephemeral pk = X25519(private, 9)", id(t));
            assert_eq!(ss.as_bytes(), &bronze_secret(&shared, &own_pk, &public), "{}: encaps", id(t));
            if has_flag(t, "NonCanonicalPublic") {
                non_canonical_accepted += 1;
            }
        }
        if has_flag(t, "LowOrderPublic") {
            assert_eq!(shared, [0u8; 32], "{}: every low-order point gives zero", id(t));
        }
        counts.ran(result);
    }
    println!("BRONZE refused {refused} zero-output points, accepted {non_canonical_accepted} non-canonical encodings");
    assert!(refused > 0 && non_canonical_accepted > 0);
    counts.finish(&["valid", "acceptable"]);
}

/// BRONZE derivation computed independently from docs/protocol.md (Python `cryptography` 48: X25519 and
/// `HKDF(SHA256, 32, salt=None, info=b"AQM-bronze-v1" + epk + rpk)`), recipient secret 11…11,
/// ephemeral secret 22…22.
#[test]
fn bronze_dhkem_golden() {
    let recipient = SecretSeed::from_slice(&[0x11; 32]).expect("seed");
    let rpk = kat_common::hex("7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13");
    let epk = kat_common::hex("0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20");
    let ss = kat_common::hex("4e55d8dad9b4c2b2ebc4518ec0bce35b44fd76b78ab9ad8f480083ed8578ea39");
    assert_eq!(public_key_from_seed(Tier::Bronze, &recipient).expect("pk").as_slice(), rpk.as_slice());
    let mut rng = FixedRng::new(&[0x22; 32]);
    let (ct, got) = encapsulate(Tier::Bronze, &rpk, &mut rng).expect("encapsulates");
    assert!(rng.is_drained());
    assert_eq!(ct.as_slice(), epk.as_slice());
    assert_eq!(got.as_bytes().as_slice(), ss.as_slice());
    assert_eq!(decapsulate(Tier::Bronze, &recipient, &epk).expect("decapsulates").as_bytes().as_slice(), ss.as_slice());
    let mut counts = Counts::new("BRONZE DHKEM golden (independent derivation)");
    counts.ran("valid");
    counts.finish(&["valid"]);
}
