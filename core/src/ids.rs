//! 16-byte identifiers (UUIDs): raw bytes in signed data and postcard, the lowercase
//! hyphenated form in text.

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A random (version 4) id from the caller's RNG.
            pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                Self(*uuid::Builder::from_random_bytes(b).as_uuid().as_bytes())
            }
            /// The 16 raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
            /// Parse raw bytes; anything but 16 bytes is refused.
            pub fn from_slice(b: &[u8]) -> Result<Self, Error> {
                <[u8; 16]>::try_from(b)
                    .map(Self)
                    .map_err(|_| Error::BadLength { what: "id", expected: 16, got: b.len() })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&uuid::Uuid::from_bytes(self.0).hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                uuid::Uuid::try_parse(s).map(|u| Self(*u.as_bytes())).map_err(|_| Error::BadId)
            }
        }
    };
}

uuid_id!(
    /// A user's id; also used as a contact id.
    ///
    /// ```
    /// use aqm_core::UserId;
    /// let id: UserId = "0b42eddb-740f-4867-8e95-9f03ef82ae59".parse().unwrap();
    /// assert_eq!(id.to_string(), "0b42eddb-740f-4867-8e95-9f03ef82ae59");
    /// assert!("not-a-uuid".parse::<UserId>().is_err());
    /// ```
    UserId
);
uuid_id!(
    /// A coin's key id.
    KeyId
);

/// A contact is another user.
pub type ContactId = UserId;

/// Unix time in seconds. The core never reads a clock: callers pass `now`.
pub type UnixSeconds = u64;
