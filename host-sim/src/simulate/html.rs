//! The self-contained HTML report: inline CSS, inline SVG charts, no network resource. A small
//! inline script checks on load that every chart drew at least one mark and that no script
//! error or `console.error` happened, and records the verdict on `<body data-check>` (the
//! headless-Chromium test reads it).

use std::fmt::Write as _;

use super::report::{Report, num};
use super::tally::HourLoad;

const GOLD: &str = "#c9a227";
const SILVER: &str = "#8a96a3";
const BRONZE: &str = "#a0522d";
const BLUE: &str = "#2f6fb0";
const GREEN: &str = "#3a8f4f";
const RED: &str = "#b33a3a";

/// A series of a chart: its name, colour and values.
struct Series<'a> {
    name: &'a str,
    colour: &'a str,
    values: Vec<f64>,
}

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;

/// A round upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn label(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn frame(
    o: &mut String,
    id: &str,
    title: &str,
    ymax: f64,
    x_labels: &[(usize, String)],
    n: usize,
    legend: &[(&str, &str)],
) {
    let _ = write!(
        o,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{title}"><text x="{LEFT}" y="18" class="t">{title}</text>"#
    );
    let plot_h = H - TOP - BOTTOM;
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        let y = TOP + plot_h * (1.0 - f64::from(k) / 4.0);
        let _ = write!(
            o,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" class="a" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(v)
        );
    }
    let plot_w = W - LEFT - RIGHT;
    for (i, text) in x_labels {
        let x = LEFT + plot_w * (*i as f64 + 0.5) / n.max(1) as f64;
        let _ =
            write!(o, r#"<text x="{x:.1}" y="{:.1}" class="a" text-anchor="middle">{text}</text>"#, H - BOTTOM + 16.0);
    }
    let mut lx = LEFT;
    for (name, colour) in legend {
        let _ = write!(
            o,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}" class="a">{name}</text>"#,
            H - 14.0,
            lx + 14.0,
            H - 5.0
        );
        lx += 18.0 + 7.0 * name.len() as f64;
    }
}

/// Stacked vertical bars, one per category.
fn bars(id: &str, title: &str, categories: &[String], series: &[Series<'_>]) -> String {
    let n = categories.len();
    let totals: Vec<f64> = (0..n).map(|i| series.iter().map(|s| s.values[i]).sum()).collect();
    let ymax = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.colour)).collect();
    let step = n.div_ceil(15).max(1);
    let xl: Vec<(usize, String)> =
        categories.iter().enumerate().filter(|(i, _)| i % step == 0).map(|(i, c)| (i, c.clone())).collect();
    let mut o = String::new();
    frame(&mut o, id, title, ymax, &xl, n, &legend);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / n.max(1) as f64;
    for (i, category) in categories.iter().enumerate() {
        let mut base = 0.0;
        for s in series {
            let v = s.values[i];
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / ymax;
            let y = TOP + plot_h * (1.0 - (base + v) / ymax);
            let _ = write!(
                o,
                r#"<rect class="mark" x="{:.1}" y="{y:.1}" width="{:.1}" height="{h:.2}" fill="{}"><title>{} {}: {}</title></rect>"#,
                LEFT + bw * i as f64 + bw * 0.1,
                bw * 0.8,
                s.colour,
                category,
                s.name,
                label(v)
            );
            base += v;
        }
    }
    o.push_str("</svg>");
    o
}

/// Lines over a shared x axis.
fn lines(id: &str, title: &str, x_labels: &[(usize, String)], series: &[Series<'_>]) -> String {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let ymax = nice_max(series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max));
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.colour)).collect();
    let mut o = String::new();
    frame(&mut o, id, title, ymax, x_labels, n, &legend);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    for s in series {
        let mut d = String::new();
        for (i, v) in s.values.iter().enumerate() {
            let x = LEFT + plot_w * (i as f64 + 0.5) / n.max(1) as f64;
            let y = TOP + plot_h * (1.0 - v / ymax);
            let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
        }
        if !d.is_empty() {
            let _ = write!(o, r#"<path class="mark" d="{d}" fill="none" stroke="{}" stroke-width="1.6"/>"#, s.colour);
        }
    }
    o.push_str("</svg>");
    o
}

