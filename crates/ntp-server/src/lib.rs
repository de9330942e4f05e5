//! `ntp-server`: an NTP and NTS server for public NTS services and internal
//! time appliances.
//!
//! # Design overview
//!
//! - [`core`]: the sans-IO request handler — access control, rate limiting,
//!   plain and NTS answers, Kiss-o'-Death, counters. Bytes and time in, bytes
//!   out; stateless per request apart from the bounded rate-limit table.
//! - [`udp`]: one blocking worker thread per core, each with its own
//!   `SO_REUSEPORT` socket, `recvmmsg` batches and kernel receive
//!   timestamps, each reply sent as soon as it is stamped (so its transmit
//!   timestamp is when it left); no allocation per packet.
//! - [`ke`]: the NTS-KE listener on tokio + rustls, with limits on concurrent
//!   exchanges, exchange time and request size; certificates reload on SIGHUP.
//! - [`keys`]: cookie master keys — random and persisted (0600), or derived
//!   from a fleet secret — rotated on a timer.
//! - [`system`]: what the server says about its clock: a local reference, or
//!   (with `[[source]]`s) what the sync engine of `ntp-io` finds upstream,
//!   "unsynchronised" until that is trustworthy. The server never steers the
//!   clock.
//! - [`http`]: the Prometheus endpoint.
//! - [`config`]: the TOML configuration, compatible with ntpd-rs server
//!   configs, with errors that name the key and the line.
//! - [`run`]: ties the above together with signal handling.
//!
//! `main.rs` only calls [`main_with_args`].

pub mod config;
pub mod core;
pub mod http;
pub mod ke;
pub mod keys;
pub mod run;
pub mod system;
pub mod udp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ntp_proto::ReferenceId;
use zeroize::Zeroizing;

use crate::config::{
    Config, FilterAction, KeySource as ConfigKeySource, Loaded, RateLimitAction as ConfigRateAction,
};
use crate::core::{CoreConfig, DenyAction, IpNet, RateLimitAction, RateLimitConfig, ServerCore};
use crate::ke::{KeSettings, TlsReloader};
use crate::keys::{KeySource, KeyStore};
use crate::run::{KeListener, NtpListener, Settings};
use crate::system::SystemState;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/ntp-server/ntp-server.toml";

/// An NTP and NTS server.
#[derive(Debug, Parser)]
#[command(name = "ntp-server", version, about)]
pub struct Cli {
    /// Configuration file (TOML; ntpd-rs server configs work unchanged).
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file: errors name the key and the line.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

/// Parses `args` and runs the command; returns the process exit status.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
        None => match serve(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `check-config`: prints warnings and errors, exit 0 when usable.
fn check_config(file: &Path) -> ExitCode {
    let loaded = match config::load(file) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let file_errors = loaded.config.validate_files();
    for e in &file_errors {
        eprintln!("error: {e}");
    }
    if !file_errors.is_empty() {
        return ExitCode::FAILURE;
    }
    println!(
        "{}: OK ({} warning(s))",
        file.display(),
        loaded.warnings.len()
    );
    ExitCode::SUCCESS
}

fn serve(path: &Path) -> anyhow::Result<()> {
    let Loaded { config, warnings } = config::load(path)?;
    init_logging(&config);
    raise_open_file_limit();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Some(e) = config.validate_files().into_iter().next() {
        return Err(e.into());
    }
    // NTS-KE handshakes are CPU work: one async worker per core this process
    // may use (the affinity mask and cgroup quota count, so a server pinned to
    // one core does not pay for two threads handing work to each other).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .thread_name("ntp-server-async")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let running = run::start(settings_from_config(&config)?).await?;
        // Every socket is bound: privileges are no longer needed.
        drop_privileges(&config.process)?;
        running.wait().await
    })
}

