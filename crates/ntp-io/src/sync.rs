//! The synchronisation engine: polls a set of sources with [`QueryClient`],
//! feeds their samples to `ntp-clock` ([`Source`], [`System`]) and applies
//! the decisions to a [`ClockBackend`], publishing a [`Status`] snapshot
//! after every event.
//!
//! # Observe mode (the default)
//!
//! `ntp-clock`'s [`System`] assumes that its decisions are carried out: after
//! a slew it re-expresses the stored samples as if the clock had moved. An
//! engine that only watches must therefore keep a *virtual* clock, as
//! `chronyd -x` does: [`ObserveClock`] holds a correction `c(t) = c₀ +
//! f·(t − t₀)` (offset plus frequency) that the decisions step, slew and
//! re-rate, and never touches the OS. Every measured offset θ (source minus
//! system clock) is fed to `ntp-clock` as `θ − c` (source minus virtual
//! clock), and every local time `t` as `t + c(t)`. The discipline so sees a
//! clock that obeys it, converges and stays stable.
//!
//! The status then reports two offsets:
//!
//! - [`Status::offset`]: how far the sources are ahead of the **system
//!   clock**, `c(now)` plus what the last update left uncorrected — what a
//!   user wants to know (≈ 0 when the machine's clock is already good, e.g.
//!   when the sources run on the same machine);
//! - [`Status::engine_offset`]: the combined offset the discipline saw at the
//!   last update (relative to its own clock, virtual or not).
//!
//! With the backend that steers the OS clock ([`OsClock`]: `steer = true`
//! and `CAP_SYS_TIME`), the correction is only the part of a slew the kernel
//! has not applied yet, and both offsets measure the same clock.
//!
//! # Sources
//!
//! One [`Source`] per server: a `server` source is resolved at start (its
//! first address), an `nts` source's NTP server is the one its key
//! exchange names, and a `pool` contributes up to `count` distinct
//! addresses of its name, resolved at start (if that fails, the pool is
//! polled through its name, which resolves again at every new
//! association). A pool member that becomes unreachable
//! ([`SourceConfig::unreach_polls`] polls without a reply) or refuses us
//! (DENY/RSTR) is replaced, as chrony does: the name is resolved again and
//! the first address no other member of that pool uses takes its place with
//! a fresh source; if there is none, the member stays and the engine asks
//! again after [`POOL_RETRY`]. Names go through [`EngineConfig::resolver`].
//! Queries run as tasks, at most
//! [`EngineConfig::max_concurrent`] at once, one request per poll (no
//! retries: a lost reply is a zero in the reach register).
//!
//! # Robustness
//!
//! Nothing a source says ends the engine: an offset beyond the panic
//! threshold is a [`Decision::Panic`] — the status turns unsynchronised with
//! the reason, the clock is left alone, and measuring goes on. Failures of a
//! source (timeouts, Kiss-o'-Death, NTS NAK, key exchange failures) only
//! change that source's state; NTS-KE failures back off as PROTOCOL.md §3.3
//! says, `min(10·1.5^(n−1), 432000)` s after the n-th failure in a row.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ntp_clock::{
    Clock, Decision, KissAction, Measurement as ClockSample, SampleOutcome, Source, SourceConfig,
    SourceState, SyncState, System, SystemConfig, UnfitReason,
};
use ntp_proto::{
    KissCode, LeapIndicator, NtpDuration, NtpShort, NtpTimestamp, ReferenceId, SystemInfo,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::ke::{DEFAULT_KE_PORT, DEFAULT_NTP_PORT};
use crate::query::{Measurement, QueryClient, QueryError, QueryOptions};
use crate::udp::now as system_now;

/// How a configured source is reached (the `mode` key of a `[[source]]`
/// table, as ntpd-rs spells it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// One plain NTP server at `address` (`host[:port]`, port 123).
    Server,
    /// An NTS server: `address` is its NTS-KE server (`host[:port]`, port
    /// 4460); the NTP server is the one the key exchange names.
    Nts,
    /// A pool: `address` resolves to several servers, of which `count` are
    /// used.
    Pool,
}

impl fmt::Display for SourceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "server",
            Self::Nts => "nts",
            Self::Pool => "pool",
        })
    }
}

/// One configured source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// How it is reached.
    pub mode: SourceMode,
    /// `host[:port]` (IPv6 literals in brackets when a port follows).
    pub address: String,
    /// PEM file of CA certificates to trust for NTS-KE instead of the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// Servers to use from a pool (ignored for other modes).
    pub count: usize,
}

impl SourceSpec {
    /// A plain NTP server.
    pub fn server(address: impl Into<String>) -> Self {
        Self {
            mode: SourceMode::Server,
            address: address.into(),
            ca_file: None,
            count: 1,
        }
    }
}

/// Splits `host[:port]` (or `[v6]:port`, or a bare IPv6 literal) into host
/// and port, `default_port` when none is given.
///
/// # Errors
/// An empty host or a port that is not a number 1–65535.
pub fn split_host_port(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let address = address.trim();
    let parse_port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("invalid port {p:?} in address {address:?}")),
            Ok(port) => Ok(port),
        }
    };
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("unclosed '[' in address {address:?}"));
        };
        match after.strip_prefix(':') {
            Some(p) => (host.to_string(), parse_port(p)?),
            None if after.is_empty() => (host.to_string(), default_port),
            None => return Err(format!("unexpected {after:?} after ']' in {address:?}")),
        }
    } else if address.parse::<IpAddr>().is_ok() {
        (address.to_string(), default_port)
    } else if let Some((host, p)) = address.rsplit_once(':') {
        (host.to_string(), parse_port(p)?)
    } else {
        (address.to_string(), default_port)
    };
    if host.is_empty() {
        return Err(format!("no host in address {address:?}"));
    }
    Ok((host, port))
}

/// How long a pool member that could not be replaced (no unused address)
/// waits before the engine resolves the pool's name again.
pub const POOL_RETRY: Duration = Duration::from_secs(300);

/// How long name resolution may take before it counts as failed.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

type ResolveFn = dyn Fn(&str, u16) -> Vec<SocketAddr> + Send + Sync;

