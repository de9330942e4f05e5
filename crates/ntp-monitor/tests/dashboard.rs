//! `ntp-monitor demo` end to end, and its dashboard in a real headless
//! Chromium: the demo prints its URL, the page loads without script errors
//! (the page sets its title to "ntp-monitor: ready (N points, M alerts)"
//! once every chart is drawn, and to "ntp-monitor: error …" on any script
//! error), the charts render with data, and a screenshot is kept in
//! `target/test-artifacts/dashboard.png`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use ntp_test_support::{Guarded, free_port};

fn chromium() -> PathBuf {
    for c in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if Path::new(c).exists() {
            return c.into();
        }
    }
    panic!("chromium is not installed; scripts/test-all.sh installs it (apt-get install chromium)");
}

/// Runs headless Chromium on `url` with `extra` arguments, bounded in
/// time; returns stdout.
fn headless(profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1800",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let guard = Guarded(child);
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut guard = guard;
    loop {
        if guard.0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "chromium did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn demo_dashboard_renders_in_headless_chromium() {
    let chromium_bin = chromium();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--duration",
            "40",
            "--drift-period",
            "10",
        ])
        .arg("--database")
        .arg(dir.path().join("demo.sqlite"))
        .env("NTP_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Guarded(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("demo printed nothing");
    let url = format!("http://127.0.0.1:{port}/");
    assert!(first.contains(&url), "{first}");
    eprintln!("demo URL printed after {:?}", started.elapsed());

    // Wait until the drifter has crossed the threshold, so every chart and
    // the alert timeline have data: with a 10 s cycle it is off from about
    // 7 s to 10 s.
    let addr = ([127, 0, 0, 1], port).into();
    wait_for(
        Duration::from_secs(25),
        "a threshold alert",
        || {
            let alerts = http_get(addr, "/api/alerts").ok()?.1;
            alerts.contains("NTP_THRESHOLD_REACHED").then_some(())
        },
        || http_get(addr, "/health").map(|x| x.1).unwrap_or_default(),
    );

    let profile = dir.path().join("chromium-profile");
    let dom = headless(&profile, &url, &["--dump-dom"]);
    let title = dom
        .split_once("<title>")
        .and_then(|(_, t)| t.split_once("</title>"))
        .map(|(t, _)| t.to_string())
        .unwrap_or_default();
    assert!(
        title.starts_with("ntp-monitor: ready ("),
        "title {title:?}; dom: {}",
        &dom[..dom.len().min(2000)]
    );
    let points: u64 = title
        .trim_start_matches("ntp-monitor: ready (")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(points > 0, "{title}");
    assert!(
        !title.contains("(0 points") && !title.contains(" 0 alerts"),
        "{title}"
    );
    assert!(dom.matches("<canvas").count() >= 6, "charts missing");
    assert!(
        dom.contains("drifter") && dom.contains("Demo Lab A"),
        "source table missing"
    );
    let banner = dom
        .split_once("id=\"error\"")
        .and_then(|(_, rest)| rest.split_once("</div>"))
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    assert!(
        banner.ends_with('>') && banner.contains("hidden"),
        "error banner shown: {banner}"
    );

    // The other ranges load too (365 d: the same data in one-day-or-less
    // buckets, the x axis starting at the first check).
    let dom = headless(&profile, &format!("{url}?range=365d"), &["--dump-dom"]);
    assert!(
        dom.contains("<title>ntp-monitor: ready ("),
        "365d: {}",
        &dom[..dom.len().min(1000)]
    );
    assert!(
        dom.contains("class=\"on\" data-range=\"365d\"")
            || dom.contains("data-range=\"365d\" class=\"on\""),
        "365d button not selected"
    );

    // A custom range (UTC) from the URL: the last ten minutes.
    let now = ntp_monitor::timefmt::now().as_millis();
    let minute = |ms: u64| ntp_monitor::timefmt::rfc3339(ntp_policy::UnixMs(ms))[..16].to_string();
    let custom = format!(
        "{url}?range=custom&from={}&to={}",
        minute(now - 600_000),
        minute(now + 120_000)
    );
    let dom = headless(&profile, &custom, &["--dump-dom"]);
    assert!(
        dom.contains("<title>ntp-monitor: ready ("),
        "custom: {}",
        &dom[..dom.len().min(1000)]
    );
    assert!(
        !dom.contains("ready (0 points"),
        "custom range shows no data"
    );

    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &profile,
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot {} bytes",
        png.len()
    );
    eprintln!("screenshot: {} ({chromium_bin:?})", shot.display());
    drop(demo);
}
