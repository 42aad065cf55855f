//! Directory cases: identity registration, verified idempotent upload (all or nothing),
//! oldest-first claim of each coin at most once, anti-drain quota, idempotent retry, stale purge
//! and hard delete. Every case takes a fresh, empty store; the quotas, windows and graces it
//! checks come from the store's own policy. Bob publishes; Alice and Erin (plain user ids) claim.

use std::vec::Vec;

use super::fixtures::{DAY, T0, expect_core, fixtures, must};
use crate::coin::PublicCoin;
use crate::directory::Claimed;
use crate::store::DirectoryStore;
use crate::{Error, KeyId, StoreError, Tier, TierCounts, UserId};

pub use super::last_resort::directory::*;
const ALICE: UserId = UserId([0xA1; 16]);
const ERIN: UserId = UserId([0xE4; 16]);

fn setup<S: DirectoryStore>(s: &S) -> UserId {
    let bob = &fixtures().bob;
    must(s.register_identity(bob.identity.public(), bob.proof()), "register_identity");
    bob.id()
}

fn bob_coins(tier: Tier, range: core::ops::Range<usize>) -> Vec<PublicCoin> {
    range.map(|i| fixtures().bob.coin(tier, i).clone()).collect()
}

fn key_ids(c: &Claimed) -> Vec<KeyId> {
    c.iter().map(|c| c.key_id).collect()
}

fn available<S: DirectoryStore>(s: &S, owner: &UserId) -> TierCounts {
    must(s.available(owner), "available")
}

/// Registering an identity twice is a no-op; another identity under the same id is refused.
pub fn register_identity<S: DirectoryStore>(s: &S) {
    let f = fixtures();
    let bob = setup(s);
    must(s.register_identity(f.bob.identity.public(), f.bob.proof()), "same identity again");
    assert_eq!(must(s.identity(&bob), "identity").as_ref(), Some(f.bob.identity.public()));
    // Carol's keys under Bob's id, with a valid proof of possession for that pairing.
    let mut secret = f.carol.identity.secret().clone();
    secret.user_id = bob;
    let impostor = crate::crypto::Identity::from_secret(secret);
    let proof = must(impostor.registration_proof(&mut super::fixtures::rng(41)), "proof");
    expect_core(
        s.register_identity(impostor.public(), &proof),
        Error::KeyAlreadyExists,
        "another identity under Bob's id",
    );
    assert_eq!(must(s.identity(&bob), "identity").as_ref(), Some(f.bob.identity.public()));
    assert_eq!(must(s.identity(&ALICE), "identity"), None);
}

/// Registration proves possession of both keys: a proof made by another identity, or with
/// either signature broken, is refused (`BadSignature`) and registers nothing; a small-order
/// Ed25519 key is refused (`WeakIdentityKey`).
pub fn register_without_possession_refused<S: DirectoryStore>(s: &S) {
    let f = fixtures();
    let dave = f.dave.identity.public();
    expect_core(s.register_identity(dave, f.carol.proof()), Error::BadSignature, "someone else's proof");
    let mut broken = f.dave.proof().clone();
    broken.mldsa65[100] ^= 1;
    expect_core(s.register_identity(dave, &broken), Error::BadSignature, "bad ML-DSA-65 half");
    let mut broken = f.dave.proof().clone();
    broken.ed25519[10] ^= 1;
    expect_core(s.register_identity(dave, &broken), Error::BadSignature, "bad Ed25519 half");
    let mut weak = dave.clone();
    weak.ed25519 = [0; 32];
    weak.ed25519[0] = 1;
    expect_core(s.register_identity(&weak, f.dave.proof()), Error::WeakIdentityKey, "small-order key");
    assert_eq!(must(s.identity(&f.dave.id()), "identity"), None);
}