/// How the engine turns a source's host name and port into addresses: the
/// system resolver by default (bounded by [`RESOLVE_TIMEOUT`]), or a fixed
/// function (tests, or a caller with its own resolver).
#[derive(Clone, Default)]
pub struct Resolver(Option<Arc<ResolveFn>>);

impl Resolver {
    /// The system resolver.
    pub fn system() -> Self {
        Self(None)
    }

    /// A resolver that answers with `f(host, port)`.
    pub fn with(f: impl Fn(&str, u16) -> Vec<SocketAddr> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// The addresses of `host` (a name or an address literal) at `port`.
    ///
    /// # Errors
    /// What the resolver reported, or that it timed out.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Some(f) = &self.0 {
            return Ok(f(host, port));
        }
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => Ok(addrs.collect()),
            Ok(Err(e)) => Err(format!("cannot resolve: {e}")),
            Err(_) => Err("resolution timed out".into()),
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Resolver(custom)"
        } else {
            "Resolver(system)"
        })
    }
}

/// What the engine runs with.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The sources.
    pub sources: Vec<SourceSpec>,
    /// Poll settings of every source.
    pub source: SourceConfig,
    /// Selection and discipline settings.
    pub system: SystemConfig,
    /// How long to wait for each reply (and for an NTS-KE exchange).
    pub timeout: Duration,
    /// Queries in flight at once, at most.
    pub max_concurrent: usize,
    /// Our clock's precision, log₂ seconds.
    pub precision: i8,
    /// How names are resolved (at start, and when a pool member is
    /// replaced).
    pub resolver: Resolver,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            source: SourceConfig::default(),
            system: SystemConfig::default(),
            timeout: Duration::from_secs(1),
            max_concurrent: 8,
            precision: -20,
            resolver: Resolver::system(),
        }
    }
}

/// A clock the engine can steer: `ntp-clock`'s [`Clock`] plus what the
/// engine needs to relate it to the system clock, which timestamps every
/// packet.
pub trait ClockBackend: Clock<Error: fmt::Display> + Send {
    /// The correction, seconds, that this clock carries but the system clock
    /// does not, at system time `at`: zero for a backend that steers the
    /// system clock, the virtual correction for [`ObserveClock`].
    fn correction(&self, at: NtpTimestamp) -> f64;

    /// Whether decisions change the OS clock.
    fn steers(&self) -> bool;

    /// Called by the engine on every wake-up at system time `now`, and at
    /// least as early as [`ClockBackend::next_event`] says: ends a slew in
    /// progress, for example.
    ///
    /// # Errors
    /// What the clock returns.
    fn tick(&mut self, now: NtpTimestamp) -> Result<(), Self::Error> {
        let _ = now;
        Ok(())
    }

    /// When [`ClockBackend::tick`] must next be called, if ever.
    fn next_event(&self) -> Option<std::time::Instant> {
        None
    }

    /// System time `at` on this clock's timescale.
    fn to_engine_time(&self, at: NtpTimestamp) -> NtpTimestamp {
        at + NtpDuration::from_seconds_f64(self.correction(at))
    }
}

/// The observe-mode clock: a virtual correction `c(t) = base + f·(t − since)`
/// kept in memory; the OS clock is never touched (see the module docs).
///
/// Slews take effect at once: `ntp-clock` re-expresses its samples as if
/// they had, and a virtual clock has no slew rate to respect.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ObserveClock {
    base: f64,
    frequency_ppm: f64,
    since: Option<NtpTimestamp>,
}

impl ObserveClock {
    /// No correction yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The virtual correction at system time `at`, seconds: what the engine
    /// believes must be added to the system clock.
    pub fn correction_at(&self, at: NtpTimestamp) -> f64 {
        let elapsed = self
            .since
            .map_or(0.0, |since| at.duration_since(since).to_seconds_f64());
        self.base + self.frequency_ppm * 1e-6 * elapsed
    }

    /// The virtual frequency correction, ppm.
    pub fn frequency_ppm(&self) -> f64 {
        self.frequency_ppm
    }

    fn rebase(&mut self, at: NtpTimestamp) {
        self.base = self.correction_at(at);
        self.since = Some(at);
    }

    /// Sets the frequency correction at system time `at`.
    pub fn set_frequency_at(&mut self, at: NtpTimestamp, ppm: f64) {
        self.rebase(at);
        if ppm.is_finite() {
            self.frequency_ppm = ppm;
        }
    }

    /// Adds `offset` (seconds) to the virtual clock at system time `at`.
    pub fn add_at(&mut self, at: NtpTimestamp, offset: f64) {
        self.rebase(at);
        if offset.is_finite() {
            self.base += offset;
        }
    }
}

impl Clock for ObserveClock {
    type Error = Infallible;

    fn now(&self) -> Result<NtpTimestamp, Infallible> {
        Ok(self.to_engine_time(system_now()))
    }

    fn set_frequency(&mut self, ppm: f64) -> Result<(), Infallible> {
        self.set_frequency_at(system_now(), ppm);
        Ok(())
    }

    fn step(&mut self, offset: NtpDuration) -> Result<(), Infallible> {
        self.add_at(system_now(), offset.to_seconds_f64());
        Ok(())
    }

    fn slew(&mut self, offset: NtpDuration) -> Result<(), Infallible> {
        self.add_at(system_now(), offset.to_seconds_f64());
        Ok(())
    }
}

impl ClockBackend for ObserveClock {
    fn correction(&self, at: NtpTimestamp) -> f64 {
        self.correction_at(at)
    }

    fn steers(&self) -> bool {
        false
    }
}

/// The largest slew rate of [`OsClock`], ppm (as `adjtime`'s 500 ppm).
pub const MAX_SLEW_PPM: f64 = 500.0;

/// The OS clock (`CLOCK_REALTIME` through `adjtimex`), for `steer = true`.
///
/// - `set_frequency` sets the kernel frequency correction;
/// - `step` steps the clock (`ADJ_SETOFFSET`);
/// - `slew` adds the offset gradually: the frequency is raised by up to
///   [`MAX_SLEW_PPM`] for as long as it takes (at least 1 s), and
///   [`ClockBackend::tick`] restores it at the end. Until then
///   [`ClockBackend::correction`] is the part not yet applied, so samples
///   are expressed as if the slew were complete — as `ntp-clock` assumes.
///
/// [`OsClock::new`] refuses to build without `CAP_SYS_TIME`, so a process
/// that may not steer never tries.
#[derive(Debug)]
pub struct OsClock {
    clock: clock_steering::unix::UnixClock,
    frequency_ppm: f64,
    slew: Option<Slew>,
}

