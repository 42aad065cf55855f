//! The Lua scripts, loaded once per server and called by SHA (`EVALSHA`); [`Invocation::invoke`]
//! loads a script on the connection's node and sends it again when that node answers `NOSCRIPT`
//! (after a restart, a `SCRIPT FLUSH`, or on a cluster node that never ran it: each node has its
//! own script cache). Each script is one atomic step: it reads, decides, and only then writes, so
//! a script that fails changes nothing.
//!
//! **Read everything before the first write** is also what makes the scripts safe on Redis
//! Cluster while their slot migrates: there a node refuses, inside a script, any access to a key
//! it does not hold ("non local key"), which a script that had already written would leave half
//! done. Every script therefore touches each key it will write, and every key it reads, before
//! it writes anything (`touch` in the prelude), and never touches a key again after deleting it:
//! a refusal then always comes before the first write, and the store retries the call.

use std::sync::LazyLock;

use redis::{Connection, FromRedisValue, RedisResult, Script, ToRedisArgs, Value};

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

pub(crate) static VAULT_PUT: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/vault_put.lua")));
pub(crate) static VAULT_BURN: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/vault_burn.lua")));
pub(crate) static VAULT_OPEN: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/vault_open.lua")));
pub(crate) static VAULT_PURGE: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/vault_purge.lua")));
pub(crate) static SESSION_SAVE: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/session_save.lua")));
pub(crate) static INV_REGISTER: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_register.lua")));
pub(crate) static INV_STORE: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_store.lua")));
pub(crate) static INV_SELECT: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_select.lua")));
pub(crate) static INV_SET_PRIORITY: LazyLock<Script> =
    LazyLock::new(|| with_prelude(include_str!("lua/inv_set_priority.lua")));
pub(crate) static INV_COUNTS: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_counts.lua")));

/// How many replicas must confirm a change before it is acknowledged (`WAIT replicas timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    pub(crate) replicas: u32,
    pub(crate) timeout_ms: u64,
}

/// The marker of the error [`Invocation::invoke`] returns when fewer replicas than asked
/// confirmed a change in time (the change was applied on the master).
pub(crate) const NOT_REPLICATED: &str = "aqm: change not confirmed by enough replicas";

/// One call of a script: its keys (`KEYS`, every key the script touches by name, all under one
/// hash tag) and arguments.
pub(crate) struct Invocation<'a> {
    script: &'a Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

/// Start a call of `script`.
pub(crate) fn call(script: &Script) -> Invocation<'_> {
    Invocation { script, keys: Vec::new(), args: Vec::new() }
}

impl Invocation<'_> {
    /// Add a key (`KEYS[n]`).
    pub(crate) fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    /// Add an argument (`ARGV[n]`).
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    fn eval_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(self.keys.len()).arg(&self.keys[..]).arg(&self.args[..]);
        cmd
    }

    /// Run the script on `c` (one round trip; a `NOSCRIPT` answer loads it on that node and sends
    /// it again: the script did not run). With `wait`, `WAIT replicas timeout` is pipelined
    /// behind it on the same connection (still one round trip), and fewer confirmations than
    /// asked is an error marked [`NOT_REPLICATED`].
    pub(crate) fn invoke<T: FromRedisValue>(&self, c: &mut Connection, wait: Option<Wait>) -> RedisResult<T> {
        let eval = self.eval_cmd();
        let mut loaded = false;
        loop {
            let reply = match wait {
                None => eval.query::<Value>(c),
                Some(w) => {
                    let mut pipe = redis::pipe();
                    pipe.add_command(eval.clone()).cmd("WAIT").arg(w.replicas).arg(w.timeout_ms);
                    redis::ConnectionLike::req_packed_commands(c, &pipe.get_packed_pipeline(), 0, 2).and_then(
                        |replies| {
                            let mut it = replies.into_iter();
                            let (Some(v), Some(acked)) = (it.next(), it.next()) else {
                                return Err((redis::ErrorKind::Client, "short pipeline reply").into());
                            };
                            let v = v.extract_error()?;
                            let acked: i64 = redis::from_redis_value(acked.extract_error()?)?;
                            if acked < i64::from(w.replicas) {
                                return Err((
                                    redis::ErrorKind::Client,
                                    NOT_REPLICATED,
                                    format!("{acked} of {} replica(s) within {} ms", w.replicas, w.timeout_ms),
                                )
                                    .into());
                            }
                            Ok(v)
                        },
                    )
                }
            };
            match reply {
                Err(e) if !loaded && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                    self.script.load(c)?;
                    loaded = true;
                }
                Err(e) => return Err(e),
                Ok(v) => return redis::from_redis_value(v).map_err(Into::into),
            }
        }
    }
}
pub(crate) static INV_COLLECT: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_collect.lua")));
pub(crate) static INV_CONSUME: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_consume.lua")));
pub(crate) static INV_UNTOUCH: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_untouch.lua")));

/// A time cutoff derived from the core's expiry rule `now.saturating_sub(at) >= span`
/// ([`aqm_core::vault::VaultEntry::is_expired`], [`aqm_core::vault::VaultEntry::purge_action`]):
/// a timestamp `at` is past the span at `now` exactly when it is at or before the cutoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cutoff {
    /// Every timestamp (span 0).
    All,
    /// No timestamp (now < span: nothing can be that old).
    None,
    /// Timestamps `<=` this one.
    UpTo(u64),
}

impl Cutoff {
    pub(crate) fn new(now: u64, span: u64) -> Self {
        if span == 0 {
            Cutoff::All
        } else if now < span {
            Cutoff::None
        } else {
            Cutoff::UpTo(now - span)
        }
    }

    /// The cutoff of the vault deadline rule ([`aqm_core::vault::VaultEntry::is_expired`]):
    /// an ACTIVE entry is expired at `now` when `now >= expires_at + grace`, i.e. exactly when its
    /// `expires_at` is at or before `now - grace` (no entry, while `now < grace`).
    pub(crate) fn deadline(now: u64, grace: u64) -> Self {
        match now.checked_sub(grace) {
            Some(t) => Cutoff::UpTo(t),
            None => Cutoff::None,
        }
    }

    /// The argument the scripts read.
    pub(crate) fn arg(self) -> String {
        match self {
            Cutoff::All => "all".into(),
            Cutoff::None => "none".into(),
            Cutoff::UpTo(t) => t.to_string(),
        }
    }
}
