//! Last-resort coins over HTTP, against an in-process server on the machine's PostgreSQL, with
//! claims batched (the default) and one transaction per claim (`--claim-batch 1`): an upload
//! replaces an older one and refuses a bad expiry; a dry directory hands the same last-resort coin
//! to every requester, counts it against the quota and replays it; concurrent claimers get each
//! one-time coin exactly once and the last-resort coin once the one-time coins are gone.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use aqm_core::coin::{self, CoinKind, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::{KeyId, Tier, TierCounts, UserId, protocol};
use aqm_server::ServerError;
use aqm_server::client::Client;
use aqm_server::unix_now;
use common::server::{ADMIN, TestServer};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{Value, json};

struct User {
    identity: Identity,
    token: String,
}

impl User {
    fn id(&self) -> UserId {
        self.identity.user_id()
    }
}

async fn register(client: &Client, rng: &mut ChaCha20Rng) -> User {
    let identity = Identity::generate(rng);
    let proof = identity.registration_proof(rng).expect("proof");
    let token = client.register(identity.public(), &proof).await.expect("register");
    User { identity, token }
}

fn one_time(owner: &Identity, tier: Tier, n: usize, now: u64, rng: &mut ChaCha20Rng) -> Vec<PublicCoin> {
    let dk = DeviceKey::random(rng);
    (0..n).map(|_| coin::mint(owner, tier, &dk, now, rng).expect("mint").public).collect()
}

/// A last-resort coin minted at `minted` (its expiry is `minted` + 7 days).
fn last_resort(owner: &Identity, tier: Tier, minted: u64, rng: &mut ChaCha20Rng) -> PublicCoin {
    let dk = DeviceKey::random(rng);
    coin::mint_last_resort(owner, tier, &dk, minted, rng).expect("mint").public
}

fn ids(coins: &[PublicCoin]) -> Vec<KeyId> {
    coins.iter().map(|c| c.key_id).collect()
}

/// Runs `test` once on a batching server and once with `--claim-batch 1`.
macro_rules! both {
    ($name:ident, [$($flag:literal),*]) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn batched() {
                super::$name(&[$($flag),*]).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unbatched() {
                let mut flags: Vec<&str> = vec![$($flag),*];
                flags.extend(["--claim-batch", "1"]);
                super::$name(&flags).await;
            }
        }
    };
}

both!(upload_keeps_the_newest_and_refuses_bad_expiry, []);
both!(dry_directory_hands_out_the_last_resort_coin_to_everyone, []);
both!(the_quota_counts_a_last_resort_coin, ["--claim-quota", "2,2,2"]);
both!(concurrent_claimers_share_the_last_resort_coin_only, []);

