//! Every tunable rule of the rules in docs/architecture.md §2 in one value.

use crate::{DeviceContext, Priority, Tier, TierCounts, UnixSeconds};

const DAY: u64 = 86_400;

/// All defaults of the rules in docs/architecture.md §2 and §3.1: caps, ceilings, ratchet limits, coin lifetimes (selection
/// margin and vault grace) and burn grace, inactivity GC, the device storage budget and the
/// directory's anti-drain quota.
///
/// ```
/// use aqm_core::{DeviceContext, Policy, Priority, Tier};
/// let p = Policy::DEFAULT;
/// assert_eq!(p.cap(Priority::Bestie, Tier::Gold), 5);
/// assert_eq!(p.cap(Priority::Mate, Tier::Gold), 0);
/// // A MATE is never sent GOLD, even from a device that could afford it.
/// assert_eq!(p.choose_tier(&DeviceContext::HOME_WIFI, Priority::Mate), Tier::Silver);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Inventory cap per priority (row) and tier (column: GOLD, SILVER, BRONZE).
    pub caps: [[u32; 3]; 3],
    /// The dearest tier a priority is ever sent with.
    pub ceilings: [Tier; 3],
    /// Messages one KEM may protect before the sender re-keys, per tier. Values above the
    /// protocol's [`crate::protocol::CHAIN_LIMITS`] have no effect (see [`Policy::ratchet_limit`]).
    pub ratchet_limits: [u32; 3],
    /// Skipped message keys a receiving chain keeps for out-of-order delivery.
    pub max_skipped_keys: u32,
    /// A coin is selected, handed out or accepted for upload only while `now + coin_min_life_secs
    /// < expires_at`, so that a chain opened with it still finds its secret in the vault.
    pub coin_min_life_secs: u64,
    /// The vault deletes an ACTIVE secret at `expires_at + vault_grace_secs`: a first message
    /// delayed in transit or sent from a skewed clock still opens until then.
    pub vault_grace_secs: u64,
    /// BURNED vault keys are kept this long for diagnostics, then deleted.
    pub burn_grace_secs: u64,
    /// Contacts with no message for this long are garbage-collected.
    pub gc_inactive_secs: u64,
    /// Device budget for cached public coins, in bytes.
    pub storage_budget_bytes: u64,
    /// Unclaimed directory coins older than this are purged.
    pub directory_stale_secs: u64,
    /// Claimed directory coins are hard-deleted after this grace.
    pub directory_claim_grace_secs: u64,
    /// Coins of one owner and tier that one requester may claim per quota window.
    pub claim_quota: [u32; 3],
    /// Length of the anti-drain quota window.
    pub claim_quota_window_secs: u64,
    /// First messages one last-resort coin opens before it retires (at most
    /// [`crate::vault::MAX_LAST_RESORT_OPENS`]; see [`crate::vault::VaultEntry::open_last_resort`]).
    pub last_resort_max_opens: u32,
    /// Mint the next last-resort coin of a tier this long before the current one stops being
    /// handed out ([`crate::vault::last_resort_due`]).
    pub last_resort_renew_secs: u64,
}

impl Policy {
    /// The defaults of the rules in docs/architecture.md §2 (seed Table 2).
    pub const DEFAULT: Policy = Policy {
        caps: [[5, 4, 1], [0, 6, 4], [0, 0, 0]],
        ceilings: [Tier::Gold, Tier::Silver, Tier::Bronze],
        ratchet_limits: [25, 10, 5],
        max_skipped_keys: 32,
        coin_min_life_secs: 2 * DAY,
        vault_grace_secs: 14 * DAY,
        burn_grace_secs: 60,
        gc_inactive_secs: 30 * DAY,
        storage_budget_bytes: 64 * 1024,
        directory_stale_secs: 30 * DAY,
        directory_claim_grace_secs: DAY,
        // The largest cap any priority allows per tier.
        claim_quota: [5, 6, 4],
        claim_quota_window_secs: DAY,
        last_resort_max_opens: crate::vault::MAX_LAST_RESORT_OPENS as u32,
        last_resort_renew_secs: DAY,
    };

