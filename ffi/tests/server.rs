//! `AqmDevice`'s server calls against a live `aqm-server` (in-process, on a loopback port, over a
//! fresh schema of the machine's PostgreSQL; `AQM_TEST_DATABASE_URL` overrides
//! `postgres://postgres@127.0.0.1:5432/postgres`): register, publish, publish_coins, prefetch,
//! on-demand fetch for a stranger, pin from the directory, and the typed refusals; last-resort
//! coins: publish keeps one per published tier, and contacts who find the one-time coins of a
//! tier gone still reach the owner through it (a Redis device, whose store does not hold them
//! yet, publishes without them).

use std::sync::Arc;

use aqm_ffi::{AqmContext, AqmDevice, AqmError, AqmPriority, AqmSendOutcome, AqmTier, AqmTierCounts};
use clap::Parser;

const HOME: AqmContext = AqmContext { battery_pct: 85, wifi: true, signal_dbm: -60 };

/// A running server; dropping it stops the server and drops its schema.
struct LiveServer {
    base: String,
    schema: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn database_url() -> String {
    std::env::var("AQM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL (start it with `pg_ctlcluster 15 main start`, or set AQM_TEST_DATABASE_URL)");
    tokio::spawn(conn);
    client
}

impl LiveServer {
    fn start() -> LiveServer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let schema = format!("ffi_{}_{nanos}", std::process::id());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let base = runtime.block_on(async {
            admin().await.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
            let mut db: tokio_postgres::Config = database_url().parse().unwrap();
            db.options(format!("-c search_path={schema}"));
            let config = aqm_server::config::Config::parse_from(["aqm-server", "--register-per-minute", "1000"]);
            let directory =
                aqm_server::directory::PgDirectory::from_config(db, config.pool_size, config.policy()).unwrap();
            directory.migrate().await.expect("migrate");
            let state = aqm_server::http::AppState::new(directory, &config).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let timeout = config.request_timeout();
            tokio::spawn(aqm_server::http::serve_on(listener, state, timeout, async {
                let _ = stopped.await;
            }));
            format!("http://{addr}")
        });
        LiveServer { base, schema, runtime: Some(runtime), stop: Some(stop) }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(rt) = self.runtime.take() {
            let schema = self.schema.clone();
            rt.block_on(async move {
                let _ = admin().await.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
            });
        }
    }
}

fn open(dir: &tempfile::TempDir, name: &str, key: u8) -> Arc<AqmDevice> {
    AqmDevice::open(format!("redb://{}", dir.path().join(name).display()), vec![key; 32]).unwrap()
}

