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
use aqm_storage_redis::{RedisStore, Sealing};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub fn url() -> String {
    std::env::var("AQM_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The sealing of the tests that open a prefix by hand (a fixed test device key, so every
/// connection of such a test opens the others' records).
pub fn sealed() -> Sealing {
    Sealing::sealed(&DeviceKey::from_bytes(*b"aqm-storage-redis test device k!"))
}

pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("aqmtest-{tag}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A store under a fresh prefix, its metadata sealed under its own random device key (`.1`); its
/// keys are deleted on drop.
pub struct TestStore(pub RedisStore, pub DeviceKey, pub String);

impl TestStore {
    pub fn new(tag: &str) -> Self {
        Self::with_policy(tag, Policy::DEFAULT)
    }
    pub fn with_policy(tag: &str, policy: Policy) -> Self {
        Self::on(&url(), tag, policy)
    }
    /// A store under a fresh prefix on `url` (one server, or a cluster's nodes).
    pub fn on(url: &str, tag: &str, policy: Policy) -> Self {
        let dk = DeviceKey::random(&mut rand::rng());
        let store = RedisStore::connect(url, &unique_prefix(tag), policy, Sealing::sealed(&dk))
            .expect("Redis reachable for tests");
        TestStore(store, dk, url.to_owned())
    }
    /// A store under a fresh prefix with contact metadata in clear ([`Sealing::unsealed`]), for
    /// tests that build raw states by hand.
    pub fn unsealed(tag: &str, policy: Policy) -> Self {
        let dk = DeviceKey::random(&mut rand::rng());
        let store = RedisStore::connect(&url(), &unique_prefix(tag), policy, Sealing::unsealed())
            .expect("Redis reachable for tests");
        TestStore(store, dk, url())
    }
    /// Another store (own pool) on the same prefix, in the same mode.
    pub fn sibling(&self) -> RedisStore {
        let sealing = if self.0.is_sealed() { Sealing::sealed(&self.1) } else { Sealing::unsealed() };
        RedisStore::connect(&self.2, self.0.prefix(), self.0.policy().clone(), sealing).expect("Redis reachable")
    }
    /// The sealing this store was opened with (for another connection to its prefix).
    pub fn sealing(&self) -> Sealing {
        if self.0.is_sealed() { Sealing::sealed(&self.1) } else { Sealing::unsealed() }
    }
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(url()).unwrap().get_connection().unwrap()
    }
    /// Every key of this store with its type, as plain Redis lists them.
    pub fn all_keys(&self) -> Vec<String> {
        let mut con = self.raw();
        let pattern = format!("{{{}}}:*", self.0.prefix());
        let mut keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con).unwrap();
        keys.sort();
        keys
    }
    /// The full key name of `rest` under this store's prefix (the prefix is the hash tag).
    pub fn key(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.0.prefix())
    }
    /// The name `rest` had under this prefix in formats v1 and v2 (no hash tag).
    pub fn legacy_key(&self, rest: &str) -> String {
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

/// A local Redis Cluster (3 masters + 3 replicas) run by `scripts/redis-cluster.sh` on loopback
/// ports `base..base+5`.
pub struct LocalCluster {
    pub base: u16,
    /// Stop it (and remove its directory) on drop: a private cluster of one test.
    private: bool,
}

fn cluster_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster.sh")
}

fn run_cluster_script(args: &[&str]) {
    let out = std::process::Command::new("bash").arg(cluster_script()).args(args).output().expect("bash");
    assert!(
        out.status.success(),
        "scripts/redis-cluster.sh {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the cluster tests must be skipped: `AQM_REDIS_CLUSTER=unavailable` (never in CI, where
/// they must run). Prints why.
pub fn cluster_skipped() -> bool {
    if std::env::var("AQM_REDIS_CLUSTER").as_deref() == Ok("unavailable") {
        assert!(std::env::var("CI").is_err(), "AQM_REDIS_CLUSTER=unavailable, but CI must run the cluster tests");
        eprintln!(
            "SKIPPED: AQM_REDIS_CLUSTER=unavailable (unset it to start a local cluster with scripts/redis-cluster.sh)"
        );
        return true;
    }
    false
}

/// One line of `CLUSTER NODES`: id, port, is a master, its master's id, slot ranges.
pub type NodeRow = (String, u16, bool, String, Vec<(u16, u16)>);

impl LocalCluster {
    /// The shared cluster (`AQM_REDIS_CLUSTER_BASE`, default 7100), started if it is not running
    /// and left running for the other tests.
    pub fn shared() -> Self {
        let base = std::env::var("AQM_REDIS_CLUSTER_BASE").ok().and_then(|b| b.parse().ok()).unwrap_or(7100);
        run_cluster_script(&["start", &base.to_string()]);
        LocalCluster { base, private: false }
    }

    /// A cluster of this test alone on `base..base+5`, stopped and removed on drop.
    pub fn private(base: u16) -> Self {
        run_cluster_script(&["stop", &base.to_string()]);
        run_cluster_script(&["start", &base.to_string()]);
        LocalCluster { base, private: true }
    }

    /// Start every node that is not running (a killed one rejoins, as a replica if it was failed
    /// over) and wait for `cluster_state:ok`.
    pub fn restart_missing(&self) {
        run_cluster_script(&["start", &self.base.to_string()]);
    }

    pub fn ports(&self) -> Vec<u16> {
        (self.base..self.base + 6).collect()
    }

    /// The seed list for `RedisStore::connect`.
    pub fn url(&self) -> String {
        self.ports().iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    pub fn node(&self, port: u16) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        c.get_connection_with_timeout(std::time::Duration::from_secs(1)).unwrap()
    }

    /// `CLUSTER NODES` of a live node, as (id, port, is_master, master id, slot ranges).
    pub fn topology(&self) -> Vec<NodeRow> {
        for p in self.ports() {
            let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{p}")) else { continue };
            let Ok(mut c) = c.get_connection_with_timeout(std::time::Duration::from_millis(300)) else { continue };
            let Ok(text) = redis::cmd("CLUSTER").arg("NODES").query::<String>(&mut c) else { continue };
            return text
                .lines()
                .filter(|l| !l.contains("fail") && !l.contains("noaddr"))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let port = f.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
                    let master = f.get(2)?.contains("master");
                    let ranges = f
                        .iter()
                        .skip(8)
                        .filter(|r| !r.starts_with('['))
                        .filter_map(|r| match r.split_once('-') {
                            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                            None => r.parse().ok().map(|s| (s, s)),
                        })
                        .collect();
                    Some((f[0].to_owned(), port, master, f.get(3)?.to_string(), ranges))
                })
                .collect();
        }
        panic!("no cluster node on {}.. answers", self.base)
    }

    /// The port of the master serving `slot`.
    pub fn master_of(&self, slot: u16) -> u16 {
        self.topology()
            .iter()
            .find(|n| n.2 && n.4.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|n| n.1)
            .expect("slot served")
    }

    /// The port of a replica of the master on `port`.
    pub fn replica_of(&self, port: u16) -> u16 {
        let t = self.topology();
        let id = t.iter().find(|n| n.1 == port).map(|n| n.0.clone()).expect("master known");
        t.iter().find(|n| !n.2 && n.3 == id).map(|n| n.1).expect("a replica")
    }

    /// The node id of the node on `port`.
    pub fn id_of(&self, port: u16) -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut self.node(port)).unwrap()
    }

    fn pid(&self, port: u16) -> String {
        let dir = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
        std::fs::read_to_string(format!("{dir}/aqm-redis-cluster-{}/{port}/redis.pid", self.base))
            .expect("pid file")
            .trim()
            .to_owned()
    }

    /// Send `signal` (KILL, STOP, CONT) to the node on `port`.
    pub fn signal(&self, port: u16, signal: &str) {
        let pid = self.pid(port);
        let ok = std::process::Command::new("kill").arg(format!("-{signal}")).arg(&pid).status().unwrap().success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Wait until a master other than `old` serves `slot` and the cluster is ok again.
    pub fn wait_failover(&self, slot: u16, old: u16) -> u16 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let t = self.topology();
            if let Some(n) = t.iter().find(|n| n.2 && n.1 != old && n.4.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            {
                return n.1;
            }
            assert!(std::time::Instant::now() < deadline, "no failover of slot {slot} within 30 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if self.private {
            let _ = std::process::Command::new("bash")
                .arg(cluster_script())
                .args(["stop", &self.base.to_string()])
                .output();
        }
    }
}

