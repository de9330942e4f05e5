//! `ntp-server` with `[[source]]` upstreams: it serves "unsynchronised"
//! (leap 3, stratum 0 on the wire) until its sources agree, then stratum =
//! upstream + 1 with leap 0 and the upstream's address as reference id.
//! Upstreams are two real chronyd on loopback, started after the server so
//! the unsynchronised phase is certain; the clients are our `ntp-io` and a
//! real chronyd client read through `chronyc ntpdata`. Nothing here can
//! touch the clock: every process runs without CAP_SYS_TIME, and the server
//! only observes.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ntp_proto::{LeapIndicator, ReferenceId};

struct Upstreamed {
    _child: Guarded,
    ntp_addr: SocketAddr,
    metrics_port: u16,
    dir: tempfile::TempDir,
}

impl Upstreamed {
    fn start(upstream_ports: &[u16]) -> Self {
        let sources: String = upstream_ports
            .iter()
            .map(|p| format!("[[source]]\nmode = \"server\"\naddress = \"127.0.0.1:{p}\"\n\n"))
            .collect();
        Self::start_with_sources(&sources)
    }

    fn start_with_sources(sources: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, metrics_port) = (free_port(), free_port());
        let mut text = format!(
            "[[server]]\nlisten = \"127.0.0.1:{port}\"\nworkers = 1\n\n\
             [observability]\nmetrics-exporter-listen = \"127.0.0.1:{metrics_port}\"\n\n"
        );
        text += sources;
        text += "[synchronization]\nmin-poll = 0\nmax-poll = 1\nacquire-wait = 3\n";
        let config = dir.path().join("ntp-server.toml");
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = without_clock_privilege(None, Path::new(env!("CARGO_BIN_EXE_ntp-server")))
            .arg("--config")
            .arg(&config)
            .env("NTP_LOG", "info,ntp_io=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            _child: Guarded(child),
            ntp_addr: ([127, 0, 0, 1], port).into(),
            metrics_port,
            dir,
        }
    }

    /// The /metrics text ("" until the endpoint answers).
    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)) else {
            return String::new();
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// One plain query: `Ok` with a synchronised reply, `Err(Some((leap,
/// stratum)))` for an unsynchronised one, `Err(None)` without an answer.
fn ask(server: SocketAddr) -> Result<ntp_io::Measurement, Option<(LeapIndicator, u8)>> {
    let options = ntp_io::QueryOptions {
        port: Some(server.port()),
        timeout: Duration::from_millis(300),
        retries: 0,
        ..Default::default()
    };
    let result = block_on(ntp_io::query("127.0.0.1", &options));
    match result {
        Ok(m) => Ok(m),
        Err(ntp_io::QueryError::Unsynchronized { leap, stratum, .. }) => Err(Some((leap, stratum))),
        Err(_) => Err(None),
    }
}

/// A chronyd in client mode (no NTP port, no clock control) polling `server`
/// every 250 ms, read through its own command socket.
struct ChronydClient {
    _child: Guarded,
    socket: PathBuf,
    server: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ChronydClient {
    fn start(server: SocketAddr) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // chronyd refuses a command socket in a directory others can enter.
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = run.join("chronyd.sock");
        let d = dir.path().display();
        let conf = format!(
            "pidfile {d}/chronyd.pid\nport 0\ncmdport 0\nbindcmdaddress {sock}\n\
             server 127.0.0.1 port {port} iburst minpoll -2 maxpoll -2\n",
            sock = socket.display(),
            port = server.port(),
        );
        let conf_path = dir.path().join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("chronyd.log")).unwrap();
        let mut cmd = without_clock_privilege(None, &chronyd_binary());
        cmd.arg("-x").arg("-d").arg("-f").arg(&conf_path);
        if is_root() {
            cmd.arg("-u").arg("root");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            _child: Guarded(child),
            socket,
            server,
            _dir: dir,
        }
    }

    /// `chronyc ntpdata` for the server: (leap status text, stratum,
    /// reference id hex), once chronyd has a reply.
    fn ntpdata(&self) -> Option<(String, u8, String)> {
        let out = Command::new("chronyc")
            .arg("-h")
            .arg(&self.socket)
            .args(["-n", "ntpdata"])
            .arg(self.server.ip().to_string())
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        if field("Total valid RX")?.parse::<u64>().ok()? == 0 {
            return None;
        }
        let stratum = field("Stratum")?.parse().ok()?;
        let refid = field("Reference ID")?
            .split_whitespace()
            .next()?
            .to_string();
        Some((field("Leap status")?, stratum, refid))
    }
}

fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serves_unsynchronised_until_its_upstreams_agree_then_stratum_two() {
    if !Path::new("/usr/bin/chronyc").exists() {
        panic!("chronyc is not installed; scripts/test-all.sh installs chrony");
    }
    let ports = [(free_port(), free_port()), (free_port(), free_port())];
    let server = Upstreamed::start(&[ports[0].0, ports[1].0]);
    let chrony_client = ChronydClient::start(server.ntp_addr);

    // Before any upstream answers: leap 3, stratum 0 on the wire.
    let first = wait_for(Duration::from_secs(10), || {
        ask(server.ntp_addr).err().flatten()
    });
    assert_eq!(
        first,
        Some((LeapIndicator::Unsynchronized, 0)),
        "log:\n{}",
        server.log()
    );
    let untrusted = wait_for(Duration::from_secs(10), || {
        Some(server.metrics()).filter(|m| m.contains("ntp_server_upstream_trusted 0"))
    });
    assert!(untrusted.is_some(), "{}", server.metrics());
    let seen = wait_for(Duration::from_secs(10), || chrony_client.ntpdata());
    let (leap, stratum, _) = seen.expect("chronyd got no reply from ntp-server");
    assert_eq!((leap.as_str(), stratum), ("Not synchronised", 0));

    // The upstreams come up.
    let started = Instant::now();
    let _upstreams: Vec<Chronyd> = ports
        .iter()
        .map(|&(ntp, ke)| Chronyd::start_on(ntp, ke))
        .collect();
    let synced = wait_for(Duration::from_secs(30), || ask(server.ntp_addr).ok());
    let Some(m) = synced else {
        panic!("never synchronised:\n{}", server.log());
    };
    let took = started.elapsed();
    eprintln!(
        "synchronised {took:?} after the upstreams started: stratum {}, refid {}, root delay {} s, root dispersion {} s",
        m.stratum,
        ntp_io::sync::reference_id_text(m.reference_id),
        m.root_delay,
        m.root_dispersion
    );
    assert_eq!(m.stratum, 2);
    assert_eq!(m.leap, LeapIndicator::NoWarning);
    assert_eq!(
        m.reference_id,
        ReferenceId::from_bytes([127, 0, 0, 1]),
        "the reference id is the upstream's address"
    );
    assert!(m.root_dispersion > 0.0 && m.root_dispersion < 1.0);
    assert!(
        m.offset.abs() < 0.01,
        "served time is off by {} s",
        m.offset
    );

    // chronyd sees the same.
    let changed = wait_for(Duration::from_secs(15), || {
        chrony_client
            .ntpdata()
            .filter(|(leap, stratum, _)| leap == "Normal" && *stratum == 2)
    });
    let Some((_, _, refid)) = changed else {
        panic!(
            "chronyd never saw stratum 2: {:?}\n{}",
            chrony_client.ntpdata(),
            server.log()
        );
    };
    assert_eq!(refid, "7F000001");
    assert!(server.log().contains("synchronised to the sources"));
    let metrics = server.metrics();
    assert!(
        metrics.contains("ntp_server_upstream_trusted 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ntp_server_upstream_synchronized 1"),
        "{metrics}"
    );
    let reach_lines = metrics
        .lines()
        .filter(|l| l.starts_with("ntp_server_upstream_source_reach{"))
        .count();
    assert_eq!(reach_lines, 2, "{metrics}");

    // The upstreams go away: once they are unreachable the time is no
    // longer trustworthy and the server says so again.
    drop(_upstreams);
    let lost = Instant::now();
    let unsynced = wait_for(Duration::from_secs(60), || {
        ask(server.ntp_addr)
            .err()
            .flatten()
            .filter(|&(leap, stratum)| leap == LeapIndicator::Unsynchronized && stratum == 0)
    });
    assert!(
        unsynced.is_some(),
        "still claims synchronisation without upstreams:\n{}",
        server.log()
    );
    eprintln!(
        "back to unsynchronised {:?} after the upstreams stopped",
        lost.elapsed()
    );
    assert!(server.log().contains("not trustworthy"), "{}", server.log());
}

