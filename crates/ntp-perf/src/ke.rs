//! NTS-KE: the key exchanges the NTS mode needs, and the `ke` mode, which
//! measures complete handshakes per second.
//!
//! A `ke` handshake is what a new client costs the server: TCP connect, a full
//! TLS 1.3 handshake (session resumption is disabled, so every handshake
//! signs and verifies), the NTS-KE request and response (RFC 8915 §4), key
//! export, and close_notify. `--inflight` handshakes run at once on one
//! current-thread tokio runtime. The client socket closes with `SO_LINGER`
//! 0 (a reset instead of `TIME_WAIT`), so thousands of handshakes per second
//! do not exhaust the ephemeral ports of loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt};
use ntp_io::{KeOptions, KeyExchange};
use nts_ke::{ClientHandshake, ClientProgress};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::histogram::Histogram;
use crate::pacer::Rate;
use crate::report::{Counts, CpuWindow, Report};
use crate::{Config, PerfError, target};

/// The limit for one key exchange.
const KE_TIMEOUT: Duration = Duration::from_secs(2);

/// Blocking key exchanges for the NTS mode.
pub(crate) struct KeClient {
    runtime: tokio::runtime::Runtime,
    options: KeOptions,
}

impl KeClient {
    pub(crate) fn new(config: &Config) -> Result<Self, PerfError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            options: KeOptions {
                tls: Arc::new(tls_config(config)?),
                negotiation: Arc::new(nts_ke::ClientConfig::default()),
                timeout: KE_TIMEOUT,
            },
        })
    }

    /// One key exchange with `host:port`.
    pub(crate) fn exchange(&self, host: &str, port: u16) -> Result<KeyExchange, String> {
        self.runtime
            .block_on(ntp_io::key_exchange(host, port, &self.options))
            .map_err(|e| e.to_string())
    }
}

fn tls_config(config: &Config) -> Result<rustls::ClientConfig, PerfError> {
    match &config.ca_file {
        Some(path) => nts_ke::tls::client_config_from_ca_file(path),
        None => nts_ke::tls::client_config_native_roots(),
    }
    .map_err(|e| PerfError::Tls(e.to_string()))
}

/// What the handshake tasks share.
#[derive(Default)]
struct Shared {
    started: u64,
    completed: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram,
}

/// Runs the `ke` mode.
pub(crate) fn run(config: &Config) -> Result<Report, PerfError> {
    let addr = target::resolve(&config.host, config.ke_port, config.allow_remote)?;
    let mut tls = tls_config(config)?;
    tls.resumption = rustls::client::Resumption::disabled();
    let tls = Arc::new(tls);
    let negotiation = Arc::new(nts_ke::ClientConfig::default());
    let name = ServerName::try_from(config.host.clone())
        .map_err(|_| PerfError::Config(format!("{} is not a valid TLS name", config.host)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let shared = Arc::new(Mutex::new(Shared::default()));
    let tickets = Arc::new(AtomicU64::new(0));
    let window = CpuWindow::start(config.server_pid);
    let start = window.at();
    let end = start + config.duration;

    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..config.inflight {
            let (shared, tickets) = (shared.clone(), tickets.clone());
            let (tls, negotiation, name) = (tls.clone(), negotiation.clone(), name.clone());
            let rate = config.rate;
            tasks.spawn(async move {
                loop {
                    let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                    let due = match rate {
                        Rate::PerSecond(r) => start + Duration::from_secs_f64(ticket as f64 / r),
                        Rate::Unlimited => Instant::now(),
                    };
                    if due >= end {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    lock(&shared).started += 1;
                    let t0 = Instant::now();
                    let result = tokio::time::timeout(
                        KE_TIMEOUT,
                        handshake(addr, name.clone(), tls.clone(), negotiation.clone()),
                    )
                    .await
                    .unwrap_or(Err("timeout"));
                    let took = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let mut s = lock(&shared);
                    match result {
                        Ok(()) => {
                            s.completed += 1;
                            s.latency.record(took);
                        }
                        Err(kind) => {
                            s.failed += 1;
                            *s.errors.entry(kind.to_string()).or_default() += 1;
                        }
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });

    let cpu = window.finish();
    let shared = std::mem::take(&mut *lock(&shared));
    let counts = Counts {
        sent: shared.started,
        answered: shared.completed,
        invalid: shared.failed,
        key_exchanges: shared.completed,
        errors: shared.errors,
        ..Counts::default()
    };
    Ok(Report::finish(
        config,
        addr.to_string(),
        config.duration,
        counts,
        &shared.latency,
        None,
        cpu,
    ))
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One complete NTS-KE exchange; the error names the step that failed.
async fn handshake(
    addr: SocketAddr,
    name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    negotiation: Arc<nts_ke::ClientConfig>,
) -> Result<(), &'static str> {
    let stream = TcpStream::connect(addr).await.map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    let _ = socket::setsockopt(
        &stream,
        sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
    let mut tls = TlsConnector::from(tls)
        .connect(name, stream)
        .await
        .map_err(|_| "tls")?;
    nts_ke::tls::check_alpn(tls.get_ref().1).map_err(|_| "alpn")?;
    let mut exchange = ClientHandshake::new(negotiation).map_err(|_| "config")?;
    tls.write_all(exchange.request_bytes())
        .await
        .map_err(|_| "write")?;
    tls.flush().await.map_err(|_| "write")?;
    let mut buf = [0u8; 4096];
    let outcome = loop {
        let n = tls.read(&mut buf).await.map_err(|_| "read")?;
        if n == 0 {
            return Err("truncated");
        }
        match exchange.receive(buf.get(..n).unwrap_or_default()) {
            Ok(ClientProgress::NeedMore) => {}
            Ok(ClientProgress::Done(outcome)) => break outcome,
            Err(_) => return Err("protocol"),
        }
    };
    nts_ke::tls::export_keys(tls.get_ref().1, outcome.protocol, outcome.aead)
        .map_err(|_| "export")?;
    let _ = tls.shutdown().await;
    Ok(())
}
