//! The key namespace (seed "Redis key namespaces", docs/architecture.md §4), under an optional user prefix.
//!
//! | Key | Type | Holds |
//! |-----|------|-------|
//! | `{p}vault:v2:key:{key_id}` | hash | one vault entry (seed fields + `expires_at`, `burned_at`) |
//! | `{p}vault:v2:stats` | hash | `active_gold`, `active_silver`, `active_bronze`, `total_burned`, `total_expired` |
//! | `{p}vault:v2:active:{TIER}` | sorted set | ACTIVE key ids, score = `expires_at` (expiry index) |
//! | `{p}vault:v2:burned` | sorted set | BURNED key ids, score = `burned_at` (grace index) |
//! | `{p}sess:v2:{peer}:{SEND\|RECV}` | hash | `v` (version, compare-and-swap), `blob` (sealed session), `op` |
//! | `{p}pin:v2:{user}` | hash | `ed25519`, `mldsa65`, `trust` (pinned identity) |
//! | `{p}inv:v2:key:{contact_id}:{key_id}` | hash | one cached coin (seed fields + `seq`) |
//! | `{p}inv:v2:idx:{contact_id}:{TIER}` | sorted set | cached key ids, score = insertion sequence (FIFO) |
//! | `{p}inv:v2:meta:{contact_id}` | hash | `contact_id`, `priority`, `last_msg_at`, `display_name` |
//! | `{p}inv:v2:contacts` | set | registered contact ids (no `SCAN` needed) |
//! | `{p}inv:v2:seq` | string | the insertion-sequence counter |
//!
//! `{p}` is the user prefix followed by `:` (empty when no prefix). Ids are lowercase hyphenated
//! UUIDs. `v2` is the at-rest format (protocol v2); [`Keys::legacy_markers`] are the keys a
//! format-v1 store always had, which [`crate::RedisStore::connect`] refuses to run beside.

use aqm_core::store::Direction;
use aqm_core::{ContactId, KeyId, Tier, UserId};

use crate::Error;

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    p: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Result<Self, Error> {
        if prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::Config("the key prefix must not contain spaces or control characters".into()));
        }
        let p = if prefix.is_empty() { String::new() } else { format!("{prefix}:") };
        Ok(Keys { p })
    }

    pub(crate) fn vault_entry_prefix(&self) -> String {
        format!("{}vault:v2:key:", self.p)
    }
    pub(crate) fn vault_entry(&self, id: &KeyId) -> String {
        format!("{}vault:v2:key:{id}", self.p)
    }
    pub(crate) fn vault_stats(&self) -> String {
        format!("{}vault:v2:stats", self.p)
    }
    pub(crate) fn vault_active(&self, tier: Tier) -> String {
        format!("{}vault:v2:active:{}", self.p, tier.as_str())
    }
    pub(crate) fn vault_burned(&self) -> String {
        format!("{}vault:v2:burned", self.p)
    }
    pub(crate) fn session(&self, peer: &UserId, dir: Direction) -> String {
        let d = match dir {
            Direction::Send => "SEND",
            Direction::Receive => "RECV",
        };
        format!("{}sess:v2:{peer}:{d}", self.p)
    }
    pub(crate) fn inv_coin_prefix(&self, contact: &ContactId) -> String {
        format!("{}inv:v2:key:{contact}:", self.p)
    }
    pub(crate) fn inv_coin(&self, contact: &ContactId, id: &KeyId) -> String {
        format!("{}inv:v2:key:{contact}:{id}", self.p)
    }
    pub(crate) fn inv_idx(&self, contact: &ContactId, tier: Tier) -> String {
        format!("{}inv:v2:idx:{contact}:{}", self.p, tier.as_str())
    }
    pub(crate) fn inv_meta(&self, contact: &ContactId) -> String {
        format!("{}inv:v2:meta:{contact}", self.p)
    }
    pub(crate) fn inv_contacts(&self) -> String {
        format!("{}inv:v2:contacts", self.p)
    }
    pub(crate) fn inv_seq(&self) -> String {
        format!("{}inv:v2:seq", self.p)
    }
    pub(crate) fn pin(&self, user: &UserId) -> String {
        format!("{}pin:v2:{user}", self.p)
    }
    /// Keys only a format-v1 (protocol v1) store under this prefix would hold.
    pub(crate) fn legacy_markers(&self) -> [String; 2] {
        [format!("{}vault:v1:stats", self.p), format!("{}inv:v1:contacts", self.p)]
    }
}

/// The stats hash field counting ACTIVE keys of `tier`.
pub(crate) fn active_field(tier: Tier) -> &'static str {
    match tier {
        Tier::Gold => "active_gold",
        Tier::Silver => "active_silver",
        Tier::Bronze => "active_bronze",
    }
}
