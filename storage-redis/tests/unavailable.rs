//! Connection failures: a typed `Error::Unavailable` after a bounded number of attempts, nothing
//! half-written, and the store works again once the server is back.

mod common;

use std::time::Duration;

use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::vault::KeyStatus;
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redis::{Error, Options, RedisStore};
use common::{Mint, PrivateRedis};

fn options() -> Options {
    Options { attempts: 3, backoff: Duration::from_millis(10), ..Options::default() }
}

fn closed_port() -> u16 {
    // Bound and released: nothing listens there now.
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn closed_port_is_unavailable_after_bounded_attempts() {
    let url = format!("redis://:hunter2secret@127.0.0.1:{}", closed_port());
    let err = RedisStore::connect_with(&url, "x", Policy::DEFAULT, options()).unwrap_err();
    match &err {
        Error::Unavailable { attempts, outcome_known, addr, .. } => {
            assert_eq!(*attempts, 3);
            assert!(*outcome_known);
            assert!(addr.starts_with("127.0.0.1:"));
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains("hunter2secret"), "credentials leaked into the message: {text}");
    assert!(!format!("{err:?}").contains("hunter2secret"));
    assert!(text.contains("check that the server runs"), "{text}");
}

#[test]
fn bad_url_and_prefix_are_config_errors() {
    assert!(matches!(RedisStore::connect("http://nope", "x", Policy::DEFAULT), Err(Error::Config(_))));
    assert!(matches!(RedisStore::connect(&common::url(), "has space", Policy::DEFAULT), Err(Error::Config(_))));
    assert!(matches!(
        RedisStore::connect_with(&common::url(), "x", Policy::DEFAULT, Options { attempts: 0, ..Options::default() }),
        Err(Error::Config(_))
    ));
    let anon = RedisStore::connect(&common::url(), "", Policy::DEFAULT).unwrap();
    assert!(matches!(anon.destroy_all(), Err(Error::Config(_))), "an empty prefix never wipes the server");
}

#[test]
fn stopped_server_then_restart_changes_nothing_half_way() {
    let mut server = PrivateRedis::start();
    let store = RedisStore::connect_with(&server.url(), "u", Policy::DEFAULT, options()).unwrap();
    let mut mint = Mint::new(41);
    let mut bob = Mint::new(42);
    let bob_id = bob.owner.user_id();
    store.register_contact(&ContactMeta::new(bob_id, Priority::Bestie, "bob", 0).unwrap()).unwrap();
    let kept = mint.coin(Tier::Gold, 10).vault;
    store.put(&kept).unwrap();
    store.store_coin(&bob_id, &bob.coin(Tier::Silver, 0).public, 0).unwrap();
    let before = store.audit().unwrap();

    server.kill9();
    let extra = mint.coin(Tier::Silver, 10).vault;
    // Every kind of call fails with the typed error; changes made on the (now dead) pooled
    // connection may report an unknown outcome, later ones a known one.
    let e = store.put(&extra).unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    let e = store.put(&extra).unwrap_err();
    assert!(matches!(e, Error::Unavailable { outcome_known: true, attempts: 3, .. }), "{e:?}");
    assert!(matches!(store.burn(&kept.key_id, 11), Err(Error::Unavailable { outcome_known: true, .. })));
    assert!(matches!(store.stats(), Err(Error::Unavailable { outcome_known: true, .. })));
    assert!(matches!(store.select_coin(&bob_id, Tier::Gold, 1), Err(Error::Unavailable { .. })));
    assert!(matches!(store.counts(&bob_id), Err(Error::Unavailable { .. })));

    server.restart();
    // The same store reconnects by itself.
    assert_eq!(store.status(&kept.key_id).unwrap(), Some(KeyStatus::Active));
    assert_eq!(store.status(&extra.key_id).unwrap(), None, "a refused put left a record");
    assert_eq!(store.audit().unwrap(), before);
    assert_eq!(store.counts(&bob_id).unwrap().get(Tier::Silver), 1);
    store.burn(&kept.key_id, 11).unwrap();
    assert!(store.audit().unwrap().consistent());
}

#[test]
fn server_restart_reloads_scripts_transparently() {
    // After a restart the script cache is empty: EVALSHA gets NOSCRIPT and the script is loaded
    // again without the caller noticing.
    let mut server = PrivateRedis::start();
    let store = RedisStore::connect_with(&server.url(), "s", Policy::DEFAULT, options()).unwrap();
    let mut mint = Mint::new(43);
    let a = mint.coin(Tier::Bronze, 1).vault;
    store.put(&a).unwrap();
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    let b = mint.coin(Tier::Bronze, 1).vault;
    store.put(&b).unwrap();
    server.kill9();
    server.restart();
    store.ping().unwrap();
    store.burn(&a.key_id, 2).unwrap();
    assert_eq!(store.stats().unwrap().active.get(Tier::Bronze), 1);
}