const CHECK: &str = r#"(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  var original = console.error;
  console.error = function () { errors.push(Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
  window.addEventListener('load', function () {
    var charts = document.querySelectorAll('svg.chart'), empty = [];
    charts.forEach(function (c) {
      var drawn = 0;
      c.querySelectorAll('.mark').forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) drawn++; });
      c.setAttribute('data-drawn', drawn);
      if (drawn === 0) empty.push(c.id);
    });
    var b = document.body;
    b.setAttribute('data-charts', charts.length);
    b.setAttribute('data-empty', empty.join(','));
    b.setAttribute('data-errors', errors.length);
    b.setAttribute('data-check', charts.length > 0 && empty.length === 0 && errors.length === 0 ? 'ok' : 'fail');
  });
})();"#;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:800px;color:#222}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}\
td,th{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:right}td:first-child,th:first-child{text-align:left}\
svg{display:block;margin:10px 0;background:#fcfcfc;border:1px solid #eee}.t{font-size:14px;font-weight:600}\
.a{font-size:11px;fill:#555}.note{color:#666;font-size:12px}";

/// The report as one self-contained HTML page.
pub fn render(r: &Report) -> String {
    let t = &r.totals;
    let s = &r.settings;
    let days: Vec<String> = r.days.iter().map(|d| format!("{}", d.day + 1)).collect();
    let tier_series = |f: &dyn Fn(&super::tally::DayStats) -> [u64; 3]| -> Vec<Series<'static>> {
        [("GOLD", GOLD), ("SILVER", SILVER), ("BRONZE", BRONZE)]
            .into_iter()
            .enumerate()
            .map(|(i, (name, colour))| Series { name, colour, values: r.days.iter().map(|d| f(d)[i] as f64).collect() })
            .collect()
    };
    let mut charts = Vec::new();
    charts.push(bars(
        "messages",
        "Messages per day, by the tier of their chain",
        &days,
        &tier_series(&|d| d.messages_by_tier),
    ));
    charts.push(lines(
        "kem",
        "KEM operations per message, per day (one per chain opened)",
        &r.days
            .iter()
            .enumerate()
            .filter(|(i, _)| i % r.days.len().div_ceil(15).max(1) == 0)
            .map(|(i, d)| (i, format!("{}", d.day + 1)))
            .collect::<Vec<_>>(),
        &[Series {
            name: "KEM / message",
            colour: BLUE,
            values: r.days.iter().map(|d| super::tally::ratio(d.rekeys.iter().sum(), d.messages)).collect(),
        }],
    ));
    charts.push(bars("rekeys", "Chains opened per day, by tier", &days, &tier_series(&|d| d.rekeys)));
    let hour_labels: Vec<(usize, String)> = (0..r.hours.len())
        .filter(|h| h % (24 * r.days.len().div_ceil(10).max(1)) == 0)
        .map(|h| (h, format!("day {}", h / 24 + 1)))
        .collect();
    let hs = |f: fn(&HourLoad) -> u64| r.hours.iter().map(|h| f(h) as f64).collect::<Vec<_>>();
    charts.push(lines(
        "directory",
        "Directory requests per hour",
        &hour_labels,
        &[
            Series { name: "pre-fetch claims", colour: BLUE, values: hs(|h| h.claims) },
            Series { name: "on-demand claims", colour: RED, values: hs(|h| h.on_demand) },
            Series { name: "uploads", colour: GREEN, values: hs(|h| h.uploads) },
        ],
    ));
    let bands: Vec<String> =
        (0..11).map(|i| if i == 10 { "≥100".into() } else { format!("{}–{}", i * 10, i * 10 + 10) }).collect();
    charts.push(bars(
        "storage",
        "Devices by cached coins, % of the 64 KiB budget (last day)",
        &bands,
        &[Series { name: "devices", colour: BLUE, values: t.storage_histogram.iter().map(|v| *v as f64).collect() }],
    ));
    charts.push(lines(
        "storage_days",
        "Device storage per day, % of the budget",
        &r.days
            .iter()
            .enumerate()
            .filter(|(i, _)| i % r.days.len().div_ceil(15).max(1) == 0)
            .map(|(i, d)| (i, format!("{}", d.day + 1)))
            .collect::<Vec<_>>(),
        &[
            Series { name: "median", colour: BLUE, values: r.days.iter().map(|d| d.storage_p50_pct).collect() },
            Series { name: "p95", colour: GREEN, values: r.days.iter().map(|d| d.storage_p95_pct).collect() },
            Series { name: "max", colour: RED, values: r.days.iter().map(|d| d.storage_max_pct).collect() },
        ],
    ));
    let fates: Vec<String> =
        ["minted", "pre-fetched", "on demand", "burned", "stale", "GC", "downgrade", "dir. expired", "vault expired"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let fate_rows = [
        t.minted,
        t.claimed_prefetch,
        t.claimed_on_demand,
        t.burned,
        t.wasted_stale,
        t.wasted_gc,
        t.wasted_trim,
        t.expired_directory,
        t.expired_vault,
    ];
    let fate_series: Vec<Series<'_>> = [("GOLD", GOLD), ("SILVER", SILVER), ("BRONZE", BRONZE)]
        .into_iter()
        .enumerate()
        .map(|(i, (name, colour))| Series { name, colour, values: fate_rows.iter().map(|row| row[i] as f64).collect() })
        .collect();
    charts.push(bars("coins", "Coins over the run, by fate", &fates, &fate_series));
    let c = &r.crypto_cost;
    let ops: Vec<String> =
        ["mint", "verify coin", "first send", "first receive"].iter().map(|s| s.to_string()).collect();
    let op_rows = [c.mint_s, c.verify_coin_s, c.first_send_s, c.first_receive_s];
    let op_series: Vec<Series<'_>> = [("GOLD", GOLD), ("SILVER", SILVER), ("BRONZE", BRONZE)]
        .into_iter()
        .enumerate()
        .map(|(i, (name, colour))| Series { name, colour, values: op_rows.iter().map(|row| row[i]).collect() })
        .collect();
    charts.push(bars("crypto", "Crypto CPU seconds over the run (modelled), by operation and tier", &ops, &op_series));

    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>AQM simulation: {} users × {} days</title><style>{STYLE}</style><script>{CHECK}</script></head><body>",
        num(u64::from(s.users)),
        s.days
    );
    let _ = write!(
        o,
        "<h1>AQM simulation: {} users × {} days</h1><p>Seed {}, {} contact sides ({} BESTIE + {} MATE relationships started per user, {:.0} % silent), {:.1} conversations per user per day of {:.1} messages on average, {:.0} % with strangers; <code>allow_classical</code> {}. Every rule is aqm-core's; crypto costs are modelled from measured per-operation figures (below).</p>",
        num(u64::from(s.users)),
        s.days,
        s.seed,
        num(t.contacts),
        s.besties,
        s.mates,
        s.dormant * 100.0,
        s.conversations_per_day,
        s.messages_per_conversation,
        s.stranger_share * 100.0,
        if s.allow_classical { "on" } else { "off" }
    );
    o.push_str("<h2>Summary</h2><table>");
    let rows: Vec<(&str, String)> = vec![
        ("messages delivered", num(t.messages)),
        ("KEM operations per message", format!("{:.4}", r.kem_per_message)),
        ("post-quantum messages", format!("{:.1} %", r.post_quantum_share * 100.0)),
        ("downward fallback (of chains opened)", format!("{:.2} %", r.fallback_rate * 100.0)),
        ("on-demand fetch (of chains opened)", format!("{:.2} %", r.on_demand_rate * 100.0)),
        (
            "chains opened with a last-resort coin",
            format!(
                "{} ({:.3} per 1000 chains, {:.4} per 1000 messages)",
                num(r.last_resort_chains),
                r.last_resort_per_1000_chains,
                r.last_resort_per_1000_messages
            ),
        ),
        ("not sent: no coin anywhere", num(t.failed)),
        (
            "directory peak hour",
            format!("{} requests ({:.1}/s)", num(r.directory_peak_hour_requests), r.directory_peak_per_second),
        ),
        (
            "crypto CPU per user per day (modelled)",
            format!("{:.1} ms", c.total_s() * 1000.0 / f64::from(s.users.max(1)) / f64::from(s.days.max(1))),
        ),
        ("garbage-collected contacts", num(t.gc_contacts_cleaned)),
        ("priority changes (up / down)", format!("{} / {}", num(t.upgrades), num(t.downgrades))),
    ];
    for (k, v) in rows {
        let _ = write!(o, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    o.push_str("</table><h2>Charts</h2>");
    for ch in charts {
        o.push_str(&ch);
    }
    let m = &r.cost_model;
    let _ = write!(
        o,
        "<h2>Cost model</h2><p class=\"note\">{}</p><table><tr><th>µs per operation</th><th>GOLD</th><th>SILVER</th><th>BRONZE</th></tr>",
        m.source
    );
    for (k, v) in [
        ("mint", m.mint_us),
        ("verify a claimed coin", m.verify_coin_us),
        ("first message, send", m.first_send_us),
        ("first message, receive", m.first_receive_us),
    ] {
        let _ = write!(o, "<tr><td>{k}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>", v[0], v[1], v[2]);
    }
    let _ = write!(
        o,
        "<tr><td>message on an open chain (send / receive)</td><td colspan=\"3\">{:.2} / {:.2}</td></tr></table>",
        m.chain_send_us, m.chain_receive_us
    );
    let sc = &r.scale;
    let _ = write!(
        o,
        "<p class=\"note\">Simulated in {:.1} s ({} messages/s), peak memory {:.0} MiB. Generated by <code>aqm-sim simulate</code>.</p></body></html>",
        sc.wall_seconds,
        num(sc.messages_per_second as u64),
        sc.peak_rss_mib
    );
    o
}
