//! The configuration: TOML, compatible with ntpd-rs.
//!
//! An ntpd-rs (1.9) server configuration works unchanged: operators switch by changing
//! the binary. Every key of ntpd-rs's `ntp.toml(5)` is known here. The keys this server
//! implements are read and checked; the ones it does not implement (clock
//! steering, NTS pools, the observation socket, log files) load and are
//! each named in a [`Warning`] with its line. A key nobody knows is a [`ConfigError`]
//! naming the key, its section and its line, with a "did you mean" when one is close:
//!
//! ```text
//! line 7: unknown key "listne" in [[server]] (did you mean "listen"?)
//! ```
//!
//! Our own keys (kebab-case, like ntpd-rs's) sit beside them: `rate-limit-action` and
//! `workers` in `[[server]]`, `max-request-bytes` in `[[nts-ke-server]]`,
//! `fleet-secret-path` in `[keyset]`, and the `[server-clock]` and `[process]` sections.
//!
//! # Use
//! [`load`] reads a file, [`parse`] a string; both return the typed [`Config`] and every
//! [`Warning`], or the first [`ConfigError`] in file order. They check everything that
//! needs no file system; [`Config::validate_files`] then checks the certificate, key and
//! secret files (the shell runs it at start-up and on reload).
//!
//! Messages display as `FILE:LINE: message` after [`load`], `line LINE: message` after
//! [`parse`].
//!
//! # Example
//! Every section, annotated (`docs/ntp-server.toml` in the repository is the same with
//! longer comments):
//!
//! ```
//! let text = r#"
//! ## NTP over UDP; repeat [[server]] for more addresses.
//! [[server]]
//! listen = "0.0.0.0:123"               # required
//! rate-limiting-cache-size = 100000    # clients remembered by the rate limiter (0 = off)
//! rate-limiting-cutoff-ms = 1000       # shortest interval between two requests of a client
//! rate-limit-action = "kod"            # ours: "kod" (RATE kiss code) or "drop"
//! denylist = { filter = ["192.0.2.0/24"], action = "ignore" }  # never answered
//! allowlist = { filter = ["0.0.0.0/0", "::/0"], action = "deny" }  # others get DENY
//! require-nts = false                  # true/"ignore" or "deny" refuse plain NTP
//! accept-ntp-versions = [3, 4]
//! workers = 2                          # ours: UDP threads (default: one per CPU)
//!
//! [[server]]
//! listen = "[::]:123"
//!
//! ## NTS key exchange over TLS (RFC 8915 §4).
//! [[nts-ke-server]]
//! listen = "[::]:4460"
//! certificate-chain-path = "/etc/ntp-server/fullchain.pem"   # required
//! private-key-path = "/etc/ntp-server/privkey.pem"           # required
//! key-exchange-timeout-ms = 1000
//! concurrent-connections = 512
//! ntp-port = 123                       # sent to clients when not the default
//! ntp-server = "time.example.com"      # sent to clients when another host serves NTP
//! max-request-bytes = 1024             # ours
//!
//! ## The NTS cookie keys: stored in a file, or derived from a fleet secret (not both).
//! [keyset]
//! key-storage-path = "/var/lib/ntp-server/keys"
//! stale-key-count = 7                  # old keys still accepted
//! key-rotation-interval = 86400        # seconds
//!
//! [synchronization]
//! local-stratum = 1                    # 1 to 16 (16 = unsynchronised)
//! reference-id = "GPS"                 # up to 4 ASCII characters, sent at stratum 1
//!
//! [observability]
//! log-level = "info"
//! metrics-exporter-listen = "127.0.0.1:9975"   # Prometheus /metrics (unset = off)
//!
//! ## Upstreams, as ntpd-rs writes them: the server advertises stratum, reference
//! ## id, leap and root distance from them (and "unsynchronised" until they agree).
//! [[source]]
//! mode = "server"                      # "server" | "nts" | "pool"
//! address = "ntp.example.com:123"
//!
//! ## Ours: facts about the local clock.
//! [server-clock]
//! precision = -20                      # log2 seconds (default: measured)
//! "#;
//! let loaded = ntp_server::config::parse(text)?;
//! let config = &loaded.config;
//! assert_eq!(config.servers.len(), 2);
//! assert_eq!(config.servers[0].listen, "0.0.0.0:123".parse()?);
//! assert_eq!(config.nts_ke_servers[0].max_request_bytes, 1024);
//! assert_eq!(config.synchronization.reference_id, *b"GPS\0");
//! assert_eq!(config.sources[0].address, "ntp.example.com:123");
//! assert!(loaded.warnings.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Compatibility with ntpd-rs
//! "Implemented" keys behave as in ntpd-rs unless the note says otherwise; "warned" keys
//! load and produce a [`WarningKind::NotImplemented`] (or the kind named).
//!
//! | section | key | here |
//! | --- | --- | --- |
//! | `[[server]]` | `listen` | implemented |
//! | | `rate-limiting-cache-size` | implemented |
//! | | `rate-limiting-cutoff-ms` | implemented |
//! | | `allowlist`, `denylist` (`filter`, `action`) | implemented; IPv4-mapped IPv6 clients match IPv4 subnets |
//! | | `require-nts` | implemented |
//! | | `accept-ntp-versions` | implemented for 3 and 4; 5 (draft NTPv5) warned ([`WarningKind::NtpV5Ignored`]) |
//! | | `rate-limit-action`, `workers` | ours |
//! | `[[nts-ke-server]]` | `listen`, `certificate-chain-path`, `private-key-path` | implemented |
//! | | `key-exchange-timeout-ms`, `concurrent-connections` | implemented |
//! | | `ntp-port`, `ntp-server` | implemented |
//! | | `accept-ntp-versions` | implemented for 4; 5 warned |
//! | | `longlived-connections`, `accepted-pool-authentication-tokens` | warned (no NTS pool support) |
//! | | `max-request-bytes` | ours |
//! | `[keyset]` | `stale-key-count`, `key-rotation-interval`, `key-storage-path` | implemented |
//! | | `fleet-secret-path` | ours |
//! | `[synchronization]` | `local-stratum`, `reference-id` | implemented; the reference id is zero-padded (RFC 5905 §7.3) where ntpd-rs pads with spaces |
//! | | `minimum-agreeing-sources`, `single-step-panic-threshold`, `startup-step-panic-threshold`, `accumulated-step-panic-threshold`, `warn-on-jump` | warned |
//! | | `min-poll`, `max-poll`, `acquire-wait`, `max-offset-ms` | ours: poll range of the sources (log₂ s), wait for every source's first sample (s), largest offset of the served clock from the sources that is still trustworthy (ms) |
//! | `[synchronization.algorithm]` | `precision-low-probability`, `precision-high-probability`, `precision-hysteresis`, `precision-minimum-weight`, `poll-interval-low-weight`, `poll-interval-high-weight`, `poll-interval-hysteresis`, `poll-interval-step-threshold`, `delay-outlier-threshold`, `initial-wander`, `initial-frequency-uncertainty`, `maximum-source-uncertainty`, `range-statistical-weight`, `range-delay-weight`, `steer-offset-threshold`, `steer-offset-leftover`, `steer-frequency-threshold`, `steer-frequency-leftover`, `step-threshold`, `slew-maximum-frequency-offset`, `slew-minimum-duration`, `maximum-frequency-steer`, `ignore-server-dispersion`, `meddling-threshold` | warned, each |
//! | `[observability]` | `log-level` | implemented |
//! | | `metrics-exporter-listen` | implemented, but off unless set: this server serves `/metrics` itself |
//! | | `log-path`, `log-path-metrics-exporter`, `ansi-colors`, `observation-path`, `observation-permissions` | warned |
//! | `[[source]]` | `mode`, `address`, `certificate-authority`, `count` | implemented: the server follows its sources (see [`crate::system`]) but never steers the clock |
//! | | `ntp-version`, `ignore` | warned |
//! | `[source-defaults]` | `poll-interval-limits`, `initial-poll-interval` | warned (use `min-poll`, `max-poll`) |
//! | `[clock]` | `clock`, `interface`, `timestamp-mode` | warned |
//! | `[server-clock]` | `precision` | ours |
//! | `[process]` | `user`, `group` | ours: switch to this user after binding (see [`ProcessConfig`]) |
//!
//! Values of warned keys are not checked. (`poll-interval-limits` and
//! `initial-poll-interval` belong to `[source-defaults]` in ntpd-rs, not
//! `[synchronization]`; there, as in ntpd-rs, they are unknown keys.)
//!
//! # Checks
//! Beyond types and ranges (stratum 1 to 16, reference id of at most 4 ASCII characters,
//! CIDR subnets, socket addresses, non-negative durations):
//! - at least one `[[server]]` or `[[nts-ke-server]]` ([`ConfigErrorKind::NothingToServe`]);
//! - every `[[nts-ke-server]]` has `listen`, `certificate-chain-path` and
//!   `private-key-path` ([`ConfigErrorKind::MissingKey`]);
//! - no two `[[server]]`s (or two `[[nts-ke-server]]`s) listen on one address, port 0
//!   excepted ([`ConfigErrorKind::DuplicateListen`]);
//! - `key-storage-path` and `fleet-secret-path` exclude each other
//!   ([`ConfigErrorKind::Conflict`]);
//! - NTS with neither stored nor fleet keys warns ([`WarningKind::KeysNotPersisted`]).

