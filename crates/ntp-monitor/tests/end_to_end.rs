//! End to end against real chronyd servers on loopback: plain and NTS
//! sources, /health, /metrics and the API; a chronyd under libfaketime
//! pushed past the threshold and back (503 with NTP_THRESHOLD_REACHED, hold,
//! release, 200), alerts to a webhook and a command; the log holds every
//! check; export then verify, and verify after one edited byte; kill -9
//! during a run keeps the log intact and it continues after a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ntp_test_support::Chronyd;

fn write_config(dir: &Path, sources: &str, addr: std::net::SocketAddr, extra: &str) -> PathBuf {
    let text = format!(
        "{sources}\n[policy]\nmode = \"check-all\"\nmax-offset-ms = 100\nretries = 1\n\
         retry-interval-ms = 100\ninterval-s = 1\nhold-after = 2\nrelease-after = 2\nlease-s = 5\n\n\
         [monitor]\ndatabase = \"log.sqlite\"\nhttp-listen = \"{addr}\"\nretention-days = 30\n\
         query-timeout-ms = 500\n\n[export]\nsigning-key-path = \"export.key\"\n{extra}"
    );
    let path = dir.join("monitor.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn nts_source(name: &str, c: &Chronyd) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nmode = \"nts\"\naddress = \"127.0.0.1:{}\"\noperator = \"Lab {name}\"\n\
         certificate-authority = \"{}\"\n",
        c.ke_port,
        c.pki.ca.display()
    )
}

fn plain_source(name: &str, port: u16) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nmode = \"server\"\naddress = \"127.0.0.1:{port}\"\noperator = \"Lab {name}\"\n"
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every verdict round has at least one logged check per source, rounds
/// are consecutive, and check ids only grow. Returns (checks, verdicts).
fn check_log(db: &Path, sources: &[&str]) -> (i64, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let rounds: Vec<i64> = conn
        .prepare("SELECT round FROM verdicts ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!rounds.is_empty(), "no verdicts logged");
    for w in rounds.windows(2) {
        assert_eq!(w[1], w[0] + 1, "rounds not consecutive: {rounds:?}");
    }
    for &round in &rounds {
        for s in sources {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM checks WHERE round = ?1 AND source = ?2",
                    rusqlite::params![round, s],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(n >= 1, "round {round} has no check of {s}");
        }
    }
    let checks: i64 = conn
        .query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0))
        .unwrap();
    (checks, rounds.len() as i64)
}