#[derive(Clone, Copy, Debug)]
struct Slew {
    start: NtpTimestamp,
    offset: f64,
    rate: f64,
    end: std::time::Instant,
}

/// Why the OS clock cannot be steered.
#[derive(Debug, thiserror::Error)]
pub enum OsClockError {
    /// This process lacks `CAP_SYS_TIME`.
    #[error("steering the clock needs CAP_SYS_TIME, which this process does not have")]
    NoPrivilege,
    /// The kernel refused an operation.
    #[error("adjtimex: {0}")]
    Kernel(#[from] clock_steering::unix::Error),
}

/// Whether this process holds `CAP_SYS_TIME` (bit 25 of `CapEff` in
/// `/proc/self/status`); `false` when that cannot be read.
pub fn has_clock_privilege() -> bool {
    const CAP_SYS_TIME: u32 = 25;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_TIME) != 0)
}

impl OsClock {
    /// The OS clock, if this process may steer it; reads (never changes)
    /// the kernel's frequency correction to start from.
    ///
    /// # Errors
    /// [`OsClockError::NoPrivilege`] without `CAP_SYS_TIME`, or the kernel's
    /// error reading the clock.
    pub fn new() -> Result<Self, OsClockError> {
        use clock_steering::Clock as _;
        if !has_clock_privilege() {
            return Err(OsClockError::NoPrivilege);
        }
        let clock = clock_steering::unix::UnixClock::CLOCK_REALTIME;
        let frequency_ppm = clock.get_frequency()?;
        Ok(Self {
            clock,
            frequency_ppm,
            slew: None,
        })
    }

    fn apply_frequency(&self) -> Result<(), OsClockError> {
        use clock_steering::Clock as _;
        let slew = self.slew.map_or(0.0, |s| s.rate);
        self.clock.set_frequency(self.frequency_ppm + slew)?;
        Ok(())
    }
}

impl Clock for OsClock {
    type Error = OsClockError;

    fn now(&self) -> Result<NtpTimestamp, OsClockError> {
        Ok(self.to_engine_time(system_now()))
    }

    fn set_frequency(&mut self, ppm: f64) -> Result<(), OsClockError> {
        if ppm.is_finite() {
            self.frequency_ppm = ppm;
        }
        self.apply_frequency()
    }

    fn step(&mut self, offset: NtpDuration) -> Result<(), OsClockError> {
        use clock_steering::Clock as _;
        self.slew = None;
        self.apply_frequency()?;
        let secs = offset.to_seconds_f64();
        let whole = secs.floor();
        let nanos = ((secs - whole) * 1e9).round().clamp(0.0, 999_999_999.0);
        self.clock.step_clock(clock_steering::TimeOffset {
            seconds: whole as _,
            nanos: nanos as u32,
        })?;
        Ok(())
    }

    fn slew(&mut self, offset: NtpDuration) -> Result<(), OsClockError> {
        let offset = offset.to_seconds_f64();
        let now = system_now();
        // What is left of an unfinished slew is replaced, as adjtime does.
        let duration = (offset.abs() / (MAX_SLEW_PPM * 1e-6)).max(1.0);
        self.slew = Some(Slew {
            start: now,
            offset,
            rate: offset / duration * 1e6,
            end: std::time::Instant::now() + Duration::from_secs_f64(duration),
        });
        self.apply_frequency()
    }
}

impl ClockBackend for OsClock {
    fn correction(&self, at: NtpTimestamp) -> f64 {
        let Some(s) = self.slew else { return 0.0 };
        let done = (at.duration_since(s.start).to_seconds_f64() * s.rate * 1e-6)
            .clamp(-s.offset.abs(), s.offset.abs());
        s.offset - done
    }

    fn steers(&self) -> bool {
        true
    }

    fn tick(&mut self, _now: NtpTimestamp) -> Result<(), OsClockError> {
        if self
            .slew
            .is_some_and(|s| std::time::Instant::now() >= s.end)
        {
            self.slew = None;
            self.apply_frequency()?;
        }
        Ok(())
    }

    fn next_event(&self) -> Option<std::time::Instant> {
        self.slew.map(|s| s.end)
    }
}

/// A snapshot of the engine, published after every event; `ntp-client
/// status --json` prints it as is. Times and offsets are seconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    /// Whether a majority of sources agree and the discipline tracks them.
    pub synchronized: bool,
    /// Why not, when not synchronised (`null` otherwise).
    pub reason: Option<String>,
    /// How far the sources are ahead of the system clock (θ convention:
    /// positive means the system clock is slow).
    pub offset: f64,
    /// The combined offset the discipline saw at its last update, relative
    /// to the engine's clock (virtual in observe mode).
    pub engine_offset: f64,
    /// Frequency correction, ppm (virtual in observe mode).
    pub frequency_ppm: f64,
    /// Root distance to the primary reference, Λ = root dispersion + root
    /// delay / 2.
    pub root_distance: f64,
    /// Root delay.
    pub root_delay: f64,
    /// Root dispersion.
    pub root_dispersion: f64,
    /// System jitter.
    pub jitter: f64,
    /// Our stratum: the system peer's plus one (16 when unsynchronised).
    pub stratum: u8,
    /// Reference id: the system peer's address (dotted quad) or name.
    pub reference_id: String,
    /// Leap indicator (0–3; 3 when unsynchronised).
    pub leap: u8,
    /// System poll exponent, log₂ s.
    pub poll: i8,
    /// Whether decisions steer the OS clock (false: observe mode).
    pub steering: bool,
    /// The last error the clock returned, if any.
    pub clock_error: Option<String>,
    /// Address of the system peer.
    pub system_peer: Option<String>,
    /// When this snapshot was taken, Unix seconds.
    pub updated: f64,
    /// Every source, in configuration order (pools expanded).
    pub sources: Vec<SourceStatus>,
    /// What an NTP server should advertise (not serialised).
    #[serde(skip)]
    pub system_info: Option<SystemInfo>,
}

