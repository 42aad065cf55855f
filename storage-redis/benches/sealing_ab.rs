//! What sealing contact metadata costs on Redis, measured paired: every round runs an operation
//! on a sealed store (`Sealing::sealed`) and then the same on an unsealed one
//! (`Sealing::unsealed`), alternating which goes first, so both halves of a pair see the same
//! load on a shared machine (criterion's `redis_ops` measures them minutes apart, and on a busy
//! 2-core VM that drift is larger than the difference). Setup (refilling the coin, re-storing the
//! entry) is outside the timed part. Prints a Markdown table of medians and p90s and writes it to
//! `<target dir>/aqm-ab/redis.md` for `scripts/figures.sh`.
//!
//! Run: `cargo bench -p aqm-storage-redis --bench sealing_ab` (Redis at `AQM_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; `AQM_AB_ROUNDS`, default 2000).

#[path = "../../storage-redb/benches/support/paired.rs"]
mod paired;

use paired::{paired, timed};

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::{Policy, Priority, Tier, UserId};
use aqm_storage_redis::{RedisStore, Sealing};
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
    let prefix = format!("aqmab-{mode}-{}", std::process::id());
    Guard(RedisStore::connect(&url, &prefix, policy, sealing).expect("Redis reachable at AQM_REDIS_URL"))
}

fn main() {
    let rounds = paired::rounds(2000);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let device_key = DeviceKey::random(&mut rng);
    let (sealed, unsealed) = (open(Sealing::sealed(&device_key), "sealed"), open(Sealing::unsealed(), "unsealed"));
    let stores = [&sealed.0, &unsealed.0];
    let bob = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    let bob_id: UserId = bob.user_id();
    for s in stores {
        s.register_contact(&ContactMeta::new(bob_id, Priority::Bestie, "bob", 0).expect("meta")).expect("register");
    }

    let mut rows = Vec::new();
    let ping = paired(stores, rounds, |s| timed(|| s.ping().expect("ping")));
    rows.push(("ping".to_owned(), ping));
    for tier in [Tier::Gold, Tier::Bronze] {
        let coin = coin::mint(&bob, tier, &dk, 1, &mut rng).expect("mint").public;
        let store = paired(stores, rounds, |s| {
            s.consume(&bob_id, &coin.key_id).expect("consume");
            timed(|| s.store_coin(&bob_id, &coin, 2).expect("store"))
        });
        rows.push((format!("store_coin {tier}"), store));
        let select = paired(stores, rounds, |s| {
            s.consume(&bob_id, &coin.key_id).expect("consume");
            s.store_coin(&bob_id, &coin, 2).expect("store");
            timed(|| s.select_coin(&bob_id, tier, Tier::Bronze, 3).expect("select").coin.expect("a coin"))
        });
        rows.push((format!("select_coin {tier}"), select));
    }
    let entry = coin::mint(&bob, Tier::Silver, &dk, 1, &mut rng).expect("mint").vault;
    let burn = paired(stores, rounds, |s| {
        s.purge(5).expect("purge");
        s.put(&entry).expect("put");
        timed(|| s.burn(&entry.key_id, 5).expect("burn"))
    });
    rows.push(("burn".to_owned(), burn));
    let blob = SessionBlob::from_slice(&[7u8; 600]).expect("blob");
    let save = paired(stores, rounds, |s| {
        s.purge(5).expect("purge");
        s.put(&entry).expect("put");
        let v = s.load_session(&bob_id, Direction::Receive).expect("load").map(|x| x.version);
        timed(|| s.burn_and_save_session(&entry.key_id, 5, &bob_id, &blob, v).expect("burn"))
    });
    rows.push(("burn_and_save_session".to_owned(), save));

    paired::report("redis", &paired::table(rows, rounds), rounds);
}
