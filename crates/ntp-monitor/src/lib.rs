//! `ntp-monitor`: provable time for timestamp authorities.
//!
//! A timestamp authority may sign only while its clock is provably right.
//! The monitor checks the configured NTP and NTS sources in rounds, decides
//! with `ntp-policy` whether the time is trustworthy, gates signing through
//! `/health`, records every check in a SQLite transaction log, exports the
//! log as signed, hash-chained CSV for auditors, and shows it all on a
//! dashboard.
//!
//! - `ntp-monitor run --config FILE`: the monitor ([`monitor`], [`http`]).
//! - `ntp-monitor export --config FILE [--from T] [--to T] [--output F]`:
//!   signed CSV ([`export`]).
//! - `ntp-monitor verify --config FILE EXPORT`: exit 0 when intact, 1 naming
//!   the first changed, removed or reordered row.
//! - `ntp-monitor demo`: local NTS servers in-process (one deliberately
//!   wrong), monitored, with the dashboard ([`demo`]).
//!
//! The configuration is described in [`config`].

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ntp_policy::UnixMs;
use ring::signature::KeyPair as _;

pub mod alerts;
pub mod config;
pub mod demo;
pub mod export;
pub mod http;
pub mod monitor;
pub mod store;
pub mod timefmt;

/// Exit status of `verify` for a tampered export.
pub const EXIT_TAMPERED: u8 = 1;
/// Exit status for unusable input: bad configuration, unreadable files,
/// usage errors.
pub const EXIT_ERROR: u8 = 2;

/// Time-trust monitor for timestamp authorities.
#[derive(Debug, Parser)]
#[command(name = "ntp-monitor", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the sources on the schedule, serve /health, /metrics, the API
    /// and the dashboard, log every check.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check the configuration and exit.
    CheckConfig {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Export the checks as hash-chained, signed CSV.
    Export {
        /// The configuration file (database and signing key).
        #[arg(long)]
        config: PathBuf,
        /// First time included (RFC 3339 UTC, a date, or Unix seconds).
        #[arg(long)]
        from: Option<String>,
        /// First time excluded (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Output format (only csv).
        #[arg(long, default_value = "csv")]
        format: String,
        /// What to export: the checks (default), the verdicts or the alerts.
        #[arg(long, value_enum, default_value_t = export::What::Checks)]
        what: export::What,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Verify an export: exit 0 when intact, 1 naming the first changed,
    /// removed or reordered row.
    Verify {
        /// The configuration file (signing key).
        #[arg(long, required_unless_present = "public_key")]
        config: Option<PathBuf>,
        /// Verify against this Ed25519 public key (64 hex digits, as each
        /// export prints it) instead of the configured key: for auditors
        /// who do not hold the private key.
        #[arg(long, conflicts_with = "config")]
        public_key: Option<String>,
        /// The export file.
        export: PathBuf,
    },
    /// Start local NTS servers (one deliberately wrong), monitor them and
    /// serve the dashboard; no configuration and no internet needed.
    Demo {
        /// Where to serve the dashboard (default 127.0.0.1:8123, or any free
        /// port when that is taken).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Keep the log here instead of a temporary directory.
        #[arg(long)]
        database: Option<PathBuf>,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Seconds per drift cycle of the wrong server (tests use a short one).
        #[arg(long, hide = true)]
        drift_period: Option<f64>,
    },
}

/// Parses `args` and runs the subcommand; returns the process exit status.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { 0 });
        }
    };
    // The demo is for people at a terminal: alerts (warnings) but not every
    // round; NTP_LOG overrides as always.
    init_logging(if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    });
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ntp-monitor: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NTP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn what_name(what: export::What) -> &'static str {
    match what {
        export::What::Checks => "checks",
        export::What::Verdicts => "verdicts",
        export::What::Alerts => "alerts",
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Waits for SIGTERM or SIGINT. SIGHUP (which would otherwise end the
/// process) is logged and ignored: the configuration is read at start only.
pub(crate) async fn signalled() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                tracing::warn!("SIGHUP ignored: restart ntp-monitor to apply a new configuration");
            }
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let config = config::load(&config)?;
            runtime()?.block_on(async {
                let running = monitor::start(config).await?;
                tracing::info!("serving http://{}/", running.http_addr);
                signalled().await?;
                tracing::info!("shutting down");
                running.stop().await;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::CheckConfig { config } => {
            let c = config::load(&config)?;
            println!(
                "{}: {} sources, mode {}, ok",
                config.display(),
                c.sources.len(),
                c.policy.mode.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            config,
            from,
            to,
            format,
            what,
            output,
        } => {
            if format != "csv" {
                anyhow::bail!("--format {format:?}: only csv is supported");
            }
            let config = config::load(&config)?;
            let from = from
                .as_deref()
                .map(timefmt::parse)
                .transpose()?
                .unwrap_or(UnixMs(0));
            let to = to
                .as_deref()
                .map(timefmt::parse)
                .transpose()?
                .unwrap_or_else(|| UnixMs(timefmt::now().as_millis() + 1));
            let key = export::load_or_create_key(&config.signing_key)?;
            let n = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = export::export_what(
                        &config.monitor.database,
                        &key,
                        what,
                        from,
                        to,
                        &mut w,
                    )?;
                    w.into_inner()
                        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.error()))?
                        .sync_all()?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    let n = export::export_what(
                        &config.monitor.database,
                        &key,
                        what,
                        from,
                        to,
                        &mut w,
                    )?;
                    w.flush()?;
                    n
                }
            };
            eprintln!("ntp-monitor: exported {n} {}", what_name(what));
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            config,
            public_key,
            export,
        } => {
            let public_key = match (config, public_key) {
                (_, Some(hex_key)) => {
                    let k = hex::decode(hex_key.trim())
                        .map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
                    if k.len() != 32 {
                        anyhow::bail!("--public-key: {} bytes, an Ed25519 key has 32", k.len());
                    }
                    k
                }
                (Some(config), None) => {
                    let config = config::load(&config)?;
                    export::load_key(&config.signing_key)?
                        .public_key()
                        .as_ref()
                        .to_vec()
                }
                (None, None) => anyhow::bail!("verify needs --config or --public-key"),
            };
            let bytes = std::fs::read(&export)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", export.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            export::looks_like_export(&text)?;
            match export::verify(&text, &public_key) {
                Ok(n) => {
                    println!("{}: intact, {n} rows, signature valid", export.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(t) => {
                    println!("{}: TAMPERED: {t}", export.display());
                    Ok(ExitCode::from(EXIT_TAMPERED))
                }
            }
        }
        Command::Demo {
            listen,
            database,
            duration,
            drift_period,
        } => runtime()?.block_on(demo::run(demo::DemoOptions {
            listen,
            database,
            duration: duration.map(std::time::Duration::from_secs),
            drift_period,
        })),
    }
}
