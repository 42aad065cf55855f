//! Contact metadata at rest (issue 18): every Redis key that would name a contact or a key id
//! carries a keyed hash of it instead, and every value that names or describes a contact is a
//! sealed record. Both come from the core ([`aqm_core::crypto::at_rest`]); this module only picks
//! the domain and record kind per use and encodes the values.

use aqm_core::crypto::DeviceKey;

use crate::Error;
use aqm_core::crypto::at_rest;

/// Which id family a keyed hash is of: one domain per key family, so the hashed names of one
/// contact's inventory, sessions and pin cannot be linked to each other by their names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Domain {
    /// A contact id: inventory meta, coin indexes and coin names; the contacts set's members.
    Contact,
    /// A cached coin: contact id ‖ key id (the index member and the coin's name).
    Coin,
    /// A session's peer id.
    Session,
    /// A pinned user id.
    Pin,
    /// One of the device's own key ids (vault entry names and index members).
    Vault,
    /// A contact's priority: contact id ‖ priority byte (the token the store script compares).
    Priority,
    /// The format marker's key check.
    Check,
}

impl Domain {
    fn label(self) -> &'static [u8] {
        match self {
            Domain::Contact => b"redis/contact",
            Domain::Coin => b"redis/coin",
            Domain::Session => b"redis/session",
            Domain::Pin => b"redis/pin",
            Domain::Vault => b"redis/vault",
            Domain::Priority => b"redis/priority",
            Domain::Check => b"redis/check",
        }
    }
}

/// What a sealed record holds (bound into its AAD with the record's index, so a record cannot
/// be moved to another key or field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A registered contact (`ContactMeta`, postcard).
    ContactMeta,
    /// A contact's last message time (u64, little-endian).
    LastMsg,
    /// A cached coin (`CachedCoin`, postcard).
    CachedCoin,
    /// A pinned identity (`Pinned`, postcard).
    Pin,
    /// A vault entry's key id (16 bytes).
    VaultId,
    /// A vault entry's coin kind (its one byte, [`aqm_core::coin::CoinKind::to_byte`]).
    VaultCoinType,
    /// What a last-resort key opened ([`aqm_core::vault::LastResortOpens::to_bytes`], zero-padded
    /// to [`aqm_core::vault::LAST_RESORT_OPENS_BYTES`]).
    LastResortOpens,
}

impl Kind {
    /// The record domain the core binds into the seal.
    fn label(self) -> &'static [u8] {
        match self {
            Kind::ContactMeta => b"redis/contact-meta",
            Kind::LastMsg => b"redis/last-msg",
            Kind::CachedCoin => b"redis/cached-coin",
            Kind::Pin => b"redis/pin-record",
            Kind::VaultId => b"redis/vault-id",
            Kind::VaultCoinType => b"redis/vault-kind",
            Kind::LastResortOpens => b"redis/last-resort-opens",
        }
    }
}

/// How a [`crate::RedisStore`] keeps contact metadata at rest; recorded in the namespace's format
/// marker, so a namespace created sealed never opens unsealed, and the reverse.
pub struct Sealing(Mode);

enum Mode {
    Sealed(at_rest::MetadataKey),
    Unsealed,
}

impl core::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.is_sealed() { "Sealing::Sealed(redacted)" } else { "Sealing::Unsealed" })
    }
}

impl Sealing {
    /// Seal contact metadata under keys derived from `device_key` (the core's metadata
    /// derivation: its own labels, never the vault's sealing key itself). The production mode.
    pub fn sealed(device_key: &DeviceKey) -> Sealing {
        Sealing(Mode::Sealed(at_rest::MetadataKey::derive(device_key)))
    }

