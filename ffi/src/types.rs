//! The plain values the API passes across the boundary (uniffi records and enums). Ids are 16
//! raw bytes; coins, identities and envelopes are opaque byte strings ([`crate::codec`]).

use aqm_core::{DeviceContext, Priority, Tier, TierCounts};

/// A coin tier, dearest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum AqmTier {
    /// X-Wing (ML-KEM-768 + X25519), hybrid-signed coins.
    Gold,
    /// ML-KEM-768.
    Silver,
    /// X25519 only: no post-quantum protection.
    Bronze,
}

impl From<Tier> for AqmTier {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Gold => AqmTier::Gold,
            Tier::Silver => AqmTier::Silver,
            Tier::Bronze => AqmTier::Bronze,
        }
    }
}

impl From<AqmTier> for Tier {
    fn from(t: AqmTier) -> Self {
        match t {
            AqmTier::Gold => Tier::Gold,
            AqmTier::Silver => Tier::Silver,
            AqmTier::Bronze => Tier::Bronze,
        }
    }
}

/// How much a contact matters: sets how many of their coins are cached and the dearest tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum AqmPriority {
    /// Up to 5 GOLD + 4 SILVER + 1 BRONZE cached, GOLD allowed.
    Bestie,
    /// Up to 6 SILVER + 4 BRONZE cached, at most SILVER.
    Mate,
    /// Nothing cached, BRONZE only (reached by an on-demand fetch).
    Stranger,
}

impl From<AqmPriority> for Priority {
    fn from(p: AqmPriority) -> Self {
        match p {
            AqmPriority::Bestie => Priority::Bestie,
            AqmPriority::Mate => Priority::Mate,
            AqmPriority::Stranger => Priority::Stranger,
        }
    }
}

/// What the sending device knows about itself when it picks a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AqmContext {
    /// Battery charge, 0–100 %.
    pub battery_pct: u8,
    /// Whether the device is on Wi-Fi.
    pub wifi: bool,
    /// Cellular signal strength in dBm (e.g. −70 good, −110 very weak).
    pub signal_dbm: i16,
}

impl From<AqmContext> for DeviceContext {
    fn from(c: AqmContext) -> Self {
        DeviceContext { battery_pct: c.battery_pct, wifi: c.wifi, signal_dbm: c.signal_dbm }
    }
}

/// Coins per tier.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct AqmTierCounts {
    /// GOLD coins.
    pub gold: u32,
    /// SILVER coins.
    pub silver: u32,
    /// BRONZE coins.
    pub bronze: u32,
}

impl From<TierCounts> for AqmTierCounts {
    fn from(c: TierCounts) -> Self {
        AqmTierCounts { gold: c.get(Tier::Gold), silver: c.get(Tier::Silver), bronze: c.get(Tier::Bronze) }
    }
}

/// A message encrypted and saved: deliver `envelope` to the contact by any transport.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AqmSent {
    /// The envelope bytes.
    pub envelope: Vec<u8>,
    /// The tier of the chain the message is on.
    pub tier: AqmTier,
    /// The tier the context and the contact asked for.
    pub desired: AqmTier,
    /// Whether a cheaper tier than `desired` was used (downward fallback).
    pub fell_back: bool,
    /// Whether this message opened a new chain (it used a coin).
    pub rekeyed: bool,
    /// Whether the message is post-quantum protected (not BRONZE).
    pub post_quantum: bool,
    /// Messages the chain may still carry before the next coin.
    pub remaining: u32,
    /// Cached coins dropped as no longer fresh while picking one.
    pub wasted: u32,
    /// Whether the chain was opened with the contact's last-resort coin (the directory had no
    /// one-time coin of the tier left): its first message has no forward secrecy until the
    /// contact's last-resort coin rotates (docs/protocol.md §2). False on an existing chain.
    pub last_resort: bool,
}

/// What [`crate::AqmDevice::send`] did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum AqmSendOutcome {
    /// The message is ready to deliver.
    Sent {
        /// The message.
        sent: AqmSent,
    },
    /// No open chain and no cached coin from `desired` down to `lowest`: fetch one coin of the
    /// contact (`fetch_coin`, or from the contact directly) and call `send_with_coin`. Nothing
    /// was sent.
    NeedCoin {
        /// The tier wanted.
        desired: AqmTier,
        /// The cheapest tier the send may use.
        lowest: AqmTier,
        /// Cached coins dropped as no longer fresh.
        wasted: u32,
    },
}

/// A message that opened.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AqmReceived {
    /// The sender's user id (16 bytes).
    pub sender: Vec<u8>,
    /// The decrypted message.
    pub plaintext: Vec<u8>,
    /// The tier of the message's chain.
    pub tier: AqmTier,
    /// Whether the message is post-quantum protected.
    pub post_quantum: bool,
    /// Whether the sender's identity was learned from the directory only: show it unverified.
    pub unverified: bool,
    /// Whether this message opened a new chain (and burned one of our coins, unless it was a
    /// last-resort coin).
    pub rekeyed: bool,
    /// Whether the chain was opened with one of our last-resort coins (its open is recorded, so
    /// a replay is refused, but the coin is not burned: others may still use it).
    pub last_resort: bool,
    /// The message's counter on its chain.
    pub counter: u32,
}

/// The vault's counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct AqmVaultStats {
    /// Unopened coins per tier.
    pub active: AqmTierCounts,
    /// Coins ever opened (burned).
    pub total_burned: u64,
    /// Coins ever expired unopened.
    pub total_expired: u64,
}

/// Cached coins against the device's storage budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, uniffi::Record)]
pub struct AqmStorageReport {
    /// Bytes held by all cached coins (what the budget counts).
    pub total_bytes: u64,
    /// The same coins as the sealed store writes them: each adds its nonce, tag and keyed-hash
    /// name (`aqm_core::inventory::sealed_stored_bytes`).
    pub stored_bytes: u64,
    /// The device budget in bytes.
    pub budget_bytes: u64,
    /// Registered contacts.
    pub contacts: u32,
    /// `total_bytes` as a percentage of the budget.
    pub utilization_pct: f64,
    /// Whether the budget is exceeded.
    pub over_budget: bool,
}

/// What `purge` removed from the vault.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct AqmPurgeReport {
    /// Unopened coins past their life, deleted.
    pub expired: u32,
    /// Opened coins past their grace, deleted.
    pub deleted_burned: u32,
}

/// What `collect_garbage` dropped.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct AqmGcReport {
    /// Inactive contacts whose coins were dropped (downgraded to STRANGER).
    pub contacts_cleaned: u32,
    /// Coins deleted.
    pub keys_deleted: u32,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// What `prefetch` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct AqmPrefetchReport {
    /// Coins asked of the server per tier (the contact's deficits).
    pub requested: AqmTierCounts,
    /// Coins verified and cached per tier.
    pub stored: AqmTierCounts,
    /// Coins handed out but refused (forged, another owner's, expired, over the cap).
    pub rejected: u32,
    /// Last-resort coins handed out (the contact had no one-time coin of a tier left): never
    /// cached, so dropped; a later `fetch_coin` gets one for the send that needs it.
    pub last_resort: u32,
}
