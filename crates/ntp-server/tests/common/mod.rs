//! Starts the real `ntp-server` binary for a test: a config written to a
//! temporary directory, free loopback ports, a test CA, stopped by PID when
//! dropped. Clients are `ntp-io` (our own) or real programs.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part of this

use std::future::Future;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use ntp_test_support::*;

/// A running `ntp-server`.
pub struct Server {
    child: Child,
    pub ntp_port: u16,
    pub ke_port: u16,
    pub metrics_port: u16,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// Extra TOML for the `[[server]]` and `[[nts-ke-server]]` tables.
#[derive(Default, Clone)]
pub struct Extra {
    pub server: String,
    pub ke: String,
    pub top: String,
}

impl Server {
    pub fn start(extra: Extra) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path(), "server");
        let (ntp_port, ke_port, metrics_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("ntp-server.toml");
        let text = format!(
            "{top}\n[synchronization]\nlocal-stratum = 1\n\n\
             [[server]]\nlisten = \"127.0.0.1:{ntp_port}\"\nworkers = 2\n{server}\n\n\
             [[nts-ke-server]]\nlisten = \"127.0.0.1:{ke_port}\"\n\
             certificate-chain-path = \"{cert}\"\nprivate-key-path = \"{key}\"\nntp-port = {ntp_port}\n{ke}\n\n\
             [keyset]\nkey-storage-path = \"{d}/keys\"\n\n\
             [observability]\nmetrics-exporter-listen = \"127.0.0.1:{metrics_port}\"\n",
            top = extra.top,
            server = extra.server,
            ke = extra.ke,
            cert = pki.cert.display(),
            key = pki.key.display(),
            d = dir.path().display(),
        );
        std::fs::write(&config, text).unwrap();
        let child = Self::spawn(&config, dir.path());
        let server = Self {
            child,
            ntp_port,
            ke_port,
            metrics_port,
            pki,
            dir,
            config,
        };
        server.wait_ready();
        server
    }

