//! At rest: the database file never holds a secret or a contact's metadata in clear.
//!
//! One workload (the device's own coins minted into the vault, some burned and purged, one a
//! last-resort coin with a recorded open and a slot in the file's local directory; 50
//! registered contacts with display names, cached coins of their own, pinned identities and
//! sessions both ways) is written to a sealed file and to an unsealed one. The raw bytes of the
//! sealed file contain no coin seed, identity seed or device key (as before format 4), and no
//! contact id, display name, key id, coin public key or identity key either; the unsealed file
//! does contain them, so the scan is looking at real, uncompressed records.

use std::collections::HashSet;
use std::path::Path;

use aqm_core::coin::{self, MintedCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::pins::Trust;
use aqm_core::store::{Direction, DirectoryStore, InventoryStore, PinStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::vault::{self, OpenDigest};
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redb::{Error, RedbStore};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const T0: u64 = 1_700_000_000;
const CONTACTS: usize = 50;

/// Every 16-byte window of a file, so that thousands of needles are checked in one pass.
struct Scan(HashSet<[u8; 16]>);

impl Scan {
    fn of(path: &Path) -> Scan {
        let bytes = std::fs::read(path).expect("read database file");
        Scan(bytes.windows(16).map(|w| w.try_into().expect("16 bytes")).collect())
    }
    /// Whether any 16-byte stretch of `needle` (at least 16 bytes) appears in the file.
    fn any_part(&self, needle: &[u8]) -> bool {
        assert!(needle.len() >= 16, "needles are at least 16 bytes");
        needle.windows(16).any(|w| self.0.contains(<&[u8; 16]>::try_from(w).expect("16 bytes")))
    }
}

/// What the workload wrote that must not appear in a sealed file.
struct Written {
    device_key: DeviceKey,
    own: Vec<MintedCoin>,
    identities: Vec<Identity>,
    names: Vec<String>,
    cached: Vec<MintedCoin>,
    digests: Vec<OpenDigest>,
}

fn workload(store: &RedbStore, seed: u64) -> Written {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let me = Identity::generate(&mut rng);
    let device_key = DeviceKey::random(&mut rng);
    let mut own = Vec::new();
    for tier in [Tier::Gold, Tier::Silver, Tier::Bronze] {
        for _ in 0..3 {
            let m = coin::mint(&me, tier, &device_key, T0, &mut rng).expect("mint own");
            store.put(&m.vault).expect("put");
            own.push(m);
        }
    }
    // A last-resort coin: its kind and an open recorded in the vault, its slot in the directory.
    let lr = coin::mint_last_resort(&me, Tier::Bronze, &device_key, T0, &mut rng).expect("mint last resort");
    store.put(&lr.vault).expect("put last resort");
    let digest = vault::open_digest(&lr.public.key_id, b"the KEM ciphertext of a first message");
    assert!(!store.open_last_resort(&lr.public.key_id, &digest, T0 + 1).expect("open last resort"));
    store.register_identity(me.public(), &me.registration_proof(&mut rng).expect("proof")).expect("register me");
    assert_eq!(store.upload(&me.user_id(), core::slice::from_ref(&lr.public), T0).expect("upload"), 1);
    let (mut identities, mut names, mut cached) = (Vec::new(), Vec::new(), Vec::new());
    let theirs = DeviceKey::random(&mut rng);
    for i in 0..CONTACTS {
        let contact = Identity::generate(&mut rng);
        let name = format!("display name of contact {i:02}");
        let meta = ContactMeta::new(contact.user_id(), Priority::Bestie, &name, T0 + i as u64).expect("meta");
        assert!(store.register_contact(&meta).expect("register"));
        store.pin_identity(contact.public(), Trust::Exchanged).expect("pin");
        let tiers: &[Tier] =
            if i % 10 == 0 { &[Tier::Gold, Tier::Silver, Tier::Bronze] } else { &[Tier::Silver, Tier::Bronze] };
        for &tier in tiers {
            let m = coin::mint(&contact, tier, &theirs, T0, &mut rng).expect("mint theirs");
            store.store_coin(&contact.user_id(), &m.public, T0).expect("store coin");
            cached.push(m);
        }
        let blob = SessionBlob::from_slice(&[0xA5; 300]).expect("blob");
        store.save_session(&contact.user_id(), Direction::Send, &blob, None).expect("save send");
        store.save_session(&contact.user_id(), Direction::Receive, &blob, None).expect("save receive");
        identities.push(contact);
        names.push(name);
    }
    // Receive with one of the own coins, burn another, select a cached one: the write paths
    // beyond plain inserts.
    let blob = SessionBlob::from_slice(&[0x5A; 300]).expect("blob");
    let peer = identities[0].user_id();
    let current = store.load_session(&peer, Direction::Receive).expect("load").expect("session").version;
    store.burn_and_save_session(&own[0].public.key_id, T0 + 5, &peer, &blob, Some(current)).expect("burn+save");
    store.burn(&own[3].public.key_id, T0 + 5).expect("burn");
    store.purge(T0 + Policy::DEFAULT.burn_grace_secs + 10).expect("purge");
    store.select_coin(&identities[1].user_id(), Tier::Silver, Tier::Silver, T0 + 6).expect("select");
    let audit = store.audit().expect("audit");
    assert!(audit.is_consistent(), "{:#?}", audit.problems);
    own.push(lr);
    Written { device_key, own, identities, names, cached, digests: vec![digest] }
}

/// Every needle of the contact graph: (what, bytes).
fn graph_needles(w: &Written) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (id, name) in w.identities.iter().zip(&w.names) {
        out.push((format!("contact id {}", id.user_id()), id.user_id().0.to_vec()));
        out.push((format!("display name {name:?}"), name.as_bytes().to_vec()));
        out.push((format!("identity Ed25519 key of {}", id.user_id()), id.public().ed25519.to_vec()));
        out.push((format!("identity ML-DSA key of {}", id.user_id()), id.public().mldsa65.to_vec()));
    }
    for m in w.cached.iter().chain(&w.own) {
        out.push((format!("key id {}", m.public.key_id), m.public.key_id.0.to_vec()));
        out.push((format!("{} public key of {}", m.public.tier, m.public.key_id), m.public.public_key.to_vec()));
    }
    for d in &w.digests {
        out.push(("a last-resort open digest".to_owned(), d.0.to_vec()));
    }
    out
}

#[test]
fn sealed_file_holds_no_secret_and_no_contact_metadata_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sealed_path, clear_path) = (dir.path().join("sealed.redb"), dir.path().join("clear.redb"));
    let store_key = DeviceKey::from_bytes([0x5E; 32]);
    let w = {
        let store = RedbStore::open(&sealed_path, Policy::DEFAULT, &store_key).expect("open sealed");
        workload(&store, 0x5EC2E7)
    };
    {
        let store = RedbStore::open_unsealed(&clear_path, Policy::DEFAULT).expect("open unsealed");
        workload(&store, 0x5EC2E7);
    }
    let sealed = Scan::of(&sealed_path);
    let clear = Scan::of(&clear_path);

    // Secrets, in neither file (the vault seals seeds itself).
    for m in &w.own {
        let seed = m.vault.sealed.open(&w.device_key, &m.public.key_id, m.public.tier).expect("open sealed seed");
        for chunk in seed.as_bytes().chunks(16) {
            assert!(!sealed.0.contains(<&[u8; 16]>::try_from(chunk).expect("16")), "a seed part in clear");
            assert!(!clear.0.contains(<&[u8; 16]>::try_from(chunk).expect("16")), "a seed part in clear");
        }
    }
    for id in &w.identities {
        assert!(!sealed.any_part(&id.secret().ed25519_seed), "identity Ed25519 seed in the file");
    }
    for key in [&w.device_key, &store_key] {
        assert!(!sealed.any_part(&key.to_bytes()), "device key in the file");
    }

    // The contact graph: hidden in the sealed file, there in the unsealed one.
    let needles = graph_needles(&w);
    assert!(needles.len() > 4 * CONTACTS);
    let mut found_in_clear = 0;
    for (what, bytes) in &needles {
        assert!(!sealed.any_part(bytes), "{what} found in the sealed file");
        found_in_clear += usize::from(clear.any_part(bytes));
    }
    // The unsealed file holds them (burned and purged own coins may be gone, their key ids
    // too, and the vault keeps no public keys): the scan sees real records.
    assert!(
        found_in_clear >= needles.len() - 2 * w.own.len(),
        "{found_in_clear} of {} needles in the unsealed file",
        needles.len()
    );
    for name in &w.names {
        assert!(clear.any_part(name.as_bytes()), "display name {name:?} not in the unsealed file");
    }
}

