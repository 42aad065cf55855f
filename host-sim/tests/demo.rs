//! Runs the `aqm-sim demo` binary end to end and checks its verdict, its phase lines and its exit
//! codes, including the failure paths.

use std::path::Path;
use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aqm-sim"))
        .arg("demo")
        .args(args)
        .env_remove("AQM_DATA_DIR")
        .output()
        .expect("run aqm-sim")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn assert_passed(o: &Output) {
    let out = text(o);
    assert!(o.status.success(), "demo failed:\n{out}");
    for line in [
        "Phase 1/5 MINT",
        "Phase 2/5 PRE-FETCH",
        "Phase 3/5 SEND",
        "Phase 4/5 DECRYPT + BURN",
        "Phase 5/5 FALLBACK + ON-DEMAND",
        "5 GOLD",
        "4 SILVER",
        "1 BRONZE",
        "refused by the directory (BadSignature)",
        "directory drained to 0: 0 GOLD, 0 SILVER, 0 BRONZE left",
        "A: at home on Wi-Fi, battery 85 % → GOLD coin",
        "B: outdoors on cellular, -85 dBm → SILVER coin",
        "C: underground, -110 dBm → BRONZE coin",
        "follow-up rides the open BRONZE chain, no KEM",
        "a second time is refused: KeyAlreadyBurned",
        "Bob's vault: 4 GOLD, 3 SILVER, 0 BRONZE ACTIVE, 3 burned",
        "re-key 4: oldest GOLD coin",
        "(0 GOLD left)",
        "re-key 5: wanted GOLD → used SILVER coin",
        "Bob opened all 5 messages",
        "send to Carol (STRANGER, nothing cached) → NeedCoin for BRONZE",
        "on-demand fetch: claimed BRONZE coin",
        "(0 GOLD, 0 SILVER, 1 BRONZE left there)",
        "shown unverified",
        "PASS all 5 phases checked out",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(!out.contains('\u{1b}'), "colour codes in non-terminal output:\n{out}");
}

#[test]
fn demo_passes_on_redb_files_in_a_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let o = demo(&["--data-dir", data.to_str().expect("utf-8 path")]);
    assert_passed(&o);
    for f in ["bob.redb", "alice.redb", "carol.redb", "directory.redb"] {
        assert!(data.join(f).is_file(), "{f} was not written");
    }

    // A second run into the same directory starts afresh, saying so.
    let again = demo(&["--data-dir", data.to_str().expect("utf-8 path")]);
    assert_passed(&again);
    assert!(
        text(&again)
            .contains("starting afresh: deleted bob.redb, alice.redb, carol.redb, directory.redb of an earlier run"),
        "{}",
        text(&again)
    );

    // A file of that name that is not a redb database is never deleted without --reset.
    std::fs::write(data.join("carol.redb"), b"not a database").expect("write file");
    let refused = demo(&["--data-dir", data.to_str().expect("utf-8 path")]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let out = text(&refused);
    assert!(out.contains("carol.redb exists and is not a redb database: pass --reset"), "{out}");
    assert!(out.contains("FAIL the demo stopped at step \"prepare data directory\""), "{out}");
    assert_eq!(std::fs::read(data.join("carol.redb")).expect("read file"), b"not a database");

    // With --reset it runs again from scratch.
    assert_passed(&demo(&["--data-dir", data.to_str().expect("utf-8 path"), "--reset"]));
}

#[test]
fn demo_passes_in_a_fresh_temporary_directory() {
    assert_passed(&demo(&[]));
}

#[test]
fn an_unusable_data_dir_fails_with_a_clear_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write file");
    let o = demo(&["--data-dir", file.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("prepare data directory: cannot create"), "{}", text(&o));
    assert!(Path::new(&file).is_file(), "the file was left alone");
}

/// The same demo with Bob's vault and Alice's inventory on Redis, when a server is reachable at
/// `AQM_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Skipped, loudly, when none answers.
#[test]
fn demo_passes_on_redis() {
    let url = std::env::var("AQM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = url.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_owned();
    if std::net::TcpStream::connect(&addr).is_err() {
        eprintln!("SKIPPED: no Redis at {url}");
        return;
    }
    let o = demo(&["--redis", &url]);
    assert_passed(&o);
    assert!(text(&o).contains("Redis keys"), "{}", text(&o));
}
