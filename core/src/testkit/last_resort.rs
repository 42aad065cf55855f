//! Last-resort cases (issue 14), one module per family they belong to; each family's module
//! re-exports its cases, so they run wherever the family is declared. A last-resort coin is
//! handed out by the directory only when no one-time coin of its tier is left and is never used
//! up there; the vault opens it without burning it and remembers a digest of every first message
//! it opened, refusing a replay, and retires it when that record is full. The sender never
//! caches it.

use std::vec::Vec;

use super::fixtures::{DAY, T0, expect_core, fixtures, must};
use crate::vault::{KeyStatus, OpenDigest, VaultStats};
use crate::{Error, KeyId, Tier, TierCounts};

/// A digest standing for one first message's KEM ciphertext (the kit needs no real ciphertext:
/// the store sees only the digest).
fn digest(n: u8) -> OpenDigest {
    OpenDigest([n; 16])
}

/// The number of opens that fills a last-resort key's record under the store's policy.
fn max_opens(p: &crate::Policy) -> u32 {
    p.last_resort_max_opens.clamp(1, crate::vault::MAX_LAST_RESORT_OPENS as u32)
}

/// The first time at which a last-resort entry minted at `T0` is past its vault deadline.
fn past_deadline(p: &crate::Policy) -> u64 {
    crate::protocol::last_resort_expiry(T0) + p.vault_grace_secs
}

/// Vault cases, through [`crate::store::VaultStore::open_last_resort`].
pub mod vault {
    use super::*;
    use crate::store::VaultStore;
    use crate::testkit::vault::assert_counters_match_recount;

    /// A last-resort entry reads back as it was stored, kind included, and counts as ACTIVE.
    pub fn last_resort_store_keeps_kind<S: VaultStore>(s: &S) {
        let bob = &fixtures().bob;
        let e = bob.last_resort_entry(Tier::Silver, 0);
        assert!(e.is_last_resort());
        must(s.put(&e), "put");
        let back = must(s.get(&e.key_id, T0), "get").expect("the entry reads back");
        assert!(back.is_last_resort(), "the store lost the coin kind");
        assert_eq!(back, e);
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
        assert_eq!(must(s.stats(), "stats").active, TierCounts([0, 1, 0]));
        // A one-time entry beside it stays one-time.
        let one_time = bob.vault_entry(Tier::Silver, 0, T0);
        must(s.put(&one_time), "put");
        assert!(!must(s.get(&one_time.key_id, T0), "get").expect("stored").is_last_resort());
        assert_counters_match_recount(s);
    }

