//! Operating the server: `check-config`, certificate reload on SIGHUP,
//! graceful shutdown with cookies that survive a restart, and the metrics
//! endpoint.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Extra, Pki, Server, block_on};

fn check_config(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ntp-server"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const DOCS_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ntp-server.toml");

// ---------------------------------------------------------------------------
// 7. check-config

#[test]
fn check_config_accepts_the_documented_example() {
    // The example names files under /etc and /var/lib; point them at real
    // ones, change nothing else.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(dir.path(), "docs");
    let example = std::fs::read_to_string(DOCS_CONFIG).unwrap();
    let keys = dir.path().join("nts-keys");
    let replaced = example
        .replace(
            "/etc/ntp-server/tls/fullchain.pem",
            &pki.cert.display().to_string(),
        )
        .replace(
            "/etc/ntp-server/tls/privkey.pem",
            &pki.key.display().to_string(),
        )
        .replace("/var/lib/ntp-server/nts-keys", &keys.display().to_string());
    assert_ne!(replaced, example);
    let file = dir.path().join("ntp-server.toml");
    std::fs::write(&file, replaced).unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("OK"), "{}", text(&out));
    // Checking creates nothing.
    assert!(!keys.exists());

    // As shipped, the only complaints are the files that do not exist here.
    let out = check_config(Path::new(DOCS_CONFIG));
    for line in text(&out).lines().filter(|l| l.starts_with("error")) {
        assert!(
            line.contains("/etc/ntp-server/") || line.contains("/var/lib/ntp-server/"),
            "{line}"
        );
    }
}

#[test]
fn check_config_names_a_misspelled_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "# comment\n[[server]]\nlisten = \"127.0.0.1:123\"\n\n\
         rate-limiting-cache-size = 10\nrate-limit-cutoff-ms = 5\n",
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rate-limit-cutoff-ms"), "{stderr}");
    assert!(stderr.contains(":6:"), "{stderr}");

    // The same mistake in another table, on another line.
    std::fs::write(
        &file,
        "[[server]]\nlisten = \"127.0.0.1:123\"\n\n[observability]\nlog-levle = \"info\"\n",
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log-levle") && stderr.contains(":5:"),
        "{stderr}"
    );
}

#[test]
fn check_config_warns_about_ntpd_rs_only_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ntpd-rs.toml");
    std::fs::write(
        &file,
        "[[server]]\nlisten = \"127.0.0.1:123\"\n\n\
         [observability]\nobservation-path = \"/run/ntpd-rs/observe\"\n",
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning"))
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert!(warning.contains("observation-path"), "{warning}");
    assert!(warning.contains(":5:"), "{warning}");
}

// ---------------------------------------------------------------------------
// 8. SIGHUP certificate reload

fn nts_query(server: &Server, ca: &Path) -> Result<ntp_io::Measurement, ntp_io::QueryError> {
    let mut options = server.options(true);
    options.ca_file = Some(ca.to_path_buf());
    block_on(ntp_io::query("localhost", &options))
}

fn plain_works(server: &Server) {
    let m = block_on(ntp_io::query("127.0.0.1", &server.options(false))).unwrap();
    assert_eq!(m.stratum, 1);
}

