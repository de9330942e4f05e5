//! Real clients get time from `ntp-server`: chronyd (`-Q`, plain and NTS,
//! trusting the test CA), NTPsec's ntpdig (plain; it only talks to port 123,
//! so server and client share a network namespace of the test's own), and
//! our own `ntp-io`, and ntpd-rs (plain and NTS, its clock calls caught by
//! the test support's clock shim). Every peer runs without CAP_SYS_TIME.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Extra, Server, block_on, chronyd_binary, without_clock_privilege};

/// Runs `chronyd -Q` with `conf` and returns the offset it printed.
fn chronyd_q(server: &Server, conf: &str) -> f64 {
    let path = server.dir.path().join("chrony-q.conf");
    std::fs::write(&path, conf).unwrap();
    let mut cmd = without_clock_privilege(None, &chronyd_binary());
    cmd.args(["-Q", "-t", "20", "-f"]).arg(&path);
    if common::is_root() {
        cmd.args(["-u", "root"]);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let offset = text
        .lines()
        .find_map(|l| l.split("System clock wrong by ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    offset.unwrap_or_else(|| {
        panic!(
            "chronyd -Q printed no offset:\n{text}\nserver log:\n{}",
            server.log()
        )
    })
}

#[test]
fn chronyd_gets_plain_time() {
    let server = Server::start(Extra::default());
    let offset = chronyd_q(
        &server,
        &format!(
            "server 127.0.0.1 port {} iburst maxsamples 4\n",
            server.ntp_port
        ),
    );
    assert!(offset.abs() < 0.001, "offset {offset}");
    let plain = server.metric("ntp_server_responses_total{kind=\"plain\"}");
    assert!(plain >= 1, "{}", server.metrics());
}

#[test]
fn chronyd_gets_nts_time() {
    let server = Server::start(Extra::default());
    let conf = format!(
        "server 127.0.0.1 port {ntp} iburst nts ntsport {ke} maxsamples 4\nntstrustedcerts {ca}\n",
        ntp = server.ntp_port,
        ke = server.ke_port,
        ca = server.pki.ca.display(),
    );
    let offset = chronyd_q(&server, &conf);
    assert!(offset.abs() < 0.001, "offset {offset}");
    // chrony really used NTS: a key exchange, then authenticated replies.
    assert_eq!(server.metric("ntp_server_nts_ke_handshakes_total"), 1);
    let nts = server.metric("ntp_server_responses_total{kind=\"nts\"}");
    assert!(nts >= 1, "{}", server.metrics());
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"plain\"}"),
        0
    );
}

#[test]
fn ntp_io_gets_plain_and_nts_time() {
    let server = Server::start(Extra::default());
    for nts in [false, true] {
        let m = block_on(ntp_io::query("127.0.0.1", &server.options(nts))).unwrap();
        assert_eq!(m.stratum, 1);
        assert_eq!(m.reference_id.as_ascii(), Some("XNON"));
        assert!(m.offset.abs() < 0.001, "{m:?}");
        assert_eq!(m.nts.is_some(), nts);
    }
    // Several samples over one NTS session keep the cookie jar full.
    block_on(async {
        let mut client = ntp_io::QueryClient::connect("localhost", server.options(true))
            .await
            .unwrap();
        for _ in 0..10 {
            let m = client.sample().await.unwrap();
            assert_eq!(m.nts.unwrap().cookies_held, 8);
        }
    });
}

