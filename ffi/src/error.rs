//! The crate's one error type, [`AqmError`]: one variant per refusal of the core
//! ([`aqm_core::Error`], 1:1, same names), then this crate's own (bad URL or device key, the store
//! or the server failing). Every variant carries `detail`, a message that says what to do; it
//! never holds a secret.
//!
//! uniffi exports it as an exception class per variant (Python `AqmError.KeyAlreadyBurned`,
//! Kotlin `AqmException.KeyAlreadyBurned`, Swift `AqmError.KeyAlreadyBurned`); the C ABI as an
//! [`crate::c_api::AqmStatus`] code plus [`crate::c_api::aqm_last_error_message`].

use aqm_core::messaging::FetchError;

use crate::types::AqmTier;

/// Everything an [`crate::AqmDevice`] call can fail with. A failed call changes nothing (the
/// core's rule: every refusal changes no state), except where a variant says otherwise.
///
/// Fields: every variant has `detail` (the human message, the same text as the core's); the core
/// twins also carry the core variant's fields (`tier`, `cap`, `limit`, …, as documented on
/// [`aqm_core::Error`]).
// The per-field docs would only repeat the two sentences above forty times.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum AqmError {
    // ── The core's refusals, 1:1 with `aqm_core::Error` ─────────────────────────────────────
    /// A tier byte other than 1, 2 or 3.
    #[error("{detail}")]
    UnknownTier { byte: u8, detail: String },
    /// A tier name other than GOLD, SILVER or BRONZE.
    #[error("{detail}")]
    UnknownTierName { detail: String },
    /// A priority byte other than 1, 2 or 3.
    #[error("{detail}")]
    UnknownPriority { byte: u8, detail: String },
    /// A priority name other than BESTIE, MATE or STRANGER.
    #[error("{detail}")]
    UnknownPriorityName { detail: String },
    /// Bytes or text that are not a user id / key id (16 bytes, a UUID).
    #[error("{detail}")]
    BadId { detail: String },
    /// A key, signature, ciphertext, id or name of the wrong size.
    #[error("{detail}")]
    BadLength { what: String, expected: u64, got: u64, detail: String },
    /// A public key that its KEM refuses.
    #[error("{detail}")]
    BadPublicKey { detail: String },
    /// A signature (coin or re-key) that does not verify against the signer's pinned identity:
    /// a forged coin or message.
    #[error("{detail}")]
    BadSignature { detail: String },
    /// A coin offered for a contact that did not mint it.
    #[error("{detail}")]
    WrongOwner { detail: String },
    /// A sealed secret (vault seed, session, the sealed identity) that does not open under this
    /// device key: tampered, or another device's key.
    #[error("{detail}")]
    SealBroken { detail: String },
    /// The vault already holds this key id.
    #[error("{detail}")]
    KeyAlreadyExists { detail: String },
    /// The vault has no such key (never stored, expired, or burned and deleted).
    #[error("{detail}")]
    KeyNotFound { detail: String },
    /// The coin was already opened once and is burned.
    #[error("{detail}")]
    KeyAlreadyBurned { detail: String },
    /// The contact is not registered: `add_contact` first.
    #[error("{detail}")]
    ContactNotRegistered { detail: String },
    /// The inventory already holds a coin with this key id.
    #[error("{detail}")]
    CoinAlreadyCached { detail: String },
    /// The directory has no identity for this user.
    #[error("{detail}")]
    UnknownUser { detail: String },
    /// Caching would exceed the contact's cap for this tier.
    #[error("{detail}")]
    BudgetExceeded { tier: AqmTier, cap: u32, detail: String },
    /// A fixed-capacity store is full.
    #[error("{detail}")]
    CapacityFull { what: String, detail: String },
    /// The anti-drain quota for this owner and tier is used up.
    #[error("{detail}")]
    QuotaExceeded { tier: AqmTier, quota: u32, detail: String },
    /// No session with this peer for that chain (a later message arrived before the chain's
    /// first): keep the envelope and retry it after the first one.
    #[error("{detail}")]
    NoSession { detail: String },
    /// A message that does not authenticate: tampered, truncated or for another key.
    #[error("{detail}")]
    DecryptFailed { detail: String },
    /// A message that was already received.
    #[error("{detail}")]
    Replay { detail: String },
    /// A message counter too far ahead of its chain.
    #[error("{detail}")]
    TooFarAhead { detail: String },
    /// An envelope larger than the wire maximum.
    #[error("{detail}")]
    EnvelopeTooLarge { max: u64, got: u64, detail: String },
    /// An envelope of a version this build does not speak.
    #[error("{detail}")]
    UnsupportedVersion { version: u8, detail: String },
    /// Bytes that are not a well-formed envelope, coin or identity encoding.
    #[error("{detail}")]
    Malformed { detail: String },
    /// An envelope addressed to another user.
    #[error("{detail}")]
    NotForUs { detail: String },
    /// A plaintext larger than one message may carry.
    #[error("{detail}")]
    MessageTooLarge { max: u64, detail: String },
    /// An output buffer too small (C ABI: `needed` says how many bytes to pass).
    #[error("{detail}")]
    BufferTooSmall { detail: String },
    /// A send chain already carried its tier's message limit.
    #[error("{detail}")]
    ChainExhausted { limit: u32, detail: String },
    /// An identity whose Ed25519 key is non-canonical or of small or mixed order.
    #[error("{detail}")]
    WeakIdentityKey { detail: String },
    /// A coin past its usable life.
    #[error("{detail}")]
    CoinExpired { detail: String },
    /// A coin whose expiry lies further ahead than any coin may live.
    #[error("{detail}")]
    BadExpiry { detail: String },
    /// A coin kind this build does not accept.
    #[error("{detail}")]
    UnsupportedCoinKind { kind: u8, detail: String },
    /// A last-resort operation on a one-time coin (a one-time coin is burned when opened, not
    /// recorded).
    #[error("{detail}")]
    NotLastResort { detail: String },
    /// A last-resort coin offered for caching (`cache_coins`): it serves only the send that
    /// fetched it (`fetch_coin`, then `send_with_coin`).
    #[error("{detail}")]
    LastResortNotCached { detail: String },
    /// A user id presented with another identity than the one pinned for it.
    #[error("{detail}")]
    IdentityChanged { detail: String },
    /// No identity is pinned for this user: `add_contact` (or `pin_from_directory`) first.
    #[error("{detail}")]
    IdentityNotPinned { detail: String },
    /// A concurrent send or receive won the race for the session; nothing was written. Retry.
    #[error("{detail}")]
    SessionConflict { detail: String },
    /// A message counter at or past its chain's protocol limit.
    #[error("{detail}")]
    CounterPastLimit { limit: u32, detail: String },
    /// A re-key header on a message other than the first of its chain.
    #[error("{detail}")]
    RekeyNotFirst { detail: String },
    /// The signer holding the identity failed or refused.
    #[error("{detail}")]
    SignerFailed { detail: String },

    // ── This crate's own ────────────────────────────────────────────────────────────────────
    /// A store URL this library cannot use (scheme, path or prefix).
    #[error("{detail}")]
    InvalidUrl { detail: String },
    /// A device key that is not 32 bytes.
    #[error("{detail}")]
    BadDeviceKey { got: u64, detail: String },
    /// A public identity whose user id is not the contact id it was offered with.
    #[error("{detail}")]
    IdMismatch { detail: String },
    /// The device's store failed (disk, permissions, Redis unreachable); the operation was not
    /// applied, or for Redis possibly applied whole (the detail says which).
    #[error("{detail}")]
    Storage { detail: String },
    /// The store holds another at-rest format than this build reads.
    #[error("{detail}")]
    StorageFormat { detail: String },
    /// The coin directory server cannot be reached, or is down; retry later.
    #[error("{detail}")]
    ServerUnavailable { detail: String },
    /// The server refused the token, or no token is known for that server.
    #[error("{detail}")]
    ServerUnauthorized { detail: String },
    /// The server refused the call for another reason.
    #[error("{detail}")]
    Server { detail: String },
    /// A bug in this library (a caught panic or an unknown core error); please report it.
    #[error("{detail}")]
    Internal { detail: String },
}

