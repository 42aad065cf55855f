//! The HTTP API end to end, against an in-process server on the machine's PostgreSQL: every
//! endpoint, a bad-input suite (right status, typed error, nothing changed), and 200 concurrent
//! claimers of one owner's coins.

mod common;

use std::collections::HashSet;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::{Policy, Tier, TierCounts};
use aqm_server::client::Client;
use aqm_server::unix_now;
use aqm_server::wire::{CoinJson, ErrorBody, RegisterRequest};
use common::server::{ADMIN, TestServer};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{Value, json};

struct User {
    identity: Identity,
    token: String,
}

async fn register(client: &Client, rng: &mut ChaCha20Rng) -> User {
    let identity = Identity::generate(rng);
    let proof = identity.registration_proof(rng).expect("proof");
    let token = client.register(identity.public(), &proof).await.expect("register");
    User { identity, token }
}

fn mint(owner: &Identity, tier: Tier, n: usize, now: u64, rng: &mut ChaCha20Rng) -> Vec<PublicCoin> {
    let dk = DeviceKey::random(rng);
    (0..n).map(|_| coin::mint(owner, tier, &dk, now, rng).expect("mint").public).collect()
}

async fn error_of(reply: reqwest::Response) -> (u16, String) {
    let status = reply.status().as_u16();
    let body: ErrorBody = reply.json().await.expect("error replies are JSON {error, detail}");
    assert!(!body.detail.is_empty());
    (status, body.error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint() {
    let server = TestServer::start(&[]).await;
    let client = Client::new(&server.base).expect("client");
    let http = reqwest::Client::new();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let bob = register(&client, &mut rng).await;
    let alice = register(&client, &mut rng).await;
    let (bob_id, alice_id) = (bob.identity.user_id(), alice.identity.user_id());

    // GET /v1/users/{id} returns the identity as registered.
    assert_eq!(client.identity(&bob_id).await.expect("identity").as_ref(), Some(bob.identity.public()));
    assert_eq!(client.identity(&aqm_core::UserId([9; 16])).await.expect("identity"), None);

    // Registering again is 409 and hands out no second token.
    let proof = bob.identity.registration_proof(&mut rng).expect("proof");
    let again =
        http.post(format!("{}/v1/users", server.base)).json(&RegisterRequest::new(bob.identity.public(), &proof));
    assert_eq!(error_of(again.send().await.expect("send")).await, (409, "already_registered".into()));

    // Upload: idempotent on key id.
    let now = unix_now();
    let mut coins = mint(&bob.identity, Tier::Gold, 2, now, &mut rng);
    coins.extend(mint(&bob.identity, Tier::Silver, 3, now, &mut rng));
    coins.extend(mint(&bob.identity, Tier::Bronze, 2, now, &mut rng));
    assert_eq!(client.upload(&bob.token, &bob_id, &coins).await.expect("upload"), 7);
    assert_eq!(client.upload(&bob.token, &bob_id, &coins).await.expect("re-upload"), 0);
    assert_eq!(client.count(&alice.token, &bob_id).await.expect("count"), TierCounts([2, 3, 2]));

    // Fetch: oldest first, verified against Bob's identity; a retry with the same key returns
    // the same coins and claims nothing more.
    let key = Some([5u8; 16]);
    let got = client.fetch(&alice.token, &bob_id, &alice_id, Tier::Silver, 2, key).await.expect("fetch");
    assert_eq!(got, coins[2..4].to_vec());
    got.iter().for_each(|c| c.verify(bob.identity.public()).expect("fetched coins verify"));
    let retry = client.fetch(&alice.token, &bob_id, &alice_id, Tier::Silver, 2, key).await.expect("retry");
    assert_eq!(retry, got);
    assert_eq!(client.count(&alice.token, &bob_id).await.expect("count"), TierCounts([2, 1, 2]));
    // The prototype's default count is 1.
    let one: Value = http
        .get(format!("{}/v1/coins/fetch", server.base))
        .bearer_auth(&alice.token)
        .query(&[
            ("target_user_id", bob_id.to_string()),
            ("requester_id", alice_id.to_string()),
            ("coin_category", "GOLD".into()),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(one["coins"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["coins"][0], serde_json::to_value(CoinJson::from_coin(&coins[0])).expect("json"));

    // Admin sweeps: refused without the admin token, served with it.
    let r = http.post(format!("{}/v1/admin/purge-stale", server.base)).bearer_auth(&alice.token).json(&json!({}));
    assert_eq!(error_of(r.send().await.expect("send")).await, (403, "forbidden".into()));
    assert_eq!(client.purge_stale(ADMIN, Some(30)).await.expect("purge"), 0);
    assert_eq!(client.hard_delete(ADMIN, Some(0)).await.expect("hard delete"), 3);
    assert_eq!(client.count(&alice.token, &bob_id).await.expect("count"), TierCounts([1, 1, 2]));

    // Health, OpenAPI, metrics.
    let health = client.health().await.expect("health");
    assert!(health.db_connected && health.status == "ok");
    let doc: Value =
        http.get(format!("{}/v1/openapi.json", server.base)).send().await.expect("send").json().await.expect("json");
    for path in [
        "/v1/users",
        "/v1/users/{user_id}",
        "/v1/coins/upload",
        "/v1/coins/fetch",
        "/v1/coins/count",
        "/v1/admin/purge-stale",
        "/v1/admin/hard-delete",
        "/v1/health",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    let metrics = http.get(format!("{}/metrics", server.base)).send().await.expect("send").text().await.expect("text");
    assert!(
        metrics.contains("aqm_http_requests_total{route=\"/v1/coins/fetch\",method=\"GET\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("aqm_coins_claimed_total{tier=\"SILVER\"} 2"), "{metrics}");
    assert!(metrics.contains("aqm_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("aqm_db_pool_connections"));
    server.stop().await;
}

/// One bad request: what to send and the status and error kind it must get.
struct Bad {
    what: &'static str,
    request: reqwest::RequestBuilder,
    status: u16,
    error: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_typed_error_and_changes_nothing() {
    let server = TestServer::start(&["--body-limit", "65536"]).await;
    let base = server.base.clone();
    let client = Client::new(&base).expect("client");
    let http = reqwest::Client::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let bob = register(&client, &mut rng).await;
    let carol = register(&client, &mut rng).await;
    let (bob_id, carol_id) = (bob.identity.user_id(), carol.identity.user_id());
    let now = unix_now();
    let good = mint(&bob.identity, Tier::Silver, 2, now, &mut rng);
    client.upload(&bob.token, &bob_id, &good).await.expect("upload");
    let fresh = mint(&bob.identity, Tier::Bronze, 1, now, &mut rng);

    let upload = |coins: Vec<Value>| {
        http.post(format!("{base}/v1/coins/upload"))
            .bearer_auth(&bob.token)
            .json(&json!({"user_id": bob_id.to_string(), "coins": coins}))
    };
    let coin = |c: &PublicCoin| serde_json::to_value(CoinJson::from_coin(c)).expect("json");
    let with = |c: &PublicCoin, field: &str, v: Value| {
        let mut j = coin(c);
        j[field] = v;
        j
    };
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let fetch =
        |token: &str, q: &[(&str, String)]| http.get(format!("{base}/v1/coins/fetch")).bearer_auth(token).query(q);
    let fq = |requester: &aqm_core::UserId, tier: &str, count: u32| {
        vec![
            ("target_user_id", bob_id.to_string()),
            ("requester_id", requester.to_string()),
            ("coin_category", tier.to_string()),
            ("count", count.to_string()),
        ]
    };

    let mut forged = fresh[0].clone();
    forged.signature[3] ^= 1;
    let mut later = fresh[0].clone();
    later.expires_at += 3600;
    let expiring = mint(&bob.identity, Tier::Bronze, 1, now - 29 * 86_400, &mut rng);
    let carols = mint(&carol.identity, Tier::Bronze, 1, now, &mut rng);
    let long_key = {
        let mut j = coin(&fresh[0]);
        j["public_key_b64"] = json!(b64(&[7u8; 33]));
        j
    };
    let mut cases = vec![
        Bad {
            what: "malformed JSON",
            request: http
                .post(format!("{base}/v1/coins/upload"))
                .bearer_auth(&bob.token)
                .header("content-type", "application/json")
                .body("{\"user_id\": "),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "no JSON content type",
            request: http.post(format!("{base}/v1/coins/upload")).bearer_auth(&bob.token).body("{}"),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "bad base64",
            request: upload(vec![with(&fresh[0], "public_key_b64", json!("%%%not base64"))]),
            status: 400,
            error: "bad_request",
        },
        Bad { what: "wrong key size", request: upload(vec![long_key]), status: 400, error: "bad_request" },
        Bad {
            what: "wrong signature size",
            request: upload(vec![with(&fresh[0], "signature_b64", json!(b64(&[1u8; 63])))]),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "unknown tier",
            request: upload(vec![with(&fresh[0], "coin_category", json!("PLATINUM"))]),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "bad key id",
            request: upload(vec![with(&fresh[0], "key_id", json!("not-a-uuid"))]),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "unknown coin kind",
            request: upload(vec![with(&fresh[0], "coin_kind", json!(2))]),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "unknown field",
            request: upload(vec![with(&fresh[0], "surprise", json!(true))]),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "forged signature",
            request: upload(vec![coin(&fresh[0]), coin(&forged)]),
            status: 422,
            error: "bad_signature",
        },
        Bad { what: "altered expires_at", request: upload(vec![coin(&later)]), status: 422, error: "bad_signature" },
        Bad { what: "expiring coin", request: upload(vec![coin(&expiring[0])]), status: 422, error: "coin_expired" },
        Bad {
            what: "another owner's coin in Bob's upload",
            request: upload(vec![coin(&carols[0])]),
            status: 422,
            error: "bad_signature",
        },
        Bad {
            what: "upload as someone else",
            request: http
                .post(format!("{base}/v1/coins/upload"))
                .bearer_auth(&bob.token)
                .json(&json!({"user_id": carol_id.to_string(), "coins": [coin(&carols[0])]})),
            status: 403,
            error: "forbidden",
        },
        Bad {
            what: "no token",
            request: http
                .post(format!("{base}/v1/coins/upload"))
                .json(&json!({"user_id": bob_id.to_string(), "coins": [coin(&fresh[0])]})),
            status: 401,
            error: "unauthorized",
        },
        Bad {
            what: "wrong token",
            request: http
                .post(format!("{base}/v1/coins/upload"))
                .bearer_auth(format!("{bob_id}.{}", "A".repeat(43)))
                .json(&json!({"user_id": bob_id.to_string(), "coins": [coin(&fresh[0])]})),
            status: 401,
            error: "unauthorized",
        },
        Bad {
            what: "garbage token",
            request: fetch("garbage", &fq(&carol_id, "SILVER", 1)),
            status: 401,
            error: "unauthorized",
        },
        Bad {
            what: "oversize body",
            request: upload((0..40).map(|_| with(&good[0], "public_key_b64", json!(b64(&[0u8; 1184])))).collect()),
            status: 413,
            error: "payload_too_large",
        },
        Bad {
            what: "requester is not the token's user",
            request: fetch(&carol.token, &fq(&bob_id, "SILVER", 1)),
            status: 403,
            error: "forbidden",
        },
        Bad {
            what: "fetch unknown tier",
            request: fetch(&carol.token, &fq(&carol_id, "gold-ish", 1)),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "fetch bad uuid",
            request: fetch(
                &carol.token,
                &[
                    ("target_user_id", "123".into()),
                    ("requester_id", carol_id.to_string()),
                    ("coin_category", "SILVER".into()),
                ],
            ),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "fetch missing parameter",
            request: fetch(&carol.token, &[("requester_id", carol_id.to_string())]),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "fetch count not a number",
            request: fetch(
                &carol.token,
                &[
                    ("target_user_id", bob_id.to_string()),
                    ("requester_id", carol_id.to_string()),
                    ("coin_category", "SILVER".into()),
                    ("count", "-1".into()),
                ],
            ),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "fetch count too large",
            request: fetch(&carol.token, &fq(&carol_id, "SILVER", 1000)),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "user bad uuid",
            request: http.get(format!("{base}/v1/users/xyz")),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "user unknown",
            request: http.get(format!("{base}/v1/users/{}", aqm_core::UserId([3; 16]))),
            status: 404,
            error: "unknown_user",
        },
        Bad {
            what: "register with someone else's proof",
            request: http.post(format!("{base}/v1/users")).json(&{
                let eve = Identity::generate(&mut rng);
                let proof = carol.identity.registration_proof(&mut rng).expect("proof");
                RegisterRequest::new(eve.public(), &proof)
            }),
            status: 422,
            error: "bad_signature",
        },
        Bad {
            what: "register short ML-DSA key",
            request: http.post(format!("{base}/v1/users")).json(&{
                let mut r = RegisterRequest::new(
                    carol.identity.public(),
                    &carol.identity.registration_proof(&mut rng).expect("proof"),
                );
                r.user_id = aqm_core::UserId([4; 16]).to_string();
                r.mldsa65_pk_b64 = b64(&[1u8; 100]);
                r
            }),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "admin without admin token",
            request: http.post(format!("{base}/v1/admin/hard-delete")).bearer_auth(&bob.token).json(&json!({})),
            status: 403,
            error: "forbidden",
        },
        Bad {
            what: "admin unknown field",
            request: http.post(format!("{base}/v1/admin/hard-delete")).bearer_auth(ADMIN).json(&json!({"grace": 1})),
            status: 400,
            error: "bad_request",
        },
        Bad {
            what: "no such endpoint",
            request: http.get(format!("{base}/v2/nothing")),
            status: 404,
            error: "not_found",
        },
    ];
    // Over quota: Carol claims the SILVER quota of Bob's coins (6 by default), then one more.
    let quota = Policy::DEFAULT.claim_quota(Tier::Silver);
    let extra = mint(&bob.identity, Tier::Silver, quota as usize, now, &mut rng);
    client.upload(&bob.token, &bob_id, &extra).await.expect("upload");
    let taken = client.fetch(&carol.token, &bob_id, &carol_id, Tier::Silver, quota, None).await.expect("fetch");
    assert_eq!(taken.len() as u32, quota);
    cases.push(Bad {
        what: "over quota",
        request: fetch(&carol.token, &fq(&carol_id, "SILVER", 1)),
        status: 429,
        error: "quota_exceeded",
    });

    let before = client.count(&bob.token, &bob_id).await.expect("count");
    assert_eq!(before, TierCounts([0, 2, 0]));
    for case in cases {
        let reply = case.request.send().await.unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert_eq!(error_of(reply).await, (case.status, case.error.to_owned()), "{}", case.what);
    }
    // Nothing changed: the same coins, no new identity.
    assert_eq!(client.count(&bob.token, &bob_id).await.expect("count"), before);
    assert_eq!(client.identity(&aqm_core::UserId([4; 16])).await.expect("identity"), None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_rate_limited_per_address() {
    let server = TestServer::start(&["--register-per-minute", "2"]).await;
    let client = Client::new(&server.base).expect("client");
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    // Two fit in one minute unless the minute turns over between them; the third is refused
    // unless it did. Try until a minute's three land in one window.
    let mut refused = false;
    for _ in 0..3 {
        let id = Identity::generate(&mut rng);
        match client.register(id.public(), &id.registration_proof(&mut rng).expect("proof")).await {
            Ok(_) => {}
            Err(aqm_server::ServerError::Remote { status: 429, error, .. }) if error == "rate_limited" => {
                refused = true
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert!(refused || unix_now() % 60 < 2, "the third registration in a minute must be refused");
    server.stop().await;
}

/// 200 requesters claim one SILVER coin each of Bob's 150, all at once: exactly 150 are handed
/// out, none twice, and none is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_claimers() {
    let server = TestServer::start(&["--pool-size", "16"]).await;
    let client = Client::new(&server.base).expect("client");
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let bob = register(&client, &mut rng).await;
    let bob_id = bob.identity.user_id();
    let coins = mint(&bob.identity, Tier::Silver, 150, unix_now(), &mut rng);
    for chunk in coins.chunks(50) {
        client.upload(&bob.token, &bob_id, chunk).await.expect("upload");
    }
    let mut claimers = Vec::new();
    for _ in 0..200 {
        claimers.push(register(&client, &mut rng).await);
    }
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = claimers
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let (client, go) = (client.clone(), go.clone());
            tokio::spawn(async move {
                go.wait().await;
                let key = Some([i as u8; 16]);
                client.fetch(&u.token, &bob_id, &u.identity.user_id(), Tier::Silver, 1, key).await.expect("fetch")
            })
        })
        .collect();
    let mut handed = Vec::new();
    for t in tasks {
        handed.extend(t.await.expect("claimer"));
    }
    let distinct: HashSet<_> = handed.iter().map(|c| c.key_id).collect();
    assert_eq!(handed.len(), 150, "exactly the available total is handed out");
    assert_eq!(distinct.len(), 150, "a coin was handed out twice");
    assert_eq!(client.count(&bob.token, &bob_id).await.expect("count"), TierCounts::default());
    server.stop().await;
}
