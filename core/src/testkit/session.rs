//! Session cases: records per peer and direction, saved by compare-and-swap on their version, and
//! the atomic burn-and-save that opening a coin performs. Every case takes a fresh, empty store;
//! the numbers it checks come from the store's own policy.

use super::fixtures::{T0, expect_core, fixtures, must};
use crate::store::{Direction, SessionBlob, SessionStore, SessionVersion, StoredSession};
use crate::vault::KeyStatus;
use crate::{Error, KeyId, Tier, UserId};

pub use super::last_resort::session::*;

const ALICE: UserId = UserId([0xA1; 16]);
const ERIN: UserId = UserId([0xE4; 16]);

/// A recognisable record of `len` bytes.
fn blob(tag: u8, len: usize) -> SessionBlob {
    (0..len).map(|i| tag ^ (i as u8)).collect()
}

fn load<S: SessionStore>(s: &S, peer: &UserId, dir: Direction) -> Option<StoredSession> {
    must(s.load_session(peer, dir), "load")
}

/// No record → None.
pub fn load_missing_is_none<S: SessionStore>(s: &S) {
    assert_eq!(load(s, &ALICE, Direction::Send), None);
    assert_eq!(load(s, &ALICE, Direction::Receive), None);
}

/// Records are kept per peer and per direction, byte for byte, up to the maximum size; a new
/// record starts at version 1.
pub fn save_load_per_peer_and_direction<S: SessionStore>(s: &S) {
    let records = [
        (ALICE, Direction::Send, blob(1, 100)),
        (ALICE, Direction::Receive, blob(2, 1)),
        (ERIN, Direction::Send, blob(3, crate::store::MAX_SESSION_BLOB)),
    ];
    for (peer, dir, b) in &records {
        assert_eq!(must(s.save_session(peer, *dir, b, None), "save"), SessionVersion::FIRST);
    }
    for (peer, dir, b) in &records {
        assert_eq!(load(s, peer, *dir), Some(StoredSession { blob: b.clone(), version: SessionVersion::FIRST }));
    }
    assert_eq!(load(s, &ERIN, Direction::Receive), None);
}

/// Saving at the loaded version replaces the record and moves the version on by one.
pub fn save_replaces<S: SessionStore>(s: &S) {
    let v1 = must(s.save_session(&ALICE, Direction::Send, &blob(1, 300), None), "save");
    let v2 = must(s.save_session(&ALICE, Direction::Send, &blob(9, 20), Some(v1)), "save again");
    assert_eq!(v2, SessionVersion(v1.0 + 1));
    assert_eq!(load(s, &ALICE, Direction::Send), Some(StoredSession { blob: blob(9, 20), version: v2 }));
}

/// A save at a version that is no longer current (older, newer, or "none" over an existing
/// record) is `SessionConflict` and writes nothing.
pub fn stale_version_refused<S: SessionStore>(s: &S) {
    let v1 = must(s.save_session(&ALICE, Direction::Send, &blob(1, 30), None), "save");
    let v2 = must(s.save_session(&ALICE, Direction::Send, &blob(2, 30), Some(v1)), "save");
    let current = load(s, &ALICE, Direction::Send);
    for stale in [Some(v1), Some(SessionVersion(v2.0 + 1)), None] {
        expect_core(s.save_session(&ALICE, Direction::Send, &blob(7, 30), stale), Error::SessionConflict, "stale save");
        assert_eq!(load(s, &ALICE, Direction::Send), current, "a refused save wrote");
    }
    // The other direction has its own record and version.
    assert_eq!(load(s, &ALICE, Direction::Receive), None);
}

/// "None" creates only if absent: a second create is refused, and so is a save at a version of
/// a record that does not exist.
pub fn create_only_if_absent<S: SessionStore>(s: &S) {
    expect_core(
        s.save_session(&ERIN, Direction::Receive, &blob(3, 8), Some(SessionVersion::FIRST)),
        Error::SessionConflict,
        "save over a missing record",
    );
    assert_eq!(load(s, &ERIN, Direction::Receive), None);
    must(s.save_session(&ERIN, Direction::Receive, &blob(4, 8), None), "create");
    expect_core(s.save_session(&ERIN, Direction::Receive, &blob(5, 8), None), Error::SessionConflict, "second create");
    assert_eq!(load(s, &ERIN, Direction::Receive).map(|r| r.blob), Some(blob(4, 8)));
}