/// One source in a [`Status`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SourceStatus {
    /// The NTP server's address (`ip:port`), or the configured name until
    /// it resolves.
    pub address: String,
    /// The configured address (the pool's or NTS-KE server's name).
    pub name: String,
    /// `server`, `nts` or `pool`.
    pub mode: String,
    /// `selected`, `candidate`, `falseticker` or `unreachable`.
    pub state: String,
    /// The finer state: `system-peer`, `selected`, `candidate`,
    /// `falseticker`, `unfit (…)`, `unreachable`, `denied`.
    pub detail: String,
    /// Whether this is the system peer.
    pub system_peer: bool,
    /// Its stratum (0 before the first reply).
    pub stratum: u8,
    /// Its poll exponent, log₂ s.
    pub poll: i8,
    /// The reach register.
    pub reach: u8,
    /// Clock filter offset relative to the system clock.
    pub offset: f64,
    /// Clock filter delay.
    pub delay: f64,
    /// Clock filter jitter.
    pub jitter: f64,
    /// Whether samples are NTS-authenticated.
    pub nts: bool,
    /// NTS cookies held.
    pub cookies: Option<usize>,
    /// The last failure, if the last poll failed.
    pub last_error: Option<String>,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No sources configured.
    #[error("no sources configured")]
    NoSources,
    /// A source's address is unusable.
    #[error("source {address:?}: {reason}")]
    Address {
        /// The address as configured.
        address: String,
        /// What is wrong.
        reason: String,
    },
}

/// The reference id of an upstream address (RFC 5905 §7.3): the IPv4
/// address, or for IPv6 the first four bytes of the MD5 digest of the
/// address's 16 bytes, as chrony, ntpd, NTPsec and ntpd-rs compute it, so
/// their loop detection recognises our server and ours recognises theirs.
/// (MD5 is no security tool here, only a shared way to shorten an address.)
pub fn reference_id_of(ip: IpAddr) -> ReferenceId {
    use md5::Digest;
    match ip {
        IpAddr::V4(v4) => ReferenceId::from_ipv4(v4),
        IpAddr::V6(v6) => {
            let digest = md5::Md5::digest(v6.octets());
            let mut id = [0u8; 4];
            for (to, from) in id.iter_mut().zip(digest.iter()) {
                *to = *from;
            }
            ReferenceId::from_bytes(id)
        }
    }
}

/// A reference id as people read it: a clock name, or a dotted quad.
pub fn reference_id_text(id: ReferenceId) -> String {
    match id.as_ascii() {
        Some(name) if id.to_bytes()[0] >= b'A' => name.to_string(),
        _ => id.to_ipv4().to_string(),
    }
}

/// NTS-KE back-off after the n-th failure in a row (PROTOCOL.md §3.3).
pub fn ke_backoff(failures: u32) -> Duration {
    let n = failures.max(1);
    let secs = 10.0 * 1.5f64.powi(i32::try_from(n - 1).unwrap_or(i32::MAX));
    Duration::from_secs_f64(secs.min(432_000.0))
}

struct Peer {
    name: String,
    mode: SourceMode,
    host: String,
    options: QueryOptions,
    address: Option<SocketAddr>,
    client: Option<QueryClient>,
    in_flight: bool,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    last_offset: Option<(f64, f64)>,
    cookies: Option<usize>,
    /// The host and port its configured name resolves with (pools).
    resolve_as: (String, u16),
    /// A replacement (pools) is being looked up: no polls meanwhile.
    replacing: bool,
    /// No replacement attempt before this.
    replace_after: Option<Instant>,
}

enum Outcome {
    Sample(Box<Measurement>),
    Failed(QueryError),
    TimedOut,
}

struct Reply {
    index: usize,
    client: Option<QueryClient>,
    outcome: Outcome,
}

enum Event {
    Reply(Box<Reply>),
    Resolved {
        index: usize,
        result: Result<Vec<SocketAddr>, String>,
    },
}

struct Engine<C> {
    config: EngineConfig,
    clock: C,
    peers: Vec<Peer>,
    sources: Vec<Source>,
    system: System,
    residual: f64,
    clock_error: Option<String>,
}

/// Runs the engine until `shutdown` turns true (or its sender is dropped),
/// publishing a [`Status`] on `status` after every event.
///
/// The queries run as local tasks ([`QueryClient::sample`] is not `Send`),
/// so this future is not `Send` either: drive it with `block_on` or on a
/// thread of its own (see [`spawn_thread`]).
///
/// # Errors
/// Only configuration problems found at start ([`EngineError`]); nothing a
/// source does ends the engine.
pub async fn run<C: ClockBackend>(
    config: EngineConfig,
    clock: C,
    status: watch::Sender<Status>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    tokio::task::LocalSet::new()
        .run_until(run_local(config, clock, status, shutdown))
        .await
}

/// Runs [`run`] on a thread of its own with a current-thread runtime, for
/// callers on a multi-threaded runtime (the server).
///
/// # Errors
/// If the thread or its runtime cannot be created.
pub fn spawn_thread<C: ClockBackend + 'static>(
    config: EngineConfig,
    clock: C,
    status: watch::Sender<Status>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<Result<(), EngineError>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("sync-engine".into())
        .spawn(move || runtime.block_on(run(config, clock, status, shutdown)))
}

async fn run_local<C: ClockBackend>(
    config: EngineConfig,
    clock: C,
    status: watch::Sender<Status>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mut engine = Engine::new(config, clock).await?;
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    loop {
        if let Err(e) = engine.clock.tick(system_now()) {
            tracing::warn!("clock: {e}");
            engine.clock_error = Some(e.to_string());
        }
        engine.dispatch(&tx);
        status.send_replace(engine.status());
        let mut wait = engine.next_wakeup();
        if let Some(at) = engine.clock.next_event() {
            wait = wait.min(at.saturating_duration_since(std::time::Instant::now()));
        }
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            Some(event) = rx.recv() => match event {
                Event::Reply(reply) => engine.on_reply(*reply),
                Event::Resolved { index, result } => engine.on_resolved(index, result),
            },
            () = tokio::time::sleep(wait) => {}
        }
    }
    Ok(())
}

