//! The running server: UDP workers, NTS-KE listeners, the metrics endpoint,
//! and the timers that rotate keys and refresh the system variables, tied
//! together with signal handling.
//!
//! - SIGHUP: reload TLS certificates (the NTP path keeps running; a failed
//!   reload keeps the old certificate and is logged).
//! - SIGTERM / SIGINT: stop accepting NTS-KE, stop the UDP workers, save the
//!   keys, exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ntp_proto::{NtpTimestamp, SystemInfo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use std::time::Instant;

use crate::core::{Outcome, Request, ServerCore};
use crate::http;
use crate::ke::{self, KeMetrics, KeSettings, TlsReloader};
use crate::keys::{KeyStore, unix_now};
use crate::system::{REFRESH, SystemState};
use crate::udp::{self, DatagramHandler, UdpServer};

/// How often key rotation is checked.
pub const KEY_CHECK: Duration = Duration::from_secs(60);

/// One NTP listener.
#[derive(Clone, Debug)]
pub struct NtpListener {
    /// Address (port 0 picks one, for tests).
    pub listen: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// The request handler for this listener (its own access list and rate limiter).
    pub core: Arc<ServerCore>,
}

/// One NTS-KE listener.
#[derive(Clone, Debug)]
pub struct KeListener {
    /// Limits and announcements.
    pub settings: KeSettings,
    /// Certificate and key.
    pub tls: Arc<TlsReloader>,
}

/// Everything the server needs, resolved from the configuration.
#[derive(Debug)]
pub struct Settings {
    /// NTP listeners.
    pub ntp: Vec<NtpListener>,
    /// NTS-KE listeners.
    pub ke: Vec<KeListener>,
    /// Cookie master keys.
    pub keys: Arc<KeyStore>,
    /// Local-reference clock state.
    pub system: Arc<SystemState>,
    /// Prometheus endpoint, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The sync engine for `[[source]]` upstreams (observe mode: the OS clock
    /// is never steered); `None` in local-reference mode.
    pub engine: Option<ntp_io::sync::EngineConfig>,
}

/// Bridges the UDP workers to a [`ServerCore`].
struct Handler {
    core: Arc<ServerCore>,
    keys: Arc<KeyStore>,
    system: Arc<SystemState>,
    /// Base of the monotonic milliseconds the rate limiter counts in.
    started: Instant,
}

impl DatagramHandler for Handler {
    fn handle(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        receive: NtpTimestamp,
        out: &mut Vec<u8>,
    ) -> bool {
        let system: SystemInfo = self.system.get();
        let request = Request {
            from: from.ip(),
            bytes: datagram,
            receive,
            now_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let keys = self.keys.read();
        let outcome = self
            .core
            .handle(&request, &system, &keys, udp::now, &mut rand::rng(), out);
        if let Outcome::Drop(reason) = outcome {
            tracing::trace!(%from, "dropped: {reason}");
        }
        outcome.is_reply()
    }
}

/// The upstream gauges for /metrics: what is served, and each source.
fn render_upstream(status: &ntp_io::sync::Status, trusted: bool, out: &mut String) {
    use std::fmt::Write as _;
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
    };
    gauge(
        out,
        "ntp_server_upstream_trusted",
        "1 while the server serves its sources' time, 0 while it serves the fallback.",
    );
    let _ = writeln!(out, "ntp_server_upstream_trusted {}", u8::from(trusted));
    gauge(
        out,
        "ntp_server_upstream_synchronized",
        "1 while a majority of sources agree (the sync engine's state).",
    );
    let _ = writeln!(
        out,
        "ntp_server_upstream_synchronized {}",
        u8::from(status.synchronized)
    );
    gauge(
        out,
        "ntp_server_upstream_offset_seconds",
        "How far the sources are ahead of the system clock.",
    );
    let _ = writeln!(out, "ntp_server_upstream_offset_seconds {}", status.offset);
    gauge(
        out,
        "ntp_server_upstream_root_distance_seconds",
        "Root distance of the combined estimate.",
    );
    let _ = writeln!(
        out,
        "ntp_server_upstream_root_distance_seconds {}",
        status.root_distance
    );
    gauge(
        out,
        "ntp_server_upstream_source_reach",
        "Reach register of each source (255: the last 8 polls answered).",
    );
    for s in &status.sources {
        let _ = writeln!(
            out,
            "ntp_server_upstream_source_reach{{address=\"{}\",state=\"{}\"}} {}",
            s.address.replace(['\\', '"', '\n'], "_"),
            s.state,
            s.reach
        );
    }
}

/// A started server; [`Running::wait`] runs it until a signal.
pub struct Running {
    /// Bound NTP addresses, in listener order.
    pub ntp_addrs: Vec<SocketAddr>,
    /// Bound NTS-KE addresses, in listener order.
    pub ke_addrs: Vec<SocketAddr>,
    /// Bound metrics address.
    pub metrics_addr: Option<SocketAddr>,
    udp: Vec<UdpServer>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tls: Vec<Arc<TlsReloader>>,
    keys: Arc<KeyStore>,
    engine: Option<Engine>,
}

/// The sync engine's thread and how to stop it.
struct Engine {
    shutdown: watch::Sender<bool>,
    thread: std::thread::JoinHandle<Result<(), ntp_io::sync::EngineError>>,
}

