//! Writes the seed corpora under `fuzz/corpus/<target>/` from the public API, so each target
//! starts from valid inputs: real v2 envelopes of every tier (signed re-keys and later messages,
//! from `Messenger`), sealed sessions of both directions (raw and as records), the ratchet
//! fixture's envelopes, and (feature `firmware`) one COBS frame per firmware command.
//! `cargo run --bin gen_corpus` (from `fuzz/`); scripts/fuzz.sh runs it when a corpus is missing.
//! Each target's directory is replaced.

use std::fs;
use std::path::Path;

use aqm_core::envelope::Envelope;
use aqm_core::messaging::Messenger;
use aqm_fuzz::{Counter, RECEIVE_AT, RatchetFixture, open_record, real_blobs};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("corpus file");
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut targets = vec!["envelope_decode", "session_open", "ratchet_receive"];
    if cfg!(feature = "firmware") {
        targets.push("firmware_frame");
    }
    for t in targets {
        let _ = fs::remove_dir_all(corpus.join(t));
    }
    let fixture = RatchetFixture::new();
    for (name, bytes) in &fixture.envelopes {
        // The seeds reach both outcomes of the ratchet target: check which each one gets.
        let store = fixture.store();
        let bob = Messenger::new(&*store, &fixture.bob, &fixture.bob_dk);
        let accepted = bob.receive(bytes, RECEIVE_AT, &mut Counter(3)).is_ok();
        let refused = name.ends_with("-replay") || name.ends_with("-no-session");
        assert_eq!(accepted, !refused, "fixture envelope {name}");
        write("ratchet_receive", name, bytes);
        write("envelope_decode", name, bytes);
    }
    // One more shape for the decoder: the longest counter varint.
    let (_, later) = fixture.envelopes.iter().find(|(n, _)| *n == "silver-1").expect("in the fixture");
    let mut env = Envelope::decode(later).expect("decodes");
    env.counter = u32::MAX;
    write("envelope_decode", "counter-max", &env.to_vec().expect("encodes"));

    for (direction, blob) in real_blobs() {
        let name = if direction == 1 { "send" } else { "recv" };
        write("session_open", &format!("{name}-blob"), &[[0u8].as_slice(), &blob].concat());
        let record = open_record(&blob, direction).expect("layout matches");
        write("session_open", &format!("{name}-record"), &[[1u8].as_slice(), &record].concat());
    }

    #[cfg(feature = "firmware")]
    firmware_frames();
    println!("corpora written under fuzz/corpus/");
}

/// One COBS frame per firmware command (feature `firmware`).
#[cfg(feature = "firmware")]
fn firmware_frames() {
    use aqm_core::crypto::{encapsulate, generate_keypair};
    use aqm_core::{KeyId, Tier};
    use aqm_firmware::protocol::{self, Command, Request};
    let mut rng = Counter(9);
    let coin = KeyId([3; 16]);
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
}
