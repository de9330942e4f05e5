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
//! observation-permissions = 0o600        # the default here (ntpd-rs: 0o666)
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
//! discipline = "least-squares"           # or "pll"
//!
//! [source-defaults]          # ntpd-rs's poll range, log2 seconds
//! poll-interval-limits = { min = 6, max = 10 }
//! ```
//!
//! An ntpd-rs client configuration loads unchanged: the ntpd-rs keys this
//! daemon does not implement (`[[server]]`, `startup-step-panic-threshold`,
//! `[synchronization.algorithm]`, `log-path`, …) are accepted, each with a
//! warning naming its line. Unknown keys, wrong types and bad values are
//! errors that name the key and its line. Relative `certificate-authority`
//! paths are relative to the configuration file.

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

/// An ntpd-rs key that `ntp-client sync` accepts and ignores (with a
/// warning naming its line).
pub type Ignored = Option<toml::Spanned<toml::Value>>;

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
    /// `[source-defaults]` (ntpd-rs).
    #[serde(default)]
    pub source_defaults: SourceDefaults,
    /// ntpd-rs's `[[server]]`: ignored (serving is `ntp-server`'s job).
    pub server: Ignored,
    /// ntpd-rs's `[[nts-ke-server]]`: ignored.
    pub nts_ke_server: Ignored,
    /// ntpd-rs's `[keyset]`: ignored.
    pub keyset: Ignored,
    /// ntpd-rs's `[clock]`: ignored.
    pub clock: Ignored,
}

/// `[source-defaults]` (ntpd-rs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceDefaults {
    /// `{ min = .., max = .. }`, log₂ s: the poll range (as `min-poll` and
    /// `max-poll`, which win when both are given).
    pub poll_interval_limits: Option<PollLimits>,
    /// Ignored: polling starts at the minimum, with a burst.
    pub initial_poll_interval: Ignored,
}

/// ntpd-rs's `poll-interval-limits`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollLimits {
    /// Shortest poll, log₂ s.
    pub min: Option<i8>,
    /// Longest poll, log₂ s.
    pub max: Option<i8>,
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
    /// ntpd-rs: ignored (NTPv4 always).
    pub ntp_version: Ignored,
    /// ntpd-rs: ignored (no pool address filter).
    pub ignore: Ignored,
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
    /// Mode of the status socket (default 0o600).
    pub observation_permissions: Option<u32>,
    /// ntpd-rs: ignored (logs go to stderr).
    pub log_path: Ignored,
    /// ntpd-rs: ignored.
    pub log_path_metrics_exporter: Ignored,
    /// ntpd-rs: ignored.
    pub ansi_colors: Ignored,
    /// ntpd-rs: ignored (no metrics endpoint here).
    pub metrics_exporter_listen: Ignored,
}

/// `[synchronization]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Synchronization {
    /// ntpd-rs: fewer fit sources than this means "no sources".
    pub minimum_agreeing_sources: Option<usize>,
    /// ntpd-rs: offsets beyond this (seconds) are never corrected: a number,
    /// `"inf"`, or `{ forward = .., backward = .. }` (the smaller is used).
    pub single_step_panic_threshold: Option<toml::Spanned<toml::Value>>,
    /// ntpd-rs: ignored (the first step obeys the single-step threshold).
    pub startup_step_panic_threshold: Ignored,
    /// ntpd-rs: ignored.
    pub accumulated_step_panic_threshold: Ignored,
    /// ntpd-rs: ignored.
    pub warn_on_jump: Ignored,
    /// ntpd-rs (server side): ignored.
    pub local_stratum: Ignored,
    /// ntpd-rs (server side): ignored.
    pub reference_id: Ignored,
    /// ntpd-rs's `[synchronization.algorithm]`: ignored (see `discipline`).
    pub algorithm: Ignored,
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
    /// `least-squares` (default) or `pll`.
    pub discipline: Option<String>,
}

/// A checked configuration and its warnings.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// One line each, `line N: …`, for the ntpd-rs keys that are ignored.
    pub warnings: Vec<String>,
}

/// Seconds from ntpd-rs's panic threshold forms: a number, `"inf"`, or a
/// `{ forward, backward }` table (the smaller).
fn threshold_seconds(value: &toml::Value) -> Option<f64> {
    match value {
        toml::Value::Integer(i) => u32::try_from(*i).ok().map(f64::from),
        toml::Value::Float(f) if (0.0..1e9).contains(f) => Some(*f),
        toml::Value::String(s) if s == "inf" => Some(f64::INFINITY),
        toml::Value::Table(t) => {
            let mut least = f64::INFINITY;
            for (k, v) in t {
                if k != "forward" && k != "backward" {
                    return None;
                }
                least = least.min(threshold_seconds(v)?);
            }
            Some(least)
        }
        _ => None,
    }
}

