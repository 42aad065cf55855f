//! The coin directory's rules: verified idempotent upload, oldest-first claim of each coin at most
//! once, anti-drain quota per requester, idempotent retried claims, stale purge and hard delete;
//! one live last-resort coin per owner and tier, handed out (and not used up) only when the tier
//! has no one-time coin left.

use serde::{Deserialize, Serialize};

use crate::KeyId;
use crate::coin::{CoinKind, PublicCoin};
use crate::crypto::{PublicIdentity, RegistrationProof};
use crate::{Error, Policy, Tier, UnixSeconds, UserId, protocol};

/// Most coins one claim can return (above every quota).
pub const MAX_CLAIM: usize = 8;

/// The coins a claim returns, oldest first.
pub type Claimed = heapless::Vec<PublicCoin, MAX_CLAIM>;

/// A client-chosen key that makes a retried claim return the same coins.
pub type IdempotencyKey = [u8; 16];

/// One coin in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryCoin {
    /// The published coin.
    pub coin: PublicCoin,
    /// Upload time.
    pub uploaded_at: UnixSeconds,
    /// Upload order (oldest first), never wall-clock.
    pub seq: u64,
    /// Who claimed it, if anyone.
    pub claimed_by: Option<UserId>,
    /// When it was claimed.
    pub claimed_at: Option<UnixSeconds>,
}

