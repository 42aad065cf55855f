//! The ratchet fed arbitrary envelopes for one session: `Messenger::receive` on a `MemoryStore`
//! whose owner (Bob) pinned the sender (Alice) and holds her open chain ([`RatchetFixture`]).
//! Never panics; a refused envelope changes nothing (session record and version, vault, pin);
//! an accepted one is from Alice, and the same bytes are refused the second time.
//!
//! Every input starts from the fixture's state (the store is rebuilt for each), so a run is
//! reproducible from its input alone.
#![no_main]

use std::sync::OnceLock;

use aqm_core::UserId;
use aqm_core::messaging::Messenger;
use aqm_core::store::{Direction, PinStore, SessionStore, StoredSession, VaultStore};
use aqm_core::vault::{KeyStatus, VaultStats};
use aqm_fuzz::{Counter, RECEIVE_AT, RatchetFixture, Store};
use libfuzzer_sys::fuzz_target;

static FIXTURE: OnceLock<RatchetFixture> = OnceLock::new();

/// Everything a receive may change.
#[derive(Debug, PartialEq)]
struct State {
    session: Option<StoredSession>,
    stats: VaultStats,
    statuses: Vec<Option<KeyStatus>>,
    pin: Option<aqm_core::pins::Pinned>,
}

fn state(store: &Store, fixture: &RatchetFixture, alice: &UserId) -> State {
    State {
        session: store.load_session(alice, Direction::Receive).expect("loads"),
        stats: store.stats().expect("stats"),
        statuses: fixture.vault.iter().map(|(e, _)| store.status(&e.key_id).expect("status")).collect(),
        pin: store.pinned(alice).expect("pin"),
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = FIXTURE.get_or_init(RatchetFixture::new);
    let alice = fixture.alice.user_id;
    let store = fixture.store();
    let bob = Messenger::new(&*store, &fixture.bob, &fixture.bob_dk);
    let before = state(&store, fixture, &alice);
    match bob.receive(data, RECEIVE_AT, &mut Counter(3)) {
        Err(_) => assert_eq!(state(&store, fixture, &alice), before, "a refused envelope changed the state"),
        Ok(got) => {
            assert_eq!(got.from, alice);
            let after = state(&store, fixture, &alice);
            assert_ne!(after.session, before.session, "an accepted message saved no session");
            assert!(bob.receive(data, RECEIVE_AT, &mut Counter(4)).is_err(), "a message was accepted twice");
            assert_eq!(state(&store, fixture, &alice), after, "a refused replay changed the state");
        }
    }
});
