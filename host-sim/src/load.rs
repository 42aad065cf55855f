//! `aqm-sim load`: many simulated users against a running `aqm-server`.
//!
//! Three phases, each timed: register `--users` identities (proof of possession made here, verified
//! by the server), upload `--coins` freshly minted coins per user (one request each, so the
//! server's signature checks dominate), then claims — each a random user fetching one coin of
//! another's, with an idempotency key, as a contact's on-demand fetch does. Claims run open-loop
//! at `--rate` per second (latency measured from each claim's scheduled start, so a slow server
//! cannot hide its queueing) or closed-loop on `--connections` workers. Prints throughput,
//! latency percentiles, errors by status, and with `--json` one JSON object.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::{Tier, UserId};
use aqm_server::ServerError;
use aqm_server::client::Client;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

/// `aqm-sim load` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server (start it with a high --register-per-minute for large populations).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Simulated users to register.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Coins each user uploads, in one request.
    #[arg(long, default_value_t = 10)]
    coins: usize,
    /// Tier of the uploaded (and claimed) coins.
    #[arg(long, default_value = "BRONZE")]
    tier: Tier,
    /// Open-loop arrival rate in claims per second (0: closed-loop on --connections).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Closed-loop workers (or, open-loop, the most claims in flight at once).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long the claim phase runs, in seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Concurrent requests during registration and upload.
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// Seed of the simulated population.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Phase {
    requests: usize,
    seconds: f64,
    per_second: f64,
}