#[test]
fn reopening_reads_everything_back_through_the_seal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reopen.redb");
    let key = DeviceKey::from_bytes([0x11; 32]);
    let w = {
        let store = RedbStore::open(&path, Policy::DEFAULT, &key).expect("open");
        workload(&store, 7)
    };
    let store = RedbStore::open(&path, Policy::DEFAULT, &key).expect("reopen");
    let mut seen = 0;
    store
        .for_each_contact(&mut |meta, held| {
            seen += 1;
            assert!(w.names.iter().any(|n| n == meta.display_name.as_str()));
            assert!(held.total() >= 1, "{held:?}");
        })
        .expect("for_each_contact");
    assert_eq!(seen, CONTACTS);
    let c = &w.identities[3];
    assert_eq!(store.contact(&c.user_id()).expect("contact").expect("registered").display_name.as_str(), w.names[3]);
    assert_eq!(store.pinned(&c.user_id()).expect("pinned").expect("pin").identity, *c.public());
    assert_eq!(store.load_session(&c.user_id(), Direction::Send).expect("load").expect("session").version.0, 1);
    assert!(store.status(&w.own[1].public.key_id).expect("status").is_some());
    assert!(store.audit().expect("audit").is_consistent());
}

#[test]
fn sealing_mode_and_device_key_are_checked_at_open_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sealed, clear) = (dir.path().join("sealed.redb"), dir.path().join("clear.redb"));
    let key = DeviceKey::from_bytes([0x22; 32]);
    let bob = aqm_core::UserId([0xB0; 16]);
    for store in [
        RedbStore::open(&sealed, Policy::DEFAULT, &key).expect("create sealed"),
        RedbStore::open_unsealed(&clear, Policy::DEFAULT).expect("create unsealed"),
    ] {
        store.register_contact(&ContactMeta::new(bob, Priority::Bestie, "bob", T0).expect("meta")).expect("register");
    }
    let (sealed_bytes, clear_bytes) = (std::fs::read(&sealed).expect("read"), std::fs::read(&clear).expect("read"));

    let err = RedbStore::open_unsealed(&sealed, Policy::DEFAULT).expect_err("a sealed file never opens unsealed");
    assert!(matches!(err, Error::SealingMismatch { file_sealed: true }), "{err:?}");
    assert!(err.to_string().contains("RedbStore::open"), "{err}");
    let err = RedbStore::open(&clear, Policy::DEFAULT, &key).expect_err("an unsealed file never opens sealed");
    assert!(matches!(err, Error::SealingMismatch { file_sealed: false }), "{err:?}");
    assert!(err.to_string().contains("open_unsealed"), "{err}");
    let err = RedbStore::open(&sealed, Policy::DEFAULT, &DeviceKey::from_bytes([0x23; 32])).expect_err("wrong key");
    assert!(matches!(err, Error::WrongDeviceKey), "{err:?}");
    assert_eq!(std::fs::read(&sealed).expect("read"), sealed_bytes, "refusals leave the sealed file as it was");
    assert_eq!(std::fs::read(&clear).expect("read"), clear_bytes, "refusals leave the unsealed file as it was");

    let store = RedbStore::open(&sealed, Policy::DEFAULT, &key).expect("the right key opens");
    assert!(store.is_sealed());
    assert_eq!(store.contact(&bob).expect("contact").expect("bob").display_name.as_str(), "bob");
    let store = RedbStore::open_unsealed(&clear, Policy::DEFAULT).expect("unsealed reopens");
    assert!(!store.is_sealed());
    assert_eq!(store.contact(&bob).expect("contact").expect("bob").display_name.as_str(), "bob");
}

