//! `ntp-monitor demo`: the embedded default. No configuration, no internet:
//! three NTS servers (this suite's `ntp-server`, in-process, with a
//! throwaway CA), one of them deliberately wrong: its clock drifts away and
//! snaps back every two minutes. All on loopback; the monitor checks them
//! every 2 s and serves the dashboard.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use ntp_proto::{NtpDuration, NtpTimestamp, UnixTime};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tokio::sync::watch;

use crate::{config, monitor};

/// Period of the wrong server's drift cycle.
pub const DRIFT_PERIOD_S: f64 = 120.0;

/// What `demo` takes from the command line.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Dashboard address (default 127.0.0.1:8123, else any free port).
    pub listen: Option<SocketAddr>,
    /// Log file (default: in a temporary directory).
    pub database: Option<PathBuf>,
    /// Stop after this long (default: at Ctrl-C / SIGTERM).
    pub duration: Option<Duration>,
    /// The wrong server's drift cycle (default [`DRIFT_PERIOD_S`]).
    pub drift_period: Option<f64>,
}

/// The wrong server's offset `elapsed_s` into the demo: 5 ms for the first half of each
/// `period_s` (normally [`DRIFT_PERIOD_S`]), then a ramp to +240 ms, crossing the 100 ms
/// threshold about 25 s into the ramp.
pub fn drift_offset(elapsed_s: f64, period_s: f64) -> f64 {
    let phase = elapsed_s.rem_euclid(period_s);
    let half = period_s / 2.0;
    if phase < half {
        0.005
    } else {
        0.005 + (phase - half) / half * 0.235
    }
}

fn write_pki(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ntp-monitor demo CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &ca)?;
    let (ca_path, cert_path, key_path) = (
        dir.join("demo-ca.pem"),
        dir.join("demo-server.pem"),
        dir.join("demo-server.key"),
    );
    std::fs::write(&ca_path, ca.pem())?;
    std::fs::write(&cert_path, cert.pem())?;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)?
        .write_all(key.serialize_pem().as_bytes())?;
    Ok((ca_path, cert_path, key_path))
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_nts_server(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(ntp_server::run::Running, u16)> {
    // The NTP port must be known before the start, for the NTS-KE record;
    // retry if another program takes it in between.
    let mut last = None;
    for _ in 0..5 {
        let ntp_port = free_udp_port()?;
        let text = format!(
            "[[server]]\nlisten = \"127.0.0.1:{ntp_port}\"\nworkers = 1\n\n\
             [[nts-ke-server]]\nlisten = \"127.0.0.1:0\"\n\
             certificate-chain-path = \"{}\"\nprivate-key-path = \"{}\"\nntp-port = {ntp_port}\n\n\
             [synchronization]\nlocal-stratum = 1\nreference-id = \"DEMO\"\n",
            cert.display(),
            key.display()
        );
        let loaded = ntp_server::config::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let settings = ntp_server::settings_from_config(&loaded.config)?;
        match ntp_server::run::start(settings).await {
            Ok(running) => {
                let ke = running
                    .ke_addrs
                    .first()
                    .map(SocketAddr::port)
                    .context("no NTS-KE listener")?;
                return Ok((running, ke));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("cannot start the NTS server")))
}

/// An NTS server on loopback (this suite's `ntp-server` request core and
/// NTS-KE) whose clock is off by `offset(unix seconds)`: its UDP side is
/// served here, with the receive and transmit timestamps skewed; stops when
/// `stop` changes. Returns the server (NTS-KE), its NTS-KE port, and the
/// UDP task.
///
/// # Errors
/// A socket cannot be bound, or the certificate cannot be loaded.
pub async fn start_wrong_nts_server(
    cert: &Path,
    key: &Path,
    offset: Arc<dyn Fn(f64) -> f64 + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(ntp_server::run::Running, u16, tokio::task::JoinHandle<()>)> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let ntp_port = socket.local_addr()?.port();
    let text = format!(
        "[[server]]\nlisten = \"127.0.0.1:{ntp_port}\"\nworkers = 1\n\n\
         [[nts-ke-server]]\nlisten = \"127.0.0.1:0\"\n\
         certificate-chain-path = \"{}\"\nprivate-key-path = \"{}\"\nntp-port = {ntp_port}\n\n\
         [synchronization]\nlocal-stratum = 1\nreference-id = \"DRFT\"\n",
        cert.display(),
        key.display()
    );
    let loaded = ntp_server::config::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut settings = ntp_server::settings_from_config(&loaded.config)?;
    // The request core is served below, on the socket bound above; the
    // server runs NTS-KE only.
    let core = settings
        .ntp
        .pop()
        .context("no NTP listener in the drifter's configuration")?
        .core;
    let (keys, system) = (settings.keys.clone(), settings.system.clone());
    let running = ntp_server::run::start(settings).await?;
    let ke_port = running
        .ke_addrs
        .first()
        .map(SocketAddr::port)
        .context("no NTS-KE listener")?;
    let task = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut buf = [0u8; 2048];
        let mut out = Vec::with_capacity(2048);
        loop {
            let (n, from) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(_) => continue,
                },
                _ = stop.changed() => return,
            };
            let now = SystemTime::now();
            let unix = now
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let skew = NtpDuration::from_seconds_f64(offset(unix));
            let receive = NtpTimestamp::from_unix(UnixTime::from_system_time(now)) + skew;
            let reply = {
                let request = ntp_server::core::Request {
                    from: from.ip(),
                    bytes: buf.get(..n).unwrap_or_default(),
                    receive,
                    now_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
                let keys = keys.read();
                let transmit = || {
                    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now())) + skew
                };
                core.handle(
                    &request,
                    &system.get(),
                    &keys,
                    transmit,
                    &mut rand::rng(),
                    &mut out,
                )
                .is_reply()
            };
            if reply {
                let _ = socket.send_to(&out, from).await;
            }
        }
    });
    Ok((running, ke_port, task))
}

