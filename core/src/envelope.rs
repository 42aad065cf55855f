//! The wire envelope of one message between devices (docs/protocol.md §5, §3.1): versioned postcard.
//!
//! Layout (postcard, field by field): version `u8` (= [`ENVELOPE_VERSION`], 2) ‖ sender (16 raw
//! bytes) ‖ recipient (16) ‖ chain coin key id (16) ‖ `Option` re-key header (tier byte, KEM
//! ciphertext as varint length and bytes, sender's signature field as varint length and bytes:
//! `ed25519 ‖ mldsa65` for GOLD, Ed25519 otherwise) ‖ counter (varint `u32`) ‖ nonce (12 raw
//! bytes, the AEAD nonce, fresh and random per message) ‖ AEAD ciphertext (varint length and
//! bytes, the 16-byte tag last). Everything before the ciphertext is the *header*; its bytes —
//! signatures and nonce included — are the AAD of the message ([`Envelope::header_bytes`]).
//!
//! [`Envelope::decode`] checks the size and the version byte before parsing, rejects truncated
//! input and trailing bytes, unknown tier bytes, KEM ciphertexts and signature fields of the wrong
//! size, and never panics. Version 1 envelopes are refused ([`Error::UnsupportedVersion`]).

use serde::{Deserialize, Serialize};

use crate::crypto::sizes::{AEAD_NONCE, AEAD_TAG, MAX_CIPHERTEXT, MAX_SIGNATURE};
use crate::crypto::{KemCiphertext, SignatureBytes};
use crate::{Error, KeyId, Tier, UserId};

/// The envelope version this build writes and reads (the protocol version).
pub const ENVELOPE_VERSION: u8 = crate::protocol::PROTOCOL_VERSION;

/// An AEAD nonce as carried in the header.
pub type NonceBytes = [u8; AEAD_NONCE];

/// Largest plaintext one message may carry.
pub const MAX_MESSAGE: usize = 4096;

/// Largest AEAD ciphertext (plaintext and tag).
pub const MAX_MESSAGE_CIPHERTEXT: usize = MAX_MESSAGE + AEAD_TAG;

/// Largest encoded header: version, three ids, a GOLD re-key header (tier, KEM ciphertext,
/// hybrid signature), a 5-byte varint counter and the nonce.
pub const MAX_HEADER: usize = 1
    + 16 * 3
    + 1
    + 1
    + varint_len(MAX_CIPHERTEXT)
    + MAX_CIPHERTEXT
    + varint_len(MAX_SIGNATURE)
    + MAX_SIGNATURE
    + 5
    + AEAD_NONCE;

/// Largest encoded envelope; [`Envelope::decode`] refuses anything longer.
pub const MAX_ENVELOPE: usize = MAX_HEADER + varint_len(MAX_MESSAGE_CIPHERTEXT) + MAX_MESSAGE_CIPHERTEXT;

/// A message ciphertext with its tag.
pub type MessageCiphertext = heapless::Vec<u8, MAX_MESSAGE_CIPHERTEXT>;

const fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Carried by the first message of a chain: how the recipient opens it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RekeyHeader {
    /// The tier of the coin the sender encapsulated to.
    pub tier: Tier,
    /// The KEM ciphertext, of the tier's size.
    #[serde(serialize_with = "as_bytes")]
    pub kem_ciphertext: KemCiphertext,
    /// The sender's signature field over the re-key's signed bytes ([`crate::rekey`]).
    #[serde(serialize_with = "as_bytes")]
    pub signature: SignatureBytes,
}