impl<C: ClockBackend> Engine<C> {
    async fn new(config: EngineConfig, clock: C) -> Result<Self, EngineError> {
        if config.sources.is_empty() {
            return Err(EngineError::NoSources);
        }
        let mut peers = Vec::new();
        for spec in &config.sources {
            let default_port = match spec.mode {
                SourceMode::Nts => DEFAULT_KE_PORT,
                _ => DEFAULT_NTP_PORT,
            };
            let (host, port) = split_host_port(&spec.address, default_port).map_err(|reason| {
                EngineError::Address {
                    address: spec.address.clone(),
                    reason,
                }
            })?;
            let mut options = QueryOptions {
                nts: spec.mode == SourceMode::Nts,
                timeout: config.timeout,
                retries: 0,
                ca_file: spec.ca_file.clone(),
                ..QueryOptions::default()
            };
            if spec.mode == SourceMode::Nts {
                options.ke_port = port;
            } else {
                options.port = Some(port);
            }
            let resolved = match config.resolver.resolve(&host, port).await {
                Ok(addrs) => addrs,
                Err(e) => {
                    tracing::warn!(address = %spec.address, "{e}; will retry");
                    Vec::new()
                }
            };
            let resolve_as = (host.clone(), port);
            let peer = |host: String, address: Option<SocketAddr>| Peer {
                name: spec.address.clone(),
                mode: spec.mode,
                host,
                options: options.clone(),
                address,
                client: None,
                in_flight: false,
                failures: 0,
                retry_at: None,
                last_error: None,
                last_offset: None,
                cookies: None,
                resolve_as: resolve_as.clone(),
                replacing: false,
                replace_after: None,
            };
            if spec.mode == SourceMode::Pool {
                let mut seen = Vec::new();
                for addr in resolved {
                    if seen.len() >= spec.count.max(1) {
                        break;
                    }
                    if !seen.contains(&addr.ip()) {
                        seen.push(addr.ip());
                        let mut member = peer(addr.ip().to_string(), Some(addr));
                        member.options.port = Some(addr.port());
                        peers.push(member);
                    }
                }
                if seen.is_empty() {
                    // Keep one entry so the pool shows up and is retried.
                    peers.push(peer(host.clone(), None));
                }
            } else {
                let address = if spec.mode == SourceMode::Server {
                    resolved.first().copied()
                } else {
                    None
                };
                // For NTS the NTP server is only known after NTS-KE.
                peers.push(peer(host.clone(), address));
            }
        }
        let source_config = SourceConfig {
            local_precision: config.precision,
            ..config.source
        };
        let sources = peers
            .iter()
            .map(|p| {
                let id = p
                    .address
                    .map_or(ReferenceId::NONE, |a| reference_id_of(a.ip()));
                Source::new(source_config, id)
            })
            .collect();
        let system = System::new(SystemConfig {
            local_precision: config.precision,
            ..config.system
        });
        Ok(Self {
            config,
            clock,
            peers,
            sources,
            system,
            residual: 0.0,
            clock_error: None,
        })
    }

    fn engine_now(&self) -> NtpTimestamp {
        self.clock.to_engine_time(system_now())
    }

    fn in_flight(&self) -> usize {
        self.peers.iter().filter(|p| p.in_flight).count()
    }

    /// Starts the polls that are due, within the concurrency bound.
    fn dispatch(&mut self, tx: &mpsc::Sender<Event>) {
        self.start_replacements(tx);
        let now = self.engine_now();
        let instant = Instant::now();
        let limit = self.config.max_concurrent.max(1);
        for index in 0..self.peers.len() {
            if self.in_flight() >= limit {
                break;
            }
            let (Some(peer), Some(source)) =
                (self.peers.get_mut(index), self.sources.get_mut(index))
            else {
                continue;
            };
            if peer.in_flight || peer.replacing || !source.poll_due(now) {
                continue;
            }
            if peer.retry_at.is_some_and(|at| instant < at) {
                continue;
            }
            source.on_sent(now);
            peer.in_flight = true;
            let client = peer.client.take();
            let host = peer.host.clone();
            let options = peer.options.clone();
            // Key exchange, then one request: bounded by both timeouts and
            // a margin, so a hung task cannot hold the source forever.
            let bound = options.timeout * 3 + Duration::from_secs(1);
            let tx = tx.clone();
            tokio::task::spawn_local(async move {
                let work = async {
                    let mut client = match client {
                        Some(c) => c,
                        None => match QueryClient::connect(&host, options).await {
                            Ok(c) => c,
                            Err(e) => return (None, Outcome::Failed(e)),
                        },
                    };
                    let outcome = match client.sample().await {
                        Ok(m) => Outcome::Sample(Box::new(m)),
                        Err(e) => Outcome::Failed(e),
                    };
                    (Some(client), outcome)
                };
                let (client, outcome) = tokio::time::timeout(bound, work)
                    .await
                    .unwrap_or((None, Outcome::TimedOut));
                let _ = tx
                    .send(Event::Reply(Box::new(Reply {
                        index,
                        client,
                        outcome,
                    })))
                    .await;
            });
        }
    }

    /// Starts a new resolution of its name for every pool member that is
    /// unreachable or refused us (see the module docs).
    fn start_replacements(&mut self, tx: &mpsc::Sender<Event>) {
        let instant = Instant::now();
        for (index, (peer, source)) in self.peers.iter_mut().zip(&self.sources).enumerate() {
            if peer.mode != SourceMode::Pool || peer.in_flight || peer.replacing {
                continue;
            }
            if !(source.is_unreachable() || source.is_denied()) {
                continue;
            }
            if peer.replace_after.is_some_and(|at| instant < at) {
                continue;
            }
            peer.replacing = true;
            let resolver = self.config.resolver.clone();
            let (host, port) = peer.resolve_as.clone();
            let tx = tx.clone();
            tokio::task::spawn_local(async move {
                let result = resolver.resolve(&host, port).await;
                let _ = tx.send(Event::Resolved { index, result }).await;
            });
        }
    }