    /// Opening a last-resort key burns nothing: it stays ACTIVE and opens again for another
    /// first message.
    pub fn last_resort_open_burns_nothing<S: VaultStore>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Bronze, 0);
        must(s.put(&e), "put");
        let before = must(s.stats(), "stats");
        assert!(max_opens(s.policy()) >= 3, "the case needs room for two opens");
        assert!(!must(s.open_last_resort(&e.key_id, &digest(1), T0 + 1), "first open"));
        assert!(!must(s.open_last_resort(&e.key_id, &digest(2), T0 + 2), "second open"));
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
        assert_eq!(must(s.get(&e.key_id, T0 + 3), "get").as_ref(), Some(&e));
        assert_eq!(must(s.stats(), "stats"), before);
    }

    /// The same first message opened twice is `Replay`, and the refusal changes nothing: the
    /// record still takes a new first message afterwards.
    pub fn last_resort_replay_refused<S: VaultStore>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Gold, 0);
        must(s.put(&e), "put");
        must(s.open_last_resort(&e.key_id, &digest(7), T0 + 1), "first open");
        let before = must(s.stats(), "stats");
        expect_core(s.open_last_resort(&e.key_id, &digest(7), T0 + 2), Error::Replay, "replayed first message");
        expect_core(s.open_last_resort(&e.key_id, &digest(7), T0 + 3), Error::Replay, "replayed again");
        assert_eq!(must(s.stats(), "stats"), before);
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
        must(s.open_last_resort(&e.key_id, &digest(8), T0 + 4), "a new first message");
    }

    /// Each key keeps its own record: one digest opened on one key is not a replay on another.
    pub fn last_resort_records_are_per_key<S: VaultStore>(s: &S) {
        let bob = &fixtures().bob;
        let (a, b) = (bob.last_resort_entry(Tier::Silver, 0), bob.last_resort_entry(Tier::Bronze, 0));
        must(s.put(&a), "put");
        must(s.put(&b), "put");
        must(s.open_last_resort(&a.key_id, &digest(3), T0 + 1), "open on the first key");
        must(s.open_last_resort(&b.key_id, &digest(3), T0 + 2), "the same digest on the second key");
        expect_core(s.open_last_resort(&b.key_id, &digest(3), T0 + 3), Error::Replay, "replay on the second key");
    }

    /// Refused opens change nothing: a one-time key (`NotLastResort`, still burnable), a missing
    /// key, a key past its vault deadline, a burned one.
    pub fn last_resort_open_refusals_change_nothing<S: VaultStore>(s: &S) {
        let bob = &fixtures().bob;
        let one_time = bob.vault_entry(Tier::Bronze, 0, T0);
        let lr = bob.last_resort_entry(Tier::Bronze, 0);
        let burned = bob.last_resort_entry(Tier::Silver, 0);
        for e in [&one_time, &lr, &burned] {
            must(s.put(e), "put");
        }
        must(s.burn(&burned.key_id, T0 + 1), "burn");
        let before = must(s.stats(), "stats");
        expect_core(s.open_last_resort(&one_time.key_id, &digest(1), T0 + 2), Error::NotLastResort, "one-time key");
        expect_core(s.open_last_resort(&KeyId([0xEE; 16]), &digest(1), T0 + 2), Error::KeyNotFound, "missing key");
        expect_core(s.open_last_resort(&burned.key_id, &digest(1), T0 + 2), Error::KeyAlreadyBurned, "burned key");
        let late = past_deadline(s.policy());
        expect_core(s.open_last_resort(&lr.key_id, &digest(1), late), Error::CoinExpired, "key past its deadline");
        assert_eq!(must(s.stats(), "stats"), before);
        assert_eq!(must(s.status(&one_time.key_id), "status"), Some(KeyStatus::Active));
        assert_eq!(must(s.status(&lr.key_id), "status"), Some(KeyStatus::Active));
        // Nothing was recorded: the digest still opens the key before its deadline, and the
        // one-time key still burns.
        must(s.open_last_resort(&lr.key_id, &digest(1), late - 1), "open before the deadline");
        must(s.burn(&one_time.key_id, T0 + 3), "burn of the one-time key");
    }

    /// The open that fills the record is accepted and retires the key (BURNED, counted as a
    /// burn); every open after it is `KeyAlreadyBurned`, and the retired key is deleted after
    /// the burn grace like any burned key.
    pub fn last_resort_full_record_retires<S: VaultStore>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Silver, 0);
        let other = fixtures().bob.last_resort_entry(Tier::Bronze, 0);
        must(s.put(&e), "put");
        must(s.put(&other), "put");
        let max = max_opens(s.policy());
        for n in 1..max {
            assert!(!must(s.open_last_resort(&e.key_id, &digest(n as u8), T0 + u64::from(n)), "open"), "open {n}");
            assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
        }
        let at = T0 + u64::from(max);
        assert!(must(s.open_last_resort(&e.key_id, &digest(max as u8), at), "the open that fills it"), "retires");
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Burned));
        assert_eq!(must(s.get(&e.key_id, at), "get"), None);
        assert_eq!(
            must(s.stats(), "stats"),
            VaultStats { active: TierCounts([0, 0, 1]), total_burned: 1, total_expired: 0 }
        );
        assert_counters_match_recount(s);
        for d in [digest(1), digest(200)] {
            expect_core(s.open_last_resort(&e.key_id, &d, at + 1), Error::KeyAlreadyBurned, "open after retirement");
        }
        // The other key is untouched and its record empty.
        must(s.open_last_resort(&other.key_id, &digest(1), at + 1), "the other key");
        let grace = s.policy().burn_grace_secs;
        assert_eq!(must(s.purge(at + grace - 1), "purge").deleted_burned, 0);
        assert_eq!(must(s.purge(at + grace), "purge").deleted_burned, 1);
        assert_eq!(must(s.status(&e.key_id), "status"), None);
    }

    /// A last-resort key expires like any key, at its own (shorter) expiry plus the vault grace.
    pub fn last_resort_expires<S: VaultStore>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Gold, 0);
        must(s.put(&e), "put");
        must(s.open_last_resort(&e.key_id, &digest(1), T0 + 1), "open");
        let late = past_deadline(s.policy());
        assert_eq!(must(s.purge(late - 1), "purge").expired, 0);
        assert_eq!(must(s.purge(late), "purge").expired, 1);
        assert_eq!(must(s.status(&e.key_id), "status"), None);
        assert_eq!(
            must(s.stats(), "stats"),
            VaultStats { active: TierCounts::default(), total_burned: 0, total_expired: 1 }
        );
        expect_core(s.open_last_resort(&e.key_id, &digest(2), late), Error::KeyNotFound, "open after the purge");
    }
}

