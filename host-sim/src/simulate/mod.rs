//! `aqm-sim simulate`: a seeded population over N days — users with daily routines (device
//! contexts that move over the day), a contact graph with priorities, message traffic, nightly
//! pre-fetch, garbage collection and minting, priority changes and inactive contacts — reporting
//! what AQM costs and saves: KEM operations per message, tier mix, fallback and on-demand rates,
//! coins minted / claimed / wasted / expired, device storage against the budget, directory load
//! per hour and crypto CPU by tier. A terminal table, a self-contained HTML report with SVG
//! charts, and `--json`.
//!
//! Every rule is the core's ([`engine`] says which function decides what); the simulator keeps
//! counts and expiry times instead of keys, and models crypto costs from measured per-operation
//! figures ([`cost`]; `--real-crypto` measures them now with the real core, side by side).

pub mod cost;
pub mod engine;
pub mod html;
pub mod population;
pub mod prng;
pub mod report;
pub mod tally;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use aqm_core::Policy;
use indicatif::{ProgressBar, ProgressStyle};

use self::cost::CostModel;
use self::engine::{Behaviour, Engine, MAX_DAYS, SetupError};
use self::population::{Population, Shape};
use self::report::{Report, Settings};

/// Options of `aqm-sim simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the population.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Days to simulate.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed of every random draw: the same seed gives the same report.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// BESTIE relationships each user starts (each user ends up with about twice this many).
    #[arg(long, default_value_t = 2)]
    besties: u32,
    /// MATE relationships each user starts.
    #[arg(long, default_value_t = 6)]
    mates: u32,
    /// Share of relationships that stay silent (inactive contacts, later garbage-collected).
    #[arg(long, default_value_t = 0.2)]
    dormant: f64,
    /// Conversations each user starts per day, on average.
    #[arg(long, default_value_t = 5.0)]
    conversations: f64,
    /// Messages per conversation, on average (both directions).
    #[arg(long, default_value_t = 5.0)]
    length: f64,
    /// Share of conversations with someone who is no contact (reached by on-demand fetch).
    #[arg(long, default_value_t = 0.03)]
    strangers: f64,
    /// Apps pass allow_classical: a GOLD/SILVER send may fall back to BRONZE.
    #[arg(long)]
    allow_classical: bool,
    /// Write the HTML report here.
    #[arg(long, value_name = "PATH", default_value = "aqm-sim-report.html")]
    html: PathBuf,
    /// Write no HTML report.
    #[arg(long, conflicts_with = "html")]
    no_html: bool,
    /// Print the report as one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also measure every crypto operation now with the real core (a sample per tier) and show
    /// modelled vs real side by side.
    #[arg(long)]
    real_crypto: bool,
    /// Samples per tier for --real-crypto (3–20).
    #[arg(long, default_value_t = 10)]
    samples: usize,
}

/// Why a simulation could not run or be written.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Bad settings.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A share outside 0..=1.
    #[error("--{0} must be between 0 and 1")]
    Share(&'static str),
    /// Fewer than two users.
    #[error("--users must be at least 2 (someone has to write to someone)")]
    TooFewUsers,
    /// The HTML file.
    #[error("cannot write the HTML report to {path}: {source} (pass --html PATH or --no-html)")]
    Html {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The real-crypto sample failed.
    #[error("--real-crypto: the core refused a step: {0}")]
    RealCrypto(aqm_core::Error),
}

/// Run `aqm-sim simulate`.
pub fn main(args: Args) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            anstream::eprintln!("aqm-sim simulate: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), SimulateError> {
    if args.users < 2 {
        return Err(SimulateError::TooFewUsers);
    }
    if args.days > MAX_DAYS {
        return Err(SetupError::TooManyDays(args.days).into());
    }
    for (name, v) in [("dormant", args.dormant), ("strangers", args.strangers)] {
        if !(0.0..=1.0).contains(&v) {
            return Err(SimulateError::Share(name));
        }
    }
    let started = Instant::now();
    let shape = Shape { users: args.users, besties: args.besties, mates: args.mates, dormant: args.dormant };
    let population = Population::generate(&shape, args.seed);
    let behaviour = Behaviour { allow_classical: args.allow_classical, ..Behaviour::default() };
    let mut engine = Engine::new(Policy::DEFAULT, behaviour, population, args.seed)?;
    let bar = ProgressBar::new(u64::from(args.days) * 24);
    bar.set_style(
        ProgressStyle::with_template("{spinner} day {msg} [{bar:40}] {percent:>3}% {elapsed_precise} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    for day in 0..args.days {
        bar.set_message(format!("{}/{}", day + 1, args.days));
        let conversations = engine.draw_day(args.conversations, args.length, args.strangers);
        engine.run_day(day, &conversations, || bar.inc(1));
    }
    engine.finish();
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let settings = Settings {
        seed: args.seed,
        users: args.users,
        days: args.days,
        besties: args.besties,
        mates: args.mates,
        dormant: args.dormant,
        conversations_per_day: args.conversations,
        messages_per_conversation: args.length,
        stranger_share: args.strangers,
        allow_classical: args.allow_classical,
    };
    let tally = std::mem::take(&mut engine.tally);
    let days = std::mem::take(&mut engine.days);
    let hours = std::mem::take(&mut engine.hours);
    let mut report = Report::new(settings, tally, days, hours, CostModel::measured_defaults());
    report.scale.wall_seconds = wall;
    report.scale.messages_per_second = report.totals.messages as f64 / wall.max(1e-9);
    report.scale.peak_rss_mib = peak_rss_mib();
    if args.real_crypto {
        let real = CostModel::measure(args.samples).map_err(SimulateError::RealCrypto)?;
        let cost = real.apply(&report.totals);
        report.real_crypto = Some((real, cost));
    }
    if !args.no_html {
        std::fs::write(&args.html, html::render(&report))
            .map_err(|source| SimulateError::Html { path: args.html.clone(), source })?;
    }
    if args.json {
        let json = serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        println!("{json}");
    } else {
        anstream::print!("{}", report.table());
        if !args.no_html {
            anstream::println!("HTML report: {}", args.html.display());
        }
    }
    Ok(())
}

/// The process's peak resident memory in MiB (Linux), 0 where unknown.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
