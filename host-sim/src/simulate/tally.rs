//! What the engine counts: totals over the run, per day and per hour. Per-tier arrays are
//! GOLD, SILVER, BRONZE.

use serde::Serialize;

/// Totals over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Users simulated.
    pub users: u64,
    /// Contact sides (each relationship counts once per device that holds it).
    pub contacts: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Messages delivered per chain tier.
    pub messages_by_tier: [u64; 3],
    /// Chains opened (one KEM each) per tier, from the inventory or on demand.
    pub rekeys: [u64; 3],
    /// Of those, chains opened with a coin fetched on demand.
    pub rekeys_on_demand: [u64; 3],
    /// Chains opened on a cheaper tier than the context and priority asked for.
    pub fallbacks: u64,
    /// Messages not sent: no coin in the range, cached or in the directory.
    pub failed: u64,
    /// Of those, sends whose range stopped at SILVER (no `allow_classical`).
    pub failed_classical: u64,
    /// Claims refused by the anti-drain quota.
    pub quota_refusals: u64,
    /// Coins minted during the run per tier.
    pub minted: [u64; 3],
    /// Coins claimed by nightly pre-fetch and cached.
    pub claimed_prefetch: [u64; 3],
    /// Coins claimed on demand (used at once, never cached).
    pub claimed_on_demand: [u64; 3],
    /// Claim requests made by pre-fetch (one per contact and tier with a deficit).
    pub prefetch_claims: u64,
    /// Coins burned by their receiver.
    pub burned: [u64; 3],
    /// Cached coins dropped as no longer fresh when selecting.
    pub wasted_stale: [u64; 3],
    /// Cached coins dropped by garbage collection of inactive contacts.
    pub wasted_gc: [u64; 3],
    /// Cached coins evicted by a downgrade.
    pub wasted_trim: [u64; 3],
    /// Claimed coins the inventory refused to admit.
    pub rejected: [u64; 3],
    /// Unclaimed coins purged by the directory (stale or no longer claimable).
    pub expired_directory: [u64; 3],
    /// Vault secrets deleted at their deadline, never opened.
    pub expired_vault: [u64; 3],
    /// ACTIVE vault secrets at the start (the warm start's coins), all users.
    pub vault_active_start: [u64; 3],
    /// ACTIVE vault secrets at the end, all users.
    pub vault_active_end: [u64; 3],
    /// Coin signatures verified by devices (every claimed coin).
    pub coin_verifies: [u64; 3],
    /// Contacts garbage-collected: their coins dropped and downgraded to STRANGER (a contact
    /// already collected is not counted again).
    pub gc_contacts_cleaned: u64,
    /// Coins those collections deleted.
    pub gc_keys_deleted: u64,
    /// Bytes they freed.
    pub gc_bytes_freed: u64,
    /// MATE → BESTIE changes.
    pub upgrades: u64,
    /// BESTIE → MATE changes.
    pub downgrades: u64,
    /// Last-resort coins minted during the run per tier (one kept per owner and published tier).
    pub last_resort_minted: [u64; 3],
    /// Last-resort coins handed out on demand (the tier's one-time coins were gone).
    pub last_resort_handed_out: [u64; 3],
    /// Chains opened with a last-resort coin (recorded in the owner's vault, not burned): the
    /// first message has no forward secrecy until the coin is deleted.
    pub last_resort_chains: [u64; 3],
    /// First messages to a last-resort coin its vault refused (retired, or past its deadline).
    pub last_resort_refused: u64,
    /// Last-resort coins retired because their record of opens filled up.
    pub last_resort_retired: [u64; 3],
    /// Last-resort vault secrets deleted at their deadline.
    pub last_resort_expired: [u64; 3],
    /// Last-resort coins handed out to a pre-fetch and dropped (never cached).
    pub last_resort_prefetch_dropped: [u64; 3],
    /// A first message whose coin was no longer in the receiver's vault (must stay 0).
    pub vault_misses: u64,
    /// Users per 10 % band of the storage budget at the last day's end (the last band: ≥ 100 %).
    pub storage_histogram: [u64; 11],
}

impl Tally {
    /// Messages that rode an open chain (no KEM).
    pub fn chain_messages(&self) -> u64 {
        self.messages - self.rekeys.iter().sum::<u64>()
    }

    /// KEM operations (chains opened) per message delivered.
    pub fn kem_per_message(&self) -> f64 {
        ratio(self.rekeys.iter().sum(), self.messages)
    }
}

/// `a / b`, 0 when b is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// One day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayStats {
    /// Day number, from 0.
    pub day: u32,
    /// Messages delivered.
    pub messages: u64,
    /// Per chain tier.
    pub messages_by_tier: [u64; 3],
    /// Chains opened per tier.
    pub rekeys: [u64; 3],
    /// Downward fallbacks.
    pub fallbacks: u64,
    /// Chains opened on demand.
    pub on_demand: u64,
    /// Messages not sent.
    pub failed: u64,
    /// Median device's cached coins, % of the budget, at the day's end.
    pub storage_p50_pct: f64,
    /// 95th percentile.
    pub storage_p95_pct: f64,
    /// Largest.
    pub storage_max_pct: f64,
    /// Devices over the budget.
    pub over_budget_users: u64,
    /// Mean bytes of cached coins per device.
    pub storage_mean_bytes: u64,
}

/// What the directory served in one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HourLoad {
    /// Pre-fetch claim requests.
    pub claims: u64,
    /// On-demand claim requests.
    pub on_demand: u64,
    /// Coins handed out.
    pub coins_claimed: u64,
    /// Upload requests.
    pub uploads: u64,
    /// Coins uploaded.
    pub coins_uploaded: u64,
}

impl HourLoad {
    /// Every request of the hour.
    pub fn requests(&self) -> u64 {
        self.claims + self.on_demand + self.uploads
    }
}
