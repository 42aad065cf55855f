//! Shared by the fuzz targets and `gen_corpus`: fixed keys and ids, and the sealed session blob
//! layout, so arbitrary record bytes can be sealed and fed past the AEAD to the record decoder.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aqm_core::UserId;
use aqm_core::crypto::DeviceKey;

/// The device key every target and corpus file uses.
pub const DEVICE_KEY: [u8; 32] = [0x42; 32];
/// The peer the sessions belong to.
pub const PEER: UserId = UserId([0x0b; 16]);

pub fn device_key() -> DeviceKey {
    DeviceKey::from_bytes(DEVICE_KEY)
}

/// `aqm_core::ratchet`'s session blob layout (see `seal_record` there): nonce (12) ‖ AES-256-GCM
/// of the postcard record ‖ tag (16), AAD = `SESSION_AAD_DOMAIN` ‖ peer ‖ direction byte
/// (send 1, receive 2). [`check_layout`] fails loudly when the core's layout moves on.
pub fn seal_record(record: &[u8], direction: u8) -> Vec<u8> {
    let mut aad = aqm_core::ratchet::SESSION_AAD_DOMAIN.to_vec();
    aad.extend_from_slice(PEER.as_bytes());
    aad.push(direction);
    let nonce = [7u8; 12];
    let mut body = record.to_vec();
    let tag = Aes256Gcm::new(&DEVICE_KEY.into())
        .encrypt_inout_detached(&Nonce::from(nonce), &aad, body.as_mut_slice().into())
        .expect("encrypts");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&body);
    blob.extend_from_slice(&tag);
    blob
}

/// The record inside a blob sealed by the core, using this crate's copy of the layout.
pub fn open_record(blob: &[u8], direction: u8) -> Option<Vec<u8>> {
    if blob.len() < 28 {
        return None;
    }
    let mut aad = aqm_core::ratchet::SESSION_AAD_DOMAIN.to_vec();
    aad.extend_from_slice(PEER.as_bytes());
    aad.push(direction);
    let (n, rest) = blob.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let mut body = ct.to_vec();
    Aes256Gcm::new(&DEVICE_KEY.into())
        .decrypt_inout_detached(
            &Nonce::from(<[u8; 12]>::try_from(n).ok()?),
            &aad,
            body.as_mut_slice().into(),
            &Tag::try_from(tag).ok()?,
        )
        .ok()?;
    Some(body)
}

/// A send chain and a receive session sealed by the core itself, as (direction byte, blob).
pub fn real_blobs() -> Vec<(u8, Vec<u8>)> {
    use aqm_core::crypto::{decapsulate, encapsulate, generate_keypair};
    use aqm_core::ratchet::{RecvChain, RecvSession, SendChain};
    use aqm_core::{KeyId, Tier};
    let mut rng = Counter(0);
    let me = UserId([0x0a; 16]);
    let coin = KeyId([0x0c; 16]);
    let (seed, pk) = generate_keypair(Tier::Bronze, &mut rng);
    let (ct, ss) = encapsulate(Tier::Bronze, &pk, &mut rng).expect("encapsulates");
    // Our send chain to PEER, and our receive session from PEER (on a chain PEER opened to us).
    let mut send = SendChain::new(&ss, &me, &PEER, coin, Tier::Bronze, 5);
    let mut buf = [1u8; 8];
    send.encrypt(b"h", &mut buf).expect("encrypts");
    let ss2 = decapsulate(Tier::Bronze, &seed, &ct).expect("decapsulates");
    let mut theirs = SendChain::new(&ss2, &PEER, &me, coin, Tier::Bronze, 5);
    let mut recv = RecvSession::new(PEER, RecvChain::new(&ss2, &PEER, &me, coin, Tier::Bronze));
    // Skip one message so the receive record carries a skipped key too.
    theirs.encrypt(b"h", &mut buf).expect("encrypts");
    let mut buf2 = [2u8; 8];
    let (n2, tag2) = theirs.encrypt(b"h", &mut buf2).expect("encrypts");
    recv.decrypt(8, &coin, n2, b"h", &mut buf2, &tag2).expect("decrypts");
    let dk = device_key();
    vec![(1, send.seal(&dk, &mut rng).expect("seals").to_vec()), (2, recv.seal(&dk, &mut rng).expect("seals").to_vec())]
}

/// Panics if this crate's copy of the blob layout no longer opens what the core seals.
pub fn check_layout() {
    for (direction, blob) in real_blobs() {
        assert!(
            open_record(&blob, direction).is_some(),
            "aqm-fuzz's copy of the session blob layout is stale: update fuzz/src/lib.rs"
        );
    }
}

/// A deterministic stand-in RNG (fuzzing needs reproducible inputs, not secrecy).
pub struct Counter(pub u64);

impl rand_core::TryRng for Counter {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Ok(self.0 >> 11)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Counter {}
