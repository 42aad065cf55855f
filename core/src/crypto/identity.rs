//! User identities: an Ed25519 and an ML-DSA-65 key pair under one user id.

use core::fmt;

use ed25519_dalek::Signer;
use ml_dsa::MlDsa65;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::sizes::{ED25519_PUBLIC_KEY, ED25519_SIGNATURE, MAX_SIGNATURE, MLDSA65_PUBLIC_KEY, MLDSA65_SIGNATURE};
use crate::{Error, UserId};

/// Domain tag of the registration proof of possession (docs/protocol.md).
pub const REGISTER_DOMAIN: &[u8] = b"AQM-register-v2";

/// Bytes of the registration message: domain ‖ user id ‖ Ed25519 key ‖ ML-DSA-65 key.
pub const REGISTER_MESSAGE_LEN: usize = REGISTER_DOMAIN.len() + 16 + ED25519_PUBLIC_KEY + MLDSA65_PUBLIC_KEY;

/// The secret half of an identity, as the two 32-byte seeds that regenerate it.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct IdentitySecret {
    /// The user id this identity belongs to.
    #[zeroize(skip)]
    pub user_id: UserId,
    /// Ed25519 secret key.
    pub ed25519_seed: [u8; 32],
    /// ML-DSA-65 key generation seed ξ.
    pub mldsa65_seed: [u8; 32],
}

impl fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySecret({}, redacted)", self.user_id)
    }
}

/// The public half of an identity, which contacts use to verify coins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// The user's id.
    pub user_id: UserId,
    /// Ed25519 verifying key.
    pub ed25519: [u8; ED25519_PUBLIC_KEY],
    /// ML-DSA-65 verifying key.
    pub mldsa65: heapless::Vec<u8, MLDSA65_PUBLIC_KEY>,
}

/// A signature field: Ed25519 (64 B), or the hybrid `ed25519 ‖ mldsa65` (64 + 3309 B) of GOLD.
pub type SignatureBytes = heapless::Vec<u8, MAX_SIGNATURE>;

/// Proof that whoever registers an identity holds both its secret keys: an Ed25519 and an
/// ML-DSA-65 signature over [`PublicIdentity::registration_message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationProof {
    /// Ed25519 signature (64 bytes).
    pub ed25519: SignatureBytes,
    /// ML-DSA-65 signature (3309 bytes).
    pub mldsa65: SignatureBytes,
}

/// A full identity, able to sign. Holds only seeds; the ML-DSA signing key is expanded for each
/// signature so the identity stays small on a microcontroller.
///
/// ```
/// use aqm_core::crypto::Identity;
/// let mut rng = rand::rng();
/// let alice = Identity::generate(&mut rng);
/// let proof = alice.registration_proof(&mut rng).unwrap();
/// assert!(alice.public().verify_registration(&proof).is_ok());
/// let bob = Identity::generate(&mut rng);
/// assert!(bob.public().verify_registration(&proof).is_err());
/// ```
#[derive(Clone)]
pub struct Identity {
    secret: IdentitySecret,
    public: PublicIdentity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, redacted)", self.public.user_id)
    }
}