/// Session cases, through [`crate::store::SessionStore::open_last_resort_and_save_session`].
pub mod session {
    use super::*;
    use crate::UserId;
    use crate::store::{Direction, SessionBlob, SessionStore};

    const ALICE: UserId = UserId([0xA1; 16]);
    const ERIN: UserId = UserId([0xE4; 16]);

    fn blob(n: u8) -> SessionBlob {
        (0..48).map(|_| n).collect()
    }

    fn receive_blob<S: SessionStore>(s: &S, peer: &UserId) -> Option<SessionBlob> {
        must(s.load_session(peer, Direction::Receive), "load").map(|r| r.blob)
    }

    /// Two senders open chains on one last-resort key: both sessions are saved, the key stays
    /// ACTIVE; a replay of either first message is refused and saves nothing.
    pub fn last_resort_open_and_save<S: SessionStore>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Bronze, 0);
        must(s.put(&e), "put");
        let v =
            must(s.open_last_resort_and_save_session(&e.key_id, &digest(1), T0 + 1, &ALICE, &blob(1), None), "open");
        must(s.open_last_resort_and_save_session(&e.key_id, &digest(2), T0 + 2, &ERIN, &blob(2), None), "open");
        assert_eq!(receive_blob(s, &ALICE), Some(blob(1)));
        assert_eq!(receive_blob(s, &ERIN), Some(blob(2)));
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
        // Alice's first message again, as if from a new peer and as Alice: refused, nothing saved.
        let stranger = UserId([0x5A; 16]);
        expect_core(
            s.open_last_resort_and_save_session(&e.key_id, &digest(1), T0 + 3, &stranger, &blob(3), None),
            Error::Replay,
            "replay from a new peer",
        );
        expect_core(
            s.open_last_resort_and_save_session(&e.key_id, &digest(1), T0 + 3, &ALICE, &blob(3), Some(v)),
            Error::Replay,
            "replay as Alice",
        );
        assert_eq!(receive_blob(s, &stranger), None);
        assert_eq!(receive_blob(s, &ALICE), Some(blob(1)));
    }

    /// Both halves or neither: a lost session race records no open (the digest opens later),
    /// a refused open saves no session, and the open that fills the record retires the key in
    /// the same step that saves the session.
    pub fn last_resort_open_and_save_is_atomic<S: SessionStore>(s: &S) {
        let bob = &fixtures().bob;
        let e = bob.last_resort_entry(Tier::Silver, 0);
        let one_time = bob.vault_entry(Tier::Silver, 0, T0);
        must(s.put(&e), "put");
        must(s.put(&one_time), "put");
        let v = must(s.save_session(&ALICE, Direction::Receive, &blob(9), None), "save");
        // The session half fails (Alice has a record): the open half is not written either.
        expect_core(
            s.open_last_resort_and_save_session(&e.key_id, &digest(4), T0 + 1, &ALICE, &blob(1), None),
            Error::SessionConflict,
            "stale session version",
        );
        assert_eq!(receive_blob(s, &ALICE), Some(blob(9)));
        let mut v = must(
            s.open_last_resort_and_save_session(&e.key_id, &digest(4), T0 + 2, &ALICE, &blob(1), Some(v)),
            "retry",
        );
        assert_eq!(receive_blob(s, &ALICE), Some(blob(1)));
        // The open half fails (a one-time key): no session is saved, the key stays ACTIVE.
        expect_core(
            s.open_last_resort_and_save_session(&one_time.key_id, &digest(5), T0 + 3, &ERIN, &blob(2), None),
            Error::NotLastResort,
            "one-time key",
        );
        assert_eq!(receive_blob(s, &ERIN), None);
        assert_eq!(must(s.status(&one_time.key_id), "status"), Some(KeyStatus::Active));
        // Fill the record through the session path (Alice opening new chains, each replacing
        // her session): the last open retires the key.
        for n in 2..=max_opens(s.policy()) {
            let (d, b) = (digest(10 + n as u8), blob(n as u8));
            v = must(s.open_last_resort_and_save_session(&e.key_id, &d, T0 + 10, &ALICE, &b, Some(v)), "open");
            assert_eq!(receive_blob(s, &ALICE), Some(b));
        }
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Burned));
        assert_eq!(must(s.stats(), "stats").total_burned, 1);
        crate::testkit::vault::assert_counters_match_recount(s);
    }
}

