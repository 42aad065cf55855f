//! The serial protocol: postcard-encoded [`Request`]s and [`Response`]s, each framed with COBS
//! and terminated by a `0x00` byte, carrying a request id that the answer echoes.
//!
//! One request gets one response, except `Mint`, which gets one [`Reply::Coin`] per coin
//! (`remaining` counts down to 0), so a board never holds more than one coin in RAM.
//! A frame that does not decode gets [`Reply::Error`] with [`DeviceError::Malformed`] (and the
//! request id, when at least that decoded) and changes nothing.
// Frame lengths come from the serial port: no unchecked arithmetic on them.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::sizes::AEAD_NONCE;
use aqm_core::crypto::{KemCiphertext, PublicIdentity, SignatureBytes};
use aqm_core::rekey::RekeyFields;
use aqm_core::vault::VaultStats;
use aqm_core::{KeyId, Tier, UnixSeconds, UserId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::VaultUsage;

/// Protocol version carried in [`DeviceInfo`]. Version 2: coins v2 (kind, signed expiry, hybrid
/// GOLD signature) and [`Command::SignRekey`].
pub const PROTOCOL_VERSION: u8 = 2;
/// Largest request frame on the wire, COBS-encoded with its delimiter.
pub const MAX_REQUEST_FRAME: usize = 1280;
/// Largest response frame on the wire (a GOLD coin with its ML-DSA-65 signature).
pub const MAX_RESPONSE_FRAME: usize = 4864;
/// Most coins one `Mint` request may ask for.
pub const MAX_MINT: u8 = 32;

/// A request from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the host; echoed in every response to this request.
    pub id: u32,
    /// The host's clock. The device never lets time run backwards: it uses the latest time it
    /// has seen since boot.
    pub now: UnixSeconds,
    /// What to do.
    pub command: Command,
}

/// What the host asks for.
// No allocator on the device: an `Open` carries its ciphertext inline, by design.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// The device's public identity, version and capacity.
    Info,
    /// Mint `count` coins of `tier`: each is stored in flash, then its signed public half is
    /// sent back.
    Mint {
        /// The tier.
        tier: Tier,
        /// How many (1 ..= [`MAX_MINT`]).
        count: u8,
    },
    /// Decapsulate `ciphertext` with the coin `key_id`. The coin is burned in flash before the
    /// shared secret is sent; a second open of the same coin is refused.
    Open {
        /// The coin's key id.
        key_id: KeyId,
        /// The KEM ciphertext the sender produced.
        ciphertext: KemCiphertext,
    },
    /// Sign the re-key header of a chain's first message with the device's identity (the
    /// sender is always the device's own user). The device builds the signed bytes from the
    /// fields itself; it offers no raw-sign command (docs/protocol.md). Behind the approve button
    /// where the board has one, like an open; only counter 0 is signed.
    SignRekey(RekeyRequest),
    /// Vault counters and flash usage.
    Status,
    /// Expire old ACTIVE coins and delete BURNED ones past their grace.
    Purge,
    /// End the session: the device answers, then the board halts, powers down or resets
    /// (the QEMU board exits the emulator with its measurements).
    Shutdown,
    /// Mint the device's last-resort coin of `tier` (issue 14; the core's
    /// `coin::mint_last_resort`: kind last-resort, `expires_at` = mint + 7 days): stored in flash,
    /// then its signed public half comes back as one [`Reply::Coin`] (`remaining` 0), for the host
    /// to publish. An [`Command::Open`] of it does not burn it: the device records the first
    /// message's digest and refuses the same first message again ([`DeviceError::Replay`]).
    /// Appended last, so every earlier command keeps its encoding; a device without it answers
    /// [`DeviceError::Malformed`].
    MintLastResort {
        /// The tier.
        tier: Tier,
    },
    /// The identity's proof of possession for registering at a coin directory
    /// ([`aqm_core::crypto::Identity::registration_proof`]: Ed25519 and ML-DSA-65 over the
    /// identity's own public keys under the core's registration domain, so the host chooses
    /// nothing the device signs: no raw-sign). Answered with [`Reply::RegistrationProof`].
    /// Appended last, so every earlier command keeps its encoding.
    ProveRegistration,
}

