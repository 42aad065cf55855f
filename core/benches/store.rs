//! Reference-store benchmarks: the inventory's hot path on [`MemoryStore`].
//!
//! - `store/select_coin`: pop the oldest coin of a tier (with the fallback decision and the
//!   activity update) from a BESTIE holding a full inventory (5/4/1); the coin is put back
//!   outside the timed section.
//! - `store/store_coin`: admit and cache one coin against the cap (the coin is removed again
//!   outside the timed section).
//! - `store/clone_coin`: cloning one cached GOLD coin (4.6 KB), the floor under both.
//!
//! Run: `cargo bench -p aqm-core --bench store`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aqm_core::memory::MemoryStore;
use aqm_core::store::InventoryStore;
use aqm_core::testkit::fixtures::{T0, fixtures};
use aqm_core::{Policy, Priority, Tier};
use criterion::{Criterion, criterion_group, criterion_main};

fn full_bestie() -> MemoryStore {
    let bob = &fixtures().bob;
    let s = MemoryStore::new(Policy::DEFAULT);
    s.register_contact(&bob.as_contact(Priority::Bestie, T0)).expect("register");
    for (tier, n) in [(Tier::Gold, 5), (Tier::Silver, 4), (Tier::Bronze, 1)] {
        for i in 0..n {
            s.store_coin(&bob.id(), bob.coin(tier, i), T0).expect("store");
        }
    }
    s
}

fn store(c: &mut Criterion) {
    let bob = &fixtures().bob;
    let id = bob.id();
    let s = full_bestie();
    let mut g = c.benchmark_group("store");
    g.bench_function("select_coin", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let got = s.select_coin(&id, Tier::Gold, Tier::Bronze, T0 + 1).expect("select").coin.expect("a coin");
                spent += start.elapsed();
                s.store_coin(&id, &got.coin, T0).expect("put back");
            }
            spent
        })
    });
    let spare = bob.coin(Tier::Gold, 5);
    s.select_coin(&id, Tier::Gold, Tier::Bronze, T0 + 1).expect("select").coin.expect("make room");
    g.bench_function("store_coin", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                s.store_coin(&id, spare, T0).expect("store");
                spent += start.elapsed();
                assert!(s.consume(&id, &spare.key_id).expect("consume"));
            }
            spent
        })
    });
    g.bench_function("clone_coin", |b| b.iter(|| black_box(spare.clone())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = store
}
criterion_main!(benches);
