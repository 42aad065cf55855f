//! User identities: an Ed25519 and an ML-DSA-65 key pair under one user id.

use core::fmt;

use ed25519_dalek::{Signer, Verifier};
use ml_dsa::{MlDsa65, SigningKey as MlDsaSigningKey};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::sizes::{ED25519_PUBLIC_KEY, MAX_SIGNATURE, MLDSA65_PUBLIC_KEY};
use crate::{Error, UserId};

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

/// A signature of either scheme.
pub type SignatureBytes = heapless::Vec<u8, MAX_SIGNATURE>;

/// A full identity, able to sign. Holds only seeds; the ML-DSA signing key is expanded for each
/// signature so the identity stays small on a microcontroller.
///
/// ```
/// use aqm_core::crypto::Identity;
/// let mut rng = rand::rng();
/// let alice = Identity::generate(&mut rng);
/// let sig = alice.sign_ed25519(b"hello");
/// assert!(alice.public().verify_ed25519(b"hello", &sig).is_ok());
/// assert!(alice.public().verify_ed25519(b"hullo", &sig).is_err());
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
            mldsa65: heapless::Vec::from_slice(&mldsa_public(&secret.mldsa65_seed)).unwrap_or_default(),
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

    /// RFC 8032 Ed25519 signature.
    pub fn sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        ed25519_dalek::SigningKey::from_bytes(&self.secret.ed25519_seed).sign(msg).to_bytes()
    }

    /// FIPS 204 pure ML-DSA-65 signature, hedged with the caller's RNG, empty context.
    pub fn sign_mldsa65<R: CryptoRng + ?Sized>(&self, msg: &[u8], rng: &mut R) -> Result<SignatureBytes, Error> {
        sign_mldsa(&self.secret.mldsa65_seed, msg, rng)
    }
}

#[inline(never)]
fn mldsa_public(seed: &[u8; 32]) -> ml_dsa::EncodedVerifyingKey<MlDsa65> {
    let kp = MlDsaSigningKey::<MlDsa65>::from_seed(&(*seed).into());
    kp.expanded_key().verifying_key().encode()
}

// Kept out of line: the expanded ML-DSA key is large and should not inflate callers' frames.
#[inline(never)]
fn sign_mldsa<R: CryptoRng + ?Sized>(seed: &[u8; 32], msg: &[u8], rng: &mut R) -> Result<SignatureBytes, Error> {
    let kp = MlDsaSigningKey::<MlDsa65>::from_seed(&(*seed).into());
    let sig = kp.expanded_key().sign_randomized(msg, &[], rng).map_err(|_| Error::BadSignature)?;
    SignatureBytes::from_slice(&sig.encode()).map_err(|_| Error::BufferTooSmall)
}

impl PublicIdentity {
    /// Verify an Ed25519 signature (strict RFC 8032 verification).
    pub fn verify_ed25519(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| Error::BadSignature)?;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.ed25519).map_err(|_| Error::BadSignature)?;
        vk.verify(msg, &sig).map_err(|_| Error::BadSignature)
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
