//! Claim batching (group commit) against the core's own directory as the model: claims sent all
//! at once, so the server groups them into shared transactions, must each get exactly what the
//! in-memory directory gives them one after the other in arrival order — the same coins, the
//! same refusals, the same replays, the same last-resort coins once a tier runs dry.

mod common;

use std::sync::OnceLock;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::directory::IdempotencyKey;
use aqm_core::memory::MemoryStore;
use aqm_core::store::DirectoryStore;
use aqm_core::testkit::fixtures::{T0, fixtures};
use aqm_core::{KeyId, Policy, Tier, UserId};
use aqm_server::ServerError;
use aqm_server::directory::{ClaimBatching, PgDirectory};
use proptest::prelude::*;

type Model = MemoryStore<64, 16, 8, 8, 128, 4, 64>;

#[derive(Clone, Debug)]
struct Claim {
    owner: usize,
    requester: u8,
    tier: Tier,
    count: u32,
    key: Option<u8>,
}

fn claim_strategy() -> impl Strategy<Value = Claim> {
    (0..2usize, 0..3u8, prop::sample::select(Tier::ALL.to_vec()), 1..5u32, prop::option::of(0..3u8))
        .prop_map(|(owner, requester, tier, count, key)| Claim { owner, requester, tier, count, key })
}

fn owners() -> [UserId; 2] {
    [fixtures().bob.id(), fixtures().carol.id()]
}

fn requester(r: u8) -> UserId {
    UserId([0xE0 | r; 16])
}

/// Keys are per owner: the model keys replies by requester and key, PostgreSQL by owner too.
fn key(c: &Claim) -> Option<IdempotencyKey> {
    c.key.map(|k| [(c.owner as u8) << 4 | k; 16])
}

/// What a claim got, comparable across the two directories.
fn outcome<E: aqm_core::StoreError>(r: Result<aqm_core::directory::Claimed, E>) -> Result<Vec<KeyId>, String> {
    match r {
        Ok(c) => Ok(c.iter().map(|c| c.key_id).collect()),
        Err(e) => Err(e.as_core().map_or_else(|| format!("not a core error: {e}"), |c| format!("{c:?}"))),
    }
}

/// Each owner's uploads per tier: its one-time pool, then (Carol in every tier, Bob in BRONZE) a
/// last-resort coin, which claims get once the tier runs dry (Carol's 2 GOLD coins soon do).
fn uploads() -> &'static [(UserId, Vec<PublicCoin>)] {
    static UPLOADS: OnceLock<Vec<(UserId, Vec<PublicCoin>)>> = OnceLock::new();
    UPLOADS.get_or_init(|| {
        let f = fixtures();
        let mut rng = aqm_core::testkit::fixtures::rng(14);
        let mut out = Vec::new();
        for (p, last_resort) in [(&f.bob, &[Tier::Bronze][..]), (&f.carol, &Tier::ALL[..])] {
            for tier in Tier::ALL {
                let mut coins: Vec<_> = (0..p.pool(tier)).map(|i| p.coin(tier, i).clone()).collect();
                if last_resort.contains(&tier) {
                    let lr = coin::mint_last_resort(&p.identity, tier, &f.device_key, T0, &mut rng).expect("mint");
                    coins.push(lr.public);
                }
                out.push((p.id(), coins));
            }
        }
        out
    })
}

fn seed_model(model: &Model) {
    let f = fixtures();
    for p in [&f.bob, &f.carol] {
        model.register_identity(p.identity.public(), p.proof()).expect("register");
    }
    for (owner, coins) in uploads() {
        model.upload(owner, coins, T0).expect("upload");
    }
}

async fn seed_pg(dir: &PgDirectory) {
    let f = fixtures();
    for p in [&f.bob, &f.carol] {
        dir.register(p.identity.public(), p.proof(), T0).await.expect("register");
    }
    for (owner, coins) in uploads() {
        dir.upload(owner, coins, T0).await.expect("upload");
    }
}

async fn batched(max_batch: usize, workers: usize) -> (PgDirectory, String) {
    let schema = common::unique_schema("batch");
    let config = common::create_schema(&schema).await;
    let dir = PgDirectory::from_config(config, 4, Policy::DEFAULT).expect("pool");
    dir.migrate().await.expect("migrate");
    seed_pg(&dir).await;
    (dir.with_claim_batching(ClaimBatching { max_batch, workers }).expect("batching"), schema)
}

/// Every claim sent at once; results in the order sent.
async fn claim_all(dir: &PgDirectory, claims: &[Claim], now: u64) -> Vec<Result<Vec<KeyId>, String>> {
    let owners = owners();
    let calls = claims.iter().map(|c| {
        let (dir, owner) = (dir.clone(), owners[c.owner]);
        let c = c.clone();
        // Each future enqueues its claim when first polled: join_all polls them in order.
        async move { dir.claim(&owner, &requester(c.requester), c.tier, c.count, key(&c), now).await }
    });
    let results: Vec<Result<_, ServerError>> = futures_join_all(calls).await;
    results.into_iter().map(outcome).collect()
}

