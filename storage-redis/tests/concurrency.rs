//! Concurrency against the machine's Redis with many connections: every thread gets its own
//! `RedisStore` (its own connection pool) on the same prefix, as separate app processes would.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::{Error as CoreError, KeyId, Priority, StoreError, Tier};
use common::{Mint, TestStore};

const THREADS: usize = 12;

#[test]
fn caps_are_never_exceeded() {
    let fx = TestStore::new("cc-caps");
    let mut mint = Mint::new(21);
    let bob = mint.owner.user_id();
    fx.register_contact(&ContactMeta::new(bob, Priority::Bestie, "bob", 0).unwrap()).unwrap();
    for round in 0..3 {
        let coins: Vec<PublicCoin> = (0..THREADS * 2).map(|_| mint.coin(Tier::Silver, 0).public).collect();
        let coins = Arc::new(coins);
        let barrier = Arc::new(Barrier::new(THREADS));
        let ok = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (store, coins, barrier, ok) = (fx.sibling(), coins.clone(), barrier.clone(), ok.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for c in coins.iter().skip(i * 2).take(2) {
                        match store.store_coin(&bob, c, 1) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => assert_eq!(
                                e.as_core(),
                                Some(&CoreError::BudgetExceeded { tier: Tier::Silver, cap: 4 }),
                                "{e}"
                            ),
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(ok.load(Ordering::Relaxed), 4, "round {round}: exactly the cap succeeds");
        assert_eq!(fx.counts(&bob).unwrap().get(Tier::Silver), 4);
        while fx.select_coin(&bob, Tier::Silver, Tier::Bronze, 2).unwrap().coin.is_some() {}
    }
}

#[test]
fn burn_is_exactly_once_and_counters_hold() {
    let fx = TestStore::new("cc-burn");
    let mut mint = Mint::new(22);
    let ids: Vec<KeyId> = (0..120)
        .map(|i| {
            let tier = Tier::ALL[i % 2 + 1];
            let e = mint.coin(tier, 1_000).vault;
            fx.put(&e).unwrap();
            e.key_id
        })
        .collect();
    let ids = Arc::new(ids);
    let burned = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (store, ids, burned, barrier) = (fx.sibling(), ids.clone(), burned.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Every thread tries every key, starting at a different place.
                for j in 0..ids.len() {
                    let id = ids[(i * 7 + j) % ids.len()];
                    match store.burn(&id, 2_000) {
                        Ok(()) => burned.lock().unwrap().push(id),
                        Err(e) => assert_eq!(e.as_core(), Some(&CoreError::KeyAlreadyBurned), "{e}"),
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let burned = burned.lock().unwrap();
    let unique: HashSet<_> = burned.iter().collect();
    assert_eq!(burned.len(), ids.len(), "each key burned once");
    assert_eq!(unique.len(), ids.len());
    let stats = fx.stats().unwrap();
    assert_eq!(stats.total_burned, ids.len() as u64);
    assert_eq!(stats.active.total(), 0);
    assert!(fx.audit().unwrap().consistent());
}

#[test]
fn no_coin_is_selected_twice() {
    let fx = TestStore::new("cc-select");
    let mut mint = Mint::new(23);
    let bob = mint.owner.user_id();
    fx.register_contact(&ContactMeta::new(bob, Priority::Mate, "bob", 0).unwrap()).unwrap();
    let mut stored = HashSet::new();
    for t in [Tier::Silver, Tier::Bronze] {
        for _ in 0..aqm_core::Policy::DEFAULT.cap(Priority::Mate, t) {
            let c = mint.coin(t, 0).public;
            fx.store_coin(&bob, &c, 0).unwrap();
            stored.insert(c.key_id);
        }
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (store, got, barrier) = (fx.sibling(), got.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                while let Some(c) = store.select_coin(&bob, Tier::Silver, Tier::Bronze, 5).unwrap().coin {
                    got.lock().unwrap().push(c.coin.key_id);
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let got = got.lock().unwrap();
    let unique: HashSet<KeyId> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "a coin came out twice");
    assert_eq!(unique, stored);
    assert_eq!(fx.counts(&bob).unwrap().total(), 0);
}

#[test]
fn mixed_store_select_burn_purge_for_seconds() {
    let fx = TestStore::new("cc-mixed");
    let mut mint = Mint::new(24);
    let contacts: Vec<_> = (0..3).map(|i| Mint::new(100 + i)).collect();
    let ids: Vec<_> = contacts.iter().map(|m| m.owner.user_id()).collect();
    for id in &ids {
        fx.register_contact(&ContactMeta::new(*id, Priority::Mate, "c", 0).unwrap()).unwrap();
    }
    // Pre-minted coins per contact (owner = that contact), taken by producers in order.
    let mut pools = Vec::new();
    for mut m in contacts {
        let coins: Vec<PublicCoin> =
            (0..150).map(|i| m.coin(if i % 2 == 0 { Tier::Silver } else { Tier::Bronze }, 0).public).collect();
        pools.push(Mutex::new(coins));
    }
    let pools = Arc::new(pools);
    // Vault keys: some old (expire at the purge time used), some fresh.
    let vault: Vec<_> =
        (0..90).map(|i| mint.coin(Tier::Bronze, if i % 3 == 0 { 0 } else { 40 * 86_400 }).vault).collect();
    for e in &vault {
        fx.put(e).unwrap();
    }
    let vault_ids = Arc::new(vault.iter().map(|e| e.key_id).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(Mutex::new(Vec::new()));
    let selected = Arc::new(Mutex::new(Vec::new()));
    let burned = Arc::new(AtomicU64::new(0));
    let now = 40 * 86_400 + 10;
    let mut handles = Vec::new();
    for p in 0..4 {
        let (store, pools, ids, stop, stored) =
            (fx.sibling(), pools.clone(), ids.clone(), stop.clone(), stored.clone());
        handles.push(std::thread::spawn(move || {
            let mut k = p;
            while !stop.load(Ordering::Relaxed) {
                let ci = k % ids.len();
                k += 1;
                let Some(coin) = pools[ci].lock().unwrap().pop() else { continue };
                match store.store_coin(&ids[ci], &coin, 1) {
                    Ok(()) => stored.lock().unwrap().push(coin.key_id),
                    Err(e) => assert!(matches!(e.as_core(), Some(CoreError::BudgetExceeded { .. })), "{e}"),
                }
            }
        }));
    }
    for s in 0..4 {
        let (store, ids, stop, selected) = (fx.sibling(), ids.clone(), stop.clone(), selected.clone());
        handles.push(std::thread::spawn(move || {
            let mut k = s;
            while !stop.load(Ordering::Relaxed) {
                let ci = k % ids.len();
                k += 1;
                let want = if k % 2 == 0 { Tier::Silver } else { Tier::Bronze };
                if let Some(c) = store.select_coin(&ids[ci], want, Tier::Bronze, 2).unwrap().coin {
                    assert_eq!(c.coin.owner, ids[ci]);
                    selected.lock().unwrap().push(c.coin.key_id);
                }
            }
        }));
    }
    for b in 0..2 {
        let (store, vault_ids, burned) = (fx.sibling(), vault_ids.clone(), burned.clone());
        handles.push(std::thread::spawn(move || {
            for (j, id) in vault_ids.iter().enumerate() {
                if j % 2 == b {
                    match store.burn(id, now) {
                        Ok(()) => {
                            burned.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => assert_eq!(e.as_core(), Some(&CoreError::KeyNotFound), "{e}"),
                    }
                }
            }
        }));
    }
    let purger = {
        let (store, stop) = (fx.sibling(), stop.clone());
        std::thread::spawn(move || {
            let mut expired = 0;
            while !stop.load(Ordering::Relaxed) {
                expired += store.purge(now).unwrap().expired;
                std::thread::sleep(Duration::from_millis(20));
            }
            expired
        })
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    handles.into_iter().for_each(|h| h.join().unwrap());
    let expired = purger.join().unwrap() + fx.purge(now).unwrap().expired;

    let stored = stored.lock().unwrap();
    let selected = selected.lock().unwrap();
    let stored_set: HashSet<_> = stored.iter().collect();
    let selected_set: HashSet<_> = selected.iter().collect();
    assert_eq!(selected.len(), selected_set.len(), "a coin was selected twice");
    assert!(selected_set.is_subset(&stored_set), "selected a coin never stored");
    let left: u32 = ids.iter().map(|c| fx.counts(c).unwrap().total()).sum();
    assert_eq!(stored.len() - selected.len(), left as usize, "inventory counts match the history");
    for c in &ids {
        let n = fx.counts(c).unwrap();
        assert!(n.get(Tier::Silver) <= 6 && n.get(Tier::Bronze) <= 4 && n.get(Tier::Gold) == 0, "{n:?}");
    }
    // Vault: every key was either burned (fresh ones) or expired (old ones), each counted once.
    let stats = fx.stats().unwrap();
    assert_eq!(stats.total_burned, burned.load(Ordering::Relaxed));
    assert_eq!(u64::from(expired), stats.total_expired);
    assert_eq!(stats.total_burned + stats.total_expired + u64::from(stats.active.total()), vault.len() as u64);
    assert_eq!(stats.active.total(), 0);
    assert!(fx.audit().unwrap().consistent());
    assert!(
        selected.len() > 10 && stored.len() > 10,
        "work was done: {} stored, {} selected",
        stored.len(),
        selected.len()
    );
}