/// What a workload saw, per kind of change: acknowledged (with when), and of unknown outcome
/// (a lost reply, or applied on the master but not confirmed by a replica).
#[derive(Default, Debug)]
pub struct Outcomes {
    pub put_ok: Vec<(aqm_core::KeyId, std::time::Instant)>,
    pub put_unknown: Vec<aqm_core::KeyId>,
    pub burn_ok: Vec<(aqm_core::KeyId, std::time::Instant)>,
    pub burn_unknown: Vec<aqm_core::KeyId>,
    pub stored_ok: Vec<(aqm_core::KeyId, std::time::Instant)>,
    pub stored_unknown: Vec<aqm_core::KeyId>,
    pub selected_ok: Vec<(aqm_core::KeyId, std::time::Instant)>,
    pub select_unknown: u32,
    pub session_ok: Vec<(u64, std::time::Instant)>,
    pub session_unknown: u32,
    /// Calls that failed with an error saying nothing was applied.
    pub refused: u32,
    /// Anything else (must stay empty).
    pub unexpected: Vec<String>,
    pub ops: u64,
}

impl Outcomes {
    pub fn unknown(&self) -> usize {
        self.put_unknown.len()
            + self.burn_unknown.len()
            + self.stored_unknown.len()
            + self.select_unknown as usize
            + self.session_unknown as usize
    }
}

