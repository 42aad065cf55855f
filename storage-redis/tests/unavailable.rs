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
    let err = RedisStore::connect_with(&url, "x", Policy::DEFAULT, common::sealed(), options()).unwrap_err();
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
    assert!(matches!(
        RedisStore::connect("http://nope", "x", Policy::DEFAULT, common::sealed()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        RedisStore::connect(&common::url(), "has space", Policy::DEFAULT, common::sealed()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        RedisStore::connect_with(
            &common::url(),
            "x",
            Policy::DEFAULT,
            common::sealed(),
            Options { attempts: 0, ..Options::default() }
        ),
        Err(Error::Config(_))
    ));
    // The empty prefix's format marker is left by earlier runs under their own random keys.
    let mut c = redis::Client::open(common::url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("DEL").arg("aqm:v4:format").query(&mut c).unwrap();
    let anon = RedisStore::connect(&common::url(), "", Policy::DEFAULT, common::sealed()).unwrap();
    assert!(matches!(anon.destroy_all(), Err(Error::Config(_))), "an empty prefix never wipes the server");
}

#[test]
fn stopped_server_then_restart_changes_nothing_half_way() {
    let mut server = PrivateRedis::start();
    let store = RedisStore::connect_with(&server.url(), "u", Policy::DEFAULT, common::sealed(), options()).unwrap();
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
    assert!(matches!(store.select_coin(&bob_id, Tier::Gold, Tier::Bronze, 1), Err(Error::Unavailable { .. })));
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
    let store = RedisStore::connect_with(&server.url(), "s", Policy::DEFAULT, common::sealed(), options()).unwrap();
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

/// A TCP proxy in front of Redis that can lose a reply (the server ran the request) or lose a
/// request (the server never saw it), then cut the connection.
mod proxy {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    pub const PASS: u8 = 0;
    pub const LOSE_REPLY: u8 = 1;
    pub const LOSE_REQUEST: u8 = 2;
    /// Lose the next reply only, then pass everything.
    pub const LOSE_ONE_REPLY: u8 = 3;

    pub struct Proxy {
        pub port: u16,
        pub mode: Arc<AtomicU8>,
    }

    fn pump(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>, cut_on: u8) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if mode.load(Ordering::SeqCst) == cut_on {
                break;
            }
            if cut_on == LOSE_REPLY
                && mode.compare_exchange(LOSE_ONE_REPLY, PASS, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                break;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }

    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (m1, m2) = (m.clone(), m.clone());
                std::thread::spawn(move || pump(client, server, m1, LOSE_REQUEST));
                std::thread::spawn(move || pump(s2, c2, m2, LOSE_REPLY));
            }
        });
        Proxy { port, mode }
    }
}

#[test]
fn lost_reply_or_lost_request_leaves_the_change_whole_or_absent() {
    use std::sync::atomic::Ordering;
    let server = PrivateRedis::start();
    let proxy = proxy::start(server.port);
    let via = RedisStore::connect_with(
        &format!("redis://127.0.0.1:{}", proxy.port),
        "p",
        Policy::DEFAULT,
        common::sealed(),
        options(),
    )
    .unwrap();
    let direct = RedisStore::connect(&server.url(), "p", Policy::DEFAULT, common::sealed()).unwrap();
    let mut mint = Mint::new(44);
    let a = mint.coin(Tier::Gold, 10).vault;
    let b = mint.coin(Tier::Silver, 10).vault;
    let warm = mint.coin(Tier::Bronze, 10).vault;
    via.put(&a).unwrap();
    via.put(&b).unwrap();
    via.put(&warm).unwrap();
    // Loads the burn script, so the next EVALSHA runs (rather than answering NOSCRIPT).
    via.burn(&warm.key_id, 11).unwrap();

    // The server burns `a` but the reply is lost: the caller is told the outcome is unknown,
    // the burn is not sent again, and the burn is there whole.
    proxy.mode.store(proxy::LOSE_REPLY, Ordering::SeqCst);
    let e = via.burn(&a.key_id, 11).unwrap_err();
    assert!(matches!(e, Error::Unavailable { outcome_known: false, .. }), "{e:?}");
    proxy.mode.store(proxy::PASS, Ordering::SeqCst);
    assert_eq!(direct.status(&a.key_id).unwrap(), Some(KeyStatus::Burned));
    let audit = direct.audit().unwrap();
    assert!(audit.consistent(), "{audit:?}");
    assert_eq!((audit.stats.total_burned, audit.stats.active.total()), (2, 1));

    // The request for `b` never reaches the server: unknown to the caller (it was written to a
    // live pooled connection), absent on the server.
    assert_eq!(via.status(&b.key_id).unwrap(), Some(KeyStatus::Active)); // pools a live connection
    proxy.mode.store(proxy::LOSE_REQUEST, Ordering::SeqCst);
    let e = via.burn(&b.key_id, 11).unwrap_err();
    assert!(matches!(e, Error::Unavailable { outcome_known: false, .. }), "{e:?}");
    // With no live connection left, new ones cannot even be set up: nothing was sent, and the
    // error says so.
    let e = via.burn(&b.key_id, 11).unwrap_err();
    assert!(matches!(e, Error::Unavailable { outcome_known: true, attempts: 3, .. }), "{e:?}");
    proxy.mode.store(proxy::PASS, Ordering::SeqCst);
    assert_eq!(direct.status(&b.key_id).unwrap(), Some(KeyStatus::Active));
    assert!(direct.audit().unwrap().consistent());

    // Reads are resent on a fresh connection; the store works on.
    assert_eq!(via.status(&a.key_id).unwrap(), Some(KeyStatus::Burned));
    via.burn(&b.key_id, 12).unwrap();
    assert_eq!(via.stats().unwrap().total_burned, 3);
    // A caller that got an unknown outcome resolves it by reading: the key is burned, and a
    // repeated burn says so.
    assert!(matches!(via.burn(&a.key_id, 13), Err(Error::Core(aqm_core::Error::KeyAlreadyBurned))));
}

