//! `aqm-sim chat` as a person uses it: two real processes of the built binary, each in a
//! pseudo-terminal, talking over the real Redis at 127.0.0.1:6379 (scripts/test.sh starts it)
//! under a channel prefix unique to the test run, with the shared directory file in a temporary
//! directory. Messages go both ways, alice changes context, and the output of both is checked.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use rexpect::reader::Options;
use rexpect::session::{PtySession, spawn_with_options};

const REDIS: &str = "redis://127.0.0.1:6379";

/// How long one expected line may take (a GOLD re-key mints, claims and verifies in
/// milliseconds; the margin is for a loaded CI machine).
const TIMEOUT_MS: u64 = 30_000;

fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("aqm-chat-test-{test}-{}-{nanos}", std::process::id())
}

fn chat(user: &str, partner: &str, priority: &str, prefix: &str, dir: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aqm-sim"));
    cmd.args(["chat", "--user", user, "--partner", partner, "--priority", priority, "--prefix", prefix])
        .args(["--pubsub", REDIS, "--data-dir"])
        .arg(dir)
        .env("NO_COLOR", "1");
    let options = Options::default().timeout_ms(Some(TIMEOUT_MS)).strip_ansi_escape_codes(true);
    spawn_with_options(cmd, options).expect("spawn aqm-sim chat in a pty")
}

/// Wait for `needle` in `who`'s output, or fail with what came instead. rexpect reads the
/// terminal byte by byte as Latin-1, so needles are plain ASCII (the output's arrows and dots
/// are UTF-8).
fn expect(s: &mut PtySession, who: &str, needle: &str) -> String {
    match s.exp_string(needle) {
        Ok(before) => before,
        Err(e) => panic!("{who} never printed {needle:?}: {e}"),
    }
}

#[test]
fn two_terminals_chat_over_redis() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("bestie");

    let mut alice = chat("alice", "bob", "BESTIE", &prefix, dir.path());
    expect(&mut alice, "alice", "waiting for bob");
    expect(&mut alice, "alice", "[G:0 S:0 B:0] alice@wifi> ");

    let mut bob = chat("bob", "alice", "bestie", &prefix, dir.path());
    // Bob's hello reaches alice, who answers; both pin, register and pre-fetch 5/4/1.
    expect(&mut bob, "bob", "alice joined as");
    expect(&mut bob, "bob", "pre-fetched alice's coins: asked the directory for G:5 S:4 B:1, got G:5 S:4 B:1");
    expect(&mut bob, "bob", "[G:5 S:4 B:1] bob@wifi> ");
    expect(&mut alice, "alice", "bob joined as");
    expect(&mut alice, "alice", "safety number");
    expect(&mut alice, "alice", "[G:5 S:4 B:1] alice@wifi> ");

    // At home on Wi-Fi: GOLD, a new chain.
    alice.send_line("Hello Bob").unwrap();
    expect(&mut alice, "alice", "bob: GOLD re-key, new chain with coin");
    expect(&mut alice, "alice", "[G:4 S:4 B:1] alice@wifi> ");
    expect(&mut bob, "bob", "alice: \"Hello Bob\"");
    expect(&mut bob, "bob", "GOLD re-key");
    expect(&mut bob, "bob", "post-quantum: alice's signature verified");
    expect(&mut bob, "bob", "coin BURNED");

    // The second message rides the chain: no KEM, no coin.
    alice.send_line("Still on the same chain").unwrap();
    expect(&mut alice, "alice", "bob: GOLD chain");
    expect(&mut alice, "alice", "message 2");
    expect(&mut alice, "alice", "no KEM (amortized)");
    expect(&mut bob, "bob", "alice: \"Still on the same chain\"");

    // The other way.
    bob.send_line("Hi Alice").unwrap();
    expect(&mut bob, "bob", "alice: GOLD re-key");
    expect(&mut alice, "alice", "bob: \"Hi Alice\"");
    expect(&mut alice, "alice", "coin BURNED");

    // Outdoors: the tier range changes, the next message re-keys with SILVER.
    alice.send_line("/cell").unwrap();
    expect(&mut alice, "alice", "now cell");
    expect(&mut alice, "alice", "affords SILVER; the next message re-keys");
    alice.send_line("On the bus").unwrap();
    expect(&mut alice, "alice", "bob: SILVER re-key");
    expect(&mut alice, "alice", "[G:4 S:3 B:1] alice@cell> ");
    expect(&mut bob, "bob", "alice: \"On the bus\"");
    expect(&mut bob, "bob", "SILVER re-key");

    // Underground: BRONZE, the only BRONZE coin; the tier runs low and is replenished.
    alice.send_line("/underground").unwrap();
    expect(&mut alice, "alice", "now underground");
    alice.send_line("In the tunnel").unwrap();
    expect(&mut alice, "alice", "bob: BRONZE re-key");
    expect(&mut alice, "alice", "classical only");
    expect(&mut alice, "alice", "a tier ran low, replenished: asked the directory for");
    expect(&mut alice, "alice", "alice@underground> ");
    expect(&mut bob, "bob", "alice: \"In the tunnel\"");
    expect(&mut bob, "bob", "classical only: alice's signature verified");

    alice.send_line("/status").unwrap();
    expect(&mut alice, "alice", "inventory of bob's coins:");
    expect(&mut alice, "alice", "our vault:");

    alice.send_line("/quit").unwrap();
    expect(&mut alice, "alice", "bye");
    alice.exp_eof().expect("alice exits");
    expect(&mut bob, "bob", "alice left the chat");
    bob.send_line("/quit").unwrap();
    bob.exp_eof().expect("bob exits");
}

/// A MATE at home: the context affords GOLD, the MATE gets SILVER, and it says so.
#[test]
fn a_mate_is_sent_silver_from_home() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("mate");
    let mut alice = chat("alice", "bob", "MATE", &prefix, dir.path());
    expect(&mut alice, "alice", "alice@wifi> ");
    let mut bob = chat("bob", "alice", "MATE", &prefix, dir.path());
    expect(&mut bob, "bob", "[G:0 S:6 B:4] bob@wifi> ");
    expect(&mut alice, "alice", "[G:0 S:6 B:4] alice@wifi> ");
    alice.send_line("Hi").unwrap();
    expect(&mut alice, "alice", "bob: SILVER re-key");
    expect(&mut alice, "alice", "used SILVER (the context affords GOLD; a MATE's ceiling is SILVER)");
    expect(&mut bob, "bob", "alice: \"Hi\"");
    alice.send_line("/quit").unwrap();
    alice.exp_eof().expect("alice exits");
    bob.send_line("/quit").unwrap();
    bob.exp_eof().expect("bob exits");
}

/// With no Redis at the URL the chat stops at once and says which URL and how to start one.
#[test]
fn unreachable_redis_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aqm-sim"))
        .args(["chat", "--user", "alice", "--partner", "bob", "--pubsub", "redis://127.0.0.1:1", "--data-dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Redis at redis://127.0.0.1:1"), "{err}");
    assert!(err.contains("redis-server"), "{err}");
}