/// One message on the wire.
///
/// ```
/// use aqm_core::envelope::{Envelope, MAX_ENVELOPE};
/// use aqm_core::{Error, KeyId, UserId};
/// let env = Envelope::new(UserId([1; 16]), UserId([2; 16]), KeyId([3; 16]), None, 7, [9; 12],
///     heapless::Vec::from_slice(&[0u8; 21]).unwrap());
/// let mut buf = [0u8; MAX_ENVELOPE];
/// let bytes = env.encode(&mut buf).unwrap();
/// assert_eq!(Envelope::decode(bytes).unwrap(), env);
/// assert_eq!(Envelope::decode(&bytes[..bytes.len() - 1]), Err(Error::Malformed));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Wire version, [`ENVELOPE_VERSION`].
    pub version: u8,
    /// Who sent it.
    pub sender: UserId,
    /// Who it is for.
    pub recipient: UserId,
    /// The key id of the coin that opened the chain this message is on.
    pub chain: KeyId,
    /// Present on the message that opens a chain.
    pub rekey: Option<RekeyHeader>,
    /// The message's position on its chain (0 first).
    pub counter: u32,
    /// The AEAD nonce: fresh and random for every message, so a reused chain state never reuses
    /// a (key, nonce) pair.
    pub nonce: NonceBytes,
    /// AES-256-GCM ciphertext, tag last.
    #[serde(serialize_with = "as_bytes")]
    pub ciphertext: MessageCiphertext,
}

/// Write a byte vector as serde bytes: for postcard the same varint length and bytes a sequence
/// of `u8` gives, in one copy instead of one call per byte.
fn as_bytes<S: serde::Serializer, const N: usize>(v: &heapless::Vec<u8, N>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(v)
}

/// The header as it is authenticated: the envelope without its ciphertext.
#[derive(Serialize)]
struct HeaderRef<'a> {
    version: u8,
    sender: &'a UserId,
    recipient: &'a UserId,
    chain: &'a KeyId,
    rekey: Option<&'a RekeyHeader>,
    counter: u32,
    nonce: &'a NonceBytes,
}

/// The re-key header of an [`EnvelopeRef`], borrowing the KEM ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyRef<'a> {
    /// The tier of the coin the sender encapsulated to.
    pub tier: Tier,
    /// The KEM ciphertext, exactly the tier's size.
    pub kem_ciphertext: &'a [u8],
    /// The sender's signature field, exactly the tier's size.
    pub signature: &'a [u8],
}

/// A checked envelope borrowing its byte fields from the wire buffer: decoding copies nothing.
/// [`EnvelopeRef::decode`] applies every check of [`Envelope::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeRef<'a> {
    /// Who sent it.
    pub sender: UserId,
    /// Who it is for.
    pub recipient: UserId,
    /// The key id of the coin that opened the chain this message is on.
    pub chain: KeyId,
    /// Present on the message that opens a chain.
    pub rekey: Option<RekeyRef<'a>>,
    /// The message's position on its chain (0 first).
    pub counter: u32,
    /// The AEAD nonce.
    pub nonce: NonceBytes,
    /// AES-256-GCM ciphertext, tag last (at least 16 bytes).
    pub ciphertext: &'a [u8],
    /// The header bytes as they are on the wire (canonical, so exactly the AAD).
    header: &'a [u8],
}

/// The wire layout, read with borrowed byte fields. postcard writes a `heapless::Vec<u8, N>` as
/// a varint length and the bytes, which is exactly how it reads `&[u8]`.
#[derive(Deserialize)]
struct Wire<'a> {
    // Checked before parsing.
    _version: u8,
    sender: UserId,
    recipient: UserId,
    chain: KeyId,
    #[serde(borrow)]
    rekey: Option<WireRekey<'a>>,
    counter: u32,
    nonce: NonceBytes,
    ciphertext: &'a [u8],
}

#[derive(Deserialize)]
struct WireRekey<'a> {
    tier: u8,
    kem_ciphertext: &'a [u8],
    signature: &'a [u8],
}

/// Bytes before the re-key `Option` tag: the version byte and three 16-byte ids.
const IDS_END: usize = 1 + 16 * 3;

