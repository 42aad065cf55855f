//! Key encapsulation per tier: X-Wing (GOLD), ML-KEM-768 (SILVER), X25519 DHKEM (BRONZE).

use hkdf::Hkdf;
use ml_kem::{DecapsulationKey768, EncapsulationKey768};
use rand_core::CryptoRng;
use sha2::Sha256;
use x_wing::{Decapsulate, Encapsulate, KeyExport};
use zeroize::Zeroizing;

use super::sizes::{MAX_CIPHERTEXT, MAX_PUBLIC_KEY};
use super::{SecretSeed, SharedSecret};
use crate::{Error, Tier};

/// A public key of any tier (1216, 1184 or 32 bytes).
pub type PublicKeyBytes = heapless::Vec<u8, MAX_PUBLIC_KEY>;
/// A KEM ciphertext of any tier (1120, 1088 or 32 bytes).
pub type KemCiphertext = heapless::Vec<u8, MAX_CIPHERTEXT>;

const BRONZE_INFO: &[u8] = b"AQM-bronze-v1";

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), Error> {
    if expected == got { Ok(()) } else { Err(Error::BadLength { what, expected, got }) }
}

fn to_vec<const N: usize>(b: &[u8]) -> heapless::Vec<u8, N> {
    // Callers pass slices of the tier's fixed size, which never exceeds N.
    heapless::Vec::from_slice(b).unwrap_or_default()
}

/// Draw a fresh secret seed for `tier` from the caller's RNG.
// The buffer holds 64 bytes and `seed_len()` is 32 or 64, so the slice cannot panic; a seed of
// the tier's own length always parses, so `unreachable_seed` is never reached.
#[allow(clippy::indexing_slicing)]
pub fn generate_keypair<R: CryptoRng + ?Sized>(tier: Tier, rng: &mut R) -> (SecretSeed, PublicKeyBytes) {
    let mut buf = Zeroizing::new([0u8; 64]);
    let seed = &mut buf[..tier.seed_len()];
    rng.fill_bytes(seed);
    let seed = match SecretSeed::from_slice(seed) {
        Ok(s) => s,
        Err(_) => unreachable_seed(),
    };
    let pk = match public_key_from_seed(tier, &seed) {
        Ok(pk) => pk,
        Err(_) => unreachable_seed(),
    };
    (seed, pk)
}

#[cold]
// A seed of the tier's own length always parses; reaching this is a bug in this module.
#[allow(clippy::panic)]
fn unreachable_seed() -> ! {
    panic!("seed of the tier's own length was refused")
}

/// Regenerate the public key of a coin from its secret seed.
pub fn public_key_from_seed(tier: Tier, seed: &SecretSeed) -> Result<PublicKeyBytes, Error> {
    let s = seed.as_bytes();
    check_len("secret seed", tier.seed_len(), s.len())?;
    Ok(match tier {
        Tier::Gold => {
            let dk = gold_dk(s)?;
            use x_wing::Decapsulator;
            to_vec(&dk.encapsulation_key().to_bytes())
        }
        Tier::Silver => {
            let dk = silver_dk(s)?;
            to_vec(&dk.encapsulation_key().to_bytes())
        }
        Tier::Bronze => {
            let sk = bronze_sk(s)?;
            to_vec(x25519_dalek::PublicKey::from(&sk).as_bytes())
        }
    })
}

fn gold_dk(s: &[u8]) -> Result<x_wing::DecapsulationKey, Error> {
    // The copy of the seed is wiped when it goes out of scope.
    let arr: Zeroizing<[u8; 32]> =
        Zeroizing::new(s.try_into().map_err(|_| Error::BadLength { what: "GOLD seed", expected: 32, got: s.len() })?);
    Ok(x_wing::DecapsulationKey::from(*arr))
}

fn silver_dk(s: &[u8]) -> Result<DecapsulationKey768, Error> {
    let mut arr =
        ml_kem::Seed::try_from(s).map_err(|_| Error::BadLength { what: "SILVER seed", expected: 64, got: s.len() })?;
    let dk = DecapsulationKey768::from_seed(arr);
    // `Seed` is `Copy`: wipe this function's copy of the seed.
    zeroize::Zeroize::zeroize(arr.as_mut_slice());
    Ok(dk)
}

fn bronze_sk(s: &[u8]) -> Result<x25519_dalek::StaticSecret, Error> {
    let arr: Zeroizing<[u8; 32]> = Zeroizing::new(s.try_into().map_err(|_| Error::BadLength {
        what: "BRONZE seed",
        expected: 32,
        got: s.len(),
    })?);
    Ok(x25519_dalek::StaticSecret::from(*arr))
}