enum Seen {
    Ok,
    Unknown,
    Refused,
    Core(aqm_core::Error),
    Other(String),
}

fn seen<T>(r: &Result<T, aqm_storage_redis::Error>) -> Seen {
    use aqm_storage_redis::Error as E;
    match r {
        Ok(_) => Seen::Ok,
        Err(E::Unavailable { outcome_known: true, .. }) => Seen::Refused,
        Err(E::Unavailable { outcome_known: false, .. } | E::NotReplicated { .. }) => Seen::Unknown,
        Err(E::Core(e)) => Seen::Core(*e),
        Err(e) => Seen::Other(e.to_string()),
    }
}

/// A mixed workload on one store until `stop`: put a vault entry, burn the previous one, cache a
/// coin of `contact` and select one, save the SEND session of `contact` (compare-and-swap on the
/// version just loaded). `progress` counts iterations.
pub fn workload(
    store: &RedisStore,
    entries: &[aqm_core::vault::VaultEntry],
    coins: &[aqm_core::coin::PublicCoin],
    contact: aqm_core::UserId,
    stop: &std::sync::atomic::AtomicBool,
    progress: &AtomicU64,
) -> Outcomes {
    use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
    use std::time::Instant;
    let mut o = Outcomes::default();
    for (i, (e, c)) in entries.iter().zip(coins).enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let r = store.put(e);
        match seen(&r) {
            Seen::Ok => o.put_ok.push((e.key_id, Instant::now())),
            Seen::Unknown => o.put_unknown.push(e.key_id),
            Seen::Refused => o.refused += 1,
            Seen::Core(err) => o.unexpected.push(format!("put: {err}")),
            Seen::Other(err) => o.unexpected.push(format!("put: {err}")),
        }
        if i > 0 {
            let prev = entries[i - 1].key_id;
            let r = store.burn(&prev, 2_000);
            match seen(&r) {
                Seen::Ok => o.burn_ok.push((prev, Instant::now())),
                Seen::Unknown => o.burn_unknown.push(prev),
                Seen::Refused => o.refused += 1,
                // Its put failed, or an earlier attempt of unknown outcome went through.
                Seen::Core(aqm_core::Error::KeyNotFound | aqm_core::Error::KeyAlreadyBurned) => {}
                Seen::Core(err) => o.unexpected.push(format!("burn: {err}")),
                Seen::Other(err) => o.unexpected.push(format!("burn: {err}")),
            }
        }
        let r = store.store_coin(&contact, c, 1);
        match seen(&r) {
            Seen::Ok => o.stored_ok.push((c.key_id, Instant::now())),
            Seen::Unknown => o.stored_unknown.push(c.key_id),
            Seen::Refused => o.refused += 1,
            Seen::Core(aqm_core::Error::BudgetExceeded { .. }) => {}
            Seen::Core(err) => o.unexpected.push(format!("store: {err}")),
            Seen::Other(err) => o.unexpected.push(format!("store: {err}")),
        }
        let r = store.select_coin(&contact, aqm_core::Tier::Bronze, aqm_core::Tier::Bronze, 3);
        match (&r, seen(&r)) {
            (Ok(sel), _) => {
                if let Some(got) = &sel.coin {
                    o.selected_ok.push((got.coin.key_id, Instant::now()));
                }
            }
            (_, Seen::Unknown) => o.select_unknown += 1,
            (_, Seen::Refused) => o.refused += 1,
            (Err(err), _) => o.unexpected.push(format!("select: {err}")),
        }
        let loaded = store.load_session(&contact, Direction::Send);
        match loaded {
            Ok(current) => {
                let blob = SessionBlob::from_slice(&(i as u64).to_be_bytes()).unwrap();
                let r = store.save_session(&contact, Direction::Send, &blob, current.map(|s| s.version));
                match (&r, seen(&r)) {
                    (Ok(v), _) => o.session_ok.push((v.0, Instant::now())),
                    (_, Seen::Unknown) => o.session_unknown += 1,
                    (_, Seen::Refused) => o.refused += 1,
                    // Another attempt of unknown outcome went through in between.
                    (_, Seen::Core(aqm_core::Error::SessionConflict)) => {}
                    (Err(err), _) => o.unexpected.push(format!("save_session: {err}")),
                }
            }
            Err(aqm_storage_redis::Error::Unavailable { .. }) => o.refused += 1,
            Err(err) => o.unexpected.push(format!("load_session: {err}")),
        }
        o.ops += 1;
        progress.fetch_add(1, Ordering::Relaxed);
    }
    o
}