impl Identity {
    /// A fresh identity with a random user id.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Identity {
        let user_id = UserId::random(rng);
        let mut ed25519_seed = [0u8; 32];
        let mut mldsa65_seed = [0u8; 32];
        rng.fill_bytes(&mut ed25519_seed);
        rng.fill_bytes(&mut mldsa65_seed);
        Identity::from_secret(IdentitySecret { user_id, ed25519_seed, mldsa65_seed })
    }

    /// Rebuild an identity from its stored seeds.
    pub fn from_secret(secret: IdentitySecret) -> Identity {
        let ed = ed25519_dalek::SigningKey::from_bytes(&secret.ed25519_seed);
        let public = PublicIdentity {
            user_id: secret.user_id,
            ed25519: ed.verifying_key().to_bytes(),
            mldsa65: heapless::Vec::from_array(mldsa_public(&secret.mldsa65_seed)),
        };
        Identity { secret, public }
    }

    /// The user id.
    pub fn user_id(&self) -> UserId {
        self.public.user_id
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The seeds, for the caller to persist (sealed).
    pub fn secret(&self) -> &IdentitySecret {
        &self.secret
    }

    /// RFC 8032 Ed25519 signature. Crate-private: the identity signs only messages the core
    /// builds (coins, re-keys, registration), each under its own domain tag.
    pub(crate) fn sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        ed25519_dalek::SigningKey::from_bytes(&self.secret.ed25519_seed).sign(msg).to_bytes()
    }

    /// [`Identity::sign_ed25519`] for the known-answer tests only (feature `testkit`): the
    /// identity never signs raw bytes in the product.
    #[cfg(feature = "testkit")]
    #[doc(hidden)]
    pub fn kat_sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        self.sign_ed25519(msg)
    }

    /// [`Identity::sign_mldsa65`] for the known-answer tests only (feature `testkit`).
    #[cfg(feature = "testkit")]
    #[doc(hidden)]
    pub fn kat_sign_mldsa65<R: CryptoRng + ?Sized>(&self, msg: &[u8], rng: &mut R) -> Result<SignatureBytes, Error> {
        self.sign_mldsa65(msg, rng)
    }

    /// FIPS 204 pure ML-DSA-65 signature, hedged with the caller's RNG, empty context.
    pub(crate) fn sign_mldsa65<R: CryptoRng + ?Sized>(&self, msg: &[u8], rng: &mut R) -> Result<SignatureBytes, Error> {
        sign_mldsa(&self.secret.mldsa65_seed, msg, rng)
    }

    /// The signature field of a message signed by this identity: Ed25519 alone, or with
    /// `hybrid` the hybrid `ed25519 ‖ mldsa65` (GOLD coins and GOLD re-keys).
    pub(crate) fn sign_field<R: CryptoRng + ?Sized>(
        &self,
        msg: &[u8],
        hybrid: bool,
        rng: &mut R,
    ) -> Result<SignatureBytes, Error> {
        let mut field = SignatureBytes::from_slice(&self.sign_ed25519(msg)).map_err(|_| Error::BufferTooSmall)?;
        if hybrid {
            // Written in place: on a board the ML-DSA signature must not pass through extra
            // 3.3 KB copies on the deepest stack of a GOLD mint.
            append_mldsa(&self.secret.mldsa65_seed, msg, rng, &mut field)?;
        }
        Ok(field)
    }

    /// The proof of possession `POST /v1/users` carries (docs/protocol.md, §5).
    pub fn registration_proof<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Result<RegistrationProof, Error> {
        let msg = self.public.registration_message();
        let ed25519 = SignatureBytes::from_slice(&self.sign_ed25519(&msg)).map_err(|_| Error::BufferTooSmall)?;
        Ok(RegistrationProof { ed25519, mldsa65: self.sign_mldsa65(&msg, rng)? })
    }
}

// One ML-DSA-65 signer on every build: `crypto::small_mldsa65`, which expands A-hat one row at a
// time and keeps only NTT(s1), NTT(s2), NTT(t0) and one attempt's vectors, so key derivation and
// signing fit a microcontroller's RAM, and whose signing attempt is straight-line on secret data
// (ct-check). Its keys and signatures are byte for byte those of `ml-dsa` and `fips204` for the
// same seed ξ and randomness (see the tests below); verification always uses `ml-dsa`.
//
// `ml-dsa` 0.1.2 signed on hosts until ct-check showed it branching on secret attempt data
// (`try_raw_sign_mu`, signing.rs:356-357 and :366: the z, r0, ct0 and hint-count checks tested one
// by one with short-circuit `||`; `Hint::new`, hint.rs:78: collecting MakeHint's bools branches on
// w − cs2 + ct0). From the seed, as an identity signs, the small signer is also the faster one on
// a host (examples/mldsa_sign_speed.rs). Both functions are kept out of line so the key material
// never inflates the callers' frames.

#[inline(never)]
fn mldsa_public(seed: &[u8; 32]) -> [u8; MLDSA65_PUBLIC_KEY] {
    crate::crypto::small_mldsa65::public_key(seed)
}

fn sign_mldsa<R: CryptoRng + ?Sized>(seed: &[u8; 32], msg: &[u8], rng: &mut R) -> Result<SignatureBytes, Error> {
    let mut sig = SignatureBytes::new();
    append_mldsa(seed, msg, rng, &mut sig)?;
    Ok(sig)
}

/// Append a hedged ML-DSA-65 signature of `msg` to `field`, signing straight into it.
#[inline(never)]
fn append_mldsa<R: CryptoRng + ?Sized>(
    seed: &[u8; 32],
    msg: &[u8],
    rng: &mut R,
    field: &mut SignatureBytes,
) -> Result<(), Error> {
    // Hedged signing: 32 fresh random bytes, as `ml-dsa`'s `sign_randomized` draws them.
    let mut rnd = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut rnd[..]);
    let start = field.len();
    field.resize(start + MLDSA65_SIGNATURE, 0).map_err(|_| Error::BufferTooSmall)?;
    let out: &mut [u8; MLDSA65_SIGNATURE] =
        field.get_mut(start..).and_then(|tail| tail.try_into().ok()).ok_or(Error::BufferTooSmall)?;
    if crate::crypto::small_mldsa65::sign_into(seed, msg, &rnd, out) {
        Ok(())
    } else {
        field.truncate(start);
        Err(Error::BadSignature)
    }
}

