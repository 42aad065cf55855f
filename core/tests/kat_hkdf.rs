//! HKDF-SHA256 (RFC 5869): Wycheproof through the `hkdf` calls the core makes
//! (`Hkdf::<Sha256>::new(salt, ikm)`, `expand`/`expand_multi_info`). The core's own HKDF uses
//! (BRONZE, the ratchet) are pinned by `kat_x25519.rs` and the ratchet's tests.

mod kat_common;

use hkdf::Hkdf;
use kat_common::{Counts, field, id, load, wycheproof_tests};
use sha2::Sha256;

#[test]
fn hkdf_sha256_wycheproof() {
    let file = load("wycheproof/hkdf_sha256_test.json");
    let mut counts = Counts::new("HKDF-SHA256 (Wycheproof)");
    for (_, t) in wycheproof_tests(&file) {
        let result = t["result"].as_str().expect("result");
        let (ikm, salt, info) = (field(t, "ikm"), field(t, "salt"), field(t, "info"));
        let size = t["size"].as_u64().expect("size") as usize;
        // An empty salt is HashLen zero bytes (RFC 5869 §2.2); `None` must mean the same.
        let salt = if salt.is_empty() { None } else { Some(salt.as_slice()) };
        let hk = Hkdf::<Sha256>::new(salt, &ikm);
        let mut okm = vec![0u8; size];
        let got = hk.expand(&info, &mut okm);
        // The multi-part info form (as BRONZE uses it) splits info anywhere to the same answer.
        let mut okm2 = vec![0u8; size];
        let (a, b) = info.split_at(info.len() / 2);
        let got2 = hk.expand_multi_info(&[a, b], &mut okm2);
        match result {
            "valid" => {
                got.unwrap_or_else(|e| panic!("{}: {e:?}", id(t)));
                got2.unwrap_or_else(|e| panic!("{}: {e:?}", id(t)));
                assert_eq!(okm, field(t, "okm"), "{}", id(t));
                assert_eq!(okm2, okm, "{}: multi-part info", id(t));
            }
            _ => {
                // Only "SizeTooLarge": more than 255 · 32 bytes.
                assert!(got.is_err() && got2.is_err(), "{}: expected an error", id(t));
            }
        }
        counts.ran(result);
    }
    counts.finish(&["valid", "invalid"]);
}