async fn upload_keeps_the_newest_and_refuses_bad_expiry(flags: &[&str]) {
    let server = TestServer::start(flags).await;
    let client = Client::new(&server.base).expect("client");
    let http = reqwest::Client::new();
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let bob = register(&client, &mut rng).await;
    let alice = register(&client, &mut rng).await;
    let now = unix_now();
    let older = last_resort(&bob.identity, Tier::Silver, now - 3600, &mut rng);
    let newer = last_resort(&bob.identity, Tier::Silver, now, &mut rng);
    let gold = last_resort(&bob.identity, Tier::Gold, now, &mut rng);

    // Stored, then replaced by a newer one; the older one again, or a repeat, changes nothing.
    assert_eq!(client.upload(&bob.token, &bob.id(), std::slice::from_ref(&older)).await.expect("upload"), 1);
    assert_eq!(client.upload(&bob.token, &bob.id(), &[newer.clone(), gold.clone()]).await.expect("upload"), 2);
    assert_eq!(client.upload(&bob.token, &bob.id(), &[older.clone(), newer.clone()]).await.expect("upload"), 0);
    // Last-resort coins are not counted as available.
    assert_eq!(client.count(&alice.token, &bob.id()).await.expect("count"), TierCounts([0, 0, 0]));

    // Refused, the whole batch with it, and the slot keeps `newer`: an expiry beyond the
    // last-resort lifetime (+ a day), one too close to be handed out, and a one-time coin
    // turned last-resort by altering its kind byte (the kind is signed).
    let too_long = last_resort(&bob.identity, Tier::Silver, now + 2 * 86_400, &mut rng);
    assert!(too_long.expires_at > now + protocol::LAST_RESORT_LIFETIME_SECS + 86_400);
    let expiring = last_resort(&bob.identity, Tier::Silver, now - protocol::LAST_RESORT_LIFETIME_SECS + 60, &mut rng);
    // Minted 23 days ago, so its expiry is within a last-resort coin's: only the kind differs.
    let mut relabelled = one_time(&bob.identity, Tier::Silver, 1, now - 23 * 86_400, &mut rng).remove(0);
    relabelled.kind = CoinKind::LastResort;
    let fresh_one_time = one_time(&bob.identity, Tier::Silver, 1, now, &mut rng);
    for (what, bad, error) in [
        ("too long", too_long, "bad_expiry"),
        ("expiring", expiring, "coin_expired"),
        ("relabelled", relabelled, "bad_signature"),
    ] {
        let body = json!({"user_id": bob.id().to_string(), "coins": [
            serde_json::to_value(aqm_server::wire::CoinJson::from_coin(&fresh_one_time[0])).expect("json"),
            serde_json::to_value(aqm_server::wire::CoinJson::from_coin(&bad)).expect("json"),
        ]});
        let reply =
            http.post(format!("{}/v1/coins/upload", server.base)).bearer_auth(&bob.token).json(&body).send().await;
        let reply = reply.expect("send");
        assert_eq!(reply.status().as_u16(), 422, "{what}");
        let body: Value = reply.json().await.expect("json");
        assert_eq!(body["error"], error, "{what}: {body}");
    }
    assert_eq!(client.count(&alice.token, &bob.id()).await.expect("count"), TierCounts([0, 0, 0]));
    let got = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Silver, 1, None).await.expect("fetch");
    assert_eq!(got, vec![newer.clone()]);

    // The sweeps: hard-delete leaves it (it is never claimed); purge-stale with a stale age of 0
    // days deletes it with the rest.
    assert_eq!(client.hard_delete(ADMIN, Some(0)).await.expect("hard delete"), 0);
    let got = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Gold, 1, None).await.expect("fetch");
    assert_eq!(got, vec![gold]);
    assert_eq!(client.purge_stale(ADMIN, Some(0)).await.expect("purge"), 2);
    let got = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Silver, 1, None).await.expect("fetch");
    assert!(got.is_empty(), "{got:?}");
    server.stop().await;
}

