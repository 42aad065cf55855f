//! The report: what the run measured, as one serialisable value (`--json`), and its terminal
//! table.

use std::fmt::Write as _;

use serde::Serialize;

use super::cost::{CostModel, CryptoCost};
use super::tally::{DayStats, HourLoad, Tally, ratio};

/// How the population and traffic were drawn.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// Seed of every draw.
    pub seed: u64,
    /// Users.
    pub users: u32,
    /// Days simulated.
    pub days: u32,
    /// BESTIE relationships started per user.
    pub besties: u32,
    /// MATE relationships started per user.
    pub mates: u32,
    /// Share of relationships silent for the whole run.
    pub dormant: f64,
    /// Conversations started per user per day.
    pub conversations_per_day: f64,
    /// Mean messages per conversation.
    pub messages_per_conversation: f64,
    /// Share of conversations with someone who is no contact.
    pub stranger_share: f64,
    /// Apps allow a GOLD/SILVER send to fall back to BRONZE.
    pub allow_classical: bool,
}

/// How big the run was and what it took (not part of the deterministic result).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Scale {
    /// Wall-clock seconds of the simulation (population, warm start, all days).
    pub wall_seconds: f64,
    /// Messages simulated per wall-clock second.
    pub messages_per_second: f64,
    /// Peak resident memory of the process, MiB (Linux `VmHWM`; 0 where unknown).
    pub peak_rss_mib: f64,
}

/// One run's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The inputs.
    pub settings: Settings,
    /// Run time and memory (varies between runs; everything else is fixed by the seed).
    pub scale: Scale,
    /// The totals.
    pub totals: Tally,
    /// KEM operations per message delivered (one per chain opened).
    pub kem_per_message: f64,
    /// Share of chains opened on a cheaper tier than wanted.
    pub fallback_rate: f64,
    /// Share of chains opened with a coin fetched on demand.
    pub on_demand_rate: f64,
    /// Share of messages that are post-quantum (GOLD or SILVER chains).
    pub post_quantum_share: f64,
    /// Chains opened with a last-resort coin (the owner's one-time coins of the tier were gone
    /// from the directory), all tiers.
    pub last_resort_chains: u64,
    /// Those per 1000 chains opened.
    pub last_resort_per_1000_chains: f64,
    /// Those per 1000 messages delivered.
    pub last_resort_per_1000_messages: f64,
    /// Per day.
    pub days: Vec<DayStats>,
    /// Per hour of the run.
    pub hours: Vec<HourLoad>,
    /// Directory requests in the busiest hour, and that as a rate per second.
    pub directory_peak_hour_requests: u64,
    /// The busiest hour's request rate.
    pub directory_peak_per_second: f64,
    /// The per-operation costs used.
    pub cost_model: CostModel,
    /// The run's crypto CPU time under that model.
    pub crypto_cost: CryptoCost,
    /// With `--real-crypto`: the same costs measured now, and the run's cost under them.
    pub real_crypto: Option<(CostModel, CryptoCost)>,
}

const TIERS: [&str; 3] = ["GOLD", "SILVER", "BRONZE"];