/// An upload by an unregistered owner is refused and stores nothing.
pub fn upload_unregistered_refused<S: DirectoryStore>(s: &S) {
    let carol = &fixtures().carol;
    let coins = [carol.coin(Tier::Bronze, 0).clone()];
    expect_core(s.upload(&carol.id(), &coins, T0), Error::UnknownUser, "upload without identity");
    assert_eq!(available(s, &carol.id()), TierCounts::default());
}

/// Upload returns how many coins were new; re-uploading is idempotent on (owner, key id).
pub fn upload_idempotent<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let first = bob_coins(Tier::Silver, 0..3);
    assert_eq!(must(s.upload(&bob, &first, T0), "upload"), 3);
    assert_eq!(must(s.upload(&bob, &first, T0 + 5), "re-upload"), 0);
    let mut overlap = bob_coins(Tier::Silver, 2..5);
    overlap.push(overlap[0].clone());
    assert_eq!(must(s.upload(&bob, &overlap, T0 + 6), "overlapping upload"), 2);
    assert_eq!(available(s, &bob), TierCounts([0, 5, 0]));
}

/// An upload is accepted only while `now + coin_min_life < expires_at ≤ now + 31 days`
/// (docs/protocol.md): a coin about to expire is `CoinExpired`, one whose expiry lies too far ahead
/// `BadExpiry`, and either refuses the whole batch.
pub fn upload_expiry_checked<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let coins = bob_coins(Tier::Bronze, 0..2);
    let expires = coins[0].expires_at;
    let min_life = s.policy().coin_min_life_secs;
    expect_core(s.upload(&bob, &coins, expires - min_life), Error::CoinExpired, "nearly expired");
    expect_core(s.upload(&bob, &coins, expires + 1), Error::CoinExpired, "expired");
    let too_early = expires - crate::protocol::MAX_COIN_LIFETIME_SECS - 1;
    expect_core(s.upload(&bob, &coins, too_early), Error::BadExpiry, "expiry too far ahead");
    assert_eq!(available(s, &bob), TierCounts::default());
    assert_eq!(must(s.upload(&bob, &coins, expires - min_life - 1), "last moment"), 2);
}

/// A coin too close to its expiry is never handed out (`now + coin_min_life ≥ expires_at`) and
/// is purged as stale.
pub fn claim_skips_expiring_coins<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let coins = bob_coins(Tier::Silver, 0..2);
    must(s.upload(&bob, &coins, T0), "upload");
    let late = coins[0].expires_at - s.policy().coin_min_life_secs;
    assert!(must(s.claim(&bob, &ALICE, Tier::Silver, 2, None, late), "late claim").is_empty());
    assert_eq!(must(s.purge_stale(late), "purge_stale"), 2);
    assert_eq!(available(s, &bob), TierCounts::default());
    // One second earlier they were still fresh.
    must(s.upload(&bob, &bob_coins(Tier::Silver, 2..4), T0), "upload");
    assert_eq!(must(s.claim(&bob, &ALICE, Tier::Silver, 2, None, late - 1), "claim").len(), 2);
}

/// A forged coin (tampered signature or key) refuses the whole batch and stores nothing.
pub fn upload_forged_refuses_batch<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    for tier in Tier::ALL {
        let mut batch = bob_coins(tier, 0..2);
        batch[1].signature[7] ^= 0x01;
        expect_core(s.upload(&bob, &batch, T0), Error::BadSignature, "tampered signature");
        let mut batch = bob_coins(tier, 0..2);
        batch[0].public_key[0] ^= 0x80;
        expect_core(s.upload(&bob, &batch, T0), Error::BadSignature, "tampered public key");
    }
    assert_eq!(available(s, &bob), TierCounts::default());
}