/// Check a registration before the identity is stored: valid keys and a proof of possession of
/// both ([`PublicIdentity::verify_registration`]).
pub fn verify_registration(identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Error> {
    identity.verify_registration(proof)
}

/// Check one coin's expiry at upload: `server_now + coin_min_life < expires_at ≤ server_now +
/// 31 days` for a one-time coin, `≤ server_now + 8 days` for a last-resort one
/// ([`Error::CoinExpired`] / [`Error::BadExpiry`]).
pub fn check_upload_expiry(policy: &Policy, coin: &PublicCoin, now: UnixSeconds) -> Result<(), Error> {
    coin.check_fresh(policy, now)?;
    let max_life = match coin.kind {
        CoinKind::OneTime => protocol::MAX_COIN_LIFETIME_SECS,
        CoinKind::LastResort => protocol::MAX_LAST_RESORT_LIFETIME_SECS,
    };
    if coin.expires_at > now.saturating_add(max_life) {
        return Err(Error::BadExpiry);
    }
    Ok(())
}

/// Whether an uploaded last-resort coin `new` takes the place of the owner's stored one of the
/// same tier (`current`; None: there is none): the one that expires later wins, so a re-upload
/// of an older coin (a retried or reordered upload) never brings it back. An equal expiry or the
/// same key id keeps the current one: the upload is a repeat. The replaced coin is deleted.
///
/// ```
/// use aqm_core::directory::last_resort_replaces;
/// # use aqm_core::coin::{CoinKind, PublicCoin};
/// # use aqm_core::{KeyId, Tier, UserId};
/// # let coin = |id: u8, expires_at: u64| PublicCoin {
/// #     owner: UserId([1; 16]), key_id: KeyId([id; 16]), tier: Tier::Bronze, kind: CoinKind::LastResort,
/// #     expires_at, public_key: Default::default(), signature: Default::default() };
/// let (old, new) = (coin(1, 100), coin(2, 200));
/// assert!(last_resort_replaces(None, &old));
/// assert!(last_resort_replaces(Some(&old), &new));
/// assert!(!last_resort_replaces(Some(&new), &old));
/// assert!(!last_resort_replaces(Some(&new), &new));
/// ```
pub fn last_resort_replaces(current: Option<&PublicCoin>, new: &PublicCoin) -> bool {
    match current {
        None => true,
        Some(c) => c.key_id != new.key_id && new.expires_at > c.expires_at,
    }
}

/// Check an upload batch at `now` before any of it is stored: every coin must belong to `owner`,
/// carry valid signatures and an acceptable expiry ([`check_upload_expiry`]). One bad coin
/// refuses the whole batch.
pub fn verify_upload(
    policy: &Policy,
    owner: &PublicIdentity,
    coins: &[PublicCoin],
    now: UnixSeconds,
) -> Result<(), Error> {
    coins.iter().try_for_each(|c| {
        check_upload_expiry(policy, c, now)?;
        c.verify(owner)
    })
}

/// Whether an unclaimed coin may be handed out at `now` (fresh; docs/protocol.md).
pub fn claimable(policy: &Policy, coin: &PublicCoin, now: UnixSeconds) -> bool {
    policy.coin_is_fresh(coin.expires_at, now)
}

/// The expiry above which a coin is [`claimable`] at `now`: `claimable(c, now)` ⟺
/// `c.expires_at > claimable_after(now)`. For a backend that selects claimable coins in a
/// query (SQL) instead of asking [`claimable`] coin by coin.
pub fn claimable_after(policy: &Policy, now: UnixSeconds) -> UnixSeconds {
    now.saturating_add(policy.coin_min_life_secs)
}

/// The upload time at or before which an unclaimed coin is stale by age at `now` (None: no
/// coin is old enough yet). [`is_stale`] ⟺ uploaded at or before this, or not claimable.
pub fn stale_uploaded_at_or_before(policy: &Policy, now: UnixSeconds) -> Option<UnixSeconds> {
    now.checked_sub(policy.directory_stale_secs)
}

/// The claim time at or before which a claimed coin (or an idempotency record) is past its
/// grace at `now` ([`claim_expired`]); None: nothing is yet.
pub fn claim_expired_at_or_before(policy: &Policy, now: UnixSeconds) -> Option<UnixSeconds> {
    now.checked_sub(policy.directory_claim_grace_secs)
}

/// How many coins a claim of `requested` may take, given that the requester already claimed
/// `used` coins of this owner and tier in the current window. Zero left → [`Error::QuotaExceeded`].
pub fn quota_grant(policy: &Policy, tier: Tier, used: u32, requested: u32) -> Result<u32, Error> {
    let quota = policy.claim_quota(tier);
    let left = quota.saturating_sub(used);
    if requested == 0 {
        return Ok(0);
    }
    if left == 0 {
        return Err(Error::QuotaExceeded { tier, quota });
    }
    Ok(requested.min(left).min(MAX_CLAIM as u32))
}

/// What a requester has used of its quota at `now`, given its stored record `(window start,
/// used)` for this owner and tier: a record of an earlier window counts nothing.
pub fn used_now(policy: &Policy, stored: Option<(UnixSeconds, u32)>, now: UnixSeconds) -> u32 {
    let window = quota_window(policy, now);
    stored.filter(|(w, _)| *w == window).map_or(0, |(_, used)| used)
}

/// Start of the quota window that contains `now`.
pub fn quota_window(policy: &Policy, now: UnixSeconds) -> UnixSeconds {
    let w = policy.claim_quota_window_secs.max(1);
    now - now % w
}

/// What a claim writes ([`crate::store::DirectoryStore::claim`]), decided by [`plan_claim`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimPlan {
    /// Upload sequence numbers of the coins to hand out, oldest first: mark each claimed by the
    /// requester at `now` ([`DirectoryCoin::claim`]) and return them in this order.
    pub picks: heapless::Vec<u64, MAX_CLAIM>,
    /// The quota window the claim counts against ([`quota_window`]).
    pub window: UnixSeconds,
    /// The requester's use of that window after the claim; write it only if `picks` is not
    /// empty or `last_resort` is set (an empty claim uses no quota).
    pub used_after: u32,
    /// The owner's last-resort coin to return, when no one-time coin was picked: returned after
    /// (instead of) the picks, NOT marked claimed; it counts one against the quota.
    pub last_resort: Option<KeyId>,
}

impl ClaimPlan {
    /// Whether the claim hands anything out (and so writes its quota use).
    pub fn hands_out(&self) -> bool {
        !self.picks.is_empty() || self.last_resort.is_some()
    }
}