/// Inventory cases: a last-resort coin is never cached.
pub mod inventory {
    use super::*;
    use crate::Priority;
    use crate::store::InventoryStore;

    /// Storing a last-resort coin is `LastResortNotCached` and changes nothing.
    pub fn last_resort_never_cached<S: InventoryStore>(s: &S) {
        let bob = &fixtures().bob;
        must(s.register_contact(&bob.as_contact(Priority::Bestie, T0)), "register");
        must(s.store_coin(&bob.id(), bob.coin(Tier::Bronze, 0), T0), "store a one-time coin");
        for tier in Tier::ALL {
            expect_core(
                s.store_coin(&bob.id(), bob.last_resort_coin(tier, 0), T0 + 1),
                Error::LastResortNotCached,
                "store of a last-resort coin",
            );
        }
        assert_eq!(must(s.counts(&bob.id()), "counts"), TierCounts([0, 0, 1]));
        let got = must(s.select_coin(&bob.id(), Tier::Gold, Tier::Bronze, T0 + 2), "select");
        assert_eq!(got.coin.map(|c| c.coin.key_id), Some(bob.coin(Tier::Bronze, 0).key_id));
        assert_eq!(must(s.select_coin(&bob.id(), Tier::Gold, Tier::Bronze, T0 + 3), "select").coin, None);
    }
}

/// Directory cases: one live last-resort coin per owner and tier, handed out after the one-time
/// coins and never used up.
pub mod directory {
    use super::*;
    use crate::UserId;
    use crate::coin::PublicCoin;
    use crate::directory::Claimed;
    use crate::store::DirectoryStore;

    const ALICE: UserId = UserId([0xA1; 16]);
    const ERIN: UserId = UserId([0xE4; 16]);
    const FRAN: UserId = UserId([0xF7; 16]);

    fn setup<S: DirectoryStore>(s: &S) -> UserId {
        let bob = &fixtures().bob;
        must(s.register_identity(bob.identity.public(), bob.proof()), "register_identity");
        bob.id()
    }

    fn ids(c: &Claimed) -> Vec<KeyId> {
        c.iter().map(|c| c.key_id).collect()
    }

    fn lr(tier: Tier, i: usize) -> PublicCoin {
        fixtures().bob.last_resort_coin(tier, i).clone()
    }