/// Switches to `[process] user` (and group) for good, if configured. glibc
/// applies the change to every thread; leaving uid 0 clears all
/// capabilities, so nothing privileged (binding low ports, touching the
/// clock) remains possible.
///
/// # Errors
/// An unknown user or group, a configured user while not running as root
/// (unless already that user), or a failed switch.
pub fn drop_privileges(process: &config::ProcessConfig) -> anyhow::Result<()> {
    use nix::unistd::{Group, Uid, User, setgid, setgroups, setuid};
    let Some(name) = &process.user else {
        return Ok(());
    };
    let user = User::from_name(name)?
        .with_context(|| format!("[process] user {name:?} does not exist"))?;
    let gid = match &process.group {
        Some(group) => {
            Group::from_name(group)?
                .with_context(|| format!("[process] group {group:?} does not exist"))?
                .gid
        }
        None => user.gid,
    };
    if !Uid::effective().is_root() {
        if Uid::effective() == user.uid {
            return Ok(());
        }
        anyhow::bail!(
            "[process] user = {name:?} needs ntp-server to start as root (it runs as uid {})",
            Uid::effective()
        );
    }
    setgroups(&[gid]).context("setgroups")?;
    setgid(gid).context("setgid")?;
    setuid(user.uid).context("setuid")?;
    if setuid(Uid::from_raw(0)).is_ok() {
        anyhow::bail!("could become root again after switching to {name:?}");
    }
    tracing::info!(user = %name, uid = %user.uid, gid = %gid, "dropped privileges");
    Ok(())
}

/// Resolves a loaded configuration into what [`run::start`] needs: reads the
/// certificates and keys, builds one request core per `[[server]]`.
///
/// # Errors
/// Unreadable certificates or key files, an unusable fleet secret, or a
/// policy the core cannot express.
pub fn settings_from_config(config: &Config) -> anyhow::Result<Settings> {
    let reference_id = ReferenceId::from_bytes(config.synchronization.reference_id);
    let (system, engine) = if config.sources.is_empty() {
        let system = SystemState::local(
            config.synchronization.local_stratum,
            reference_id,
            config.server_clock.precision,
        );
        (Arc::new(system), None)
    } else {
        let system = SystemState::upstream(
            config.synchronization.local_stratum,
            reference_id,
            config.server_clock.precision,
            config.synchronization.max_offset,
        );
        let engine = engine_config(config, system.precision());
        (Arc::new(system), Some(engine))
    };
    let source = match config.keyset.source() {
        ConfigKeySource::Random => KeySource::Random { path: None },
        ConfigKeySource::Stored(path) => KeySource::Random {
            path: Some(path.to_path_buf()),
        },
        ConfigKeySource::Fleet(_) => {
            let file = config
                .keyset
                .fleet_secret_path
                .as_ref()
                .context("fleet mode without a secret path")?;
            KeySource::Fleet {
                secret: Zeroizing::new(config::read_fleet_secret(file)?),
            }
        }
    };
    let keys = Arc::new(
        KeyStore::open(source, config.keyset.key_set_config()).context("NTS cookie keys")?,
    );

    let mut ntp = Vec::new();
    for s in &config.servers {
        let nets = |list: &Option<config::FilterList>| -> anyhow::Result<Vec<IpNet>> {
            list.iter()
                .flat_map(|l| l.filter.iter())
                .map(|subnet| {
                    subnet
                        .to_string()
                        .parse::<IpNet>()
                        .map_err(anyhow::Error::from)
                })
                .collect()
        };
        let action = |a: FilterAction| match a {
            FilterAction::Ignore => DenyAction::Ignore,
            FilterAction::Deny => DenyAction::Deny,
        };
        let deny_action = match (&s.denylist, &s.allowlist) {
            (Some(d), Some(a)) if d.action != a.action => {
                tracing::warn!(
                    "line {}: allowlist and denylist actions differ; refused clients all get the denylist's",
                    s.line
                );
                action(d.action)
            }
            (Some(d), _) => action(d.action),
            (None, Some(a)) => action(a.action),
            (None, None) => DenyAction::Ignore,
        };
        let rate_limit = (s.rate_limiting_cache_size > 0).then(|| RateLimitConfig {
            capacity: s.rate_limiting_cache_size,
            cutoff_ms: u64::try_from(s.rate_limiting_cutoff.as_millis()).unwrap_or(u64::MAX),
            action: match s.rate_limit_action {
                ConfigRateAction::Kod => RateLimitAction::Kod,
                ConfigRateAction::Drop => RateLimitAction::Drop,
            },
        });
        let core = CoreConfig {
            allow: nets(&s.allowlist)?,
            deny: nets(&s.denylist)?,
            deny_action,
            rate_limit,
            require_nts: s.require_nts.is_some(),
            require_nts_action: s.require_nts.map_or(DenyAction::Ignore, action),
        };
        ntp.push(NtpListener {
            listen: s.listen,
            workers: s.worker_count().get(),
            core: Arc::new(ServerCore::new(core, rand::random())),
        });
    }

    let mut ke = Vec::new();
    for k in &config.nts_ke_servers {
        let tls = TlsReloader::load(&k.certificate_chain_path.path, &k.private_key_path.path)
            .with_context(|| {
                format!(
                    "certificate {} / key {}",
                    k.certificate_chain_path.path.display(),
                    k.private_key_path.path.display()
                )
            })?;
        ke.push(KeListener {
            settings: KeSettings {
                listen: k.listen,
                timeout: k.key_exchange_timeout,
                max_connections: k.concurrent_connections,
                max_request_bytes: k.max_request_bytes,
                ntp_server: k.ntp_server.clone(),
                ntp_port: k.ntp_port,
            },
            tls: Arc::new(tls),
        });
    }

    Ok(Settings {
        ntp,
        ke,
        keys,
        system,
        metrics_listen: config.observability.metrics_exporter_listen,
        engine,
    })
}

