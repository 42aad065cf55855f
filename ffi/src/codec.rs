//! The byte strings apps carry around: a public coin, a public identity, a sealed identity.
//!
//! Each is one tag byte (so passing one where another is expected is a clear `Malformed`, not a
//! confusing signature failure) followed by the core type's postcard encoding, with nothing
//! after it. Envelopes are the core's own wire format ([`aqm_core::envelope`]), untagged.
//! Decoding never panics: every length is bounded by the core's fixed-capacity types.

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::PublicIdentity;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AqmError;

/// Tag of an encoded [`PublicCoin`] (format 1).
pub const COIN_TAG: u8 = 0xC1;
/// Tag of an encoded [`PublicIdentity`] (format 1).
pub const PUBLIC_IDENTITY_TAG: u8 = 0x1D;

fn encode<T: Serialize>(tag: u8, value: &T, what: &str) -> Result<Vec<u8>, AqmError> {
    let mut out = vec![tag];
    let body = postcard::to_allocvec(value)
        .map_err(|e| AqmError::Internal { detail: format!("encoding a {what} failed: {e}") })?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode<T: DeserializeOwned>(tag: u8, bytes: &[u8], what: &str) -> Result<T, AqmError> {
    let (&first, body) = bytes.split_first().ok_or_else(|| AqmError::malformed(what))?;
    if first != tag {
        return Err(AqmError::malformed(what));
    }
    match postcard::take_from_bytes::<T>(body) {
        Ok((value, [])) => Ok(value),
        _ => Err(AqmError::malformed(what)),
    }
}

/// Encode a public coin for publishing or handing to a contact.
pub fn encode_coin(coin: &PublicCoin) -> Result<Vec<u8>, AqmError> {
    encode(COIN_TAG, coin, "public coin")
}

/// Decode a public coin (not yet verified: the caller verifies it against the owner's pin).
pub fn decode_coin(bytes: &[u8]) -> Result<PublicCoin, AqmError> {
    decode(COIN_TAG, bytes, "public coin")
}

/// Encode a public identity (what a contact exchange carries).
pub fn encode_public_identity(id: &PublicIdentity) -> Result<Vec<u8>, AqmError> {
    encode(PUBLIC_IDENTITY_TAG, id, "public identity")
}

/// Decode a public identity and check its keys ([`PublicIdentity::validate`]: a weak Ed25519
/// key is `WeakIdentityKey`).
pub fn decode_public_identity(bytes: &[u8]) -> Result<PublicIdentity, AqmError> {
    let id: PublicIdentity = decode(PUBLIC_IDENTITY_TAG, bytes, "public identity")?;
    id.validate()?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aqm_core::crypto::Identity;

    #[test]
    fn identity_round_trips_and_garbage_is_malformed() {
        let id = Identity::generate(&mut rand::rng());
        let bytes = encode_public_identity(id.public()).unwrap();
        assert_eq!(&decode_public_identity(&bytes).unwrap(), id.public());
        for bad in [&[][..], &[PUBLIC_IDENTITY_TAG][..], &bytes[..bytes.len() - 1], &[COIN_TAG, 1, 2, 3][..]] {
            assert!(matches!(decode_public_identity(bad), Err(AqmError::Malformed { .. })), "{bad:?}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(decode_public_identity(&long), Err(AqmError::Malformed { .. })));
        assert!(matches!(decode_coin(&bytes), Err(AqmError::Malformed { .. })));
    }
}
