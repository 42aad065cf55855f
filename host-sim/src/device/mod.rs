//! `aqm-sim device`: drive the AQM firmware over its serial protocol.
//!
//! Three ways to reach a device, one protocol:
//! - default: the firmware library **in this process**, over a file-backed emulated NOR flash
//!   (`--flash`, kept between runs) with its device key in a file beside it;
//! - `--tcp HOST:PORT`: the firmware running under QEMU (`-serial tcp:HOST:PORT,server=on`);
//! - `--serial PATH`: a real board's UART (e.g. `/dev/ttyACM0`).

use std::fs;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aqm_core::crypto::DeviceKey;
use aqm_core::{KeyId, Policy, Tier};
use aqm_firmware::flash::PAGE_SIZE;
use aqm_firmware::host::{FileFlash, InProcess, StdIo, run_session};
use aqm_firmware::{Client, Device, FlashVault, NoButton, NoLed, VaultLayout};
use clap::{Args as ClapArgs, Subcommand};
use embedded_io::{Read, Write};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Pages of the simulated device's flash: 8 of records, 23 of secrets (22 × 42 live slots), and
/// the record map's erase journal in the last page. The image keeps the size it had in flash
/// format v1 (32 pages), so an old image is opened and refused by the vault's format check,
/// naming both versions, rather than by its size.
const MAP_PAGES: u32 = 8;
const SLAB_PAGES: u32 = 23;
const PAGES: u32 = MAP_PAGES + SLAB_PAGES + 1;
/// Keys the simulated device indexes.
const KEYS: usize = 256;

/// Where the device is and what to ask it.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Flash image of the in-process device (created erased if missing; its device key is kept
    /// in `<flash>.key`).
    #[arg(long, default_value = "aqm-data/device.flash")]
    flash: PathBuf,
    /// Talk to a device on this TCP address instead (QEMU: `-serial tcp:ADDR,server=on`).
    #[arg(long, conflicts_with = "serial")]
    tcp: Option<String>,
    /// Talk to a real board on this serial port instead.
    #[arg(long)]
    serial: Option<String>,
    /// Baud rate of `--serial`.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Identity, protocol version and capacity (the most coins the vault holds at once).
    Info,
    /// Counters, index records and secret slots in flash, and the room left for new coins.
    Status,
    /// Mint coins; prints each coin's key id (the public halves are signed by the device).
    Mint {
        /// GOLD, SILVER or BRONZE.
        #[arg(long, default_value = "BRONZE")]
        tier: Tier,
        /// How many (1 to 32).
        #[arg(long, default_value_t = 1)]
        count: u8,
    },
    /// Open (decapsulate) a coin: the device burns it, then returns the shared secret.
    Open {
        /// The coin's key id.
        #[arg(long)]
        key_id: KeyId,
        /// The KEM ciphertext, hex.
        #[arg(long)]
        ciphertext: String,
    },
    /// Expire old coins and delete burned ones past their grace.
    Purge,
    /// The scripted session: mint every tier and check the v2 coins (signature, expiry), open,
    /// refuse a second open and bad input, have the device sign a re-key of every tier and send a
    /// first message signed by it, check the counters, purge.
    Session,
    /// End the session (the QEMU board exits).
    Shutdown,
}

/// Run `aqm-sim device`.
pub fn main(args: Args) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aqm-sim device: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    if let Some(addr) = &args.tcp {
        let stream = TcpStream::connect(addr).map_err(|e| {
            format!("cannot connect to {addr}: {e}; is QEMU running with -serial tcp:{addr},server=on?")
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        return act(&mut Client::new(StdIo(stream)), &args.action);
    }
    if let Some(path) = &args.serial {
        let port = serialport::new(path, args.baud)
            .timeout(Duration::from_secs(120))
            .open()
            .map_err(|e| format!("cannot open serial port {path}: {e}"))?;
        return act(&mut Client::new(StdIo(port)), &args.action);
    }
    let link = local_device(&args.flash)?;
    act(&mut Client::new(link), &args.action)
}

type LocalLink = InProcess<FileFlash, KEYS, ChaCha20Rng, NoLed, NoButton>;

fn local_device(flash: &Path) -> Result<LocalLink, String> {
    if let Some(dir) = flash.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let key = device_key(&flash.with_extension("key"))?;
    let size = PAGES as usize * PAGE_SIZE;
    let image = FileFlash::open(flash, size).map_err(|e| format!("flash image {}: {e}", flash.display()))?;
    let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, MAP_PAGES, SLAB_PAGES)
        .with_erase_log((MAP_PAGES + SLAB_PAGES) * PAGE_SIZE as u32);
    let vault = FlashVault::open(image, layout, Policy::DEFAULT).map_err(|e| e.to_string())?;
    let rng = ChaCha20Rng::from_rng(&mut rand::rng());
    let device = Device::new(vault, key, rng, NoLed, NoButton)
        .map_err(|e| format!("device boot on {}: {e}", flash.display()))?;
    Ok(InProcess::new(device))
}