async fn dry_directory_hands_out_the_last_resort_coin_to_everyone(flags: &[&str]) {
    let server = TestServer::start(flags).await;
    let client = Client::new(&server.base).expect("client");
    let http = reqwest::Client::new();
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let bob = register(&client, &mut rng).await;
    let alice = register(&client, &mut rng).await;
    let carol = register(&client, &mut rng).await;
    let now = unix_now();
    let coins = one_time(&bob.identity, Tier::Silver, 2, now, &mut rng);
    let lr = last_resort(&bob.identity, Tier::Silver, now, &mut rng);
    let mut batch = coins.clone();
    batch.push(lr.clone());
    assert_eq!(client.upload(&bob.token, &bob.id(), &batch).await.expect("upload"), 3);
    assert_eq!(client.count(&alice.token, &bob.id()).await.expect("count"), TierCounts([0, 2, 0]));

    // One-time coins first, and a claim that gets some gets no last-resort coin beside them.
    let got = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Silver, 3, None).await.expect("fetch");
    assert_eq!(ids(&got), ids(&coins));
    assert_eq!(client.count(&alice.token, &bob.id()).await.expect("count"), TierCounts([0, 0, 0]));

    // Dry: every requester gets the last-resort coin, one of it however many it asks for, marked
    // as such in the JSON, and it is still there for the next.
    let key = [7u8; 16];
    let for_carol =
        client.fetch(&carol.token, &bob.id(), &carol.id(), Tier::Silver, 4, Some(key)).await.expect("fetch");
    assert_eq!(for_carol, vec![lr.clone()]);
    let for_alice = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Silver, 1, None).await.expect("fetch");
    assert_eq!(for_alice, vec![lr.clone()]);
    let raw: Value = http
        .get(format!("{}/v1/coins/fetch", server.base))
        .bearer_auth(&carol.token)
        .query(&[
            ("target_user_id", bob.id().to_string()),
            ("requester_id", carol.id().to_string()),
            ("coin_category", "SILVER".into()),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(raw["coins"][0]["coin_kind"], 1, "{raw}");
    assert_eq!(raw["coins"][0]["key_id"], lr.key_id.to_string(), "{raw}");
    // The OpenAPI document allows kind 1 on the coins it describes (upload and fetch alike).
    let doc: Value =
        http.get(format!("{}/v1/openapi.json", server.base)).send().await.expect("send").json().await.expect("json");
    let kind = &doc["components"]["schemas"]["CoinJson"]["properties"]["coin_kind"];
    assert_eq!((kind["minimum"].as_u64(), kind["maximum"].as_u64()), (Some(0), Some(1)), "{kind}");
    assert!(kind["description"].as_str().is_some_and(|d| d.contains("last-resort")), "{kind}");

    // A retry with the same key replays the same coin (and counts nothing more).
    let again = client.fetch(&carol.token, &bob.id(), &carol.id(), Tier::Silver, 4, Some(key)).await.expect("fetch");
    assert_eq!(again, vec![lr.clone()]);
    // Other tiers, with no last-resort coin, stay empty.
    let none = client.fetch(&carol.token, &bob.id(), &carol.id(), Tier::Gold, 1, None).await.expect("fetch");
    assert!(none.is_empty());
    // Metrics tell one-time and last-resort hand-outs apart (the replay counts nothing).
    let metrics = http.get(format!("{}/metrics", server.base)).send().await.expect("send").text().await.expect("text");
    assert!(metrics.contains("aqm_coins_claimed_total{tier=\"SILVER\"} 2"), "{metrics}");
    assert!(metrics.contains("aqm_last_resort_handed_out_total{tier=\"SILVER\"} 3"), "{metrics}");
    // A newer one replaces it for the next claims.
    let next = last_resort(&bob.identity, Tier::Silver, now + 60, &mut rng);
    assert_eq!(client.upload(&bob.token, &bob.id(), std::slice::from_ref(&next)).await.expect("upload"), 1);
    let got = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Silver, 1, None).await.expect("fetch");
    assert_eq!(got, vec![next]);
    server.stop().await;
}

async fn the_quota_counts_a_last_resort_coin(flags: &[&str]) {
    let server = TestServer::start(flags).await;
    let client = Client::new(&server.base).expect("client");
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let bob = register(&client, &mut rng).await;
    let alice = register(&client, &mut rng).await;
    let carol = register(&client, &mut rng).await;
    let now = unix_now();
    let coins = one_time(&bob.identity, Tier::Bronze, 1, now, &mut rng);
    let lr = last_resort(&bob.identity, Tier::Bronze, now, &mut rng);
    client.upload(&bob.token, &bob.id(), &[coins[0].clone(), lr.clone()]).await.expect("upload");

    // Quota 2: one one-time coin, then the last-resort coin (counting 1), then refused.
    let owner = bob.id();
    let fetch = async |u: &User, count: u32| client.fetch(&u.token, &owner, &u.id(), Tier::Bronze, count, None).await;
    assert_eq!(fetch(&alice, 1).await.expect("fetch"), coins);
    assert_eq!(fetch(&alice, 1).await.expect("fetch"), vec![lr.clone()]);
    let refused = |r: Result<Vec<PublicCoin>, ServerError>| match r {
        Err(ServerError::Remote { status: 429, error, detail }) if error == "quota_exceeded" => {
            assert!(detail.contains("2 BRONZE"), "{detail}");
        }
        other => panic!("expected 429 quota_exceeded, got {other:?}"),
    };
    refused(fetch(&alice, 1).await);
    // Carol's quota is her own: two last-resort hand-outs, then refused.
    assert_eq!(fetch(&carol, 3).await.expect("fetch"), vec![lr.clone()]);
    assert_eq!(fetch(&carol, 1).await.expect("fetch"), vec![lr.clone()]);
    refused(fetch(&carol, 1).await);
    // The refused claims handed out nothing and used it up for no one else.
    let dave = register(&client, &mut rng).await;
    assert_eq!(fetch(&dave, 1).await.expect("fetch"), vec![lr]);
    server.stop().await;
}