impl Report {
    /// Derive the rates and peaks from the totals.
    pub fn new(
        settings: Settings,
        totals: Tally,
        days: Vec<DayStats>,
        hours: Vec<HourLoad>,
        cost_model: CostModel,
    ) -> Report {
        let rekeys: u64 = totals.rekeys.iter().sum();
        let peak = hours.iter().map(HourLoad::requests).max().unwrap_or(0);
        let crypto_cost = cost_model.apply(&totals);
        let last_resort_chains: u64 = totals.last_resort_chains.iter().sum();
        Report {
            last_resort_chains,
            last_resort_per_1000_chains: ratio(last_resort_chains, rekeys) * 1000.0,
            last_resort_per_1000_messages: ratio(last_resort_chains, totals.messages) * 1000.0,
            settings,
            scale: Scale::default(),
            kem_per_message: totals.kem_per_message(),
            fallback_rate: ratio(totals.fallbacks, rekeys),
            on_demand_rate: ratio(totals.rekeys_on_demand.iter().sum(), rekeys),
            post_quantum_share: ratio(totals.messages_by_tier[0] + totals.messages_by_tier[1], totals.messages),
            totals,
            days,
            hours,
            directory_peak_hour_requests: peak,
            directory_peak_per_second: peak as f64 / 3600.0,
            cost_model,
            crypto_cost,
            real_crypto: None,
        }
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let t = &self.totals;
        let s = &self.settings;
        let mut o = String::new();
        let tiers =
            |v: &[u64; 3]| format!("{:>12} {:>12} {:>12} {:>12}", num(v[0]), num(v[1]), num(v[2]), num(v.iter().sum()));
        let _ = writeln!(
            o,
            "aqm-sim simulate: {} users × {} days, seed {} ({} contact sides)",
            num(u64::from(s.users)),
            s.days,
            s.seed,
            num(t.contacts)
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "{:<34} {:>12}", "messages delivered", num(t.messages));
        let _ = writeln!(
            o,
            "{:<34} {:>12.4}   (1 KEM opens a chain; the ratchet carries the rest)",
            "KEM operations per message", self.kem_per_message
        );
        let _ = writeln!(o, "{:<34} {:>11.1} %", "post-quantum messages", self.post_quantum_share * 100.0);
        let _ = writeln!(o, "{:<34} {:>11.2} %   of chains opened", "downward fallback", self.fallback_rate * 100.0);
        let _ = writeln!(o, "{:<34} {:>11.2} %   of chains opened", "on-demand fetch", self.on_demand_rate * 100.0);
        let _ = writeln!(
            o,
            "{:<34} {:>12}   ({:.3} per 1000 chains, {:.4} per 1000 messages)",
            "chains opened with last-resort",
            num(self.last_resort_chains),
            self.last_resort_per_1000_chains,
            self.last_resort_per_1000_messages
        );
        let _ = writeln!(
            o,
            "{:<34} {:>12}   ({} with the range stopped at SILVER)",
            "not sent (no coin anywhere)",
            num(t.failed),
            num(t.failed_classical)
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "{:<34} {:>12} {:>12} {:>12} {:>12}", "per tier", TIERS[0], TIERS[1], TIERS[2], "total");
        let _ = writeln!(o, "{:<34} {}", "messages on chains of tier", tiers(&t.messages_by_tier));
        let _ = writeln!(o, "{:<34} {}", "chains opened (KEM)", tiers(&t.rekeys));
        let _ = writeln!(o, "{:<34} {}", "  of which with an on-demand coin", tiers(&t.rekeys_on_demand));
        let _ = writeln!(o, "{:<34} {}", "coins minted", tiers(&t.minted));
        let _ = writeln!(o, "{:<34} {}", "coins claimed by pre-fetch", tiers(&t.claimed_prefetch));
        let _ = writeln!(o, "{:<34} {}", "coins claimed on demand", tiers(&t.claimed_on_demand));
        let _ = writeln!(o, "{:<34} {}", "coins burned (opened)", tiers(&t.burned));
        let _ = writeln!(o, "{:<34} {}", "wasted: stale in inventory", tiers(&t.wasted_stale));
        let _ = writeln!(o, "{:<34} {}", "wasted: garbage-collected", tiers(&t.wasted_gc));
        let _ = writeln!(o, "{:<34} {}", "wasted: evicted by downgrade", tiers(&t.wasted_trim));
        let _ = writeln!(o, "{:<34} {}", "expired unclaimed in directory", tiers(&t.expired_directory));
        let _ = writeln!(o, "{:<34} {}", "expired unopened in vaults", tiers(&t.expired_vault));
        let _ = writeln!(o);
        let last = self.days.last().cloned().unwrap_or_default();
        let _ = writeln!(
            o,
            "{:<34} p50 {:.1} %, p95 {:.1} %, max {:.1} % of 64 KiB; {} devices over",
            "device storage (cached coins)",
            last.storage_p50_pct,
            last.storage_p95_pct,
            last.storage_max_pct,
            num(last.over_budget_users)
        );
        let _ = writeln!(
            o,
            "{:<34} {} contacts, {} coins, {} KiB freed; {} up / {} down",
            "GC / priority changes",
            num(t.gc_contacts_cleaned),
            num(t.gc_keys_deleted),
            num(t.gc_bytes_freed / 1024),
            num(t.upgrades),
            num(t.downgrades)
        );
        let hours = self.hours.len().max(1) as f64;
        let total_req: u64 = self.hours.iter().map(HourLoad::requests).sum();
        let _ = writeln!(
            o,
            "{:<34} mean {:.1}/s, peak hour {} requests ({:.1}/s); {} quota refusals",
            "directory load",
            total_req as f64 / hours / 3600.0,
            num(self.directory_peak_hour_requests),
            self.directory_peak_per_second,
            num(t.quota_refusals)
        );
        let c = &self.crypto_cost;
        let per_user_day = c.total_s() * 1000.0 / f64::from(s.users.max(1)) / f64::from(s.days.max(1));
        let by = c.by_tier();
        let _ = writeln!(
            o,
            "{:<34} {:.1} ms per user per day (GOLD {:.0} s, SILVER {:.0} s, BRONZE {:.0} s, open chains {:.0} s in all)",
            "crypto CPU (modelled)", per_user_day, by[0], by[1], by[2], c.chain_s
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "cost model ({}), µs:", self.cost_model.source);
        let _ = writeln!(o, "{}", model_rows(&self.cost_model, None));
        if let Some((real, cost)) = &self.real_crypto {
            let _ = writeln!(o, "modelled vs real ({}), µs:", real.source);
            let _ = writeln!(o, "{}", model_rows(&self.cost_model, Some(real)));
            let _ = writeln!(
                o,
                "run's crypto CPU: modelled {:.0} s, with the real figures {:.0} s ({:+.1} %)",
                self.crypto_cost.total_s(),
                cost.total_s(),
                (cost.total_s() / self.crypto_cost.total_s().max(1e-9) - 1.0) * 100.0
            );
        }
        let sc = &self.scale;
        let _ = writeln!(
            o,
            "scale: {} messages in {:.1} s ({} messages/s), peak memory {:.0} MiB",
            num(t.messages),
            sc.wall_seconds,
            num(sc.messages_per_second as u64),
            sc.peak_rss_mib
        );
        o
    }
}