/// Binds every listener and starts serving. Must run inside a tokio runtime.
///
/// # Errors
/// A bind failure, naming the address.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    use anyhow::Context as _;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let ke_metrics = Arc::new(KeMetrics::default());
    let mut tasks = Vec::new();

    let mut udp_servers = Vec::new();
    for l in &settings.ntp {
        let handler = Arc::new(Handler {
            core: l.core.clone(),
            keys: settings.keys.clone(),
            system: settings.system.clone(),
            started: Instant::now(),
        });
        let server = UdpServer::spawn(l.listen, l.workers, handler)
            .with_context(|| format!("cannot serve NTP on {}", l.listen))?;
        udp_servers.push(server);
    }
    let ntp_addrs = udp_servers.iter().map(UdpServer::local_addr).collect();

    let mut ke_addrs = Vec::new();
    for l in &settings.ke {
        let listener = TcpListener::bind(l.settings.listen)
            .await
            .with_context(|| format!("cannot serve NTS-KE on {}", l.settings.listen))?;
        ke_addrs.push(listener.local_addr()?);
        tracing::info!(listen = %listener.local_addr()?, "serving NTS-KE");
        tasks.push(tokio::spawn(ke::serve(
            listener,
            Arc::new(l.settings.clone()),
            l.tls.clone(),
            settings.keys.clone(),
            ke_metrics.clone(),
            shutdown_rx.clone(),
        )));
    }

    // The engine's status, shared by the system variables and /metrics.
    let (status_tx, status_rx) = watch::channel(ntp_io::sync::Status::default());

    let mut metrics_addr = None;
    if let Some(listen) = settings.metrics_listen {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot serve metrics on {listen}"))?;
        metrics_addr = Some(listener.local_addr()?);
        let cores: Vec<Arc<ServerCore>> = settings.ntp.iter().map(|l| l.core.clone()).collect();
        let ke_metrics = ke_metrics.clone();
        let upstream = settings
            .engine
            .is_some()
            .then(|| (status_rx.clone(), settings.system.clone()));
        let render: http::Render = Arc::new(move || {
            let mut out = String::new();
            let all: Vec<_> = cores.iter().map(|c| c.metrics()).collect();
            crate::core::render_prometheus_sum(&all, &mut out);
            ke_metrics.render(&mut out);
            if let Some((status, system)) = &upstream {
                render_upstream(&status.borrow(), system.is_trusted(), &mut out);
            }
            out
        });
        tasks.push(tokio::spawn(http::serve(
            listener,
            render,
            shutdown_rx.clone(),
        )));
    }

    // Upstreams: the engine on a thread of its own; the system variables
    // follow every status it publishes.
    let mut engine = None;
    if let Some(config) = settings.engine {
        let mut status_rx = status_rx;
        let (engine_shutdown, engine_stop) = watch::channel(false);
        tracing::info!(
            sources = config.sources.len(),
            "following upstream sources (the clock is not steered)"
        );
        let thread = ntp_io::sync::spawn_thread(
            config,
            ntp_io::sync::ObserveClock::new(),
            status_tx,
            engine_stop,
        )
        .context("cannot start the sync engine")?;
        engine = Some(Engine {
            shutdown: engine_shutdown,
            thread,
        });
        let (system, mut stop) = (settings.system.clone(), shutdown_rx.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = status_rx.changed() => {
                        if changed.is_err() {
                            tracing::error!("the sync engine stopped");
                            return;
                        }
                        let status = status_rx.borrow_and_update().clone();
                        system.follow(&status);
                    }
                    _ = stop.changed() => return,
                }
            }
        }));
    }

    // Timers: key rotation and the reference-time refresh.
    {
        let (keys, system, mut stop) = (
            settings.keys.clone(),
            settings.system.clone(),
            shutdown_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut key_tick = tokio::time::interval(KEY_CHECK);
            let mut system_tick = tokio::time::interval(REFRESH);
            loop {
                tokio::select! {
                    _ = key_tick.tick() => {
                        if let Err(e) = keys.rotate(unix_now()) {
                            tracing::error!("key rotation could not be saved: {e}");
                        }
                    }
                    _ = system_tick.tick() => system.refresh(),
                    _ = stop.changed() => return,
                }
            }
        }));
    }

    Ok(Running {
        ntp_addrs,
        ke_addrs,
        metrics_addr,
        udp: udp_servers,
        shutdown,
        tasks,
        tls: settings.ke.iter().map(|l| l.tls.clone()).collect(),
        keys: settings.keys,
        engine,
    })
}

impl Running {
    /// Serves until SIGTERM or SIGINT, reloading certificates on SIGHUP.
    ///
    /// # Errors
    /// If the signal handlers cannot be installed.
    pub async fn wait(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload(),
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        tracing::info!("shutting down");
        self.stop().await;
        Ok(())
    }

    /// Reloads every listener's certificate.
    pub fn reload(&self) {
        for tls in &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("reloaded NTS-KE certificate"),
                Err(e) => tracing::error!("certificate reload failed, keeping the old one: {e}"),
            }
        }
    }

    /// Stops everything and waits for it.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(engine) = self.engine {
            let _ = engine.shutdown.send(true);
            match tokio::task::spawn_blocking(move || engine.thread.join()).await {
                Ok(Ok(Err(e))) => tracing::error!("sync engine: {e}"),
                Ok(Err(_)) => tracing::error!("the sync engine panicked"),
                _ => {}
            }
        }
        // Blocking joins, off the async threads.
        let udp = self.udp;
        let _ = tokio::task::spawn_blocking(move || udp.into_iter().for_each(UdpServer::shutdown))
            .await;
        if let Err(e) = self.keys.rotate(unix_now()) {
            tracing::error!("saving keys at shutdown failed: {e}");
        }
    }
}