/// An Ed25519 verifying key that is canonically encoded and of prime order (no small-order or
/// mixed-order point), as docs/protocol.md requires of every identity.
fn strict_ed25519_key(bytes: &[u8; ED25519_PUBLIC_KEY]) -> Result<ed25519_dalek::VerifyingKey, Error> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| Error::WeakIdentityKey)?;
    let point = vk.to_edwards();
    // Decompression reduces y mod p, so a non-canonical encoding decodes too: re-encode to refuse it.
    if point.compress().to_bytes() != *bytes || vk.is_weak() || !point.is_torsion_free() {
        return Err(Error::WeakIdentityKey);
    }
    Ok(vk)
}

impl PublicIdentity {
    /// Check the keys: Ed25519 canonical and of prime order, ML-DSA-65 of its size.
    /// A small-order, mixed-order or non-canonical Ed25519 key → [`Error::WeakIdentityKey`].
    pub fn validate(&self) -> Result<(), Error> {
        strict_ed25519_key(&self.ed25519)?;
        if self.mldsa65.len() != MLDSA65_PUBLIC_KEY {
            return Err(Error::BadLength {
                what: "ML-DSA-65 public key",
                expected: MLDSA65_PUBLIC_KEY,
                got: self.mldsa65.len(),
            });
        }
        Ok(())
    }

    /// Verify an Ed25519 signature: the key must pass [`PublicIdentity::validate`]'s Ed25519
    /// check, and verification is `verify_strict` (no small-order R, canonical S).
    pub fn verify_ed25519(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let vk = strict_ed25519_key(&self.ed25519).map_err(|_| Error::BadSignature)?;
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| Error::BadSignature)?;
        vk.verify_strict(msg, &sig).map_err(|_| Error::BadSignature)
    }

    /// Verify a signature field: Ed25519 alone, or with `hybrid` both halves of
    /// `ed25519 ‖ mldsa65`; either half bad → [`Error::BadSignature`]. A field of the wrong size
    /// → [`Error::BadLength`].
    pub fn verify_field(&self, msg: &[u8], field: &[u8], hybrid: bool) -> Result<(), Error> {
        let expected = if hybrid { ED25519_SIGNATURE + MLDSA65_SIGNATURE } else { ED25519_SIGNATURE };
        if field.len() != expected {
            return Err(Error::BadLength { what: "signature", expected, got: field.len() });
        }
        let (ed, ml) = field.split_at(ED25519_SIGNATURE);
        self.verify_ed25519(msg, ed)?;
        if hybrid { self.verify_mldsa65(msg, ml) } else { Ok(()) }
    }

    /// `"AQM-register-v2" ‖ user id ‖ ed25519 pk ‖ mldsa65 pk`, the bytes a registration signs.
    pub fn registration_message(&self) -> heapless::Vec<u8, REGISTER_MESSAGE_LEN> {
        let mut m = heapless::Vec::new();
        // The capacity is exactly the sum of these parts (the ML-DSA key is at most its size).
        let _ = m.extend_from_slice(REGISTER_DOMAIN);
        let _ = m.extend_from_slice(self.user_id.as_bytes());
        let _ = m.extend_from_slice(&self.ed25519);
        let _ = m.extend_from_slice(&self.mldsa65);
        m
    }

    /// Check a registration's proof of possession: the keys are valid and both signatures
    /// verify over [`PublicIdentity::registration_message`].
    pub fn verify_registration(&self, proof: &RegistrationProof) -> Result<(), Error> {
        self.validate()?;
        let msg = self.registration_message();
        self.verify_ed25519(&msg, &proof.ed25519)?;
        self.verify_mldsa65(&msg, &proof.mldsa65)
    }

    /// Verify an ML-DSA-65 signature with the empty context.
    #[inline(never)]
    pub fn verify_mldsa65(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let enc_vk = ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(self.mldsa65.as_slice()).map_err(|_| {
            Error::BadLength { what: "ML-DSA-65 public key", expected: MLDSA65_PUBLIC_KEY, got: self.mldsa65.len() }
        })?;
        let vk = ml_dsa::VerifyingKey::<MlDsa65>::decode(&enc_vk);
        let sig = ml_dsa::Signature::<MlDsa65>::try_from(sig).map_err(|_| Error::BadSignature)?;
        if vk.verify_with_context(msg, &[], &sig) { Ok(()) } else { Err(Error::BadSignature) }
    }
}

#[cfg(test)]
mod tests {
    //! `ml-dsa`, `fips204` and `crypto::small_mldsa65` must agree byte for byte: every build signs
    //! with the last and everyone verifies with `ml-dsa`.
    use fips204::traits::{KeyGen, SerDes, Signer as _, Verifier as _};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    use super::*;

