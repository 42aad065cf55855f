//! aqm-storage-redis on a real local Redis Cluster (`scripts/redis-cluster.sh`): users spread over
//! every slot range and node, each user's keys in one slot on the node the store talks to, scripts
//! reloaded per node, and a slot migrated (CLUSTER SETSLOT + MIGRATE, in small batches) while a
//! workload runs on it. `AQM_REDIS_CLUSTER=unavailable` skips these (never in CI).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aqm_core::coin::PublicCoin;
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::vault::VaultEntry;
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redis::{Options, RedisStore};
use common::{LocalCluster, Mint, TestStore, cluster_skipped, losses, workload};

#[test]
fn users_spread_over_all_nodes_and_each_stays_in_one_slot() {
    if cluster_skipped() {
        return;
    }
    let cluster = LocalCluster::shared();
    let url = cluster.url();
    let mut mint = Mint::new(71);
    let mut bob = Mint::new(72);
    let bob_id = bob.owner.user_id();
    let mut per_node: HashMap<u16, u32> = HashMap::new();
    let mut slots = HashSet::new();
    let users = 150;
    for u in 0..users {
        let s = TestStore::on(&url, "spread", Policy::DEFAULT);
        assert!(s.is_cluster());
        let slot = s.slot().unwrap();
        slots.insert(slot);
        let master = cluster.master_of(slot);
        assert_eq!(s.node(), format!("127.0.0.1:{master}"), "the store talks to its slot's master");
        *per_node.entry(master).or_default() += 1;

        let e = mint.coin(Tier::Bronze, 100).vault;
        s.put(&e).unwrap();
        s.register_contact(&ContactMeta::new(bob_id, Priority::Mate, "bob", 0).unwrap()).unwrap();
        let c = bob.coin(Tier::Bronze, 0).public;
        s.store_coin(&bob_id, &c, 1).unwrap();
        let blob = SessionBlob::from_slice(&[u as u8]).unwrap();
        s.burn_and_save_session(&e.key_id, 200, &bob_id, &blob, None).unwrap();
        assert_eq!(s.select_coin(&bob_id, Tier::Bronze, Tier::Bronze, 2).unwrap().coin.unwrap().coin.key_id, c.key_id);
        s.save_session(&bob_id, Direction::Send, &blob, None).unwrap();
        assert_eq!(s.counts(&bob_id).unwrap().total(), 0);
        assert!(s.audit().unwrap().consistent());

        // Every key of this user, read on its node, hashes to the store's slot.
        if u % 25 == 0 {
            let mut con = cluster.node(master);
            let pattern = format!("{{{}}}:*", s.prefix());
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con).unwrap();
            assert!(keys.len() >= 6, "{keys:?}");
            for k in &keys {
                let ks: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(k).query(&mut con).unwrap();
                assert_eq!(ks, slot, "{k}");
            }
        }
    }
    eprintln!("{users} users over {} slots; per master: {per_node:?}", slots.len());
    assert_eq!(per_node.len(), 3, "users on every master: {per_node:?}");
    assert!(per_node.values().all(|n| *n >= users / 6), "{per_node:?}");
}

#[test]
fn one_node_url_finds_the_cluster_and_scripts_reload_on_every_node() {
    if cluster_skipped() {
        return;
    }
    let cluster = LocalCluster::shared();
    let mut mint = Mint::new(73);
    // One seed (a replica, even) is enough: the store asks it for the slot map.
    let one = format!("redis://127.0.0.1:{}", cluster.base + 5);
    let stores: Vec<TestStore> = (0..12).map(|_| TestStore::on(&one, "seed", Policy::DEFAULT)).collect();
    assert!(stores.iter().all(|s| s.is_cluster()));
    for p in cluster.ports() {
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut cluster.node(p)).unwrap();
    }
    for s in &stores {
        let e = mint.coin(Tier::Silver, 10).vault;
        s.put(&e).unwrap();
        s.burn(&e.key_id, 11).unwrap();
        assert_eq!(s.stats().unwrap().total_burned, 1);
    }
    // An empty prefix has no hash tag: refused on a cluster, with what to do.
    let err = RedisStore::connect(&cluster.url(), "", Policy::DEFAULT, common::sealed()).unwrap_err();
    assert!(matches!(err, aqm_storage_redis::Error::Config(_)) && err.to_string().contains("prefix"), "{err}");
    // A brace would break the tag.
    assert!(RedisStore::connect(&cluster.url(), "a{b}", Policy::DEFAULT, common::sealed()).is_err());
}

