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
        "Phase 1/4 MINT",
        "Phase 2/4 PRE-FETCH",
        "Phase 3/4 SEND",
        "Phase 4/4 DECRYPT + BURN",
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
        "PASS all four phases checked out",
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
    for f in ["bob.redb", "alice.redb", "directory.redb"] {
        assert!(data.join(f).is_file(), "{f} was not written");
    }

    // A second run into the same directory refuses to mix with the first, clearly, and exits 1.
    let again = demo(&["--data-dir", data.to_str().expect("utf-8 path")]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let out = text(&again);
    assert!(out.contains("exists from an earlier run: pass --reset"), "{out}");
    assert!(out.contains("FAIL the demo stopped at step \"prepare data directory\""), "{out}");

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
