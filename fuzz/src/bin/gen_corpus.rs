//! Writes the seed corpora under `fuzz/corpus/<target>/` from the public API, so each target
//! starts from valid inputs: real v2 envelopes of every tier (signed re-keys and later messages,
//! from `Messenger`), sealed sessions of both directions (raw and as records), the ratchet
//! fixture's envelopes, raw table writes of real records for the redb store, and (feature
//! `firmware`) one COBS frame per firmware command and command sequences for the device fixture.
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
    let mut targets = vec!["envelope_decode", "session_open", "ratchet_receive", "redb_records", "redis_records"];
    if cfg!(feature = "firmware") {
        targets.extend(["firmware_frame", "firmware_command"]);
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

    redb_records();
    redis_records();
    #[cfg(feature = "firmware")]
    firmware_frames();
    #[cfg(feature = "firmware")]
    firmware_commands();
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

/// Raw table writes (`table ‖ key ‖ len ‖ value`, see fuzz_targets/redb_records.rs) of the
/// records a real `RedbStore` holds: each value read back from a store the public API filled.
fn redb_records() {
    use aqm_core::coin;
    use aqm_core::crypto::Identity;
    use aqm_core::inventory::ContactMeta;
    use aqm_core::pins::Trust;
    use aqm_core::store::{InventoryStore, PinStore, VaultStore};
    use aqm_core::{Priority, Tier};
    use aqm_storage_redb::RedbStore;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    let mut rng = Counter(11);
    let store = RedbStore::in_memory(aqm_core::Policy::DEFAULT).expect("store");
    let bob = Identity::generate(&mut rng);
    let dk = aqm_fuzz::device_key();
    let contact = bob.user_id();
    let mut coins = Vec::new();
    for tier in Tier::ALL {
        let c = coin::mint(&bob, tier, &dk, 0, &mut rng).expect("mints");
        store.put(&c.vault).expect("puts");
        coins.push(c);
    }
    store.burn(&coins[0].vault.key_id, 1).expect("burns");
    store.pin_identity(bob.public(), Trust::Exchanged).expect("pins");
    let meta = ContactMeta::new(contact, Priority::Bestie, "carol", 1).expect("a contact");
    store.register_contact(&meta).expect("registers");
    for c in &coins {
        // A tier over the priority's cap is refused; the others are cached.
        let _ = store.store_coin(&contact, &c.public, 1);
    }
    let tx = store.database().begin_read().expect("reads");
    let mut all = Vec::new();
    let mut values = |table: u8, name: &str| {
        let def: TableDefinition<'_, [u8; 16], &[u8]> = TableDefinition::new(name);
        let t = tx.open_table(def).expect("table");
        for row in t.iter().expect("iterates") {
            let (_, v) = row.expect("row");
            let v = v.value();
            if v.len() < 256 {
                let rec = [&[table, 0, v.len() as u8][..], v].concat();
                write("redb_records", &format!("{name}-{}", all.len()), &rec);
                all.extend_from_slice(&rec);
            }
        }
    };
    values(0, "vault");
    values(3, "pins");
    values(4, "contacts");
    let counters: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("counters");
    if let Some(v) = tx.open_table(counters).expect("table").get("vault").expect("reads") {
        let v = v.value();
        let rec = [&[1u8, 0, v.len() as u8][..], v].concat();
        write("redb_records", "counters", &rec);
        all.extend_from_slice(&rec);
    }
    let inv: TableDefinition<'_, ([u8; 16], u8, u64), &[u8]> = TableDefinition::new("inventory_coins");
    for row in tx.open_table(inv).expect("table").iter().expect("iterates") {
        let (_, v) = row.expect("row");
        let v = v.value();
        if v.len() < 256 {
            let rec = [&[5u8, 1, v.len() as u8][..], v].concat();
            write("redb_records", &format!("inventory-{}", all.len()), &rec);
            all.extend_from_slice(&rec);
        }
    }
    write("redb_records", "all", &all);
}

/// Request streams for the `firmware_command` device fixture (feature `firmware`): each command
/// alone, the opens of the fixture's coins with valid ciphertexts (twice, the second refused),
/// a re-key signature, and all of them in one stream.
#[cfg(feature = "firmware")]
fn firmware_commands() {
    use aqm_core::Tier;
    use aqm_firmware::protocol::{Command, RekeyRequest, Request};
    use aqm_fuzz::firmware::{FirmwareFixture, MINTED_AT, frame};
    let fx = FirmwareFixture::new();
    let now = MINTED_AT + 60;
    let mut cmds = vec![
        ("info", Command::Info),
        ("status", Command::Status),
        ("mint-bronze-2", Command::Mint { tier: Tier::Bronze, count: 2 }),
        ("purge", Command::Purge),
        ("shutdown", Command::Shutdown),
    ];
    for (key_id, tier, ct) in &fx.coins {
        let open = Command::Open {
            key_id: *key_id,
            ciphertext: aqm_core::crypto::KemCiphertext::from_slice(ct).expect("fits"),
        };
        cmds.push((["open-gold", "open-silver", "open-bronze"][tier.to_byte() as usize % 3], open));
    }
    let (key_id, tier, ct) = &fx.coins[0];
    let rekey = RekeyRequest {
        recipient: aqm_core::UserId([2; 16]),
        coin: *key_id,
        tier: *tier,
        kem_ciphertext: aqm_core::crypto::KemCiphertext::from_slice(ct).expect("fits"),
        coin_public_key_hash: [3; 32],
        counter: 0,
        nonce: [4; 12],
    };
    cmds.push(("sign-rekey", Command::SignRekey(rekey)));
    let mut stream = Vec::new();
    for (i, (name, command)) in cmds.iter().enumerate() {
        let f = frame(&Request { id: i as u32, now, command: command.clone() });
        if name.starts_with("open") {
            write("firmware_command", &format!("{name}-twice"), &[f.clone(), f.clone()].concat());
        }
        write("firmware_command", name, &f);
        if *name != "shutdown" {
            stream.extend_from_slice(&f);
        }
    }
    stream.extend_from_slice(&frame(&Request { id: 99, now, command: Command::Status }));
    write("firmware_command", "sequence", &stream);
}

/// Replies as the Redis store reads them, in fuzz_targets/redis_records.rs's input format: a
/// selector byte, then fields (`1 ‖ len ‖ bytes`, `0` for absent) or reply trees.
fn redis_records() {
    fn field(out: &mut Vec<u8>, b: &[u8]) {
        out.extend([1, b.len() as u8]);
        out.extend(b);
    }
    fn int(out: &mut Vec<u8>, n: i64) {
        out.push(1);
        out.extend(n.to_le_bytes());
    }
    fn bulk(out: &mut Vec<u8>, b: &[u8]) {
        out.push(2);
        field(out, b);
    }
    let id = b"0b42eddb-740f-4867-8e95-9f03ef82ae59";
    let mut entry = vec![0u8];
    for f in [&id[..], b"GOLD", &[0xAB; 32], &[0x11; 12], &[0x22; 16], b"ACTIVE", b"1700000000"] {
        field(&mut entry, f);
    }
    entry.push(0); // burned_at absent
    field(&mut entry, b"1702592000");
    write("redis_records", "vault-entry-active", &entry);
    let mut burned = vec![0u8];
    for f in [&id[..], b"BRONZE", b"", b"", b"", b"BURNED", b"1700000000", b"1700000060", b"1702592000"] {
        field(&mut burned, f);
    }
    write("redis_records", "vault-entry-burned", &burned);
    let mut status = vec![1u8];
    field(&mut status, b"ACTIVE");
    write("redis_records", "vault-status", &status);
    let mut stats = vec![2u8, 5];
    for n in [3i64, 2, 1, 7, 4] {
        stats.push(1);
        stats.extend(n.to_le_bytes());
    }
    stats.extend([5, 5]); // the raw reply: an array of five
    for n in [b"3", b"2", b"1", b"7", b"4"] {
        bulk(&mut stats, n);
    }
    write("redis_records", "vault-stats", &stats);
    let mut session = vec![3u8];
    field(&mut session, b"12");
    field(&mut session, &[0x5A; 200]);
    write("redis_records", "session", &session);
    for word in ["ok", "missing", "burned", "expired", "conflict"] {
        let mut burn = vec![4u8];
        field(&mut burn, word.as_bytes());
        write("redis_records", &format!("burn-{word}"), &burn);
    }
    let mut meta = vec![5u8, 5, 4];
    for f in [&b"BESTIE"[..], b"1700000000", b"alice", b"1"] {
        bulk(&mut meta, f);
    }
    write("redis_records", "contact-meta", &meta);
    let mut counts = vec![6u8, 3];
    for n in [5, 4, 1] {
        int(&mut counts, n);
    }
    write("redis_records", "tier-counts", &counts);
    let mut select = vec![7u8, 10];
    int(&mut select, 1);
    int(&mut select, 0);
    for f in [&b"SILVER"[..], id, &[0x33; 32], &[0x44; 64], b"5", b"1700000000", b"0", b"1702592000"] {
        bulk(&mut select, f);
    }
    write("redis_records", "selection", &select);
    let mut none = vec![7u8, 2];
    int(&mut none, 0);
    int(&mut none, 2);
    write("redis_records", "selection-none", &none);
    let mut pin = vec![8u8];
    field(&mut pin, &[0x55; 32]);
    field(&mut pin, &[0x66; 200]);
    field(&mut pin, b"1");
    write("redis_records", "pin", &pin);
    let mut member = vec![9u8];
    field(&mut member, id);
    write("redis_records", "id-member", &member);
}