/// The simulated device's sealing key, created on first use. A real board keeps it outside the
/// vault flash (see firmware/README.md); the simulator keeps it in a 0600 file.
fn device_key(path: &Path) -> Result<DeviceKey, String> {
    match fs::read(path) {
        Ok(b) => {
            let b: [u8; 32] = b.try_into().map_err(|_| {
                format!("{} is not a 32-byte device key: delete it and the flash image", path.display())
            })?;
            Ok(DeviceKey::from_bytes(b))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = DeviceKey::random(&mut rand::rng());
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(&key.to_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn act<IO: Read + Write>(client: &mut Client<IO>, action: &Action) -> Result<(), String> {
    let now = now();
    let e = |e: aqm_firmware::Error| e.to_string();
    match action {
        Action::Info => {
            let i = client.info(now).map_err(e)?;
            println!("user id:        {}", i.identity.user_id);
            println!("protocol:       v{}", i.protocol);
            println!("capacity:       {} coins", i.capacity);
            println!("approve button: {}", if i.approve_button { "required" } else { "none" });
        }
        Action::Status => {
            let s = client.status(now).map_err(e)?;
            let [g, si, b] = s.stats.active.0;
            let u = &s.usage;
            // Two limits hold at once: the RAM index (one record per ACTIVE or not yet purged
            // BURNED key) and the secret slab (one slot per live secret; zeroed slots come back
            // when their page is erased, and one page always stays erased as the compaction
            // spare). The capacity `info` reports is the smaller of the two.
            let slots = u.live_slots + u.free_slots + u.dead_slots;
            let spare = slots.saturating_sub(u.slot_capacity);
            let room = u.record_capacity.saturating_sub(u.records).min(u.slot_capacity.saturating_sub(u.live_slots));
            println!("active:   GOLD {g}  SILVER {si}  BRONZE {b}");
            println!("burned:   {} (total)   expired: {} (total)", s.stats.total_burned, s.stats.total_expired);
            println!(
                "keys:     {} of {} index records in use (ACTIVE, and BURNED until purged)",
                u.records, u.record_capacity
            );
            println!(
                "secrets:  {} live + {} zeroed + {} erased = {slots} slots in flash; {} can hold live secrets ({spare} stay erased as the compaction spare)",
                u.live_slots, u.dead_slots, u.free_slots, u.slot_capacity
            );
            println!(
                "capacity: {} coins (the smaller of {} records and {} live slots, as `device info` says); room for {room} more now",
                u.record_capacity.min(u.slot_capacity),
                u.record_capacity,
                u.slot_capacity
            );
        }
        Action::Mint { tier, count } => {
            let n = client
                .mint(now, *tier, *count, |c| {
                    println!(
                        "{} {} ({} B public key, {} B signature, expires at {})",
                        c.tier,
                        c.key_id,
                        c.public_key.len(),
                        c.signature.len(),
                        c.expires_at
                    )
                })
                .map_err(e)?;
            println!("minted {n} {tier} coin(s)");
        }
        Action::Open { key_id, ciphertext } => {
            let ct = hex(ciphertext)?;
            client.open(now, *key_id, &ct).map_err(e)?;
            // The secret itself is never printed.
            println!("opened {key_id}: coin burned, shared secret received (32 bytes)");
        }
        Action::Purge => {
            let (expired, deleted) = client.purge(now).map_err(e)?;
            println!("expired {expired}, deleted {deleted} burned");
        }
        Action::Session => {
            run_session(client, now, &mut rand::rng(), &mut |line| println!("{line}")).map_err(e)?;
            println!("session passed");
        }
        Action::Shutdown => {
            client.shutdown(now).map_err(e)?;
            println!("device shut down");
        }
    }
    Ok(())
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err("ciphertext hex has an odd length".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("not hex at offset {i}")))
        .collect()
}