/// A coin of another user inside an owner's batch refuses the whole batch.
pub fn upload_foreign_refuses_batch<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let mut batch = bob_coins(Tier::Bronze, 0..2);
    batch.push(fixtures().carol.coin(Tier::Bronze, 0).clone());
    expect_core(s.upload(&bob, &batch, T0), Error::WrongOwner, "Carol's coin in Bob's batch");
    // Re-labelled as Bob's, the signature no longer verifies.
    let mut relabelled = fixtures().carol.coin(Tier::Bronze, 1).clone();
    relabelled.owner = bob;
    expect_core(s.upload(&bob, &[relabelled], T0), Error::BadSignature, "re-labelled coin");
    assert_eq!(available(s, &bob), TierCounts::default());
    assert_eq!(available(s, &fixtures().carol.id()), TierCounts::default());
}

/// A claim returns the oldest unclaimed coins first (upload order, even within one second and
/// within one batch).
pub fn claim_oldest_first<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    // Batch `a` in descending, batch `b` in ascending key-id order: no key-id order passes both.
    let mut a = bob_coins(Tier::Silver, 0..3);
    a.sort_by_key(|c| core::cmp::Reverse(c.key_id));
    let mut b = bob_coins(Tier::Silver, 3..6);
    b.sort_by_key(|c| c.key_id);
    must(s.upload(&bob, &a, T0), "upload");
    must(s.upload(&bob, &b, T0), "upload");
    let got = must(s.claim(&bob, &ALICE, Tier::Silver, 2, None, T0), "claim");
    assert_eq!(key_ids(&got), [a[0].key_id, a[1].key_id]);
    assert_eq!(got[0], a[0], "claimed coins come back byte for byte");
    let got = must(s.claim(&bob, &ERIN, Tier::Silver, 3, None, T0), "claim");
    assert_eq!(key_ids(&got), [a[2].key_id, b[0].key_id, b[1].key_id]);
    assert_eq!(available(s, &bob), TierCounts([0, 1, 0]));
}

/// Each coin is handed out once: claimers get disjoint coins until none are left; other tiers
/// and owners are untouched.
pub fn claim_each_coin_once<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    must(s.upload(&bob, &bob_coins(Tier::Bronze, 0..3), T0), "upload");
    must(s.upload(&bob, &bob_coins(Tier::Gold, 0..1), T0), "upload");
    let x = must(s.claim(&bob, &ALICE, Tier::Bronze, 2, None, T0), "claim");
    let y = must(s.claim(&bob, &ERIN, Tier::Bronze, 2, None, T0), "claim");
    assert_eq!((x.len(), y.len()), (2, 1));
    assert!(y.iter().all(|c| !x.contains(c)));
    assert!(must(s.claim(&bob, &ERIN, Tier::Bronze, 1, None, T0 + 1), "claim").is_empty());
    assert_eq!(available(s, &bob), TierCounts([1, 0, 0]));
}

/// Anti-drain: a requester gets at most the tier's quota of one owner's coins per window; a
/// request over it is cut down, one past it refused without claiming anything; other requesters
/// and the next window are not affected.
pub fn claim_quota<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    must(s.upload(&bob, &bob_coins(Tier::Gold, 0..12), T0), "upload");
    let quota = s.policy().claim_quota(Tier::Gold);
    assert!(quota >= 2, "the case needs a GOLD quota of two or more");
    let got = must(s.claim(&bob, &ALICE, Tier::Gold, quota - 1, None, T0), "claim");
    assert_eq!(got.len() as u32, quota - 1);
    let got = must(s.claim(&bob, &ALICE, Tier::Gold, 8, None, T0 + 1), "claim");
    assert_eq!(got.len(), 1, "cut down to the quota left");
    expect_core(
        s.claim(&bob, &ALICE, Tier::Gold, 1, None, T0 + 2),
        Error::QuotaExceeded { tier: Tier::Gold, quota },
        "over quota",
    );
    assert_eq!(available(s, &bob), TierCounts([12 - quota, 0, 0]));
    // Another requester has its own quota.
    assert_eq!(must(s.claim(&bob, &ERIN, Tier::Gold, 2, None, T0 + 3), "claim").len(), 2);
    // The next window opens a fresh quota.
    let next = T0 + s.policy().claim_quota_window_secs;
    let left = 12 - quota - 2;
    assert_eq!(must(s.claim(&bob, &ALICE, Tier::Gold, quota, None, next), "claim").len() as u32, quota.min(left));
}

