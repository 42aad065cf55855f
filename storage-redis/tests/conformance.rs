//! The core's conformance kit, unchanged, against the machine's Redis: each case gets a fresh
//! store under its own random prefix, deleted when the case ends.

mod common;

use common::TestStore;

fn fresh() -> TestStore {
    TestStore::new("kit")
}

aqm_core::vault_conformance!(fresh => |fx| &fx.0);
aqm_core::session_conformance!(fresh => |fx| &fx.0);
aqm_core::inventory_conformance!(fresh => |fx| &fx.0);
aqm_core::vault_concurrency_conformance!(fresh => |fx| &fx.0);
aqm_core::inventory_concurrency_conformance!(fresh => |fx| &fx.0);
aqm_core::session_concurrency_conformance!(fresh => |fx| &fx.0);
