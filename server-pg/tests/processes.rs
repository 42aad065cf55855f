//! The real binary under faults: two server processes on one database racing the same claims,
//! a server killed with SIGKILL mid-load and restarted, and PostgreSQL itself restarted
//! mid-load (503 with Retry-After during the outage, then service again without a restart).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::{KeyId, Tier, UserId};
use aqm_server::client::Client;
use aqm_server::{ServerError, unix_now};
use common::process::{PrivatePostgres, ServerProcess, free_port};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct User {
    id: UserId,
    token: String,
    identity: Identity,
}

async fn register(client: &Client, rng: &mut ChaCha20Rng) -> User {
    let identity = Identity::generate(rng);
    let proof = identity.registration_proof(rng).expect("proof");
    let token = client.register(identity.public(), &proof).await.expect("register");
    User { id: identity.user_id(), token, identity }
}

fn mint(owner: &Identity, tier: Tier, n: usize, rng: &mut ChaCha20Rng) -> Vec<PublicCoin> {
    let dk = DeviceKey::random(rng);
    (0..n).map(|_| coin::mint(owner, tier, &dk, unix_now(), rng).expect("mint").public).collect()
}

async fn schema_url() -> (String, String) {
    let schema = common::unique_schema("proc");
    common::create_schema(&schema).await;
    (common::url_with_schema(&schema), schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_never_hand_out_a_coin_twice() {
    let (url, schema) = schema_url().await;
    let a = ServerProcess::start(&url, free_port(), &[]);
    let b = ServerProcess::start(&url, free_port(), &[]);
    let (ca, cb) = (Client::new(&a.base).expect("client"), Client::new(&b.base).expect("client"));
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let bob = register(&ca, &mut rng).await;
    ca.upload(&bob.token, &bob.id, &mint(&bob.identity, Tier::Bronze, 60, &mut rng)).await.expect("upload");
    let mut claimers = Vec::new();
    for _ in 0..40 {
        claimers.push(register(&cb, &mut rng).await);
    }
    // Each claimer asks both servers for 2 coins at once: 160 asked, 60 there.
    let mut tasks = Vec::new();
    for (i, u) in claimers.iter().enumerate() {
        for (j, c) in [&ca, &cb].into_iter().enumerate() {
            let (c, token, id, owner) = (c.clone(), u.token.clone(), u.id, bob.id);
            let key = Some([i as u8, j as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            tasks.push(tokio::spawn(async move { c.fetch(&token, &owner, &id, Tier::Bronze, 2, key).await }));
        }
    }
    let mut handed = Vec::new();
    for t in tasks {
        handed.extend(t.await.expect("task").expect("fetch"));
    }
    let distinct: HashSet<KeyId> = handed.iter().map(|c| c.key_id).collect();
    assert_eq!(handed.len(), 60, "every coin handed out once");
    assert_eq!(distinct.len(), 60, "a coin was handed out twice across the two servers");
    drop((a, b));
    common::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_claim() {
    let (url, schema) = schema_url().await;
    let port = free_port();
    let mut server = ServerProcess::start(&url, port, &[]);
    let client = Client::new(&server.base).expect("client");
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let bob = register(&client, &mut rng).await;
    let coins = mint(&bob.identity, Tier::Bronze, 100, &mut rng);
    client.upload(&bob.token, &bob.id, &coins[..50]).await.expect("upload");
    client.upload(&bob.token, &bob.id, &coins[50..]).await.expect("upload");
    let mut claimers = Vec::new();
    for _ in 0..25 {
        claimers.push(register(&client, &mut rng).await);
    }
    // Every claimer claims 4 coins in 4 keyed claims of 1, retrying each (same key) until it
    // is answered; the server is killed once claims are under way and started again.
    let tasks: Vec<_> = claimers
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (c, token, id, owner) = (client.clone(), u.token.clone(), u.id, bob.id);
            tokio::spawn(async move {
                let mut got = Vec::new();
                for n in 0..4u8 {
                    let key = Some([i as u8, n, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        match c.fetch(&token, &owner, &id, Tier::Bronze, 1, key).await {
                            Ok(coins) => {
                                got.extend(coins);
                                break;
                            }
                            Err(ServerError::Transport(_) | ServerError::Unavailable(_))
                                if Instant::now() < deadline =>
                            {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Err(e) => panic!("claim failed: {e}"),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                (id, got)
            })
        })
        .collect();
    let (db, conn) = tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let sql = format!("SELECT count(*) FROM {schema}.coin_inventory WHERE fetched_by IS NOT NULL");
    let claimed = || async { db.query_one(&sql, &[]).await.expect("count").get::<_, i64>(0) };
    while claimed().await < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    // The kill came mid-load: some coins were claimed, not all (the client's own retries, same
    // key, then carry the cut claims over to the restarted server).
    let at_kill = claimed().await;
    assert!(at_kill > 0 && at_kill < 100, "the kill did not land mid-load ({at_kill} of 100 claimed)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _restarted = ServerProcess::start(&url, port, &[]);
    let mut by_claimer: HashMap<UserId, Vec<KeyId>> = HashMap::new();
    for t in tasks {
        let (id, got) = t.await.expect("claimer");
        by_claimer.insert(id, got.iter().map(|c| c.key_id).collect());
    }
    let all: Vec<KeyId> = by_claimer.values().flatten().copied().collect();
    let distinct: HashSet<KeyId> = all.iter().copied().collect();
    assert_eq!(all.len(), 100, "every claimer got its 4 coins");
    assert_eq!(distinct.len(), 100, "a coin was handed out twice");
    // What each claimer was told it got is exactly what the database says it claimed.
    let rows = db
        .query(&format!("SELECT key_id, fetched_by FROM {schema}.coin_inventory WHERE fetched_by IS NOT NULL"), &[])
        .await
        .expect("query");
    let mut in_db: HashMap<UserId, HashSet<KeyId>> = HashMap::new();
    for r in rows {
        let (k, by): (uuid::Uuid, uuid::Uuid) = (r.get(0), r.get(1));
        in_db.entry(UserId(*by.as_bytes())).or_default().insert(KeyId(*k.as_bytes()));
    }
    for (id, got) in &by_claimer {
        assert_eq!(in_db.get(id), Some(&got.iter().copied().collect()), "claimer {id}: reply and database disagree");
    }
    common::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_gives_503_then_recovers() {
    let pg = PrivatePostgres::start();
    let server = ServerProcess::start(&pg.url(), free_port(), &[]);
    let client = Client::new(&server.base).expect("client");
    let http = reqwest::Client::new();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let bob = register(&client, &mut rng).await;
    let alice = register(&client, &mut rng).await;
    client.upload(&bob.token, &bob.id, &mint(&bob.identity, Tier::Bronze, 4, &mut rng)).await.expect("upload");

    pg.stop();
    // During the outage: 503 with Retry-After and a JSON error, never a hang or a 500.
    let reply = http
        .get(format!("{}/v1/coins/count", server.base))
        .bearer_auth(&alice.token)
        .query(&[("user_id", bob.id.to_string())])
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status().as_u16(), 503);
    assert!(reply.headers().contains_key("retry-after"));
    let health = http.get(format!("{}/v1/health", server.base)).send().await.expect("send");
    assert_eq!(health.status().as_u16(), 503);

    pg.resume();
    // Back without restarting the server: the pool replaces its broken connections.
    let deadline = Instant::now() + Duration::from_secs(20);
    let counts = loop {
        match client.count(&alice.token, &bob.id).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no recovery after PostgreSQL came back: {e}"),
        }
    };
    assert_eq!(counts.get(Tier::Bronze), 4, "nothing lost over the restart");
    let got = client.fetch(&alice.token, &bob.id, &alice.id, Tier::Bronze, 2, Some([1; 16])).await.expect("fetch");
    assert_eq!(got.len(), 2);
    assert!(client.health().await.expect("health").db_connected);
    drop(server);
}