/// A claim that finds nothing uses no quota.
pub fn claim_empty_uses_no_quota<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let quota = s.policy().claim_quota(Tier::Bronze);
    for _ in 0..10 {
        assert!(must(s.claim(&bob, &ALICE, Tier::Bronze, quota, None, T0), "claim").is_empty());
    }
    must(s.upload(&bob, &bob_coins(Tier::Bronze, 0..quota as usize), T0 + 1), "upload");
    assert_eq!(must(s.claim(&bob, &ALICE, Tier::Bronze, quota, None, T0 + 2), "claim").len() as u32, quota);
}

/// A retried claim with the same idempotency key returns the same coins and claims nothing more.
pub fn claim_idempotent_retry<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let quota = s.policy().claim_quota(Tier::Silver);
    must(s.upload(&bob, &bob_coins(Tier::Silver, 0..quota as usize), T0), "upload");
    let key = [7u8; 16];
    let first = must(s.claim(&bob, &ALICE, Tier::Silver, 2, Some(key), T0), "claim");
    assert_eq!(first.len(), 2);
    let retry = must(s.claim(&bob, &ALICE, Tier::Silver, 2, Some(key), T0 + 30), "retry");
    assert_eq!(retry, first);
    assert_eq!(available(s, &bob), TierCounts([0, quota - 2, 0]));
    // The retry used no quota: the rest of it fits (SILVER quota 6 by default).
    let rest = must(s.claim(&bob, &ALICE, Tier::Silver, quota - 2, Some([8u8; 16]), T0 + 31), "claim");
    assert_eq!(rest.len() as u32, quota - 2);
    expect_core(
        s.claim(&bob, &ALICE, Tier::Silver, 1, Some([9u8; 16]), T0 + 32),
        Error::QuotaExceeded { tier: Tier::Silver, quota },
        "quota used up",
    );
    // Another requester's identical key is its own: Erin's claim is served afresh (nothing left).
    assert!(must(s.claim(&bob, &ERIN, Tier::Silver, 2, Some(key), T0 + 33), "Erin's claim").is_empty());
}

/// Unclaimed coins that can no longer be handed out (past the stale age, or too close to their
/// expiry) are purged; fresh and claimed ones stay. (Every fixture coin expires 30 days after
/// T0, before the stale age of coins uploaded later runs out.)
pub fn purge_stale<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    must(s.upload(&bob, &bob_coins(Tier::Bronze, 0..3), T0), "upload old");
    must(s.upload(&bob, &bob_coins(Tier::Bronze, 3..5), T0 + 10 * DAY), "upload recent");
    let claimed = must(s.claim(&bob, &ALICE, Tier::Bronze, 1, Some([1; 16]), T0 + DAY), "claim");
    let p = s.policy();
    let unusable = bob_coins(Tier::Bronze, 0..1)[0].expires_at - p.coin_min_life_secs;
    assert!(unusable <= T0 + p.directory_stale_secs && unusable < T0 + 10 * DAY + p.directory_stale_secs);
    assert_eq!(must(s.purge_stale(unusable - 1), "purge_stale"), 0);
    assert_eq!(available(s, &bob), TierCounts([0, 0, 4]));
    assert_eq!(must(s.purge_stale(unusable), "purge_stale"), 4);
    assert_eq!(available(s, &bob), TierCounts([0, 0, 0]));
    // The claimed coin survived the purge: the retry still returns it.
    let retry = must(s.claim(&bob, &ALICE, Tier::Bronze, 1, Some([1; 16]), T0 + DAY + 5), "retry");
    assert_eq!(retry, claimed);
}

