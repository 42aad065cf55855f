//! The key namespace (seed "Redis key namespaces", docs/architecture.md §4), under an optional user prefix.
//!
//! | Key | Type | Holds |
//! |-----|------|-------|
//! | `{p}vault:v3:key:{key_id}` | hash | one vault entry (seed fields + `expires_at`, `burned_at`) |
//! | `{p}vault:v3:stats` | hash | `active_gold`, `active_silver`, `active_bronze`, `total_burned`, `total_expired` |
//! | `{p}vault:v3:active:{TIER}` | sorted set | ACTIVE key ids, score = `expires_at` (expiry index) |
//! | `{p}vault:v3:burned` | sorted set | BURNED key ids, score = `burned_at` (grace index) |
//! | `{p}sess:v3:{peer}:{SEND\|RECV}` | hash | `v` (version, compare-and-swap), `blob` (sealed session), `op` |
//! | `{p}pin:v3:{user}` | hash | `ed25519`, `mldsa65`, `trust` (pinned identity) |
//! | `{p}inv:v3:key:{contact_id}:{key_id}` | hash | one cached coin (seed fields + `seq`) |
//! | `{p}inv:v3:idx:{contact_id}:{TIER}` | sorted set | cached key ids, score = insertion sequence (FIFO) |
//! | `{p}inv:v3:meta:{contact_id}` | hash | `contact_id`, `priority`, `last_msg_at`, `display_name` |
//! | `{p}inv:v3:contacts` | set | registered contact ids (no `SCAN` needed) |
//! | `{p}inv:v3:seq` | string | the insertion-sequence counter |
//!
//! `{p}` is the user prefix in braces followed by `:` (`{alice}:`; empty when no prefix). The
//! braces are Redis Cluster's hash tag: every key of one user hashes to the slot of the prefix
//! ([`Keys::slot`]), so each script touches one node. Ids are lowercase hyphenated UUIDs. `v3` is
//! the at-rest format: the records of protocol v2 under hash-tagged names. [`Keys::legacy_markers`]
//! are the keys a format-v1 or v2 store always had, which [`crate::RedisStore::connect`] refuses to
//! run beside (no upgrade is offered).

use aqm_core::Tier;
use aqm_core::store::Direction;

