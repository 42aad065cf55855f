//! Cryptography: identities, per-tier KEMs, coin signatures and sealing at rest.
//!
//! Everything is built on the RustCrypto and dalek crates; randomness always comes from the
//! caller's [`rand_core::CryptoRng`].

pub mod at_rest;
mod identity;
mod kem;
mod seal;
mod secret;
mod small_mldsa65;

pub use at_rest::MetadataKey;
pub use identity::{
    Identity, IdentitySecret, PublicIdentity, REGISTER_DOMAIN, REGISTER_MESSAGE_LEN, RegistrationProof, SignatureBytes,
};
pub use kem::{KemCiphertext, PublicKeyBytes, decapsulate, encapsulate, generate_keypair, public_key_from_seed};
pub use seal::{DeviceKey, SealedSecret};
pub use secret::{SecretSeed, SharedSecret};

/// Fixed sizes of every key, ciphertext, seed and signature, per docs/protocol.md.
pub mod sizes {
    /// X-Wing encapsulation key.
    pub const GOLD_PUBLIC_KEY: usize = 1216;
    /// X-Wing ciphertext.
    pub const GOLD_CIPHERTEXT: usize = 1120;
    /// X-Wing decapsulation seed.
    pub const GOLD_SEED: usize = 32;
    /// ML-KEM-768 encapsulation key.
    pub const SILVER_PUBLIC_KEY: usize = 1184;
    /// ML-KEM-768 ciphertext.
    pub const SILVER_CIPHERTEXT: usize = 1088;
    /// ML-KEM-768 seed d‖z.
    pub const SILVER_SEED: usize = 64;
    /// X25519 public key.
    pub const BRONZE_PUBLIC_KEY: usize = 32;
    /// X25519 ephemeral public key (the DHKEM ciphertext).
    pub const BRONZE_CIPHERTEXT: usize = 32;
    /// X25519 secret scalar.
    pub const BRONZE_SEED: usize = 32;
    /// ML-DSA-65 signature.
    pub const MLDSA65_SIGNATURE: usize = 3309;
    /// ML-DSA-65 verifying key.
    pub const MLDSA65_PUBLIC_KEY: usize = 1952;
    /// Ed25519 signature.
    pub const ED25519_SIGNATURE: usize = 64;
    /// Ed25519 verifying key.
    pub const ED25519_PUBLIC_KEY: usize = 32;
    /// Largest public key of any tier.
    pub const MAX_PUBLIC_KEY: usize = GOLD_PUBLIC_KEY;
    /// Largest KEM ciphertext of any tier.
    pub const MAX_CIPHERTEXT: usize = GOLD_CIPHERTEXT;
    /// Largest secret seed of any tier.
    pub const MAX_SEED: usize = SILVER_SEED;
    /// The hybrid signature field of GOLD coins and GOLD re-keys: `ed25519 ‖ mldsa65`.
    pub const HYBRID_SIGNATURE: usize = ED25519_SIGNATURE + MLDSA65_SIGNATURE;
    /// Largest signature field of any tier (the hybrid one).
    pub const MAX_SIGNATURE: usize = HYBRID_SIGNATURE;
    /// AES-GCM tag.
    pub const AEAD_TAG: usize = 16;
    /// AES-GCM nonce.
    pub const AEAD_NONCE: usize = 12;
    /// A sealed seed: the largest seed plus its tag.
    pub const MAX_SEALED: usize = MAX_SEED + AEAD_TAG;
}

use crate::Tier;

/// Per-tier sizes.
impl Tier {
    /// Public key size of this tier.
    pub const fn public_key_len(self) -> usize {
        match self {
            Tier::Gold => sizes::GOLD_PUBLIC_KEY,
            Tier::Silver => sizes::SILVER_PUBLIC_KEY,
            Tier::Bronze => sizes::BRONZE_PUBLIC_KEY,
        }
    }
    /// KEM ciphertext size of this tier.
    pub const fn ciphertext_len(self) -> usize {
        match self {
            Tier::Gold => sizes::GOLD_CIPHERTEXT,
            Tier::Silver => sizes::SILVER_CIPHERTEXT,
            Tier::Bronze => sizes::BRONZE_CIPHERTEXT,
        }
    }
    /// Secret seed size of this tier.
    pub const fn seed_len(self) -> usize {
        match self {
            Tier::Gold => sizes::GOLD_SEED,
            Tier::Silver => sizes::SILVER_SEED,
            Tier::Bronze => sizes::BRONZE_SEED,
        }
    }
    /// Size of this tier's signature field on coins and re-keys: the hybrid Ed25519 ‖ ML-DSA-65
    /// for GOLD, Ed25519 otherwise (docs/protocol.md).
    pub const fn signature_len(self) -> usize {
        match self {
            Tier::Gold => sizes::HYBRID_SIGNATURE,
            Tier::Silver | Tier::Bronze => sizes::ED25519_SIGNATURE,
        }
    }

    /// Whether this tier's signatures are hybrid (Ed25519 and ML-DSA-65).
    pub const fn hybrid_signature(self) -> bool {
        matches!(self, Tier::Gold)
    }
}
