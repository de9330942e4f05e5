//! Real clients get time from `ntp-server`: chronyd (`-Q`, plain and NTS,
//! trusting the test CA), NTPsec's ntpdig (plain; it only talks to port 123,
//! so server and client share a network namespace of the test's own), and
//! our own `ntp-io`. Every peer runs without CAP_SYS_TIME.

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
    let mut last = String::new();
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
            assert!(v["offset"].as_f64().unwrap().abs() < 0.001, "{v}");
            return;
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

// ntpd-rs as a client of ntp-server is not tested here: its daemon exits at
// start-up without permission to steer the clock ("Insufficient permissions
// to interact with the clock"), and giving it that permission on a shared
// machine is not an option; Linux time namespaces do not cover CLOCK_REALTIME.
// ntpd-rs's server side is tested against our client (ntp-client's tests).