/// The monitor configuration of the demo, for servers at these ports.
pub fn demo_config(
    ca: &Path,
    ke_a: u16,
    ke_b: u16,
    ke_c: u16,
    database: &Path,
    listen: SocketAddr,
) -> String {
    format!(
        r#"# ntp-monitor demo: three NTS servers, one of which drifts away.
[[source]]
name = "nts-a"
mode = "nts"
address = "127.0.0.1:{ke_a}"
operator = "Demo Lab A"
certificate-authority = "{ca}"

[[source]]
name = "nts-b"
mode = "nts"
address = "127.0.0.1:{ke_b}"
operator = "Demo Lab B"
certificate-authority = "{ca}"

[[source]]
name = "drifter"
mode = "nts"
address = "127.0.0.1:{ke_c}"
operator = "Demo Lab C (deliberately wrong)"
certificate-authority = "{ca}"

[policy]
mode = "check-all"
max-offset-ms = 100
retries = 1
retry-interval-ms = 200
interval-s = 2
hold-after = 2
release-after = 3
lease-s = 10

[monitor]
database = "{db}"
http-listen = "{listen}"
retention-days = 365
query-timeout-ms = 500
"#,
        ca = ca.display(),
        db = database.display(),
    )
}

/// Runs the demo until a signal (or `duration`).
///
/// # Errors
/// A server or the monitor cannot start.
pub async fn run(options: DemoOptions) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("ntp-monitor-demo")
        .tempdir()?;
    let (ca, cert, key) = write_pki(dir.path())?;
    let (server_a, ke_a) = start_nts_server(&cert, &key).await?;
    let (server_b, ke_b) = start_nts_server(&cert, &key).await?;
    let (stop, stop_rx) = watch::channel(false);
    // The drift cycle starts with the demo: a minute of good time first.
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let period = options
        .drift_period
        .filter(|p| p.is_finite() && *p >= 1.0)
        .unwrap_or(DRIFT_PERIOD_S);
    let (server_c, ke_c, wrong_task) = start_wrong_nts_server(
        &cert,
        &key,
        Arc::new(move |t| drift_offset(t - start, period)),
        stop_rx,
    )
    .await?;
    let listen = match options.listen {
        Some(l) => l,
        None => {
            let preferred = SocketAddr::from(([127, 0, 0, 1], 8123));
            if std::net::TcpListener::bind(preferred).is_ok() {
                preferred
            } else {
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        }
    };
    let database = options
        .database
        .clone()
        .unwrap_or_else(|| dir.path().join("ntp-monitor-demo.sqlite"));
    let text = demo_config(&ca, ke_a, ke_b, ke_c, &database, listen);
    let config_path = dir.path().join("ntp-monitor-demo.toml");
    let config = config::parse(&text, dir.path()).context("the demo configuration")?;
    let running = monitor::start(config).await?;
    println!(
        "ntp-monitor demo: dashboard at http://{}/  (health: /health, metrics: /metrics; Ctrl-C stops)",
        running.http_addr
    );
    println!(
        "  nts-a: NTS via 127.0.0.1:{ke_a}, nts-b: NTS via 127.0.0.1:{ke_b}, drifter: NTS via 127.0.0.1:{ke_c}, off by up to +240 ms every {period} s"
    );
    // The configuration in force, for `export`/`verify` while the demo runs.
    match std::fs::write(&config_path, &text) {
        Ok(()) => println!(
            "  config: {0}  (try: ntp-monitor export --config {0})",
            config_path.display()
        ),
        Err(e) => tracing::warn!("cannot write {}: {e}", config_path.display()),
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    match options.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                r = crate::signalled() => r?,
            }
        }
        None => crate::signalled().await?,
    }
    running.stop().await;
    let _ = stop.send(true);
    let _ = wrong_task.await;
    server_a.stop().await;
    server_b.stop().await;
    server_c.stop().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_shape() {
        let p = DRIFT_PERIOD_S;
        assert!((drift_offset(10.0, p) - 0.005).abs() < 1e-9);
        assert!(drift_offset(60.0 + 30.0, p) > 0.1);
        assert!(drift_offset(60.0 + 20.0, p) < 0.1);
        assert!(drift_offset(119.9, p) < 0.241);
        assert!((drift_offset(120.0 + 10.0, p) - 0.005).abs() < 1e-9);
    }
}
