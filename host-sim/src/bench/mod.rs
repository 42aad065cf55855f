//! `aqm-sim bench`: in one run, AQM per tier (mint, first message, steady-state message, full
//! lifecycle) against TLS 1.3 handshakes by rustls over loopback (full with X25519MLKEM768 and
//! with X25519, and resumed); median, p99, bytes on the wire and whether each case is
//! post-quantum; a table or `--json`.

pub mod aqm;
pub mod tls;

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Options of `aqm-sim bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Samples per case.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// One case's timings.
#[derive(Clone, Debug)]
pub struct Sample {
    name: String,
    post_quantum: bool,
    wire_bytes: usize,
    times: Vec<Duration>,
}

impl Sample {
    fn new(name: String, post_quantum: bool, wire_bytes: usize) -> Sample {
        Sample { name, post_quantum, wire_bytes, times: Vec::new() }
    }

    fn push(&mut self, d: Duration) {
        self.times.push(d);
    }

    fn summary(&self) -> Case {
        let mut t: Vec<f64> = self.times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        t.sort_by(f64::total_cmp);
        let at = |q: f64| t.get(((t.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        Case {
            name: self.name.clone(),
            post_quantum: self.post_quantum,
            wire_bytes: self.wire_bytes,
            samples: t.len(),
            median_us: at(0.5),
            p99_us: at(0.99),
        }
    }
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    /// What was measured.
    pub name: String,
    /// Whether the case's key exchange is post-quantum.
    pub post_quantum: bool,
    /// Bytes on the wire (both directions for TLS; AQM: the coin and/or envelope sent).
    pub wire_bytes: usize,
    /// Samples taken.
    pub samples: usize,
    /// Median, µs.
    pub median_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
struct Report {
    iterations: usize,
    cpus: usize,
    cases: Vec<Case>,
}

/// Why the bench could not finish.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("an AQM case failed: {0}")]
    Aqm(#[from] aqm_core::Error),
    #[error("a TLS case failed: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("--iterations must be at least 1")]
    NoIterations,
}

/// Run `aqm-sim bench`.
pub fn main(args: Args) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            anstream::eprintln!("aqm-sim bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    if args.iterations == 0 {
        return Err(BenchError::NoIterations);
    }
    let n = args.iterations;
    let bar = ProgressBar::new((3 * n + 4 * n) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} bench [{bar:40}] {pos}/{len} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut samples = aqm::run(n, || bar.inc(1))?;
    samples.extend(tls::run(n, || bar.inc(1))?);
    bar.finish_and_clear();
    let report = Report {
        iterations: n,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cases: samples.iter().map(Sample::summary).collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    } else {
        anstream::print!("{}", table(&report));
    }
    Ok(())
}

fn table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "aqm-sim bench: {} samples per case, {} CPUs, loopback", r.iterations, r.cpus);
    let _ = writeln!(o);
    let _ = writeln!(o, "| Case | Median | p99 | Bytes on the wire | Post-quantum |");
    let _ = writeln!(o, "|---|---:|---:|---:|---|");
    for c in &r.cases {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            c.name,
            fmt_us(c.median_us),
            fmt_us(c.p99_us),
            c.wire_bytes,
            if c.post_quantum { "yes" } else { "no" }
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "AQM bytes: mint = the published coin; first/open-chain message = the envelope; lifecycle = the coin up to \
         the directory and down to the sender, plus the first envelope. TLS bytes: both directions up to the end \
         of the client's handshake. TLS post-quantum = key exchange only (the certificate is ECDSA P-256)."
    );
    o
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 { format!("{:.2} ms", us / 1000.0) } else { format!("{us:.1} µs") }
}
