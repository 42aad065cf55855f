//! A small pool of blocking Redis connections with bounded retry, to one server or to the node
//! of a Redis Cluster that owns the store's slot.
//!
//! On a cluster every key of a store is in one hash slot ([`crate::keys::Keys::slot`]), so the
//! pool only ever needs the master that owns that slot: it learns it from `CLUSTER SLOTS`, follows
//! `MOVED` (the slot moved: the request did not run), and asks the cluster again after a broken
//! connection or `CLUSTERDOWN`. `ASK` (the slot is being migrated and the keys of a request are
//! partly moved) is answered by waiting and trying again until the migration of the slot ends
//! and the node answers `MOVED`: a script must see all of a store's keys, which during the
//! migration are split over two nodes. redis-rs's own `ClusterConnection` is not used because it
//! resends a request after a dropped connection, which would run a change twice.

use std::sync::Mutex;
use std::time::Duration;

use redis::io::tcp::TcpSettings;
use redis::{
    ConnectionAddr, ConnectionInfo, ConnectionLike, ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind, Value,
};

pub(crate) use redis::Connection;

use crate::Error;
use crate::scripts::{NOT_REPLICATED, Wait};

/// Connection and retry settings. [`Options::default`] suits a local or LAN Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Attempts per call before [`Error::Unavailable`] (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    /// Limit for establishing one TCP connection.
    pub connect_timeout: Duration,
    /// Limit for one request's reply (and for writing it).
    pub io_timeout: Duration,
    /// Idle connections kept for reuse; busier moments open more and close them afterwards.
    pub max_idle: usize,
    /// The longest wait between two attempts (the doubling stops there). On a cluster, give
    /// `attempts` and `max_backoff` enough room to cover a failover (`cluster-node-timeout` plus
    /// the election, a few seconds): e.g. 12 attempts up to 1 s each.
    pub max_backoff: Duration,
    /// When a change counts as done: at once ([`Durability::Async`], Redis's default), or once
    /// replicas confirmed it ([`Durability::Replicas`]).
    pub durability: Durability,
}

/// When a change is acknowledged. See the crate README's "Redis Cluster" section for what
/// survives a failover under each, and what the wait costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged when the master applied it. Replication is asynchronous: a failover can lose
    /// the changes the replica had not received yet.
    #[default]
    Async,
    /// Acknowledged only once `replicas` replicas confirmed it (`WAIT replicas timeout`, pipelined
    /// behind the change: still one round trip). With one replica per master, that replica is the
    /// only one a failover can promote, so no acknowledged change is lost. A change that did not
    /// reach enough replicas in `timeout` fails with [`Error::NotReplicated`] (it is applied on the
    /// master, and may or may not survive a failover).
    Replicas {
        /// Replicas that must confirm (1 for the usual one replica per master).
        replicas: u32,
        /// How long to wait for them.
        timeout: Duration,
    },
}

impl Durability {
    pub(crate) fn wait(&self) -> Option<Wait> {
        match *self {
            Durability::Async => None,
            Durability::Replicas { replicas, timeout } => {
                Some(Wait { replicas, timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1) })
            }
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            attempts: 4,
            backoff: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(5),
            max_idle: 16,
            max_backoff: Duration::from_secs(1),
            durability: Durability::Async,
        }
    }
}

/// Whether a call may be sent again after the connection broke mid-request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Reads (and nothing-changing scripts): safe to send again.
    Safe,
    /// Changes: a reply lost in flight leaves the outcome unknown, so never sent twice.
    Never,
    /// Changes that carry an operation token: the script recognises its own earlier run and
    /// answers as it did, so they are resent like reads. The outcome is unknown only when no
    /// attempt got a reply after one reached the server.
    Deduplicated,
}

/// Where requests go.
enum Target {
    /// One server.
    Single(redis::Client),
    /// The master of one slot of a Redis Cluster.
    Cluster(Cluster),
}

struct Cluster {
    /// The slot every key of the store hashes to.
    slot: u16,
    /// The first seed's settings (credentials, TCP settings), used for every node.
    base: ConnectionInfo,
    /// Nodes to ask for the slot map: the seeds, then every node learned from `CLUSTER SLOTS`.
    nodes: Mutex<Vec<(String, u16)>>,
}