impl Synchronization {
    /// The panic threshold in seconds, if configured (infinite for "inf").
    pub fn panic_threshold(&self) -> Option<f64> {
        self.single_step_panic_threshold
            .as_ref()
            .and_then(|v| threshold_seconds(v.get_ref()))
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

fn ignored_warnings(text: &str, config: &Config) -> Vec<String> {
    let o = &config.observability;
    let s = &config.synchronization;
    let mut found: Vec<(&str, &str, &Ignored, &str)> = vec![
        (
            "server",
            "",
            &config.server,
            "ntp-client sync does not serve time (use ntp-server)",
        ),
        (
            "nts-ke-server",
            "",
            &config.nts_ke_server,
            "ntp-client sync does not serve time (use ntp-server)",
        ),
        (
            "keyset",
            "",
            &config.keyset,
            "ntp-client sync does not serve time (use ntp-server)",
        ),
        (
            "clock",
            "",
            &config.clock,
            "the system realtime clock is used",
        ),
        (
            "log-path",
            "[observability]",
            &o.log_path,
            "logs go to stderr",
        ),
        (
            "log-path-metrics-exporter",
            "[observability]",
            &o.log_path_metrics_exporter,
            "there is no metrics exporter",
        ),
        (
            "ansi-colors",
            "[observability]",
            &o.ansi_colors,
            "logs are not coloured",
        ),
        (
            "metrics-exporter-listen",
            "[observability]",
            &o.metrics_exporter_listen,
            "there is no metrics exporter (use the status socket)",
        ),
        (
            "startup-step-panic-threshold",
            "[synchronization]",
            &s.startup_step_panic_threshold,
            "the first step obeys single-step-panic-threshold",
        ),
        (
            "accumulated-step-panic-threshold",
            "[synchronization]",
            &s.accumulated_step_panic_threshold,
            "not implemented",
        ),
        (
            "warn-on-jump",
            "[synchronization]",
            &s.warn_on_jump,
            "not implemented",
        ),
        (
            "local-stratum",
            "[synchronization]",
            &s.local_stratum,
            "a server setting",
        ),
        (
            "reference-id",
            "[synchronization]",
            &s.reference_id,
            "a server setting",
        ),
        (
            "algorithm",
            "[synchronization]",
            &s.algorithm,
            "our discipline is chosen with discipline = \"least-squares\" | \"pll\"",
        ),
        (
            "initial-poll-interval",
            "[source-defaults]",
            &config.source_defaults.initial_poll_interval,
            "polling starts at the minimum with a burst",
        ),
    ];
    for t in &config.source {
        found.push((
            "ntp-version",
            "[[source]]",
            &t.ntp_version,
            "NTPv4 is always used",
        ));
        found.push((
            "ignore",
            "[[source]]",
            &t.ignore,
            "pool addresses are not filtered",
        ));
    }
    let mut warnings: Vec<(usize, String)> = found
        .into_iter()
        .filter_map(|(key, section, value, why)| {
            let v = value.as_ref()?;
            let line = line_at(text, v.span().start);
            let place = if section.is_empty() {
                String::new()
            } else {
                format!(" in {section}")
            };
            Some((
                line,
                format!("line {line}: \"{key}\"{place} is an ntpd-rs setting that ntp-client sync ignores: {why}"),
            ))
        })
        .collect();
    warnings.sort();
    warnings.into_iter().map(|(_, w)| w).collect()
}

/// Reads and checks the configuration at `path`.
///
/// # Errors
/// A message naming the file, the key and its line.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses configuration text (see the module docs).
///
/// # Errors
/// A message naming the key and its line.
pub fn parse(text: &str) -> Result<Loaded, String> {
    let config: Config = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
    // Values that parse but make no sense, named with their line.
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map_or(0, |i| i + 1)
    };
    let sync = &config.synchronization;
    if let Some(v) = &sync.single_step_panic_threshold
        && sync.panic_threshold().is_none()
    {
        return Err(format!(
            "line {}: single-step-panic-threshold must be seconds ≥ 0, \"inf\", or {{ forward = .., backward = .. }}",
            line_at(text, v.span().start)
        ));
    }
    if let Some(limits) = &config.source_defaults.poll_interval_limits {
        for v in [limits.min, limits.max].into_iter().flatten() {
            if !(0..=17).contains(&v) {
                return Err(format!(
                    "line {}: poll-interval-limits: {v} must be 0–17",
                    line_of("poll-interval-limits")
                ));
            }
        }
    }
    if let Some(mode) = config.observability.observation_permissions
        && mode > 0o777
    {
        return Err(format!(
            "line {}: observation-permissions = {mode:#o} is not a file mode",
            line_of("observation-permissions")
        ));
    }
    for (key, value) in [
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
    if let Some(a) = &sync.discipline
        && a != "least-squares"
        && a != "pll"
    {
        return Err(format!(
            "line {}: discipline = {a:?} must be \"least-squares\" or \"pll\"",
            line_of("discipline")
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
    let warnings = ignored_warnings(text, &config);
    Ok(Loaded { config, warnings })
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
        let limits = self.source_defaults.poll_interval_limits.as_ref();
        let min_poll = s
            .min_poll
            .or(limits.and_then(|l| l.min))
            .unwrap_or(defaults.min_poll);
        let max_poll = s
            .max_poll
            .or(limits.and_then(|l| l.max))
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
            algorithm: match s.discipline.as_deref() {
                Some("pll") => Algorithm::PllFll,
                _ => Algorithm::LeastSquares,
            },
            step_threshold: seconds(s.step_threshold, d.step_threshold),
            stepout: seconds(s.stepout, d.stepout),
            panic_threshold: match s.panic_threshold() {
                Some(t) if t.is_infinite() => NtpDuration::MAX,
                Some(t) => NtpDuration::from_seconds_f64(t),
                None => d.panic_threshold,
            },
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
    let Loaded { config, warnings } = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    init_logging(config.observability.log_level.as_deref());
    for w in &warnings {
        tracing::warn!("{}: {w}", args.config.display());
    }
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
    let permissions = config
        .observability
        .observation_permissions
        .unwrap_or(0o600);
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
        Some(clock) => runtime.block_on(daemon(engine, &socket, permissions, clock)),
        None => runtime.block_on(daemon(engine, &socket, permissions, ObserveClock::new())),
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
    permissions: u32,
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
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(permissions))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// ntpd-rs's shipped default client configuration, and its NTS example.
    const NTPD_RS_DEFAULT: &str = r#"
[observability]
log-level = "info"
observation-path = "/var/run/ntpd-rs/observe"

[[source]]
mode = "pool"
address = "ntpd-rs.pool.ntp.org"
count = 4

[synchronization]
single-step-panic-threshold = 1800
startup-step-panic-threshold = { forward="inf", backward = 86400 }
"#;

    const NTPD_RS_NTS: &str = r#"
[[source]]
mode = "nts"
address = "localhost:4460"
certificate-authority = "ntp-proto/test-keys/testca.pem"
ntp-version = 4

[synchronization]
minimum-agreeing-sources = 1
single-step-panic-threshold = { forward = 10, backward = "inf" }

[synchronization.algorithm]
step-threshold = 0.01

[source-defaults]
poll-interval-limits = { min = 4, max = 10 }
initial-poll-interval = 4

[[server]]
listen = "[::]:123"
"#;

    #[test]
    fn ntpd_rs_client_configs_load_with_warnings_for_what_is_ignored() {
        let loaded = parse(NTPD_RS_DEFAULT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.config.source[0].mode, SourceMode::Pool);
        assert_eq!(
            loaded.config.synchronization.panic_threshold(),
            Some(1800.0)
        );
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].starts_with("line 13: \"startup-step-panic-threshold\""),
            "{:?}",
            loaded.warnings
        );
        let engine = loaded.config.engine(Path::new("/etc"));
        assert_eq!(engine.sources[0].count, 4);
        assert_eq!(
            engine.system.discipline.panic_threshold,
            NtpDuration::from_seconds(1800)
        );

        let loaded = parse(NTPD_RS_NTS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.config.synchronization.panic_threshold(), Some(10.0));
        let lines: Vec<&str> = loaded.warnings.iter().map(String::as_str).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("line 6: \"ntp-version\""), "{lines:?}");
        assert!(lines[1].starts_with("line 12: \"algorithm\""), "{lines:?}");
        assert!(
            lines[2].starts_with("line 17: \"initial-poll-interval\""),
            "{lines:?}"
        );
        assert!(lines[3].starts_with("line 19: \"server\""), "{lines:?}");
        let engine = loaded.config.engine(Path::new("/etc/ntpd-rs"));
        assert_eq!((engine.source.min_poll, engine.source.max_poll), (4, 10));
        assert_eq!(
            engine.sources[0].ca_file.as_deref(),
            Some(Path::new("/etc/ntpd-rs/ntp-proto/test-keys/testca.pem"))
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("[[source]]\nmode = \"server\"\naddress = \"h\"\n\n[synchronization]\nsingle-step-panic-threshold = \"soon\"\n")
            .unwrap_err();
        assert!(
            e.contains("line 6") && e.contains("single-step-panic-threshold"),
            "{e}"
        );
        let e = parse("[[source]]\nmode = \"server\"\naddress = \"h\"\n\n[synchronization]\ndiscipline = \"kalman\"\n")
            .unwrap_err();
        assert!(e.contains("line 6") && e.contains("discipline"), "{e}");
        let e = parse("[[source]]\nmode = \"server\"\naddress = \"h:99999\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("address"), "{e}");
        let e = parse("[[source]]\nmode = \"ntp\"\naddress = \"h\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse("").unwrap_err().contains("no [[source]]"));
    }
}
