//! What sealing contact metadata costs on redb, measured paired ([`paired`]): each operation on a
//! sealed store (`RedbStore::open`) and on an unsealed one (`RedbStore::open_unsealed`), round
//! by round, so both see the same load and the same disk (criterion's `redb_ops` measures them
//! minutes apart). On a file (every commit durable) and on tmpfs (`/dev/shm`: the CPU cost).
//! Prints Markdown tables and writes them to `<target dir>/aqm-ab/redb.md` for
//! `scripts/figures.sh`.
//!
//! Run: `cargo bench -p aqm-storage-redb --bench sealing_ab` (`AQM_AB_ROUNDS`, default 400;
//! `AQM_BENCH_DIR` puts the file on another disk).

#[path = "support/paired.rs"]
mod paired;

use std::path::Path;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::vault::VaultEntry;
use aqm_core::{KeyId, Policy, Priority, Tier, UserId};
use aqm_storage_redb::RedbStore;
use paired::{paired, timed};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_700_000_000;

/// One store with a registered contact and a coin and vault entry to copy under fresh ids.
struct Fixture {
    store: RedbStore,
    contact: UserId,
    coin: PublicCoin,
    entry: VaultEntry,
    next: std::cell::Cell<u64>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(dir: Option<&Path>, sealed: bool) -> Fixture {
        let dir = match dir.map(Into::into).or_else(|| std::env::var_os("AQM_BENCH_DIR")) {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .expect("temp dir for the bench database");
        let policy = Policy { caps: [[u32::MAX; 3]; 3], ..Policy::DEFAULT };
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let dk = DeviceKey::random(&mut rng);
        let path = dir.path().join("ab.redb");
        let store = if sealed {
            RedbStore::open(path, policy, &dk).expect("open sealed")
        } else {
            RedbStore::open_unsealed(path, policy).expect("open unsealed")
        };
        let bob = Identity::generate(&mut rng);
        let minted = coin::mint(&bob, Tier::Silver, &dk, NOW, &mut rng).expect("mint");
        let meta = ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", NOW).expect("meta");
        store.register_contact(&meta).expect("register");
        Fixture { store, contact: bob.user_id(), coin: minted.public, entry: minted.vault, next: 0.into(), _dir: dir }
    }

    fn fresh_id(&self) -> KeyId {
        self.next.set(self.next.get() + 1);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next.get().to_be_bytes());
        KeyId(id)
    }

    fn fresh_coin(&self) -> PublicCoin {
        let mut c = self.coin.clone();
        c.key_id = self.fresh_id();
        c
    }
}

fn tables(dir: Option<&Path>, rounds: usize) -> String {
    let f = [Fixture::new(dir, true), Fixture::new(dir, false)];
    let stores = [&f[0], &f[1]];
    let mut rows = Vec::new();
    let floor = paired(stores, rounds, |x| {
        timed(|| x.store.database().begin_write().expect("begin").commit().expect("commit"))
    });
    rows.push(("empty durable commit (floor)".to_owned(), floor));
    // One coin in, one out: the inventory stays as small as a real one.
    let store = paired(stores, rounds, |x| {
        let c = x.fresh_coin();
        let d = timed(|| x.store.store_coin(&x.contact, &c, NOW).expect("store_coin"));
        x.store.consume(&x.contact, &c.key_id).expect("consume");
        d
    });
    rows.push(("store_coin".to_owned(), store));
    let select = paired(stores, rounds, |x| {
        x.store.store_coin(&x.contact, &x.fresh_coin(), NOW).expect("store_coin");
        timed(|| {
            x.store.select_coin(&x.contact, Tier::Silver, Tier::Bronze, NOW).expect("select").coin.expect("a coin")
        })
    });
    rows.push(("select_coin".to_owned(), select));
    let burn = paired(stores, rounds, |x| {
        let mut e = x.entry.clone();
        e.key_id = x.fresh_id();
        x.store.put(&e).expect("put");
        timed(|| x.store.burn(&e.key_id, NOW + 1).expect("burn"))
    });
    rows.push(("burn".to_owned(), burn));
    paired::table(rows, rounds)
}

fn main() {
    let rounds = paired::rounds(400);
    let mut out = format!("On a file (every commit durable):\n\n{}", tables(None, rounds));
    if Path::new("/dev/shm").is_dir() {
        out += &format!("\nOn tmpfs (`/dev/shm`: the CPU cost):\n\n{}", tables(Some(Path::new("/dev/shm")), rounds));
    }
    paired::report("redb", &out, rounds);
}
