//! The Lua scripts, loaded once per server and called by SHA (`EVALSHA`); the `redis` crate's
//! [`redis::Script`] reloads a script transparently when the server answers `NOSCRIPT` (e.g.
//! after a restart or `SCRIPT FLUSH`). Each script is one atomic step: it reads, decides, and
//! only then writes, so a script that fails changes nothing.

use std::sync::LazyLock;

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

pub(crate) static VAULT_PUT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/vault_put.lua")));
pub(crate) static VAULT_BURN: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/vault_burn.lua")));
pub(crate) static VAULT_PURGE: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/vault_purge.lua")));
pub(crate) static SESSION_SAVE: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/session_save.lua")));
pub(crate) static INV_REGISTER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/inv_register.lua")));
pub(crate) static INV_STORE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/inv_store.lua")));
pub(crate) static INV_SELECT: LazyLock<Script> = LazyLock::new(|| with_prelude(include_str!("lua/inv_select.lua")));
pub(crate) static INV_SET_PRIORITY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/inv_set_priority.lua")));
pub(crate) static INV_COLLECT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/inv_collect.lua")));
pub(crate) static INV_CONSUME: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/inv_consume.lua")));

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
