//! AES-256-GCM: Wycheproof through the exact `aes-gcm` calls `SealedSecret` makes (detached,
//! in place, 96-bit nonce), and golden sealed seeds of each tier through
//! [`SealedSecret::seal`] / [`SealedSecret::open`], computed independently (Python
//! `cryptography` 48, `AESGCM(key).encrypt(nonce, seed, key_id ‖ tier byte)`).

mod kat_common;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aqm_core::crypto::{DeviceKey, SealedSecret, SecretSeed};
use aqm_core::{Error, KeyId, Tier};
use kat_common::{Counts, FixedRng, field, hex, id, load, wycheproof_tests};

#[test]
fn aes_256_gcm_wycheproof() {
    let file = load("wycheproof/aes_gcm_test.json");
    let mut counts = Counts::new("AES-256-GCM (Wycheproof), 96-bit nonce, 128-bit tag, as SealedSecret calls it");
    for (g, t) in wycheproof_tests(&file) {
        if g["keySize"] != 256 || g["ivSize"] != 96 || g["tagSize"] != 128 {
            counts.skip("not AES-256 with a 96-bit nonce and 128-bit tag");
            continue;
        }
        let result = t["result"].as_str().expect("result");
        let cipher = Aes256Gcm::new_from_slice(&field(t, "key")).expect("32-byte key");
        let nonce = Nonce::try_from(field(t, "iv").as_slice()).expect("12-byte nonce");
        let (aad, msg, ct, tag) = (field(t, "aad"), field(t, "msg"), field(t, "ct"), field(t, "tag"));
        // Encryption (valid vectors only: invalid ones carry a modified tag).
        if result == "valid" {
            let mut buf = msg.clone();
            let got = cipher.encrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into()).expect("encrypts");
            assert_eq!(buf, ct, "{}: ct", id(t));
            assert_eq!(got.as_slice(), tag.as_slice(), "{}: tag", id(t));
        }
        let mut buf = ct.clone();
        let opened = cipher.decrypt_inout_detached(
            &nonce,
            &aad,
            buf.as_mut_slice().into(),
            &Tag::try_from(tag.as_slice()).expect("16-byte tag"),
        );
        assert_eq!(opened.is_ok(), result == "valid", "{}: expected {result}", id(t));
        if opened.is_ok() {
            assert_eq!(buf, msg, "{}: plaintext", id(t));
        }
        counts.ran(result);
    }
    counts.finish(&["valid", "invalid"]);
}

/// (tier, seed, nonce ‖ ciphertext ‖ tag) under key 00 01 … 1f, key id 40 41 … 4f,
/// nonce a0 a1 … ab.
const GOLDEN_SEALS: [(Tier, &str, &str); 3] = [
    (
        Tier::Gold,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "6699feaec14e8438eaec0d588bf74e51e03dcb830622d4fb0497bc1de336eb9e9b1f68a7c05b8678728d49c650952af1",
    ),
    (
        Tier::Silver,
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "26d9beee810ec478aaac4d18cbb70e11a07d8bc3466294bb44d7fc5da376abde3297a51c4bc7b5dab775ee23e5976d16b7eab4bb9625ec89b9a7f1a5588d7b4f540d5bed209f4c414e45babeeffe80b6",
    ),
    (
        Tier::Bronze,
        "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f",
        "f6096e3e51de14a87a7c9dc81b67dec1508d7b33b692644bb4270cad53865b2e05b5b71a973058f482ef102fc18e98cc",
    ),
];

#[test]
fn sealed_secret_golden() {
    let mut counts = Counts::new("SealedSecret golden vectors (AAD = key id ‖ tier byte)");
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let device_key = DeviceKey::from_bytes(key);
    let key_id = KeyId::from_slice(&(0x40..0x50).collect::<Vec<u8>>()).expect("16 bytes");
    let nonce: Vec<u8> = (0xa0..0xac).collect();
    for (tier, seed, sealed) in GOLDEN_SEALS {
        let seed = SecretSeed::from_slice(&hex(seed)).expect("seed");
        let mut rng = FixedRng::new(&nonce);
        let got = SealedSecret::seal(&device_key, &key_id, tier, &seed, &mut rng).expect("seals");
        assert!(rng.is_drained(), "{tier:?}: the nonce is the only randomness");
        assert_eq!(got.nonce.as_slice(), nonce.as_slice());
        assert_eq!(got.ciphertext.as_slice(), hex(sealed).as_slice(), "{tier:?}: sealed bytes");
        assert_eq!(got.open(&device_key, &key_id, tier).expect("opens").as_bytes(), seed.as_bytes());
        counts.ran("valid");
        // The AAD binds the tier byte and the key id.
        for other in Tier::ALL.into_iter().filter(|t| *t != tier) {
            assert_eq!(got.open(&device_key, &key_id, other).unwrap_err(), Error::SealBroken);
        }
        assert_eq!(
            got.open(&device_key, &KeyId::from_slice(&[0x40; 16]).expect("id"), tier).unwrap_err(),
            Error::SealBroken
        );
        counts.ran("invalid");
    }
    counts.finish(&["valid", "invalid"]);
}