#[test]
fn a_sealed_record_moved_to_another_key_does_not_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("moved.redb");
    let key = DeviceKey::from_bytes([0x33; 32]);
    let (bob, carol) = (aqm_core::UserId([0xB0; 16]), aqm_core::UserId([0xCA; 16]));
    {
        let store = RedbStore::open(&path, Policy::DEFAULT, &key).expect("open");
        for (id, name) in [(bob, "bob"), (carol, "carol")] {
            store.register_contact(&ContactMeta::new(id, Priority::Bestie, name, T0).expect("meta")).expect("register");
        }
    }
    // Swap the two sealed values under their (hashed) keys with redb directly.
    {
        let db = redb::Database::open(&path).expect("raw open");
        let table: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("contacts");
        let tx = db.begin_write().expect("write");
        {
            let mut t = tx.open_table(table).expect("contacts");
            let rows: Vec<(Vec<u8>, Vec<u8>)> = redb::ReadableTable::iter(&t)
                .expect("iter")
                .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())).expect("row"))
                .collect();
            assert_eq!(rows.len(), 2);
            t.insert(rows[0].0.as_slice(), rows[1].1.as_slice()).expect("insert");
            t.insert(rows[1].0.as_slice(), rows[0].1.as_slice()).expect("insert");
        }
        tx.commit().expect("commit");
    }
    let store = RedbStore::open(&path, Policy::DEFAULT, &key).expect("open");
    for id in [bob, carol] {
        let err = store.contact(&id).expect_err("a moved record is refused");
        assert!(matches!(err, Error::Corrupt { table: "contacts", .. }), "{err:?}");
    }
}