/// Encapsulate to a coin's public key: returns the ciphertext to send and the shared secret.
///
/// ```
/// use aqm_core::crypto::{decapsulate, encapsulate, generate_keypair};
/// use aqm_core::Tier;
/// let mut rng = rand::rng();
/// let (seed, pk) = generate_keypair(Tier::Silver, &mut rng);
/// let (ct, ss) = encapsulate(Tier::Silver, &pk, &mut rng).unwrap();
/// assert_eq!(decapsulate(Tier::Silver, &seed, &ct).unwrap(), ss);
/// ```
pub fn encapsulate<R: CryptoRng + ?Sized>(
    tier: Tier,
    public_key: &[u8],
    rng: &mut R,
) -> Result<(KemCiphertext, SharedSecret), Error> {
    check_len("public key", tier.public_key_len(), public_key.len())?;
    match tier {
        Tier::Gold => {
            let ek = x_wing::EncapsulationKey::try_from(public_key).map_err(|_| Error::BadPublicKey)?;
            let (ct, ss) = ek.encapsulate_with_rng(rng);
            Ok((to_vec(&ct), shared_secret(ss)))
        }
        Tier::Silver => {
            let arr = ml_kem::array::Array::try_from(public_key).map_err(|_| Error::BadPublicKey)?;
            let ek = EncapsulationKey768::new(&arr).map_err(|_| Error::BadPublicKey)?;
            let (ct, ss) = ek.encapsulate_with_rng(rng);
            Ok((to_vec(&ct), shared_secret(ss)))
        }
        Tier::Bronze => {
            let pk: [u8; 32] = public_key.try_into().map_err(|_| Error::BadPublicKey)?;
            let recipient = x25519_dalek::PublicKey::from(pk);
            let eph = x25519_dalek::StaticSecret::random_from_rng(rng);
            let eph_pk = x25519_dalek::PublicKey::from(&eph);
            let ss = bronze_secret(&eph.diffie_hellman(&recipient), eph_pk.as_bytes(), &pk)?;
            Ok((to_vec(eph_pk.as_bytes()), ss))
        }
    }
}

/// The KEM crate's shared key as ours, wiping the crate's copy.
fn shared_secret(mut ss: ml_kem::array::Array<u8, ml_kem::array::typenum::U32>) -> SharedSecret {
    let out = SharedSecret(ss.into());
    zeroize::Zeroize::zeroize(ss.as_mut_slice());
    out
}

fn bronze_secret(
    dh: &x25519_dalek::SharedSecret,
    eph_pk: &[u8; 32],
    recipient_pk: &[u8; 32],
) -> Result<SharedSecret, Error> {
    // A low-order point gives an all-zero DH output that anybody could compute.
    if !dh.was_contributory() {
        return Err(Error::BadPublicKey);
    }
    let hk = Hkdf::<Sha256>::new(None, dh.as_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(&[BRONZE_INFO, eph_pk, recipient_pk], &mut *out).map_err(|_| Error::Malformed)?;
    Ok(SharedSecret(*out))
}

/// Decapsulate a ciphertext with the coin's secret seed.
///
/// ML-KEM and X-Wing use implicit rejection: a tampered ciphertext yields an unrelated secret
/// (caught by the first AEAD check), never an error that leaks timing.
pub fn decapsulate(tier: Tier, seed: &SecretSeed, ciphertext: &[u8]) -> Result<SharedSecret, Error> {
    check_len("KEM ciphertext", tier.ciphertext_len(), ciphertext.len())?;
    match tier {
        Tier::Gold => {
            let dk = gold_dk(seed.as_bytes())?;
            let ss = dk.decapsulate_slice(ciphertext).map_err(|_| Error::Malformed)?;
            Ok(shared_secret(ss))
        }
        Tier::Silver => {
            let dk = silver_dk(seed.as_bytes())?;
            let ss = dk.decapsulate_slice(ciphertext).map_err(|_| Error::Malformed)?;
            Ok(shared_secret(ss))
        }
        Tier::Bronze => {
            let sk = bronze_sk(seed.as_bytes())?;
            let eph: [u8; 32] = ciphertext.try_into().map_err(|_| Error::Malformed)?;
            let own_pk = x25519_dalek::PublicKey::from(&sk);
            let dh = sk.diffie_hellman(&x25519_dalek::PublicKey::from(eph));
            bronze_secret(&dh, &eph, own_pk.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sizes;
    use rand::SeedableRng;

    #[test]
    fn sizes_match_the_crates() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for tier in Tier::ALL {
            let (seed, pk) = generate_keypair(tier, &mut rng);
            assert_eq!(seed.as_bytes().len(), tier.seed_len());
            assert_eq!(pk.len(), tier.public_key_len());
            let (ct, ss) = encapsulate(tier, &pk, &mut rng).unwrap();
            assert_eq!(ct.len(), tier.ciphertext_len());
            assert_eq!(decapsulate(tier, &seed, &ct).unwrap(), ss);
        }
        assert_eq!(x_wing::ENCAPSULATION_KEY_SIZE, sizes::GOLD_PUBLIC_KEY);
        assert_eq!(x_wing::CIPHERTEXT_SIZE, sizes::GOLD_CIPHERTEXT);
        assert_eq!(x_wing::DECAPSULATION_KEY_SIZE, sizes::GOLD_SEED);
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        for tier in Tier::ALL {
            let (seed, pk) = generate_keypair(tier, &mut rng);
            assert!(matches!(encapsulate(tier, &pk[..pk.len() - 1], &mut rng), Err(Error::BadLength { .. })));
            let (ct, _) = encapsulate(tier, &pk, &mut rng).unwrap();
            assert!(matches!(decapsulate(tier, &seed, &ct[1..]), Err(Error::BadLength { .. })));
        }
    }

    #[test]
    fn tampered_ciphertext_gives_another_secret() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for tier in Tier::ALL {
            let (seed, pk) = generate_keypair(tier, &mut rng);
            let (mut ct, ss) = encapsulate(tier, &pk, &mut rng).unwrap();
            ct[5] ^= 0x40;
            match decapsulate(tier, &seed, &ct) {
                Ok(other) => assert_ne!(other, ss),
                Err(e) => assert_eq!(e, Error::BadPublicKey),
            }
        }
    }

    #[test]
    fn bronze_rejects_low_order_points() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        assert_eq!(encapsulate(Tier::Bronze, &[0u8; 32], &mut rng).unwrap_err(), Error::BadPublicKey);
        let (seed, _) = generate_keypair(Tier::Bronze, &mut rng);
        assert_eq!(decapsulate(Tier::Bronze, &seed, &[0u8; 32]).unwrap_err(), Error::BadPublicKey);
    }
}
