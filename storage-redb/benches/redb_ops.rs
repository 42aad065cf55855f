//! store_coin, select_coin and burn on a file-backed redb store, each beside the cost of an empty
//! durable redb commit on the same disk: the floor any durable mutation pays. The ratio says how
//! much AQM's own work (reads, rule checks, postcard, index and counter updates) adds to it.
//!
//! Each operation runs twice, side by side: on a store that seals its contact metadata (keyed
//! hashes for table keys, AES-256-GCM for values: `RedbStore::open`) and on one that keeps it
//! in clear (`RedbStore::open_unsealed`), same tables, same code: the difference is the cost
//! of sealing. A second group runs on tmpfs (`/dev/shm`, when there is one), where the fsync
//! costs next to nothing and the CPU cost shows.
//!
//! The contact's inventory is kept as small as a real one (at most [`HELD`] coins, drained
//! untimed): with thousands of coins cached, the cap check's count would be what is measured.
//!
//! Run: `cargo bench -p aqm-storage-redb --bench redb_ops`
//! (set `AQM_BENCH_DIR` to put the database on another disk; default: the system temp dir).

use std::path::Path;
use std::time::{Duration, Instant};

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::vault::VaultEntry;
use aqm_core::{KeyId, Policy, Priority, Tier, UserId};
use aqm_storage_redb::RedbStore;
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_700_000_000;
/// Most coins the `store_coin` bench lets its contact hold (the default BESTIE SILVER cap is 4).
const HELD: u64 = 8;

struct Bench {
    store: RedbStore,
    contact: UserId,
    coin: PublicCoin,
    entry: VaultEntry,
    next: u64,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new(dir: Option<&str>, sealed: bool) -> Bench {
        let dir = match dir.map(Into::into).or_else(|| std::env::var_os("AQM_BENCH_DIR")) {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .expect("temp dir for the bench database");
        // Caps out of the way: the bench measures the operation, not the refusal.
        let policy = Policy { caps: [[u32::MAX; 3]; 3], ..Policy::DEFAULT };
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let dk = DeviceKey::random(&mut rng);
        let path = dir.path().join("bench.redb");
        let store = if sealed {
            RedbStore::open(path, policy, &dk).expect("open sealed")
        } else {
            RedbStore::open_unsealed(path, policy).expect("open unsealed")
        };
        let bob = Identity::generate(&mut rng);
        let minted = coin::mint(&bob, Tier::Silver, &dk, NOW, &mut rng).expect("mint");
        store
            .register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", NOW).expect("meta"))
            .expect("register");
        Bench { store, contact: bob.user_id(), coin: minted.public, entry: minted.vault, next: 0, _dir: dir }
    }

    fn fresh_id(&mut self) -> KeyId {
        self.next += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next.to_be_bytes());
        KeyId(id)
    }

    fn store_one(&mut self) {
        let mut c = self.coin.clone();
        c.key_id = self.fresh_id();
        self.store.store_coin(&self.contact, &c, NOW).expect("store_coin");
    }

    /// Select every cached coin (the bench's contact holds SILVER only).
    fn drain(&mut self) {
        while self
            .store
            .select_coin(&self.contact, Tier::Silver, Tier::Silver, NOW)
            .expect("select_coin")
            .coin
            .is_some()
        {}
    }

    fn put_one(&mut self) -> KeyId {
        let mut e = self.entry.clone();
        e.key_id = self.fresh_id();
        self.store.put(&e).expect("put");
        e.key_id
    }
}

fn group(c: &mut Criterion, name: &str, dir: Option<&str>) {
    let mut g = c.benchmark_group(name);
    g.sample_size(40).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));

    let mut sealed = Bench::new(dir, true);
    let mut clear = Bench::new(dir, false);
    g.bench_function("empty_durable_commit", |bn| {
        bn.iter(|| {
            let tx = clear.store.database().begin_write().expect("begin");
            tx.commit().expect("commit");
        })
    });
    for (mode, b) in [("sealed", &mut sealed), ("clear", &mut clear)] {
        g.bench_function(format!("store_coin/{mode}"), |bn| {
            bn.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for i in 1..=iters {
                    let t = Instant::now();
                    b.store_one();
                    timed += t.elapsed();
                    // A real inventory holds a handful of coins per contact and tier (the caps):
                    // drain it, untimed, so the count the cap check takes stays that small.
                    if i % HELD == 0 {
                        b.drain();
                    }
                }
                b.drain();
                timed
            })
        });
        g.bench_function(format!("select_coin/{mode}"), |bn| {
            bn.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                // In batches of HELD: an inventory as small as a real one.
                while left > 0 {
                    let n = left.min(HELD);
                    for _ in 0..n {
                        b.store_one();
                    }
                    let t = Instant::now();
                    for _ in 0..n {
                        let got =
                            b.store.select_coin(&b.contact, Tier::Silver, Tier::Bronze, NOW).expect("select_coin").coin;
                        assert!(got.is_some(), "a coin was cached for every select");
                    }
                    timed += t.elapsed();
                    left -= n;
                }
                timed
            })
        });
        g.bench_function(format!("burn/{mode}"), |bn| {
            bn.iter_custom(|iters| {
                let ids: Vec<KeyId> = (0..iters).map(|_| b.put_one()).collect();
                let t = Instant::now();
                for id in &ids {
                    b.store.burn(id, NOW + 1).expect("burn");
                }
                t.elapsed()
            })
        });
    }
    g.finish();
}

/// On a file: every commit is durable (fsync), the number that matters on a device.
fn on_file(c: &mut Criterion) {
    group(c, "redb_file", None);
}

/// The same operations on tmpfs: the fsync is next to free, so what is left is AQM's and redb's
/// CPU work per operation, sealing included.
fn on_tmpfs(c: &mut Criterion) {
    if Path::new("/dev/shm").is_dir() {
        group(c, "redb_tmpfs", Some("/dev/shm"));
    }
}

criterion_group!(benches, on_file, on_tmpfs);
criterion_main!(benches);
