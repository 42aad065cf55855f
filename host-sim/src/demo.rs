//! `aqm-sim demo`: the prototype's four-phase lifecycle, end to end, with real cryptography and
//! real storage, and a check after every step, plus a fifth phase for what the four never reach.
//!
//! 1. MINT: Bob mints 5 GOLD + 4 SILVER + 1 BRONZE coins; the sealed private halves go to his
//!    vault, the public halves to the coin directory, which verifies every signature on upload.
//! 2. PRE-FETCH: Alice registers Bob as a BESTIE and pre-fetches his coins into her inventory;
//!    the directory is drained to zero (each coin handed out once).
//! 3. SEND: Alice sends in three device contexts; the policy picks GOLD at home on Wi-Fi, SILVER
//!    outdoors on cellular and BRONZE underground, and each message opens a new chain with the
//!    oldest coin of that tier. A follow-up message rides the open chain without any KEM.
//! 4. DECRYPT + BURN: Bob opens each message, which burns its coin in the same atomic step that
//!    saves the session; opening the same coin a second time fails.
//! 5. FALLBACK + ON-DEMAND: Alice keeps re-keying from home until her GOLD coins of Bob run out,
//!    and the next send falls back to SILVER ("wanted GOLD → used SILVER"); then she writes to
//!    Carol, a STRANGER of whom nothing is cached: `send` asks for a coin, one is fetched from the
//!    directory on demand, and Carol opens the message from an identity she pinned from the
//!    directory (shown unverified).
//!
//! Everything goes through the core's lifecycle ([`aqm_core::messaging::Messenger`]) over the
//! storage traits, so the same code runs on redb files (default) or Redis (`--redis`).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::{ContactMeta, TierRange};
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome, Sent};
use aqm_core::pins::{SafetyNumber, Trust};
use aqm_core::store::{DirectoryStore, InventoryStore, PinStore, SessionStore, VaultStore};
use aqm_core::vault::KeyStatus;
use aqm_core::{DeviceContext, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds};
use aqm_server::client::HttpDirectory;
use aqm_storage_redb::RedbStore;
use aqm_storage_redis::RedisStore;
use rand::RngExt;

use crate::ui::Ui;

/// The redb files the demo writes.
const FILES: [&str; 4] = ["bob.redb", "alice.redb", "carol.redb", "directory.redb"];

/// The first bytes of every redb file (redb's `MAGICNUMBER`): only files that start with them are
/// replaced without `--reset`, so a mistyped `--data-dir` never loses someone else's file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Phases of the demo.
const PHASES: u8 = 5;

/// Options of `aqm-sim demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the redb files (bob.redb, alice.redb, carol.redb, directory.redb) in DIR after the
    /// run. Every run starts afresh with new identities: the files of an earlier run in DIR are
    /// replaced (an earlier run's identities and device keys were never stored, so its coins
    /// could not be opened again). Default: a temporary directory, removed at the end.
    #[arg(long, value_name = "DIR", env = "AQM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Also delete those four files when they are not redb databases (without it the demo
    /// refuses to touch such a file).
    #[arg(long, requires = "data_dir")]
    reset: bool,
    /// Keep the three users' stores (vault, sessions, pins, inventory) on the Redis server at URL
    /// (under a unique key prefix per run, deleted at the end); the directory stays in
    /// directory.redb.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Use the coin directory of the aqm-server at URL (e.g. http://127.0.0.1:8080) instead of
    /// directory.redb: the three users register there, Bob uploads, Alice and Carol claim.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
}

/// A step that did not check out.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {detail}")]
pub struct Failed {
    step: String,
    detail: String,
}

fn fail(step: impl Display, detail: impl Display) -> Failed {
    Failed { step: step.to_string(), detail: detail.to_string() }
}

/// Turn any result into a [`Failed`] naming the step.
trait Step<T> {
    fn step(self, step: &str) -> Result<T, Failed>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, step: &str) -> Result<T, Failed> {
        self.map_err(|e| fail(step, e))
    }
}

