//! `aqm-sim footprint`: the on-disk size of a redb device store, next to the bytes the core's
//! storage report counts.
//!
//! Each scenario fills a fresh `RedbStore` file the way a device fills it — one durable
//! transaction per trait call: `VaultStore::put` per own minted coin, `PinStore::pin_identity`
//! and `InventoryStore::register_contact` per contact, `InventoryStore::store_coin` per cached coin
//! (what `Messenger::prefetch` calls), up to each contact's caps — then measures the file, asks
//! redb where the bytes went (`WriteTransaction::stats`), compacts it (`RedbStore::compact`) and
//! measures again. The storage report is the core's (`inventory::StorageReport`), summed over
//! `InventoryStore::for_each_contact`; nothing here restates a rule.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::{ContactMeta, StorageReport};
use aqm_core::pins::Trust;
use aqm_core::store::{InventoryStore, PinStore, VaultStore};
use aqm_core::{Policy, Priority, Tier, TierCounts, UnixSeconds};
use aqm_storage_redb::RedbStore;

/// Options of `aqm-sim footprint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measure one scenario with this many BESTIE contacts (each cached up to the BESTIE caps)
    /// instead of the three standard ones.
    #[arg(long, requires_all = ["mates", "vault"])]
    besties: Option<u32>,
    /// MATE contacts of that scenario (each cached up to the MATE caps).
    #[arg(long, requires_all = ["besties", "vault"])]
    mates: Option<u32>,
    /// Own coins in that scenario's vault (minted GOLD:SILVER:BRONZE = 5:4:1, as the demo does).
    #[arg(long, requires_all = ["besties", "mates"])]
    vault: Option<u32>,
    /// Keep the redb files in DIR (default: a temporary directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One device to build and measure.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    besties: u32,
    mates: u32,
    vault: u32,
}

impl Scenario {
    fn name(&self) -> String {
        format!("{} BESTIE + {} MATE, {}-coin vault", self.besties, self.mates, self.vault)
    }

    fn file_name(&self) -> String {
        format!("device-{}b-{}m-{}v.redb", self.besties, self.mates, self.vault)
    }
}

/// The three standard rows: the demo's Alice (one BESTIE) with Bob's ten-coin vault, the
/// largest full inventory of whole BESTIE and MATE contacts the default 64 KiB budget holds,
/// and issue 16's device of 50 contacts with a 100-coin vault.
const STANDARD: [Scenario; 3] = [
    Scenario { besties: 1, mates: 0, vault: 10 },
    Scenario { besties: 2, mates: 1, vault: 100 },
    Scenario { besties: 25, mates: 25, vault: 100 },
];

/// Send-and-refill rounds run on the compacted file.
const CHURN_ROUNDS: u32 = 50;

/// What one scenario measured.
#[derive(Debug)]
struct Measured {
    scenario: Scenario,
    cached: TierCounts,
    report: StorageReport,
    filled: u64,
    stored: u64,
    metadata: u64,
    allocated: u64,
    compacted: u64,
    churned: u64,
}

/// Run `aqm-sim footprint`.
pub fn main(args: Args) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aqm-sim footprint: {e}");
            ExitCode::FAILURE
        }
    }
}