#[test]
fn publish_prefetch_and_a_stranger_on_demand_through_a_live_server() {
    let server = LiveServer::start();
    let url = server.base.clone();
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob, carol) = (open(&dir, "alice.redb", 1), open(&dir, "bob.redb", 2), open(&dir, "carol.redb", 3));

    // Bob registers and publishes what he minted; a second publish has nothing left to send.
    let bob_token = bob.register(url.clone()).unwrap();
    bob.mint(5, 4, 1).unwrap();
    // Ten one-time coins and one last-resort coin per published tier (GOLD, SILVER, BRONZE).
    assert_eq!(bob.publish(url.clone(), bob_token.clone()).unwrap(), 13);
    assert_eq!(bob.publish(url.clone(), bob_token.clone()).unwrap(), 0);

    // Alice, Bob's BESTIE, fills her inventory from the directory up to the caps.
    alice.register(url.clone()).unwrap();
    alice.add_contact(bob.user_id(), bob.public_identity().unwrap(), AqmPriority::Bestie).unwrap();
    bob.add_contact(alice.user_id(), alice.public_identity().unwrap(), AqmPriority::Bestie).unwrap();
    let report = alice.prefetch(url.clone(), bob.user_id()).unwrap();
    assert_eq!(report.stored, AqmTierCounts { gold: 5, silver: 4, bronze: 1 });
    assert_eq!(report.rejected, 0);
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts { gold: 5, silver: 4, bronze: 1 });
    // Topped up already: nothing more is asked.
    assert_eq!(alice.prefetch(url.clone(), bob.user_id()).unwrap().requested, AqmTierCounts::default());
    let AqmSendOutcome::Sent { sent } = alice.send(bob.user_id(), b"hi bob".to_vec(), HOME, false).unwrap() else {
        panic!("expected a sent message")
    };
    assert_eq!(sent.tier, AqmTier::Gold);
    assert_eq!(bob.receive(sent.envelope).unwrap().plaintext, b"hi bob");

    // Carol is a stranger: she pins Bob from the directory and fetches one coin on demand.
    // Bob's new coins come back from mint and are published with publish_coins (as an app that
    // restarted between mint and publish would).
    let fresh = bob.mint(0, 1, 0).unwrap();
    assert_eq!(bob.publish_coins(url.clone(), bob_token.clone(), fresh.clone()).unwrap(), 1);
    assert_eq!(bob.publish_coins(url.clone(), bob_token.clone(), fresh).unwrap(), 0, "idempotent");
    assert_eq!(bob.publish(url.clone(), bob_token.clone()).unwrap(), 0, "no longer queued");
    carol.register(url.clone()).unwrap();
    carol.pin_from_directory(url.clone(), bob.user_id()).unwrap();
    let coin = carol.fetch_coin(url.clone(), bob.user_id(), AqmTier::Silver, AqmTier::Bronze).unwrap().expect("a coin");
    let sent = carol.send_with_coin(bob.user_id(), coin, b"hello, stranger here".to_vec()).unwrap();
    assert_eq!(sent.tier, AqmTier::Silver);
    bob.pin_from_directory(url.clone(), carol.user_id()).unwrap();
    let got = bob.receive(sent.envelope).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.unverified), (&b"hello, stranger here"[..], true));
    // No one-time SILVER coin is left: the on-demand fetch hands out Bob's last-resort coin.
    let coin = carol.fetch_coin(url.clone(), bob.user_id(), AqmTier::Silver, AqmTier::Silver).unwrap().expect("a coin");
    let sent = carol.send_with_coin(bob.user_id(), coin, b"again".to_vec()).unwrap();
    assert!(sent.last_resort);
    let got = bob.receive(sent.envelope).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.last_resort), (&b"again"[..], true));
}

#[test]
fn server_calls_refuse_with_typed_errors_and_change_nothing() {
    let server = LiveServer::start();
    let url = server.base.clone();
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (open(&dir, "alice.redb", 1), open(&dir, "bob.redb", 2));
    let bob_token = bob.register(url.clone()).unwrap();
    // Registration hands out a token once.
    assert!(matches!(bob.register(url.clone()), Err(AqmError::Server { .. })), "second registration");

    // Another owner's coins are refused before anything is sent.
    let alices = alice.mint(0, 1, 0).unwrap();
    assert!(matches!(bob.publish_coins(url.clone(), bob_token.clone(), alices), Err(AqmError::WrongOwner { .. })));
    // A wrong token is refused by the server, and the coins stay queued for the next publish.
    bob.mint(0, 2, 0).unwrap();
    assert!(matches!(bob.publish(url.clone(), "not-a-token".into()), Err(AqmError::ServerUnauthorized { .. })));
    // The two coins and the SILVER last-resort coin the refused publish minted and kept queued.
    assert_eq!(bob.publish(url.clone(), bob_token).unwrap(), 3);

    // No token for a server → ServerUnauthorized, before any call.
    alice.add_contact(bob.user_id(), bob.public_identity().unwrap(), AqmPriority::Bestie).unwrap();
    assert!(matches!(alice.prefetch(url.clone(), bob.user_id()), Err(AqmError::ServerUnauthorized { .. })));
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts::default());
    // A server that is not there → ServerUnavailable, and Alice's minted coins (the one Bob
    // refused and one more) stay queued for a publish that works.
    alice.mint(0, 0, 1).unwrap();
    assert!(matches!(alice.publish("http://127.0.0.1:9".into(), "t".into()), Err(AqmError::ServerUnavailable { .. })));
    let alice_token = alice.register(url.clone()).unwrap();
    // With the SILVER and BRONZE last-resort coins the failed publish minted and kept queued.
    assert_eq!(alice.publish(url.clone(), alice_token).unwrap(), 4);
    // An unknown user in the directory → a typed refusal.
    assert!(alice.pin_from_directory(url, vec![7; 16]).is_err());
}