    /// The inventory cap of `tier` for a contact of `priority`.
    pub const fn cap(&self, priority: Priority, tier: Tier) -> u32 {
        *tier.of(priority.of(&self.caps))
    }

    /// All caps of a priority.
    pub const fn caps_of(&self, priority: Priority) -> TierCounts {
        TierCounts(*priority.of(&self.caps))
    }

    /// The dearest tier a contact of `priority` is sent with.
    pub const fn ceiling(&self, priority: Priority) -> Tier {
        *priority.of(&self.ceilings)
    }

    /// The tier to send with: what the device affords, capped by the priority's ceiling.
    pub fn choose_tier(&self, ctx: &DeviceContext, priority: Priority) -> Tier {
        ctx.affordable_tier().cheaper(self.ceiling(priority))
    }

    /// Messages one session of `tier` may carry before re-keying: the policy's value, never more
    /// than the protocol's limit.
    pub const fn ratchet_limit(&self, tier: Tier) -> u32 {
        let own = *tier.of(&self.ratchet_limits);
        let max = crate::protocol::chain_limit(tier);
        if own < max { own } else { max }
    }

    /// Whether a coin expiring at `expires_at` may still be selected, handed out or uploaded at
    /// `now` (`now + coin_min_life < expires_at`).
    pub const fn coin_is_fresh(&self, expires_at: UnixSeconds, now: UnixSeconds) -> bool {
        now.saturating_add(self.coin_min_life_secs) < expires_at
    }

    /// When the vault deletes the secret of a coin expiring at `expires_at`.
    pub const fn vault_deadline(&self, expires_at: UnixSeconds) -> UnixSeconds {
        expires_at.saturating_add(self.vault_grace_secs)
    }

    /// Claims of `tier` one requester may make of one owner per quota window.
    pub const fn claim_quota(&self, tier: Tier) -> u32 {
        *tier.of(&self.claim_quota)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_table_two() {
        let p = Policy::DEFAULT;
        let expect = [
            (Priority::Bestie, [5, 4, 1], Tier::Gold),
            (Priority::Mate, [0, 6, 4], Tier::Silver),
            (Priority::Stranger, [0, 0, 0], Tier::Bronze),
        ];
        for (prio, caps, ceiling) in expect {
            assert_eq!(p.caps_of(prio), TierCounts(caps));
            assert_eq!(p.ceiling(prio), ceiling);
        }
        // Anti-drain quota is the largest cap any priority allows.
        for t in Tier::ALL {
            let max = Priority::ALL.iter().map(|pr| p.cap(*pr, t)).max().unwrap();
            assert_eq!(p.claim_quota(t), max);
        }
    }

    #[test]
    fn policy_only_lowers_the_protocol_chain_limit() {
        let mut p = Policy::DEFAULT;
        p.ratchet_limits = [100, 3, 5];
        assert_eq!(p.ratchet_limit(Tier::Gold), 25);
        assert_eq!(p.ratchet_limit(Tier::Silver), 3);
        assert!(p.coin_is_fresh(10 * DAY, 8 * DAY - 1));
        assert!(!p.coin_is_fresh(10 * DAY, 8 * DAY));
        assert_eq!(p.vault_deadline(DAY), 15 * DAY);
    }

    #[test]
    fn ceiling_caps_context() {
        let p = Policy::DEFAULT;
        assert_eq!(p.choose_tier(&DeviceContext::HOME_WIFI, Priority::Bestie), Tier::Gold);
        assert_eq!(p.choose_tier(&DeviceContext::HOME_WIFI, Priority::Stranger), Tier::Bronze);
        assert_eq!(p.choose_tier(&DeviceContext::UNDERGROUND, Priority::Bestie), Tier::Bronze);
    }
}
