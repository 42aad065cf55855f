//! The hot path on a real Redis beside a raw `PING` round trip on the same pooled connection:
//! `cargo bench -p aqm-storage-redis --bench redis_ops` (Redis at `AQM_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Each operation is one round trip, so the ratio to `PING` shows what
//! the script itself costs on the server.
//!
//! Every operation runs twice, side by side: on a store with contact metadata sealed
//! (`Sealing::sealed`, the production mode: ids hashed in key names, records sealed) and on one in
//! the explicit unsealed mode (`Sealing::unsealed`: the same scripts and round trips, ids in hex and
//! records in clear), named `<op>/sealed` and `<op>/unsealed`: the difference is what sealing costs.
//!
//! `AQM_REDIS_URL` may be a Redis Cluster's node list (`scripts/redis-cluster.sh nodes`), and
//! `AQM_REDIS_WAIT_MS=N` turns on `Durability::Replicas { replicas: 1, timeout: N ms }` (every
//! change waits for one replica). The criterion group is named after the setup: `redis`,
//! `redis-cluster`, `redis-cluster-wait1` (`redis-wait1` on one server with a replica).

use std::time::Duration;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redis::{Durability, Options, RedisStore, Sealing};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;

struct Guard(RedisStore);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.destroy_all();
    }
}

fn open(sealing: Sealing, mode: &str) -> Guard {
    let url = std::env::var("AQM_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // Burned keys are purged at once so the same minted entry can be stored and burned again.
    let policy = Policy { burn_grace_secs: 0, ..Policy::DEFAULT };
    let prefix = format!("aqmbench-{mode}-{}", std::process::id());
    let durability = match std::env::var("AQM_REDIS_WAIT_MS").ok().and_then(|ms| ms.parse().ok()) {
        Some(ms) => Durability::Replicas { replicas: 1, timeout: Duration::from_millis(ms) },
        None => Durability::Async,
    };
    let opts = Options { durability, ..Options::default() };
    Guard(RedisStore::connect_with(&url, &prefix, policy, sealing, opts).expect("Redis reachable at AQM_REDIS_URL"))
}

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let device_key = DeviceKey::random(&mut rng);
    let guards =
        [(open(Sealing::sealed(&device_key), "sealed"), "sealed"), (open(Sealing::unsealed(), "unsealed"), "unsealed")];
    let bob = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    let bob_id = bob.user_id();
    for (g, _) in &guards {
        g.0.register_contact(&ContactMeta::new(bob_id, Priority::Bestie, "bob", 0).expect("meta")).expect("register");
    }
    let coin_of = |tier: Tier, rng: &mut rand_chacha::ChaCha20Rng| -> coin::MintedCoin {
        coin::mint(&bob, tier, &dk, 1, rng).expect("mint")
    };

    let wait = std::env::var("AQM_REDIS_WAIT_MS").is_ok();
    let group = match (guards[0].0.0.is_cluster(), wait) {
        (false, false) => "redis",
        (false, true) => "redis-wait1",
        (true, false) => "redis-cluster",
        (true, true) => "redis-cluster-wait1",
    };
    let mut g = c.benchmark_group(group);
    for (guard, mode) in &guards {
        let store = &guard.0;
        g.bench_function(format!("ping/{mode}"), |b| b.iter(|| store.ping().expect("ping")));
    }

    for tier in [Tier::Gold, Tier::Bronze] {
        let coin: PublicCoin = coin_of(tier, &mut rng).public;
        for (guard, mode) in &guards {
            let store = &guard.0;
            g.bench_function(format!("store_coin_{tier}/{mode}"), |b| {
                b.iter_batched(
                    || {
                        // Untimed: take the previous round's coin out again.
                        store.consume(&bob_id, &coin.key_id).expect("consume");
                    },
                    |()| store.store_coin(&bob_id, &coin, 2).expect("store"),
                    BatchSize::PerIteration,
                )
            });
            store.consume(&bob_id, &coin.key_id).expect("consume");
        }
        for (guard, mode) in &guards {
            let store = &guard.0;
            g.bench_function(format!("select_coin_{tier}/{mode}"), |b| {
                b.iter_batched(
                    || store.store_coin(&bob_id, &coin, 2).expect("store"),
                    |()| store.select_coin(&bob_id, tier, Tier::Bronze, 3).expect("select").coin.expect("a coin"),
                    BatchSize::PerIteration,
                )
            });
        }
    }

    let entry = coin_of(Tier::Silver, &mut rng).vault;
    for (guard, mode) in &guards {
        let store = &guard.0;
        g.bench_function(format!("burn/{mode}"), |b| {
            b.iter_batched(
                || {
                    store.purge(5).expect("purge");
                    store.put(&entry).expect("put");
                },
                |()| store.burn(&entry.key_id, 5).expect("burn"),
                BatchSize::PerIteration,
            )
        });
    }
    let blob = SessionBlob::from_slice(&[7u8; 600]).expect("blob");
    for (guard, mode) in &guards {
        let store = &guard.0;
        g.bench_function(format!("burn_and_save_session/{mode}"), |b| {
            b.iter_batched(
                || {
                    store.purge(5).expect("purge");
                    store.put(&entry).expect("put");
                    store.load_session(&bob_id, Direction::Receive).expect("load").map(|s| s.version)
                },
                |v| store.burn_and_save_session(&entry.key_id, 5, &bob_id, &blob, v).expect("burn"),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(100)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