    /// One-time coins go first; when none of the tier is left the owner's last-resort coin is
    /// handed out, marked as such, to every requester, and it is never counted as available.
    pub fn last_resort_after_one_time<S: DirectoryStore>(s: &S) {
        let bob = setup(s);
        let one_time = fixtures().bob.coin(Tier::Bronze, 0).clone();
        let last = lr(Tier::Bronze, 0);
        assert_eq!(must(s.upload(&bob, &[last.clone(), one_time.clone()], T0), "upload"), 2);
        assert_eq!(must(s.available(&bob), "available"), TierCounts([0, 0, 1]), "one-time coins only");
        assert_eq!(ids(&must(s.claim(&bob, &ALICE, Tier::Bronze, 2, None, T0 + 1), "claim")), [one_time.key_id]);
        for who in [ERIN, FRAN, ALICE] {
            let got = must(s.claim(&bob, &who, Tier::Bronze, 2, None, T0 + 2), "claim");
            assert_eq!(got.len(), 1, "one last-resort coin, whatever the count asked");
            assert!(got.iter().all(|c| c.is_last_resort()), "marked as last-resort");
            assert_eq!(ids(&got), [last.key_id]);
        }
        assert_eq!(must(s.available(&bob), "available"), TierCounts::default());
        // Other tiers have none.
        assert!(must(s.claim(&bob, &ALICE, Tier::Silver, 1, None, T0 + 3), "claim").is_empty());
        // An idempotent retry returns the same answer.
        let first = must(s.claim(&bob, &ERIN, Tier::Bronze, 1, Some([6; 16]), T0 + 4), "claim");
        assert_eq!(must(s.claim(&bob, &ERIN, Tier::Bronze, 1, Some([6; 16]), T0 + 5), "retry"), first);
    }

    /// The anti-drain quota counts a last-resort coin handed out like any coin.
    pub fn last_resort_counts_against_quota<S: DirectoryStore>(s: &S) {
        let bob = setup(s);
        must(s.upload(&bob, &[lr(Tier::Silver, 0)], T0), "upload");
        let quota = s.policy().claim_quota(Tier::Silver);
        for i in 0..quota {
            assert_eq!(must(s.claim(&bob, &ALICE, Tier::Silver, 1, None, T0 + u64::from(i)), "claim").len(), 1);
        }
        expect_core(
            s.claim(&bob, &ALICE, Tier::Silver, 1, None, T0 + 100),
            Error::QuotaExceeded { tier: Tier::Silver, quota },
            "over quota",
        );
        assert_eq!(must(s.claim(&bob, &ERIN, Tier::Silver, 1, None, T0 + 101), "claim").len(), 1, "own quota");
    }

    /// At most one live last-resort coin per owner and tier: a later-expiring one replaces it,
    /// an older or repeated upload is ignored, and tiers are independent.
    pub fn last_resort_newest_kept<S: DirectoryStore>(s: &S) {
        let bob = setup(s);
        let (old, new) = (lr(Tier::Gold, 0), lr(Tier::Gold, 1));
        let now = T0 + DAY;
        assert_eq!(must(s.upload(&bob, core::slice::from_ref(&old), now), "upload old"), 1);
        assert_eq!(must(s.upload(&bob, core::slice::from_ref(&new), now), "upload new"), 1);
        assert_eq!(must(s.upload(&bob, core::slice::from_ref(&old), now), "re-upload old"), 0);
        assert_eq!(must(s.upload(&bob, core::slice::from_ref(&new), now), "re-upload new"), 0);
        assert_eq!(must(s.upload(&bob, &[lr(Tier::Bronze, 0)], now), "another tier"), 1);
        assert_eq!(ids(&must(s.claim(&bob, &ALICE, Tier::Gold, 1, None, now + 1), "claim")), [new.key_id]);
        assert_eq!(
            ids(&must(s.claim(&bob, &ALICE, Tier::Bronze, 1, None, now + 1), "claim")),
            [lr(Tier::Bronze, 0).key_id]
        );
    }

