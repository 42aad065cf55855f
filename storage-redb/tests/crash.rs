//! Crash safety: a child process runs mint / put / store / select / burn / burn-and-save loops on
//! one redb file and is killed with SIGKILL at random moments, many times. After every kill the
//! parent reopens the file and checks every the rules in docs/architecture.md §2 invariant against a log of what the child
//! committed: nothing committed is lost or duplicated, counters equal a recount, caps hold, a
//! selected coin is gone, a burned key is never ACTIVE again, a session is saved iff its burn was.
//!
//! The log protocol: before an operation the child appends `T <op>` (try), after the commit
//! returns it appends `C <op>` (committed), each line fsync'd. A committed operation whose `C` line
//! the kill prevented is the last `T` of its run; the checks accept it as done or not done.
//!
//! The child is this test binary re-invoked with `AQM_REDB_CRASH_CHILD=<dir>`, running the
//! `crash_child` test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::vault::KeyStatus;
use aqm_core::{KeyId, Policy, Priority, StoreError, Tier, UserId};
use aqm_storage_redb::RedbStore;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

const CHILD_ENV: &str = "AQM_REDB_CRASH_CHILD";
const ROUNDS: usize = 30;
/// A child never outlives this, even if the parent vanished.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

/// The key child and parent open the store with (the metadata sealing key is derived from it).
const STORE_KEY: DeviceKey = DeviceKey::from_bytes([0xC5; 32]);

/// Burned keys are deleted by purge one second after the burn, so purges really delete.
fn policy() -> Policy {
    Policy { burn_grace_secs: 1, ..Policy::DEFAULT }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_id(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex id in log");
    }
    out
}

struct Log(File);

impl Log {
    fn line(&mut self, l: &str) {
        self.0.write_all(format!("{l}\n").as_bytes()).expect("write log");
        self.0.sync_data().expect("fsync log");
    }
}

/// The child: loops until killed (or until its lifetime guard ends it).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let dir = PathBuf::from(dir);
    let store = RedbStore::open(dir.join("crash.redb"), policy(), &STORE_KEY).expect("child opens the database");
    let mut log = Log(OpenOptions::new().create(true).append(true).open(dir.join("ops.log")).expect("open log"));
    let mut rng = ChaCha20Rng::from_rng(&mut rand::rng());
    let me = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    let id = hex(&me.user_id().0);
    log.line(&format!("S {id}"));
    log.line(&format!("T contact {id}"));
    assert!(
        store
            .register_contact(&ContactMeta::new(me.user_id(), Priority::Bestie, "self", now()).expect("meta"))
            .expect("register")
    );
    log.line(&format!("C contact {id}"));
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        match rng.random_range(0..10u32) {
            0..=3 => {
                let tier = match rng.random_range(0..10u32) {
                    0 => Tier::Gold,
                    1..=5 => Tier::Silver,
                    _ => Tier::Bronze,
                };
                let m = coin::mint(&me, tier, &dk, now(), &mut rng).expect("mint");
                let k = hex(&m.public.key_id.0);
                log.line(&format!("T put {k} {}", tier.to_byte()));
                store.put(&m.vault).expect("put");
                log.line(&format!("C put {k} {}", tier.to_byte()));
                log.line(&format!("T store {id} {k}"));
                match store.store_coin(&me.user_id(), &m.public, now()) {
                    Ok(()) => log.line(&format!("C store {id} {k}")),
                    Err(e) if matches!(e.as_core(), Some(aqm_core::Error::BudgetExceeded { .. })) => {
                        log.line(&format!("R store {id} {k}"))
                    }
                    Err(e) => panic!("store_coin: {e}"),
                }
            }
            4..=5 => {
                let tier = Tier::ALL[rng.random_range(0..3usize)];
                log.line(&format!("T select {id}"));
                match store.select_coin(&me.user_id(), tier, Tier::Bronze, now()).expect("select").coin {
                    Some(c) => log.line(&format!("C select {id} {}", hex(&c.coin.key_id.0))),
                    None => log.line(&format!("R select {id}")),
                }
            }
            6..=8 => {
                let mut active = Vec::new();
                store.active_ids(None, &mut |k| active.push(k)).expect("active ids");
                if active.is_empty() {
                    continue;
                }
                let k = active[rng.random_range(0..active.len())];
                let kh = hex(&k.0);
                if rng.random_bool(0.5) {
                    log.line(&format!("T burn {kh}"));
                    store.burn(&k, now()).expect("burn");
                    log.line(&format!("C burn {kh}"));
                } else {
                    // The "session" is the key id itself, so the parent can tell which burn saved it.
                    let blob = SessionBlob::from_slice(&k.0).expect("blob");
                    log.line(&format!("T burnsess {kh} {id}"));
                    let v = store.load_session(&me.user_id(), Direction::Receive).expect("load").map(|s| s.version);
                    store.burn_and_save_session(&k, now(), &me.user_id(), &blob, v).expect("burn and save");
                    log.line(&format!("C burnsess {kh} {id}"));
                }
            }
            _ => {
                log.line("T purge");
                let r = store.purge(now()).expect("purge");
                log.line(&format!("C purge {}", r.deleted_burned));
            }
        }
    }
}