impl<'a> EnvelopeRef<'a> {
    /// Decode and check wire bytes without copying; errors as [`Envelope::decode`].
    pub fn decode(bytes: &'a [u8]) -> Result<EnvelopeRef<'a>, Error> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(Error::EnvelopeTooLarge { max: MAX_ENVELOPE, got: bytes.len() });
        }
        match bytes.first() {
            None => return Err(Error::Malformed),
            Some(&v) if v != ENVELOPE_VERSION => return Err(Error::UnsupportedVersion(v)),
            Some(_) => {}
        }
        let w = match postcard::take_from_bytes::<Wire<'a>>(bytes) {
            Ok((w, [])) => w,
            _ => return Err(Error::Malformed),
        };
        let mut header_len = IDS_END + 1 + varint_len(w.counter as usize) + AEAD_NONCE;
        let rekey = match w.rekey {
            None => None,
            Some(r) => {
                let tier = Tier::try_from(r.tier)?;
                let expected = tier.ciphertext_len();
                if r.kem_ciphertext.len() != expected {
                    return Err(Error::BadLength { what: "KEM ciphertext", expected, got: r.kem_ciphertext.len() });
                }
                let sig_len = tier.signature_len();
                if r.signature.len() != sig_len {
                    return Err(Error::BadLength {
                        what: "re-key signature",
                        expected: sig_len,
                        got: r.signature.len(),
                    });
                }
                header_len += 1 + varint_len(expected) + expected + varint_len(sig_len) + sig_len;
                Some(RekeyRef { tier, kem_ciphertext: r.kem_ciphertext, signature: r.signature })
            }
        };
        let ct_len = w.ciphertext.len();
        if !(AEAD_TAG..=MAX_MESSAGE_CIPHERTEXT).contains(&ct_len) {
            return Err(Error::Malformed);
        }
        // Only the canonical encoding is accepted (postcard also reads overlong varints, which
        // make the input longer than this), so the header bytes on the wire are exactly the AAD
        // and one message has one encoding.
        if header_len + varint_len(ct_len) + ct_len != bytes.len() {
            return Err(Error::Malformed);
        }
        let header = bytes.get(..header_len).ok_or(Error::Malformed)?;
        Ok(EnvelopeRef {
            sender: w.sender,
            recipient: w.recipient,
            chain: w.chain,
            rekey,
            counter: w.counter,
            nonce: w.nonce,
            ciphertext: w.ciphertext,
            header,
        })
    }

    /// The header bytes (the AAD of the message), straight from the wire.
    pub fn header_bytes(&self) -> &'a [u8] {
        self.header
    }

    /// An owned copy.
    pub fn to_envelope(&self) -> Result<Envelope, Error> {
        let rekey = match self.rekey {
            None => None,
            Some(r) => Some(RekeyHeader {
                tier: r.tier,
                kem_ciphertext: KemCiphertext::from_slice(r.kem_ciphertext).map_err(|_| Error::Malformed)?,
                signature: SignatureBytes::from_slice(r.signature).map_err(|_| Error::Malformed)?,
            }),
        };
        let ciphertext = MessageCiphertext::from_slice(self.ciphertext).map_err(|_| Error::Malformed)?;
        Ok(Envelope::new(self.sender, self.recipient, self.chain, rekey, self.counter, self.nonce, ciphertext))
    }
}

impl Envelope {
    /// An envelope of the current version.
    pub fn new(
        sender: UserId,
        recipient: UserId,
        chain: KeyId,
        rekey: Option<RekeyHeader>,
        counter: u32,
        nonce: NonceBytes,
        ciphertext: MessageCiphertext,
    ) -> Self {
        Envelope { version: ENVELOPE_VERSION, sender, recipient, chain, rekey, counter, nonce, ciphertext }
    }

    /// Encode into `buf` (at most [`MAX_ENVELOPE`] bytes are needed); returns the bytes written.
    /// A short buffer → [`Error::BufferTooSmall`].
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
        postcard::to_slice(self, buf).map(|b| &*b).map_err(|_| Error::BufferTooSmall)
    }

    /// Encode into a new `Vec`.
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> Result<alloc::vec::Vec<u8>, Error> {
        postcard::to_allocvec(self).map_err(|_| Error::BufferTooSmall)
    }

    /// The header bytes (the AAD of the message): the encoding of everything but the ciphertext,
    /// which is also the prefix of [`Envelope::encode`]'s output. Needs at most [`MAX_HEADER`].
    pub fn header_bytes<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
        header_bytes(
            &HeaderRef {
                version: self.version,
                sender: &self.sender,
                recipient: &self.recipient,
                chain: &self.chain,
                rekey: self.rekey.as_ref(),
                counter: self.counter,
                nonce: &self.nonce,
            },
            buf,
        )
    }

    /// Decode wire bytes. Over [`MAX_ENVELOPE`] → [`Error::EnvelopeTooLarge`]; a first byte other
    /// than [`ENVELOPE_VERSION`] → [`Error::UnsupportedVersion`] (both before any parsing); an
    /// unknown tier byte → [`Error::UnknownTier`]; a KEM ciphertext or signature field of the
    /// wrong size for its tier → [`Error::BadLength`]; empty, truncated, trailing or otherwise invalid bytes, a
    /// ciphertext shorter than its tag or longer than [`MAX_MESSAGE_CIPHERTEXT`], or a
    /// non-canonical encoding → [`Error::Malformed`]. [`EnvelopeRef::decode`] does the same
    /// without copying.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, Error> {
        EnvelopeRef::decode(bytes)?.to_envelope()
    }
}