async fn concurrent_claimers_share_the_last_resort_coin_only(flags: &[&str]) {
    const ONE_TIME: usize = 12;
    const CLAIMERS: usize = 40;
    let server = TestServer::start(flags).await;
    let client = Arc::new(Client::new(&server.base).expect("client"));
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let bob = register(&client, &mut rng).await;
    let now = unix_now();
    let coins = one_time(&bob.identity, Tier::Gold, ONE_TIME, now, &mut rng);
    let lr = last_resort(&bob.identity, Tier::Gold, now, &mut rng);
    let mut batch = coins.clone();
    batch.push(lr.clone());
    client.upload(&bob.token, &bob.id(), &batch).await.expect("upload");
    let mut claimers = Vec::new();
    for _ in 0..CLAIMERS {
        claimers.push(register(&client, &mut rng).await);
    }

    let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let tasks: Vec<_> = claimers
        .into_iter()
        .map(|u| {
            let (client, start, owner) = (client.clone(), start.clone(), bob.id());
            tokio::spawn(async move {
                start.wait().await;
                client.fetch(&u.token, &owner, &u.identity.user_id(), Tier::Gold, 1, None).await.expect("fetch")
            })
        })
        .collect();
    let mut handed: HashMap<KeyId, usize> = HashMap::new();
    for t in tasks {
        let got = t.await.expect("task");
        assert_eq!(got.len(), 1, "every claimer gets exactly one coin: {got:?}");
        *handed.entry(got[0].key_id).or_default() += 1;
    }
    // Every one-time coin exactly once (claims that find the rest locked by others get the
    // last-resort coin: those coins are being handed out to someone), the rest the last-resort coin.
    for c in &coins {
        assert_eq!(handed.get(&c.key_id), Some(&1), "one-time coin {} handed out once", c.key_id);
    }
    assert_eq!(handed.get(&lr.key_id), Some(&(CLAIMERS - ONE_TIME)));
    assert_eq!(handed.len(), ONE_TIME + 1);
    server.stop().await;
}

/// Concurrent uploads of one owner's last-resort coins of one tier take turns: all succeed, and
/// the slot ends with the one that expires last, whatever order they ran in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_leave_the_newest() {
    const UPLOADS: u64 = 12;
    let server = TestServer::start(&[]).await;
    let client = Arc::new(Client::new(&server.base).expect("client"));
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    let bob = Arc::new(register(&client, &mut rng).await);
    let alice = register(&client, &mut rng).await;
    let now = unix_now();
    let coins: Vec<PublicCoin> =
        (0..UPLOADS).map(|i| last_resort(&bob.identity, Tier::Bronze, now - 600 + 10 * i, &mut rng)).collect();
    let start = Arc::new(tokio::sync::Barrier::new(coins.len()));
    let tasks: Vec<_> = coins
        .iter()
        .cloned()
        .map(|c| {
            let (client, start, bob) = (client.clone(), start.clone(), bob.clone());
            tokio::spawn(async move {
                start.wait().await;
                client.upload(&bob.token, &bob.id(), &[c]).await.expect("upload")
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        stored += t.await.expect("task");
    }
    assert!((1..=UPLOADS as u32).contains(&stored), "{stored}");
    let got = client.fetch(&alice.token, &bob.id(), &alice.id(), Tier::Bronze, 1, None).await.expect("fetch");
    assert_eq!(got, vec![coins.last().expect("coins").clone()]);
    let rows: i64 = {
        let (db, conn) = tokio_postgres::connect(&common::url_with_schema(&server.schema), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        db.query_one("SELECT count(*) FROM coin_inventory WHERE coin_kind = 1", &[]).await.expect("count").get(0)
    };
    assert_eq!(rows, 1);
    server.stop().await;
}
