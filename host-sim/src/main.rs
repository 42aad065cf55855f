//! `aqm-sim`: the AQM desktop simulator. A small clap dispatcher; each subcommand lives in its
//! own module.

mod bench;
mod chat;
mod demo;
mod device;
mod footprint;
mod load;
mod simulate;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// AQM (Amortized Quantum Messaging) simulator.
#[derive(Debug, Parser)]
#[command(name = "aqm-sim", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// AQM per tier (mint, first message, open-chain message, full lifecycle) against TLS 1.3
    /// handshakes by rustls over loopback (X25519MLKEM768, X25519, resumed): median, p99,
    /// bytes on the wire, post-quantum or not; a table or --json.
    Bench(bench::Args),
    /// Two-terminal chat in real time over Redis pub/sub, every message through the full AQM
    /// lifecycle with the partner's coins counted live in the prompt; or --auto, the BESTIE,
    /// MATE and STRANGER scenarios in one process with no services, every outcome checked.
    Chat(chat::Args),
    /// The prototype's four-phase lifecycle (mint → pre-fetch → send in three device contexts →
    /// decrypt and burn), then downward fallback and an on-demand fetch to a STRANGER, on
    /// embedded redb files, with no services needed. Exits 1 if any checked step fails.
    Demo(demo::Args),
    /// Drive the AQM firmware: in-process over a file-backed flash, under QEMU (--tcp) or on a
    /// real board (--serial).
    Device(device::Args),
    /// The on-disk size of a redb device store (full inventories and a vault) beside the bytes
    /// the storage report counts, before and after compaction; prints a Markdown table.
    Footprint(footprint::Args),
    /// Many simulated users against a running aqm-server: register, upload, then claims
    /// open-loop at --rate or closed-loop on --connections; throughput and latency percentiles.
    Load(load::Args),
    /// A seeded population over N days through the core's rules: KEM operations per message,
    /// tier mix, fallback and on-demand rates, coins minted / claimed / wasted, device storage,
    /// directory load and crypto cost; a table, an HTML report with charts, or --json.
    Simulate(simulate::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Bench(args) => bench::main(args),
        Command::Chat(args) => chat::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Device(args) => device::main(args),
        Command::Footprint(args) => footprint::main(args),
        Command::Load(args) => load::main(args),
        Command::Simulate(args) => simulate::main(args),
    }
}
