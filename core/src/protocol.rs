//! Protocol constants of AQM v2 (docs/protocol.md). Unlike [`crate::Policy`], these are part of the
//! wire contract: every implementation uses the same values, and a policy may only tighten them
//! on the sending side.

use crate::{Tier, UnixSeconds};

/// The protocol version this build speaks: envelopes carry it as their first byte.
pub const PROTOCOL_VERSION: u8 = 2;

/// Messages one chain may carry, per tier (GOLD, SILVER, BRONZE). A receiver refuses a counter
/// at or past its tier's limit; a sender's [`crate::Policy`] may only lower it.
pub const CHAIN_LIMITS: [u32; 3] = [25, 10, 5];

/// A coin's life: `expires_at` = mint time + 30 days.
pub const COIN_LIFETIME_SECS: u64 = 30 * 86_400;

/// The furthest a coin's `expires_at` may lie ahead of the directory's clock at upload.
pub const MAX_COIN_LIFETIME_SECS: u64 = 31 * 86_400;

/// A last-resort coin's life: `expires_at` = mint time + 7 days. Shorter than a one-time coin's,
/// because its secret opens many first messages: the window in which a stolen device key exposes
/// them is bounded by this.
pub const LAST_RESORT_LIFETIME_SECS: u64 = 7 * 86_400;

/// The furthest a last-resort coin's `expires_at` may lie ahead of the directory's clock at upload
/// (its life plus a day of clock skew).
pub const MAX_LAST_RESORT_LIFETIME_SECS: u64 = 8 * 86_400;

/// The protocol's chain limit of `tier`.
///
/// ```
/// use aqm_core::{protocol, Tier};
/// assert_eq!(protocol::chain_limit(Tier::Gold), 25);
/// assert_eq!(protocol::chain_limit(Tier::Bronze), 5);
/// ```
pub const fn chain_limit(tier: Tier) -> u32 {
    *tier.of(&CHAIN_LIMITS)
}

/// The `expires_at` of a last-resort coin minted at `now`.
pub const fn last_resort_expiry(now: UnixSeconds) -> UnixSeconds {
    now.saturating_add(LAST_RESORT_LIFETIME_SECS)
}

/// The `expires_at` of a coin minted at `now`.
pub const fn coin_expiry(now: UnixSeconds) -> UnixSeconds {
    now.saturating_add(COIN_LIFETIME_SECS)
}