/// Bob publishes only SILVER: two one-time coins and his SILVER last-resort coin. Alice drains the
/// one-time coins; Carol and then Dave, new contacts, still reach Bob through the last-resort
/// coin (each send says so, each envelope differs), Bob opens both, a replay of either is refused
/// and changes nothing, and the coin can never be cached.
#[test]
fn a_drained_tier_still_reaches_the_owner_through_its_last_resort_coin() {
    let server = LiveServer::start();
    let url = server.base.clone();
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob, carol, dave) = (
        open(&dir, "alice.redb", 1),
        open(&dir, "bob.redb", 2),
        open(&dir, "carol.redb", 3),
        open(&dir, "dave.redb", 4),
    );

    let bob_token = bob.register(url.clone()).unwrap();
    bob.mint(0, 2, 0).unwrap();
    assert_eq!(bob.publish(url.clone(), bob_token.clone()).unwrap(), 3, "two one-time coins and one last-resort");
    let bob_vault = bob.vault_stats().unwrap();
    assert_eq!(bob_vault.active, AqmTierCounts { gold: 0, silver: 3, bronze: 0 });
    // Not due again: a second publish mints nothing and uploads nothing.
    assert_eq!(bob.publish(url.clone(), bob_token.clone()).unwrap(), 0);
    assert_eq!(bob.vault_stats().unwrap(), bob_vault);

    // Alice, a MATE, drains both one-time SILVER coins.
    alice.register(url.clone()).unwrap();
    alice.add_contact(bob.user_id(), bob.public_identity().unwrap(), AqmPriority::Mate).unwrap();
    let report = alice.prefetch(url.clone(), bob.user_id()).unwrap();
    assert_eq!((report.stored, report.last_resort), (AqmTierCounts { gold: 0, silver: 2, bronze: 0 }, 0));
    // Asked again, the directory has only the last-resort coin: handed out, never cached.
    let report = alice.prefetch(url.clone(), bob.user_id()).unwrap();
    assert_eq!((report.stored, report.rejected, report.last_resort), (AqmTierCounts::default(), 0, 1));
    assert_eq!(alice.inventory(bob.user_id()).unwrap(), AqmTierCounts { gold: 0, silver: 2, bronze: 0 });

    // Carol, a new contact, still reaches Bob.
    carol.register(url.clone()).unwrap();
    carol.pin_from_directory(url.clone(), bob.user_id()).unwrap();
    let coin = carol.fetch_coin(url.clone(), bob.user_id(), AqmTier::Silver, AqmTier::Silver).unwrap().expect("a coin");
    // A last-resort coin serves the send that fetched it: caching it is refused, nothing cached.
    carol.add_contact(bob.user_id(), bob.public_identity().unwrap(), AqmPriority::Mate).unwrap();
    assert!(matches!(carol.cache_coins(bob.user_id(), vec![coin.clone()]), Err(AqmError::LastResortNotCached { .. })));
    assert_eq!(carol.inventory(bob.user_id()).unwrap(), AqmTierCounts::default());
    let to_bob = carol.send_with_coin(bob.user_id(), coin.clone(), b"hi bob, carol here".to_vec()).unwrap();
    assert!(to_bob.last_resort && to_bob.rekeyed);
    assert_eq!(to_bob.tier, AqmTier::Silver);
    bob.pin_from_directory(url.clone(), carol.user_id()).unwrap();
    let got = bob.receive(to_bob.envelope.clone()).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.last_resort, got.rekeyed), (&b"hi bob, carol here"[..], true, true));
    assert_eq!(got.sender, carol.user_id());
    // Recorded, not burned: the coin stays active for the next new contact.
    assert_eq!(bob.vault_stats().unwrap(), bob_vault);

    // Dave, another new contact, gets the same coin and reaches Bob with another ciphertext.
    dave.register(url.clone()).unwrap();
    dave.pin_from_directory(url.clone(), bob.user_id()).unwrap();
    let dave_coin =
        dave.fetch_coin(url.clone(), bob.user_id(), AqmTier::Silver, AqmTier::Silver).unwrap().expect("a coin");
    assert_eq!(dave_coin, coin, "the directory hands the one last-resort coin to everyone");
    let from_dave = dave.send_with_coin(bob.user_id(), dave_coin, b"hi bob, dave here".to_vec()).unwrap();
    assert!(from_dave.last_resort);
    assert_ne!(from_dave.envelope, to_bob.envelope);
    bob.pin_from_directory(url.clone(), dave.user_id()).unwrap();
    let got = bob.receive(from_dave.envelope.clone()).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.last_resort), (&b"hi bob, dave here"[..], true));

    // A replay of either first message is refused, typed, and changes nothing.
    let before = bob.vault_stats().unwrap();
    for replayed in [to_bob.envelope, from_dave.envelope] {
        assert!(matches!(bob.receive(replayed), Err(AqmError::Replay { .. })));
    }
    assert_eq!(bob.vault_stats().unwrap(), before);
    // Carol's chain goes on: her next message is on it, not on a new last-resort open.
    let AqmSendOutcome::Sent { sent } = carol.send(bob.user_id(), b"still me".to_vec(), HOME, false).unwrap() else {
        panic!("Carol's chain is open")
    };
    assert!(!sent.last_resort && !sent.rekeyed, "an existing chain");
    let got = bob.receive(sent.envelope).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.last_resort, got.counter), (&b"still me"[..], false, 1));
}

