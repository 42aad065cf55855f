//! Secret byte holders that zeroize on drop and never print their contents.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::sizes::MAX_SEED;
use crate::Error;

/// The smallest secret that regenerates a coin's private key (32 or 64 bytes by tier).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretSeed {
    bytes: [u8; MAX_SEED],
    len: u8,
}

impl SecretSeed {
    /// Wrap seed bytes (at most 64).
    pub fn from_slice(b: &[u8]) -> Result<Self, Error> {
        let mut bytes = [0u8; MAX_SEED];
        let Some(head) = bytes.get_mut(..b.len()) else {
            return Err(Error::BadLength { what: "secret seed", expected: MAX_SEED, got: b.len() });
        };
        head.copy_from_slice(b);
        Ok(SecretSeed { bytes, len: b.len() as u8 })
    }
    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // `len` is at most 64 by construction (`from_slice`), so this is the whole seed.
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl fmt::Debug for SecretSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretSeed({} bytes, redacted)", self.len)
    }
}

/// A 32-byte KEM shared secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SharedSecret(pub(crate) [u8; 32]);

impl SharedSecret {
    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(redacted)")
    }
}
