//! `ntp-client sync --config FILE`: the synchronisation daemon.
//!
//! It polls the `[[source]]`s of the configuration with the engine of
//! [`ntp_io::sync`] and serves its [`Status`] on a Unix socket at
//! `[observability] observation-path` (one JSON document per connection,
//! mode 0600, removed on shutdown) for `ntp-client status` and
//! `ntp-client wait-sync`.
//!
//! By default it only **observes**: the engine keeps a virtual clock (see
//! [`ntp_io::sync`]) and the OS clock is never touched. With `steer = true`
//! under `[synchronization]` it steps, slews and re-rates the OS clock
//! through `adjtimex` ([`OsClock`]) — and refuses to start (exit 1) unless
//! the process holds `CAP_SYS_TIME`. Beyond the panic threshold
//! (`single-step-panic-threshold`, default 1000 s) it stops steering,
//! reports why in the status, and keeps measuring.
//!
//! # Configuration
//!
//! ```toml
//! [[source]]                 # as ntpd-rs users write it
//! mode = "server"            # "server" | "nts" | "pool"
//! address = "ntp.example:123"
//!
//! [[source]]
//! mode = "nts"
//! address = "nts.example:4460"          # the NTS-KE server
//! certificate-authority = "ca.pem"       # private CA (optional)
//!
//! [[source]]
//! mode = "pool"
//! address = "pool.example"
//! count = 4
//!
//! [observability]
//! observation-path = "/run/ntp-client.sock"
//!
//! [synchronization]          # ntpd-rs's keys, then ours
//! minimum-agreeing-sources = 1
//! single-step-panic-threshold = 1000     # seconds
//! steer = false              # ours: true steers the OS clock (needs CAP_SYS_TIME)
//! min-poll = 6               # ours: log2 seconds
//! max-poll = 10
//! burst = true               # a burst at start-up and after unreachability
//! burst-count = 4
//! burst-interval = 2         # seconds
//! step-threshold = 0.125     # seconds
//! stepout = 900              # seconds
//! acquire-wait = 10          # seconds
//! timeout = 1                # seconds per request
//! algorithm = "least-squares"            # or "pll"
//! ```
//!
//! Unknown keys, wrong types and bad values are errors that name the key and
//! its line. Relative `certificate-authority` paths are relative to the
//! configuration file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ntp_clock::{Algorithm, DisciplineConfig, SourceConfig, SystemConfig};
use ntp_io::sync::{
    ClockBackend, EngineConfig, ObserveClock, OsClock, SourceMode, SourceSpec, Status,
    split_host_port,
};
use ntp_proto::NtpDuration;
use serde::Deserialize;
use tokio::sync::watch;

use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Where the status socket lives when the configuration does not say.
pub const DEFAULT_SOCKET: &str = "/run/ntp-client.sock";

/// Arguments of `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The configuration file (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `[[source]]` tables.
    #[serde(default)]
    pub source: Vec<SourceTable>,
    /// `[observability]`.
    #[serde(default)]
    pub observability: Observability,
    /// `[synchronization]`.
    #[serde(default)]
    pub synchronization: Synchronization,
}

/// One `[[source]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceTable {
    /// `server`, `nts` or `pool`.
    pub mode: SourceMode,
    /// `host[:port]`.
    pub address: String,
    /// CA file for NTS-KE.
    pub certificate_authority: Option<PathBuf>,
    /// Pool size.
    pub count: Option<usize>,
}

