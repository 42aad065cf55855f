//! Paired A/B timing for the sealing benches (`sealing_ab` here and in storage-redis, which
//! includes this file): every round runs an operation on the sealed store and then on the
//! unsealed one, alternating which goes first, so both halves of a pair see the same load.

use std::time::{Duration, Instant};

/// How many pairs: `AQM_AB_ROUNDS` (default `default`) under `cargo bench`, one when a test run
/// (`cargo test --benches`) only checks that the bench works.
pub fn rounds(default: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        std::env::var("AQM_AB_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
    } else {
        1
    }
}

/// Run `op` on `stores[0]` (sealed) and `stores[1]` (unsealed) `rounds` times each, alternating
/// the order; `op` does its own setup and returns the timed part ([`timed`]).
pub fn paired<S: ?Sized>(stores: [&S; 2], rounds: usize, mut op: impl FnMut(&S) -> Duration) -> [Vec<Duration>; 2] {
    let mut out = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for r in 0..rounds {
        for i in [r % 2, 1 - r % 2] {
            let d = op(stores[i]);
            out[i].push(d);
        }
    }
    out
}

/// How long `f` took.
pub fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    std::hint::black_box(f());
    t.elapsed()
}

/// The Markdown table of `rows` (name, [sealed, unsealed] durations): medians and the p90 ratio.
pub fn table(rows: Vec<(String, [Vec<Duration>; 2])>, rounds: usize) -> String {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let show =
        |d: Duration| if us(d) >= 1000.0 { format!("{:.2} ms", us(d) / 1e3) } else { format!("{:.1} µs", us(d)) };
    let mut out = String::from(
        "| Operation | Sealed, median | Unsealed, median | sealed ÷ unsealed, median | sealed ÷ unsealed, p90 |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (name, [mut s, mut u]) in rows {
        s.sort_unstable();
        u.sort_unstable();
        let (sm, um) = (s[s.len() / 2], u[u.len() / 2]);
        let (s9, u9) = (s[s.len() * 9 / 10], u[u.len() * 9 / 10]);
        out += &format!(
            "| `{name}` | {} | {} | {:.2}× | {:.2}× |\n",
            show(sm),
            show(um),
            us(sm) / us(um),
            us(s9) / us(u9)
        );
    }
    out += &format!("\n{rounds} pairs per operation, the order alternating.\n");
    out
}

/// Print `table` and, after a real run, write it to `<target dir>/aqm-ab/<name>.md` (read by
/// `scripts/figures.sh`). The target dir is found from this executable's path
/// (`<target>/release/deps/<bench>`).
pub fn report(name: &str, table: &str, rounds: usize) {
    print!("{table}");
    if rounds <= 1 {
        return;
    }
    let exe = std::env::current_exe().expect("bench executable path");
    let target = exe.ancestors().nth(3).expect("bench runs from <target>/<profile>/deps");
    let dir = target.join("aqm-ab");
    std::fs::create_dir_all(&dir).expect("create aqm-ab directory");
    std::fs::write(dir.join(format!("{name}.md")), table).expect("write the table");
    println!("(written to {})", dir.join(format!("{name}.md")).display());
}