/// Check that `got` equals `want`.
fn expect_eq<T: PartialEq + std::fmt::Debug>(step: &str, got: T, want: T) -> Result<(), Failed> {
    if got == want { Ok(()) } else { Err(fail(step, format!("expected {want:?}, got {got:?}"))) }
}

/// Entry point of the subcommand: run, print the verdict, map it to the exit code.
pub fn main(args: Args) -> ExitCode {
    let ui = Ui;
    let started = Instant::now();
    match run(&ui, args) {
        Ok(()) => {
            ui.verdict(true, format!("all {PHASES} phases checked out ({:.1} s)", started.elapsed().as_secs_f64()));
            ExitCode::SUCCESS
        }
        Err(f) => {
            ui.fail(&f.step, &f.detail);
            ui.verdict(false, format!("the demo stopped at step \"{}\"", f.step));
            ExitCode::FAILURE
        }
    }
}

fn now() -> UnixSeconds {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn short(id: &KeyId) -> String {
    id.to_string()[..8].to_owned()
}

fn tiers(c: &TierCounts) -> String {
    format!("{} GOLD, {} SILVER, {} BRONZE", c.get(Tier::Gold), c.get(Tier::Silver), c.get(Tier::Bronze))
}

/// Whether `path` starts like a redb database.
fn is_redb(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; REDB_MAGIC.len()];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == REDB_MAGIC
}

/// Prepare the data directory: create it and delete the files of an earlier run, so that this
/// run starts from empty stores. A file that is not a redb database is left alone (and the demo
/// stops) unless `reset`. Returns the names of the files deleted.
fn prepare_dir(dir: &Path, reset: bool) -> Result<Vec<&'static str>, Failed> {
    const STEP: &str = "prepare data directory";
    std::fs::create_dir_all(dir).map_err(|e| fail(STEP, format!("cannot create {}: {e}", dir.display())))?;
    let mut replaced = Vec::new();
    for f in FILES {
        let p = dir.join(f);
        if !p.exists() {
            continue;
        }
        let ours = p.is_file() && is_redb(&p);
        if !reset && !ours {
            return Err(fail(
                STEP,
                format!(
                    "{} exists and is not a redb database: pass --reset to delete it, or choose another --data-dir",
                    p.display()
                ),
            ));
        }
        std::fs::remove_file(&p).map_err(|e| fail(STEP, format!("cannot delete {}: {e}", p.display())))?;
        replaced.push(f);
    }
    Ok(replaced)
}

fn run(ui: &Ui, args: Args) -> Result<(), Failed> {
    ui.title(
        "AQM demo: mint → pre-fetch → send in three device contexts → decrypt and burn → fallback and on-demand fetch",
    );
    let temp;
    let dir = match &args.data_dir {
        Some(d) => {
            let replaced = prepare_dir(d, args.reset)?;
            if !replaced.is_empty() {
                ui.note(format!(
                    "starting afresh: deleted {} of an earlier run in {}",
                    replaced.join(", "),
                    d.display()
                ));
            }
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("aqm-demo-").tempdir().step("create a temporary data directory")?;
            temp.path().to_path_buf()
        }
    };
    let policy = Policy::DEFAULT;
    match &args.server {
        None => {
            let directory =
                RedbStore::open_unsealed(dir.join("directory.redb"), policy.clone()).step("open directory.redb")?;
            devices(ui, &args, &dir, &policy, &directory, "directory.redb")
        }
        Some(url) => {
            let directory = HttpDirectory::new(url, policy.clone()).step("set up the directory client")?;
            let h = directory.health().step("reach the aqm-server")?;
            if !h.db_connected {
                return Err(fail("reach the aqm-server", "it reports its database unreachable"));
            }
            devices(ui, &args, &dir, &policy, &directory, url)
        }
    }
}

