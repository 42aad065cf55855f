//! The core's conformance kit, unchanged, against a file-backed redb store (fresh file per case,
//! durable commits: the real code path). Every family, no exclusions.

use aqm_core::Policy;
use aqm_core::crypto::DeviceKey;
use aqm_storage_redb::RedbStore;

/// The device key the store seals its contact metadata under.
const DEVICE_KEY: DeviceKey = DeviceKey::from_bytes([0xD7; 32]);

struct Fixture {
    store: RedbStore,
    _dir: tempfile::TempDir,
}

fn open(policy: Policy) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("conformance.redb"), policy, &DEVICE_KEY).expect("open redb store");
    Fixture { store, _dir: dir }
}

aqm_core::conformance!(open => |fx| &fx.store; vault, session, pins, inventory, directory; sync);

/// A file from before formats were versioned (protocol v1: AQM tables, no format record), one of
/// format 2 (core types stored raw) and one of a newer format are all refused at open with an
/// error naming both versions.
#[test]
fn other_formats_are_refused_with_both_versions_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let v1 = dir.path().join("v1.redb");
    {
        let db = redb::Database::create(&v1).expect("create");
        let tx = db.begin_write().expect("write");
        let vault: redb::TableDefinition<'_, [u8; 16], &[u8]> = redb::TableDefinition::new("vault");
        tx.open_table(vault).expect("v1 vault table");
        tx.commit().expect("commit");
    }
    let err = RedbStore::open(&v1, Policy::DEFAULT, &DEVICE_KEY).expect_err("v1 refused");
    assert!(matches!(err, aqm_storage_redb::Error::UnsupportedFormat { found: 1, supported: 4 }), "{err:?}");
    assert!(err.to_string().contains("format v1") && err.to_string().contains("format v4"), "{err}");

    for other in [2, 3, 5] {
        let path = dir.path().join(format!("v{other}.redb"));
        {
            let db = redb::Database::create(&path).expect("create");
            let tx = db.begin_write().expect("write");
            let format: redb::TableDefinition<'_, &str, u32> = redb::TableDefinition::new("aqm_format");
            tx.open_table(format).expect("format table").insert("format", other).expect("insert");
            tx.commit().expect("commit");
        }
        let err = RedbStore::open(&path, Policy::DEFAULT, &DEVICE_KEY).expect_err("other format refused");
        assert!(
            matches!(err, aqm_storage_redb::Error::UnsupportedFormat { found, supported: 4 } if found == other),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("format v{other}")) && err.to_string().contains("format v4"),
            "{err}"
        );
    }
    // A current file reopens.
    let ok = dir.path().join("v4.redb");
    drop(RedbStore::open(&ok, Policy::DEFAULT, &DEVICE_KEY).expect("create v4"));
    RedbStore::open(&ok, Policy::DEFAULT, &DEVICE_KEY).expect("reopen v4");
}

/// After every case family the store must also pass its own audit; one mixed run checks it.
#[test]
fn audit_is_clean_after_the_kit_cases() {
    let fx = open(Policy::DEFAULT);
    aqm_core::testkit::inventory::store_after_select_refills(&fx.store);
    aqm_core::testkit::vault::stats_after_operations(&fx.store);
    let audit = fx.store.audit().expect("audit");
    assert!(audit.is_consistent(), "{:#?}", audit.problems);
}