impl From<aqm_core::Error> for AqmError {
    fn from(e: aqm_core::Error) -> Self {
        use aqm_core::Error as C;
        let detail = e.to_string();
        match e {
            C::UnknownTier(byte) => AqmError::UnknownTier { byte, detail },
            C::UnknownTierName => AqmError::UnknownTierName { detail },
            C::UnknownPriority(byte) => AqmError::UnknownPriority { byte, detail },
            C::UnknownPriorityName => AqmError::UnknownPriorityName { detail },
            C::BadId => AqmError::BadId { detail },
            C::BadLength { what, expected, got } => {
                AqmError::BadLength { what: what.to_owned(), expected: expected as u64, got: got as u64, detail }
            }
            C::BadPublicKey => AqmError::BadPublicKey { detail },
            C::BadSignature => AqmError::BadSignature { detail },
            C::WrongOwner => AqmError::WrongOwner { detail },
            C::SealBroken => AqmError::SealBroken { detail },
            C::KeyAlreadyExists => AqmError::KeyAlreadyExists { detail },
            C::KeyNotFound => AqmError::KeyNotFound { detail },
            C::KeyAlreadyBurned => AqmError::KeyAlreadyBurned { detail },
            C::ContactNotRegistered => AqmError::ContactNotRegistered { detail },
            C::CoinAlreadyCached => AqmError::CoinAlreadyCached { detail },
            C::UnknownUser => AqmError::UnknownUser { detail },
            C::BudgetExceeded { tier, cap } => AqmError::BudgetExceeded { tier: tier.into(), cap, detail },
            C::CapacityFull { what } => AqmError::CapacityFull { what: what.to_owned(), detail },
            C::QuotaExceeded { tier, quota } => AqmError::QuotaExceeded { tier: tier.into(), quota, detail },
            C::NoSession => AqmError::NoSession { detail },
            C::DecryptFailed => AqmError::DecryptFailed { detail },
            C::Replay => AqmError::Replay { detail },
            C::TooFarAhead => AqmError::TooFarAhead { detail },
            C::EnvelopeTooLarge { max, got } => AqmError::EnvelopeTooLarge { max: max as u64, got: got as u64, detail },
            C::UnsupportedVersion(version) => AqmError::UnsupportedVersion { version, detail },
            C::Malformed => AqmError::Malformed { detail },
            C::NotForUs => AqmError::NotForUs { detail },
            C::MessageTooLarge { max } => AqmError::MessageTooLarge { max: max as u64, detail },
            C::BufferTooSmall => AqmError::BufferTooSmall { detail },
            C::ChainExhausted { limit } => AqmError::ChainExhausted { limit, detail },
            C::WeakIdentityKey => AqmError::WeakIdentityKey { detail },
            C::CoinExpired => AqmError::CoinExpired { detail },
            C::BadExpiry => AqmError::BadExpiry { detail },
            C::UnsupportedCoinKind(kind) => AqmError::UnsupportedCoinKind { kind, detail },
            C::NotLastResort => AqmError::NotLastResort { detail },
            C::LastResortNotCached => AqmError::LastResortNotCached { detail },
            C::IdentityChanged => AqmError::IdentityChanged { detail },
            C::IdentityNotPinned => AqmError::IdentityNotPinned { detail },
            C::SessionConflict => AqmError::SessionConflict { detail },
            C::CounterPastLimit { limit } => AqmError::CounterPastLimit { limit, detail },
            C::RekeyNotFirst => AqmError::RekeyNotFirst { detail },
            C::SignerFailed => AqmError::SignerFailed { detail },
            // `aqm_core::Error` is non-exhaustive: a variant added later reaches apps as
            // `Internal` with its message until this crate maps it.
            _ => AqmError::Internal { detail: format!("unmapped core error: {detail}") },
        }
    }
}