fn header_bytes<'b>(h: &HeaderRef<'_>, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
    postcard::to_slice(h, buf).map(|b| &*b).map_err(|_| Error::BufferTooSmall)
}

/// The header bytes of a message about to be sealed (before its ciphertext exists).
pub(crate) fn header_for<'b>(
    sender: &UserId,
    recipient: &UserId,
    chain: &KeyId,
    rekey: Option<&RekeyHeader>,
    counter: u32,
    nonce: &NonceBytes,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    header_bytes(&HeaderRef { version: ENVELOPE_VERSION, sender, recipient, chain, rekey, counter, nonce }, buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gold() -> Envelope {
        let kem = KemCiphertext::from_slice(&[0x5a; MAX_CIPHERTEXT]).unwrap();
        let signature = SignatureBytes::from_slice(&[0x3c; MAX_SIGNATURE]).unwrap();
        Envelope::new(
            UserId([0xff; 16]),
            UserId([0xfe; 16]),
            KeyId([0xfd; 16]),
            Some(RekeyHeader { tier: Tier::Gold, kem_ciphertext: kem, signature }),
            u32::MAX,
            [0xee; 12],
            MessageCiphertext::from_slice(&[0xaa; MAX_MESSAGE_CIPHERTEXT]).unwrap(),
        )
    }

    #[test]
    fn largest_envelope_fits_and_round_trips() {
        let env = gold();
        let mut buf = [0u8; MAX_ENVELOPE];
        let bytes = env.encode(&mut buf).unwrap();
        assert_eq!(bytes.len(), MAX_ENVELOPE);
        assert_eq!(Envelope::decode(bytes).unwrap(), env);
        let mut h = [0u8; MAX_HEADER];
        let header = env.header_bytes(&mut h).unwrap();
        assert_eq!(header.len(), MAX_HEADER);
        assert_eq!(header, &bytes[..MAX_HEADER]);
        let view = EnvelopeRef::decode(bytes).unwrap();
        assert_eq!(view.header_bytes(), header);
        assert_eq!(view.to_envelope().unwrap(), env);
        assert_eq!(env.encode(&mut [0u8; 100]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn wire_layout_is_plain_postcard_of_the_fields() {
        let env = gold();
        let rk = env.rekey.clone().unwrap();
        let fields = (
            2u8,
            [0xffu8; 16],
            [0xfeu8; 16],
            [0xfdu8; 16],
            Some((1u8, rk.kem_ciphertext, rk.signature)),
            u32::MAX,
            [0xeeu8; 12],
            env.ciphertext.clone(),
        );
        let (mut a, mut b) = ([0u8; MAX_ENVELOPE], [0u8; MAX_ENVELOPE]);
        assert_eq!(env.encode(&mut a).unwrap(), postcard::to_slice(&fields, &mut b).unwrap());
    }

    #[test]
    fn refusals_are_typed() {
        let env = gold();
        let mut buf = [0u8; MAX_ENVELOPE + 1];
        let n = env.encode(&mut buf).unwrap().len();
        assert_eq!(Envelope::decode(&buf[..n + 1]), Err(Error::EnvelopeTooLarge { max: MAX_ENVELOPE, got: n + 1 }));
        let small = Envelope::new(UserId([1; 16]), UserId([2; 16]), KeyId([3; 16]), None, 5, [7; 12], [9u8; 16].into());
        let mut sbuf = [0u8; 128];
        let sn = small.encode(&mut sbuf).unwrap().len();
        assert_eq!(Envelope::decode(&sbuf[..sn + 1]), Err(Error::Malformed), "trailing byte");
        assert_eq!(Envelope::decode(&sbuf[..sn - 1]), Err(Error::Malformed), "truncated");
        // Counter 5 written as the overlong varint 0x85 0x00 is refused: one message, one encoding.
        let at = 1 + 48 + 1;
        assert_eq!(sbuf[at], 5);
        let mut long = [0u8; 128];
        long[..at].copy_from_slice(&sbuf[..at]);
        long[at..at + 2].copy_from_slice(&[0x85, 0x00]);
        long[at + 2..sn + 1].copy_from_slice(&sbuf[at + 1..sn]);
        assert_eq!(Envelope::decode(&long[..sn + 1]), Err(Error::Malformed));
        let too_big = [1u8; MAX_ENVELOPE + 1];
        assert_eq!(
            Envelope::decode(&too_big),
            Err(Error::EnvelopeTooLarge { max: MAX_ENVELOPE, got: MAX_ENVELOPE + 1 })
        );
        assert_eq!(Envelope::decode(&[]), Err(Error::Malformed));
        // Protocol v1 envelopes (and any other version) are refused before parsing.
        for v in [0u8, 1, 3, 0xff] {
            let mut other = buf;
            other[0] = v;
            assert_eq!(Envelope::decode(&other[..n]), Err(Error::UnsupportedVersion(v)));
        }
        // Tier byte sits after version, three ids and the Option tag.
        let mut t = buf;
        t[1 + 48 + 1] = 9;
        assert_eq!(Envelope::decode(&t[..n]), Err(Error::UnknownTier(9)));
        let mut silver = buf;
        silver[1 + 48 + 1] = Tier::Silver.to_byte();
        assert!(matches!(Envelope::decode(&silver[..n]), Err(Error::BadLength { expected: 1088, .. })));
        // A GOLD re-key with only the Ed25519 half of its signature field is refused.
        let mut g = gold();
        g.rekey.as_mut().unwrap().signature.truncate(64);
        let gn = g.encode(&mut buf).unwrap().len();
        assert!(matches!(Envelope::decode(&buf[..gn]), Err(Error::BadLength { expected: 3373, got: 64, .. })));
        let short =
            Envelope::new(UserId([1; 16]), UserId([2; 16]), KeyId([3; 16]), None, 0, [0; 12], MessageCiphertext::new());
        let bytes = short.encode(&mut buf).unwrap();
        assert_eq!(Envelope::decode(bytes), Err(Error::Malformed));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let _ = Envelope::decode(&bytes);
        }

        #[test]
        fn mutated_envelopes_never_panic_and_reencode(
            rekey in proptest::option::of(0usize..3),
            counter in any::<u32>(),
            len in 16usize..300,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let rk = rekey.map(|i| {
                let tier = Tier::ALL[i];
                RekeyHeader {
                    tier,
                    kem_ciphertext: KemCiphertext::from_slice(&[3; MAX_CIPHERTEXT][..tier.ciphertext_len()]).unwrap(),
                    signature: SignatureBytes::from_slice(&[4; MAX_SIGNATURE][..tier.signature_len()]).unwrap(),
                }
            });
            let ct = MessageCiphertext::from_slice(&[0x77; 300][..len]).unwrap();
            let env = Envelope::new(UserId([1; 16]), UserId([2; 16]), KeyId([3; 16]), rk, counter, [6; 12], ct);
            let mut buf = [0u8; 5000];
            let n = env.encode(&mut buf).unwrap().len();
            prop_assert_eq!(Envelope::decode(&buf[..n]).unwrap(), env.clone());
            let mut h = [0u8; MAX_HEADER];
            prop_assert_eq!(EnvelopeRef::decode(&buf[..n]).unwrap().header_bytes(), env.header_bytes(&mut h).unwrap());
            let mut m = buf;
            for (i, b) in &flips {
                m[i.index(n)] ^= b | 1;
            }
            if let Ok(d) = Envelope::decode(&m[..n]) {
                // Whatever decodes re-encodes to exactly the bytes it came from.
                let mut again = [0u8; 5000];
                prop_assert_eq!(d.encode(&mut again).unwrap(), &m[..n]);
            }
            let c = cut.index(n);
            prop_assert!(Envelope::decode(&buf[..c]).is_err());
        }
    }
}
