//! Sealing secrets at rest: AES-256-GCM under a device key, bound to key id and tier.
// Sealed lengths come from storage: no unchecked arithmetic on them.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use core::fmt;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::SecretSeed;
use super::sizes::{AEAD_NONCE, AEAD_TAG, MAX_SEALED};
use crate::{Error, KeyId, Tier};

/// The device's sealing key (AES-256). Held by the device, never stored beside the vault.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    /// Wrap 32 key bytes (e.g. from a secure element or an OS keystore).
    pub const fn from_bytes(b: [u8; 32]) -> Self {
        DeviceKey(b)
    }
    /// A fresh random key.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        DeviceKey(b)
    }
    /// The key bytes, for the caller to keep in its keystore.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
    pub(crate) fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(redacted)")
    }
}

/// A secret seed sealed with AES-256-GCM; AAD = key id ‖ tier byte, so a sealed blob cannot be
/// moved to another key id or tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Random 96-bit nonce.
    pub nonce: [u8; AEAD_NONCE],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: heapless::Vec<u8, MAX_SEALED>,
}

fn aad(key_id: &KeyId, tier: Tier) -> [u8; 17] {
    let mut a = [0u8; 17];
    a[..16].copy_from_slice(key_id.as_bytes());
    a[16] = tier.to_byte();
    a
}

impl SealedSecret {
    /// Seal `seed` for `key_id`/`tier` under `device_key`.
    pub fn seal<R: CryptoRng + ?Sized>(
        device_key: &DeviceKey,
        key_id: &KeyId,
        tier: Tier,
        seed: &SecretSeed,
        rng: &mut R,
    ) -> Result<SealedSecret, Error> {
        let mut nonce = [0u8; AEAD_NONCE];
        rng.fill_bytes(&mut nonce);
        let mut buf: heapless::Vec<u8, MAX_SEALED> =
            heapless::Vec::from_slice(seed.as_bytes()).map_err(|_| Error::BufferTooSmall)?;
        let tag = device_key
            .cipher()
            .encrypt_inout_detached(&Nonce::from(nonce), &aad(key_id, tier), buf.as_mut_slice().into())
            .map_err(|_| Error::BufferTooSmall)?;
        buf.extend_from_slice(&tag).map_err(|_| Error::BufferTooSmall)?;
        Ok(SealedSecret { nonce, ciphertext: buf })
    }

    /// Open a sealed seed; a wrong device key, key id, tier or any flipped bit gives
    /// [`Error::SealBroken`].
    pub fn open(&self, device_key: &DeviceKey, key_id: &KeyId, tier: Tier) -> Result<SecretSeed, Error> {
        let (sealed, tag) = self.ciphertext.split_at_checked(tier.seed_len()).ok_or(Error::SealBroken)?;
        if tag.len() != AEAD_TAG {
            return Err(Error::SealBroken);
        }
        let mut buf = zeroize::Zeroizing::new([0u8; MAX_SEALED]);
        let body = buf.get_mut(..sealed.len()).ok_or(Error::SealBroken)?;
        body.copy_from_slice(sealed);
        let tag = aes_gcm::Tag::try_from(tag).map_err(|_| Error::SealBroken)?;
        device_key
            .cipher()
            .decrypt_inout_detached(&Nonce::from(self.nonce), &aad(key_id, tier), body.into(), &tag)
            .map_err(|_| Error::SealBroken)?;
        SecretSeed::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn seal_binds_key_id_tier_and_device() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let dk = DeviceKey::random(&mut rng);
        let id = KeyId::random(&mut rng);
        let seed = SecretSeed::from_slice(&[7u8; 32]).unwrap();
        let sealed = SealedSecret::seal(&dk, &id, Tier::Gold, &seed, &mut rng).unwrap();
        assert_eq!(sealed.open(&dk, &id, Tier::Gold).unwrap().as_bytes(), seed.as_bytes());
        assert!(!sealed.ciphertext.windows(32).any(|w| w == seed.as_bytes()));
        assert_eq!(sealed.open(&dk, &id, Tier::Bronze).unwrap_err(), Error::SealBroken);
        assert_eq!(sealed.open(&dk, &KeyId::random(&mut rng), Tier::Gold).unwrap_err(), Error::SealBroken);
        assert_eq!(sealed.open(&DeviceKey::random(&mut rng), &id, Tier::Gold).unwrap_err(), Error::SealBroken);
        let mut bad = sealed.clone();
        bad.ciphertext[0] ^= 1;
        assert_eq!(bad.open(&dk, &id, Tier::Gold).unwrap_err(), Error::SealBroken);
        bad.ciphertext.truncate(3);
        assert_eq!(bad.open(&dk, &id, Tier::Gold).unwrap_err(), Error::SealBroken);
    }
}