/// Retries `f` until it returns true or `limit` passes.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_on_a_broken_file() {
    let mut server = Server::start(Extra::default());
    let ca1 = server.pki.ca.clone();
    nts_query(&server, &ca1).unwrap();
    plain_works(&server);

    let other = tempfile::tempdir().unwrap();
    let pki2 = Pki::create(other.path(), "second");
    std::fs::copy(&pki2.cert, &server.pki.cert).unwrap();
    std::fs::copy(&pki2.key, &server.pki.key).unwrap();
    // Nothing changes until the signal.
    nts_query(&server, &ca1).unwrap();
    server.signal("HUP");
    assert!(
        within(Duration::from_secs(2), || nts_query(&server, &pki2.ca)
            .is_ok()),
        "CA2 not served after SIGHUP:\n{}",
        server.log()
    );
    match nts_query(&server, &ca1) {
        Err(ntp_io::QueryError::KeyExchange(ntp_io::KeError::BadCertificate { .. })) => {}
        other => panic!("CA1 after the reload: {other:?}"),
    }
    plain_works(&server);
    assert!(server.alive());

    // A broken certificate file: the reload fails, the old one stays.
    std::fs::write(
        &server.pki.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    server.signal("HUP");
    assert!(
        within(Duration::from_secs(2), || server
            .log()
            .contains("certificate reload failed")),
        "no error logged:\n{}",
        server.log()
    );
    let error_line = server
        .log()
        .lines()
        .find(|l| l.contains("certificate reload failed"))
        .unwrap()
        .to_string();
    assert!(error_line.contains("ERROR"), "{error_line}");
    nts_query(&server, &pki2.ca).unwrap();
    plain_works(&server);
    assert!(server.alive());
}

// ---------------------------------------------------------------------------
// 9. Graceful shutdown

#[test]
fn sigterm_exits_cleanly_and_cookies_survive_a_restart() {
    let mut server = Server::start(Extra::default());
    let key_file = server.dir.path().join("keys");
    block_on(async {
        let mut client = ntp_io::QueryClient::connect("localhost", server.options(true))
            .await
            .unwrap();
        client.sample().await.unwrap();
        let cookies = client.cookies().unwrap();
        assert_eq!(cookies, 8);

        let (status, took) = server
            .terminate(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("still running 2 s after SIGTERM:\n{}", server.log()));
        assert!(status.success(), "{status:?}\n{}", server.log());
        eprintln!("stopped in {took:?}");
        assert!(server.log().contains("shutting down"), "{}", server.log());

        let meta = std::fs::metadata(&key_file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);

        server.restart();
        // The same client, the cookies issued before the restart.
        for _ in 0..3 {
            let m = client.sample().await.unwrap();
            assert!(m.nts.is_some());
        }
        assert_eq!(server.metric("ntp_server_nts_ke_handshakes_total"), 0);
        assert_eq!(server.metric("ntp_server_responses_total{kind=\"nts\"}"), 3);
        assert_eq!(
            server.metric("ntp_server_responses_total{kind=\"nts_nak\"}"),
            0
        );
    });
}

// ---------------------------------------------------------------------------
// 10. Metrics endpoint

#[test]
fn metrics_endpoint_serves_counters_that_move() {
    let server = Server::start(Extra::default());
    let (status, before) = server.http("GET", "/metrics");
    assert_eq!(status, 200);
    for family in [
        "ntp_server_requests_received_total",
        "ntp_server_responses_total",
        "ntp_server_requests_dropped_total",
        "ntp_server_nts_ke_handshakes_total",
        "ntp_server_nts_ke_failures_total",
    ] {
        assert!(
            before.contains(&format!("# TYPE {family} counter\n")),
            "{family} in\n{before}"
        );
    }
    assert!(
        before.contains("ntp_server_requests_received_total 0\n"),
        "{before}"
    );

    block_on(ntp_io::query("127.0.0.1", &server.options(false))).unwrap();
    block_on(ntp_io::query("localhost", &server.options(true))).unwrap();
    common::raw_exchange(server.ntp_addr(), &[0u8; 7], Duration::from_millis(100));

    let (_, after) = server.http("GET", "/metrics");
    for line in [
        "ntp_server_requests_received_total 3",
        "ntp_server_responses_total{kind=\"plain\"} 1",
        "ntp_server_responses_total{kind=\"nts\"} 1",
        "ntp_server_requests_dropped_total{reason=\"malformed\"} 1",
        "ntp_server_nts_ke_handshakes_total 1",
    ] {
        assert!(after.lines().any(|l| l == line), "{line} in\n{after}");
    }

    let (status, body) = server.http("GET", "/other");
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("ntp_server"));
    let (status, _) = server.http("POST", "/metrics");
    assert_eq!(status, 405);
}