/// Opening a coin burns its key and saves the receive session in one step.
pub fn burn_and_save<S: SessionStore>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Silver, 0, T0);
    must(s.put(&e), "put");
    let send_v = must(s.save_session(&ALICE, Direction::Send, &blob(5, 10), None), "save send");
    let v = must(s.burn_and_save_session(&e.key_id, T0 + 1, &ALICE, &blob(6, 64), None), "burn_and_save_session");
    assert_eq!(v, SessionVersion::FIRST);
    assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Burned));
    assert_eq!(load(s, &ALICE, Direction::Receive), Some(StoredSession { blob: blob(6, 64), version: v }));
    assert_eq!(
        load(s, &ALICE, Direction::Send),
        Some(StoredSession { blob: blob(5, 10), version: send_v }),
        "send chain untouched"
    );
    let stats = must(s.stats(), "stats");
    assert_eq!((stats.active.total(), stats.total_burned), (0, 1));
    // A second coin re-keys the same receive session at its current version.
    let e2 = fixtures().bob.vault_entry(Tier::Bronze, 0, T0);
    must(s.put(&e2), "put");
    let v2 = must(s.burn_and_save_session(&e2.key_id, T0 + 2, &ALICE, &blob(7, 64), Some(v)), "re-key");
    assert_eq!(v2, SessionVersion(v.0 + 1));
}

/// On a burned, missing or expired key the session is NOT saved and nothing changes.
pub fn burn_and_save_refused_saves_nothing<S: SessionStore>(s: &S) {
    let bob = &fixtures().bob;
    let burned = bob.vault_entry(Tier::Gold, 0, T0);
    let live = bob.vault_entry(Tier::Bronze, 0, T0);
    must(s.put(&burned), "put");
    must(s.put(&live), "put");
    must(s.burn(&burned.key_id, T0 + 1), "burn");
    let old = blob(7, 40);
    let v = must(s.save_session(&ALICE, Direction::Receive, &old, None), "save");
    let before = must(s.stats(), "stats");

    expect_core(
        s.burn_and_save_session(&burned.key_id, T0 + 2, &ALICE, &blob(8, 40), Some(v)),
        Error::KeyAlreadyBurned,
        "burned key",
    );
    expect_core(
        s.burn_and_save_session(&KeyId([0x42; 16]), T0 + 2, &ALICE, &blob(8, 40), Some(v)),
        Error::KeyNotFound,
        "missing key",
    );
    expect_core(
        s.burn_and_save_session(&live.key_id, s.policy().vault_deadline(live.expires_at), &ERIN, &blob(8, 40), None),
        Error::CoinExpired,
        "expired key",
    );
    assert_eq!(load(s, &ALICE, Direction::Receive), Some(StoredSession { blob: old, version: v }), "saved anyway");
    assert_eq!(load(s, &ERIN, Direction::Receive), None, "session must not be saved");
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(must(s.status(&live.key_id), "status"), Some(KeyStatus::Active));
}

/// A burn-and-save at a stale session version burns nothing and saves nothing: the coin stays
/// ACTIVE for the retry.
pub fn burn_and_save_stale_version_refused<S: SessionStore>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Silver, 1, T0);
    must(s.put(&e), "put");
    let v1 = must(s.save_session(&ALICE, Direction::Receive, &blob(1, 50), None), "save");
    let v2 = must(s.save_session(&ALICE, Direction::Receive, &blob(2, 50), Some(v1)), "save");
    let before = must(s.stats(), "stats");
    for stale in [Some(v1), None] {
        expect_core(
            s.burn_and_save_session(&e.key_id, T0 + 1, &ALICE, &blob(3, 50), stale),
            Error::SessionConflict,
            "stale burn_and_save",
        );
    }
    assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Active));
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(load(s, &ALICE, Direction::Receive), Some(StoredSession { blob: blob(2, 50), version: v2 }));
    must(s.burn_and_save_session(&e.key_id, T0 + 1, &ALICE, &blob(3, 50), Some(v2)), "current version");
    assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Burned));
}