/// The node requests go to, and a generation that changes with it (idle connections of an older
/// generation are not reused).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    host: String,
    port: u16,
    generation: u64,
}

pub(crate) struct Pool {
    target: Target,
    owner: Mutex<Owner>,
    addr: String,
    idle: Mutex<Vec<(u64, Connection)>>,
    opts: Options,
}

impl Pool {
    /// A pool for `nodes` (one URL, or several separated by commas). With `slot`, the first
    /// reachable node is asked whether it is a cluster node; a cluster (or several URLs) routes
    /// every request to the master of `slot`.
    pub(crate) fn new(nodes: &str, slot: Option<u16>, opts: Options) -> Result<Self, Error> {
        if opts.attempts == 0 {
            return Err(Error::Config("attempts must be at least 1".into()));
        }
        let infos = nodes
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.into_connection_info().map_err(|e| {
                    Error::Config(format!("{e}: use redis://[:password@]host:port[/db], or for a cluster a comma-separated list of its nodes"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = infos.first() else {
            return Err(Error::Config("no Redis URL given: use redis://host:port".into()));
        };
        let db = first.redis_settings().db();
        let addr = format!("{}/{db}", first.addr());
        let base = first.clone().set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let mut seeds = Vec::new();
        for info in &infos {
            match info.addr() {
                ConnectionAddr::Tcp(h, p) => seeds.push((h.clone(), *p)),
                other if infos.len() > 1 => {
                    return Err(Error::Config(format!(
                        "{other}: a cluster's nodes must be plain redis:// TCP addresses"
                    )));
                }
                _ => {}
            }
        }
        let (host, port) = seeds.first().cloned().unwrap_or_default();
        let client = redis::Client::open(base.clone()).map_err(|e| Error::Config(e.to_string()))?;
        let pool = Pool {
            target: Target::Single(client),
            owner: Mutex::new(Owner { host, port, generation: 0 }),
            addr,
            idle: Mutex::new(Vec::new()),
            opts,
        };
        let clustered = infos.len() > 1 || (!seeds.is_empty() && pool.is_cluster_node()?);
        if !clustered {
            return Ok(pool);
        }
        let Some(slot) = slot else {
            return Err(Error::Config(
                "Redis Cluster needs a key prefix: the prefix is the hash tag that keeps a user's keys on one node"
                    .into(),
            ));
        };
        if db != 0 {
            return Err(Error::Config("Redis Cluster has only database 0: drop the /db from the URL".into()));
        }
        let pool = Pool {
            target: Target::Cluster(Cluster { slot, base, nodes: Mutex::new(seeds) }),
            addr: format!("cluster slot {slot} via {}", pool.addr),
            ..pool
        };
        pool.refresh_owner().map_err(|reason| Error::Unavailable {
            addr: pool.addr.clone(),
            attempts: 1,
            reason,
            outcome_known: true,
        })?;
        Ok(pool)
    }

    /// Whether the one server is a Redis Cluster node (`cluster_enabled:1`). A server that
    /// refuses `INFO` (renamed away on some managed services) is taken as a single server.
    fn is_cluster_node(&self) -> Result<bool, Error> {
        match self.run(Resend::Safe, |c| redis::cmd("INFO").arg("cluster").query::<String>(c)) {
            Ok(info) => Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1")),
            Err(Error::Server(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The server address (for a cluster: the slot and the first seed), without credentials.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether requests go to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The node requests go to now (`host:port`).
    pub(crate) fn node(&self) -> String {
        let o = self.owner.lock().unwrap_or_else(|p| p.into_inner());
        format!("{}:{}", o.host, o.port)
    }

    fn owner(&self) -> Owner {
        self.owner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Send requests to `host:port` from now on (a no-op if they go there already).
    fn set_owner(&self, host: &str, port: u16) {
        let mut o = self.owner.lock().unwrap_or_else(|p| p.into_inner());
        if o.host != host || o.port != port {
            *o = Owner { host: host.to_owned(), port, generation: o.generation + 1 };
            drop(o);
            self.clear();
        }
    }

    fn open(&self, host: &str, port: u16) -> Result<Connection, RedisError> {
        let c = match &self.target {
            Target::Single(client) => client.get_connection_with_timeout(self.opts.connect_timeout)?,
            Target::Cluster(cl) => {
                let info = cl.base.clone().set_addr(ConnectionAddr::Tcp(host.to_owned(), port));
                redis::Client::open(info)?.get_connection_with_timeout(self.opts.connect_timeout)?
            }
        };
        c.set_read_timeout(Some(self.opts.io_timeout))?;
        c.set_write_timeout(Some(self.opts.io_timeout))?;
        Ok(c)
    }

    /// Ask the known nodes, in turn, which master owns the slot (`CLUSTER SLOTS`), and route
    /// there. Learns every node the answer names. Errors with the reason when no node answers.
    fn refresh_owner(&self) -> Result<(), String> {
        let Target::Cluster(cl) = &self.target else { return Ok(()) };
        let nodes = cl.nodes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut last = String::from("no cluster node known");
        for (host, port) in nodes {
            let reply =
                self.open(&host, port).and_then(|mut c| redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(&mut c));
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{host}:{port}: {e}");
                    continue;
                }
            };
            let (owner, learned) = parse_slots(&reply, cl.slot, &host);
            {
                let mut known = cl.nodes.lock().unwrap_or_else(|p| p.into_inner());
                for n in learned {
                    if !known.contains(&n) {
                        known.push(n);
                    }
                }
            }
            match owner {
                Some((h, p)) => {
                    self.set_owner(&h, p);
                    return Ok(());
                }
                None => last = format!("{host}:{port}: no master serves slot {} (cluster not ready?)", cl.slot),
            }
        }
        Err(last)
    }

    fn take(&self) -> Result<(u64, Connection), RedisError> {
        let owner = self.owner();
        {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            while let Some((generation, c)) = idle.pop() {
                if generation == owner.generation {
                    return Ok((generation, c));
                }
            }
        }
        Ok((owner.generation, self.open(&owner.host, owner.port)?))
    }

    fn give_back(&self, generation: u64, c: Connection) {
        if !c.is_open() || generation != self.owner().generation {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.opts.max_idle {
            idle.push((generation, c));
        }
    }

    /// Drop every idle connection (e.g. after the server restarted).
    pub(crate) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Run `f` on a connection, with up to `attempts` tries:
    /// - a connection that cannot be opened, and a server that answers "loading", "busy", "try
    ///   again", "no replicas", or on a cluster "cluster down", `ASK` or a script's "non local
    ///   key" (it did not run the request), are retried after a short backoff; `MOVED` is
    ///   followed at once;
    /// - a connection that breaks after the request was written is retried for
    ///   [`Resend::Safe`] and [`Resend::Deduplicated`] calls; a [`Resend::Never`] change gets
    ///   [`Error::Unavailable`] with `outcome_known: false` at once;
    /// - a change that too few replicas confirmed is [`Error::NotReplicated`] at once;
    /// - any other server error is returned at once as [`Error::Server`].
    pub(crate) fn run<T>(
        &self,
        resend: Resend,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let mut wait = self.opts.backoff;
        let mut attempt = 0;
        // Whether a deduplicated change may have run without our hearing of it.
        let mut maybe_applied = false;
        loop {
            attempt += 1;
            let last = attempt >= self.opts.attempts;
            let unavailable = |reason: &RedisError, outcome_known: bool| Error::Unavailable {
                addr: self.addr.clone(),
                attempts: attempt,
                reason: reason.to_string(),
                outcome_known,
            };
            // Whether to ask the cluster where the slot lives before the next attempt.
            let mut refresh = false;
            match self.take() {
                // Nothing was sent: always safe to try again.
                Err(e) if is_transport(&e) || is_not_run(&e) => {
                    if last {
                        return Err(unavailable(&e, !maybe_applied));
                    }
                    refresh = true;
                }
                Err(e) => return Err(Error::Server(e.to_string())),
                Ok((generation, mut conn)) => match f(&mut conn) {
                    Ok(v) => {
                        self.give_back(generation, conn);
                        return Ok(v);
                    }
                    Err(e) if self.is_cluster() && e.kind() == ErrorKind::Server(ServerErrorKind::Moved) => {
                        // The slot is served elsewhere now: the request did not run here.
                        self.give_back(generation, conn);
                        if last {
                            return Err(unavailable(&e, !maybe_applied));
                        }
                        match e.redirect_node().and_then(|(node, _)| split_host_port(node)) {
                            Some((h, p)) => self.set_owner(&h, p),
                            None => refresh = true,
                        }
                        if !refresh {
                            continue;
                        }
                    }
                    Err(e) if is_not_run(&e) || (self.is_cluster() && is_cluster_not_run(&e)) => {
                        self.give_back(generation, conn);
                        if last {
                            return Err(unavailable(&e, !maybe_applied));
                        }
                        refresh = self.is_cluster() && e.kind() != ErrorKind::Server(ServerErrorKind::Ask);
                    }
                    Err(e) if is_not_replicated(&e) => {
                        // Applied on the master: never resent (a replica that is down would make
                        // every resend wait out its timeout again).
                        self.give_back(generation, conn);
                        return Err(Error::NotReplicated {
                            addr: self.node(),
                            detail: e.detail().unwrap_or_default().to_owned(),
                        });
                    }
                    Err(e) if is_transport(&e) => {
                        // The connection is gone; so are the other idle ones, most likely.
                        drop(conn);
                        self.clear();
                        match resend {
                            Resend::Never => return Err(unavailable(&e, false)),
                            Resend::Deduplicated => maybe_applied = true,
                            Resend::Safe => {}
                        }
                        if last {
                            return Err(unavailable(&e, !maybe_applied));
                        }
                        refresh = true;
                    }
                    Err(e) => {
                        self.give_back(generation, conn);
                        return Err(Error::Server(e.to_string()));
                    }
                },
            }
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2).min(self.opts.max_backoff.max(self.opts.backoff));
            if refresh {
                // Best effort: if no node answers, the next attempt fails and says why.
                let _ = self.refresh_owner();
            }
        }
    }
}

/// A cluster node's host and port.
type Node = (String, u16);

/// The master of `slot` in a `CLUSTER SLOTS` reply, and every node the reply names. An empty
/// host means the node that was asked (`asked`).
fn parse_slots(reply: &Value, slot: u16, asked: &str) -> (Option<Node>, Vec<Node>) {
    let node = |v: &Value| -> Option<(String, u16)> {
        let Value::Array(f) = v else { return None };
        let host = match f.first()? {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = match f.get(1)? {
            Value::Int(p) => u16::try_from(*p).ok()?,
            _ => return None,
        };
        Some((if host.is_empty() || host == "?" { asked.to_owned() } else { host }, port))
    };
    let mut owner = None;
    let mut learned = Vec::new();
    let Value::Array(ranges) = reply else { return (None, learned) };
    for r in ranges {
        let Value::Array(f) = r else { continue };
        let (Some(Value::Int(lo)), Some(Value::Int(hi))) = (f.first(), f.get(1)) else { continue };
        let nodes: Vec<_> = f.iter().skip(2).filter_map(node).collect();
        if (*lo..=*hi).contains(&i64::from(slot)) {
            owner = nodes.first().cloned();
        }
        learned.extend(nodes);
    }
    (owner, learned)
}

/// `host:port` (IPv6 hosts may be bracketed) as its parts.
fn split_host_port(node: &str) -> Option<(String, u16)> {
    let (h, p) = node.rsplit_once(':')?;
    Some((h.trim_start_matches('[').trim_end_matches(']').to_owned(), p.parse().ok()?))
}

/// A cluster answer that says the request did not run: `CLUSTERDOWN`, `ASK` (the slot is being
/// migrated and the request's keys are not all here), `READONLY` (a node that became a replica),
/// and a script stopped at its first access of a key the node does not hold (every script reads
/// all its keys before it writes: `scripts.rs`) or because the cluster is down.
fn is_cluster_not_run(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ClusterDown | ServerErrorKind::Ask | ServerErrorKind::ReadOnly)
    ) || {
        let s = e.to_string();
        s.contains("Script attempted to access a non local key")
            || s.contains("Script attempted to execute a command while the cluster is down")
            || s.contains("Script attempted to execute a write command while the cluster is down")
    }
}

/// [`crate::scripts::Invocation::invoke`]'s error for a change too few replicas confirmed.
fn is_not_replicated(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Client && e.to_string().contains(NOT_REPLICATED)
}

/// The connection could not be used: refused, reset, timed out, closed.
fn is_transport(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// The server refused to run the request for now (it changed nothing).
fn is_not_run(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::MasterDown)
    ) || matches!(e.code(), Some("BUSY" | "NOREPLICAS"))
}