async fn futures_join_all<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    // Pin every future and poll all of them from one task, in order, as join_all does.
    let mut fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in fs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Runs `f` on a thread with room for the model (a fixed-capacity store held inline).
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(256 << 20).spawn(f).expect("thread").join().expect("test thread");
}

#[test]
fn batched_claims_get_what_they_would_get_one_after_the_other() {
    with_big_stack(|| {
        // 24 cases a run on fresh random seeds; PROPTEST_CASES=N for a longer soak.
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
        let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
        let rounds = prop::collection::vec(prop::collection::vec(claim_strategy(), 1..24), 1..4);
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let rt = runtime();
        let result = runner.run(&rounds, |rounds| {
            let model = Box::new(Model::new(Policy::DEFAULT));
            seed_model(&model);
            let (dir, schema) = rt.block_on(batched(64, 1));
            for (round, claims) in rounds.iter().enumerate() {
                let now = T0 + 60 * round as u64;
                let want: Vec<_> = claims
                    .iter()
                    .map(|c| {
                        outcome(model.claim(&owners()[c.owner], &requester(c.requester), c.tier, c.count, key(c), now))
                    })
                    .collect();
                let got = rt.block_on(claim_all(&dir, claims, now));
                prop_assert_eq!(&got, &want, "round {} of {:?}", round, claims);
            }
            let stats = dir.batch_stats();
            let total: usize = rounds.iter().map(Vec::len).sum();
            prop_assert_eq!(stats.claims.get(), total as u64);
            drop(dir);
            rt.block_on(common::drop_schema(&schema));
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    });
}

/// Claims of many requesters on one owner's coins share one transaction (a popular owner is what
/// batching is for), and claims of one requester on one owner and tier do not.
#[test]
fn a_popular_owners_claims_share_a_transaction() {
    let rt = runtime();
    let (dir, schema) = rt.block_on(batched(64, 1));
    // 15 claims of one SILVER coin each by 3 requesters (5 each, within the quota of 6): they
    // pile up behind the one worker and go in shared transactions.
    let claims: Vec<Claim> = (0..15)
        .map(|i| Claim { owner: 0, requester: (i % 3) as u8, tier: Tier::Silver, count: 1, key: None })
        .collect();
    let got = rt.block_on(claim_all(&dir, &claims, T0));
    let handed: Vec<KeyId> = got.iter().flat_map(|r| r.clone().expect("claimed")).collect();
    // Oldest first in arrival order, each coin once.
    let want: Vec<KeyId> = (0..15).map(|i| fixtures().bob.coin(Tier::Silver, i).key_id).collect();
    assert_eq!(handed, want);
    let (tx, claimed) = (dir.batch_stats().transactions.get(), dir.batch_stats().claims.get());
    assert_eq!(claimed, 15);
    // Shared, but one requester's claims on one owner and tier never share one: at least 5.
    assert!((5..15).contains(&tx), "{tx} transactions for 15 claims");
    drop(dir);
    rt.block_on(common::drop_schema(&schema));
}

/// A refused claim in a batch changes nothing, its neighbours are served, and a replay in a batch
/// returns the first answer.
#[test]
fn one_batch_of_every_outcome() {
    with_big_stack(one_batch_of_every_outcome_inner);
}

fn one_batch_of_every_outcome_inner() {
    let rt = runtime();
    let (dir, schema) = rt.block_on(batched(64, 1));
    let model = Box::new(Model::new(Policy::DEFAULT));
    seed_model(&model);
    let gold = |requester, count, key| Claim { owner: 0, requester, tier: Tier::Gold, count, key };
    // Round 1 spends requester 0's GOLD quota (5) with key 1; round 2 repeats key 1 (a replay),
    // asks again without a key (refused) and with a fresh key (refused, its record removed), while
    // requester 1 is served beside them.
    let rounds =
        [vec![gold(0, 5, Some(1))], vec![gold(0, 5, Some(1)), gold(0, 1, None), gold(0, 1, Some(2)), gold(1, 2, None)]];
    for (round, claims) in rounds.iter().enumerate() {
        let want: Vec<_> = claims
            .iter()
            .map(|c| outcome(model.claim(&owners()[c.owner], &requester(c.requester), c.tier, c.count, key(c), T0)))
            .collect();
        let got = rt.block_on(claim_all(&dir, claims, T0));
        assert_eq!(got, want, "round {round}");
    }
    assert!(matches!(&rt.block_on(claim_all(&dir, &rounds[1][..1], T0))[0], Ok(k) if k.len() == 5));
    // Key 2 was refused, so it holds no record: once the quota allows, it claims afresh.
    let later = T0 + Policy::DEFAULT.claim_quota_window_secs;
    let again = rt.block_on(claim_all(&dir, &[gold(0, 1, Some(2))], later));
    assert!(matches!(&again[0], Ok(k) if k.len() == 1), "{again:?}");
    drop(dir);
    rt.block_on(common::drop_schema(&schema));
}