/// Open the three users' device stores (redb files, or Redis) and run the lifecycle against
/// `directory` (named `where_` in the output).
fn devices<D: DirectoryStore>(
    ui: &Ui,
    args: &Args,
    dir: &Path,
    policy: &Policy,
    directory: &D,
    where_: &str,
) -> Result<(), Failed> {
    match &args.redis {
        None => {
            ui.note(format!("storage: redb files in {}; directory: {where_}", dir.display()));
            // Each run's device files are new: their contact metadata is sealed under a key of
            // this run (the stores are opened before the lifecycle mints the users' device keys).
            let run_key = || DeviceKey::random(&mut rand::rng());
            let bob = RedbStore::open(dir.join("bob.redb"), policy.clone(), &run_key()).step("open bob.redb")?;
            let alice = RedbStore::open(dir.join("alice.redb"), policy.clone(), &run_key()).step("open alice.redb")?;
            let carol = RedbStore::open(dir.join("carol.redb"), policy.clone(), &run_key()).step("open carol.redb")?;
            lifecycle(ui, policy, &bob, &alice, &carol, directory)?;
            for f in FILES {
                if let Ok(m) = std::fs::metadata(dir.join(f)) {
                    ui.info(format!("{f}: {} KiB", m.len() / 1024));
                }
            }
            Ok(())
        }
        Some(url) => {
            let run_id: u64 = rand::rng().random();
            // The run's stores are deleted at its end: a fresh key seals their contact metadata.
            let run_sealing = || aqm_storage_redis::Sealing::sealed(&DeviceKey::random(&mut rand::rng()));
            let prefix = format!("aqm-demo-{run_id:016x}");
            ui.note(format!("storage: Redis {url} under prefix {{{prefix}}}:*; directory: {where_}"));
            let bob = RedisStore::connect(url, &format!("{prefix}:bob"), policy.clone(), run_sealing())
                .step("connect to Redis")?;
            let alice = RedisStore::connect(url, &format!("{prefix}:alice"), policy.clone(), run_sealing())
                .step("connect to Redis")?;
            let carol = RedisStore::connect(url, &format!("{prefix}:carol"), policy.clone(), run_sealing())
                .step("connect to Redis")?;
            let result = lifecycle(ui, policy, &bob, &alice, &carol, directory);
            let cleaned = [&bob, &alice, &carol].iter().try_fold(0, |n, s| s.destroy_all().map(|k| n + k));
            match cleaned {
                Ok(n) => ui.info(format!("removed this run's {n} Redis keys")),
                Err(e) => {
                    ui.info(format!("could not remove this run's Redis keys ({e}); delete {{{prefix}}}:* by hand"))
                }
            }
            result
        }
    }
}

