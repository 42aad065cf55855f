//! The at-rest scan (issue 18): a store holding 50 contacts — registered, with cached coins,
//! sessions and pins — and its own vault, on a private `redis-server` (free port, its own
//! directory, RDB compression off so nothing can hide in LZF), dumped with `SAVE`; the RDB file,
//! read raw, holds no contact id, display name, key id or public key, nor a seed or the device
//! key, nor (issue 14) a last-resort coin's key id or the digests of the first messages it opened. The same store in the unsealed mode is the control: there the scan finds them, so the scan
//! would see them if they were there.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::pins::Trust;
use aqm_core::store::{Direction, InventoryStore, PinStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::vault;
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redis::{RedisStore, Sealing};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A private in-memory `redis-server` whose only persistence is an explicit `SAVE`.
struct Snapshotter {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Snapshotter {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args(["--appendonly", "no", "--save", "", "--rdbcompression", "no", "--daemonize", "no"])
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let s = Snapshotter { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.con().is_none() {
            assert!(Instant::now() < deadline, "private redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    fn con(&self) -> Option<redis::Connection> {
        let mut c =
            redis::Client::open(self.url()).ok()?.get_connection_with_timeout(Duration::from_millis(200)).ok()?;
        redis::cmd("PING").query::<String>(&mut c).ok()?;
        Some(c)
    }
    /// `SAVE`, then the RDB file's bytes.
    fn dump(&self) -> Vec<u8> {
        let mut c = self.con().unwrap();
        let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
        std::fs::read(self.dir.path().join("dump.rdb")).unwrap()
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What must not be found, each cut to its first 16 bytes (every needle is at least that long),
/// with a label for the failure message.
struct Needles(Vec<([u8; 16], String)>);

impl Needles {
    fn add(&mut self, what: String, bytes: &[u8]) {
        let n: [u8; 16] = bytes[..16].try_into().unwrap();
        self.0.push((n, what));
    }
    fn add_id(&mut self, what: &str, raw: &[u8; 16]) {
        self.add(format!("{what} (raw)"), raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.add(format!("{what} (hex)"), hex.as_bytes());
        let uuid = uuid_text(raw);
        self.add(format!("{what} (text)"), uuid.as_bytes());
    }
    /// Every needle that occurs in `hay`.
    fn found_in(&self, hay: &[u8]) -> Vec<String> {
        let wanted: HashSet<[u8; 16]> = self.0.iter().map(|(n, _)| *n).collect();
        let mut hits = HashSet::new();
        for w in hay.windows(16) {
            let w: [u8; 16] = w.try_into().unwrap();
            if wanted.contains(&w) {
                hits.insert(w);
            }
        }
        self.0.iter().filter(|(n, _)| hits.contains(n)).map(|(_, what)| what.clone()).collect()
    }
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Fill `store` with 50 contacts (registered, a BRONZE and a SILVER coin cached, a session each
/// way, a pinned identity), 20 vault entries of its own and a last-resort entry that opened two
/// first messages (one with a session saved); returns everything the dump must not show.
fn fill(store: &RedisStore, device_key: &DeviceKey) -> Needles {
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    let mut needles = Needles(Vec::new());
    needles.add("device key".into(), &device_key.to_bytes());
    let me = Identity::generate(&mut rng);
    for i in 0..20 {
        let tier = Tier::ALL[i % 3];
        let m = coin::mint(&me, tier, device_key, 1_700_000_000, &mut rng).unwrap();
        store.put(&m.vault).unwrap();
        needles.add_id(&format!("vault key id {i}"), m.vault.key_id.as_bytes());
        let seed = m.vault.sealed.open(device_key, &m.vault.key_id, tier).unwrap();
        needles.add(format!("vault seed {i}"), seed.as_bytes());
    }
    let lr = coin::mint_last_resort(&me, Tier::Gold, device_key, 1_700_000_000, &mut rng).unwrap();
    store.put(&lr.vault).unwrap();
    needles.add_id("last-resort key id", lr.vault.key_id.as_bytes());
    let seed = lr.vault.sealed.open(device_key, &lr.vault.key_id, Tier::Gold).unwrap();
    needles.add("last-resort seed".into(), seed.as_bytes());
    let sender = Identity::generate(&mut rng).user_id();
    for (n, ct) in [b"the KEM ciphertext of a first message".as_slice(), b"and that of a second one"].iter().enumerate()
    {
        let d = vault::open_digest(&lr.vault.key_id, ct);
        if n == 0 {
            assert!(!store.open_last_resort(&lr.vault.key_id, &d, 1_700_000_001).unwrap());
        } else {
            let blob = SessionBlob::from_slice(&[0xa5; 200]).unwrap();
            store.open_last_resort_and_save_session(&lr.vault.key_id, &d, 1_700_000_002, &sender, &blob, None).unwrap();
        }
        needles.add(format!("last-resort open digest {n}"), &d.0);
    }
    needles.add_id("last-resort sender id", sender.as_bytes());
    let contact_key = DeviceKey::random(&mut rng);
    for i in 0..50 {
        let who = Identity::generate(&mut rng);
        let id = who.user_id();
        let name = format!("Display Name {i:03} of a contact");
        let prio = Priority::ALL[i % 3];
        let prio = if prio == Priority::Stranger { Priority::Mate } else { prio };
        store.register_contact(&ContactMeta::new(id, prio, &name, 1_700_000_000 + i as u64).unwrap()).unwrap();
        needles.add_id(&format!("contact id {i}"), id.as_bytes());
        needles.add(format!("display name {i}"), name.as_bytes());
        for tier in [Tier::Bronze, Tier::Silver] {
            let c = coin::mint(&who, tier, &contact_key, 1_700_000_000, &mut rng).unwrap().public;
            store.store_coin(&id, &c, 1_700_000_100).unwrap();
            needles.add_id(&format!("contact {i} {tier} key id"), c.key_id.as_bytes());
            needles.add(format!("contact {i} {tier} public key"), &c.public_key);
            needles.add(format!("contact {i} {tier} public key (tail)"), &c.public_key[c.public_key.len() - 16..]);
        }
        let blob = SessionBlob::from_slice(&[i as u8; 200]).unwrap();
        store.save_session(&id, Direction::Send, &blob, None).unwrap();
        store.save_session(&id, Direction::Receive, &blob, None).unwrap();
        store.pin_identity(who.public(), Trust::Exchanged).unwrap();
        needles.add(format!("contact {i} ed25519 key"), &who.public().ed25519);
        needles.add(format!("contact {i} ML-DSA key"), &who.public().mldsa65);
    }
    needles
}

#[test]
fn an_rdb_dump_of_a_sealed_store_holds_no_contact_key_id_name_or_public_key() {
    let redis = Snapshotter::start();
    let device_key = DeviceKey::from_bytes(*b"the device key of the scan test!");
    let store = RedisStore::connect(&redis.url(), "phone", Policy::DEFAULT, Sealing::sealed(&device_key)).unwrap();
    let needles = fill(&store, &device_key);
    let mut n = 0;
    store.for_each_contact(&mut |_, held| n += held.total()).unwrap();
    assert_eq!(n, 100, "everything stored");
    let dump = redis.dump();
    assert!(dump.starts_with(b"REDIS"), "an RDB file");
    // The dump holds the records: the sealed store's keys are all there.
    assert!(dump.windows(16).any(|w| w == b"{phone}:inv:v4:m"));
    assert!(dump.windows(21).any(|w| w == b"{phone}:vault:v4:open"), "the last-resort opens are in the dump");
    let found = needles.found_in(&dump);
    assert!(found.is_empty(), "found in the RDB dump ({} bytes): {found:?}", dump.len());
    println!("scanned {} bytes of RDB for {} needles: none found", dump.len(), needles.0.len());
}

#[test]
fn the_scan_finds_everything_in_an_unsealed_store() {
    let redis = Snapshotter::start();
    let device_key = DeviceKey::from_bytes(*b"the device key of the scan test!");
    let store = RedisStore::connect(&redis.url(), "phone", Policy::DEFAULT, Sealing::unsealed()).unwrap();
    let needles = fill(&store, &device_key);
    let found: HashSet<String> = needles.found_in(&redis.dump()).into_iter().collect();
    // Ids in hex in key names and raw in records, names and public keys in records: all there.
    for (_, what) in &needles.0 {
        let expect = what.starts_with("contact id") && !what.ends_with("(text)")
            || what.starts_with("display name")
            || what.contains("public key")
            || what.contains("ed25519")
            || what.contains("ML-DSA")
            || what.starts_with("last-resort open digest")
            || what.starts_with("last-resort sender id") && what.ends_with("(hex)")
            || what.starts_with("last-resort key id") && what.ends_with("(hex)");
        if expect {
            assert!(found.contains(what), "the control scan missed {what}");
        }
    }
    // The vault's secrets stay sealed under the device key in both modes.
    assert!(
        !found.iter().any(|w| w.starts_with("vault seed") || w == "last-resort seed" || w == "device key"),
        "{found:?}"
    );
}