    /// Puts the first address of `result` that no member of the same pool
    /// uses in place of pool member `index`, with a fresh source.
    fn on_resolved(&mut self, index: usize, result: Result<Vec<SocketAddr>, String>) {
        let Some(name) = self.peers.get(index).map(|p| p.name.clone()) else {
            return;
        };
        let in_use: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|p| p.mode == SourceMode::Pool && p.name == name)
            .filter_map(|p| p.address.map(|a| a.ip()))
            .collect();
        let (Some(peer), Some(source)) = (self.peers.get_mut(index), self.sources.get_mut(index))
        else {
            return;
        };
        peer.replacing = false;
        let fresh = match result {
            Ok(addrs) => addrs.into_iter().find(|a| !in_use.contains(&a.ip())),
            Err(e) => {
                tracing::warn!(pool = %name, "cannot replace an unreachable member: {e}");
                None
            }
        };
        let Some(addr) = fresh else {
            tracing::info!(pool = %name, "no unused address to replace an unreachable member; next try in {POOL_RETRY:?}");
            peer.replace_after = Some(Instant::now() + POOL_RETRY);
            return;
        };
        tracing::info!(
            pool = %name,
            old = %peer.address.map_or_else(|| peer.host.clone(), |a| a.to_string()),
            new = %addr,
            "pool member replaced"
        );
        peer.host = addr.ip().to_string();
        peer.options.port = Some(addr.port());
        peer.address = Some(addr);
        peer.client = None;
        peer.failures = 0;
        peer.retry_at = None;
        peer.last_error = None;
        peer.last_offset = None;
        peer.cookies = None;
        peer.replace_after = None;
        *source = Source::new(*source.config(), reference_id_of(addr.ip()));
    }

    /// How long to sleep before the next due poll (at most 1 s, so the
    /// status stays fresh).
    fn next_wakeup(&self) -> Duration {
        let now = self.engine_now();
        let instant = Instant::now();
        let mut wait = Duration::from_secs(1);
        if self.in_flight() >= self.config.max_concurrent.max(1) {
            // Every slot is taken: a reply wakes the loop, not the clock.
            return wait;
        }
        for (peer, source) in self.peers.iter().zip(&self.sources) {
            if peer.in_flight {
                continue;
            }
            let Some(at) = source.next_poll(now) else {
                continue;
            };
            let mut due = Duration::from_secs_f64(at.duration_since(now).to_seconds_f64().max(0.0));
            if let Some(retry) = peer.retry_at {
                due = due.max(retry.saturating_duration_since(instant));
            }
            wait = wait.min(due);
        }
        wait.max(Duration::from_millis(10))
    }

    fn on_reply(&mut self, reply: Reply) {
        let now_sys = system_now();
        let now = self.clock.to_engine_time(now_sys);
        let index = reply.index;
        let (Some(peer), Some(source)) = (self.peers.get_mut(index), self.sources.get_mut(index))
        else {
            return;
        };
        peer.in_flight = false;
        peer.client = reply.client;
        if let Some(client) = &peer.client {
            let server = client.server();
            if peer.address != Some(server) {
                peer.address = Some(server);
                let id = reference_id_of(server.ip());
                if source.reference_id() != id && source.filter_output().is_none() {
                    // First contact (or NTS-KE named another server): the
                    // reference id follows the NTP server actually used.
                    let mut fresh = Source::new(*source.config(), id);
                    fresh.on_sent(now);
                    *source = fresh;
                }
            }
            peer.cookies = client.cookies();
        }
        match reply.outcome {
            Outcome::Sample(m) => {
                peer.failures = 0;
                peer.retry_at = None;
                peer.last_error = None;
                let [t1, _, _, t4] = m.timestamps;
                let correction = (self.clock.correction(t1) + self.clock.correction(t4)) / 2.0;
                peer.last_offset = Some((m.offset, m.delay));
                if let Some(nts) = m.nts {
                    peer.cookies = Some(nts.cookies_held);
                }
                let sample = to_clock_sample(
                    &m,
                    correction,
                    self.clock.to_engine_time(t4),
                    self.config.precision,
                );
                match source.on_measurement(&sample, now) {
                    SampleOutcome::Accepted { .. } => {}
                    other => tracing::debug!(peer = %peer.name, "sample not used: {other:?}"),
                }
            }
            Outcome::Failed(e) => {
                peer.last_error = Some(e.to_string());
                match e {
                    QueryError::Kiss { code, .. } => {
                        Self::on_kiss(peer, source, code, now);
                    }
                    QueryError::NtsNak { .. } => {
                        Self::on_kiss(peer, source, KissCode::NTSN, now);
                    }
                    QueryError::KeyExchange(_)
                    | QueryError::Trust(_)
                    | QueryError::Resolve { .. }
                    | QueryError::Seal(_) => {
                        source.on_timeout(now);
                        peer.client = None;
                        peer.failures = peer.failures.saturating_add(1);
                        let wait = ke_backoff(peer.failures);
                        peer.retry_at = Some(Instant::now() + wait);
                        tracing::warn!(peer = %peer.name, "{e}; next attempt in {wait:?}");
                    }
                    _ => {
                        tracing::debug!(peer = %peer.name, "{e}");
                        source.on_timeout(now);
                    }
                }
            }
            Outcome::TimedOut => {
                peer.last_error = Some("no answer in time".into());
                peer.client = None;
                source.on_timeout(now);
            }
        }
        self.update(now);
    }

    fn on_kiss(peer: &mut Peer, source: &mut Source, code: KissCode, now: NtpTimestamp) {
        match source.on_kiss(code, now) {
            KissAction::BackOff { poll } => {
                tracing::warn!(peer = %peer.name, "RATE kiss: poll raised to {poll}");
            }
            KissAction::Stop => {
                tracing::warn!(peer = %peer.name, "{code} kiss: source no longer polled");
                peer.client = None;
            }
            KissAction::RekeyNts => {
                // Drop the NTS session: the next poll runs NTS-KE again.
                tracing::info!(peer = %peer.name, "NTS NAK: new key exchange at the next poll");
                peer.client = None;
                peer.cookies = None;
            }
            KissAction::Ignored => {}
        }
    }

    fn update(&mut self, now: NtpTimestamp) {
        let decision = self.system.update(now, &mut self.sources);
        let estimate = *self.system.estimate();
        self.residual = estimate.offset.to_seconds_f64();
        if let Some(d) = decision {
            match d {
                Decision::Step { offset, .. } | Decision::Slew { offset, .. } => {
                    self.residual -= offset.to_seconds_f64();
                }
                Decision::Panic { offset } => {
                    self.residual = offset.to_seconds_f64();
                    tracing::warn!("offset {offset} beyond the panic threshold: not steering");
                }
            }
            match d.apply(&mut self.clock) {
                Ok(()) => self.clock_error = None,
                Err(e) => {
                    tracing::warn!("clock refused {d:?}: {e}");
                    self.clock_error = Some(e.to_string());
                }
            }
        }
    }

    fn status(&self) -> Status {
        let now_sys = system_now();
        let correction = self.clock.correction(now_sys);
        let e = self.system.estimate();
        let synchronized = e.sync.is_synchronized();
        let reason = match e.sync {
            SyncState::Synchronized => None,
            SyncState::Unsynchronized { reason } => Some(reason.to_string()),
        };
        let sources: Vec<SourceStatus> = self
            .peers
            .iter()
            .zip(&self.sources)
            .enumerate()
            .map(|(i, (p, s))| source_status(p, s, e.system_peer == Some(i), correction))
            .collect();
        let system_peer = e
            .system_peer
            .and_then(|i| sources.get(i))
            .map(|s| s.address.clone());
        let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
        Status {
            synchronized,
            reason,
            offset: finite(correction + self.residual),
            engine_offset: finite(e.offset.to_seconds_f64()),
            frequency_ppm: finite(e.frequency_ppm),
            root_distance: finite(e.root_distance.to_seconds_f64()),
            root_delay: finite(e.root_delay.to_seconds_f64()),
            root_dispersion: finite(e.root_dispersion.to_seconds_f64()),
            jitter: finite(e.jitter),
            stratum: if synchronized {
                e.stratum
            } else {
                ntp_proto::MAX_STRATUM
            },
            reference_id: if synchronized {
                reference_id_text(e.reference_id)
            } else {
                String::new()
            },
            leap: if synchronized {
                e.leap.to_bits()
            } else {
                LeapIndicator::Unsynchronized.to_bits()
            },
            poll: e.poll,
            steering: self.clock.steers(),
            clock_error: self.clock_error.clone(),
            system_peer,
            updated: unix_seconds_now(),
            sources,
            system_info: Some(e.system_info(self.config.precision)),
        }
    }
}

