//! Runs `aqm-sim simulate` end to end: the same seed gives the same report, bad settings get a
//! clear error, and the HTML report renders in headless Chromium with every chart drawn and no
//! console error.
//!
//! The Chromium test needs Debian's `chromium` package (scripts/test.sh installs it and sets
//! `AQM_REQUIRE_CHROMIUM=1`, so there a missing browser fails); elsewhere it is skipped with a
//! note when no browser is found.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aqm-sim")).arg("simulate").args(args).output().expect("run aqm-sim")
}

fn json(seed: &str, dir: &Path) -> serde_json::Value {
    let html = dir.join(format!("r{seed}.html"));
    let o = simulate(&["--users", "300", "--days", "4", "--seed", seed, "--json", "--html", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    // Run time and memory vary; everything else is fixed by the seed.
    v.as_object_mut().unwrap().remove("scale");
    v
}

#[test]
fn the_same_seed_gives_the_same_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let a = json("7", dir.path());
    assert_eq!(a, json("7", dir.path()));
    assert_ne!(a, json("8", dir.path()));
    let t = &a["totals"];
    assert!(t["messages"].as_u64().unwrap() > 1000, "{t}");
    assert_eq!(a["days"].as_array().unwrap().len(), 4);
    assert_eq!(a["hours"].as_array().unwrap().len(), 4 * 24);
    assert_eq!(t["vault_misses"], 0);
}

#[test]
fn the_table_names_every_measure() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let o = simulate(&["--users", "200", "--days", "2", "--html", html.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    for line in [
        "KEM operations per message",
        "post-quantum messages",
        "downward fallback",
        "on-demand fetch",
        "coins minted",
        "wasted: stale in inventory",
        "expired unopened in vaults",
        "device storage (cached coins)",
        "directory load",
        "crypto CPU (modelled)",
        "cost model",
        "peak memory",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(!out.contains('\u{1b}'), "colour codes in non-terminal output");
    assert!(html.exists());
}

#[test]
fn bad_settings_are_refused_with_what_to_do() {
    let o = simulate(&["--users", "1", "--no-html"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--users must be at least 2"));
    let o = simulate(&["--strangers", "2", "--no-html"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--strangers must be between 0 and 1"));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let ok = Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
        ok.then(|| PathBuf::from(name))
    })
}

/// Headless Chromium's view of a page: the `<body …>` tag after the page's scripts ran.
fn body_after_load(browser: &Path, page: &Path) -> String {
    let o = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    let start = dom.find("<body").expect("a body in the DOM");
    dom[start..start + dom[start..].find('>').unwrap() + 1].to_string()
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("AQM_REQUIRE_CHROMIUM").is_none(),
            "AQM_REQUIRE_CHROMIUM is set but no chromium found"
        );
        eprintln!("SKIPPED: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let o = simulate(&["--users", "500", "--days", "5", "--html", page.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the report must load nothing from the network");

    let body = body_after_load(&browser, &page);
    assert!(body.contains(r#"data-check="ok""#), "{body}");
    assert!(body.contains(r#"data-errors="0""#) && body.contains(r#"data-empty="""#), "{body}");
    assert!(body.contains(r#"data-charts="8""#), "{body}");

    let shot = dir.path().join("report.png");
    let o = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=820,2900"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // A blank page of this size compresses to a few KiB; charts and tables make it far larger.
    assert!(png.len() > 50_000, "screenshot of {} bytes looks empty", png.len());

    // The page's check can fail: an empty chart and a console error are both caught.
    let broken = dir.path().join("broken.html");
    let html = html.replacen(r#"class="mark""#, r#"class="x""#, usize::MAX).replacen(
        "</body>",
        "<script>console.error('boom')</script></body>",
        1,
    );
    std::fs::write(&broken, html).unwrap();
    let body = body_after_load(&browser, &broken);
    assert!(body.contains(r#"data-check="fail""#) && body.contains(r#"data-errors="1""#), "{body}");
    assert!(body.contains(r#"data-empty="messages,"#), "{body}");
}
