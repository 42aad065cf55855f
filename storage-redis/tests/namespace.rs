//! The key namespace and hash fields of format v4, read back with plain Redis commands: what
//! another client (or an operator with `redis-cli`) sees. Sealed: no contact id, key id, display
//! name or public key anywhere; unsealed: the same layout with the ids in hex and the records in
//! clear. Older formats and the other sealing mode are refused and left untouched.

mod common;

use std::collections::HashMap;

use aqm_core::crypto::DeviceKey;
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, PinStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redis::{Error, RedisStore, Sealing};
use common::{Mint, TestStore};
use redis::Commands;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every key of the prefix with its raw contents (`DUMP`), to show a refused connect changed nothing.
fn snapshot(s: &TestStore) -> Vec<(String, Vec<u8>)> {
    let mut con = s.raw();
    s.all_keys()
        .into_iter()
        .map(|k| {
            let d: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut con).unwrap();
            (k, d)
        })
        .collect()
}

#[test]
fn sealed_keys_and_fields_hide_ids_and_metadata() {
    let s = TestStore::new("ns");
    let mut mint = Mint::new(51);
    let mut bob = Mint::new(52);
    let bob_id = bob.owner.user_id();
    let mut con = s.raw();

    let e = mint.coin(Tier::Gold, 1_700_000_000).vault;
    s.put(&e).unwrap();
    s.register_contact(&ContactMeta::new(bob_id, Priority::Bestie, "Bob Builder", 5).unwrap()).unwrap();
    let c1 = bob.coin(Tier::Silver, 0).public;
    let c2 = bob.coin(Tier::Silver, 0).public;
    s.store_coin(&bob_id, &c1, 9).unwrap();
    s.store_coin(&bob_id, &c2, 9).unwrap();
    let blob = SessionBlob::from_slice(&[0, 1, 2, 255]).unwrap();
    s.save_session(&bob_id, Direction::Send, &blob, None).unwrap();
    s.pin_identity(bob.owner.public(), aqm_core::pins::Trust::Verified).unwrap();

    let keys = s.all_keys();
    let p = format!("{{{}}}:", s.prefix());
    let families: Vec<String> = keys
        .iter()
        .map(|k| {
            let rest = k.strip_prefix(&p).unwrap();
            // Hashed ids are 64 hex digits: name them `#`.
            rest.split(':').map(|part| if part.len() == 64 { "#" } else { part }).collect::<Vec<_>>().join(":")
        })
        .collect();
    let mut fams = families.clone();
    fams.sort();
    fams.dedup();
    assert_eq!(
        fams,
        [
            "aqm:v4:format",
            "inv:v4:contacts",
            "inv:v4:idx:#:SILVER",
            "inv:v4:key:#:#",
            "inv:v4:meta:#",
            "inv:v4:seq",
            "pin:v4:#",
            "sess:v4:#:SEND",
            "vault:v4:active:GOLD",
            "vault:v4:key:#",
            "vault:v4:stats",
        ]
    );
    // No id in any name, in hex or text.
    for id in [hex(bob_id.as_bytes()), hex(e.key_id.as_bytes()), bob_id.to_string(), e.key_id.to_string()] {
        assert!(keys.iter().all(|k| !k.contains(&id)), "{id} in a key name");
    }

    // Vault entry: status, tier and times stay in clear for the scripts; the key id only sealed.
    let vkey = keys.iter().find(|k| k.contains(":vault:v4:key:")).unwrap();
    let h: HashMap<String, Vec<u8>> = con.hgetall(vkey).unwrap();
    let text = |f: &str| String::from_utf8(h[f].clone()).unwrap();
    assert!(!h.contains_key("key_id"));
    assert_eq!(text("coin_category"), "GOLD");
    assert_eq!(text("status"), "ACTIVE");
    assert_eq!(text("created_at"), "1700000000");
    assert_eq!(h["encryption_iv"], e.sealed.nonce);
    assert!(!h["id"].windows(16).any(|w| w == e.key_id.as_bytes()));
    let mut ids = Vec::new();
    s.active_ids(None, &mut |id| ids.push(id)).unwrap();
    assert_eq!(ids, [e.key_id]);

    // Contact: three opaque fields.
    let mkey = keys.iter().find(|k| k.contains(":inv:v4:meta:")).unwrap();
    let meta: HashMap<String, Vec<u8>> = con.hgetall(mkey).unwrap();
    let mut fields: Vec<&String> = meta.keys().collect();
    fields.sort();
    assert_eq!(fields, ["last", "pt", "rec"]);
    assert!(!meta["rec"].windows(3).any(|w| w == b"Bob"));
    assert!(!meta.values().any(|v| v.as_slice() == b"BESTIE"));
    let back = s.contact(&bob_id).unwrap().unwrap();
    assert_eq!((back.display_name.as_str(), back.priority, back.last_msg_at), ("Bob Builder", Priority::Bestie, 5));

    // Coins: FIFO by sequence in the index, hashed members, sealed strings.
    let ikey = keys.iter().find(|k| k.contains(":inv:v4:idx:")).unwrap();
    let idx: Vec<(String, f64)> = con.zrange_withscores(ikey, 0, -1).unwrap();
    assert_eq!(idx.len(), 2);
    assert!(idx[0].1 < idx[1].1, "same second, still insertion order");
    let coin_keys: Vec<&String> = keys.iter().filter(|k| k.contains(":inv:v4:key:")).collect();
    assert_eq!(coin_keys.len(), 2);
    for k in coin_keys {
        let rec: Vec<u8> = con.get(k).unwrap();
        assert!(!rec.windows(32).any(|w| w == &c1.public_key[..32] || w == &c2.public_key[..32]));
    }
    let sel = s.select_coin(&bob_id, Tier::Silver, Tier::Silver, 10).unwrap();
    assert_eq!(sel.coin.unwrap().coin, c1, "oldest first");

    // Sessions keep their (already sealed) blob beside the version.
    let skey = keys.iter().find(|k| k.contains(":sess:v4:")).unwrap();
    let sess: HashMap<String, Vec<u8>> = con.hgetall(skey).unwrap();
    assert_eq!((sess["blob"].as_slice(), sess["v"].as_slice()), (&[0u8, 1, 2, 255][..], &b"1"[..]));

    // The format marker names the mode; nothing has a Redis TTL.
    let marker: String = con.get(format!("{p}aqm:v4:format")).unwrap();
    assert!(marker.starts_with("4 sealed "), "{marker}");
    let keys = s.all_keys();
    for k in &keys {
        let ttl: i64 = con.ttl(k).unwrap();
        assert_eq!(ttl, -1, "{k} has a TTL");
    }
    assert_eq!(s.destroy_all().unwrap(), keys.len() as u64);
}

