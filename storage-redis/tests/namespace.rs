//! The seed's key namespace and hash fields, read back with plain Redis commands: what another
//! client (or an operator with `redis-cli`) sees.

mod common;

use std::collections::HashMap;

use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::{Priority, Tier};
use common::{Mint, TestStore};
use redis::Commands;

#[test]
fn keys_and_fields_follow_the_seed() {
    let s = TestStore::new("ns");
    let mut mint = Mint::new(51);
    let mut bob = Mint::new(52);
    let bob_id = bob.owner.user_id();
    let mut con = s.raw();

    // Vault entry: a hash with the seed's fields, binary fields raw.
    let e = mint.coin(Tier::Gold, 1_700_000_000).vault;
    s.put(&e).unwrap();
    let id = e.key_id.to_string();
    assert_eq!(id, id.to_lowercase());
    let h: HashMap<String, Vec<u8>> = con.hgetall(s.key(&format!("vault:v3:key:{id}"))).unwrap();
    let text = |f: &str| String::from_utf8(h[f].clone()).unwrap();
    assert_eq!(text("key_id"), id);
    assert_eq!(text("coin_category"), "GOLD");
    assert_eq!(text("status"), "ACTIVE");
    assert_eq!(text("created_at"), "1700000000");
    assert_eq!(text("expires_at"), (1_700_000_000u64 + aqm_core::protocol::COIN_LIFETIME_SECS).to_string());
    assert_eq!(text("coin_version"), "xwing_v1");
    assert_eq!(h["encryption_iv"], e.sealed.nonce);
    let mut sealed = h["encrypted_blob"].clone();
    sealed.extend_from_slice(&h["auth_tag"]);
    assert_eq!(sealed, e.sealed.ciphertext.as_slice());
    assert_eq!(h["auth_tag"].len(), 16);

    // Stats: the seed's five counters.
    let stats: HashMap<String, i64> = con.hgetall(s.key("vault:v3:stats")).unwrap();
    assert_eq!(stats.get("active_gold"), Some(&1));
    s.burn(&e.key_id, 1_700_000_001).unwrap();
    let stats: HashMap<String, i64> = con.hgetall(s.key("vault:v3:stats")).unwrap();
    assert_eq!((stats["active_gold"], stats["total_burned"]), (0, 1));

    // Inventory: meta hash, per-contact per-tier sorted set scored by insertion sequence, coin hash.
    s.register_contact(&ContactMeta::new(bob_id, Priority::Bestie, "Bob", 5).unwrap()).unwrap();
    let meta: HashMap<String, String> = con.hgetall(s.key(&format!("inv:v3:meta:{bob_id}"))).unwrap();
    assert_eq!(meta["priority"], "BESTIE");
    assert_eq!(meta["last_msg_at"], "5");
    assert_eq!(meta["display_name"], "Bob");
    let c1 = bob.coin(Tier::Silver, 0).public;
    let c2 = bob.coin(Tier::Silver, 0).public;
    s.store_coin(&bob_id, &c1, 9).unwrap();
    s.store_coin(&bob_id, &c2, 9).unwrap();
    let idx: Vec<(String, f64)> = con.zrange_withscores(s.key(&format!("inv:v3:idx:{bob_id}:SILVER")), 0, -1).unwrap();
    assert_eq!(idx.len(), 2);
    assert_eq!(idx[0].0, c1.key_id.to_string(), "same second, still insertion order");
    assert!(idx[0].1 < idx[1].1);
    let coin: HashMap<String, Vec<u8>> = con.hgetall(s.key(&format!("inv:v3:key:{bob_id}:{}", c1.key_id))).unwrap();
    assert_eq!(coin["public_key"], c1.public_key.as_slice());
    assert_eq!(coin["signature"], c1.signature.as_slice());
    assert_eq!(coin["coin_category"], b"SILVER");
    assert_eq!(coin["fetched_at"], b"9");
    assert_eq!(coin["kind"], b"0");
    assert_eq!(coin["expires_at"], c1.expires_at.to_string().as_bytes());

    // Sessions: a hash per peer and direction, the raw blob beside its version.
    let blob = SessionBlob::from_slice(&[0, 1, 2, 255]).unwrap();
    s.save_session(&bob_id, Direction::Send, &blob, None).unwrap();
    let sess: HashMap<String, Vec<u8>> = con.hgetall(s.key(&format!("sess:v3:{bob_id}:SEND"))).unwrap();
    assert_eq!((sess["blob"].as_slice(), sess["v"].as_slice()), (&[0u8, 1, 2, 255][..], &b"1"[..]));

    // Nothing outside the prefix, nothing with a Redis TTL.
    let keys: Vec<String> = con.keys(format!("{{{}}}:*", s.prefix())).unwrap();
    assert!(keys.len() >= 8, "{keys:?}");
    for k in &keys {
        let ttl: i64 = con.ttl(k).unwrap();
        assert_eq!(ttl, -1, "{k} has a TTL");
    }
    // destroy_all removes exactly this prefix.
    assert_eq!(s.destroy_all().unwrap(), keys.len() as u64);
}