    /// Keep contact ids, key ids and metadata in clear (hex ids in key names, plain records):
    /// the same scripts and round trips as [`Sealing::sealed`], without the hashing and sealing.
    /// For measuring what sealing costs and for tests that build raw states; never for a
    /// device's data. A namespace created unsealed refuses to open sealed, and the reverse
    /// ([`Error::SealingMismatch`]).
    pub fn unsealed() -> Sealing {
        Sealing(Mode::Unsealed)
    }

    /// Whether this is [`Sealing::sealed`].
    pub fn is_sealed(&self) -> bool {
        matches!(self.0, Mode::Sealed(_))
    }

    /// The keyed hash of `id` in `domain`, as it appears in key names (64 hex digits); in clear,
    /// the id's own hex.
    pub(crate) fn index(&self, domain: Domain, id: &[u8]) -> String {
        match &self.0 {
            Mode::Sealed(k) => hex(&k.index(domain.label(), id)),
            Mode::Unsealed => hex(id),
        }
    }

    /// Seal `plain` as a record of `kind` stored under the name or member `ix`.
    pub(crate) fn seal(&self, kind: Kind, ix: &str, plain: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.0 {
            Mode::Sealed(k) => k.seal(kind.label(), ix.as_bytes(), plain, &mut rand::rng()).map_err(Error::from),
            Mode::Unsealed => Ok(plain.to_vec()),
        }
    }

    /// Open a record sealed by [`Sealing::seal`] with the same kind and `ix`; `key` names the
    /// Redis key in the error (a record that does not open was written under another device key,
    /// moved, or damaged).
    pub(crate) fn open(&self, kind: Kind, ix: &str, blob: &[u8], key: &str) -> Result<Vec<u8>, Error> {
        match &self.0 {
            Mode::Sealed(k) => k
                .open(kind.label(), ix.as_bytes(), blob)
                .map_err(|_| Error::corrupt(key, "record does not open under this device key")),
            Mode::Unsealed => Ok(blob.to_vec()),
        }
    }

    /// The format marker's value: the format, the mode and, sealed, a keyed hash of a constant
    /// that tells a wrong device key apart from a damaged record (it reveals nothing else).
    pub(crate) fn marker(&self) -> String {
        match &self.0 {
            Mode::Sealed(_) => format!("{} sealed {}", crate::FORMAT_VERSION, self.index(Domain::Check, b"format")),
            Mode::Unsealed => format!("{} unsealed", crate::FORMAT_VERSION),
        }
    }
}

/// Lowercase hex.
pub(crate) fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(D[usize::from(x >> 4)]));
        s.push(char::from(D[usize::from(x & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_keyed_per_domain_and_records_bound_to_kind_and_index() {
        let a = Sealing::sealed(&DeviceKey::from_bytes([1; 32]));
        let b = Sealing::sealed(&DeviceKey::from_bytes([2; 32]));
        let id = [7u8; 16];
        assert_eq!(a.index(Domain::Contact, &id), a.index(Domain::Contact, &id));
        assert_ne!(a.index(Domain::Contact, &id), a.index(Domain::Session, &id));
        assert_ne!(a.index(Domain::Contact, &id), b.index(Domain::Contact, &id));
        assert_eq!(a.index(Domain::Contact, &id).len(), 64);
        let ix = a.index(Domain::Contact, &id);
        let blob = a.seal(Kind::ContactMeta, &ix, b"bob").unwrap();
        assert!(!blob.windows(3).any(|w| w == b"bob"));
        assert_eq!(a.open(Kind::ContactMeta, &ix, &blob, "k").unwrap(), b"bob");
        assert!(a.open(Kind::LastMsg, &ix, &blob, "k").is_err());
        assert!(a.open(Kind::ContactMeta, &a.index(Domain::Contact, &[8; 16]), &blob, "k").is_err());
        assert!(b.open(Kind::ContactMeta, &ix, &blob, "k").is_err());
        assert_ne!(a.marker(), b.marker());
        assert_eq!(Sealing::unsealed().index(Domain::Contact, &[0xab, 1]), "ab01");
    }
}
