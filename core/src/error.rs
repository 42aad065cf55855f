//! The core's one error type.

use core::fmt;

use crate::Tier;

/// Everything the core can refuse. Each refusal changes no state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A tier byte other than 1, 2 or 3.
    UnknownTier(u8),
    /// A tier name other than GOLD, SILVER or BRONZE.
    UnknownTierName,
    /// A priority byte other than 1, 2 or 3.
    UnknownPriority(u8),
    /// A priority name other than BESTIE, MATE or STRANGER.
    UnknownPriorityName,
    /// Text that is not a UUID.
    BadId,
    /// A key, signature, ciphertext or id of the wrong size.
    BadLength {
        /// What was being parsed.
        what: &'static str,
        /// The size it must have.
        expected: usize,
        /// The size it had.
        got: usize,
    },
    /// A public key that its KEM refuses (e.g. an out-of-range ML-KEM encoding).
    BadPublicKey,
    /// A coin signature that does not verify against the owner's identity.
    BadSignature,
    /// A coin presented for a contact that did not sign it.
    WrongOwner,
    /// A sealed secret that does not open under this device key (tampered, or another device's).
    SealBroken,
    /// The vault already holds this key id.
    KeyAlreadyExists,
    /// The vault has no such key (never stored, expired, or burned and deleted).
    KeyNotFound,
    /// The key was burned already: a coin opens once.
    KeyAlreadyBurned,
    /// The contact is not registered in the inventory.
    ContactNotRegistered,
    /// The inventory already holds a coin with this key id.
    CoinAlreadyCached,
    /// The directory has no identity registered for this user.
    UnknownUser,
    /// Storing would exceed the contact's cap for this tier.
    BudgetExceeded {
        /// The tier refused.
        tier: Tier,
        /// The cap for the contact's priority.
        cap: u32,
    },
    /// A fixed-capacity store is full.
    CapacityFull {
        /// Which store.
        what: &'static str,
    },
    /// The requester used up its anti-drain quota for this owner and tier.
    QuotaExceeded {
        /// The tier refused.
        tier: Tier,
        /// Claims allowed per window.
        quota: u32,
    },
    /// No session exists with this peer and chain.
    NoSession,
    /// An AEAD tag that does not verify: tampered, truncated or for another key.
    DecryptFailed,
    /// A message counter that was already received.
    Replay,
    /// A message counter too far ahead of the chain (more skipped keys than allowed).
    TooFarAhead,
    /// An envelope larger than the wire maximum.
    EnvelopeTooLarge {
        /// The maximum accepted.
        max: usize,
        /// The size offered.
        got: usize,
    },
    /// An envelope of a version this build does not speak.
    UnsupportedVersion(u8),
    /// Bytes that are not a well-formed envelope or record.
    Malformed,
    /// An envelope addressed to someone else.
    NotForUs,
    /// A plaintext larger than one message may carry.
    MessageTooLarge {
        /// The maximum accepted.
        max: usize,
    },
    /// An output buffer too small for the encoding.
    BufferTooSmall,
    /// A send chain already carried its tier's message limit.
    ChainExhausted {
        /// Messages the chain may carry.
        limit: u32,
    },
    /// An Ed25519 identity key that is non-canonical, of small order or of mixed order.
    WeakIdentityKey,
    /// A coin past its usable life: too close to `expires_at` to select, hand out or upload, or a
    /// vault secret deleted at `expires_at + vault_grace`.
    CoinExpired,
    /// A coin whose `expires_at` lies further ahead than any coin may live.
    BadExpiry,
    /// A coin kind byte other than 0 (one-time) or 1 (last-resort).
    UnsupportedCoinKind(u8),
    /// A last-resort operation on a one-time coin (a one-time coin is burned, not recorded).
    NotLastResort,
    /// A last-resort coin offered to the inventory: it serves the one send that fetched it.
    LastResortNotCached,
    /// A user id presented with another identity than the one pinned for it.
    IdentityChanged,
    /// No identity is pinned for this user: pin one (contact exchange or directory) first.
    IdentityNotPinned,
    /// The session record changed since it was loaded (another send or receive won the race);
    /// nothing was written. Retry.
    SessionConflict,
    /// A message counter at or past its chain's protocol limit.
    CounterPastLimit {
        /// Messages a chain of this tier may carry.
        limit: u32,
    },
    /// A re-key header on a message other than the first of its chain.
    RekeyNotFirst,
    /// The signer holding the identity (e.g. a secure element) failed or refused.
    SignerFailed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownTier(b) => write!(f, "unknown tier byte {b}: use 1 (GOLD), 2 (SILVER) or 3 (BRONZE)"),
            Error::UnknownTierName => f.write_str("unknown tier name: use GOLD, SILVER or BRONZE"),
            Error::UnknownPriority(b) => {
                write!(f, "unknown priority byte {b}: use 1 (BESTIE), 2 (MATE) or 3 (STRANGER)")
            }
            Error::UnknownPriorityName => f.write_str("unknown priority name: use BESTIE, MATE or STRANGER"),
            Error::BadId => f.write_str("not a UUID: write ids as 8-4-4-4-12 hex digits"),
            Error::BadLength { what, expected, got } => write!(f, "{what} must be {expected} bytes, got {got}"),
            Error::BadPublicKey => f.write_str("public key is not a valid key of its tier: re-fetch the coin"),
            Error::BadSignature => {
                f.write_str("signature does not verify against the signer's identity: discard the coin or message")
            }
            Error::WrongOwner => f.write_str("coin belongs to another user than the contact it was offered for"),
            Error::SealBroken => f.write_str(
                "sealed secret does not open with this device key: it was tampered with or belongs to another device",
            ),
            Error::KeyAlreadyExists => f.write_str("the vault already holds this key id: mint a fresh coin"),
            Error::KeyNotFound => {
                f.write_str("no such key in the vault (never stored, expired, or burned): ask the sender to re-key")
            }
            Error::KeyAlreadyBurned => {
                f.write_str("this coin was already opened once and is burned: a coin opens exactly once")
            }
            Error::ContactNotRegistered => f.write_str("contact is not registered: register it with a priority first"),
            Error::CoinAlreadyCached => f.write_str("the inventory already holds a coin with this key id"),
            Error::UnknownUser => f.write_str("no identity is registered for this user: register the identity first"),
            Error::BudgetExceeded { tier, cap } => {
                write!(f, "{tier} cap of {cap} reached for this contact: use a cached coin first or raise its priority")
            }
            Error::CapacityFull { what } => write!(f, "{what} is full: purge or collect garbage first"),
            Error::QuotaExceeded { tier, quota } => {
                write!(f, "anti-drain quota of {quota} {tier} claims per window used up: try again later")
            }
            Error::NoSession => f.write_str(
                "no session with this peer for that chain: the first message of a chain must carry its re-key header",
            ),
            Error::DecryptFailed => {
                f.write_str("message does not authenticate: it was tampered with or is for another key")
            }
            Error::Replay => f.write_str(
                "message already received (a repeated counter, or a first message replayed to a last-resort coin): replay rejected",
            ),
            Error::TooFarAhead => {
                f.write_str("message counter too far ahead of the chain: too many messages were lost")
            }
            Error::EnvelopeTooLarge { max, got } => write!(f, "envelope of {got} bytes exceeds the maximum of {max}"),
            Error::UnsupportedVersion(v) => write!(
                f,
                "envelope version {v} is not supported (this build speaks version 2): the sender must upgrade AQM"
            ),
            Error::Malformed => f.write_str("malformed input: not a valid AQM encoding"),
            Error::NotForUs => f.write_str("envelope is addressed to another user"),
            Error::MessageTooLarge { max } => write!(f, "message exceeds {max} bytes: split it"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::ChainExhausted { limit } => {
                write!(f, "this chain already carried its limit of {limit} messages: re-key with a new coin")
            }
            Error::WeakIdentityKey => {
                f.write_str("identity key is non-canonical or of small or mixed order: refuse this identity")
            }
            Error::CoinExpired => f.write_str("coin is past its usable life: fetch a fresh coin"),
            Error::BadExpiry => f.write_str("coin expiry lies further ahead than a coin may live: mint it again"),
            Error::UnsupportedCoinKind(k) => write!(
                f,
                "coin kind {k} is not supported (0 = one-time, 1 = last-resort): discard the coin or upgrade AQM"
            ),
            Error::NotLastResort => {
                f.write_str("this key is a one-time coin: it is burned when opened, not recorded as a last-resort open")
            }
            Error::LastResortNotCached => f.write_str(
                "a last-resort coin is never cached: use it for the send that fetched it (Messenger::send_with_coin)",
            ),
            Error::IdentityChanged => f.write_str(
                "this user presented another identity than the one pinned: compare safety numbers before trusting it",
            ),
            Error::IdentityNotPinned => {
                f.write_str("no identity pinned for this user: exchange contacts or fetch it from the directory first")
            }
            Error::SessionConflict => {
                f.write_str("the session changed while this operation ran: nothing was written, try again")
            }
            Error::CounterPastLimit { limit } => {
                write!(f, "message counter at or past the chain limit of {limit}: the sender must re-key")
            }
            Error::RekeyNotFirst => f.write_str("a re-key header is only valid on the first message of a chain"),
            Error::SignerFailed => f.write_str("the identity's signer failed or refused: check the device and retry"),
        }
    }
}

impl core::error::Error for Error {}

/// A storage backend's error, which must say whether it is one of the core's refusals.
///
/// The conformance kit asserts on the core variant (e.g. [`Error::BudgetExceeded`]) whatever the
/// backend; backends add their own variants for I/O and availability.
pub trait StoreError: fmt::Debug + fmt::Display + From<Error> {
    /// The core refusal this error carries, if it is one.
    fn as_core(&self) -> Option<&Error>;
}

impl StoreError for Error {
    fn as_core(&self) -> Option<&Error> {
        Some(self)
    }
}
