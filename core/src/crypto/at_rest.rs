//! Contact metadata at rest: the keys a device store derives from the device key to hide who the
//! device talks to, when and how much (docs/protocol.md §6).
//!
//! A store holds two kinds of things that name a contact: table keys (a contact id, a key id, a
//! peer id, often with a tier byte) and values (display names, priorities, last-message times,
//! cached coins, session versions). [`MetadataKey`] gives it one answer for each:
//!
//! - [`MetadataKey::index`]: a keyed hash (HMAC-SHA256 under the *index key*) that replaces an id
//!   in a table key. Equal inputs give equal outputs, so lookups and range scans still work; the
//!   domain (one per record kind) keeps a contact id and a key id from ever meeting.
//! - [`MetadataKey::seal_into`] / [`MetadataKey::open_into`]: AES-256-GCM under the *seal key*
//!   with a random 96-bit nonce, the AAD binding the record's domain and the table key it is
//!   stored under, so a sealed value cannot be moved to another key or kind.
//!
//! Both keys come from the device key by HKDF-SHA256 with their own salt and labels, so neither
//! is the key the vault seals seeds under ([`super::SealedSecret`] uses the device key itself),
//! and knowing one derived key says nothing about the device key or the other.
//!
//! Nothing here allocates; with the `alloc` feature [`MetadataKey::seal`] and
//! [`MetadataKey::open`] return vectors.
// Lengths come from storage: no unchecked arithmetic on them.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use core::fmt;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::DeviceKey;
use super::sizes::{AEAD_NONCE, AEAD_TAG};
use crate::Error;

/// HKDF-SHA256 salt of the at-rest metadata keys.
pub const AT_REST_SALT: &[u8] = b"AQM-at-rest-v1";
/// HKDF info of the index key (keyed hashes of table keys).
pub const INDEX_INFO: &[u8] = b"index";
/// HKDF info of the seal key (AES-256-GCM of record values).
pub const SEAL_INFO: &[u8] = b"seal";
/// First bytes of every record's AAD.
pub const RECORD_AAD_DOMAIN: &[u8] = b"AQM-record-v1";
/// Bytes a sealed record adds to its plaintext: the nonce and the tag.
pub const SEAL_OVERHEAD: usize = AEAD_NONCE + AEAD_TAG;
/// Longest record domain [`MetadataKey::seal_into`] accepts.
pub const MAX_DOMAIN: usize = 32;
/// Longest table key a sealed record can be bound to.
pub const MAX_RECORD_KEY: usize = 96;

const AAD_MAX: usize = RECORD_AAD_DOMAIN.len() + 8 + MAX_DOMAIN + MAX_RECORD_KEY;

/// A keyed hash standing in for an id in a table key.
pub type Index = [u8; 32];

/// The two at-rest metadata keys of one device, derived from its [`DeviceKey`]:
/// `HKDF-SHA256(salt = "AQM-at-rest-v1", ikm = device key)` expanded with info `"index"` and
/// `"seal"`. Wiped on drop; its `Debug` prints nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MetadataKey {
    index: [u8; 32],
    seal: [u8; 32],
}

impl fmt::Debug for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetadataKey(redacted)")
    }
}

/// `len(domain) as u64 BE ‖ domain`: the prefix that separates domains in hashes and AADs.
fn domain_prefix(domain: &[u8]) -> [u8; 8] {
    (domain.len() as u64).to_be_bytes()
}

impl MetadataKey {
    /// Derive the index key and the seal key from `device_key`.
    pub fn derive(device_key: &DeviceKey) -> MetadataKey {
        let ikm = Zeroizing::new(device_key.to_bytes());
        let hk = Hkdf::<Sha256>::new(Some(AT_REST_SALT), ikm.as_slice());
        let mut key = MetadataKey { index: [0u8; 32], seal: [0u8; 32] };
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expansion cannot fail.
        let _ = hk.expand(INDEX_INFO, &mut key.index);
        let _ = hk.expand(SEAL_INFO, &mut key.seal);
        key
    }

