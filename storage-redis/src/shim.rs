//! INTERIM stand-in for `aqm_core::crypto::at_rest` until the core module lands (then deleted).
#![allow(missing_docs)]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aqm_core::crypto::DeviceKey;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngExt as _;
use sha2::Sha256;

pub(crate) struct MetadataKey {
    index: [u8; 32],
    seal: Aes256Gcm,
}

impl MetadataKey {
    pub(crate) fn derive(dk: &DeviceKey) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"AQM-at-rest-v1"), &dk.to_bytes());
        let mut index = [0u8; 32];
        let mut seal = [0u8; 32];
        hk.expand(b"index", &mut index).unwrap();
        hk.expand(b"seal", &mut seal).unwrap();
        MetadataKey { index, seal: Aes256Gcm::new(&seal.into()) }
    }
    pub(crate) fn index(&self, domain: &[u8], id: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.index).unwrap();
        m.update(&[domain.len() as u8]);
        m.update(domain);
        m.update(id);
        m.finalize().into_bytes().into()
    }
    fn aad(kind: u8, ix: &[u8]) -> Vec<u8> {
        let mut a = vec![kind];
        a.extend_from_slice(ix);
        a
    }
    pub(crate) fn seal(&self, kind: u8, ix: &[u8], plain: &[u8]) -> Result<Vec<u8>, aqm_core::Error> {
        let nonce: [u8; 12] = rand::rng().random();
        let mut buf = plain.to_vec();
        let tag = self
            .seal
            .encrypt_inout_detached(&Nonce::from(nonce), &Self::aad(kind, ix), buf.as_mut_slice().into())
            .map_err(|_| aqm_core::Error::BufferTooSmall)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        Ok(out)
    }
    pub(crate) fn open(&self, kind: u8, ix: &[u8], blob: &[u8]) -> Result<Vec<u8>, aqm_core::Error> {
        if blob.len() < 28 {
            return Err(aqm_core::Error::SealBroken);
        }
        let (nonce, rest) = blob.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let mut buf = ct.to_vec();
        let tag = aes_gcm::Tag::try_from(tag).map_err(|_| aqm_core::Error::SealBroken)?;
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        self.seal
            .decrypt_inout_detached(&Nonce::from(nonce), &Self::aad(kind, ix), buf.as_mut_slice().into(), &tag)
            .map_err(|_| aqm_core::Error::SealBroken)?;
        Ok(buf)
    }
}
