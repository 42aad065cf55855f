//! The sender's signature on the first message of every chain (docs/protocol.md).
//!
//! Signed bytes, all integers big-endian and ids 16 raw bytes:
//! `"AQM-rekey-v2" ‖ 0x02 ‖ sender ‖ recipient ‖ coin key id ‖ tier byte ‖ u16 len ‖ KEM
//! ciphertext ‖ SHA-256(coin public key) ‖ counter u32 ‖ nonce`. Every tier carries an Ed25519
//! signature; GOLD adds ML-DSA-65 (the wire field is `ed25519 ‖ mldsa65`). The AEAD ciphertext is
//! not signed: the chain key, whose root HKDF info appends SHA-256 of these bytes, protects it.
//!
//! The signature proves to anyone holding the envelope that the sender's identity opened a chain
//! to the recipient's id at a tier; it binds neither the message content nor later messages
//! (deniability of content is kept, deniability of contact is not).
//!
//! Whoever holds the identity signs through [`RekeySigner`], which takes the *fields*, never raw
//! bytes, so a secure element holding the identity can build the bytes itself and never offers a
//! raw-sign command.

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::crypto::sizes::{AEAD_NONCE, MAX_CIPHERTEXT};
use crate::crypto::{Identity, PublicIdentity, SignatureBytes};
use crate::protocol::PROTOCOL_VERSION;
use crate::{Error, KeyId, Tier, UserId};

/// Domain tag of the re-key signature.
pub const REKEY_DOMAIN: &[u8] = b"AQM-rekey-v2";

/// Largest signed re-key message (a GOLD one).
pub const MAX_REKEY_SIGNED: usize = REKEY_DOMAIN.len() + 1 + 16 * 3 + 1 + 2 + MAX_CIPHERTEXT + 32 + 4 + AEAD_NONCE;

/// The signed re-key bytes.
pub type RekeySigned = heapless::Vec<u8, MAX_REKEY_SIGNED>;

/// Everything a re-key signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyFields<'a> {
    /// Who opens the chain (the signer).
    pub sender: UserId,
    /// Whose coin it is.
    pub recipient: UserId,
    /// The coin's key id, which is also the chain id.
    pub coin: KeyId,
    /// The coin's tier.
    pub tier: Tier,
    /// The KEM ciphertext, of the tier's size.
    pub kem_ciphertext: &'a [u8],
    /// SHA-256 of the coin's public key.
    pub coin_public_key_hash: [u8; 32],
    /// The message counter (always 0: a re-key is only valid on a chain's first message).
    pub counter: u32,
    /// The message's AEAD nonce.
    pub nonce: [u8; AEAD_NONCE],
}

impl RekeyFields<'_> {
    /// The bytes the sender signs. A KEM ciphertext of the wrong size for its tier →
    /// [`Error::BadLength`].
    pub fn signed_bytes(&self) -> Result<RekeySigned, Error> {
        let expected = self.tier.ciphertext_len();
        if self.kem_ciphertext.len() != expected {
            return Err(Error::BadLength { what: "KEM ciphertext", expected, got: self.kem_ciphertext.len() });
        }
        // Every tier's ciphertext fits the u16 length field and MAX_REKEY_SIGNED holds the largest.
        let len = u16::try_from(expected).map_err(|_| Error::Malformed)?;
        let mut m = RekeySigned::new();
        let parts: [&[u8]; 11] = [
            REKEY_DOMAIN,
            &[PROTOCOL_VERSION],
            self.sender.as_bytes(),
            self.recipient.as_bytes(),
            self.coin.as_bytes(),
            &[self.tier.to_byte()],
            &len.to_be_bytes(),
            self.kem_ciphertext,
            &self.coin_public_key_hash,
            &self.counter.to_be_bytes(),
            &self.nonce,
        ];
        for p in parts {
            m.extend_from_slice(p).map_err(|_| Error::BufferTooSmall)?;
        }
        Ok(m)
    }

    /// SHA-256 of the signed bytes, which the chain's root HKDF info appends.
    pub fn transcript_hash(&self) -> Result<[u8; 32], Error> {
        Ok(Sha256::digest(self.signed_bytes()?).into())
    }
}

/// SHA-256 of a coin's public key, as the re-key signature covers it.
pub fn coin_key_hash(public_key: &[u8]) -> [u8; 32] {
    Sha256::digest(public_key).into()
}