fn model_rows(m: &CostModel, real: Option<&CostModel>) -> String {
    let mut o = String::new();
    type Row<'a> = (&'a str, [f64; 3], Option<[f64; 3]>);
    let rows: [Row<'_>; 4] = [
        ("mint", m.mint_us, real.map(|r| r.mint_us)),
        ("verify a claimed coin", m.verify_coin_us, real.map(|r| r.verify_coin_us)),
        ("first message, send", m.first_send_us, real.map(|r| r.first_send_us)),
        ("first message, receive", m.first_receive_us, real.map(|r| r.first_receive_us)),
    ];
    for (name, a, b) in rows {
        match b {
            None => {
                let _ = writeln!(o, "  {name:<26} GOLD {:>8.1}  SILVER {:>8.1}  BRONZE {:>8.1}", a[0], a[1], a[2]);
            }
            Some(b) => {
                let _ = writeln!(
                    o,
                    "  {name:<26} GOLD {:>8.1} / {:>8.1}  SILVER {:>8.1} / {:>8.1}  BRONZE {:>8.1} / {:>8.1}",
                    a[0], b[0], a[1], b[1], a[2], b[2]
                );
            }
        }
    }
    match real {
        None => {
            let _ = write!(
                o,
                "  {:<26} send {:.2}, receive {:.2}",
                "message on an open chain", m.chain_send_us, m.chain_receive_us
            );
        }
        Some(r) => {
            let _ = write!(
                o,
                "  {:<26} send {:.2} / {:.2}, receive {:.2} / {:.2}",
                "message on an open chain", m.chain_send_us, r.chain_send_us, m.chain_receive_us, r.chain_receive_us
            );
        }
    }
    o
}

/// `1234567` → `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