#[test]
fn the_storage_report_counts_cached_coins_as_stored() {
    use aqm_core::inventory::StorageReport;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    // The table that holds cached coins (storage-redb's codec): the keyed hash of (contact,
    // tier) and the FIFO sequence number → the sealed record.
    const INV_COINS: TableDefinition<'_, (&[u8], u64), &[u8]> = TableDefinition::new("inventory_coins");

    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("report.redb"), Policy::DEFAULT, &DeviceKey::from_bytes([3; 32]))
        .expect("open");
    workload(&store, 11);
    let mut report = StorageReport::new(&Policy::DEFAULT);
    store.for_each_contact(&mut |_, held| report.add_contact(&held)).expect("for_each_contact");

    let tx = store.database().begin_read().expect("read");
    let table = tx.open_table(INV_COINS).expect("inventory_coins");
    let (mut rows, mut bytes) = (0u64, 0u64);
    for row in table.iter().expect("iter") {
        let (k, v) = row.expect("row");
        let (ix, _seq) = k.value();
        bytes += (ix.len() + v.value().len()) as u64;
        rows += 1;
    }
    assert_eq!(rows, u64::from(report_coins(&store)));
    // The report counts each coin, its nonce and tag and its 32-byte name; the rows hold that
    // plus a few bytes of postcard framing and the fetch time: within 2 %, never under.
    assert!(report.stored_bytes > report.total_bytes);
    assert!(bytes >= report.stored_bytes, "rows {bytes} B, report {} B", report.stored_bytes);
    assert!(bytes * 100 <= report.stored_bytes * 102, "rows {bytes} B, report {} B", report.stored_bytes);
}

fn report_coins(store: &RedbStore) -> u32 {
    let mut n = 0;
    store.for_each_contact(&mut |_, held| n += held.total()).expect("for_each_contact");
    n
}