    /// A last-resort coin's upload expiry limit is its own (a week and a day ahead at most), and
    /// a refused upload stores nothing of its batch.
    pub fn last_resort_upload_expiry_checked<S: DirectoryStore>(s: &S) {
        let bob = setup(s);
        let last = lr(Tier::Silver, 0);
        let too_early = last.expires_at - crate::protocol::MAX_LAST_RESORT_LIFETIME_SECS - 1;
        let batch = [fixtures().bob.coin(Tier::Silver, 0).clone(), last.clone()];
        expect_core(s.upload(&bob, &batch, too_early), Error::BadExpiry, "expiry too far ahead");
        assert!(must(s.claim(&bob, &ALICE, Tier::Silver, 1, None, too_early + 1), "claim").is_empty());
        assert_eq!(must(s.upload(&bob, &batch, T0), "upload"), 2);
    }

    /// A last-resort coin is handed out only while it is claimable and `purge_stale` drops it
    /// once it is not.
    pub fn last_resort_purged_when_stale<S: DirectoryStore>(s: &S) {
        let bob = setup(s);
        let last = lr(Tier::Bronze, 0);
        must(s.upload(&bob, core::slice::from_ref(&last), T0), "upload");
        let unusable = last.expires_at - s.policy().coin_min_life_secs;
        assert_eq!(must(s.claim(&bob, &ALICE, Tier::Bronze, 1, None, unusable - 1), "claim").len(), 1);
        assert!(must(s.claim(&bob, &ERIN, Tier::Bronze, 1, None, unusable), "claim").is_empty());
        assert_eq!(must(s.purge_stale(unusable - 1), "purge_stale"), 0);
        assert_eq!(must(s.purge_stale(unusable), "purge_stale"), 1);
        // Gone: a newer one is stored in its place whatever the order.
        assert_eq!(must(s.upload(&bob, core::slice::from_ref(&last), T0), "re-upload after the purge"), 1);
    }
}

/// Concurrency cases (for `Sync` stores).
pub mod concurrency {
    use std::sync::Barrier;
    use std::thread;

    use super::*;
    use crate::StoreError;
    use crate::store::VaultStore;

    /// Ten threads open one last-resort key with the same first message at once: exactly one
    /// succeeds, the others are `Replay`.
    pub fn last_resort_replay_race<S: VaultStore + Sync>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Bronze, 0);
        must(s.put(&e), "put");
        let go = Barrier::new(10);
        let results: Vec<Result<bool, Option<Error>>> = thread::scope(|sc| {
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let go = &go;
                    let id = e.key_id;
                    sc.spawn(move || {
                        go.wait();
                        s.open_last_resort(&id, &digest(1), T0 + 1).map_err(|e| e.as_core().copied())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("opener thread panicked")).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let replays = results.iter().filter(|r| **r == Err(Some(Error::Replay))).count();
        assert_eq!((ok, replays), (1, 9), "results: {results:?}");
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
    }

    /// Twice as many threads as the record holds open one key with different first messages at
    /// once: exactly the record's size succeed, exactly one of them retires the key, the rest are
    /// `KeyAlreadyBurned`, and the counters count one burn.
    pub fn last_resort_retires_once<S: VaultStore + Sync>(s: &S) {
        let e = fixtures().bob.last_resort_entry(Tier::Silver, 0);
        must(s.put(&e), "put");
        let max = max_opens(s.policy()) as usize;
        let threads = 2 * max;
        let go = Barrier::new(threads);
        let results: Vec<Result<bool, Option<Error>>> = thread::scope(|sc| {
            let handles: Vec<_> = (0..threads)
                .map(|n| {
                    let go = &go;
                    let id = e.key_id;
                    sc.spawn(move || {
                        go.wait();
                        s.open_last_resort(&id, &digest(n as u8), T0 + 1).map_err(|e| e.as_core().copied())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("opener thread panicked")).collect()
        });
        let opened = results.iter().filter(|r| r.is_ok()).count();
        let retired = results.iter().filter(|r| **r == Ok(true)).count();
        let late = results.iter().filter(|r| **r == Err(Some(Error::KeyAlreadyBurned))).count();
        assert_eq!((opened, retired, late), (max, 1, threads - max), "results: {results:?}");
        assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Burned));
        assert_eq!(
            must(s.stats(), "stats"),
            VaultStats { active: TierCounts::default(), total_burned: 1, total_expired: 0 }
        );
    }
}
