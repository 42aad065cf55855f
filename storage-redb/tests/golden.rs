//! Golden files of the at-rest format (docs/architecture.md §4): a file written by this crate at each
//! supported format version is committed under `tests/golden/`, and every build must open it and
//! read back exactly what was written. A change to a record type (`src/records.rs`) or to the
//! table layout that breaks this test needs a new format version, not an edited golden file.
//!
//! The contents come from the kit's deterministic fixtures (seeded coins and identities), so the
//! test recomputes what the file must hold. To write the file again (only when adding a new
//! format version, under a new name):
//! `cargo test -p aqm-storage-redb --test golden -- --ignored write_golden_v4`.
//!
//! A file of a format this build no longer reads stays committed too (`format-v3.redb`: contact
//! metadata in clear): it must be refused with a typed error naming both versions and left
//! byte for byte as it was. The format-4 file is sealed under the fixtures' device key.

use std::path::{Path, PathBuf};

use aqm_core::Policy;
use aqm_core::pins::Trust;
use aqm_core::store::{Direction, DirectoryStore, InventoryStore, PinStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::testkit::fixtures::{T0, fixtures, must};
use aqm_core::vault::{KeyStatus, VaultStats};
use aqm_core::{Priority, Tier, TierCounts, UserId};
use aqm_storage_redb::{Error, FORMAT_VERSION, RedbStore};

const ALICE: UserId = UserId([0xA1; 16]);
const IDEM: [u8; 16] = [0x1D; 16];

fn golden(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/format-v{version}.redb"))
}

fn session_blob() -> SessionBlob {
    (0..200u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Write one record of every table through the public API.
fn fill(s: &RedbStore) {
    let f = fixtures();
    // Vault: one ACTIVE key, one BURNED (counters move with them).
    must(s.put(&f.bob.vault_entry(Tier::Gold, 0, T0)), "put gold");
    let silver = f.bob.vault_entry(Tier::Silver, 0, T0);
    must(s.put(&silver), "put silver");
    must(s.burn(&silver.key_id, T0 + 1), "burn silver");
    // Sessions and pins.
    must(s.save_session(&ALICE, Direction::Send, &session_blob(), None), "save session");
    must(s.pin_identity(f.carol.identity.public(), Trust::Exchanged), "pin carol");
    // Inventory: a BESTIE with two SILVER coins (FIFO sequence persisted).
    must(s.register_contact(&f.bob.as_contact(Priority::Bestie, T0).requiring_pq()), "register bob");
    must(s.store_coin(&f.bob.id(), f.bob.coin(Tier::Silver, 0), T0), "store 0");
    must(s.store_coin(&f.bob.id(), f.bob.coin(Tier::Silver, 1), T0), "store 1");
    // Directory: a registered identity, three coins, one claimed with an idempotency key (quota
    // and reply records).
    must(s.register_identity(f.dave.identity.public(), f.dave.proof()), "register dave");
    let coins: Vec<_> = (0..3).map(|i| f.dave.coin(Tier::Bronze, i).clone()).collect();
    must(s.upload(&f.dave.id(), &coins, T0), "upload");
    must(s.claim(&f.dave.id(), &ALICE, Tier::Bronze, 1, Some(IDEM), T0 + 2), "claim");
}

/// Writes `tests/golden/format-v4.redb` (compacted). Ignored: the committed file is the
/// reference; see the module docs.
#[test]
#[ignore = "writes the committed golden file; run only when adding a format version"]
fn write_golden_v4() {
    assert_eq!(FORMAT_VERSION, 4, "write a golden file under the new version's name");
    let path = golden(4);
    let _ = std::fs::remove_file(&path);
    {
        let s = RedbStore::open(&path, Policy::DEFAULT, &fixtures().device_key).expect("create");
        fill(&s);
    }
    let mut db = redb::Database::open(&path).expect("reopen");
    db.compact().expect("compact");
}

#[test]
fn golden_v3_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("format-v3.redb");
    std::fs::copy(golden(3), &path).expect("the golden file is committed");
    let before = std::fs::read(&path).expect("read");
    let dk = &fixtures().device_key;
    let err = RedbStore::open(&path, Policy::DEFAULT, dk).expect_err("a format-v3 file is refused");
    assert!(matches!(err, Error::UnsupportedFormat { found: 3, supported: 4 }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("format v3") && msg.contains("format v4") && msg.contains("not changed"), "{msg}");
    let err = RedbStore::open_unsealed(&path, Policy::DEFAULT).expect_err("unsealed too");
    assert!(matches!(err, Error::UnsupportedFormat { found: 3, supported: 4 }), "{err:?}");
    assert_eq!(std::fs::read(&path).expect("read"), before, "a refused file is left byte for byte");
}

#[test]
fn golden_v4_opens_and_reads_back() {
    // Opening checks the format in a write transaction: work on a copy.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("format-v4.redb");
    std::fs::copy(golden(4), &path).expect("the golden file is committed");
    let f = fixtures();
    let s = RedbStore::open(&path, Policy::DEFAULT, &f.device_key).expect("a format-v4 file opens");

    let gold = f.bob.vault_entry(Tier::Gold, 0, T0);
    let silver = f.bob.vault_entry(Tier::Silver, 0, T0);
    assert_eq!(must(s.get(&gold.key_id, T0 + 3), "get").as_ref(), Some(&gold));
    let seed = must(gold.sealed.open(&f.device_key, &gold.key_id, Tier::Gold), "the sealed seed still opens");
    assert_eq!(seed.as_bytes().len(), Tier::Gold.seed_len());
    assert_eq!(must(s.status(&silver.key_id), "status"), Some(KeyStatus::Burned));
    assert_eq!(
        must(s.stats(), "stats"),
        VaultStats { active: TierCounts([1, 0, 0]), total_burned: 1, total_expired: 0 }
    );

    let session = must(s.load_session(&ALICE, Direction::Send), "load").expect("session");
    assert_eq!((session.blob, session.version.0), (session_blob(), 1));
    let pin = must(s.pinned(&f.carol.id()), "pinned").expect("pin");
    assert_eq!((&pin.identity, pin.trust), (f.carol.identity.public(), Trust::Exchanged));

    let meta = must(s.contact(&f.bob.id()), "contact").expect("contact");
    assert_eq!(meta, f.bob.as_contact(Priority::Bestie, T0).requiring_pq());
    assert_eq!(must(s.counts(&f.bob.id()), "counts"), TierCounts([0, 2, 0]));

    assert_eq!(must(s.identity(&f.dave.id()), "identity").as_ref(), Some(f.dave.identity.public()));
    assert_eq!(must(s.available(&f.dave.id()), "available"), TierCounts([0, 0, 2]));
    let retry = must(s.claim(&f.dave.id(), &ALICE, Tier::Bronze, 1, Some(IDEM), T0 + 5), "retried claim");
    assert_eq!(retry.as_slice(), [f.dave.coin(Tier::Bronze, 0).clone()], "the stored reply comes back");

    // The FIFO sequence survived: the oldest coin first, and a new coin queues behind the rest.
    let first = must(s.select_coin(&f.bob.id(), Tier::Silver, Tier::Silver, T0 + 5), "select").coin.expect("coin");
    assert_eq!(&first.coin, f.bob.coin(Tier::Silver, 0));
    let audit = s.audit().expect("audit");
    assert!(audit.is_consistent(), "{:#?}", audit.problems);
}
