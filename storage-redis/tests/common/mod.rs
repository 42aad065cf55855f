//! Shared helpers for the integration tests: a store under a unique prefix on the machine's
//! Redis (`AQM_REDIS_URL`, default `redis://127.0.0.1:6379`) that deletes its keys when dropped,
//! and real minted coins.
#![allow(dead_code)]

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aqm_core::coin::{self, MintedCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::{Policy, Tier};
use aqm_storage_redis::RedisStore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub fn url() -> String {
    std::env::var("AQM_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("aqmtest-{tag}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A store under a fresh prefix; its keys are deleted on drop.
pub struct TestStore(pub RedisStore);

impl TestStore {
    pub fn new(tag: &str) -> Self {
        Self::with_policy(tag, Policy::DEFAULT)
    }
    pub fn with_policy(tag: &str, policy: Policy) -> Self {
        TestStore(RedisStore::connect(&url(), &unique_prefix(tag), policy).expect("Redis reachable for tests"))
    }
    /// Another store (own pool) on the same prefix.
    pub fn sibling(&self) -> RedisStore {
        RedisStore::connect(&url(), self.0.prefix(), self.0.policy().clone()).expect("Redis reachable")
    }
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(url()).unwrap().get_connection().unwrap()
    }
    /// The full key name of `rest` under this store's prefix.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.0.prefix())
    }
}

impl Deref for TestStore {
    type Target = RedisStore;
    fn deref(&self) -> &RedisStore {
        &self.0
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let _ = self.0.destroy_all();
    }
}

/// A source of real coins: one owner identity and a device key.
pub struct Mint {
    pub owner: Identity,
    pub device_key: DeviceKey,
    rng: ChaCha20Rng,
}

impl Mint {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        Mint { owner: Identity::generate(&mut rng), device_key: DeviceKey::random(&mut rng), rng }
    }
    pub fn coin(&mut self, tier: Tier, now: u64) -> MintedCoin {
        coin::mint(&self.owner, tier, &self.device_key, now, &mut self.rng).expect("mint")
    }
    pub fn coins(&mut self, tier: Tier, n: usize, now: u64) -> Vec<MintedCoin> {
        (0..n).map(|_| self.coin(tier, now)).collect()
    }
}

/// A private `redis-server` on a free port, persisting to a temporary directory with AOF and
/// `appendfsync always` (every acknowledged write is on disk), no RDB snapshots.
pub struct PrivateRedis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = PrivateRedis { port, dir: tempfile::tempdir().unwrap(), child: None };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and directory; waits until it answers PING.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"])
            .args(["--logfile", "redis.log"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let ok = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ok {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "private redis-server did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no final fsync.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill9();
    }
}