/// Exports, verifies, edits one byte of a data row and verifies again.
fn export_and_verify(config: &Path, dir: &Path, expect_rows: i64) {
    let export = dir.join("export.csv");
    let (code, _, err) = run(&[
        "export",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "2000-01-01",
        "--format",
        "csv",
        "--output",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("exported {expect_rows} checks")),
        "{err}"
    );
    let (code, out, err) = run(&[
        "verify",
        "--config",
        config.to_str().unwrap(),
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("intact, {expect_rows} rows")),
        "{out}"
    );

    // The same range to standard output is the same bytes (Ed25519 is
    // deterministic), and an auditor verifies with the public key alone.
    let text = std::fs::read_to_string(&export).unwrap();
    let range_to = text
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let (code, stdout, err) = run(&[
        "export",
        "--config",
        config.to_str().unwrap(),
        "--from",
        "2000-01-01",
        "--to",
        &range_to,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, text);
    let public_key = text
        .lines()
        .nth(2)
        .unwrap()
        .trim_start_matches("# public-key ")
        .to_string();
    let (code, out, _) = run(&[
        "verify",
        "--public-key",
        &public_key,
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");

    // One byte of row 2's offset (or any field) changed.
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let row2 = lines[5];
    assert!(row2.starts_with("2,"), "{row2}");
    let pos = row2.find("127.0.0.1").unwrap(); // the address field
    let mut bytes = text.clone().into_bytes();
    let at = text.find(row2).unwrap() + pos;
    bytes[at] = b'8';
    let tampered = dir.join("tampered.csv");
    std::fs::write(&tampered, &bytes).unwrap();
    let (code, out, _) = run(&[
        "verify",
        "--config",
        config.to_str().unwrap(),
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("row 2 (line 6) was changed"), "{out}");

    // Row 3 removed.
    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 6)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&tampered, removed).unwrap();
    let (code, out, _) = run(&[
        "verify",
        "--config",
        config.to_str().unwrap(),
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("row 3 was removed"), "{out}");
}

#[test]
fn chronyd_plain_and_nts_sources_are_trusted() {
    let chrony = Chronyd::start();
    let dir = tempfile::tempdir().unwrap();
    let addr = free_http();
    let sources = format!(
        "{}{}",
        nts_source("nts", &chrony),
        plain_source("plain", chrony.ntp_port)
    );
    let config = write_config(dir.path(), &sources, addr, "");
    // A check from 400 days ago: retention-days = 30 prunes it at start.
    {
        let store = ntp_monitor::store::Store::open(&dir.path().join("log.sqlite")).unwrap();
        let old = ntp_monitor::timefmt::now().as_millis() - 400 * 86_400_000;
        store
            .insert_check(&ntp_monitor::store::CheckRecord {
                at_ms: old as i64,
                round: 1,
                attempt: 1,
                source: "nts".into(),
                operator: "Lab nts".into(),
                address: "old".into(),
                result: "pass".into(),
                passed: true,
                diagnostic: "ok".into(),
                ..Default::default()
            })
            .unwrap();
    }
    let (code, out, err) = run(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 sources"), "{out}");

    let m = Monitor::start(&config, addr, dir.path());
    let body = wait_for(
        Duration::from_secs(15),
        "/health 200",
        || match m.get("/health") {
            (200, body) => Some(body),
            _ => None,
        },
        || format!("{:?}\n{}", m.get("/health"), m.log_text()),
    );
    let h = json(&body);
    assert_eq!(h["verdict"], "TRUSTED");
    assert_eq!(h["healthy"], true);
    assert!(h["valid_until"].as_str().unwrap().ends_with('Z'));

    let (status, metrics) = m.get("/metrics");
    assert_eq!(status, 200);
    for want in [
        "ntp_monitor_verdict{state=\"TRUSTED\"} 1",
        "ntp_monitor_healthy 1",
        "ntp_monitor_source_offset_seconds{source=\"nts\"",
        "ntp_monitor_source_delay_seconds{source=\"plain\"",
        "ntp_monitor_source_jitter_seconds{source=\"nts\"",
        "ntp_monitor_source_nts{source=\"nts\",operator=\"Lab nts\"} 1",
        "ntp_monitor_source_nts{source=\"plain\",operator=\"Lab plain\"} 0",
        "ntp_monitor_source_reachable{source=\"plain\",operator=\"Lab plain\"} 1",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }

    let (status, body) = m.get("/api/status");
    assert_eq!(status, 200);
    let st = json(&body);
    let nts = &st["sources"][0];
    assert_eq!(nts["name"], "nts");
    assert_eq!(nts["last_sample"]["nts"], true);
    assert_eq!(nts["last_sample"]["stratum"], 1);
    assert!(nts["last_sample"]["offset_s"].as_f64().unwrap().abs() < 0.05);
    let (_, body) = m.get("/api/series?points=100");
    assert!(!json(&body)["points"].as_array().unwrap().is_empty());
    let (_, body) = m.get("/api/verdicts");
    assert_eq!(
        json(&body)["verdicts"].as_array().unwrap().last().unwrap()["state"],
        "TRUSTED"
    );
    let (_, body) = m.get("/api/checks?limit=3");
    assert_eq!(json(&body)["checks"].as_array().unwrap().len(), 3);
    assert_eq!(m.get("/nope").0, 404);
    assert!(m.get("/").1.contains("uPlot"));

    let status = m.terminate();
    assert!(status.success(), "{status}");
    let (checks, _) = check_log(&dir.path().join("log.sqlite"), &["nts", "plain"]);
    let conn = rusqlite::Connection::open(dir.path().join("log.sqlite")).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM checks WHERE address = 'old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0, "the 400-day-old check was not pruned");
    let first_round: i64 = conn
        .query_row("SELECT MIN(round) FROM checks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first_round, 2, "rounds continue after the logged ones");
    export_and_verify(&config, dir.path(), checks);
}

/// Collects the bodies POSTed to it.
fn webhook_listener() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        g.lock().unwrap().push(body.to_string());
                        break;
                    }
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (addr, got)
}

#[test]
fn faketime_source_past_threshold_holds_then_releases() {
    let chrony = Chronyd::start();
    let fake = FakeChronyd::start("+0");
    let dir = tempfile::tempdir().unwrap();
    let addr = free_http();
    let (hook, hooked) = webhook_listener();
    let command = dir.path().join("page-oncall");
    let paged = dir.path().join("paged.jsonl");
    std::fs::write(
        &command,
        format!("#!/bin/sh\ncat >> '{}'\n", paged.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&command, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sources = format!(
        "{}{}",
        nts_source("ref", &chrony),
        plain_source("faked", fake.ntp_port)
    );
    let extra = format!(
        "\n[alerts]\nwebhook = \"http://{hook}/hook\"\ncommand = \"{}\"\ntimeout-ms = 3000\n",
        command.display()
    );
    let config = write_config(dir.path(), &sources, addr, &extra);
    let m = Monitor::start(&config, addr, dir.path());
    let health = |want: u16, needle: &'static str| {
        wait_for(
            Duration::from_secs(15),
            needle,
            || match m.get("/health") {
                (s, body) if s == want && body.contains(needle) => Some(body),
                _ => None,
            },
            || format!("{:?}\n{}", m.get("/health"), m.log_text()),
        )
    };
    health(200, "\"TRUSTED\"");

    // libfaketime: +0.3 s on chronyd's clock reads as about +0.15 s here.
    fake.set_offset("+0.3");
    let body = health(503, "NTP_THRESHOLD_REACHED");
    let h = json(&body);
    assert_eq!(h["healthy"], false);
    assert!(
        h["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "offset-exceeded" && r["source"] == "faked"),
        "{body}"
    );
    let body = health(503, "HOLD_ENTERED");
    assert_eq!(json(&body)["verdict"], "UNTRUSTED");
    let (_, metrics) = m.get("/metrics");
    assert!(metrics.contains("ntp_monitor_healthy 0"), "{metrics}");
    assert!(
        metrics.contains("ntp_monitor_alerts_total{kind=\"NTP_THRESHOLD_REACHED\"} 1"),
        "{metrics}"
    );

    fake.set_offset("+0");
    health(200, "\"TRUSTED\"");
    let (_, body) = m.get("/api/alerts");
    let kinds: Vec<String> = json(&body)["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    for k in ["NTP_THRESHOLD_REACHED", "HOLD_ENTERED", "HOLD_RELEASED"] {
        assert!(kinds.iter().any(|x| x == k), "{k} not in {kinds:?}");
    }
    let (_, body) = m.get("/api/verdicts");
    let states: Vec<String> = json(&body)["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap().to_string())
        .collect();
    assert!(
        states
            .windows(3)
            .any(|w| w == ["DEGRADED", "UNTRUSTED", "TRUSTED"]),
        "{states:?}"
    );

    // The webhook and the command got the alerts as JSON.
    wait_for(
        Duration::from_secs(5),
        "alerts delivered",
        || {
            let hooks = hooked.lock().unwrap().clone();
            let paged = std::fs::read_to_string(&paged).unwrap_or_default();
            (hooks.iter().any(|b| b.contains("HOLD_RELEASED")) && paged.contains("HOLD_RELEASED"))
                .then_some(())
        },
        || {
            format!(
                "{:?} / {}",
                hooked.lock().unwrap(),
                std::fs::read_to_string(&paged).unwrap_or_default()
            )
        },
    );
    let first = hooked.lock().unwrap()[0].clone();
    let a = json(&first);
    assert_eq!(a["kind"], "NTP_THRESHOLD_REACHED");
    assert_eq!(a["source"], "faked");
    assert!(a["figures"]["offset_s"].as_f64().unwrap() > 0.1);

    assert!(m.terminate().success());
    let db = dir.path().join("log.sqlite");
    let (checks, _) = check_log(&db, &["ref", "faked"]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let failed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM checks WHERE source = 'faked' AND result = 'offset-exceeded' AND offset_s > 0.1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failed >= 2, "{failed}");
    export_and_verify(&config, dir.path(), checks);

    // The alerts and the verdicts export and verify the same way.
    for what in ["alerts", "verdicts"] {
        let out = dir.path().join(format!("{what}.csv"));
        let (code, _, err) = run(&[
            "export",
            "--config",
            config.to_str().unwrap(),
            "--what",
            what,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let needle = if what == "alerts" {
            "HOLD_RELEASED"
        } else {
            "UNTRUSTED"
        };
        assert!(text.contains(needle), "{text}");
        let (code, out_text, _) = run(&[
            "verify",
            "--config",
            config.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out_text}");
    }
}

#[test]
fn kill_9_loses_no_committed_check_and_the_log_continues() {
    let fake = FakeChronyd::start("+0");
    let dir = tempfile::tempdir().unwrap();
    let addr = free_http();
    let config = write_config(dir.path(), &plain_source("local", fake.ntp_port), addr, "");
    let m = Monitor::start(&config, addr, dir.path());
    // Wait for a few rounds, note the newest committed check, kill -9.
    let last_id = wait_for(
        Duration::from_secs(15),
        "three rounds",
        || {
            let (_, body) = m.get("/api/checks?limit=1");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let c = v["checks"].get(0)?.clone();
            (c["round"].as_i64()? >= 3).then(|| c["id"].as_i64().unwrap())
        },
        || m.log_text(),
    );
    m.kill9();
    let db = dir.path().join("log.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let (max_id, max_round): (i64, i64) = conn
        .query_row("SELECT MAX(id), MAX(round) FROM checks", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        max_id >= last_id,
        "check {last_id} was committed, the log ends at {max_id}"
    );
    let present: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM checks WHERE id <= ?1",
            [last_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(present, last_id, "committed checks missing");
    drop(conn);

    // Restart: the log continues with new rounds after the old ones.
    let m = Monitor::start(&config, addr, dir.path());
    wait_for(
        Duration::from_secs(15),
        "rounds after the restart",
        || {
            let (_, body) = m.get("/api/checks?limit=1");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v["checks"][0]["round"].as_i64()? >= max_round + 2).then_some(())
        },
        || m.log_text(),
    );
    assert!(m.terminate().success());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let rounds: Vec<i64> = conn
        .prepare("SELECT DISTINCT round FROM checks ORDER BY round")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rounds,
        (1..=*rounds.last().unwrap()).collect::<Vec<_>>(),
        "round numbers skip"
    );
    let checks: i64 = conn
        .query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0))
        .unwrap();
    assert!(checks > max_id);
    export_and_verify(&config, dir.path(), checks);
}

#[test]
fn a_log_that_cannot_be_written_is_a_503() {
    let fake = FakeChronyd::start("+0");
    let dir = tempfile::tempdir().unwrap();
    let addr = free_http();
    let config = write_config(dir.path(), &plain_source("local", fake.ntp_port), addr, "");
    let m = Monitor::start(&config, addr, dir.path());
    let health = |want: u16, needle: &'static str| {
        wait_for(
            Duration::from_secs(15),
            needle,
            || match m.get("/health") {
                (s, body) if s == want && body.contains(needle) => Some(body),
                _ => None,
            },
            || format!("{:?}\n{}", m.get("/health"), m.log_text()),
        )
    };
    health(200, "\"TRUSTED\"");
    // Every insert into the log now fails, as on a full disk.
    let conn = rusqlite::Connection::open(dir.path().join("log.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON checks BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let body = health(503, "log-write-failed");
    assert!(body.contains("disk full"), "{body}");
    let (_, metrics) = m.get("/metrics");
    assert!(
        !metrics.contains("ntp_monitor_log_write_errors_total 0"),
        "{metrics}"
    );
    conn.execute_batch("DROP TRIGGER full;").unwrap();
    health(200, "\"TRUSTED\"");
    assert!(m.terminate().success());
}