/// Claimed coins are hard-deleted after the claim grace; unclaimed ones are not touched.
pub fn hard_delete_claimed<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    must(s.upload(&bob, &bob_coins(Tier::Silver, 0..4), T0), "upload");
    must(s.claim(&bob, &ALICE, Tier::Silver, 2, None, T0 + 100), "claim");
    must(s.claim(&bob, &ERIN, Tier::Silver, 1, None, T0 + 200), "claim");
    let grace = s.policy().directory_claim_grace_secs;
    assert_eq!(must(s.hard_delete_claimed(T0 + 100 + grace - 1), "hard delete"), 0);
    assert_eq!(must(s.hard_delete_claimed(T0 + 100 + grace), "hard delete"), 2);
    assert_eq!(must(s.hard_delete_claimed(T0 + 200 + grace), "hard delete"), 1);
    assert_eq!(must(s.hard_delete_claimed(T0 + 365 * DAY), "hard delete"), 0);
    assert_eq!(available(s, &bob), TierCounts([0, 1, 0]));
    // Deleted coins are never handed out again.
    let last = must(s.claim(&bob, &ERIN, Tier::Silver, 2, None, T0 + 200 + grace + DAY), "claim");
    assert_eq!(key_ids(&last), [fixtures().bob.coin(Tier::Silver, 3).key_id]);
}

/// Available counts follow uploads and claims, per tier and per owner.
pub fn available_counts<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let dave = &fixtures().dave;
    must(s.register_identity(dave.identity.public(), dave.proof()), "register dave");
    must(s.upload(&bob, &bob_coins(Tier::Gold, 0..2), T0), "upload");
    must(s.upload(&bob, &bob_coins(Tier::Silver, 0..3), T0), "upload");
    must(s.upload(&dave.id(), &[dave.coin(Tier::Bronze, 0).clone()], T0), "upload");
    assert_eq!(available(s, &bob), TierCounts([2, 3, 0]));
    assert_eq!(available(s, &dave.id()), TierCounts([0, 0, 1]));
    must(s.claim(&bob, &ALICE, Tier::Gold, 1, None, T0), "claim");
    assert_eq!(available(s, &bob), TierCounts([1, 3, 0]));
}

/// Refusals change nothing: after bad uploads and claims the directory is as it was.
pub fn bad_input_changes_nothing<S: DirectoryStore>(s: &S) {
    let bob = setup(s);
    let quota = s.policy().claim_quota(Tier::Gold);
    must(s.upload(&bob, &bob_coins(Tier::Gold, 0..quota as usize + 1), T0), "upload");
    must(s.claim(&bob, &ALICE, Tier::Gold, quota, None, T0), "claim");
    let mut forged = bob_coins(Tier::Gold, 6..8);
    forged[1].signature[0] ^= 1;
    expect_core(s.upload(&bob, &forged, T0), Error::BadSignature, "forged");
    let mut short = bob_coins(Tier::Bronze, 0..1);
    short[0].public_key.pop();
    assert!(matches!(s.upload(&bob, &short, T0).map_err(|e| e.as_core().copied()), Err(Some(Error::BadLength { .. }))));
    expect_core(
        s.claim(&bob, &ALICE, Tier::Gold, 1, Some([3; 16]), T0 + 1),
        Error::QuotaExceeded { tier: Tier::Gold, quota },
        "over quota",
    );
    assert_eq!(available(s, &bob), TierCounts([1, 0, 0]));
    // The refused idempotency key was not recorded: a later window serves it normally.
    let next = T0 + s.policy().claim_quota_window_secs;
    let later = must(s.claim(&bob, &ALICE, Tier::Gold, 1, Some([3; 16]), next), "claim");
    assert_eq!(key_ids(&later), [fixtures().bob.coin(Tier::Gold, quota as usize).key_id]);
}
