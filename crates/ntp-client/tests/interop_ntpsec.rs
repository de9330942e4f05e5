//! `ntp-client query` against NTPsec's ntpd (Debian's package, unpacked by
//! scripts/test-all.sh), which insists on ports 123 and 4460: it runs in a
//! network namespace of the test's own, synchronised to a chronyd in a second
//! namespace. Every peer runs without CAP_SYS_TIME, so none can touch the
//! machine's clock.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Guarded, NetnsPair, Pki, json_lines, peers_dir, without_clock_privilege};

#[test]
fn nts_and_plain_time_from_ntpsec() {
    let ntpd = peers_dir().join("ntpsec/usr/sbin/ntpd");
    assert!(
        ntpd.exists(),
        "{} is missing: scripts/test-all.sh unpacks NTPsec there",
        ntpd.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(dir.path(), "ntpsec");
    let net = NetnsPair::create("sec");

    // Upstream: chronyd as a local stratum-1 reference.
    let chrony_conf = dir.path().join("chrony.conf");
    std::fs::write(
        &chrony_conf,
        format!(
            "pidfile {d}/chronyd.pid\nport 123\nbindaddress {up}\ncmdport 0\nlocal stratum 1\nallow {host}\n",
            d = dir.path().display(),
            up = net.upstream_addr,
            host = net.host_addr,
        ),
    )
    .unwrap();
    let _chrony = Guarded(
        without_clock_privilege(
            Some(&net.upstream),
            std::path::Path::new("/usr/sbin/chronyd"),
        )
        .args(["-x", "-d", "-u", "root", "-f"])
        .arg(&chrony_conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("chronyd.log")).unwrap())
        .spawn()
        .unwrap(),
    );

    // NTPsec: NTS server, synchronised to the chronyd above.
    let conf = dir.path().join("ntp.conf");
    std::fs::write(
        &conf,
        format!(
            "nts enable\nnts cert {cert}\nnts key {key}\nnts cookie {d}/nts-keys\n\
             disable kernel\nserver {up} iburst minpoll 3 maxpoll 3\n",
            cert = pki.cert.display(),
            key = pki.key.display(),
            d = dir.path().display(),
            up = net.upstream_addr,
        ),
    )
    .unwrap();
    let log = dir.path().join("ntpd.log");
    let _ntpsec = Guarded(
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

    // NTPsec answers INIT until it has synchronised (a few seconds with
    // iburst); then it must give authenticated time.
    let client = env!("CARGO_BIN_EXE_ntp-client");
    let ca = pki.ca.to_str().unwrap();
    let query = |extra: &[&str]| {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.host,
                client,
                "query",
                "--json",
                "--retries",
                "0",
                "--timeout",
                "1",
            ])
            .args(extra)
            .arg("127.0.0.1")
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let nts = loop {
        let out = query(&["--nts", "--ca", ca]);
        if out.status.success() {
            break out;
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        // Only "still starting" (ports not open yet) and "not yet
        // synchronised" are acceptable while waiting; an NTS failure would be
        // a reason to fail at once.
        assert!(
            err.contains("Kiss-o'-Death INIT")
                || err.contains("not synchronized")
                || err.contains("Connection refused")
                || err.contains("connection refused"),
            "unexpected failure: {err}\nntpd log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "NTPsec did not synchronise: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let s = &json_lines(&nts)[0];
    assert_eq!(s["nts"], true, "{s}");
    assert_eq!(s["server"], "127.0.0.1:123");
    assert!(s["cookies"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["stratum"], 2, "{s}");
    let upstream: std::net::Ipv4Addr = net.upstream_addr.parse().unwrap();
    assert_eq!(
        s["reference_id"],
        format!("{:08x}", u32::from(upstream)),
        "{s}"
    );
    assert!(s["offset"].as_f64().unwrap().abs() < 0.001, "{s}");

    // The same server without NTS.
    let plain = query(&[]);
    let s = &json_lines(&plain)[0];
    assert_eq!(s["nts"], false);
    assert_eq!(s["stratum"], 2);
}