/// What the log says happened.
#[derive(Default)]
struct Model {
    put: BTreeMap<KeyId, Tier>,
    burned: BTreeSet<KeyId>,
    maybe_put: BTreeSet<KeyId>,
    maybe_burned: BTreeSet<KeyId>,
    stored: BTreeMap<UserId, BTreeSet<KeyId>>,
    selected: BTreeSet<KeyId>,
    maybe_stored: BTreeSet<KeyId>,
    maybe_selected_from: BTreeSet<UserId>,
    /// Last committed session blob per peer, and one that may have committed after it.
    session: BTreeMap<UserId, KeyId>,
    maybe_session: BTreeMap<UserId, KeyId>,
    contacts: BTreeSet<UserId>,
    maybe_contacts: BTreeSet<UserId>,
    committed_ops: usize,
}

fn read_model(path: &Path) -> Model {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A line without its newline was cut by the kill: it never counts.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut m = Model::default();
    let mut pending: Option<Vec<String>> = None;
    let flush = |m: &mut Model, p: Option<Vec<String>>| {
        let Some(t) = p else { return };
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        match t.as_slice() {
            ["put", k, _] => {
                m.maybe_put.insert(KeyId(parse_id(k)));
            }
            ["burn", k] => {
                m.maybe_burned.insert(KeyId(parse_id(k)));
            }
            ["burnsess", k, peer] => {
                m.maybe_burned.insert(KeyId(parse_id(k)));
                m.maybe_session.insert(UserId(parse_id(peer)), KeyId(parse_id(k)));
            }
            ["store", _, k] => {
                m.maybe_stored.insert(KeyId(parse_id(k)));
            }
            ["select", c] => {
                m.maybe_selected_from.insert(UserId(parse_id(c)));
            }
            ["contact", c] => {
                m.maybe_contacts.insert(UserId(parse_id(c)));
            }
            _ => {}
        }
    };
    for line in complete.lines() {
        let mut parts = line.split(' ');
        let kind = parts.next().unwrap_or("");
        let rest: Vec<String> = parts.map(str::to_owned).collect();
        match kind {
            "S" => flush(&mut m, pending.take()),
            "T" => {
                assert!(pending.is_none(), "two tries without an outcome in one run: {line}");
                pending = Some(rest);
            }
            "R" => pending = None,
            "C" => {
                pending = None;
                m.committed_ops += 1;
                let r: Vec<&str> = rest.iter().map(String::as_str).collect();
                match r.as_slice() {
                    ["contact", c] => {
                        m.contacts.insert(UserId(parse_id(c)));
                    }
                    ["put", k, t] => {
                        let tier = Tier::try_from(t.parse::<u8>().expect("tier")).expect("tier byte");
                        assert!(m.put.insert(KeyId(parse_id(k)), tier).is_none(), "key put twice: {k}");
                    }
                    ["burn", k] => {
                        assert!(m.burned.insert(KeyId(parse_id(k))), "key burned twice: {k}");
                    }
                    ["burnsess", k, peer] => {
                        assert!(m.burned.insert(KeyId(parse_id(k))), "key burned twice: {k}");
                        m.session.insert(UserId(parse_id(peer)), KeyId(parse_id(k)));
                    }
                    ["store", c, k] => {
                        assert!(m.stored.entry(UserId(parse_id(c))).or_default().insert(KeyId(parse_id(k))));
                    }
                    ["select", _, k] => {
                        assert!(m.selected.insert(KeyId(parse_id(k))), "coin selected twice: {k}");
                    }
                    _ => {}
                }
            }
            other => panic!("unknown log line kind {other:?}"),
        }
    }
    flush(&mut m, pending);
    m
}

