//! Coins: one-time KEM key pairs whose public half is signed by the owner's identity.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::crypto::sizes::MAX_PUBLIC_KEY;
use crate::crypto::{self, DeviceKey, Identity, PublicIdentity, PublicKeyBytes, SealedSecret};
use crate::vault::VaultEntry;
use crate::{Error, KeyId, Tier, UnixSeconds, UserId};

pub use crate::crypto::SignatureBytes;

/// Domain separation tag of the coin signature (DESIGN §3).
pub const COIN_SIGNATURE_DOMAIN: &[u8] = b"AQM-coin-v1";

/// Bytes of the largest signed coin message.
const MAX_SIGNED: usize = COIN_SIGNATURE_DOMAIN.len() + 16 + 16 + 1 + MAX_PUBLIC_KEY;

/// The public half of a coin, as published to the directory and cached by contacts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicCoin {
    /// The user who minted the coin and holds its secret.
    pub owner: UserId,
    /// The coin's key id.
    pub key_id: KeyId,
    /// The coin's tier.
    pub tier: Tier,
    /// The KEM public key.
    pub public_key: PublicKeyBytes,
    /// ML-DSA-65 (GOLD) or Ed25519 signature over [`PublicCoin::signed_message`].
    pub signature: SignatureBytes,
}

impl PublicCoin {
    /// `"AQM-coin-v1" ‖ owner ‖ key id ‖ tier byte ‖ public key`, the bytes the owner signs.
    pub fn signed_message(
        owner: &UserId,
        key_id: &KeyId,
        tier: Tier,
        public_key: &[u8],
    ) -> heapless::Vec<u8, MAX_SIGNED> {
        let mut m = heapless::Vec::new();
        // Capacity is the largest possible message; public keys longer than that are refused
        // before signing or verifying, so these pushes cannot fail.
        let _ = m.extend_from_slice(COIN_SIGNATURE_DOMAIN);
        let _ = m.extend_from_slice(owner.as_bytes());
        let _ = m.extend_from_slice(key_id.as_bytes());
        let _ = m.push(tier.to_byte());
        let _ = m.extend_from_slice(public_key);
        m
    }

    /// Check sizes, that `owner` minted the coin, and its signature.
    ///
    /// ```
    /// use aqm_core::{coin, crypto::{DeviceKey, Identity}, Error, Tier};
    /// let mut rng = rand::rng();
    /// let bob = Identity::generate(&mut rng);
    /// let mallory = Identity::generate(&mut rng);
    /// let dk = DeviceKey::random(&mut rng);
    /// let minted = coin::mint(&bob, Tier::Bronze, &dk, 0, &mut rng).unwrap();
    /// assert!(minted.public.verify(bob.public()).is_ok());
    /// assert_eq!(minted.public.verify(mallory.public()), Err(Error::WrongOwner));
    /// ```
    pub fn verify(&self, owner: &PublicIdentity) -> Result<(), Error> {
        if self.owner != owner.user_id {
            return Err(Error::WrongOwner);
        }
        let t = self.tier;
        if self.public_key.len() != t.public_key_len() {
            return Err(Error::BadLength {
                what: "coin public key",
                expected: t.public_key_len(),
                got: self.public_key.len(),
            });
        }
        if self.signature.len() != t.signature_len() {
            return Err(Error::BadLength {
                what: "coin signature",
                expected: t.signature_len(),
                got: self.signature.len(),
            });
        }
        let msg = Self::signed_message(&self.owner, &self.key_id, t, &self.public_key);
        match t {
            Tier::Gold => owner.verify_mldsa65(&msg, &self.signature),
            Tier::Silver | Tier::Bronze => owner.verify_ed25519(&msg, &self.signature),
        }
    }

    /// Bytes this coin occupies in an inventory (key, signature, ids and tier).
    pub fn stored_bytes(&self) -> u64 {
        stored_bytes(self.tier)
    }
}

/// Bytes a cached coin of `tier` occupies: public key + signature + owner + key id + tier byte.
pub const fn stored_bytes(tier: Tier) -> u64 {
    (tier.public_key_len() + tier.signature_len() + 16 + 16 + 1) as u64
}

/// A freshly minted coin: the public half to publish, the sealed private half for the vault.
#[derive(Clone, Debug)]
pub struct MintedCoin {
    /// Publish this to the directory.
    pub public: PublicCoin,
    /// Store this in the owner's vault.
    pub vault: VaultEntry,
}

/// Mint one coin of `tier` for `identity`: generate the key pair, sign the public half, seal the
/// secret seed under `device_key`.
pub fn mint<R: CryptoRng + ?Sized>(
    identity: &Identity,
    tier: Tier,
    device_key: &DeviceKey,
    now: UnixSeconds,
    rng: &mut R,
) -> Result<MintedCoin, Error> {
    let key_id = KeyId::random(rng);
    let (seed, public_key) = crypto::generate_keypair(tier, rng);
    let owner = identity.user_id();
    let msg = PublicCoin::signed_message(&owner, &key_id, tier, &public_key);
    let signature = match tier {
        Tier::Gold => identity.sign_mldsa65(&msg, rng)?,
        Tier::Silver | Tier::Bronze => {
            SignatureBytes::from_slice(&identity.sign_ed25519(&msg)).map_err(|_| Error::BufferTooSmall)?
        }
    };
    let sealed = SealedSecret::seal(device_key, &key_id, tier, &seed, rng)?;
    Ok(MintedCoin {
        public: PublicCoin { owner, key_id, tier, public_key, signature },
        vault: VaultEntry::new_active(key_id, tier, sealed, now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_tier_mints_verifies_and_opens() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let bob = Identity::generate(&mut rng);
        let dk = DeviceKey::random(&mut rng);
        for tier in Tier::ALL {
            let m = mint(&bob, tier, &dk, 100, &mut rng).unwrap();
            m.public.verify(bob.public()).unwrap();
            assert_eq!(m.public.signature.len(), tier.signature_len());
            let seed = m.vault.sealed.open(&dk, &m.public.key_id, tier).unwrap();
            let (ct, ss) = crypto::encapsulate(tier, &m.public.public_key, &mut rng).unwrap();
            assert_eq!(crypto::decapsulate(tier, &seed, &ct).unwrap(), ss);
        }
    }

    #[test]
    fn forgeries_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        let bob = Identity::generate(&mut rng);
        let dk = DeviceKey::random(&mut rng);
        for tier in Tier::ALL {
            let m = mint(&bob, tier, &dk, 0, &mut rng).unwrap();
            let mut c = m.public.clone();
            c.public_key[3] ^= 1;
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            let mut c = m.public.clone();
            c.signature[10] ^= 1;
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            let mut c = m.public.clone();
            c.key_id = KeyId::random(&mut rng);
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            let mut c = m.public.clone();
            c.signature.pop();
            assert!(matches!(c.verify(bob.public()), Err(Error::BadLength { .. })));
            // A coin re-labelled with another tier of equal signature scheme is refused too.
            if tier == Tier::Silver {
                let mut c = m.public.clone();
                c.tier = Tier::Bronze;
                assert!(matches!(c.verify(bob.public()), Err(Error::BadLength { .. })));
            }
        }
    }
}