#[test]
fn a_lost_reply_to_put_or_burn_is_resent_and_recognised() {
    use std::sync::atomic::Ordering;
    let server = PrivateRedis::start();
    let proxy = proxy::start(server.port);
    let via = RedisStore::connect_with(
        &format!("redis://127.0.0.1:{}", proxy.port),
        "d",
        Policy::DEFAULT,
        common::sealed(),
        options(),
    )
    .unwrap();
    let other = RedisStore::connect(&server.url(), "d", Policy::DEFAULT, common::sealed()).unwrap();
    let mut mint = Mint::new(45);
    let peer = Mint::new(46);
    let warm = mint.coin(Tier::Bronze, 10).vault;
    via.put(&warm).unwrap();
    via.burn(&warm.key_id, 11).unwrap(); // both scripts loaded

    // put: the server stores it, the reply is lost, the resend is recognised: Ok, counted once.
    let a = mint.coin(Tier::Gold, 10).vault;
    proxy.mode.store(proxy::LOSE_ONE_REPLY, Ordering::SeqCst);
    via.put(&a).unwrap();
    assert_eq!(proxy.mode.load(Ordering::SeqCst), proxy::PASS, "a reply was lost");
    assert_eq!(via.stats().unwrap().active.get(Tier::Gold), 1);
    // Another caller's put of the same id is still refused.
    assert!(matches!(other.put(&a), Err(Error::Core(aqm_core::Error::KeyAlreadyExists))));

    // burn_and_save_session: burned once, session saved, and the caller hears "ok".
    let blob = aqm_core::store::SessionBlob::from_slice(&[9; 40]).unwrap();
    let peer_id = peer.owner.user_id();
    proxy.mode.store(proxy::LOSE_ONE_REPLY, Ordering::SeqCst);
    aqm_core::store::SessionStore::burn_and_save_session(&via, &a.key_id, 12, &peer_id, &blob, None).unwrap();
    assert_eq!(proxy.mode.load(Ordering::SeqCst), proxy::PASS, "a reply was lost");
    let stats = other.stats().unwrap();
    assert_eq!((stats.total_burned, stats.active.total()), (2, 0));
    let saved = aqm_core::store::SessionStore::load_session(&other, &peer_id, aqm_core::store::Direction::Receive);
    assert_eq!(saved.unwrap().map(|s| s.blob), Some(blob));
    // A second, separate burn is refused: exactly once.
    assert!(matches!(other.burn(&a.key_id, 13), Err(Error::Core(aqm_core::Error::KeyAlreadyBurned))));
    assert!(matches!(via.burn(&a.key_id, 13), Err(Error::Core(aqm_core::Error::KeyAlreadyBurned))));
    assert!(other.audit().unwrap().consistent());
}