/// The fields of a re-key signature except the sender, which is the device's identity
/// ([`aqm_core::rekey::RekeyFields`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyRequest {
    /// Whose coin the chain opens (the receiver).
    pub recipient: UserId,
    /// The coin's key id (also the chain id).
    pub coin: KeyId,
    /// The coin's tier.
    pub tier: Tier,
    /// The KEM ciphertext, of the tier's size.
    pub kem_ciphertext: KemCiphertext,
    /// SHA-256 of the coin's public key.
    pub coin_public_key_hash: [u8; 32],
    /// The message counter: must be 0 (a re-key is valid only on a chain's first message).
    pub counter: u32,
    /// The first message's AEAD nonce.
    pub nonce: [u8; AEAD_NONCE],
}

impl RekeyRequest {
    /// The request for `fields` (their sender is not sent: the device signs as itself). A KEM
    /// ciphertext larger than any tier's → [`aqm_core::Error::BadLength`].
    pub fn from_fields(fields: &RekeyFields<'_>) -> Result<Self, aqm_core::Error> {
        let kem_ciphertext =
            KemCiphertext::from_slice(fields.kem_ciphertext).map_err(|_| aqm_core::Error::BadLength {
                what: "KEM ciphertext",
                expected: fields.tier.ciphertext_len(),
                got: fields.kem_ciphertext.len(),
            })?;
        Ok(RekeyRequest {
            recipient: fields.recipient,
            coin: fields.coin,
            tier: fields.tier,
            kem_ciphertext,
            coin_public_key_hash: fields.coin_public_key_hash,
            counter: fields.counter,
            nonce: fields.nonce,
        })
    }

    /// The fields signed with `sender` (the device's own user id).
    pub fn fields(&self, sender: UserId) -> RekeyFields<'_> {
        RekeyFields {
            sender,
            recipient: self.recipient,
            coin: self.coin,
            tier: self.tier,
            kem_ciphertext: &self.kem_ciphertext,
            coin_public_key_hash: self.coin_public_key_hash,
            counter: self.counter,
            nonce: self.nonce,
        }
    }
}

/// A 32-byte shared secret on the wire: its `Debug` never shows the bytes, and it is wiped when
/// dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretBytes(pub [u8; 32]);

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretBytes(<32 bytes, redacted>)")
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Which command a frame carried (for logs and per-command measurements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandKind {
    /// [`Command::Info`].
    Info,
    /// [`Command::Mint`] of one tier.
    Mint(u8),
    /// [`Command::Open`] of one tier (0 when the coin was unknown).
    Open(u8),
    /// [`Command::SignRekey`] of one tier.
    SignRekey(u8),
    /// [`Command::Status`].
    Status,
    /// [`Command::Purge`].
    Purge,
    /// [`Command::Shutdown`].
    Shutdown,
    /// A frame that did not decode.
    Malformed,
    /// [`Command::MintLastResort`] of one tier.
    MintLastResort(u8),
    /// [`Command::ProveRegistration`].
    ProveRegistration,
}

/// A response from the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (0 if the request did not decode far enough to read it).
    pub id: u32,
    /// The answer.
    pub reply: Reply,
}

