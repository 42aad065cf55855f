//! Writes the seed corpora under `fuzz/corpus/<target>/` from the public API, so each target
//! starts from valid inputs: envelopes of every tier, sealed sessions of both directions (raw
//! and as records), and one COBS frame per firmware command.
//! `cargo run --bin gen_corpus` (from `fuzz/`); scripts/fuzz.sh runs it when a corpus is missing.

use std::fs;
use std::path::Path;

use aqm_core::crypto::{encapsulate, generate_keypair};
use aqm_core::envelope::{Envelope, MAX_ENVELOPE, RekeyHeader};
use aqm_core::{KeyId, Tier, UserId};
use aqm_firmware::protocol::{self, Command, Request};
use aqm_fuzz::{Counter, open_record, real_blobs};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("corpus file");
}

fn main() {
    let mut rng = Counter(9);
    let (alice, bob, coin) = (UserId([1; 16]), UserId([2; 16]), KeyId([3; 16]));
    let mut buf = [0u8; MAX_ENVELOPE];
    for tier in Tier::ALL {
        let (_, pk) = generate_keypair(tier, &mut rng);
        let (ct, _) = encapsulate(tier, &pk, &mut rng).expect("encapsulates");
        let rekey = RekeyHeader { tier, kem_ciphertext: ct };
        let env =
            Envelope::new(alice, bob, coin, Some(rekey), 0, heapless::Vec::from_slice(&[0xa5; 40]).expect("fits"));
        write("envelope_decode", &format!("rekey-{tier:?}"), env.encode(&mut buf).expect("encodes"));
    }
    let env = Envelope::new(alice, bob, coin, None, 300, heapless::Vec::from_slice(&[0x5a; 16]).expect("fits"));
    write("envelope_decode", "message", env.encode(&mut buf).expect("encodes"));

    for (direction, blob) in real_blobs() {
        let name = if direction == 1 { "send" } else { "recv" };
        write("session_open", &format!("{name}-blob"), &[[0u8].as_slice(), &blob].concat());
        let record = open_record(&blob, direction).expect("layout matches");
        write("session_open", &format!("{name}-record"), &[[1u8].as_slice(), &record].concat());
    }

    let (_, pk) = generate_keypair(Tier::Silver, &mut rng);
    let (ct, _) = encapsulate(Tier::Silver, &pk, &mut rng).expect("encapsulates");
    let commands = [
        ("info", Command::Info),
        ("mint", Command::Mint { tier: Tier::Gold, count: 2 }),
        ("open", Command::Open { key_id: coin, ciphertext: ct }),
        ("status", Command::Status),
        ("purge", Command::Purge),
        ("shutdown", Command::Shutdown),
    ];
    let mut frame = [0u8; protocol::MAX_REQUEST_FRAME + 8];
    for (i, (name, command)) in commands.into_iter().enumerate() {
        let req = Request { id: i as u32 + 1, now: 1_700_000_000, command };
        write("firmware_frame", name, protocol::encode(&req, &mut frame).expect("encodes"));
    }
    println!("corpora written under fuzz/corpus/");
}