mod error;
mod files;
mod keys;
mod parse;
mod types;

use std::path::Path;

pub use error::{ConfigError, ConfigErrorKind, Position, Warning, WarningKind};
pub use files::read_fleet_secret;
pub use types::{
    Config, ConfigPath, FilterAction, FilterList, IpSubnet, KeySource, KeysetConfig,
    NtsKeServerConfig, ObservabilityConfig, ProcessConfig, RateLimitAction, ServerClockConfig,
    ServerConfig, SourceConfig, SourceMode, SynchronizationConfig,
};

/// A checked configuration and what it warns about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Every warning, in file order. The shell logs them.
    pub warnings: Vec<Warning>,
}

/// Parses and checks a configuration held in a string.
///
/// # Errors
/// The first problem in file order: invalid TOML, an unknown key, a wrong type or value,
/// a missing key, or a check of the whole (see the module documentation). The error
/// carries its position.
pub fn parse(text: &str) -> Result<Loaded, ConfigError> {
    let (config, warnings) = parse::parse_text(text)?;
    Ok(Loaded { config, warnings })
}

/// Reads, parses and checks the configuration file at `path`. The error, the warnings
/// and [`Config::path`] name the file.
///
/// # Errors
/// [`ConfigErrorKind::Io`] when the file cannot be read, and everything [`parse`]
/// returns.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        ConfigError::new(ConfigErrorKind::Io {
            what: "configuration file",
            file: path.to_path_buf(),
            source,
        })
        .in_file(Some(path))
    })?;
    let mut loaded = parse(&text).map_err(|e| e.in_file(Some(path)))?;
    loaded.config.path = Some(path.to_path_buf());
    for w in &mut loaded.warnings {
        w.path = Some(path.to_path_buf());
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests;