fn unix_seconds_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn source_status(peer: &Peer, source: &Source, system_peer: bool, correction: f64) -> SourceStatus {
    let state = source.state();
    let (word, detail) = match state {
        SourceState::SystemPeer => ("selected", "system-peer".to_string()),
        SourceState::Selected => ("selected", "selected".to_string()),
        SourceState::Candidate => ("candidate", "candidate".to_string()),
        SourceState::Falseticker => ("falseticker", "falseticker".to_string()),
        SourceState::Unreachable => ("unreachable", "unreachable".to_string()),
        SourceState::Denied => ("unreachable", "denied".to_string()),
        SourceState::Unfit(UnfitReason::NoData) if source.reach() == 0 => {
            ("unreachable", "unfit (no data)".to_string())
        }
        SourceState::Unfit(why) => ("candidate", format!("unfit ({why:?})").to_lowercase()),
    };
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    let (offset, delay, jitter) = match source.filter_output() {
        Some(out) => (out.offset + correction, out.delay, out.jitter),
        None => peer
            .last_offset
            .map_or((0.0, 0.0, 0.0), |(o, d)| (o, d, 0.0)),
    };
    let info = source.info();
    SourceStatus {
        address: peer
            .address
            .map_or_else(|| peer.name.clone(), |a| a.to_string()),
        name: peer.name.clone(),
        mode: peer.mode.to_string(),
        state: word.to_string(),
        detail,
        system_peer,
        stratum: info.map_or(0, |i| i.stratum),
        poll: source.poll(),
        reach: source.reach(),
        offset: finite(offset),
        delay: finite(delay),
        jitter: finite(jitter),
        nts: peer.mode == SourceMode::Nts,
        cookies: peer.cookies,
        last_error: peer.last_error.clone(),
    }
}

fn log2_seconds(exp: i8) -> f64 {
    2f64.powi(i32::from(exp))
}

