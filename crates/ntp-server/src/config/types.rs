//! The typed, validated configuration.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Position;

/// A whole configuration, checked: what [`parse`](super::parse) and [`load`](super::load)
/// return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from ([`load`](super::load)); `None` from
    /// [`parse`](super::parse).
    pub path: Option<PathBuf>,
    /// `[[server]]`: the NTP (UDP) listeners, in file order.
    pub servers: Vec<ServerConfig>,
    /// `[[nts-ke-server]]`: the NTS key exchange (TLS over TCP) listeners, in file order.
    pub nts_ke_servers: Vec<NtsKeServerConfig>,
    /// `[[source]]`: upstream servers the server follows (ntpd-rs's keys), in file
    /// order. Empty: local-reference mode.
    pub sources: Vec<SourceConfig>,
    /// `[synchronization]`: what the server says about its clock.
    pub synchronization: SynchronizationConfig,
    /// `[keyset]`: the NTS cookie master keys.
    pub keyset: KeysetConfig,
    /// `[observability]`: logs and metrics.
    pub observability: ObservabilityConfig,
    /// `[server-clock]` (ours): overrides of what is measured about the local clock.
    pub server_clock: ServerClockConfig,
    /// `[process]` (ours): the user and group to run as after binding.
    pub process: ProcessConfig,
}

/// One `[[server]]`: an NTP listener (UDP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The line of this server's table, for messages.
    pub line: usize,
    /// `listen`: the UDP address to bind (required). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// `rate-limiting-cache-size` (default 0 = no rate limiting): how many clients the
    /// rate limiter remembers.
    pub rate_limiting_cache_size: usize,
    /// `rate-limiting-cutoff-ms` (default 0 = none): the shortest interval between two
    /// requests of one client; a sooner request is answered per
    /// [`rate_limit_action`](Self::rate_limit_action).
    pub rate_limiting_cutoff: Duration,
    /// `rate-limit-action` (ours, default `"kod"`): what a too-frequent client gets.
    pub rate_limit_action: RateLimitAction,
    /// `allowlist` (default: every address allowed): only these subnets are served; the
    /// others get [`FilterList::action`].
    pub allowlist: Option<FilterList>,
    /// `denylist` (default: none denied): these subnets are not served and get
    /// [`FilterList::action`]. Checked before the allowlist.
    pub denylist: Option<FilterList>,
    /// `require-nts` (default `false` = `None`): what a request without NTS gets.
    /// `true` and `"ignore"` give `Some(Ignore)`, `"deny"` gives `Some(Deny)`.
    pub require_nts: Option<FilterAction>,
    /// `accept-ntp-versions` (default `[3, 4]`): the NTP versions answered; only 3 and 4
    /// (a 5 is dropped with a warning).
    pub accept_ntp_versions: Vec<u8>,
    /// `workers` (ours, 1 to 4096, default: one per CPU): UDP worker threads for this
    /// listener.
    pub workers: Option<NonZeroUsize>,
}

impl ServerConfig {
    /// [`workers`](Self::workers), or the number of CPUs when unset (1 when unknown).
    pub fn worker_count(&self) -> NonZeroUsize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// Whether a request from `addr` passes the deny and allow lists; `Err` carries the
    /// action of the list that refused it.
    ///
    /// # Errors
    /// The [`FilterAction`] to take when `addr` is refused.
    pub fn filter(&self, addr: IpAddr) -> Result<(), FilterAction> {
        if let Some(deny) = &self.denylist {
            if deny.matches(addr) {
                return Err(deny.action);
            }
        }
        if let Some(allow) = &self.allowlist {
            if !allow.matches(addr) {
                return Err(allow.action);
            }
        }
        Ok(())
    }
}

/// What a refused request gets (ntpd-rs's `action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterAction {
    /// `"ignore"`: no answer.
    Ignore,
    /// `"deny"`: a kiss-o'-death `DENY` answer (RFC 5905 §7.4).
    Deny,
}

/// What a client over the rate limit gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RateLimitAction {
    /// `"kod"` (default): a kiss-o'-death `RATE` answer (RFC 5905 §7.4), as ntpd-rs does.
    #[default]
    Kod,
    /// `"drop"`: no answer.
    Drop,
}

/// `allowlist` or `denylist`: `{ filter = ["cidr", ...], action = "deny" | "ignore" }`,
/// both keys required as in ntpd-rs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterList {
    /// The subnets.
    pub filter: Vec<IpSubnet>,
    /// What a refused request gets.
    pub action: FilterAction,
}