#[test]
fn unsealed_mode_has_the_same_layout_in_clear() {
    let s = TestStore::unsealed("ns-clear", Policy::DEFAULT);
    let mut bob = Mint::new(55);
    let bob_id = bob.owner.user_id();
    let mut con = s.raw();
    s.register_contact(&ContactMeta::new(bob_id, Priority::Mate, "Bob", 5).unwrap()).unwrap();
    s.store_coin(&bob_id, &bob.coin(Tier::Bronze, 0).public, 9).unwrap();
    let meta: HashMap<String, Vec<u8>> =
        con.hgetall(s.key(&format!("inv:v4:meta:{}", hex(bob_id.as_bytes())))).unwrap();
    assert!(meta["rec"].windows(3).any(|w| w == b"Bob"), "records in clear");
    let marker: String = con.get(s.key("aqm:v4:format")).unwrap();
    assert_eq!(marker, "4 unsealed");
    assert_eq!(s.counts(&bob_id).unwrap().get(Tier::Bronze), 1);
}

#[test]
fn the_other_mode_and_another_device_key_are_refused_and_change_nothing() {
    let s = TestStore::new("ns-mode");
    let mut bob = Mint::new(56);
    let bob_id = bob.owner.user_id();
    s.register_contact(&ContactMeta::new(bob_id, Priority::Mate, "Bob", 5).unwrap()).unwrap();
    s.store_coin(&bob_id, &bob.coin(Tier::Bronze, 0).public, 9).unwrap();
    let before = snapshot(&s);
    let url = common::url();
    let err = RedisStore::connect(&url, s.prefix(), Policy::DEFAULT, Sealing::unsealed()).unwrap_err();
    assert!(matches!(err, Error::SealingMismatch { found: "sealed", requested: "unsealed", .. }), "{err:?}");
    assert!(err.to_string().contains("created sealed"), "{err}");
    let other = DeviceKey::from_bytes([3; 32]);
    let err = RedisStore::connect(&url, s.prefix(), Policy::DEFAULT, Sealing::sealed(&other)).unwrap_err();
    assert!(matches!(err, Error::WrongDeviceKey { .. }), "{err:?}");
    assert!(err.to_string().contains("another device key"), "{err}");
    assert_eq!(snapshot(&s), before, "refused connects wrote nothing");
    // The right key still opens it.
    assert_eq!(s.sibling().counts(&bob_id).unwrap().get(Tier::Bronze), 1);

    let clear = TestStore::unsealed("ns-mode2", Policy::DEFAULT);
    let err = RedisStore::connect(&url, clear.prefix(), Policy::DEFAULT, Sealing::sealed(&other)).unwrap_err();
    assert!(matches!(err, Error::SealingMismatch { found: "unsealed", requested: "sealed", .. }), "{err:?}");
}