#[test]
fn a_prefix_holding_format_v1_keys_is_refused() {
    let s = TestStore::new("ns-v1");
    let mut con = s.raw();
    let _: () = con.hset(s.legacy_key("vault:v1:stats"), "active_gold", 1).unwrap();
    let prefix = s.prefix().to_owned();
    let err = aqm_storage_redis::RedisStore::connect(&common::url(), &prefix, aqm_core::Policy::DEFAULT)
        .expect_err("format v1 refused");
    assert!(matches!(err, aqm_storage_redis::Error::UnsupportedFormat { found: 1, supported: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("format v1") && err.to_string().contains("v3"), "{err}");
    let _: () = con.del(s.legacy_key("vault:v1:stats")).unwrap();
}

/// A format-v2 store (the same records under names without the hash tag) is refused with a
/// message naming the upgrade, and `upgrade_v2` renames it in place: everything reads back.
#[test]
fn a_format_v2_store_is_refused_then_upgraded() {
    let s = TestStore::new("ns-v2");
    let mut mint = Mint::new(53);
    let mut bob = Mint::new(54);
    let bob_id = bob.owner.user_id();
    let e = mint.coin(Tier::Silver, 100).vault;
    s.put(&e).unwrap();
    s.register_contact(&ContactMeta::new(bob_id, Priority::Mate, "Bob", 5).unwrap()).unwrap();
    let c = bob.coin(Tier::Bronze, 0).public;
    s.store_coin(&bob_id, &c, 9).unwrap();
    let blob = SessionBlob::from_slice(&[9, 9]).unwrap();
    s.save_session(&bob_id, Direction::Receive, &blob, None).unwrap();
    // Turn it into the v2 layout exactly: `{p}:x:v3:…` → `p:x:v2:…`.
    let mut con = s.raw();
    let keys: Vec<String> = con.keys(format!("{{{}}}:*", s.prefix())).unwrap();
    assert!(keys.len() >= 8, "{keys:?}");
    for k in &keys {
        let rest = k.strip_prefix(&format!("{{{}}}:", s.prefix())).unwrap().replacen(":v3:", ":v2:", 1);
        let _: () = con.rename(k, s.legacy_key(&rest)).unwrap();
    }
    let url = common::url();
    let prefix = s.prefix().to_owned();
    let err = aqm_storage_redis::RedisStore::connect(&url, &prefix, aqm_core::Policy::DEFAULT).expect_err("v2 refused");
    assert!(matches!(err, aqm_storage_redis::Error::UnsupportedFormat { found: 2, supported: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade_v2"), "{err}");

    assert_eq!(aqm_storage_redis::RedisStore::upgrade_v2(&url, &prefix).unwrap(), keys.len() as u64);
    let old: Vec<String> = con.keys(format!("{}:*", s.prefix())).unwrap();
    assert!(old.is_empty(), "{old:?}");
    let back = aqm_storage_redis::RedisStore::connect(&url, &prefix, aqm_core::Policy::DEFAULT).unwrap();
    assert!(back.get(&e.key_id, 101).unwrap().is_some());
    assert_eq!(back.stats().unwrap().active.get(Tier::Silver), 1);
    assert_eq!(back.counts(&bob_id).unwrap().get(Tier::Bronze), 1);
    assert_eq!(back.load_session(&bob_id, Direction::Receive).unwrap().unwrap().blob.as_slice(), &[9, 9]);
    assert!(back.audit().unwrap().consistent());
    // Twice is refused (v3 keys exist); nothing to upgrade is 0.
    assert!(aqm_storage_redis::RedisStore::upgrade_v2(&url, &prefix).is_err());
    assert_eq!(aqm_storage_redis::RedisStore::upgrade_v2(&url, "aqmtest-nothing-here").unwrap(), 0);
}