/// `[observability]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Observability {
    /// The status socket.
    pub observation_path: Option<PathBuf>,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`); `NTP_LOG`
    /// overrides it.
    pub log_level: Option<String>,
}

/// `[synchronization]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Synchronization {
    /// ntpd-rs: fewer fit sources than this means "no sources".
    pub minimum_agreeing_sources: Option<usize>,
    /// ntpd-rs: offsets beyond this (seconds) are never corrected.
    pub single_step_panic_threshold: Option<f64>,
    /// Steer the OS clock (default false: observe).
    pub steer: Option<bool>,
    /// Shortest poll, log₂ s.
    pub min_poll: Option<i8>,
    /// Longest poll, log₂ s.
    pub max_poll: Option<i8>,
    /// Burst at start-up and after unreachability.
    pub burst: Option<bool>,
    /// Requests per burst.
    pub burst_count: Option<u8>,
    /// Seconds between burst requests.
    pub burst_interval: Option<u8>,
    /// Step threshold, seconds.
    pub step_threshold: Option<f64>,
    /// How long an offset beyond the step threshold must last, seconds.
    pub stepout: Option<f64>,
    /// How long to wait for every source's first sample, seconds.
    pub acquire_wait: Option<f64>,
    /// Seconds per request.
    pub timeout: Option<f64>,
    /// `least-squares` or `pll`.
    pub algorithm: Option<String>,
}

/// Reads and checks the configuration at `path`.
///
/// # Errors
/// A message naming the file, the key and its line.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses configuration text (see the module docs).
///
/// # Errors
/// A message naming the key and its line.
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
    // Values that parse but make no sense, named with their line.
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map_or(0, |i| i + 1)
    };
    let sync = &config.synchronization;
    for (key, value) in [
        (
            "single-step-panic-threshold",
            sync.single_step_panic_threshold,
        ),
        ("step-threshold", sync.step_threshold),
        ("stepout", sync.stepout),
        ("acquire-wait", sync.acquire_wait),
        ("timeout", sync.timeout),
    ] {
        if let Some(v) = value
            && !((0.0..1e9).contains(&v))
        {
            return Err(format!(
                "line {}: {key} = {v} must be a number of seconds ≥ 0",
                line_of(key)
            ));
        }
    }
    if sync.timeout == Some(0.0) {
        return Err(format!(
            "line {}: timeout must be above 0",
            line_of("timeout")
        ));
    }
    for (key, value) in [("min-poll", sync.min_poll), ("max-poll", sync.max_poll)] {
        if let Some(v) = value
            && !(0..=17).contains(&v)
        {
            return Err(format!("line {}: {key} = {v} must be 0–17", line_of(key)));
        }
    }
    if let Some(a) = &sync.algorithm
        && a != "least-squares"
        && a != "pll"
    {
        return Err(format!(
            "line {}: algorithm = {a:?} must be \"least-squares\" or \"pll\"",
            line_of("algorithm")
        ));
    }
    for s in &config.source {
        let default_port = if s.mode == SourceMode::Nts { 4460 } else { 123 };
        if let Err(e) = split_host_port(&s.address, default_port) {
            return Err(format!(
                "line {}: address: {e}",
                line_of_value(text, &s.address)
            ));
        }
        if s.count.is_some() && s.mode != SourceMode::Pool {
            return Err(format!(
                "line {}: count is only for mode = \"pool\"",
                line_of_value(text, &s.address)
            ));
        }
        if s.certificate_authority.is_some() && s.mode != SourceMode::Nts {
            return Err(format!(
                "line {}: certificate-authority is only for mode = \"nts\"",
                line_of_value(text, &s.address)
            ));
        }
    }
    if config.source.is_empty() {
        return Err("no [[source]] configured".into());
    }
    Ok(config)
}

fn line_of_value(text: &str, value: &str) -> usize {
    text.lines()
        .position(|l| l.contains(value))
        .map_or(0, |i| i + 1)
}