/// A device on Redis publishes a last-resort coin with its one-time coins, and once those are
/// claimed a new contact still reaches it through that coin; a replay is refused on Redis too.
#[test]
fn a_redis_device_is_reached_through_its_last_resort_coin() {
    let server = LiveServer::start();
    let url = server.base.clone();
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let bob = AqmDevice::open(format!("redis://127.0.0.1:6379/0?prefix=ffi-lr-{nanos}"), vec![2; 32]).unwrap();
    let carol = open(&dir, "carol.redb", 3);
    let dave = open(&dir, "dave.redb", 4);

    let bob_token = bob.register(url.clone()).unwrap();
    bob.mint(0, 1, 0).unwrap();
    assert_eq!(bob.publish(url.clone(), bob_token).unwrap(), 2, "the one-time coin and a last-resort one");
    assert_eq!(bob.vault_stats().unwrap().active, AqmTierCounts { gold: 0, silver: 2, bronze: 0 });

    for c in [&carol, &dave] {
        c.register(url.clone()).unwrap();
        c.pin_from_directory(url.clone(), bob.user_id()).unwrap();
        bob.pin_from_directory(url.clone(), c.user_id()).unwrap();
    }
    let coin = carol.fetch_coin(url.clone(), bob.user_id(), AqmTier::Silver, AqmTier::Silver).unwrap().expect("a coin");
    let sent = carol.send_with_coin(bob.user_id(), coin, b"hi".to_vec()).unwrap();
    assert!(!sent.last_resort, "the one-time coin first");
    assert_eq!(bob.receive(sent.envelope).unwrap().plaintext, b"hi");

    // The one-time coin is claimed: Dave gets the last-resort coin.
    let coin = dave.fetch_coin(url, bob.user_id(), AqmTier::Silver, AqmTier::Silver).unwrap().expect("last resort");
    let sent = dave.send_with_coin(bob.user_id(), coin, b"from dave".to_vec()).unwrap();
    assert!(sent.last_resort);
    let replayed = sent.envelope.clone();
    let got = bob.receive(sent.envelope).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.last_resort), (&b"from dave"[..], true));
    let before = bob.vault_stats().unwrap();
    assert!(matches!(bob.receive(replayed), Err(AqmError::Replay { .. })));
    assert_eq!(bob.vault_stats().unwrap(), before, "a refused replay changes nothing");
}
