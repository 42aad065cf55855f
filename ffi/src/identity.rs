//! The device's identity at rest: the two 32-byte seeds of the user's identity (Ed25519 and
//! ML-DSA-65), sealed under a key derived from the device key, stored beside the other records of
//! the device's store (a table of its own in the redb file, a key of its own on Redis).
//!
//! Sealed format 1 (110 bytes): `0x5E ‖ 0x01 ‖ user id (16) ‖ nonce (12) ‖ AES-256-GCM(ed25519
//! seed ‖ ML-DSA-65 seed) (64 + 16 tag)`, key = HKDF-SHA256(device key, info =
//! `"AQM-ffi-identity-seal-v1"`), AAD = `"AQM-ffi-identity-v1" ‖ user id`. A wrong device key or
//! any flipped bit gives `SealBroken`. These sealed bytes are the only form in which the
//! identity's secrets ever leave the library ([`crate::AqmDevice::identity`]).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aqm_core::UserId;
use aqm_core::crypto::{DeviceKey, Identity, IdentitySecret};
use hkdf::Hkdf;
use rand::Rng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::AqmError;

/// First byte of a sealed identity.
pub const SEALED_IDENTITY_TAG: u8 = 0x5E;
/// Format of the sealed identity.
pub const SEALED_IDENTITY_FORMAT: u8 = 1;
/// Length of a sealed identity.
pub const SEALED_IDENTITY_LEN: usize = 2 + 16 + 12 + 64 + 16;

const SEAL_INFO: &[u8] = b"AQM-ffi-identity-seal-v1";
const AAD_DOMAIN: &[u8] = b"AQM-ffi-identity-v1";

fn cipher(device_key: &DeviceKey) -> Result<Aes256Gcm, AqmError> {
    let ikm = Zeroizing::new(device_key.to_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, &ikm[..])
        .expand(SEAL_INFO, &mut okm[..])
        .map_err(|_| AqmError::Internal { detail: "HKDF refused a 32-byte output".into() })?;
    Ok(Aes256Gcm::new(&(*okm).into()))
}

fn aad(user: &UserId) -> Vec<u8> {
    [AAD_DOMAIN, user.as_bytes()].concat()
}

/// Seal `identity` under `device_key`.
pub fn seal(identity: &Identity, device_key: &DeviceKey) -> Result<Vec<u8>, AqmError> {
    let secret = identity.secret();
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let mut body = Zeroizing::new([0u8; 64]);
    body[..32].copy_from_slice(&secret.ed25519_seed);
    body[32..].copy_from_slice(&secret.mldsa65_seed);
    let tag = cipher(device_key)?
        .encrypt_inout_detached(&Nonce::from(nonce), &aad(&secret.user_id), (&mut body[..]).into())
        .map_err(|_| AqmError::Internal { detail: "AES-GCM refused to seal 64 bytes".into() })?;
    let mut out = Vec::with_capacity(SEALED_IDENTITY_LEN);
    out.extend_from_slice(&[SEALED_IDENTITY_TAG, SEALED_IDENTITY_FORMAT]);
    out.extend_from_slice(secret.user_id.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body[..]);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Open a sealed identity with `device_key`.
pub fn open(sealed: &[u8], device_key: &DeviceKey) -> Result<Identity, AqmError> {
    if sealed.len() != SEALED_IDENTITY_LEN || sealed[0] != SEALED_IDENTITY_TAG {
        return Err(AqmError::malformed("sealed identity"));
    }
    if sealed[1] != SEALED_IDENTITY_FORMAT {
        return Err(AqmError::StorageFormat {
            detail: format!(
                "the sealed identity is in format {}, this build reads format {SEALED_IDENTITY_FORMAT}: upgrade AQM",
                sealed[1]
            ),
        });
    }
    let user_id = UserId::from_slice(&sealed[2..18])?;
    let nonce: [u8; 12] = sealed[18..30].try_into().map_err(|_| AqmError::malformed("sealed identity"))?;
    let mut body = Zeroizing::new([0u8; 64]);
    body.copy_from_slice(&sealed[30..94]);
    let tag = aes_gcm::Tag::try_from(&sealed[94..]).map_err(|_| AqmError::malformed("sealed identity"))?;
    cipher(device_key)?
        .decrypt_inout_detached(&Nonce::from(nonce), &aad(&user_id), (&mut body[..]).into(), &tag)
        .map_err(|_| AqmError::SealBroken {
            detail: "the stored identity does not open with this device key: pass the device key this store \
                     was created with (from the OS keystore)"
                .into(),
        })?;
    let mut secret = IdentitySecret { user_id, ed25519_seed: [0; 32], mldsa65_seed: [0; 32] };
    secret.ed25519_seed.copy_from_slice(&body[..32]);
    secret.mldsa65_seed.copy_from_slice(&body[32..]);
    Ok(Identity::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_with_its_device_key_and_hides_the_seeds() {
        let mut rng = rand::rng();
        let id = Identity::generate(&mut rng);
        let dk = DeviceKey::random(&mut rng);
        let sealed = seal(&id, &dk).unwrap();
        assert_eq!(sealed.len(), SEALED_IDENTITY_LEN);
        assert_eq!(open(&sealed, &dk).unwrap().public(), id.public());
        assert!(!sealed.windows(32).any(|w| w == id.secret().ed25519_seed || w == id.secret().mldsa65_seed));
        assert!(matches!(open(&sealed, &DeviceKey::random(&mut rng)), Err(AqmError::SealBroken { .. })));
        for i in [2, 20, 40, 100] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(matches!(open(&bad, &dk), Err(AqmError::SealBroken { .. })), "byte {i}");
        }
        assert!(matches!(open(&sealed[..50], &dk), Err(AqmError::Malformed { .. })));
    }
}