fn check(store: &RedbStore, m: &Model, round: usize) {
    let audit = store.audit().expect("audit");
    assert!(audit.is_consistent(), "round {round}: invariants violated: {:#?}", audit.problems);

    // Vault: every committed put is there (ACTIVE unless burned), nothing else is ACTIVE, and a
    // burned key is never ACTIVE again.
    for (k, tier) in &m.put {
        let st = store.status(k).expect("status");
        if m.burned.contains(k) {
            assert_ne!(st, Some(KeyStatus::Active), "round {round}: burned key {k} is ACTIVE again");
        } else if !m.maybe_burned.contains(k) {
            assert_eq!(st, Some(KeyStatus::Active), "round {round}: committed {tier} key {k} lost");
        }
    }
    for k in &audit.active_keys {
        assert!(m.put.contains_key(k) || m.maybe_put.contains(k), "round {round}: ACTIVE key {k} was never committed");
    }
    for k in &audit.burned_keys {
        assert!(m.burned.contains(k) || m.maybe_burned.contains(k), "round {round}: key {k} burned by nobody");
    }
    let burns = m.burned.len() as u64;
    let extra = audit.vault_stats.total_burned.checked_sub(burns).unwrap_or_else(|| {
        panic!("round {round}: {} burns counted, {burns} committed", audit.vault_stats.total_burned)
    });
    assert!(extra <= m.maybe_burned.len() as u64, "round {round}: burns counted twice");

    // Inventory: committed stores minus committed selects are cached, selected coins are gone.
    for (c, keys) in &m.stored {
        let cached: BTreeSet<KeyId> =
            audit.cached.get(c).map(|l| l.iter().flatten().copied().collect()).unwrap_or_default();
        for k in keys {
            if m.selected.contains(k) {
                assert!(!cached.contains(k), "round {round}: selected coin {k} is still cached");
            } else if !m.maybe_selected_from.contains(c) {
                assert!(cached.contains(k), "round {round}: committed coin {k} lost");
            }
        }
        let missing = keys.iter().filter(|k| !m.selected.contains(k) && !cached.contains(k)).count();
        assert!(missing <= 1, "round {round}: {missing} unselected coins of {c} vanished");
        for k in &cached {
            assert!(keys.contains(k) || m.maybe_stored.contains(k), "round {round}: coin {k} cached by nobody");
        }
    }
    for c in audit.cached.keys() {
        assert!(
            m.contacts.contains(c) || m.maybe_contacts.contains(c),
            "round {round}: coins for a contact never registered"
        );
    }
    for c in &m.contacts {
        assert!(store.contact(c).expect("contact").is_some(), "round {round}: registered contact {c} lost");
    }

    // Sessions: the last committed burn-and-save of each peer is its receive session (or the one
    // that may have committed after it).
    for (peer, k) in &m.session {
        let blob = store.load_session(peer, Direction::Receive).expect("load").expect("session lost");
        let got = KeyId(blob.blob.as_slice().try_into().expect("16-byte blob"));
        assert!(got == *k || m.maybe_session.get(peer) == Some(&got), "round {round}: session of {peer} lost");
        assert!(m.burned.contains(&got) || m.maybe_burned.contains(&got), "session saved without its burn");
    }
    for (peer, k) in &m.maybe_session {
        if !m.session.contains_key(peer)
            && let Some(blob) = store.load_session(peer, Direction::Receive).expect("load")
        {
            assert_eq!(blob.blob.as_slice(), k.0.as_slice(), "round {round}: unknown session for {peer}");
            assert_ne!(store.status(k).expect("status"), Some(KeyStatus::Active), "session saved, key not burned");
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = ChaCha20Rng::from_rng(&mut rand::rng());
    let started = Instant::now();
    let mut total_ops = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(rng.random_range(40..400)));
        if let Some(status) = child.try_wait().expect("poll child") {
            let out = child.wait_with_output().expect("child output");
            panic!("round {round}: child exited on its own ({status}): {}", String::from_utf8_lossy(&out.stderr));
        }
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap child");

        let m = read_model(&dir.path().join("ops.log"));
        let store = RedbStore::open(dir.path().join("crash.redb"), policy(), &STORE_KEY).expect("reopen after SIGKILL");
        check(&store, &m, round);
        total_ops = m.committed_ops;
    }
    assert!(total_ops > ROUNDS * 5, "children committed only {total_ops} operations; the test proves little");
    eprintln!("{ROUNDS} SIGKILLs, {total_ops} committed operations checked in {:?}", started.elapsed());
}