use crate::Error;

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    p: String,
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Result<Self, Error> {
        if prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::Config("the key prefix must not contain spaces or control characters".into()));
        }
        if prefix.contains(['{', '}']) {
            return Err(Error::Config(
                "the key prefix must not contain '{' or '}': the store puts it in braces itself (the Redis Cluster hash tag)"
                    .into(),
            ));
        }
        let p = if prefix.is_empty() { String::new() } else { format!("{{{prefix}}}:") };
        Ok(Keys { p, prefix: prefix.to_owned() })
    }

    /// The Redis Cluster hash slot of every key of this store (that of the hash tag `{prefix}`);
    /// `None` for an empty prefix, whose keys have no tag and spread over all slots.
    pub(crate) fn slot(&self) -> Option<u16> {
        (!self.prefix.is_empty()).then(|| slot_of(self.prefix.as_bytes()))
    }

    /// The glob pattern matching every key of this store (none of another prefix's, also not
    /// `app`'s against `app:alice`'s: the braces close the prefix).
    pub(crate) fn all_pattern(&self) -> String {
        format!("{}*", crate::glob_escape(&self.p))
    }

    /// The format marker: which format and sealing mode the namespace was created with.
    pub(crate) fn format(&self) -> String {
        format!("{}aqm:v4:format", self.p)
    }
    pub(crate) fn vault_entry_prefix(&self) -> String {
        format!("{}vault:v4:key:", self.p)
    }
    /// `ix`: the entry's hashed key id ([`crate::sealing::Domain::Vault`]).
    pub(crate) fn vault_entry(&self, ix: &str) -> String {
        format!("{}vault:v4:key:{ix}", self.p)
    }
    pub(crate) fn vault_opens_prefix(&self) -> String {
        format!("{}vault:v4:opens:", self.p)
    }
    /// What the last-resort entry `ix` (its hashed key id, as in [`Keys::vault_entry`]) opened.
    pub(crate) fn vault_opens(&self, ix: &str) -> String {
        format!("{}vault:v4:opens:{ix}", self.p)
    }
    pub(crate) fn vault_stats(&self) -> String {
        format!("{}vault:v4:stats", self.p)
    }
    pub(crate) fn vault_active(&self, tier: Tier) -> String {
        format!("{}vault:v4:active:{}", self.p, tier.as_str())
    }
    pub(crate) fn vault_burned(&self) -> String {
        format!("{}vault:v4:burned", self.p)
    }
    /// `ix`: the hashed peer id ([`crate::sealing::Domain::Session`]).
    pub(crate) fn session(&self, ix: &str, dir: Direction) -> String {
        let d = match dir {
            Direction::Send => "SEND",
            Direction::Receive => "RECV",
        };
        format!("{}sess:v4:{ix}:{d}", self.p)
    }
    /// `contact`: the hashed contact id ([`crate::sealing::Domain::Contact`]).
    pub(crate) fn inv_coin_prefix(&self, contact: &str) -> String {
        format!("{}inv:v4:key:{contact}:", self.p)
    }
    /// `coin`: the hashed key id of the cached coin ([`crate::sealing::Domain::Coin`]).
    pub(crate) fn inv_coin(&self, contact: &str, coin: &str) -> String {
        format!("{}inv:v4:key:{contact}:{coin}", self.p)
    }
    pub(crate) fn inv_idx(&self, contact: &str, tier: Tier) -> String {
        format!("{}inv:v4:idx:{contact}:{}", self.p, tier.as_str())
    }
    pub(crate) fn inv_meta(&self, contact: &str) -> String {
        format!("{}inv:v4:meta:{contact}", self.p)
    }
    pub(crate) fn inv_contacts(&self) -> String {
        format!("{}inv:v4:contacts", self.p)
    }
    pub(crate) fn inv_seq(&self) -> String {
        format!("{}inv:v4:seq", self.p)
    }
    /// `ix`: the hashed user id ([`crate::sealing::Domain::Pin`]).
    pub(crate) fn pin(&self, ix: &str) -> String {
        format!("{}pin:v4:{ix}", self.p)
    }
    /// Keys only an older-format store under this prefix would hold, with that format: v1
    /// (protocol v1), v2 (protocol v2 records under names without the hash tag) and v3 (the same
    /// records in clear under hash-tagged names). An older store always has a stats hash once
    /// anything was put, and a contacts set once a contact was registered. Only the v3 names share
    /// this store's hash tag (and so its cluster slot).
    pub(crate) fn legacy_markers(&self) -> [(u32, String); 6] {
        let old = if self.prefix.is_empty() { String::new() } else { format!("{}:", self.prefix) };
        [
            (1, format!("{old}vault:v1:stats")),
            (1, format!("{old}inv:v1:contacts")),
            (2, format!("{old}vault:v2:stats")),
            (2, format!("{old}inv:v2:contacts")),
            (3, format!("{}vault:v3:stats", self.p)),
            (3, format!("{}inv:v3:contacts", self.p)),
        ]
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

/// Redis Cluster's key slot of a hash tag: CRC16-CCITT (XMODEM) modulo 16384, as `CLUSTER KEYSLOT`
/// computes it for a key whose tag is `tag` (tested against the server).
pub(crate) fn slot_of(tag: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in tag {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_as_hash_tag() {
        let k = Keys::new("app:alice").unwrap();
        assert_eq!(k.vault_stats(), "{app:alice}:vault:v4:stats");
        // An entry's opens share its hash tag (one slot: the open script touches both).
        assert_eq!(k.vault_opens("ab"), "{app:alice}:vault:v4:opens:ab");
        assert!(k.vault_opens("ab").starts_with(&k.vault_opens_prefix()));
        assert_eq!(k.all_pattern(), "{app:alice}:*");
        assert_eq!(Keys::new("").unwrap().vault_stats(), "vault:v4:stats");
        assert_eq!(Keys::new("").unwrap().slot(), None);
        assert!(Keys::new("a{b").is_err());
        assert!(Keys::new("a}b").is_err());
    }

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot_of(b"123456789"), 0x31c3); // the CRC16 check value (below 16384)
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"user1000"), 3443);
        assert_eq!(slot_of(b""), 0);
    }
}