#[test]
fn ntpdig_gets_plain_time() {
    let net = common::NetnsPair::create("dig");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ntp-server.toml");
    std::fs::write(
        &config,
        "[synchronization]\nlocal-stratum = 1\n\n[[server]]\nlisten = \"127.0.0.1:123\"\nworkers = 1\n",
    )
    .unwrap();
    let _server = common::Guarded(
        Command::new("ip")
            .args(["netns", "exec", &net.host])
            .arg(env!("CARGO_BIN_EXE_ntp-server"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // ntpdig retries within its own timeout; give the server a moment.
    // ntpdig is Python and stamps T1 and T4 in user space, so on a busy
    // machine one exchange can be off by a scheduling stall (CI once saw
    // -1.7 ms on loopback): the best of up to five answers must be within
    // 1 ms, every answer within 50 ms.
    let mut last = String::new();
    let mut offsets = Vec::new();
    for _ in 0..20 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.host,
                "ntpdig",
                "-j",
                "-t",
                "1",
                "127.0.0.1",
            ])
            .output()
            .unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["stratum"], 1, "{v}");
            let offset = v["offset"].as_f64().unwrap().abs();
            assert!(offset < 0.05, "{v}");
            offsets.push(offset);
            if offset < 0.001 {
                return;
            }
            if offsets.len() == 5 {
                panic!("ntpdig's best offset of five is over 1 ms: {offsets:?}");
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("ntpdig got no time: {last}");
}

#[test]
fn ntpsec_gets_nts_time() {
    // NTPsec binds port 123 itself, so our server runs in the "upstream"
    // namespace on 123/4460 and NTPsec in the "host" namespace beside it.
    let ntpd = common::peers_dir().join("ntpsec/usr/sbin/ntpd");
    assert!(
        ntpd.exists(),
        "{} is missing: scripts/test-all.sh unpacks NTPsec there",
        ntpd.display()
    );
    let net = common::NetnsPair::create("secc");
    let dir = tempfile::tempdir().unwrap();
    let up: std::net::IpAddr = net.upstream_addr.parse().unwrap();
    let pki = common::Pki::create_for(dir.path(), "srv", &[up]);

    let config = dir.path().join("ntp-server.toml");
    std::fs::write(
        &config,
        format!(
            "[synchronization]\nlocal-stratum = 1\n\n\
             [[server]]\nlisten = \"{up}:123\"\nworkers = 1\n\n\
             [[nts-ke-server]]\nlisten = \"{up}:4460\"\ncertificate-chain-path = \"{cert}\"\nprivate-key-path = \"{key}\"\n",
            cert = pki.cert.display(),
            key = pki.key.display(),
        ),
    )
    .unwrap();
    let server_log = dir.path().join("server.log");
    let _server = common::Guarded(
        Command::new("ip")
            .args(["netns", "exec", &net.upstream])
            .arg(env!("CARGO_BIN_EXE_ntp-server"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&server_log).unwrap())
            .spawn()
            .unwrap(),
    );

    let stats = dir.path().join("stats");
    std::fs::create_dir(&stats).unwrap();
    let conf = dir.path().join("ntp.conf");
    std::fs::write(
        &conf,
        format!(
            "server {up} nts iburst minpoll 3 maxpoll 3\nnts ca {ca}\n\
             statsdir {stats}/\nstatistics peerstats\nfilegen peerstats file peerstats type none enable\n\
             disable kernel\n",
            ca = pki.ca.display(),
            stats = stats.display(),
        ),
    )
    .unwrap();
    let log = dir.path().join("ntpd.log");
    let _ntpsec = common::Guarded(
        without_clock_privilege(Some(&net.host), &ntpd)
            .arg("-n")
            .arg("-c")
            .arg(&conf)
            .arg("-l")
            .arg(&log)
            .arg("-p")
            .arg(dir.path().join("ntpd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // NTPsec logs the NTS-KE result, then records every NTS-verified reply
    // from our server in peerstats.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let peerstats = std::fs::read_to_string(stats.join("peerstats")).unwrap_or_default();
        let samples = peerstats
            .lines()
            .filter(|l| l.contains(&net.upstream_addr))
            .count();
        if text.contains("NTSc: Got 8 cookies") && samples >= 2 {
            assert!(text.contains("aead=15"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "NTPsec did not get NTS time from ntp-server.\nntpd log:\n{text}\npeerstats:\n{peerstats}\nserver log:\n{}",
            std::fs::read_to_string(&server_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// ntpd-rs (`ntp-daemon`, built by scripts/test-all.sh) as a client of
/// `server`, with the one source `source` (a `[[source]]` table). ntpd-rs has
/// no observe-only mode and exits at start-up when it may not steer the
/// clock, so it runs with the test support's clock shim preloaded (its clock
/// changes succeed without reaching the kernel and are logged) and without
/// CAP_SYS_TIME (the kernel would refuse any it made past the shim).
/// Returns once ntpd-rs reports itself synchronised to the server; panics
/// with both logs if that does not happen in 20 s.
fn ntpd_rs_syncs(server: &Server, source: &str) {
    let bin = common::peers_dir().join("ntpd-rs/bin");
    assert!(
        bin.join("ntp-daemon").exists(),
        "{} is missing: scripts/test-all.sh builds ntpd-rs there (cargo install ntpd)",
        bin.display()
    );
    let dir = server.dir.path();
    let conf = dir.join("ntpd-rs.toml");
    std::fs::write(
        &conf,
        format!(
            "[observability]\nobservation-path = \"{d}/ntpd-rs.sock\"\n\n\
             [synchronization]\nminimum-agreeing-sources = 1\n\n\
             [source-defaults]\npoll-interval-limits = {{ min = 0, max = 2 }}\ninitial-poll-interval = 0\n\n\
             {source}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let shim_log = dir.join("clock-shim.log");
    let log = std::fs::File::create(dir.join("ntpd-rs.log")).unwrap();
    let _daemon = common::Guarded(
        without_clock_privilege(None, &bin.join("ntp-daemon"))
            .arg("-c")
            .arg(&conf)
            .env("LD_PRELOAD", common::clock_shim())
            .env("CLOCK_SHIM_LOG", &shim_log)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(bin.join("ntp-ctl"))
            .args(["status", "-f", "prometheus", "-c"])
            .arg(&conf)
            .output()
            .unwrap();
        let last = String::from_utf8_lossy(&out.stdout);
        let metric = |name: &str| {
            last.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        // Synchronised to us: stratum one below the server's, leap bits
        // cleared, the source answering every poll and agreeing with the
        // system clock (the server serves it).
        if metric("ntp_system_stratum") == Some(2.0)
            && metric("ntp_system_leap_indicator") == Some(0.0)
            && metric("ntp_source_unanswered_polls{") == Some(0.0)
            && metric("ntp_source_offset_seconds{").is_some_and(|o| o.abs() < 0.001)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ntpd-rs did not synchronise to ntp-server in 20 s.\nntp-ctl status:\n{last}\nntpd-rs log:\n{}\nserver log:\n{}",
            std::fs::read_to_string(dir.join("ntpd-rs.log")).unwrap_or_default(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // ntpd-rs acted on our time: it told the (shimmed) kernel clock that it
    // is synchronised (ADJ_STATUS without STA_UNSYNC, 0x40).
    let changes = std::fs::read_to_string(&shim_log).unwrap_or_default();
    let declared_synced = changes.lines().any(|l| {
        l.contains("modes=0x10 ")
            && l.rsplit("status=")
                .next()
                .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
                .is_some_and(|status| status & 0x40 == 0)
    });
    assert!(
        declared_synced,
        "ntpd-rs never cleared STA_UNSYNC; clock calls:\n{changes}"
    );
}

#[test]
fn ntpd_rs_gets_plain_time() {
    let server = Server::start(Extra::default());
    ntpd_rs_syncs(
        &server,
        &format!(
            "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1:{}\"\n",
            server.ntp_port
        ),
    );
    assert!(server.metric("ntp_server_responses_total{kind=\"plain\"}") >= 1);
}

#[test]
fn ntpd_rs_gets_nts_time() {
    let server = Server::start(Extra::default());
    ntpd_rs_syncs(
        &server,
        &format!(
            "[[source]]\nmode = \"nts\"\naddress = \"localhost:{}\"\ncertificate-authority = \"{}\"\n",
            server.ke_port,
            server.pki.ca.display()
        ),
    );
    // ntpd-rs used NTS all the way: a key exchange, authenticated replies
    // and not one plain request.
    assert!(server.metric("ntp_server_nts_ke_handshakes_total") >= 1);
    assert!(server.metric("ntp_server_responses_total{kind=\"nts\"}") >= 1);
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"plain\"}"),
        0
    );
}
