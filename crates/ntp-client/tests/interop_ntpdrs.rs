//! `ntp-client query` against ntpd-rs (`cargo install ntpd`, built by
//! scripts/test-all.sh into the peers cache), started by the test on loopback
//! ports as an NTS server with no sources (so it serves the system clock at
//! local stratum 1 and never steers it; it also runs without CAP_SYS_TIME).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{
    Guarded, Pki, free_port, json_lines, ntp_client, peers_dir, without_clock_privilege,
};

struct NtpdRs {
    _daemon: Guarded,
    ntp_port: u16,
    ke_port: u16,
    pki: Pki,
    _dir: tempfile::TempDir,
}

fn start() -> NtpdRs {
    let daemon = peers_dir().join("ntpd-rs/bin/ntp-daemon");
    assert!(
        daemon.exists(),
        "{} is missing: scripts/test-all.sh builds ntpd-rs there (cargo install ntpd)",
        daemon.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(dir.path(), "ntpdrs");
    let (ntp_port, ke_port) = (free_port(), free_port());
    let conf = dir.path().join("ntp.toml");
    std::fs::write(
        &conf,
        format!(
            "[synchronization]\nlocal-stratum = 1\n\n\
             [[server]]\nlisten = \"127.0.0.1:{ntp_port}\"\n\n\
             [[nts-ke-server]]\nlisten = \"127.0.0.1:{ke_port}\"\n\
             certificate-chain-path = \"{cert}\"\nprivate-key-path = \"{key}\"\nntp-port = {ntp_port}\n\n\
             [keyset]\nkey-storage-path = \"{d}/keys\"\n",
            cert = pki.cert.display(),
            key = pki.key.display(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let child = without_clock_privilege(None, &daemon)
        .arg("-c")
        .arg(&conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", ke_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "ntpd-rs did not start: {}",
            std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    NtpdRs {
        _daemon: Guarded(child),
        ntp_port,
        ke_port,
        pki,
        _dir: dir,
    }
}

#[test]
fn nts_time_from_ntpd_rs_with_both_siv_algorithms() {
    let server = start();
    let ca = server.pki.ca.to_str().unwrap();
    let ke_port = server.ke_port.to_string();
    for (aead, expected) in [
        ("15", "AEAD_AES_SIV_CMAC_256 (15)"),
        ("17", "AEAD_AES_SIV_CMAC_512 (17)"),
    ] {
        // The NTP port comes from ntpd-rs's NTS-KE Port record.
        let out = ntp_client(&[
            "query",
            "--nts",
            "--aead",
            aead,
            "--ca",
            ca,
            "--ke-port",
            &ke_port,
            "--count",
            "3",
            "--interval",
            "0.2",
            "127.0.0.1",
        ]);
        assert!(
            out.status.success(),
            "AEAD {aead}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        for line in text.lines() {
            assert!(
                line.starts_with(&format!("127.0.0.1:{}", server.ntp_port)),
                "{line}"
            );
            assert!(line.contains(expected), "{line}");
            assert!(
                line.contains("refid 584e4f4e (XNON)"),
                "ntpd-rs's default reference id: {line}"
            );
            // A fresh cookie per reply keeps the jar full.
            assert!(line.contains("8 held"), "{line}");
        }
    }
    let out = ntp_client(&[
        "query",
        "--nts",
        "--ca",
        ca,
        "--ke-port",
        &ke_port,
        "--json",
        "127.0.0.1",
    ]);
    let s = &json_lines(&out)[0];
    assert_eq!(s["nts"], true);
    assert_eq!(s["stratum"], 1);
    assert!(s["offset"].as_f64().unwrap().abs() < 0.001, "{s}");
}

#[test]
fn plain_time_from_ntpd_rs() {
    let server = start();
    let out = ntp_client(&[
        "query",
        "--json",
        "--port",
        &server.ntp_port.to_string(),
        "127.0.0.1",
    ]);
    let s = &json_lines(&out)[0];
    assert_eq!(s["nts"], false);
    assert_eq!(s["stratum"], 1);
    assert_eq!(s["reference_id"], "584e4f4e");
    assert!(s["offset"].as_f64().unwrap().abs() < 0.001, "{s}");
}