impl From<aqm_storage_redb::Error> for AqmError {
    fn from(e: aqm_storage_redb::Error) -> Self {
        use aqm_storage_redb::Error as R;
        match e {
            R::Core(c) => c.into(),
            R::UnsupportedFormat { .. } => AqmError::StorageFormat { detail: e.to_string() },
            // The store's records do not open with this device key, as a sealed secret would not.
            R::WrongDeviceKey => AqmError::SealBroken { detail: e.to_string() },
            other => AqmError::Storage { detail: other.to_string() },
        }
    }
}

impl From<aqm_storage_redis::Error> for AqmError {
    fn from(e: aqm_storage_redis::Error) -> Self {
        use aqm_storage_redis::Error as R;
        match e {
            R::Core(c) => c.into(),
            R::UnsupportedFormat { .. } => AqmError::StorageFormat { detail: e.to_string() },
            R::WrongDeviceKey { .. } => AqmError::SealBroken { detail: e.to_string() },
            R::Config(_) => AqmError::InvalidUrl { detail: e.to_string() },
            other => AqmError::Storage { detail: other.to_string() },
        }
    }
}

impl From<aqm_server::ServerError> for AqmError {
    fn from(e: aqm_server::ServerError) -> Self {
        use aqm_server::ServerError as S;
        match e {
            S::Core(c) => c.into(),
            S::Unauthorized | S::Forbidden(_) => AqmError::ServerUnauthorized { detail: e.to_string() },
            S::Unavailable(_) | S::Timeout | S::Transport(_) => AqmError::ServerUnavailable { detail: e.to_string() },
            S::Config(_) => AqmError::InvalidUrl { detail: e.to_string() },
            other => AqmError::Server { detail: other.to_string() },
        }
    }
}

impl<S: Into<AqmError>, D: Into<AqmError>> From<FetchError<S, D>> for AqmError {
    fn from(e: FetchError<S, D>) -> Self {
        match e {
            FetchError::Store(s) => s.into(),
            FetchError::Directory(d) => d.into(),
        }
    }
}

impl From<redb::Error> for AqmError {
    fn from(e: redb::Error) -> Self {
        AqmError::Storage {
            detail: format!(
                "redb failed while reading or writing the device identity: {e}. Check free disk space and \
                 permissions on the database file"
            ),
        }
    }
}

impl From<redis::RedisError> for AqmError {
    fn from(e: redis::RedisError) -> Self {
        AqmError::Storage {
            detail: format!(
                "Redis failed while reading or writing the device identity: {e}. Check that the server runs \
                 and that the URL is right"
            ),
        }
    }
}

impl AqmError {
    /// A malformed-input error naming what was being decoded.
    pub(crate) fn malformed(what: &str) -> AqmError {
        AqmError::Malformed { detail: format!("{what}: not a valid AQM encoding (wrong bytes passed?)") }
    }
}
