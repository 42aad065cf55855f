//! Session cases: records per peer and direction, and the atomic burn-and-save that opening a
//! coin performs. Every case takes a fresh, empty store built with [`Policy::DEFAULT`].

use super::fixtures::{T0, expect_core, fixtures, must};
use crate::store::{Direction, SessionBlob, SessionStore};
use crate::vault::KeyStatus;
use crate::{Error, KeyId, Policy, Tier, UserId};

const P: Policy = Policy::DEFAULT;
const ALICE: UserId = UserId([0xA1; 16]);
const ERIN: UserId = UserId([0xE4; 16]);

/// A recognisable record of `len` bytes.
fn blob(tag: u8, len: usize) -> SessionBlob {
    (0..len).map(|i| tag ^ (i as u8)).collect()
}

/// No record → None.
pub fn load_missing_is_none<S: SessionStore>(s: &S) {
    assert_eq!(must(s.load_session(&ALICE, Direction::Send), "load"), None);
    assert_eq!(must(s.load_session(&ALICE, Direction::Receive), "load"), None);
}

/// Records are kept per peer and per direction, byte for byte, up to the maximum size.
pub fn save_load_per_peer_and_direction<S: SessionStore>(s: &S) {
    let records = [
        (ALICE, Direction::Send, blob(1, 100)),
        (ALICE, Direction::Receive, blob(2, 1)),
        (ERIN, Direction::Send, blob(3, crate::store::MAX_SESSION_BLOB)),
    ];
    for (peer, dir, b) in &records {
        must(s.save_session(peer, *dir, b), "save");
    }
    for (peer, dir, b) in &records {
        assert_eq!(must(s.load_session(peer, *dir), "load").as_ref(), Some(b));
    }
    assert_eq!(must(s.load_session(&ERIN, Direction::Receive), "load"), None);
}

/// Saving again replaces the record.
pub fn save_replaces<S: SessionStore>(s: &S) {
    must(s.save_session(&ALICE, Direction::Send, &blob(1, 300)), "save");
    must(s.save_session(&ALICE, Direction::Send, &blob(9, 20)), "save again");
    assert_eq!(must(s.load_session(&ALICE, Direction::Send), "load"), Some(blob(9, 20)));
}

/// Opening a coin burns its key and saves the receive session in one step.
pub fn burn_and_save<S: SessionStore>(s: &S) {
    let e = fixtures().bob.vault_entry(Tier::Silver, 0, T0);
    must(s.put(&e), "put");
    must(s.save_session(&ALICE, Direction::Send, &blob(5, 10)), "save send");
    must(s.burn_and_save_session(&e.key_id, T0 + 1, &ALICE, &blob(6, 64)), "burn_and_save_session");
    assert_eq!(must(s.status(&e.key_id), "status"), Some(KeyStatus::Burned));
    assert_eq!(must(s.load_session(&ALICE, Direction::Receive), "load"), Some(blob(6, 64)));
    assert_eq!(must(s.load_session(&ALICE, Direction::Send), "load"), Some(blob(5, 10)), "send chain untouched");
    let stats = must(s.stats(), "stats");
    assert_eq!((stats.active.total(), stats.total_burned), (0, 1));
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
    must(s.save_session(&ALICE, Direction::Receive, &old), "save");
    let before = must(s.stats(), "stats");

    expect_core(
        s.burn_and_save_session(&burned.key_id, T0 + 2, &ALICE, &blob(8, 40)),
        Error::KeyAlreadyBurned,
        "burned key",
    );
    expect_core(
        s.burn_and_save_session(&KeyId([0x42; 16]), T0 + 2, &ALICE, &blob(8, 40)),
        Error::KeyNotFound,
        "missing key",
    );
    expect_core(
        s.burn_and_save_session(&live.key_id, T0 + P.vault_ttl_secs, &ERIN, &blob(8, 40)),
        Error::KeyNotFound,
        "expired key",
    );
    assert_eq!(must(s.load_session(&ALICE, Direction::Receive), "load"), Some(old), "session must not be saved");
    assert_eq!(must(s.load_session(&ERIN, Direction::Receive), "load"), None, "session must not be saved");
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(must(s.status(&live.key_id), "status"), Some(KeyStatus::Active));
}