/// The slot of a store moves to another master while a workload runs on it: keys go over in
/// batches of two (so the workload meets the half-migrated slot), then the slot is assigned to the
/// new master. Every call still succeeds (the store waits out `ASK` / `TRYAGAIN` / a script's
/// "non local key" and follows `MOVED`), nothing acknowledged is lost, no coin is handed out
/// twice, and the counters equal the contents.
#[test]
fn a_slot_migrates_while_the_workload_runs() {
    if cluster_skipped() {
        return;
    }
    let cluster = LocalCluster::private(7220);
    let url = cluster.url();
    let opts = Options {
        attempts: 40,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        ..Options::default()
    };
    let prefix = common::unique_prefix("migrate");
    let store = RedisStore::connect_with(&url, &prefix, Policy::DEFAULT, common::sealed(), opts).unwrap();
    let slot = store.slot().unwrap();
    let src = cluster.master_of(slot);
    let dst = cluster.topology().iter().find(|n| n.2 && !n.4.is_empty() && n.1 != src).map(|n| n.1).unwrap();

    let mut mint = Mint::new(74);
    let mut bob = Mint::new(75);
    let bob_id = bob.owner.user_id();
    store.register_contact(&ContactMeta::new(bob_id, Priority::Mate, "bob", 0).unwrap()).unwrap();
    let entries: Vec<VaultEntry> = (0..3000).map(|_| mint.coin(Tier::Bronze, 1_000).vault).collect();
    let coins: Vec<PublicCoin> = (0..3000).map(|_| bob.coin(Tier::Bronze, 0).public).collect();
    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);

    let outcomes = std::thread::scope(|sc| {
        let w = sc.spawn(|| workload(&store, &entries, &coins, bob_id, &stop, &progress));
        while progress.load(Ordering::Relaxed) < 100 && !w.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        // CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE in batches, SETSLOT NODE everywhere.
        let (src_id, dst_id) = (cluster.id_of(src), cluster.id_of(dst));
        let mut s = cluster.node(src);
        let mut d = cluster.node(dst);
        let _: () = redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(&src_id).query(&mut d).unwrap();
        let _: () = redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(&dst_id).query(&mut s).unwrap();
        let mut moved = 0;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(2).query(&mut s).unwrap();
            if keys.is_empty() {
                break;
            }
            let _: () = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(dst)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query(&mut s)
                .unwrap();
            moved += keys.len();
            std::thread::sleep(Duration::from_millis(15));
        }
        for p in cluster.topology().iter().filter(|n| n.2).map(|n| n.1) {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&dst_id)
                .query(&mut cluster.node(p))
                .unwrap();
        }
        eprintln!("slot {slot}: {moved} keys moved from {src} to {dst}");
        let at = progress.load(Ordering::Relaxed);
        while progress.load(Ordering::Relaxed) < at + 100 && !w.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        w.join().unwrap()
    });
    assert_eq!(cluster.master_of(slot), dst);
    assert_eq!(store.node(), format!("127.0.0.1:{dst}"), "the store followed MOVED");
    assert!(outcomes.unexpected.is_empty(), "{:?}", outcomes.unexpected);
    assert_eq!(outcomes.unknown(), 0, "no call of unknown outcome: {outcomes:?}");
    assert_eq!(outcomes.refused, 0, "no call gave up");
    let check = RedisStore::connect(&url, &prefix, Policy::DEFAULT, common::sealed()).unwrap();
    let audit = check.audit().unwrap();
    assert!(audit.consistent(), "{audit:?}");
    let lost = losses(&check, &outcomes, bob_id);
    assert!(lost.none(), "{lost:?}");
    eprintln!(
        "{} iterations: {} puts, {} burns, {} stores, {} selects, {} session saves acknowledged",
        outcomes.ops,
        outcomes.put_ok.len(),
        outcomes.burn_ok.len(),
        outcomes.stored_ok.len(),
        outcomes.selected_ok.len(),
        outcomes.session_ok.len()
    );
    check.destroy_all().unwrap();
}
