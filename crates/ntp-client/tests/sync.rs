//! `ntp-client sync` against real chronyd servers on loopback, observe mode:
//! three honest ones and one started under libfaketime two seconds ahead.
//! The daemon must mark the liar as a falseticker, keep the combined offset
//! of this machine's clock within 1 ms of zero, and `wait-sync` must pass;
//! with only the liar configured, `wait-sync` must time out. Every process
//! runs without CAP_SYS_TIME, and the daemon only observes.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

/// Fast polling so the test converges in seconds: 1 s polls, a 4-request
/// burst, and a short wait for every source's first sample.
fn write_config(dir: &Path, servers: &[&Chronyd], socket: &Path) -> PathBuf {
    let mut text = String::new();
    for s in servers {
        text += &format!(
            "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1:{}\"\n\n",
            s.ntp_port
        );
    }
    text += &format!(
        "[observability]\nobservation-path = \"{}\"\nlog-level = \"debug\"\n\n\
         [synchronization]\nmin-poll = 0\nmax-poll = 1\nburst-interval = 1\n\
         acquire-wait = 5\ntimeout = 0.5\n",
        socket.display()
    );
    let path = dir.join("client.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_daemon(dir: &Path, config: &Path) -> Guarded {
    let log = std::fs::File::create(dir.join("sync.log")).unwrap();
    let child = without_clock_privilege(None, Path::new(env!("CARGO_BIN_EXE_ntp-client")))
        .args(["sync", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Guarded(child)
}

fn status(socket: &Path) -> Option<serde_json::Value> {
    let out = ntp_client(&["status", "--json", "--socket", socket.to_str().unwrap()]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sync.log")).unwrap_or_default()
}

#[test]
fn observes_four_chronyd_and_rejects_the_one_two_seconds_ahead() {
    let honest: Vec<Chronyd> = (0..3).map(|_| Chronyd::start()).collect();
    let liar = Chronyd::start_with(Some("+2s"));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("observe.sock");
    let mut servers: Vec<&Chronyd> = honest.iter().collect();
    servers.insert(1, &liar);
    let config = write_config(dir.path(), &servers, &socket);
    let started = Instant::now();
    let _daemon = start_daemon(dir.path(), &config);
    let liar_addr = format!("127.0.0.1:{}", liar.ntp_port);

    // Converged: synchronized, the liar rejected, every honest one selected
    // or candidate.
    let mut last = None;
    let converged = loop {
        if started.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
        let Some(s) = status(&socket) else { continue };
        let sources = s["sources"].as_array().unwrap().clone();
        let liar_state = sources
            .iter()
            .find(|x| x["address"] == liar_addr.as_str())
            .map(|x| x["state"].as_str().unwrap().to_string());
        let honest_ok = sources
            .iter()
            .filter(|x| x["address"] != liar_addr.as_str())
            .all(|x| matches!(x["state"].as_str(), Some("selected" | "candidate")));
        if s["synchronized"] == true && liar_state.as_deref() == Some("falseticker") && honest_ok {
            break Some(s);
        }
        last = Some(s);
    };
    let Some(s) = converged else {
        panic!(
            "did not converge in 60 s; last status {last:#?}\nlog:\n{}\nliar log:\n{}",
            log(dir.path()),
            liar.log()
        );
    };
    let converge_secs = started.elapsed().as_secs_f64();
    let offset = s["offset"].as_f64().unwrap();
    eprintln!(
        "converged in {converge_secs:.1} s: offset {offset:+e} s, root distance {} s",
        s["root_distance"]
    );
    assert!(offset.abs() < 1e-3, "combined offset {offset} s: {s:#}");
    let liar_offset = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["address"] == liar_addr.as_str())
        .unwrap()["offset"]
        .as_f64()
        .unwrap();
    assert!(
        (liar_offset - 2.0).abs() < 0.1,
        "the liar's offset should be about +2 s: {liar_offset}"
    );
    for key in ["frequency_ppm", "root_distance"] {
        assert!(s[key].is_number(), "{key}: {s:#}");
    }
    for src in s["sources"].as_array().unwrap() {
        for key in ["stratum", "reach", "offset", "delay", "jitter"] {
            assert!(src[key].is_number(), "{key}: {src:#}");
        }
        assert_eq!(src["nts"], false);
        assert_eq!(src["stratum"], 1);
    }

    // It stays there: ten more seconds of samples.
    let until = Instant::now() + Duration::from_secs(10);
    let mut worst: f64 = 0.0;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        let s = status(&socket).unwrap();
        assert_eq!(s["synchronized"], true, "{s:#}");
        worst = worst.max(s["offset"].as_f64().unwrap().abs());
    }
    eprintln!("worst |offset| over the next 10 s: {worst:e} s");
    assert!(worst < 1e-3, "offset drifted to {worst} s");

    // The table, as people read it.
    let out = ntp_client(&["status", "--socket", socket.to_str().unwrap()]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(table.contains("Sync state      : synchronized"), "{table}");
    assert!(
        table.contains(&format!("x falseticker {liar_addr}")),
        "{table}"
    );
    assert!(table.contains("* selected"), "{table}");

    // The gate passes at once.
    let out = ntp_client(&[
        "wait-sync",
        "--max-offset",
        "1",
        "--timeout",
        "30",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "wait-sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wait_sync_times_out_when_only_the_liar_is_configured() {
    let liar = Chronyd::start_with(Some("+2s"));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("observe.sock");
    let config = write_config(dir.path(), &[&liar], &socket);
    let _daemon = start_daemon(dir.path(), &config);
    let started = Instant::now();
    let out = ntp_client(&[
        "wait-sync",
        "--max-offset",
        "1",
        "--timeout",
        "10",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    let waited = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "wait-sync should time out: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        log(dir.path())
    );
    assert!(waited >= Duration::from_secs(9), "{waited:?}");
    // The engine followed the only source (its virtual clock is stepped),
    // but this machine's clock is 2 s behind it, and status says so; the
    // daemon is still running and measuring.
    let s = status(&socket).expect("the daemon keeps running");
    let offset = s["offset"].as_f64().unwrap();
    assert!((offset - 2.0).abs() < 0.1, "offset {offset}: {s:#}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn bad_config_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1\"\nbogus = 1\n",
    )
    .unwrap();
    let out = ntp_client(&["sync", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4") && err.contains("bogus"), "{err}");

    std::fs::write(
        &path,
        "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1\"\n\n[synchronization]\nsteer = true\n",
    )
    .unwrap();
    // steer = true without CAP_SYS_TIME (the bounding set has none): it
    // refuses before touching anything.
    let out = without_clock_privilege(None, Path::new(env!("CARGO_BIN_EXE_ntp-client")))
        .args(["sync", "--config", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("steer") && err.contains("CAP_SYS_TIME"),
        "{err}"
    );

    // No daemon: status fails, wait-sync times out.
    let socket = dir.path().join("none.sock");
    let out = ntp_client(&["status", "--socket", socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let out = ntp_client(&[
        "wait-sync",
        "--max-offset",
        "1",
        "--timeout",
        "1",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn nts_sources_report_cookies() {
    let servers: Vec<Chronyd> = (0..2).map(|_| Chronyd::start()).collect();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("observe.sock");
    let mut text = String::new();
    for s in &servers {
        text += &format!(
            "[[source]]\nmode = \"nts\"\naddress = \"localhost:{}\"\ncertificate-authority = \"{}\"\n\n",
            s.ke_port,
            s.pki.ca.display()
        );
    }
    text += &format!(
        "[observability]\nobservation-path = \"{}\"\n\n\
         [synchronization]\nmin-poll = 0\nmax-poll = 1\nburst-interval = 1\nacquire-wait = 5\n",
        socket.display()
    );
    let config = dir.path().join("client.toml");
    std::fs::write(&config, text).unwrap();
    let _daemon = start_daemon(dir.path(), &config);
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let Some(s) = status(&socket) else { continue };
        let sources = s["sources"].as_array().unwrap();
        let ready = s["synchronized"] == true
            && sources.iter().all(|x| {
                x["nts"] == true
                    && x["cookies"].as_u64().is_some_and(|c| c >= 1)
                    && matches!(x["state"].as_str(), Some("selected" | "candidate"))
            });
        if ready {
            assert!(s["offset"].as_f64().unwrap().abs() < 1e-3, "{s:#}");
            // The NTP server is the one NTS-KE named (chronyd's own port).
            let ports: Vec<String> = servers
                .iter()
                .map(|c| format!("127.0.0.1:{}", c.ntp_port))
                .collect();
            for x in sources {
                assert!(
                    ports.contains(&x["address"].as_str().unwrap().to_string()),
                    "{x:#}"
                );
            }
            return;
        }
        last = Some(s);
    }
    panic!(
        "NTS sources never synchronised: {last:#?}\n{}",
        log(dir.path())
    );
}

#[test]
fn an_offset_beyond_the_panic_threshold_is_reported_not_fatal() {
    let liar = Chronyd::start_with(Some("+2s"));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("observe.sock");
    let config = write_config(dir.path(), &[&liar], &socket);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += "single-step-panic-threshold = 1\n";
    std::fs::write(&config, text).unwrap();
    let mut daemon = start_daemon(dir.path(), &config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let Some(s) = status(&socket) else { continue };
        let reason = s["reason"].as_str().unwrap_or_default().to_string();
        if reason.contains("panic threshold") {
            assert_eq!(s["synchronized"], false, "{s:#}");
            // Not steered (not even virtually): the system clock's offset
            // is the liar's.
            let offset = s["offset"].as_f64().unwrap();
            assert!((offset - 2.0).abs() < 0.1, "{s:#}");
            // Still running and measuring.
            std::thread::sleep(Duration::from_secs(2));
            assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon exited");
            let later = status(&socket).unwrap();
            assert!(later["sources"][0]["reach"].as_u64().unwrap() > 0);
            // SIGTERM: a clean exit that removes the socket.
            let pid = daemon.0.id().to_string();
            assert!(
                std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            let exit = daemon.0.wait().unwrap();
            assert!(exit.success(), "{exit:?}\n{}", log(dir.path()));
            assert!(!socket.exists(), "the socket was left behind");
            return;
        }
        last = Some(s);
    }
    panic!("no panic reason reported: {last:#?}\n{}", log(dir.path()));
}

#[test]
fn an_nts_nak_runs_the_key_exchange_again() {
    let mut server = Chronyd::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("observe.sock");
    let text = format!(
        "[[source]]\nmode = \"nts\"\naddress = \"localhost:{}\"\ncertificate-authority = \"{}\"\n\n\
         [observability]\nobservation-path = \"{}\"\nlog-level = \"info\"\n\n\
         [synchronization]\nmin-poll = 0\nmax-poll = 0\nburst-interval = 1\nacquire-wait = 2\n",
        server.ke_port,
        server.pki.ca.display(),
        socket.display()
    );
    let config = dir.path().join("client.toml");
    std::fs::write(&config, text).unwrap();
    let _daemon = start_daemon(dir.path(), &config);
    let healthy = |s: &serde_json::Value| {
        let src = &s["sources"][0];
        s["synchronized"] == true
            && src["cookies"].as_u64().is_some_and(|c| c >= 1)
            && src["last_error"].is_null()
            && src["reach"].as_u64().is_some_and(|r| r & 1 == 1)
    };
    let wait_healthy = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
            if let Some(s) = status(&socket) {
                if healthy(&s) {
                    return;
                }
                last = Some(s);
            }
        }
        panic!("{what}: {last:#?}\n{}", log(dir.path()));
    };
    wait_healthy("never synchronised over NTS");
    // New server keys: the cookies the daemon holds are now refused.
    server.restart_with_new_keys();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log(dir.path()).contains("NTS NAK") {
        assert!(
            Instant::now() < deadline,
            "no NTS NAK seen:\n{}",
            log(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The next poll runs NTS-KE again and samples flow with fresh cookies.
    wait_healthy("did not recover after the NAK");
}

#[test]
fn ntpd_rs_shipped_client_configs_parse() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ntp-server/tests/data/ntpd-rs");
    for name in ["ntp.toml.default", "unsafe.nts.client.toml"] {
        let text = std::fs::read_to_string(data.join(name)).unwrap();
        let loaded = ntp_client::sync::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!loaded.config.source.is_empty(), "{name}");
        eprintln!("{name}: {:?}", loaded.warnings);
    }
}