#[derive(Debug, Serialize)]
struct ClaimReport {
    mode: String,
    target_rate: u32,
    connections: usize,
    completed: usize,
    coins: usize,
    seconds: f64,
    throughput: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
struct Report {
    server: String,
    users: usize,
    tier: String,
    register: Phase,
    upload: Phase,
    upload_coins_per_second: f64,
    claims: ClaimReport,
}

struct User {
    id: UserId,
    token: String,
}

/// Run `aqm-sim load`.
pub fn main(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aqm-sim load: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print(&args, &report);
            if report.claims.completed == 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("aqm-sim load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bar(args: &Args, len: u64, what: &str) -> ProgressBar {
    if args.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Run `jobs` with at most `limit` at once, in order of completion.
async fn bounded<T: Send + 'static>(
    limit: usize,
    jobs: Vec<impl std::future::Future<Output = Result<T, ServerError>> + Send + 'static>,
    bar: &ProgressBar,
) -> Result<Vec<T>, ServerError> {
    let gate = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let mut tasks = Vec::with_capacity(jobs.len());
    for job in jobs {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            job.await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.map_err(|e| ServerError::Transport(format!("task: {e}")))??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

async fn run(args: &Args) -> Result<Report, ServerError> {
    let client = Client::new(&args.server)?;
    let health = client.health().await?;
    if !health.db_connected {
        return Err(ServerError::Unavailable("the server reports its database down".into()));
    }

    // Identities and coins are made here, off the async threads, before anything is timed.
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
    let seeds: Vec<u64> = (0..args.users).map(|_| rng.random()).collect();
    let (tier, coins_per_user) = (args.tier, args.coins);
    // Spread over every core: ML-DSA key generation and the proof dominate a large population.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut parts = Vec::new();
    for chunk in seeds.chunks(seeds.len().div_ceil(threads).max(1)) {
        let chunk = chunk.to_vec();
        parts.push(tokio::task::spawn_blocking(move || prepare(&chunk, tier, coins_per_user)));
    }
    let mut prepared = Vec::with_capacity(args.users);
    for p in parts {
        prepared.extend(p.await.map_err(|e| ServerError::Transport(format!("task: {e}")))??);
    }

    let start = Instant::now();
    let jobs: Vec<_> = prepared
        .iter()
        .map(|(identity, proof, _)| {
            let (c, i, p) = (client.clone(), identity.clone(), proof.clone());
            async move { c.register(&i, &p).await.map(|token| User { id: i.user_id, token }) }
        })
        .collect();
    let users = bounded(args.setup_concurrency, jobs, &bar(args, args.users as u64, "register")).await?;
    let register = phase(users.len(), start.elapsed());

    let start = Instant::now();
    let jobs: Vec<_> = users
        .iter()
        .zip(&prepared)
        .map(|(u, (_, _, coins))| {
            let (c, token, id, coins) = (client.clone(), u.token.clone(), u.id, coins.clone());
            async move { c.upload(&token, &id, &coins).await }
        })
        .collect();
    let inserted: u32 =
        bounded(args.setup_concurrency, jobs, &bar(args, args.users as u64, "upload")).await?.iter().sum();
    let upload = phase(users.len(), start.elapsed());
    let upload_coins_per_second = f64::from(inserted) / upload.seconds.max(1e-9);

    let claims = claim_phase(args, &client, Arc::new(users)).await;
    Ok(Report {
        server: args.server.clone(),
        users: args.users,
        tier: args.tier.as_str().into(),
        register,
        upload,
        upload_coins_per_second,
        claims,
    })
}

type Prepared = (aqm_core::crypto::PublicIdentity, aqm_core::crypto::RegistrationProof, Vec<PublicCoin>);

/// Identities, their proofs and freshly minted coins for one chunk of the population.
fn prepare(seeds: &[u64], tier: Tier, coins_per_user: usize) -> Result<Vec<Prepared>, aqm_core::Error> {
    seeds
        .iter()
        .map(|s| {
            let mut rng = ChaCha20Rng::seed_from_u64(*s);
            let identity = Identity::generate(&mut rng);
            let proof = identity.registration_proof(&mut rng)?;
            let dk = DeviceKey::random(&mut rng);
            let coins: Vec<PublicCoin> = (0..coins_per_user)
                .map(|_| coin::mint(&identity, tier, &dk, aqm_server::unix_now(), &mut rng).map(|m| m.public))
                .collect::<Result<_, _>>()?;
            Ok((identity.public().clone(), proof, coins))
        })
        .collect()
}

fn phase(requests: usize, took: Duration) -> Phase {
    let seconds = took.as_secs_f64();
    Phase { requests, seconds, per_second: requests as f64 / seconds.max(1e-9) }
}

/// One claim: user `i` fetches one coin of user `j`.
async fn claim_once(client: &Client, users: &[User], tier: Tier, rng: &mut ChaCha20Rng) -> Result<usize, ServerError> {
    let n = users.len();
    let i = rng.random_range(0..n);
    let j = (i + rng.random_range(1..n.max(2))) % n;
    let (me, owner) = (&users[i], &users[j]);
    let key: [u8; 16] = rng.random();
    client.fetch(&me.token, &owner.id, &me.id, tier, 1, Some(key)).await.map(|c| c.len())
}

fn error_name(e: &ServerError) -> String {
    match e {
        ServerError::Remote { status, error, .. } => format!("{status} {error}"),
        ServerError::Unavailable(_) | ServerError::Timeout => "503".into(),
        ServerError::Transport(_) => "transport".into(),
        other => format!("{other}"),
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    coins: usize,
    errors: BTreeMap<String, usize>,
}

impl Tally {
    fn record(&mut self, took: Duration, outcome: Result<usize, ServerError>) {
        self.latencies_us.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        match outcome {
            Ok(n) => self.coins += n,
            Err(e) => *self.errors.entry(error_name(&e)).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.coins += other.coins;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

async fn claim_phase(args: &Args, client: &Client, users: Arc<Vec<User>>) -> ClaimReport {
    let duration = Duration::from_secs(args.duration.max(1));
    let progress = bar(args, args.duration.max(1), "claims");
    let start = Instant::now();
    let ticker = {
        let progress = progress.clone();
        tokio::spawn(async move {
            while start.elapsed() < duration {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.inc(1);
            }
        })
    };
    let tally = if args.rate == 0 {
        let workers: Vec<_> = (0..args.connections.max(1))
            .map(|w| {
                let (client, users, tier) = (client.clone(), users.clone(), args.tier);
                let mut rng = ChaCha20Rng::seed_from_u64(args.seed ^ (w as u64 + 1) << 20);
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    while start.elapsed() < duration {
                        let began = Instant::now();
                        let outcome = claim_once(&client, &users, tier, &mut rng).await;
                        t.record(began.elapsed(), outcome);
                    }
                    t
                })
            })
            .collect();
        let mut all = Tally::default();
        for w in workers {
            if let Ok(t) = w.await {
                all.merge(t);
            }
        }
        all
    } else {
        // Open loop: claim k is due at start + k / rate whether or not earlier ones finished.
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
        let gate = Arc::new(tokio::sync::Semaphore::new(args.connections.max(1) * 16));
        let mut tasks = Vec::new();
        let mut k: u32 = 0;
        let mut rng = ChaCha20Rng::seed_from_u64(args.seed ^ 0x0E1);
        loop {
            let due = interval.saturating_mul(k);
            if due >= duration {
                break;
            }
            tokio::time::sleep_until((start + due).into()).await;
            let (client, users, tier) = (client.clone(), users.clone(), args.tier);
            let mut rng = ChaCha20Rng::seed_from_u64(rng.random());
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let outcome = claim_once(&client, &users, tier, &mut rng).await;
                (Instant::now().saturating_duration_since(start + due), outcome)
            }));
            k = k.saturating_add(1);
        }
        let mut all = Tally::default();
        for t in tasks {
            if let Ok((took, outcome)) = t.await {
                all.record(took, outcome);
            }
        }
        all
    };
    let seconds = start.elapsed().as_secs_f64();
    ticker.abort();
    progress.finish_and_clear();
    summarize(args, tally, seconds)
}

fn summarize(args: &Args, mut t: Tally, seconds: f64) -> ClaimReport {
    t.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if t.latencies_us.is_empty() {
            return 0.0;
        }
        let idx = ((p * t.latencies_us.len() as f64).ceil() as usize).clamp(1, t.latencies_us.len()) - 1;
        t.latencies_us[idx] as f64 / 1000.0
    };
    let completed = t.latencies_us.len();
    ClaimReport {
        mode: if args.rate == 0 { "closed-loop".into() } else { "open-loop".into() },
        target_rate: args.rate,
        connections: args.connections,
        completed,
        coins: t.coins,
        seconds,
        throughput: completed as f64 / seconds.max(1e-9),
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        max_ms: t.latencies_us.last().map_or(0.0, |v| *v as f64 / 1000.0),
        errors: t.errors,
    }
}

fn print(args: &Args, r: &Report) {
    if args.json {
        match serde_json::to_string_pretty(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("aqm-sim load: {e}"),
        }
        return;
    }
    let c = &r.claims;
    println!("aqm-sim load against {} — {} users, {} coins each ({})", r.server, r.users, args.coins, r.tier);
    println!(
        "  register  {:>7} requests in {:>6.2} s  {:>8.0} /s",
        r.register.requests, r.register.seconds, r.register.per_second
    );
    println!(
        "  upload    {:>7} requests in {:>6.2} s  {:>8.0} /s  ({:.0} coins/s)",
        r.upload.requests, r.upload.seconds, r.upload.per_second, r.upload_coins_per_second
    );
    let how = if c.mode == "open-loop" {
        format!("open-loop at {}/s", c.target_rate)
    } else {
        format!("closed-loop, {} connections", c.connections)
    };
    println!(
        "  claims    {:>7} requests in {:>6.2} s  {:>8.0} /s  ({how}; {} coins handed out)",
        c.completed, c.seconds, c.throughput, c.coins
    );
    println!(
        "  latency   p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        c.p50_ms, c.p95_ms, c.p99_ms, c.max_ms
    );
    if c.errors.is_empty() {
        println!("  errors    none");
    } else {
        for (k, v) in &c.errors {
            println!("  errors    {v} × {k}");
        }
    }
}