#[test]
fn source_tables_are_checked_with_their_line() {
    let base = "[[server]]\nlisten = \"127.0.0.1:123\"\n\n";
    let err = |extra: &str| {
        ntp_server::config::parse(&format!("{base}{extra}"))
            .unwrap_err()
            .to_string()
    };
    let e = err("[[source]]\nmode = \"server\"\naddress = \"h\"\ncount = 2\n");
    assert!(e.contains("line 7") && e.contains("count"), "{e}");
    let e = err("[[source]]\nmode = \"sever\"\naddress = \"h\"\n");
    assert!(e.contains("line 5") && e.contains("mode"), "{e}");
    let e = err("[[source]]\nmode = \"server\"\naddress = \"h:0\"\n");
    assert!(e.contains("line 6") && e.contains("address"), "{e}");
    let e = err("[[source]]\nmode = \"server\"\n");
    assert!(e.contains("address"), "{e}");
    let e = err("[[source]]\nmode = \"pool\"\naddress = \"p\"\nbogus = 1\n");
    assert!(e.contains("line 7") && e.contains("bogus"), "{e}");
    let e = err("[synchronization]\nmin-poll = 5\nmax-poll = 4\n");
    assert!(e.contains("max-poll"), "{e}");

    let loaded = ntp_server::config::parse(&format!(
        "{base}[[source]]\nmode = \"nts\"\naddress = \"nts.example:4460\"\n\
         certificate-authority = \"ca.pem\"\n\n[[source]]\nmode = \"pool\"\naddress = \"pool.example\"\ncount = 2\n"
    ))
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let sources = &loaded.config.sources;
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].mode, ntp_server::config::SourceMode::Nts);
    assert_eq!(
        sources[0].certificate_authority.as_ref().unwrap().path,
        PathBuf::from("ca.pem")
    );
    assert_eq!(sources[1].count, 2);
    let engine = ntp_server::engine_config(&loaded.config, -20);
    assert_eq!(engine.sources.len(), 2);
    assert_eq!(engine.sources[1].count, 2);
}

#[test]
fn follows_an_nts_upstream() {
    let upstream = Chronyd::start();
    let server = Upstreamed::start_with_sources(&format!(
        "[[source]]\nmode = \"nts\"\naddress = \"localhost:{}\"\ncertificate-authority = \"{}\"\n\n",
        upstream.ke_port,
        upstream.pki.ca.display()
    ));
    let synced = wait_for(Duration::from_secs(30), || ask(server.ntp_addr).ok());
    let Some(m) = synced else {
        panic!("never synchronised over NTS:\n{}", server.log());
    };
    assert_eq!((m.stratum, m.leap), (2, LeapIndicator::NoWarning));
    assert_eq!(m.reference_id, ReferenceId::from_bytes([127, 0, 0, 1]));
    let metrics = server.metrics();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("ntp_server_upstream_source_reach{"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("127.0.0.1:{}", upstream.ntp_port)),
        "the NTP server named by NTS-KE: {metrics}"
    );
}