    fn spawn(config: &std::path::Path, dir: &std::path::Path) -> Child {
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_ntp-server"))
            .arg("--config")
            .arg(config)
            .env("NTP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.ke_port)).is_err()
            || TcpStream::connect(("127.0.0.1", self.metrics_port)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "ntp-server did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn ntp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.ntp_port).into()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The Prometheus text from /metrics.
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    /// The value of one metric line (exact name with labels), 0 if absent.
    pub fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }

    /// Query options for `ntp-io` against this server (NTS or plain).
    pub fn options(&self, nts: bool) -> ntp_io::QueryOptions {
        ntp_io::QueryOptions {
            nts,
            port: (!nts).then_some(self.ntp_port),
            ke_port: self.ke_port,
            ca_file: Some(self.pki.ca.clone()),
            timeout: Duration::from_millis(800),
            retries: 1,
            ..Default::default()
        }
    }

    /// Resident memory of the server process in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking runtime for one async call.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One plain query with std UDP: the raw reply (or `None` on timeout).
pub fn raw_exchange(server: SocketAddr, request: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket.send_to(request, server).unwrap();
    let mut buf = [0u8; 2048];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

// ---------------------------------------------------------------------------
// NTS and NTS-KE helpers for tests that build their own requests.

/// NTS-KE options trusting the CA in `ca` (PEM file).
pub fn ke_options(ca: &std::path::Path) -> ntp_io::KeOptions {
    ntp_io::KeOptions {
        tls: std::sync::Arc::new(nts_ke::tls::client_config_from_ca_file(ca).unwrap()),
        negotiation: std::sync::Arc::new(nts_ke::ClientConfig::default()),
        timeout: Duration::from_secs(3),
    }
}

/// One NTS-KE exchange with `127.0.0.1:ke_port` (as `localhost`), trusting `ca`.
pub fn key_exchange_with(
    ke_port: u16,
    ca: &std::path::Path,
) -> Result<ntp_io::KeyExchange, ntp_io::KeError> {
    block_on(ntp_io::key_exchange("localhost", ke_port, &ke_options(ca)))
}

impl Server {
    /// One NTS-KE exchange with this server, trusting its CA: keys and cookies.
    pub fn key_exchange(&self) -> ntp_io::KeyExchange {
        key_exchange_with(self.ke_port, &self.pki.ca).unwrap()
    }
}

/// An NTS request sealed with the next cookie of `jar` (no placeholders):
/// the datagram, its Unique Identifier and its transmit timestamp.
pub fn nts_request(
    jar: &mut nts_cookie::CookieJar,
) -> (Vec<u8>, [u8; 32], ntp_proto::NtpTimestamp) {
    use rand::RngCore as _;
    let mut rng = rand::rng();
    let header = ntp_proto::Header::client_request(6, rng.next_u64());
    let sealed = nts_cookie::packet::seal_request(&header, jar, 0, &mut rng).unwrap();
    (sealed.bytes, sealed.uid, header.transmit_timestamp)
}

/// The Kiss-o'-Death code of a reply, if it parses and is one.
pub fn kiss_code(reply: &[u8]) -> Option<ntp_proto::KissCode> {
    ntp_proto::PacketView::new(reply)
        .ok()
        .and_then(|v| v.header().kiss_code())
}

/// The body of the (first) Unique Identifier field of a reply, if any.
pub fn reply_uid(reply: &[u8]) -> Option<Vec<u8>> {
    let view = ntp_proto::PacketView::new(reply).ok()?;
    view.extension_fields()
        .find(|f| f.field_type == ntp_proto::ExtensionFieldType::UNIQUE_IDENTIFIER)
        .map(|f| f.body.to_vec())
}

/// Sends raw NTS-KE request bytes over TLS (trusting `ca`) and returns the
/// records the server answered until it closed, or why the exchange failed.
pub fn ke_raw_exchange(
    ke_port: u16,
    ca: &std::path::Path,
    request: &[u8],
) -> Result<Vec<nts_ke::Record>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = ke_options(ca).tls;
    let request = request.to_vec();
    block_on(async move {
        let work = async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ke_port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            // The server may stop reading and answer early: a failed write is
            // not the end, read what it sent.
            let _ = tls.write_all(&request).await;
            let _ = tls.flush().await;
            let mut response = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => response.extend_from_slice(&buf[..n]),
                    Err(e) if response.is_empty() => return Err(format!("read: {e}")),
                    Err(_) => break,
                }
            }
            parse_ke_records(&response)
        };
        tokio::time::timeout(Duration::from_secs(5), work)
            .await
            .map_err(|_| "timed out".to_string())?
    })
}

/// Splits an NTS-KE message into records.
pub fn parse_ke_records(mut bytes: &[u8]) -> Result<Vec<nts_ke::Record>, String> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        match nts_ke::Record::parse(bytes).map_err(|e| format!("{e}"))? {
            nts_ke::record::Parsed::Complete { record, consumed } => {
                records.push(record);
                bytes = &bytes[consumed..];
            }
            nts_ke::record::Parsed::Incomplete { needed } => {
                return Err(format!("response ends inside a record ({needed} missing)"));
            }
        }
    }
    Ok(records)
}

// ---------------------------------------------------------------------------
// Process control for operations tests.

impl Server {
    /// Sends `signal` (e.g. "HUP", "TERM") to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// SIGTERM, then waits up to `limit` for the exit: the status and how
    /// long it took, or `None` if it is still running.
    pub fn terminate(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        self.signal("TERM");
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Starts the server again with the same configuration (same ports, same
    /// key file) after it stopped; the log is started afresh.
    pub fn restart(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_some(),
            "restart: still running"
        );
        self.child = Self::spawn(&self.config, self.dir.path());
        self.wait_ready();
    }

    /// One HTTP request to the metrics endpoint: the status code and body.
    pub fn http(&self, method: &str, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}