/// The five phases, generic over the device stores (redb or Redis) and the directory (redb, or
/// an aqm-server through `HttpDirectory`).
fn lifecycle<B, EB, A, EA, C, EC, D: DirectoryStore>(
    ui: &Ui,
    policy: &Policy,
    bob_store: &B,
    alice_store: &A,
    carol_store: &C,
    directory: &D,
) -> Result<(), Failed>
where
    B: VaultStore<Error = EB> + SessionStore + InventoryStore<Error = EB> + PinStore<Error = EB>,
    EB: StoreError,
    A: VaultStore<Error = EA> + SessionStore + InventoryStore<Error = EA> + PinStore<Error = EA>,
    EA: StoreError,
    C: VaultStore<Error = EC> + SessionStore + InventoryStore<Error = EC> + PinStore<Error = EC>,
    EC: StoreError,
{
    let mut rng = rand::rng();
    let bob = Identity::generate(&mut rng);
    let alice = Identity::generate(&mut rng);
    let bob_dk = DeviceKey::random(&mut rng);
    let alice_dk = DeviceKey::random(&mut rng);
    ui.note(format!("Bob {} and Alice {}", bob.user_id(), alice.user_id()));
    ui.info("identities (Ed25519 + ML-DSA-65) and device sealing keys are generated fresh for this run and never stored or printed");

    // ── Phase 1 ─────────────────────────────────────────────────────────────────────────────
    ui.phase(1, PHASES, "MINT", "Bob mints 5 GOLD + 4 SILVER + 1 BRONZE coins");
    let t = Instant::now();
    let bob_proof = bob.registration_proof(&mut rng).step("sign Bob's registration")?;
    let alice_proof = alice.registration_proof(&mut rng).step("sign Alice's registration")?;
    directory.register_identity(bob.public(), &bob_proof).step("register Bob's identity with the directory")?;
    directory.register_identity(alice.public(), &alice_proof).step("register Alice's identity with the directory")?;
    let mut public: Vec<PublicCoin> = Vec::new();
    for (tier, n, kem, sig) in [
        (Tier::Gold, 5, "X-Wing (ML-KEM-768 + X25519)", "Ed25519 + ML-DSA-65"),
        (Tier::Silver, 4, "ML-KEM-768", "Ed25519"),
        (Tier::Bronze, 1, "X25519 DHKEM", "Ed25519"),
    ] {
        for _ in 0..n {
            let minted = coin::mint(&bob, tier, &bob_dk, now(), &mut rng).step("mint a coin")?;
            bob_store.put(&minted.vault).step("store a private half in Bob's vault")?;
            public.push(minted.public);
        }
        ui.ok(format!(
            "{n} {tier}: {kem}, {} B public key, {} B {sig} signature, expires in 30 days; {} B seed sealed (AES-256-GCM) in Bob's vault",
            tier.public_key_len(),
            tier.signature_len(),
            tier.seed_len()
        ));
    }
    let stats = bob_store.stats().step("read Bob's vault counters")?;
    expect_eq("Bob's vault holds 5/4/1 ACTIVE keys", stats.active, TierCounts([5, 4, 1]))?;
    ui.ok(format!("Bob's vault: {} ACTIVE", tiers(&stats.active)));

    let mut forged = public[0].clone();
    if let Some(b) = forged.signature.get_mut(7) {
        *b ^= 0x01;
    }
    match directory.upload(&bob.user_id(), &[forged], now()) {
        Err(e) if e.as_core() == Some(&aqm_core::Error::BadSignature) => {
            ui.ok("a coin with one flipped signature bit is refused by the directory (BadSignature)")
        }
        other => return Err(fail("the directory refuses a forged coin", format!("got {other:?}"))),
    }
    let inserted = directory.upload(&bob.user_id(), &public, now()).step("upload the public halves")?;
    expect_eq("the directory accepts all 10 coins", inserted, 10)?;
    let again = directory.upload(&bob.user_id(), &public, now()).step("upload the same batch again")?;
    expect_eq("a repeated upload adds nothing", again, 0)?;
    let available = directory.available(&bob.user_id()).step("count the directory")?;
    expect_eq("the directory offers 5/4/1 coins", available, TierCounts([5, 4, 1]))?;
    ui.ok(format!(
        "directory: 10 signatures verified on upload; offers {} (a repeated upload adds 0)",
        tiers(&available)
    ));
    ui.info(format!("phase 1 took {} ms", t.elapsed().as_millis()));

    // ── Phase 2 ─────────────────────────────────────────────────────────────────────────────
    ui.phase(2, PHASES, "PRE-FETCH", "Alice registers Bob as BESTIE and fills her inventory");
    let t = Instant::now();
    let meta = ContactMeta::new(bob.user_id(), Priority::Bestie, "Bob", now()).step("describe Bob as a contact")?;
    let fresh = alice_store.register_contact(&meta).step("register Bob as Alice's contact")?;
    expect_eq("Bob is a new contact of Alice", fresh, true)?;
    ui.ok(format!("Bob registered as BESTIE (caps {})", tiers(&policy.caps_of(Priority::Bestie))));
    // A contact exchange: each pins the other's identity; both see the same safety number.
    alice_store.pin_identity(bob.public(), Trust::Exchanged).step("Alice pins Bob's identity")?;
    bob_store.pin_identity(alice.public(), Trust::Exchanged).step("Bob pins Alice's identity")?;
    let safety = SafetyNumber::of(alice.public(), bob.public());
    expect_eq("both sides compute one safety number", safety, SafetyNumber::of(bob.public(), alice.public()))?;
    ui.ok(format!("identities exchanged and pinned; safety number {safety}"));
    let alice_m = Messenger::new(alice_store, &alice, &alice_dk);
    let idem: [u8; 16] = rng.random();
    let report = alice_m.prefetch(directory, &bob.user_id(), Some(idem), now()).step("pre-fetch Bob's coins")?;
    expect_eq(
        "every pre-fetched coin verifies and is cached",
        (report.stored, report.rejected),
        (TierCounts([5, 4, 1]), 0),
    )?;
    let held = alice_store.counts(&bob.user_id()).step("count Alice's inventory")?;
    expect_eq("Alice's inventory holds 5/4/1 of Bob's coins", held, TierCounts([5, 4, 1]))?;
    ui.ok(format!("Alice's inventory: {} (each signature checked against Bob's identity)", tiers(&held)));
    let available = directory.available(&bob.user_id()).step("count the directory")?;
    expect_eq("the directory is drained to 0", available, TierCounts::default())?;
    ui.ok(format!("directory drained to 0: {} left (every coin handed out exactly once)", tiers(&available)));
    ui.info(format!("phase 2 took {} ms", t.elapsed().as_millis()));

    // ── Phase 3 ─────────────────────────────────────────────────────────────────────────────
    ui.phase(3, PHASES, "SEND", "Alice writes to Bob from three device contexts");
    let t = Instant::now();
    let scenarios = [
        ("A", "at home on Wi-Fi, battery 85 %", DeviceContext::HOME_WIFI, Tier::Gold, "Hi Bob, home at last."),
        (
            "B",
            "outdoors on cellular, -85 dBm",
            DeviceContext::OUTDOOR_CELLULAR,
            Tier::Silver,
            "On my way to the station.",
        ),
        ("C", "underground, -110 dBm", DeviceContext::UNDERGROUND, Tier::Bronze, "In the metro, see you soon."),
    ];
    // (plaintext, wire bytes, tier, coin) of every message, in sending order.
    let mut wires: Vec<(&str, Vec<u8>, Tier, KeyId)> = Vec::new();
    for (i, (name, place, ctx, want, text)) in scenarios.iter().enumerate() {
        let step = format!("scenario {name}: send with {want}");
        // The first message opens a chain with `send`; B and C re-key at once with the tier their
        // new context affords (`send` alone would carry on the open chain until its limit).
        let opts = SendOptions::default();
        let outcome = if i == 0 {
            alice_m.send(&bob.user_id(), ctx, text.as_bytes(), opts, now(), &mut rng)
        } else {
            alice_m.send_rekeyed(&bob.user_id(), ctx, text.as_bytes(), opts, now(), &mut rng)
        };
        let sent: Sent = match outcome.step(&step)? {
            SendOutcome::Sent(s) => s,
            SendOutcome::NeedCoin { range, .. } => {
                return Err(fail(step, format!("no cached coin from {} down to {}", range.desired, range.lowest)));
            }
        };
        expect_eq(
            &format!("scenario {name} picks {want}"),
            (sent.tier, sent.fell_back, sent.rekeyed),
            (*want, false, true),
        )?;
        let wire = sent.envelope.to_vec().step("encode the envelope")?;
        if wire.windows(text.len()).any(|w| w == text.as_bytes()) {
            return Err(fail(step, "the plaintext appears in the envelope"));
        }
        let (kem_len, sig_len) =
            sent.envelope.rekey.as_ref().map_or((0, 0), |r| (r.kem_ciphertext.len(), r.signature.len()));
        let pq = if sent.post_quantum { "post-quantum" } else { "classical only" };
        ui.ok(format!(
            "{name}: {place} → {} coin {} ({pq}) · envelope {} B ({kem_len} B KEM ciphertext, {sig_len} B re-key signature by Alice, AES-256-GCM body)",
            sent.tier,
            short(&sent.envelope.chain),
            wire.len()
        ));
        wires.push((text, wire, sent.tier, sent.envelope.chain));
    }
    // One more message on the open BRONZE chain: the ratchet amortizes the KEM.
    let follow = "Train's here.";
    let sent = match alice_m
        .send(&bob.user_id(), &DeviceContext::UNDERGROUND, follow.as_bytes(), SendOptions::default(), now(), &mut rng)
        .step("follow-up on the open chain")?
    {
        SendOutcome::Sent(s) => s,
        SendOutcome::NeedCoin { range, .. } => {
            return Err(fail("follow-up on the open chain", format!("asked for a {} coin", range.desired)));
        }
    };
    expect_eq("the follow-up reuses the chain without a KEM", sent.rekeyed, false)?;
    let wire = sent.envelope.to_vec().step("encode the envelope")?;
    ui.ok(format!(
        "C: follow-up rides the open {} chain, no KEM · envelope {} B · {} more messages before re-keying",
        sent.tier,
        wire.len(),
        sent.remaining
    ));
    wires.push((follow, wire, sent.tier, sent.envelope.chain));
    let held = alice_store.counts(&bob.user_id()).step("count Alice's inventory")?;
    expect_eq("three coins were used, one per tier", held, TierCounts([4, 3, 0]))?;
    ui.ok(format!("Alice's inventory now: {}", tiers(&held)));
    ui.info(format!("phase 3 took {} ms", t.elapsed().as_millis()));

    // ── Phase 4 ─────────────────────────────────────────────────────────────────────────────
    ui.phase(4, PHASES, "DECRYPT + BURN", "Bob opens each message; each coin burns as it opens");
    let t = Instant::now();
    let bob_m = Messenger::new(bob_store, &bob, &bob_dk);
    for (text, wire, tier, chain) in &wires {
        let step = format!("Bob opens the {tier} message");
        let got = bob_m.receive(wire, now(), &mut rng).step(&step)?;
        expect_eq(&step, (got.from, got.tier, &got.plaintext[..]), (alice.user_id(), *tier, text.as_bytes()))?;
        if got.rekeyed {
            let status = bob_store.status(chain).step("read the coin's status")?;
            expect_eq("the opened coin is BURNED", status, Some(KeyStatus::Burned))?;
            let usable = bob_store.get(chain, now()).step("fetch the burned key")?;
            expect_eq("a burned key cannot be fetched", usable.is_some(), false)?;
            ui.ok(format!(
                "{tier} coin {}: Alice's signature verified against her pinned identity, decapsulated, \"{text}\" decrypted, coin BURNED with the session saved",
                short(chain)
            ));
        } else {
            ui.ok(format!("\"{text}\" decrypted from the saved {tier} chain (no coin needed)"));
        }
    }
    let (_, first_wire, first_tier, first_chain) = &wires[0];
    match bob_m.receive(first_wire, now(), &mut rng) {
        Err(e) if e.as_core() == Some(&aqm_core::Error::KeyAlreadyBurned) => ui.ok(format!(
            "opening {first_tier} coin {} a second time is refused: KeyAlreadyBurned (a coin opens exactly once)",
            short(first_chain)
        )),
        Err(e) => return Err(fail("a second open of the same coin fails with KeyAlreadyBurned", format!("got: {e}"))),
        Ok(_) => return Err(fail("a second open of the same coin fails", "it opened again")),
    }
    let stats = bob_store.stats().step("read Bob's vault counters")?;
    expect_eq("Bob's vault: 4/3/0 ACTIVE, 3 burned", (stats.active, stats.total_burned), (TierCounts([4, 3, 0]), 3))?;
    ui.ok(format!("Bob's vault: {} ACTIVE, {} burned", tiers(&stats.active), stats.total_burned));
    ui.info(format!("phase 4 took {} ms", t.elapsed().as_millis()));

    fallback_and_on_demand(ui, &alice, &alice_m, alice_store, &bob, &bob_m, carol_store, directory)
}