/// Plan a claim of up to `count` coins of `tier` for a requester that already used `used` of
/// its quota in the current window. `oldest_first` are the owner's unclaimed one-time coins of
/// that tier in upload order (a backend may pass more than it needs; the plan stops at the
/// grant; last-resort coins among them are ignored). Coins that are not [`claimable`] are
/// skipped, never handed out. `last_resort` is the owner's stored last-resort coin of the tier:
/// when no one-time coin is picked it is handed out instead, if claimable ([`ClaimPlan::last_resort`]).
/// Quota spent → [`Error::QuotaExceeded`].
///
/// Backends run this inside the step that then marks the picks claimed, so each coin goes to
/// one requester; the idempotent replay of a retried claim comes before it.
pub fn plan_claim<'a>(
    policy: &Policy,
    tier: Tier,
    used: u32,
    count: u32,
    now: UnixSeconds,
    oldest_first: impl IntoIterator<Item = &'a DirectoryCoin>,
    last_resort: Option<&PublicCoin>,
) -> Result<ClaimPlan, Error> {
    let grant = quota_grant(policy, tier, used, count)?;
    let mut picks = heapless::Vec::new();
    for d in oldest_first {
        if picks.len() as u32 >= grant {
            break;
        }
        if d.coin.tier == tier
            && d.coin.kind == CoinKind::OneTime
            && d.claimed_by.is_none()
            && claimable(policy, &d.coin, now)
        {
            // `grant` is at most MAX_CLAIM, the capacity of `picks`.
            let _ = picks.push(d.seq);
        }
    }
    let last_resort = match last_resort {
        Some(c)
            if picks.is_empty() && grant > 0 && c.tier == tier && c.is_last_resort() && claimable(policy, c, now) =>
        {
            Some(c.key_id)
        }
        _ => None,
    };
    let used_after = used + picks.len() as u32 + u32::from(last_resort.is_some());
    Ok(ClaimPlan { picks, window: quota_window(policy, now), used_after, last_resort })
}

impl DirectoryCoin {
    /// Mark this coin claimed by `requester` at `now` (the write of one [`ClaimPlan`] pick).
    pub fn claim(&mut self, requester: &UserId, now: UnixSeconds) {
        self.claimed_by = Some(*requester);
        self.claimed_at = Some(now);
    }
}

/// Whether an unclaimed coin uploaded at `uploaded_at` is stale at `now`: past the stale age, or
/// no longer fresh (it can never be handed out again).
pub fn is_stale(policy: &Policy, coin: &DirectoryCoin, now: UnixSeconds) -> bool {
    now.saturating_sub(coin.uploaded_at) >= policy.directory_stale_secs || !claimable(policy, &coin.coin, now)
}

/// Whether a coin claimed at `claimed_at` is past its grace at `now` and may be hard-deleted.
pub fn claim_expired(policy: &Policy, claimed_at: UnixSeconds, now: UnixSeconds) -> bool {
    now.saturating_sub(claimed_at) >= policy.directory_claim_grace_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thresholds for queries agree with the per-coin rules on both sides of each boundary.
    #[test]
    fn thresholds_agree_with_the_rules() {
        for p in [
            Policy::DEFAULT,
            Policy { directory_stale_secs: 7, directory_claim_grace_secs: 3, coin_min_life_secs: 2, ..Policy::DEFAULT },
        ] {
            for now in [0, 5, p.directory_stale_secs - 1, p.directory_stale_secs, 1_700_000_000] {
                let cut = claimable_after(&p, now);
                for expires_at in [cut.saturating_sub(1), cut, cut + 1] {
                    assert_eq!(p.coin_is_fresh(expires_at, now), expires_at > cut);
                }
                for uploaded_at in [0, now.saturating_sub(p.directory_stale_secs), now] {
                    let by_age = now.saturating_sub(uploaded_at) >= p.directory_stale_secs;
                    let by_cut = stale_uploaded_at_or_before(&p, now).is_some_and(|t| uploaded_at <= t);
                    assert_eq!(by_age, by_cut, "now {now} uploaded {uploaded_at}");
                }
                for claimed_at in [0, now.saturating_sub(p.directory_claim_grace_secs), now] {
                    let by_cut = claim_expired_at_or_before(&p, now).is_some_and(|t| claimed_at <= t);
                    assert_eq!(claim_expired(&p, claimed_at, now), by_cut, "now {now} claimed {claimed_at}");
                }
            }
        }
    }

    #[test]
    fn quota() {
        let p = Policy::DEFAULT;
        assert_eq!(quota_grant(&p, Tier::Gold, 0, 10), Ok(5));
        assert_eq!(quota_grant(&p, Tier::Gold, 3, 10), Ok(2));
        assert_eq!(quota_grant(&p, Tier::Gold, 5, 1), Err(Error::QuotaExceeded { tier: Tier::Gold, quota: 5 }));
        assert_eq!(quota_grant(&p, Tier::Silver, 6, 0), Ok(0));
        assert_eq!(quota_window(&p, 86_400 * 3 + 5), 86_400 * 3);
        assert_eq!(used_now(&p, Some((86_400 * 3, 4)), 86_400 * 3 + 5), 4);
        assert_eq!(used_now(&p, Some((86_400 * 2, 4)), 86_400 * 3 + 5), 0);
        assert_eq!(used_now(&p, None, 86_400 * 3 + 5), 0);
    }
}