/// The sync engine's configuration from `[[source]]` and `[synchronization]`.
pub fn engine_config(config: &Config, precision: i8) -> ntp_io::sync::EngineConfig {
    use ntp_io::sync::{EngineConfig, SourceMode, SourceSpec};
    let sync = &config.synchronization;
    let source = ntp_clock::SourceConfig {
        min_poll: sync.min_poll,
        max_poll: sync.max_poll,
        ..ntp_clock::SourceConfig::default()
    };
    let system = ntp_clock::SystemConfig {
        discipline: ntp_clock::DisciplineConfig {
            min_poll: sync.min_poll,
            max_poll: sync.max_poll,
            ..ntp_clock::DisciplineConfig::default()
        },
        acquire_wait: ntp_proto::NtpDuration::from_seconds_f64(sync.acquire_wait.as_secs_f64()),
        ..ntp_clock::SystemConfig::default()
    };
    let sources = config
        .sources
        .iter()
        .map(|s| SourceSpec {
            mode: match s.mode {
                config::SourceMode::Server => SourceMode::Server,
                config::SourceMode::Nts => SourceMode::Nts,
                config::SourceMode::Pool => SourceMode::Pool,
            },
            address: s.address.clone(),
            ca_file: s.certificate_authority.as_ref().map(|p| p.path.clone()),
            count: s.count,
        })
        .collect();
    EngineConfig {
        sources,
        source,
        system,
        precision,
        ..EngineConfig::default()
    }
}

/// Raises the soft limit on open files to the hard limit: each NTS-KE
/// connection is a descriptor, and the usual soft limit of 1024 is far below
/// what the connection caps allow.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!("cannot raise the open-file limit from {soft}: {e}"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
}

fn init_logging(config: &Config) {
    let default = config
        .observability
        .log_level
        .map_or_else(|| "info".to_string(), |l| l.to_string().to_lowercase());
    let filter = tracing_subscriber::EnvFilter::try_from_env("NTP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
