//! Durability: a private `redis-server` with AOF and `appendfsync always` is killed with SIGKILL
//! twice in the middle of a workload and restarted on the same directory. Nothing acknowledged is
//! lost, calls that failed with a known outcome left nothing behind, and the counters still
//! equal the contents.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::vault::{KeyStatus, VaultEntry};
use aqm_core::{KeyId, Policy, Priority, StoreError, Tier};
use aqm_storage_redis::{Error, Options, RedisStore};
use common::{Mint, PrivateRedis};

#[derive(Default)]
struct Log {
    put_ok: Vec<KeyId>,
    put_unknown: Vec<KeyId>,
    put_failed: Vec<KeyId>,
    burn_ok: Vec<KeyId>,
    burn_unknown: Vec<KeyId>,
    stored_ok: Vec<KeyId>,
    stored_unknown: Vec<KeyId>,
    stored_failed: Vec<KeyId>,
    selected_ok: Vec<KeyId>,
    select_unknown: u32,
    /// Calls that failed with `Unavailable` (the kills were noticed).
    unavailable: u32,
}

/// Sort an outcome: `Ok(true)` acknowledged, `Ok(false)` known to have changed nothing,
/// `Err(())` unknown.
fn outcome(r: &Result<(), Error>) -> Result<bool, ()> {
    match r {
        Ok(()) => Ok(true),
        Err(Error::Unavailable { outcome_known: true, .. }) => Ok(false),
        Err(Error::Unavailable { outcome_known: false, .. }) => Err(()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn options() -> Options {
    Options { attempts: 5, backoff: Duration::from_millis(40), ..Options::default() }
}

#[test]
fn nothing_acknowledged_is_lost_across_kill_9() {
    let mut server = PrivateRedis::start();
    let url = server.url();
    let mut mint = Mint::new(31);
    let mut bob = Mint::new(32);
    let bob_id = bob.owner.user_id();
    let entries: Vec<VaultEntry> = (0..4000).map(|_| mint.coin(Tier::Bronze, 1_000).vault).collect();
    let coins: Vec<PublicCoin> = (0..4000).map(|_| bob.coin(Tier::Bronze, 0).public).collect();

    let store = RedisStore::connect_with(&url, "dur", Policy::DEFAULT, common::sealed(), options()).unwrap();
    store.register_contact(&ContactMeta::new(bob_id, Priority::Mate, "bob", 0).unwrap()).unwrap();

    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for (i, (e, c)) in entries.iter().zip(&coins).enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = store.put(e);
                let mut l = log.lock().unwrap();
                match outcome(&r) {
                    Ok(true) => l.put_ok.push(e.key_id),
                    Ok(false) => l.put_failed.push(e.key_id),
                    Err(()) => l.put_unknown.push(e.key_id),
                }
                l.unavailable += u32::from(r.is_err());
                drop(l);
                if i % 2 == 1 {
                    let prev = entries[i - 1].key_id;
                    let r = store.burn(&prev, 2_000);
                    let mut l = log.lock().unwrap();
                    match r {
                        Ok(()) => l.burn_ok.push(prev),
                        Err(Error::Unavailable { outcome_known: false, .. }) => {
                            l.unavailable += 1;
                            l.burn_unknown.push(prev)
                        }
                        Err(Error::Unavailable { .. }) => l.unavailable += 1,
                        // Not found (its put failed) or already burned (after an unknown attempt).
                        Err(e) => assert!(e.as_core().is_some(), "{e}"),
                    }
                }
                let r = store.store_coin(&bob_id, c, 1);
                let mut l = log.lock().unwrap();
                match r {
                    // Full: refused by the cap, nothing stored.
                    Err(Error::Core(aqm_core::Error::BudgetExceeded { .. })) => l.stored_failed.push(c.key_id),
                    r => {
                        l.unavailable += u32::from(r.is_err());
                        match outcome(&r) {
                            Ok(true) => l.stored_ok.push(c.key_id),
                            Ok(false) => l.stored_failed.push(c.key_id),
                            Err(()) => l.stored_unknown.push(c.key_id),
                        }
                    }
                }
                drop(l);
                if i % 3 == 2 {
                    let r = store.select_coin(&bob_id, Tier::Bronze, Tier::Bronze, 3).map(|s| s.coin);
                    let mut l = log.lock().unwrap();
                    match r {
                        Ok(Some(got)) => l.selected_ok.push(got.coin.key_id),
                        Ok(None) => {}
                        Err(Error::Unavailable { outcome_known: false, .. }) => {
                            l.unavailable += 1;
                            l.select_unknown += 1
                        }
                        Err(Error::Unavailable { .. }) => l.unavailable += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        })
    };

    // Two SIGKILLs, each after the workload has made progress, each followed by a restart.
    for round in 0..2 {
        let start = log.lock().unwrap().put_ok.len();
        while log.lock().unwrap().put_ok.len() < start + 150 {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill9();
        std::thread::sleep(Duration::from_millis(150));
        server.restart();
        eprintln!("round {round}: killed after {} acknowledged puts", log.lock().unwrap().put_ok.len());
    }
    let start = log.lock().unwrap().put_ok.len();
    while log.lock().unwrap().put_ok.len() < start + 100 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // And once more after the workload, so everything is read back from the AOF alone.
    server.kill9();
    server.restart();

    let log = log.lock().unwrap();
    // (Puts and burns that met a dead connection were resent and recognised by their operation
    // token; stores and selects report an unknown outcome instead: see `unavailable` below.)
    let check = RedisStore::connect(&url, "dur", Policy::DEFAULT, common::sealed()).unwrap();
    let burned: HashSet<_> = log.burn_ok.iter().collect();
    for id in &log.put_ok {
        let want = if burned.contains(id) { KeyStatus::Burned } else { KeyStatus::Active };
        if log.burn_unknown.contains(id) {
            assert!(check.status(id).unwrap().is_some(), "acknowledged put lost");
        } else {
            assert_eq!(check.status(id).unwrap(), Some(want), "acknowledged put/burn lost");
        }
    }
    for id in &log.put_failed {
        assert_eq!(check.status(id).unwrap(), None, "a put that failed with a known outcome left data");
    }
    // Counters equal the contents.
    let audit = check.audit().unwrap();
    // A rare failure here (counters one off the entries, not reproduced since) most likely comes
    // from the server, not the store: a SIGKILL can cut the AOF inside a script's MULTI/EXEC
    // block; `aof-load-truncated` then cuts the file at the last whole command, leaving an open
    // MULTI that the next restart's writes join, so a later load applies part of the old script.
    // If so, the server's log shows the truncation.
    assert!(audit.consistent(), "{audit:?}; server log on AOF loading: {:?}", aof_warnings(&server));
    let mut active = 0;
    let mut burned_n = 0;
    for id in log.put_ok.iter().chain(&log.put_unknown) {
        match check.status(id).unwrap() {
            Some(KeyStatus::Active) => active += 1,
            Some(KeyStatus::Burned) => burned_n += 1,
            None => {}
        }
    }
    let stats = check.stats().unwrap();
    assert_eq!(stats.active.total(), active);
    assert_eq!(stats.total_burned, burned_n);
    assert!(stats.total_burned >= log.burn_ok.len() as u64);

    // Inventory: selected coins stay gone, acknowledged stores stay (unless an unknown select
    // may have taken them), nothing appears that was never offered.
    let mut present = HashSet::new();
    while let Some(c) = check.select_coin(&bob_id, Tier::Bronze, Tier::Bronze, 9).unwrap().coin {
        present.insert(c.coin.key_id);
    }
    let selected: HashSet<_> = log.selected_ok.iter().copied().collect();
    assert!(present.is_disjoint(&selected), "a selected coin came back");
    let missing = log.stored_ok.iter().filter(|id| !present.contains(id) && !selected.contains(id)).count();
    assert!(missing as u32 <= log.select_unknown, "{missing} acknowledged coins lost");
    let offered: HashSet<_> = log.stored_ok.iter().chain(&log.stored_unknown).copied().collect();
    assert!(present.is_subset(&offered));
    for id in &log.stored_failed {
        assert!(!present.contains(id), "a store that failed with a known outcome left data");
    }
    eprintln!(
        "acknowledged: {} puts, {} burns, {} stores, {} selects; unknown: {} puts, {} burns, {} stores, {} selects; {} unavailable",
        log.put_ok.len(),
        log.burn_ok.len(),
        log.stored_ok.len(),
        log.selected_ok.len(),
        log.put_unknown.len(),
        log.burn_unknown.len(),
        log.stored_unknown.len(),
        log.select_unknown,
        log.unavailable
    );
}

/// The private server's log lines about loading a damaged AOF (truncation, reverted transactions).
fn aof_warnings(server: &PrivateRedis) -> Vec<String> {
    let log = std::fs::read_to_string(server.dir.path().join("redis.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("Truncat") || l.contains("MULTI") || l.contains("short read"))
        .map(str::to_owned)
        .collect()
}