/// The device's answer.
// No allocator on the device: a coin travels inline, by design (one at a time).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to [`Command::Info`].
    Info(DeviceInfo),
    /// One minted coin; `remaining` more follow.
    Coin {
        /// The signed public half.
        coin: PublicCoin,
        /// Coins still to come for this request.
        remaining: u8,
    },
    /// The shared secret of an opened coin (the coin is already burned).
    Opened {
        /// KEM shared secret (redacted in `Debug`).
        shared_secret: SecretBytes,
    },
    /// The signature field of a [`Command::SignRekey`]: Ed25519, plus ML-DSA-65 for GOLD
    /// (`ed25519 ‖ mldsa65`).
    RekeySigned {
        /// The signature field, as [`aqm_core::rekey::RekeySigner::sign_rekey`] returns it.
        signature: SignatureBytes,
    },
    /// Answer to [`Command::Status`].
    Status(DeviceStatus),
    /// Answer to [`Command::Purge`].
    Purged {
        /// ACTIVE coins expired.
        expired: u32,
        /// BURNED coins deleted after their grace.
        deleted_burned: u32,
    },
    /// Answer to [`Command::Shutdown`].
    ShuttingDown,
    /// The request was refused; nothing changed (except as the error says).
    Error(DeviceError),
    /// Answer to [`Command::ProveRegistration`] (appended last, as the command): the proof's
    /// Ed25519 signature then its ML-DSA-65 one (`ed25519 ‖ mldsa65`, as
    /// [`Reply::RekeySigned`] carries a hybrid signature), one buffer so that `Reply` does not
    /// grow (every frame on the device's stack holds one); [`crate::Client::registration_proof`]
    /// splits it.
    RegistrationProof {
        /// `ed25519 ‖ mldsa65`.
        signature: SignatureBytes,
    },
}

/// The device's identity and capabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u8,
    /// The identity that signs the device's coins.
    pub identity: PublicIdentity,
    /// Most coins the vault holds at once.
    pub capacity: u32,
    /// Whether an open must be approved on the device's button.
    pub approve_button: bool,
}

/// Vault counters and flash usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// The counters (always equal to a recount of the vault).
    pub stats: VaultStats,
    /// Records and slots.
    pub usage: VaultUsage,
    /// The device's clock (the latest `now` it has seen).
    pub now: UnixSeconds,
}

/// Why the device refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeviceError {
    /// The frame did not decode (bad COBS or postcard, unknown command or tier).
    Malformed,
    /// The frame was longer than the device accepts.
    FrameTooLarge {
        /// Largest accepted frame.
        max: u32,
    },
    /// No coin with that key id (never minted, or deleted after its burn or its expiry).
    KeyNotFound,
    /// The coin was opened already: a coin opens once.
    KeyAlreadyBurned,
    /// The coin is past its vault deadline (`expires_at + vault_grace`): its secret is gone.
    CoinExpired,
    /// The ciphertext has the wrong length for the coin's tier.
    BadLength {
        /// Length the tier needs.
        expected: u32,
        /// Length received.
        got: u32,
    },
    /// `count` outside 1 ..= [`MAX_MINT`].
    BadCount {
        /// Largest count accepted.
        max: u8,
    },
    /// The vault is full: open or purge coins first.
    VaultFull,
    /// The approve button was not pressed in time.
    NotApproved,
    /// A re-key signature was asked for a counter other than 0: a re-key is valid only on a
    /// chain's first message.
    RekeyNotFirst,
    /// The coin's sealed secret does not open under this device's key (flash tampered).
    SealBroken,
    /// The flash failed; power-cycle the device (the vault repairs itself at boot).
    Flash,
    /// The flash holds data the device cannot read.
    Corrupt,
    /// Any other refusal.
    Refused,
    /// A last-resort coin was asked to open a first message it opened already (a replay);
    /// nothing changed. Appended last: earlier errors keep their encoding.
    Replay,
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::Malformed => f.write_str("the device could not decode the request frame"),
            DeviceError::FrameTooLarge { max } => write!(f, "request frame larger than the device's {max} bytes"),
            DeviceError::KeyNotFound => f.write_str("no usable coin with that key id on the device"),
            DeviceError::KeyAlreadyBurned => f.write_str("that coin was opened already: a coin opens once"),
            DeviceError::CoinExpired => {
                f.write_str("that coin is past its expiry and the vault grace: its secret is gone")
            }
            DeviceError::BadLength { expected, got } => {
                write!(f, "ciphertext of {got} bytes, the coin's tier needs {expected}")
            }
            DeviceError::BadCount { max } => write!(f, "mint between 1 and {max} coins per request"),
            DeviceError::VaultFull => f.write_str("the device vault is full: open or purge coins first"),
            DeviceError::NotApproved => {
                f.write_str("the request was not approved on the device's button: press it within the timeout")
            }
            DeviceError::RekeyNotFirst => {
                f.write_str("the device signs re-keys only at counter 0 (a chain's first message)")
            }
            DeviceError::SealBroken => f.write_str("the coin's sealed secret does not open under the device key"),
            DeviceError::Flash => f.write_str("device flash failure: power-cycle the device"),
            DeviceError::Corrupt => f.write_str("the device flash holds unreadable data: re-provision it"),
            DeviceError::Refused => f.write_str("the device refused the request"),
            DeviceError::Replay => {
                f.write_str("that first message was opened already by this last-resort coin: a replay, refused")
            }
        }
    }
}