impl FilterList {
    /// Whether any subnet of the list contains `addr`.
    pub fn matches(&self, addr: IpAddr) -> bool {
        self.filter.iter().any(|s| s.contains(addr))
    }
}

/// A subnet in CIDR notation, `address/prefix-length` (`192.168.1.0/24`, `2001:db8::/32`).
/// The address may have host bits set (`192.168.1.1/24`), as ntpd-rs allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpSubnet {
    /// The address as written.
    pub addr: IpAddr,
    /// Leading bits that must match: at most 32 for IPv4, 128 for IPv6.
    pub prefix_len: u8,
}

impl IpSubnet {
    /// Whether `addr` lies in this subnet. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
    /// is treated as the IPv4 address, so dual-stack sockets filter alike.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(a)) << 96,
                self.prefix_len,
            ),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                prefix_eq(u128::from(net), u128::from(a), self.prefix_len)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix_len: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix_len.min(128)))
        .unwrap_or(0);
    a & mask == b & mask
}

impl std::str::FromStr for IpSubnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("\"{s}\" is not in CIDR notation (address/prefix-length)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{addr}\" in \"{s}\" is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("prefix length \"{len}\" in \"{s}\" must be 0 to {max}"))?;
        Ok(Self { addr, prefix_len })
    }
}

impl std::fmt::Display for IpSubnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A file named in the configuration, with the line that names it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPath {
    /// The path as written (relative paths are relative to the working directory, as in
    /// ntpd-rs).
    pub path: PathBuf,
    /// Where the value is written, for messages.
    pub position: Position,
}

impl AsRef<Path> for ConfigPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// One `[[nts-ke-server]]`: an NTS key exchange listener (RFC 8915 §4, TLS over TCP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtsKeServerConfig {
    /// The line of this server's table, for messages.
    pub line: usize,
    /// `listen`: the TCP address to bind (required; 4460 is the standard port).
    pub listen: SocketAddr,
    /// `certificate-chain-path` (required): PEM certificate chain, leaf first.
    pub certificate_chain_path: ConfigPath,
    /// `private-key-path` (required): PEM private key of the leaf certificate.
    pub private_key_path: ConfigPath,
    /// `key-exchange-timeout-ms` (default 1000): the whole exchange must finish in this
    /// time or the connection is dropped.
    pub key_exchange_timeout: Duration,
    /// `concurrent-connections` (default 512): connections served at once; more wait in
    /// the kernel's accept queue.
    pub concurrent_connections: usize,
    /// `ntp-port` (default: unset): the NTPv4 Port Negotiation record sent to clients
    /// (RFC 8915 §4.1.7), for an NTP server not on port 123.
    pub ntp_port: Option<u16>,
    /// `ntp-server` (default: unset): the NTPv4 Server Negotiation record sent to clients
    /// (RFC 8915 §4.1.8), for an NTP server under another name than this one.
    pub ntp_server: Option<String>,
    /// `accept-ntp-versions` (default `[4]`): only 4 (a 5 is dropped with a warning).
    pub accept_ntp_versions: Vec<u8>,
    /// `max-request-bytes` (ours, default 1024): a client's request records may total at
    /// most this many bytes; a longer request is refused.
    pub max_request_bytes: usize,
}

/// `[synchronization]`: the parts this server implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynchronizationConfig {
    /// `local-stratum` (default 16 = unsynchronised): 1 to 16, the stratum served
    /// without sources, and with sources until the engine's time is trustworthy.
    pub local_stratum: u8,
    /// `reference-id` (default `"XNON"`): up to 4 ASCII characters, left-justified and
    /// zero-padded (RFC 5905 §7.3), sent at stratum 1. (ntpd-rs pads with spaces.)
    pub reference_id: [u8; 4],
    /// `min-poll` (ours, 0 to 17, default 6): shortest poll of the sources, log₂ s.
    pub min_poll: i8,
    /// `max-poll` (ours, 0 to 17, default 10): longest poll of the sources, log₂ s.
    pub max_poll: i8,
    /// `acquire-wait` (ours, seconds, default 10): at start-up, how long to wait for
    /// every source's first sample before selecting.
    pub acquire_wait: Duration,
    /// `max-offset-ms` (ours, default 128): with sources, the served (system) clock
    /// is trustworthy only while it is within this of the sources' combined time.
    pub max_offset: Duration,
}

impl Default for SynchronizationConfig {
    fn default() -> Self {
        Self {
            local_stratum: 16,
            reference_id: *b"XNON",
            min_poll: 6,
            max_poll: 10,
            acquire_wait: Duration::from_secs(10),
            max_offset: Duration::from_millis(128),
        }
    }
}