/// An `ntp-io` sample as `ntp-clock` wants it: the offset on the engine's
/// timescale (`θ − correction`), T4 as engine time, and the dispersion
/// computed as [`ClockSample::from_reply`] does.
fn to_clock_sample(
    m: &Measurement,
    correction: f64,
    time: NtpTimestamp,
    local_precision: i8,
) -> ClockSample {
    let [t1, _, _, t4] = m.timestamps;
    let round_trip = t4.duration_since(t1).to_seconds_f64().max(0.0);
    let local = log2_seconds(local_precision);
    let dispersion = log2_seconds(m.precision) + local + ntp_clock::consts::PHI * round_trip;
    ClockSample {
        offset: NtpDuration::from_seconds_f64(m.offset - correction),
        delay: NtpDuration::from_seconds_f64(m.delay.max(local)),
        dispersion: NtpDuration::from_seconds_f64(dispersion),
        time,
        stratum: m.stratum,
        leap: m.leap,
        reference_id: m.reference_id,
        root_delay: NtpShort::from_seconds_f64(m.root_delay),
        root_dispersion: NtpShort::from_seconds_f64(m.root_dispersion),
        poll: m.poll,
        precision: m.precision,
        nts: m.nts.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> NtpTimestamp {
        NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
    }

    #[test]
    fn observe_clock_accumulates_offset_and_frequency() {
        let mut c = ObserveClock::new();
        assert_eq!(c.correction_at(at(0.0)), 0.0);
        c.add_at(at(0.0), 0.002);
        assert!((c.correction_at(at(100.0)) - 0.002).abs() < 1e-12);
        c.set_frequency_at(at(100.0), 10.0);
        // 10 ppm over 1000 s is 10 ms more.
        assert!((c.correction_at(at(1100.0)) - 0.012).abs() < 1e-9);
        c.add_at(at(1100.0), -0.012);
        assert!(c.correction_at(at(1100.0)).abs() < 1e-9);
        assert!((c.correction_at(at(2100.0)) - 0.010).abs() < 1e-9);
        assert_eq!(c.frequency_ppm(), 10.0);
        // Non-finite input is ignored.
        c.add_at(at(2100.0), f64::NAN);
        assert!(c.correction_at(at(2100.0)).is_finite());
    }

    #[test]
    fn observe_clock_now_is_system_time_plus_correction() {
        let mut c = ObserveClock::new();
        c.step(NtpDuration::from_seconds(5)).unwrap_or(());
        let sys = system_now();
        let virt = c.now().unwrap_or(sys);
        let d = virt.duration_since(sys).to_seconds_f64();
        assert!((d - 5.0).abs() < 0.5, "{d}");
        assert!(!c.steers());
    }

    #[test]
    fn os_clock_needs_the_privilege_and_only_reads_to_start() {
        // Building it reads the kernel frequency (adjtimex modes = 0) and
        // changes nothing.
        match OsClock::new() {
            Ok(c) => {
                assert!(has_clock_privilege());
                assert!(c.steers());
                assert!(c.frequency_ppm.is_finite());
            }
            Err(OsClockError::NoPrivilege) => assert!(!has_clock_privilege()),
            Err(e) => panic!("reading the clock failed: {e}"),
        }
    }

    #[test]
    fn os_clock_slew_correction_is_what_is_not_applied_yet() {
        // Pure arithmetic on a slew record; nothing touches the kernel.
        let c = OsClock {
            clock: clock_steering::unix::UnixClock::CLOCK_REALTIME,
            frequency_ppm: 0.0,
            slew: Some(Slew {
                start: at(0.0),
                offset: 0.001,
                rate: 500.0,
                end: std::time::Instant::now(),
            }),
        };
        assert!((c.correction(at(0.0)) - 0.001).abs() < 1e-12);
        assert!((c.correction(at(1.0)) - 0.0005).abs() < 1e-9);
        assert!(c.correction(at(5.0)).abs() < 1e-12);
        let idle = OsClock { slew: None, ..c };
        assert_eq!(idle.correction(at(1.0)), 0.0);
    }

    #[test]
    fn samples_are_expressed_on_the_virtual_timescale() {
        let m = Measurement {
            server: ([127, 0, 0, 1], 123).into(),
            offset: 0.5,
            delay: 0.001,
            version: 4,
            leap: LeapIndicator::NoWarning,
            stratum: 1,
            poll: 6,
            precision: -20,
            root_delay: 0.0,
            root_dispersion: 0.0,
            reference_id: ReferenceId::NONE,
            timestamps: [at(0.0), at(0.5), at(0.5), at(0.001)],
            kernel_timestamp: true,
            nts: None,
        };
        let s = to_clock_sample(&m, 0.4, at(0.401), -20);
        assert!((s.offset.to_seconds_f64() - 0.1).abs() < 1e-9);
        assert_eq!(s.time, at(0.401));
        assert!(s.dispersion.to_seconds_f64() > 0.0);
    }

    #[test]
    fn addresses_split() {
        assert_eq!(
            split_host_port("a.example", 123),
            Ok(("a.example".into(), 123))
        );
        assert_eq!(
            split_host_port("127.0.0.1:1234", 123),
            Ok(("127.0.0.1".into(), 1234))
        );
        assert_eq!(split_host_port("::1", 123), Ok(("::1".into(), 123)));
        assert_eq!(split_host_port("[::1]:99", 123), Ok(("::1".into(), 99)));
        assert!(split_host_port("host:0", 123).is_err());
        assert!(split_host_port("host:x", 123).is_err());
        assert!(split_host_port(":123", 123).is_err());
        assert!(split_host_port("[::1", 123).is_err());
    }

    #[test]
    fn ke_backoff_follows_protocol_md() {
        assert_eq!(ke_backoff(1), Duration::from_secs(10));
        assert_eq!(ke_backoff(2), Duration::from_secs(15));
        assert_eq!(ke_backoff(100), Duration::from_secs(432_000));
    }

    #[test]
    fn status_json_has_the_documented_keys() {
        let status = Status {
            synchronized: true,
            sources: vec![SourceStatus {
                address: "127.0.0.1:123".into(),
                state: "falseticker".into(),
                ..SourceStatus::default()
            }],
            ..Status::default()
        };
        let json = serde_json::to_value(&status).unwrap_or_default();
        for key in [
            "synchronized",
            "offset",
            "frequency_ppm",
            "root_distance",
            "sources",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
        assert_eq!(json["synchronized"], serde_json::Value::Bool(true));
        let source = &json["sources"][0];
        for key in [
            "address", "state", "stratum", "reach", "offset", "delay", "jitter", "nts",
        ] {
            assert!(source.get(key).is_some(), "{key} missing: {source}");
        }
        assert!(source["offset"].is_f64());
        assert!(source["nts"].is_boolean());
        assert_eq!(source["state"], "falseticker");
        assert!(json.get("system_info").is_none());
        let back: Status = serde_json::from_value(json).unwrap_or_default();
        assert!(back.synchronized);
    }

    #[test]
    fn reference_ids() {
        assert_eq!(
            reference_id_text(reference_id_of(
                "127.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]))
            )),
            "127.0.0.1"
        );
        // MD5 of the 16 address bytes, first four (Python's hashlib agrees).
        let v6 = |s: &str| reference_id_of(s.parse().unwrap_or(IpAddr::from([0u16; 8])));
        assert_eq!(v6("::1").to_bytes(), [0xcf, 0x40, 0x4d, 0xc8]);
        assert_eq!(v6("2001:db8::1").to_bytes(), [0x39, 0xab, 0x9b, 0x37]);
        assert_eq!(
            reference_id_text(ReferenceId::from_ascii("GPS").unwrap_or(ReferenceId::NONE)),
            "GPS"
        );
    }
}