/// Whoever holds a user's identity and signs re-keys for it: an [`Identity`] in memory, or a
/// secure element over a serial link.
pub trait RekeySigner {
    /// The user whose identity signs.
    fn user_id(&self) -> UserId;

    /// The signature field for `fields`: Ed25519, plus ML-DSA-65 for GOLD (`ed25519 ‖ mldsa65`).
    /// A signer that fails or refuses (a device unplugged, approval denied) →
    /// [`Error::SignerFailed`].
    fn sign_rekey<R: CryptoRng + ?Sized>(&self, fields: &RekeyFields<'_>, rng: &mut R)
    -> Result<SignatureBytes, Error>;
}

impl RekeySigner for Identity {
    fn user_id(&self) -> UserId {
        Identity::user_id(self)
    }

    fn sign_rekey<R: CryptoRng + ?Sized>(
        &self,
        fields: &RekeyFields<'_>,
        rng: &mut R,
    ) -> Result<SignatureBytes, Error> {
        if fields.sender != Identity::user_id(self) {
            return Err(Error::WrongOwner);
        }
        self.sign_field(&fields.signed_bytes()?, fields.tier.hybrid_signature(), rng)
    }
}

/// Verify a re-key signature field against the sender's pinned identity: the identity must be the
/// sender's, the field of the tier's size, and every half valid ([`Error::BadSignature`]).
pub fn verify(sender: &PublicIdentity, fields: &RekeyFields<'_>, signature: &[u8]) -> Result<(), Error> {
    if sender.user_id != fields.sender {
        return Err(Error::WrongOwner);
    }
    sender.verify_field(&fields.signed_bytes()?, signature, fields.tier.hybrid_signature())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn fields(kem: &[u8], tier: Tier, sender: UserId) -> RekeyFields<'_> {
        RekeyFields {
            sender,
            recipient: UserId([2; 16]),
            coin: KeyId([3; 16]),
            tier,
            kem_ciphertext: kem,
            coin_public_key_hash: [4; 32],
            counter: 0,
            nonce: [5; 12],
        }
    }

    #[test]
    fn layout_is_pinned() {
        let kem = [0xAB; 32];
        let f = fields(&kem, Tier::Bronze, UserId([1; 16]));
        let b = f.signed_bytes().unwrap();
        let mut want = std::vec::Vec::new();
        want.extend_from_slice(b"AQM-rekey-v2");
        want.push(2);
        want.extend_from_slice(&[1; 16]);
        want.extend_from_slice(&[2; 16]);
        want.extend_from_slice(&[3; 16]);
        want.push(3);
        want.extend_from_slice(&[0, 32]);
        want.extend_from_slice(&kem);
        want.extend_from_slice(&[4; 32]);
        want.extend_from_slice(&[0, 0, 0, 0]);
        want.extend_from_slice(&[5; 12]);
        assert_eq!(b.as_slice(), want.as_slice());
        assert_eq!(f.transcript_hash().unwrap(), <[u8; 32]>::from(Sha256::digest(&want)));
        assert!(matches!(fields(&kem, Tier::Silver, UserId([1; 16])).signed_bytes(), Err(Error::BadLength { .. })));
    }

    #[test]
    fn every_field_is_signed_and_gold_needs_both_halves() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(77);
        let alice = Identity::generate(&mut rng);
        let mallory = Identity::generate(&mut rng);
        for tier in Tier::ALL {
            let kem = std::vec![9u8; tier.ciphertext_len()];
            let f = fields(&kem, tier, alice.user_id());
            let sig = alice.sign_rekey(&f, &mut rng).unwrap();
            assert_eq!(sig.len(), tier.signature_len());
            verify(alice.public(), &f, &sig).unwrap();
            assert_eq!(verify(mallory.public(), &f, &sig), Err(Error::WrongOwner));
            let mut other = f;
            other.nonce[0] ^= 1;
            assert_eq!(verify(alice.public(), &other, &sig), Err(Error::BadSignature));
            let mut other = f;
            other.recipient = UserId([7; 16]);
            assert_eq!(verify(alice.public(), &other, &sig), Err(Error::BadSignature));
            // Mallory cannot sign as Alice.
            assert_eq!(mallory.sign_rekey(&f, &mut rng), Err(Error::WrongOwner));
            if tier == Tier::Gold {
                let mut bad_ml = sig.clone();
                bad_ml[64 + 7] ^= 1;
                assert_eq!(verify(alice.public(), &f, &bad_ml), Err(Error::BadSignature));
            }
        }
    }
}