    const SEEDS: u8 = 16;

    fn both_keys(
        xi: &[u8; 32],
    ) -> (MlDsaSigningKeyFull, fips204::ml_dsa_65::PublicKey, fips204::ml_dsa_65::PrivateKey) {
        let (pk, sk) = fips204::ml_dsa_65::KG::keygen_from_seed(xi);
        (ml_dsa::SigningKey::<MlDsa65>::from_seed(&(*xi).into()), pk, sk)
    }

    type MlDsaSigningKeyFull = ml_dsa::SigningKey<MlDsa65>;

    #[test]
    fn public_keys_from_the_same_seed_are_identical() {
        let mut rng = ChaCha20Rng::seed_from_u64(204);
        for _ in 0..SEEDS {
            let mut xi = [0u8; 32];
            rng.fill_bytes(&mut xi);
            let (ours, pk, _) = both_keys(&xi);
            let ml_dsa_pk = ours.expanded_key().verifying_key().encode();
            assert_eq!(ml_dsa_pk.as_slice(), pk.into_bytes().as_slice());
            // And the active signer derives that same key for an identity, as does the
            // streaming derivation the firmware uses.
            assert_eq!(mldsa_public(&xi).as_slice(), ml_dsa_pk.as_slice());
            assert_eq!(crate::crypto::small_mldsa65::public_key(&xi).as_slice(), ml_dsa_pk.as_slice());
        }
    }

    #[test]
    fn same_randomness_gives_byte_identical_signatures() {
        let mut rng = ChaCha20Rng::seed_from_u64(205);
        for i in 0..SEEDS {
            let mut xi = [0u8; 32];
            let mut rnd = [0u8; 32];
            rng.fill_bytes(&mut xi);
            rng.fill_bytes(&mut rnd);
            // Empty, short and multi-block messages (SHAKE256 absorbs 136 bytes a block).
            let msg = std::vec![i; [0, 1, 100, 136, 5000][usize::from(i) % 5]];
            let (ours, _, sk) = both_keys(&xi);
            // Pure ML-DSA, empty context: M' = 0x00 || 0x00 || M (FIPS 204 Algorithm 2).
            let a = ours.expanded_key().sign_internal(&[&[0u8, 0u8], &msg], &rnd.into()).encode();
            let b = sk.try_sign_with_seed(&rnd, &msg, &[]).expect("fips204 signs");
            assert_eq!(a.as_slice(), b.as_slice());
            let c = crate::crypto::small_mldsa65::sign(&xi, &msg, &rnd).expect("streaming signer signs");
            assert_eq!(a.as_slice(), c.as_slice());
        }
    }

    #[test]
    fn each_verifies_the_others_signatures() {
        let mut rng = ChaCha20Rng::seed_from_u64(206);
        let id = Identity::generate(&mut rng);
        let msg = b"coin body";
        let (ours, pk, sk) = both_keys(&id.secret().mldsa65_seed);

        // fips204 signs, ml-dsa (PublicIdentity::verify_mldsa65) verifies.
        let mut rnd = [0u8; 32];
        rng.fill_bytes(&mut rnd);
        let sig = sk.try_sign_with_seed(&rnd, msg, &[]).expect("fips204 signs");
        assert!(id.public().verify_mldsa65(msg, &sig).is_ok());
        assert_eq!(id.public().verify_mldsa65(b"coin bodY", &sig), Err(Error::BadSignature));

        // ml-dsa signs, fips204 verifies.
        let sig = ours.expanded_key().sign_randomized(msg, &[], &mut rng).expect("ml-dsa signs").encode();
        let sig: [u8; fips204::ml_dsa_65::SIG_LEN] = sig.into();
        assert!(pk.verify(msg, &sig, &[]));
        assert!(!pk.verify(b"coin bodY", &sig, &[]));

        // The small-stack signer's output verifies with both.
        let sig = crate::crypto::small_mldsa65::sign(&id.secret().mldsa65_seed, msg, &rnd).expect("signs");
        assert!(id.public().verify_mldsa65(msg, &sig).is_ok());
        assert_eq!(id.public().verify_mldsa65(b"coin bodY", &sig), Err(Error::BadSignature));
        assert!(pk.verify(msg, &sig, &[]));

        // The active signer's output verifies with both.
        let sig = id.sign_mldsa65(msg, &mut rng).expect("signs");
        assert!(id.public().verify_mldsa65(msg, &sig).is_ok());
        let sig: [u8; fips204::ml_dsa_65::SIG_LEN] = sig.as_slice().try_into().expect("signature length");
        assert!(pk.verify(msg, &sig, &[]));
    }
}