/// How a `[[source]]` is reached (`mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceMode {
    /// `"server"`: one NTP server.
    Server,
    /// `"nts"`: an NTS-KE server (`address` is its host and KE port).
    Nts,
    /// `"pool"`: `count` servers of a pool name.
    Pool,
}

/// One `[[source]]`: an upstream (ntpd-rs's keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConfig {
    /// The line of this source's table, for messages.
    pub line: usize,
    /// `mode` (required): `"server"`, `"nts"` or `"pool"`.
    pub mode: SourceMode,
    /// `address` (required): `host[:port]`; for `nts` the NTS-KE server (port 4460).
    pub address: String,
    /// `certificate-authority` (`nts` only): a PEM file of CAs to trust instead of
    /// the system roots.
    pub certificate_authority: Option<ConfigPath>,
    /// `count` (`pool` only, 1 to 64, default 4): servers used from the pool.
    pub count: usize,
}

/// `[keyset]`: the master keys that seal NTS cookies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysetConfig {
    /// `stale-key-count` (default 7): old keys that still open cookies.
    pub stale_key_count: usize,
    /// `key-rotation-interval` (seconds, default 86400): time between key rotations.
    pub key_rotation_interval: Duration,
    /// `key-storage-path` (default: unset): the key file, created if absent (its directory
    /// must exist).
    pub key_storage_path: Option<ConfigPath>,
    /// `fleet-secret-path` (ours, default: unset): a file whose bytes (all of them,
    /// including any newline) are a secret of at least 32 bytes shared by a fleet; keys are
    /// derived from it per epoch. Excludes `key-storage-path`.
    pub fleet_secret_path: Option<ConfigPath>,
}

impl Default for KeysetConfig {
    fn default() -> Self {
        Self {
            stale_key_count: 7,
            key_rotation_interval: Duration::from_secs(86_400),
            key_storage_path: None,
            fleet_secret_path: None,
        }
    }
}

impl KeysetConfig {
    /// The rotation settings in the form the key set takes.
    pub fn key_set_config(&self) -> nts_cookie::KeySetConfig {
        nts_cookie::KeySetConfig {
            rotation_period_s: self.key_rotation_interval.as_secs(),
            old_keys_kept: self.stale_key_count,
        }
    }

    /// Where the keys come from.
    pub fn source(&self) -> KeySource<'_> {
        match (&self.fleet_secret_path, &self.key_storage_path) {
            (Some(secret), _) => KeySource::Fleet(&secret.path),
            (None, Some(file)) => KeySource::Stored(&file.path),
            (None, None) => KeySource::Random,
        }
    }
}

/// Where the NTS master keys come from ([`KeysetConfig::source`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// Random keys kept in memory: cookies die with the process.
    Random,
    /// Random keys kept in this file (ntpd-rs's `key-storage-path`).
    Stored(&'a Path),
    /// Keys derived from the secret in this file (`fleet-secret-path`).
    Fleet(&'a Path),
}

/// `[observability]`: the parts this server implements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservabilityConfig {
    /// `log-level` (default: unset, meaning `info` unless the command line says
    /// otherwise): `"trace"`, `"debug"`, `"info"`, `"warn"` or `"error"`.
    pub log_level: Option<tracing::Level>,
    /// `metrics-exporter-listen` (default: unset = no metrics endpoint): the TCP address of
    /// the Prometheus `/metrics` endpoint. (In ntpd-rs this is the separate exporter's
    /// address, 127.0.0.1:9975 by default; ntp-server serves metrics itself, and only
    /// when this is set.)
    pub metrics_exporter_listen: Option<SocketAddr>,
}

/// `[server-clock]` (ours): facts about the local clock to send instead of measuring them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerClockConfig {
    /// `precision` (default: measured): log2 seconds, -32 to 0 (-20 is about a
    /// microsecond), sent in the precision field (RFC 5905 §7.3).
    pub precision: Option<i8>,
}

/// `[process]` (ours): least privilege. When `user` is set and the server
/// starts as root, it binds its sockets (port 123 and 4460 need privilege),
/// then switches to this user and group for good, keeping no capabilities.
/// The certificate files (for SIGHUP reloads) must be readable, and the key
/// storage directory writable, by that user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessConfig {
    /// `user`: the user name to switch to.
    pub user: Option<String>,
    /// `group` (default: the user's primary group): the group to switch to.
    pub group: Option<String>,
}
