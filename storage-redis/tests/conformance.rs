//! The core's conformance kit, unchanged, against the machine's Redis: each case gets a fresh
//! store under its own random prefix, deleted when the case ends.

mod common;

use aqm_core::Policy;
use common::TestStore;

fn fresh(policy: Policy) -> TestStore {
    TestStore::with_policy("kit", policy)
}

// Redis is the phones' device store: it implements no coin directory (the directory runs on
// the server, PostgreSQL), so the `directory` family is not declared.
aqm_core::conformance!(fresh => |fx| &fx.0; vault, session, pins, inventory; sync);