#[test]
fn a_prefix_holding_format_v1_or_v2_keys_is_refused() {
    for (v, name) in [(1, "vault:v1:stats"), (2, "inv:v2:contacts")] {
        let s = TestStore::new("ns-old");
        let mut con = s.raw();
        let _: () = con.hset(s.legacy_key(name), "x", 1).unwrap();
        let err = RedisStore::connect(&common::url(), s.prefix(), Policy::DEFAULT, s.sealing()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { found, supported: 4, .. } if found == v), "{err:?}");
        assert!(err.to_string().contains(&format!("format v{v}")) && err.to_string().contains("v4"), "{err}");
        let _: () = con.del(s.legacy_key(name)).unwrap();
    }
}

/// A format-v3 store (contact ids, key ids and metadata in clear, under the same hash tag) is
/// refused with a typed error naming both versions, and left exactly as it was: no upgrade is
/// offered (it would have to re-seal every record in Rust; see the README).
#[test]
fn a_format_v3_store_is_refused_and_left_untouched() {
    let s = TestStore::new("ns-v3");
    let bob = Mint::new(57).owner.user_id();
    let mut con = s.raw();
    // The v3 layout as that build wrote it.
    let _: () = con.hset_multiple(s.key("vault:v3:stats"), &[("active_gold", "1"), ("total_burned", "0")]).unwrap();
    let _: () = con.sadd(s.key("inv:v3:contacts"), bob.to_string()).unwrap();
    let _: () = con
        .hset_multiple(
            s.key(&format!("inv:v3:meta:{bob}")),
            &[
                ("contact_id", bob.to_string().as_str()),
                ("priority", "BESTIE"),
                ("last_msg_at", "5"),
                ("display_name", "Bob"),
            ],
        )
        .unwrap();
    // The fixture's own (v4) marker, written by its connect: remove it, a v3 build had none.
    let _: () = con.del(s.key("aqm:v4:format")).unwrap();
    let before = snapshot(&s);
    assert_eq!(before.len(), 3);
    for sealing in [s.sealing(), Sealing::unsealed()] {
        let err = RedisStore::connect(&common::url(), s.prefix(), Policy::DEFAULT, sealing).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { found: 3, supported: 4, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("format v3") && msg.contains("v4") && msg.contains("no upgrade"), "{msg}");
    }
    assert_eq!(snapshot(&s), before, "the v3 store is left untouched");
}