impl From<&crate::Error> for DeviceError {
    fn from(e: &crate::Error) -> Self {
        use aqm_core::Error as C;
        match e {
            crate::Error::Core(C::KeyNotFound) => DeviceError::KeyNotFound,
            crate::Error::Core(C::KeyAlreadyBurned) => DeviceError::KeyAlreadyBurned,
            crate::Error::Core(C::CoinExpired) => DeviceError::CoinExpired,
            crate::Error::Core(C::CapacityFull { .. }) => DeviceError::VaultFull,
            crate::Error::Core(C::SealBroken) => DeviceError::SealBroken,
            crate::Error::Core(C::RekeyNotFirst) => DeviceError::RekeyNotFirst,
            crate::Error::Core(C::Replay) => DeviceError::Replay,
            crate::Error::Core(C::BadLength { expected, got, .. }) => {
                DeviceError::BadLength { expected: *expected as u32, got: *got as u32 }
            }
            crate::Error::Core(_) => DeviceError::Refused,
            crate::Error::Flash(_) => DeviceError::Flash,
            crate::Error::Corrupt { .. } | crate::Error::FlashFormat { .. } => DeviceError::Corrupt,
            crate::Error::Device(d) => *d,
            _ => DeviceError::Refused,
        }
    }
}

/// Accumulates bytes from a serial port into one COBS frame.
#[derive(Debug)]
pub struct FrameReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflow: bool,
}

/// What [`FrameReader::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete frame (COBS-encoded, without its delimiter).
    Complete(&'a mut [u8]),
    /// A frame longer than the buffer ended; it was discarded.
    TooLarge,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    /// An empty reader.
    pub const fn new() -> Self {
        FrameReader { buf: [0; N], len: 0, overflow: false }
    }

    /// Feed one byte; at a delimiter, returns the frame it ends (empty frames are skipped).
    pub fn push(&mut self, byte: u8) -> Option<Frame<'_>> {
        if byte != 0 {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = byte;
                // `len < N` here, so this never saturates.
                self.len = self.len.saturating_add(1);
            } else {
                self.overflow = true;
            }
            return None;
        }
        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflow) {
            return Some(Frame::TooLarge);
        }
        if len == 0 {
            return None;
        }
        Some(Frame::Complete(&mut self.buf[..len]))
    }

    /// Wipe the buffer (it may have held a shared secret or a ciphertext).
    pub fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf[..]);
        self.len = 0;
        self.overflow = false;
    }
}

/// Encode a message as one COBS frame with its `0x00` delimiter into `buf`.
pub fn encode<'b, T: Serialize>(msg: &T, buf: &'b mut [u8]) -> Result<&'b mut [u8], crate::Error> {
    postcard::to_slice_cobs(msg, buf).map_err(|_| crate::Error::Core(aqm_core::Error::BufferTooSmall))
}

/// Decode one COBS frame (with or without its delimiter), in place.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, crate::Error> {
    postcard::from_bytes_cobs(frame).map_err(|_| crate::Error::Device(DeviceError::Malformed))
}

/// Decode a request frame in place; on failure, the request id if at least that decoded
/// (0 otherwise), so the error frame can still answer the right request.
pub fn decode_request(frame: &mut [u8]) -> Result<Request, u32> {
    let n = cobs::decode_in_place(frame).map_err(|_| 0u32)?;
    let body = frame.get(..n).ok_or(0u32)?;
    postcard::from_bytes::<Request>(body)
        .map_err(|_| postcard::take_from_bytes::<u32>(body).map(|(id, _)| id).unwrap_or(0))
}