/// toml's messages span several lines (with a caret); keep them but on one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Config {
    /// The engine configuration; relative CA paths are taken from `base`.
    pub fn engine(&self, base: &Path) -> EngineConfig {
        let s = &self.synchronization;
        let defaults = SourceConfig::default();
        let min_poll = s.min_poll.unwrap_or(defaults.min_poll);
        let max_poll = s
            .max_poll
            .unwrap_or(defaults.max_poll.max(min_poll))
            .max(min_poll);
        let source = SourceConfig {
            min_poll,
            max_poll,
            burst: s.burst.unwrap_or(defaults.burst),
            burst_count: s.burst_count.unwrap_or(defaults.burst_count),
            burst_interval_secs: s.burst_interval.unwrap_or(defaults.burst_interval_secs),
            ..defaults
        };
        let d = DisciplineConfig::default();
        let seconds =
            |v: Option<f64>, default: NtpDuration| v.map_or(default, NtpDuration::from_seconds_f64);
        let discipline = DisciplineConfig {
            algorithm: match s.algorithm.as_deref() {
                Some("pll") => Algorithm::PllFll,
                _ => Algorithm::LeastSquares,
            },
            step_threshold: seconds(s.step_threshold, d.step_threshold),
            stepout: seconds(s.stepout, d.stepout),
            panic_threshold: seconds(s.single_step_panic_threshold, d.panic_threshold),
            min_poll,
            max_poll,
            ..d
        };
        let sd = SystemConfig::default();
        let system = SystemConfig {
            discipline,
            min_candidates: s.minimum_agreeing_sources.unwrap_or(sd.min_candidates),
            acquire_wait: seconds(s.acquire_wait, sd.acquire_wait),
            ..sd
        };
        let sources = self
            .source
            .iter()
            .map(|t| SourceSpec {
                mode: t.mode,
                address: t.address.clone(),
                ca_file: t.certificate_authority.as_ref().map(|p| base.join(p)),
                count: t.count.unwrap_or(4),
            })
            .collect();
        EngineConfig {
            sources,
            source,
            system,
            timeout: Duration::from_secs_f64(s.timeout.unwrap_or(1.0)),
            ..EngineConfig::default()
        }
    }

    /// The status socket's path.
    pub fn socket(&self) -> PathBuf {
        self.observability
            .observation_path
            .clone()
            .unwrap_or_else(|| DEFAULT_SOCKET.into())
    }
}

/// Runs `sync`.
pub fn run(args: &SyncArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    init_logging(config.observability.log_level.as_deref());
    let steer = config.synchronization.steer == Some(true);
    // Checked before anything runs: a process that may not steer never tries.
    let os_clock = if steer {
        match OsClock::new() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!(
                    "error: {}: steer = true: {e}; run with CAP_SYS_TIME or remove steer to observe only",
                    args.config.display()
                );
                return ExitCode::from(EXIT_FAILED);
            }
        }
    } else {
        None
    };
    let base = args
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let engine = config.engine(&base);
    let socket = config.socket();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = match os_clock {
        Some(clock) => runtime.block_on(daemon(engine, &socket, clock)),
        None => runtime.block_on(daemon(engine, &socket, ObserveClock::new())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn init_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NTP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.unwrap_or("info")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Removes the socket file when dropped.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn daemon<C: ClockBackend>(
    engine: EngineConfig,
    socket: &Path,
    clock: C,
) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    // A stale socket from a previous run is replaced; anything else is not.
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        if meta.file_type().is_socket() {
            let _ = std::fs::remove_file(socket);
        } else {
            return Err(format!(
                "{} exists and is not a socket; not replacing it",
                socket.display()
            ));
        }
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let _cleanup = SocketFile(socket.to_path_buf());
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", socket.display()))?;
    if clock.steers() {
        tracing::info!(socket = %socket.display(), sources = engine.sources.len(), "steering the OS clock");
    } else {
        tracing::info!(socket = %socket.display(), sources = engine.sources.len(), "observing (the OS clock is not steered)");
    }

    let (status_tx, status_rx) = watch::channel(Status::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let status_rx = Arc::new(status_rx);
    let server = tokio::spawn(serve_status(listener, status_rx));
    let engine_run = ntp_io::sync::run(engine, clock, status_tx, shutdown_rx);
    tokio::pin!(engine_run);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
    let result = tokio::select! {
        r = &mut engine_run => r.map_err(|e| e.to_string()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
    };
    let _ = shutdown_tx.send(true);
    server.abort();
    tracing::info!("stopped");
    result
}

async fn serve_status(listener: tokio::net::UnixListener, status: Arc<watch::Receiver<Status>>) {
    use tokio::io::AsyncWriteExt as _;
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let snapshot = status.borrow().clone();
        tokio::spawn(async move {
            let mut json = serde_json::to_vec(&snapshot).unwrap_or_default();
            json.push(b'\n');
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&json)).await;
        });
    }
}
