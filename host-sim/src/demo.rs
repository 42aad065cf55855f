//! `aqm-sim demo`: the prototype's four-phase lifecycle, end to end, with real cryptography and
//! real storage, and a check after every step.
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
//!
//! Everything goes through the core's lifecycle ([`aqm_core::messaging::Messenger`]) over the
//! storage traits, so the same code runs on redb files (default) or Redis (`--redis`).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome, Sent};
use aqm_core::pins::{SafetyNumber, Trust};
use aqm_core::store::{DirectoryStore, InventoryStore, PinStore, SessionStore, VaultStore};
use aqm_core::vault::KeyStatus;
use aqm_core::{DeviceContext, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds};
use aqm_storage_redb::RedbStore;
use aqm_storage_redis::RedisStore;
use rand::RngExt;

use crate::ui::Ui;

/// The redb files the demo writes.
const FILES: [&str; 3] = ["bob.redb", "alice.redb", "directory.redb"];

/// Options of `aqm-sim demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the redb files (bob.redb, alice.redb, directory.redb).
    /// Default: a fresh temporary directory, removed at the end.
    #[arg(long, value_name = "DIR", env = "AQM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Delete bob.redb, alice.redb and directory.redb from --data-dir before starting.
    #[arg(long, requires = "data_dir")]
    reset: bool,
    /// Keep Bob's vault and sessions and Alice's inventory on the Redis server at URL (under a
    /// unique key prefix per run, deleted at the end); the directory stays in directory.redb.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
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
            ui.verdict(true, format!("all four phases checked out ({:.1} s)", started.elapsed().as_secs_f64()));
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

/// Prepare the data directory: create it, refuse to mix with an earlier run unless `--reset`.
fn prepare_dir(dir: &Path, reset: bool) -> Result<(), Failed> {
    const STEP: &str = "prepare data directory";
    std::fs::create_dir_all(dir).map_err(|e| fail(STEP, format!("cannot create {}: {e}", dir.display())))?;
    for f in FILES {
        let p = dir.join(f);
        if p.exists() {
            if !reset {
                return Err(fail(
                    STEP,
                    format!(
                        "{} exists from an earlier run: pass --reset to delete it, or another --data-dir",
                        p.display()
                    ),
                ));
            }
            std::fs::remove_file(&p).map_err(|e| fail(STEP, format!("cannot delete {}: {e}", p.display())))?;
        }
    }
    Ok(())
}

fn run(ui: &Ui, args: Args) -> Result<(), Failed> {
    ui.title("AQM demo: mint → pre-fetch → send in three device contexts → decrypt and burn");
    let temp;
    let dir = match &args.data_dir {
        Some(d) => {
            prepare_dir(d, args.reset)?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("aqm-demo-").tempdir().step("create a temporary data directory")?;
            temp.path().to_path_buf()
        }
    };
    let policy = Policy::DEFAULT;
    let directory = RedbStore::open(dir.join("directory.redb"), policy.clone()).step("open directory.redb")?;
    match &args.redis {
        None => {
            ui.note(format!("storage: redb files in {}", dir.display()));
            let bob = RedbStore::open(dir.join("bob.redb"), policy.clone()).step("open bob.redb")?;
            let alice = RedbStore::open(dir.join("alice.redb"), policy.clone()).step("open alice.redb")?;
            lifecycle(ui, &policy, &bob, &alice, &directory)?;
            for f in FILES {
                let size = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
                ui.info(format!("{f}: {} KiB", size / 1024));
            }
            Ok(())
        }
        Some(url) => {
            let run_id: u64 = rand::rng().random();
            let prefix = format!("aqm-demo-{run_id:016x}");
            ui.note(format!("storage: Redis {url} under prefix {prefix}:* (directory in {})", dir.display()));
            let bob = RedisStore::connect(url, &format!("{prefix}:bob"), policy.clone()).step("connect to Redis")?;
            let alice =
                RedisStore::connect(url, &format!("{prefix}:alice"), policy.clone()).step("connect to Redis")?;
            let result = lifecycle(ui, &policy, &bob, &alice, &directory);
            let cleaned = bob.destroy_all().and_then(|a| alice.destroy_all().map(|b| a + b));
            match cleaned {
                Ok(n) => ui.info(format!("removed this run's {n} Redis keys")),
                Err(e) => ui.info(format!("could not remove this run's Redis keys ({e}); delete {prefix}:* by hand")),
            }
            result
        }
    }
}

/// The four phases, generic over the device stores (redb or Redis) with a redb directory.
fn lifecycle<B, EB, A, EA>(
    ui: &Ui,
    policy: &Policy,
    bob_store: &B,
    alice_store: &A,
    directory: &RedbStore,
) -> Result<(), Failed>
where
    B: VaultStore<Error = EB> + SessionStore + InventoryStore<Error = EB> + PinStore<Error = EB>,
    EB: StoreError,
    A: VaultStore<Error = EA> + SessionStore + InventoryStore<Error = EA> + PinStore<Error = EA>,
    EA: StoreError,
{
    let mut rng = rand::rng();
    let bob = Identity::generate(&mut rng);
    let alice = Identity::generate(&mut rng);
    let bob_dk = DeviceKey::random(&mut rng);
    let alice_dk = DeviceKey::random(&mut rng);
    ui.note(format!("Bob {} and Alice {}", bob.user_id(), alice.user_id()));
    ui.info("identities (Ed25519 + ML-DSA-65) and device sealing keys are generated fresh for this run and never stored or printed");

    // ── Phase 1 ─────────────────────────────────────────────────────────────────────────────
    ui.phase(1, 4, "MINT", "Bob mints 5 GOLD + 4 SILVER + 1 BRONZE coins");
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
    ui.phase(2, 4, "PRE-FETCH", "Alice registers Bob as BESTIE and fills her inventory");
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
    let alice_m = Messenger::new(alice_store, &alice, &alice_dk, policy.clone());
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
    ui.phase(3, 4, "SEND", "Alice writes to Bob from three device contexts");
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
    ui.phase(4, 4, "DECRYPT + BURN", "Bob opens each message; each coin burns as it opens");
    let t = Instant::now();
    let bob_m = Messenger::new(bob_store, &bob, &bob_dk, policy.clone());
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
    Ok(())
}