/// What a [`workload`] lost, read back through `check` (a fresh store on the same prefix): each
/// acknowledged change that is not there, with the time it was acknowledged.
#[derive(Default)]
pub struct Losses {
    pub puts: Vec<std::time::Instant>,
    pub burns: Vec<std::time::Instant>,
    /// Acknowledged selections whose coin is back in the inventory.
    pub selects: Vec<std::time::Instant>,
    /// Coins acknowledged as selected twice.
    pub selected_twice: usize,
    /// Acknowledged stores whose coin is neither there nor was selected (beyond the selects of
    /// unknown outcome, which may have taken them).
    pub stores: usize,
    /// The last acknowledged session version, when the store holds an older one.
    pub session: Option<(u64, u64, std::time::Instant)>,
    /// Session versions acknowledged twice (a rolled-back record saved again: the same version
    /// number with other chain state), with the time of the second acknowledgement.
    pub session_reused: Vec<std::time::Instant>,
}

impl std::fmt::Debug for Losses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost {} puts, {} burns, {} selects (coin back), {} stores; {} coins selected twice; \
             {} session versions acknowledged twice; session {:?}",
            self.puts.len(),
            self.burns.len(),
            self.selects.len(),
            self.stores,
            self.selected_twice,
            self.session_reused.len(),
            self.session.map(|(acked, now, _)| format!("acknowledged v{acked}, holds v{now}"))
        )
    }
}

impl Losses {
    pub fn none(&self) -> bool {
        self.puts.is_empty()
            && self.burns.is_empty()
            && self.selects.is_empty()
            && self.selected_twice == 0
            && self.stores == 0
            && self.session.is_none()
            && self.session_reused.is_empty()
    }
    /// Every loss was acknowledged at or after `from`.
    pub fn all_after(&self, from: std::time::Instant) -> bool {
        self.puts.iter().chain(&self.burns).chain(&self.selects).chain(&self.session_reused).all(|t| *t >= from)
            && self.session.is_none_or(|(_, _, t)| t >= from)
    }
}

pub fn losses(check: &RedisStore, o: &Outcomes, contact: aqm_core::UserId) -> Losses {
    use aqm_core::store::{Direction, InventoryStore, SessionStore, VaultStore};
    use aqm_core::vault::KeyStatus;
    use std::collections::HashSet;
    let mut l = Losses::default();
    let unknown_burns: HashSet<_> = o.burn_unknown.iter().collect();
    let burned: HashSet<_> = o.burn_ok.iter().map(|(id, _)| id).collect();
    for (id, t) in &o.put_ok {
        match check.status(id).unwrap() {
            None => l.puts.push(*t),
            Some(KeyStatus::Active) if burned.contains(id) => {}
            Some(_) => {}
        }
    }
    for (id, t) in &o.burn_ok {
        if check.status(id).unwrap() != Some(KeyStatus::Burned) {
            l.burns.push(*t);
        }
    }
    let _ = unknown_burns;
    let mut seen = HashSet::new();
    for (id, _) in &o.selected_ok {
        if !seen.insert(*id) {
            l.selected_twice += 1;
        }
    }
    let mut present = HashSet::new();
    while let Some(c) = check.select_coin(&contact, aqm_core::Tier::Bronze, aqm_core::Tier::Bronze, 9).unwrap().coin {
        present.insert(c.coin.key_id);
    }
    for (id, t) in &o.selected_ok {
        if present.contains(id) {
            l.selects.push(*t);
        }
    }
    let missing = o.stored_ok.iter().filter(|(id, _)| !present.contains(id) && !seen.contains(id)).count();
    l.stores = missing.saturating_sub(o.select_unknown as usize);
    let mut versions = HashSet::new();
    for (v, t) in &o.session_ok {
        if !versions.insert(*v) {
            l.session_reused.push(*t);
        }
    }
    if let Some((v, t)) = o.session_ok.iter().max_by_key(|(v, _)| *v) {
        let now = check.load_session(&contact, Direction::Send).unwrap().map(|s| s.version.0).unwrap_or(0);
        if now < *v {
            l.session = Some((*v, now, *t));
        }
    }
    l
}
