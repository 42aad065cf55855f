//! Runs `aqm-sim bench` with a few samples: every case is there, with the expected post-quantum
//! flag and plausible bytes on the wire, and the TLS cases really are full and resumed
//! handshakes (the bench refuses a resumed case that did not resume).

use std::process::Command;

#[test]
fn bench_reports_every_case_as_json() {
    let o = Command::new(env!("CARGO_BIN_EXE_aqm-sim"))
        .args(["bench", "--iterations", "3", "--json"])
        .output()
        .expect("run aqm-sim");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 16, "{v}");
    let case = |name: &str| cases.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name:?} in {v}"));
    for tier in ["GOLD", "SILVER", "BRONZE"] {
        let pq = tier != "BRONZE";
        for what in
            ["mint a coin", "first message (KEM + re-key + ratchet)", "message on an open chain", "full lifecycle"]
        {
            let c = case(&format!("AQM {tier}: {what}"));
            assert_eq!(c["post_quantum"], pq, "{c}");
            assert_eq!(c["samples"], 3);
            assert!(c["median_us"].as_f64().unwrap() > 0.0 && c["p99_us"].as_f64() >= c["median_us"].as_f64());
        }
    }
    // The first message of a GOLD chain carries the X-Wing ciphertext (1120 B) and both
    // signatures (64 + 3309 B); an open-chain message carries neither.
    let first = case("AQM GOLD: first message (KEM + re-key + ratchet)")["wire_bytes"].as_u64().unwrap();
    let next = case("AQM GOLD: message on an open chain")["wire_bytes"].as_u64().unwrap();
    assert!(first > 1120 + 64 + 3309 && next < 200, "{first} / {next}");
    for (name, pq) in [("X25519MLKEM768", true), ("X25519", false)] {
        let full = case(&format!("TLS 1.3 full handshake, {name}"));
        let resumed = case(&format!("TLS 1.3 resumed handshake, {name}"));
        assert_eq!((full["post_quantum"].clone(), resumed["post_quantum"].clone()), (pq.into(), pq.into()));
        // A resumed handshake sends no certificate.
        assert!(resumed["wire_bytes"].as_u64() < full["wire_bytes"].as_u64(), "{full} / {resumed}");
    }
    // The hybrid key shares (1216 B from the client, 1120 B back) make the PQ handshake larger.
    let pq = case("TLS 1.3 full handshake, X25519MLKEM768")["wire_bytes"].as_u64().unwrap();
    let classical = case("TLS 1.3 full handshake, X25519")["wire_bytes"].as_u64().unwrap();
    assert!(pq > classical + 2000, "{pq} vs {classical}");
}

#[test]
fn the_table_has_a_row_per_case() {
    let o = Command::new(env!("CARGO_BIN_EXE_aqm-sim")).args(["bench", "--iterations", "2"]).output().expect("run");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("| AQM") || l.starts_with("| TLS")).count(), 16, "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_aqm-sim")).args(["bench", "--iterations", "0"]).output().expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--iterations must be at least 1"));
}