fn now() -> UnixSeconds {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn run(args: Args) -> Result<(), String> {
    let scenarios: Vec<Scenario> = match (args.besties, args.mates, args.vault) {
        (Some(besties), Some(mates), Some(vault)) => vec![Scenario { besties, mates, vault }],
        _ => STANDARD.to_vec(),
    };
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("aqm-footprint-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    let mut rows = Vec::new();
    for s in scenarios {
        eprintln!("building {} …", s.name());
        rows.push(measure(&dir.join(s.file_name()), s)?);
    }
    print_table(&rows);
    Ok(())
}

fn file_len(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("cannot stat {}: {e}", path.display()))
}

fn measure(path: &Path, s: Scenario) -> Result<Measured, String> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
    }
    let policy = Policy::DEFAULT;
    let mut rng = rand::rng();
    let now = now();
    // Sealed as a device's store is, so the file's size is what a device pays.
    let store_key = DeviceKey::random(&mut rng);
    let store = RedbStore::open(path, policy.clone(), &store_key).map_err(|e| e.to_string())?;

    // The owner's vault, minted 5:4:1 like the demo's Bob.
    let me = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    for i in 0..s.vault {
        let tier = match i % 10 {
            0..=4 => Tier::Gold,
            5..=8 => Tier::Silver,
            _ => Tier::Bronze,
        };
        let minted = coin::mint(&me, tier, &dk, now, &mut rng).map_err(|e| e.to_string())?;
        store.put(&minted.vault).map_err(|e| e.to_string())?;
    }

    // Contacts: pinned (a device must pin a contact before it may cache the contact's coins)
    // and cached up to their priority's caps. Their coins are real, minted by their identities.
    let priorities = std::iter::repeat_n(Priority::Bestie, s.besties as usize)
        .chain(std::iter::repeat_n(Priority::Mate, s.mates as usize));
    let mut first: Option<(Identity, Priority)> = None;
    let contact_dk = DeviceKey::random(&mut rng);
    for (n, priority) in priorities.enumerate() {
        let contact = Identity::generate(&mut rng);
        store.pin_identity(contact.public(), Trust::Exchanged).map_err(|e| e.to_string())?;
        let meta =
            ContactMeta::new(contact.user_id(), priority, &format!("contact {n}"), now).map_err(|e| e.to_string())?;
        store.register_contact(&meta).map_err(|e| e.to_string())?;
        let caps = policy.caps_of(priority);
        for tier in Tier::ALL {
            for _ in 0..caps.get(tier) {
                let minted = coin::mint(&contact, tier, &contact_dk, now, &mut rng).map_err(|e| e.to_string())?;
                store.store_coin(&contact.user_id(), &minted.public, now).map_err(|e| e.to_string())?;
            }
        }
        first.get_or_insert((contact, priority));
    }

    let mut report = StorageReport::new(&policy);
    let mut cached = TierCounts::default();
    store
        .for_each_contact(&mut |_, held| {
            report.add_contact(&held);
            for t in Tier::ALL {
                *cached.get_mut(t) += held.get(t);
            }
        })
        .map_err(|e| e.to_string())?;
    let stats = {
        let tx = store.database().begin_write().map_err(|e| e.to_string())?;
        let stats = tx.stats().map_err(|e| e.to_string())?;
        tx.abort().map_err(|e| e.to_string())?;
        stats
    };
    let filled = file_len(path)?;
    let mut store = store;
    store.compact().map_err(|e| e.to_string())?;
    drop(store);
    let compacted = file_len(path)?;
    // The compacted file is still a sound AQM store holding everything.
    let reopened = RedbStore::open(path, policy.clone(), &store_key).map_err(|e| e.to_string())?;
    let mut recount = TierCounts::default();
    reopened
        .for_each_contact(&mut |_, held| {
            for t in Tier::ALL {
                *recount.get_mut(t) += held.get(t);
            }
        })
        .map_err(|e| e.to_string())?;
    let vault = reopened.stats().map_err(|e| e.to_string())?.active.total();
    if recount != cached || vault != s.vault {
        return Err(format!(
            "the compacted file lost data: {recount:?} cached (expected {cached:?}), {vault} vault keys (expected {})",
            s.vault
        ));
    }

    // Use after compaction: a device keeps sending and refilling. Each round pops the oldest coin
    // of the first contact's dearest tier (a re-keying send) and caches a new one in its place
    // (a prefetch), two durable transactions; the file grows back by what copy-on-write frees.
    if let Some((contact, priority)) = &first {
        let tier = policy.ceiling(*priority);
        for _ in 0..CHURN_ROUNDS {
            let selected = reopened.select_coin(&contact.user_id(), tier, tier, now).map_err(|e| e.to_string())?;
            if selected.coin.is_none() {
                return Err(format!("no {tier} coin cached for the churn rounds"));
            }
            let minted = coin::mint(contact, tier, &contact_dk, now, &mut rng).map_err(|e| e.to_string())?;
            reopened.store_coin(&contact.user_id(), &minted.public, now).map_err(|e| e.to_string())?;
        }
    }
    drop(reopened);
    let churned = file_len(path)?;

    Ok(Measured {
        scenario: s,
        cached,
        report,
        filled,
        stored: stats.stored_bytes(),
        metadata: stats.metadata_bytes(),
        allocated: stats.allocated_pages() * stats.page_size() as u64,
        compacted,
        churned,
    })
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

/// A Markdown table, one column per scenario (what `scripts/figures.sh` puts in the README).
fn print_table(rows: &[Measured]) {
    let cells = |f: &dyn Fn(&Measured) -> String| rows.iter().map(f).collect::<Vec<_>>().join(" | ");
    println!("| redb device store | {} |", cells(&|m| m.scenario.name()));
    println!("|---|{}", "---:|".repeat(rows.len()));
    println!(
        "| coins cached (GOLD / SILVER / BRONZE) | {} |",
        cells(&|m| format!(
            "{} / {} / {}",
            m.cached.get(Tier::Gold),
            m.cached.get(Tier::Silver),
            m.cached.get(Tier::Bronze)
        ))
    );
    println!(
        "| storage report: cached coin bytes (`StorageReport::total_bytes`) | {} |",
        cells(&|m| format!(
            "{} ({:.0} % of the {} budget)",
            kib(m.report.total_bytes),
            m.report.utilization_pct(),
            kib(m.report.budget_bytes)
        ))
    );
    println!(
        "| storage report: the same coins as stored, sealed (`StorageReport::stored_bytes`) | {} |",
        cells(&|m| kib(m.report.stored_bytes))
    );
    println!("| redb: keys + values stored (coins, pins, vault, indexes, counters) | {} |", cells(&|m| kib(m.stored)));
    println!(
        "| redb: pages in use (4 KiB each), of which page rounding and b-tree slack | {} |",
        cells(&|m| format!("{} ({})", kib(m.allocated), kib(m.allocated.saturating_sub(m.stored + m.metadata))))
    );
    println!("| file after filling (one durable transaction per call) | {} |", cells(&|m| kib(m.filled)));
    println!("| file after `RedbStore::compact` | {} |", cells(&|m| kib(m.compacted)));
    println!(
        "| then after {CHURN_ROUNDS} sends + refills (select_coin + store_coin of the dearest tier) | {} |",
        cells(&|m| kib(m.churned))
    );
    println!(
        "| file ÷ storage report, before → after compaction | {} |",
        cells(&|m| {
            let r = m.report.total_bytes.max(1) as f64;
            format!("{:.1}× → {:.1}×", m.filled as f64 / r, m.compacted as f64 / r)
        })
    );
}