/// Take the message out of a send outcome, or fail the step with the range it asked a coin for.
fn sent(step: &str, outcome: SendOutcome) -> Result<Sent, Failed> {
    match outcome {
        SendOutcome::Sent(s) => Ok(s),
        SendOutcome::NeedCoin { range, .. } => {
            Err(fail(step, format!("no cached coin from {} down to {}", range.desired, range.lowest)))
        }
    }
}

/// Phase 5: what the prototype's four phases never reach. Every decision is the core's
/// (`Messenger::send_rekeyed`'s tier range and fallback, `send`'s `NeedCoin`,
/// `fetch_on_demand`'s claim); the demo only checks what came out.
#[allow(clippy::too_many_arguments)]
fn fallback_and_on_demand<A, EA, B, EB, C, EC, D: DirectoryStore>(
    ui: &Ui,
    alice: &Identity,
    alice_m: &Messenger<'_, A, Identity>,
    alice_store: &A,
    bob: &Identity,
    bob_m: &Messenger<'_, B, Identity>,
    carol_store: &C,
    directory: &D,
) -> Result<(), Failed>
where
    A: VaultStore<Error = EA> + SessionStore + InventoryStore<Error = EA> + PinStore<Error = EA>,
    EA: StoreError,
    B: VaultStore<Error = EB> + SessionStore + InventoryStore<Error = EB> + PinStore<Error = EB>,
    EB: StoreError,
    C: VaultStore<Error = EC> + SessionStore + InventoryStore<Error = EC> + PinStore<Error = EC>,
    EC: StoreError,
{
    ui.phase(5, PHASES, "FALLBACK + ON-DEMAND", "a tier runs out; a STRANGER is reached with no cached coin");
    let t = Instant::now();
    let mut rng = rand::rng();
    let opts = SendOptions::default();
    let home = DeviceContext::HOME_WIFI;

    // ── A tier runs out: GOLD → SILVER ──
    let range = alice_m.send_range(&bob.user_id(), &home, opts).step("Alice's tier range for Bob at home")?;
    expect_eq(
        "at home a BESTIE gets GOLD, down to SILVER at most",
        range,
        TierRange { desired: Tier::Gold, lowest: Tier::Silver },
    )?;
    ui.ok(format!(
        "at home on Wi-Fi, Bob (BESTIE) may get {} down to {}: the fallback never goes below SILVER without allow_classical",
        range.desired, range.lowest
    ));
    let gold_left = alice_store.counts(&bob.user_id()).step("count Alice's inventory")?.get(Tier::Gold);
    let mut wires: Vec<(String, Vec<u8>, Tier)> = Vec::new();
    for i in 1..=gold_left + 1 {
        let text = format!("Home again, message {i}.");
        let step = format!("re-key {i} from home");
        // `send_rekeyed` opens a new chain every time, so each message takes one more coin.
        let s = sent(
            &step,
            alice_m.send_rekeyed(&bob.user_id(), &home, text.as_bytes(), opts, now(), &mut rng).step(&step)?,
        )?;
        let left = alice_store.counts(&bob.user_id()).step("count Alice's inventory")?;
        if i <= gold_left {
            expect_eq(&step, (s.tier, s.desired, s.fell_back), (Tier::Gold, Tier::Gold, false))?;
            ui.ok(format!(
                "re-key {i}: oldest GOLD coin {} ({} GOLD left)",
                short(&s.envelope.chain),
                left.get(Tier::Gold)
            ));
        } else {
            expect_eq(
                "with no GOLD left the send falls back to SILVER",
                (s.tier, s.desired, s.fell_back, s.post_quantum),
                (Tier::Silver, Tier::Gold, true, true),
            )?;
            ui.ok(format!(
                "re-key {i}: wanted {} → used {} coin {} (GOLD ran out; still post-quantum) · {} SILVER left",
                s.desired,
                s.tier,
                short(&s.envelope.chain),
                left.get(Tier::Silver)
            ));
        }
        wires.push((text, s.envelope.to_vec().step("encode the envelope")?, s.tier));
    }
    for (text, wire, tier) in &wires {
        let step = format!("Bob opens the {tier} message");
        let got = bob_m.receive(wire, now(), &mut rng).step(&step)?;
        expect_eq(&step, (got.tier, got.rekeyed, &got.plaintext[..]), (*tier, true, text.as_bytes()))?;
    }
    ui.ok(format!("Bob opened all {} messages, burning each coin as it opened", wires.len()));

    // ── A STRANGER, with nothing cached: on-demand fetch ──
    let carol = Identity::generate(&mut rng);
    let carol_dk = DeviceKey::random(&mut rng);
    let proof = carol.registration_proof(&mut rng).step("sign Carol's registration")?;
    directory.register_identity(carol.public(), &proof).step("register Carol's identity with the directory")?;
    let mut public = Vec::new();
    for _ in 0..2 {
        let minted = coin::mint(&carol, Tier::Bronze, &carol_dk, now(), &mut rng).step("mint a coin")?;
        carol_store.put(&minted.vault).step("store a private half in Carol's vault")?;
        public.push(minted.public);
    }
    directory.upload(&carol.user_id(), &public, now()).step("upload Carol's coins")?;
    ui.ok(format!("Carol {} publishes 2 BRONZE coins; Alice has never met her", carol.user_id()));

    // Alice learns Carol's identity from the directory only: Carol stays a STRANGER (unregistered).
    let pin = alice_m.pin_from_directory(directory, &carol.user_id()).step("Alice pins Carol from the directory")?;
    expect_eq("Carol is pinned from the directory only", pin.trust, Trust::Directory)?;
    let held = alice_store.counts(&carol.user_id()).step("count Alice's inventory")?;
    expect_eq("Alice holds no coin of Carol", held, TierCounts::default())?;
    let text = "Hello Carol, Bob gave me your name.";
    let step = "send to Carol";
    let range = match alice_m.send(&carol.user_id(), &home, text.as_bytes(), opts, now(), &mut rng).step(step)? {
        SendOutcome::NeedCoin { range, .. } => range,
        SendOutcome::Sent(_) => return Err(fail(step, "sent without a coin of Carol's")),
    };
    expect_eq("a STRANGER is sent BRONZE only", range, TierRange::only(Tier::Bronze))?;
    ui.ok(format!(
        "send to Carol (STRANGER, nothing cached) → NeedCoin for {} (a STRANGER's ceiling, even on Wi-Fi)",
        range.desired
    ));
    let idem: [u8; 16] = rng.random();
    let coin = alice_m
        .fetch_on_demand(directory, &carol.user_id(), range, Some(idem), now())
        .step("fetch one of Carol's coins on demand")?
        .ok_or_else(|| fail("fetch one of Carol's coins on demand", "the directory had none"))?;
    let left = directory.available(&carol.user_id()).step("count the directory")?;
    expect_eq("one coin claimed, one left", (coin.tier, left), (Tier::Bronze, TierCounts([0, 0, 1])))?;
    ui.ok(format!(
        "on-demand fetch: claimed {} coin {} from the directory, signature checked against Carol's pinned identity ({} left there)",
        coin.tier,
        short(&coin.key_id),
        tiers(&left)
    ));
    let s =
        alice_m.send_with_coin(&carol.user_id(), &coin, range.desired, text.as_bytes(), now(), &mut rng).step(step)?;
    expect_eq(
        "the fetched coin opens a BRONZE chain",
        (s.tier, s.rekeyed, s.post_quantum),
        (Tier::Bronze, true, false),
    )?;
    let wire = s.envelope.to_vec().step("encode the envelope")?;
    ui.ok(format!(
        "sent on a new {} chain (classical only, as a STRANGER's ceiling allows) · envelope {} B",
        s.tier,
        wire.len()
    ));

    let carol_m = Messenger::new(carol_store, &carol, &carol_dk);
    carol_m.pin_from_directory(directory, &alice.user_id()).step("Carol pins Alice from the directory")?;
    let got = carol_m.receive(&wire, now(), &mut rng).step("Carol opens Alice's message")?;
    expect_eq(
        "Carol reads Alice's message, marked unverified",
        (got.from, &got.plaintext[..], got.unverified()),
        (alice.user_id(), text.as_bytes(), true),
    )?;
    let stats = carol_store.stats().step("read Carol's vault counters")?;
    expect_eq(
        "Carol's vault: 1 BRONZE ACTIVE, 1 burned",
        (stats.active, stats.total_burned),
        (TierCounts([0, 0, 1]), 1),
    )?;
    ui.ok(format!(
        "Carol opens \"{text}\", shown unverified (Alice's identity came from the directory, not an exchange); coin burned"
    ));
    ui.info(format!("phase 5 took {} ms", t.elapsed().as_millis()));
    Ok(())
}
