//! The core's conformance kit, unchanged, against a file-backed redb store (fresh file per case,
//! durable commits: the real code path).

use aqm_core::Policy;
use aqm_storage_redb::RedbStore;

struct Fixture {
    store: RedbStore,
    _dir: tempfile::TempDir,
}

fn open() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("conformance.redb"), Policy::DEFAULT).expect("open redb store");
    Fixture { store, _dir: dir }
}

aqm_core::vault_conformance!(open => |fx| &fx.store);
aqm_core::session_conformance!(open => |fx| &fx.store);
aqm_core::inventory_conformance!(open => |fx| &fx.store);
aqm_core::directory_conformance!(open => |fx| &fx.store);
aqm_core::concurrency_conformance!(open => |fx| &fx.store);

/// After every case family the store must also pass its own audit; one mixed run checks it.
#[test]
fn audit_is_clean_after_the_kit_cases() {
    let fx = open();
    aqm_core::testkit::inventory::store_after_select_refills(&fx.store);
    aqm_core::testkit::vault::stats_after_operations(&fx.store);
    let audit = fx.store.audit().expect("audit");
    assert!(audit.is_consistent(), "{:#?}", audit.problems);
}
