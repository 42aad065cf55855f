//! Runs `aqm-sim device` on an in-process device over a file-backed flash image and checks that
//! `status` and `info` agree on what the vault can hold.

use std::path::Path;
use std::process::Command;

fn device(flash: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_aqm-sim"))
        .arg("device")
        .arg("--flash")
        .arg(flash)
        .args(args)
        .output()
        .expect("run aqm-sim");
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "aqm-sim device {args:?} failed:\n{out}");
    out
}

#[test]
fn status_and_info_report_the_same_capacity() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flash = dir.path().join("aqm-data").join("device.flash");
    device(&flash, &["mint", "--tier", "BRONZE", "--count", "3"]);
    let info = device(&flash, &["info"]);
    assert!(info.contains("capacity:       256 coins"), "{info}");
    let status = device(&flash, &["status"]);
    for line in [
        "active:   GOLD 0  SILVER 0  BRONZE 3",
        "keys:     3 of 256 index records in use",
        // The slab counts every slot; the spare page's slots are erased but never hold a live
        // secret, so "erased" may exceed the live capacity without contradicting it.
        "3 live + 0 zeroed + 963 erased = 966 slots in flash; 924 can hold live secrets (42 stay erased",
        "capacity: 256 coins (the smaller of 256 records and 924 live slots",
        "room for 253 more now",
    ] {
        assert!(status.contains(line), "missing {line:?} in:\n{status}");
    }
    assert!(flash.with_extension("key").is_file(), "the device key is kept beside the image");
}

#[test]
fn footprint_measures_a_small_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = Command::new(env!("CARGO_BIN_EXE_aqm-sim"))
        .args(["footprint", "--besties", "1", "--mates", "1", "--vault", "3", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run aqm-sim");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    for line in [
        "| redb device store | 1 BESTIE + 1 MATE, 3-coin vault |",
        "| coins cached (GOLD / SILVER / BRONZE) | 5 / 10 / 5 |",
        // One full BESTIE (28,453 B) and one full MATE (8,292 B): the core's coin::stored_bytes.
        "| storage report: cached coin bytes (`StorageReport::total_bytes`) | 36 KiB (56 % of the 64 KiB budget) |",
        // The same 20 coins as stored: each adds a 28-byte nonce and tag and a 32-byte name.
        "| storage report: the same coins as stored, sealed (`StorageReport::stored_bytes`) | 37 KiB |",
        "| file after `RedbStore::compact` |",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(dir.path().join("device-1b-1m-3v.redb").is_file());
}