    /// The keyed hash of `id` in `domain`: `HMAC-SHA256(index key, len64(domain) ‖ domain ‖ id)`.
    ///
    /// Give each record kind its own domain (e.g. `b"contact"`, `b"vault"`), so ids of different
    /// kinds never map to the same table key. Compose an id of several fixed-length parts by
    /// concatenating them.
    pub fn index(&self, domain: &[u8], id: &[u8]) -> Index {
        let mut out = [0u8; 32];
        // HMAC takes keys of any length, so this is always Ok.
        if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.index) {
            mac.update(&domain_prefix(domain));
            mac.update(domain);
            mac.update(id);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.seal.into())
    }

    /// `RECORD_AAD_DOMAIN ‖ len64(domain) ‖ domain ‖ record_key`, in `buf`; its length.
    fn aad(domain: &[u8], record_key: &[u8], buf: &mut [u8; AAD_MAX]) -> Result<usize, Error> {
        if domain.len() > MAX_DOMAIN {
            return Err(Error::BadLength { what: "at-rest record domain", expected: MAX_DOMAIN, got: domain.len() });
        }
        if record_key.len() > MAX_RECORD_KEY {
            return Err(Error::BadLength {
                what: "at-rest record key",
                expected: MAX_RECORD_KEY,
                got: record_key.len(),
            });
        }
        let mut at = 0usize;
        for part in [RECORD_AAD_DOMAIN, &domain_prefix(domain), domain, record_key] {
            let end = at.checked_add(part.len()).ok_or(Error::BufferTooSmall)?;
            buf.get_mut(at..end).ok_or(Error::BufferTooSmall)?.copy_from_slice(part);
            at = end;
        }
        Ok(at)
    }

    /// Seal `plaintext`, the value of a `domain` record stored under `record_key` (the table
    /// key as stored, e.g. an [`Index`] with a sequence number), into `out` as
    /// `nonce (12) ‖ ciphertext ‖ tag (16)`; returns the length written
    /// (`plaintext.len() + SEAL_OVERHEAD`).
    ///
    /// Refuses a domain longer than [`MAX_DOMAIN`] or a key longer than [`MAX_RECORD_KEY`]
    /// (`BadLength`) and an `out` too short (`BufferTooSmall`). Nonces are random: a device
    /// seals far fewer than the 2³² records per key that random 96-bit nonces allow.
    pub fn seal_into<R: CryptoRng + ?Sized>(
        &self,
        domain: &[u8],
        record_key: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, Error> {
        let mut aad = [0u8; AAD_MAX];
        let aad_len = Self::aad(domain, record_key, &mut aad)?;
        let body_end = AEAD_NONCE.checked_add(plaintext.len()).ok_or(Error::BufferTooSmall)?;
        let total = body_end.checked_add(AEAD_TAG).ok_or(Error::BufferTooSmall)?;
        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let (nonce, rest) = out.split_at_mut(AEAD_NONCE);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        rng.fill_bytes(nonce);
        body.copy_from_slice(plaintext);
        let tag = self
            .cipher()
            .encrypt_inout_detached(
                &Nonce::try_from(&*nonce).map_err(|_| Error::BufferTooSmall)?,
                aad.get(..aad_len).unwrap_or_default(),
                body.into(),
            )
            .map_err(|_| Error::BufferTooSmall)?;
        tag_out.copy_from_slice(&tag);
        Ok(total)
    }

    /// Open a record sealed by [`MetadataKey::seal_into`] for the same `domain` and
    /// `record_key` into `out`; returns the plaintext length (`sealed.len() - SEAL_OVERHEAD`).
    ///
    /// Another key, domain or record key, any flipped bit or a truncated record:
    /// [`Error::SealBroken`]. An `out` too short: `BufferTooSmall`. Nothing is written to `out`
    /// beyond scratch that a refusal leaves unspecified.
    pub fn open_into(&self, domain: &[u8], record_key: &[u8], sealed: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let mut aad = [0u8; AAD_MAX];
        let aad_len = Self::aad(domain, record_key, &mut aad)?;
        let (nonce, rest) = sealed.split_at_checked(AEAD_NONCE).ok_or(Error::SealBroken)?;
        let body_len = rest.len().checked_sub(AEAD_TAG).ok_or(Error::SealBroken)?;
        let (body, tag) = rest.split_at(body_len);
        let plain = out.get_mut(..body_len).ok_or(Error::BufferTooSmall)?;
        plain.copy_from_slice(body);
        let nonce = Nonce::try_from(nonce).map_err(|_| Error::SealBroken)?;
        let tag = Tag::try_from(tag).map_err(|_| Error::SealBroken)?;
        if self
            .cipher()
            .decrypt_inout_detached(&nonce, aad.get(..aad_len).unwrap_or_default(), (&mut *plain).into(), &tag)
            .is_err()
        {
            // Leave no unauthenticated plaintext behind.
            plain.zeroize();
            return Err(Error::SealBroken);
        }
        Ok(body_len)
    }

    /// [`MetadataKey::seal_into`] into a new vector.
    #[cfg(feature = "alloc")]
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        domain: &[u8],
        record_key: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<alloc::vec::Vec<u8>, Error> {
        let len = plaintext.len().checked_add(SEAL_OVERHEAD).ok_or(Error::BufferTooSmall)?;
        let mut out = alloc::vec![0u8; len];
        let n = self.seal_into(domain, record_key, plaintext, &mut out, rng)?;
        out.truncate(n);
        Ok(out)
    }

    /// [`MetadataKey::open_into`] into a new vector.
    #[cfg(feature = "alloc")]
    pub fn open(&self, domain: &[u8], record_key: &[u8], sealed: &[u8]) -> Result<alloc::vec::Vec<u8>, Error> {
        let mut out = alloc::vec![0u8; sealed.len().saturating_sub(SEAL_OVERHEAD)];
        let n = self.open_into(domain, record_key, sealed, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::{format, vec::Vec};

    fn key(seed: u64) -> (DeviceKey, MetadataKey) {
        let dk = DeviceKey::random(&mut ChaCha20Rng::seed_from_u64(seed));
        let mk = MetadataKey::derive(&dk);
        (dk, mk)
    }

    #[test]
    fn derived_keys_differ_from_the_device_key_and_each_other() {
        let (dk, mk) = key(1);
        assert_ne!(mk.index, mk.seal);
        assert_ne!(mk.index, dk.to_bytes());
        assert_ne!(mk.seal, dk.to_bytes());
        assert_eq!(format!("{mk:?}"), "MetadataKey(redacted)");
        // Deterministic: the same device key gives the same keys (a store reopens).
        let again = MetadataKey::derive(&dk);
        assert_eq!((again.index, again.seal), (mk.index, mk.seal));
        let (_, other) = key(2);
        assert_ne!(other.index, mk.index);
        assert_ne!(other.seal, mk.seal);
    }

    #[test]
    fn derivation_matches_hkdf_with_the_documented_labels() {
        let dk = DeviceKey::from_bytes([0x42; 32]);
        let mk = MetadataKey::derive(&dk);
        let hk = Hkdf::<Sha256>::new(Some(b"AQM-at-rest-v1"), &[0x42; 32]);
        let (mut i, mut s) = ([0u8; 32], [0u8; 32]);
        hk.expand(b"index", &mut i).unwrap();
        hk.expand(b"seal", &mut s).unwrap();
        assert_eq!((mk.index, mk.seal), (i, s));
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&i).unwrap();
        mac.update(&[0, 0, 0, 0, 0, 0, 0, 7]);
        mac.update(b"contact");
        mac.update(&[9u8; 16]);
        assert_eq!(mk.index(b"contact", &[9u8; 16]).as_slice(), mac.finalize().into_bytes().as_slice());
    }

    #[test]
    fn index_is_deterministic_keyed_and_domain_separated() {
        let (_, mk) = key(3);
        let id = [7u8; 16];
        assert_eq!(mk.index(b"contact", &id), mk.index(b"contact", &id));
        assert_ne!(mk.index(b"contact", &id), mk.index(b"vault", &id));
        assert_ne!(mk.index(b"contact", &id), mk.index(b"contact", &[8u8; 16]));
        // The length prefix keeps (domain, id) splits apart.
        assert_ne!(mk.index(b"ab", b"c"), mk.index(b"a", b"bc"));
        let (_, other) = key(4);
        assert_ne!(mk.index(b"contact", &id), other.index(b"contact", &id));
        assert!(!mk.index(b"contact", &id).windows(16).any(|w| w == id));
    }

    #[test]
    fn seal_opens_and_binds_domain_and_record_key() {
        let (_, mk) = key(5);
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let ix = mk.index(b"contact", &[1u8; 16]);
        let plain = b"display name: bob, priority BESTIE";
        let sealed = mk.seal(b"contacts", &ix, plain, &mut rng).unwrap();
        assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
        assert!(!sealed.windows(plain.len()).any(|w| w == plain));
        assert_eq!(mk.open(b"contacts", &ix, &sealed).unwrap(), plain);
        // Fresh nonce per seal.
        assert_ne!(mk.seal(b"contacts", &ix, plain, &mut rng).unwrap(), sealed);
        // Another table key or another record kind: refused.
        let other = mk.index(b"contact", &[2u8; 16]);
        assert_eq!(mk.open(b"contacts", &other, &sealed), Err(Error::SealBroken));
        assert_eq!(mk.open(b"pins", &ix, &sealed), Err(Error::SealBroken));
        assert_eq!(mk.open(b"contacts", &ix[..31], &sealed), Err(Error::SealBroken));
    }

    #[test]
    fn wrong_key_flipped_bits_and_truncation_are_refused() {
        let (_, mk) = key(7);
        let (_, wrong) = key(8);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let sealed = mk.seal(b"vault", b"k", &[0xAB; 40], &mut rng).unwrap();
        assert_eq!(wrong.open(b"vault", b"k", &sealed), Err(Error::SealBroken));
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(mk.open(b"vault", b"k", &bad), Err(Error::SealBroken), "bit {bit}");
        }
        for len in 0..sealed.len() {
            assert_eq!(mk.open(b"vault", b"k", &sealed[..len]), Err(Error::SealBroken), "{len} bytes");
        }
        // An empty plaintext still authenticates.
        let empty = mk.seal(b"vault", b"k", &[], &mut rng).unwrap();
        assert_eq!(empty.len(), SEAL_OVERHEAD);
        assert_eq!(mk.open(b"vault", b"k", &empty).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_refused_open_leaves_no_plaintext_and_limits_are_typed() {
        let (_, mk) = key(10);
        let (_, wrong) = key(11);
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut sealed = [0u8; 64];
        let n = mk.seal_into(b"d", b"k", &[0x5A; 20], &mut sealed, &mut rng).unwrap();
        let mut out = [0u8; 20];
        assert_eq!(wrong.open_into(b"d", b"k", &sealed[..n], &mut out), Err(Error::SealBroken));
        assert_eq!(out, [0u8; 20]);
        assert_eq!(mk.open_into(b"d", b"k", &sealed[..n], &mut out[..19]), Err(Error::BufferTooSmall));
        assert_eq!(mk.open_into(b"d", b"k", &sealed[..n], &mut out), Ok(20));
        assert_eq!(out, [0x5A; 20]);
        assert_eq!(mk.seal_into(b"d", b"k", &[0; 20], &mut sealed[..47], &mut rng), Err(Error::BufferTooSmall));
        assert!(matches!(
            mk.seal_into(&[0; MAX_DOMAIN + 1], b"k", &[], &mut sealed, &mut rng),
            Err(Error::BadLength { .. })
        ));
        assert!(matches!(
            mk.seal_into(b"d", &[0; MAX_RECORD_KEY + 1], &[], &mut sealed, &mut rng),
            Err(Error::BadLength { .. })
        ));
        assert!(mk.seal_into(&[0; MAX_DOMAIN], &[0; MAX_RECORD_KEY], &[], &mut sealed, &mut rng).is_ok());
    }

    #[test]
    fn metadata_key_is_not_the_vault_sealing_key() {
        // A record sealed under the metadata key does not open under the device key as used by
        // the vault, and vice versa: the two are different AES keys.
        let (dk, mk) = key(13);
        let direct = Aes256Gcm::new(&dk.to_bytes().into());
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let sealed = mk.seal(b"d", b"k", &[1; 16], &mut rng).unwrap();
        let mut aad = [0u8; AAD_MAX];
        let n = MetadataKey::aad(b"d", b"k", &mut aad).unwrap();
        let mut body = sealed[AEAD_NONCE..sealed.len() - AEAD_TAG].to_vec();
        let tag = Tag::try_from(&sealed[sealed.len() - AEAD_TAG..]).unwrap();
        let nonce = Nonce::try_from(&sealed[..AEAD_NONCE]).unwrap();
        assert!(direct.decrypt_inout_detached(&nonce, &aad[..n], body.as_mut_slice().into(), &tag).is_err());
    }
}
