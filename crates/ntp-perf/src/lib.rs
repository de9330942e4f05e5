//! `ntp-perf`: a load generator for NTP and NTS servers.
//!
//! It answers "how many clients can one box serve, and at what CPU cost?" by
//! offering a fixed (or unlimited) request rate to a server and reporting the
//! answered rate, loss, Kiss-o'-Death codes, NTS NAKs, invalid replies,
//! latency percentiles, and the CPU time of both the generator and the server
//! over the same window.
//!
//! # Design overview
//!
//! **Modes.** [`Mode::Plain`] sends NTPv4 client requests with 64 random bits
//! as transmit timestamp (PROTOCOL.md §1.4) and matches replies by origin
//! timestamp. [`Mode::Nts`] runs one NTS-KE per client socket, then sends NTS
//! requests (RFC 8915 §5) sealed with that client's cookies and verifies every
//! reply with `nts_cookie::packet::open_response`. [`Mode::Ke`] runs complete
//! NTS-KE exchanges (TCP, TLS 1.3 with no session resumption, request,
//! response, key export) with `--inflight` of them at once.
//!
//! **Why batching.** On loopback the generator pays the kernel's cost for every
//! datagram it sends and receives, the same order as the server's. One
//! `sendmmsg`/`recvmmsg` call moves up to [`udp::BATCH`] datagrams, so the
//! per-packet syscall cost is amortised and the generator stays well below one
//! core at rates the server cannot sustain. The UDP modes run on one thread:
//! each iteration sends what the [`Pacer`] says is due (in batches, 250 µs
//! worth at a time), drains every socket with `recvmmsg(MSG_DONTWAIT)`, and
//! sleeps until the next tick (at an unlimited rate, until a reply arrives).
//!
//! **Matching without allocation.** Outstanding requests live in a fixed table
//! of `--inflight` slots (rounded up to a power of two); the slot index is in
//! the low bits of the random transmit timestamp, so a reply finds its request
//! in O(1) and is checked against the full 64 bits. Latency goes into a
//! log-linear [`Histogram`] (≤ 6.25 % bucket error). The send time is
//! `CLOCK_REALTIME` just before `sendmmsg`; the receive time is the kernel's
//! `SO_TIMESTAMPNS` stamp, so the generator's own scheduling delay after the
//! datagram arrived is not counted against the server.
//!
//! **What the timestamps are worth.** A fast server is no use if its
//! timestamps are late, so the UDP modes also read each reply's `T2` and
//! `T3` ([`timing`]): the server's residence `T3 − T2`, the delay a client
//! computes, the offset it would compute (zero on loopback for exact
//! stamping) and the **reply lag** `T4 − T3`, which on loopback is how long
//! after writing its transmit stamp the server actually sent the reply.
//!
//! **Clients.** `--clients N` opens N UDP sockets, each a distinct source port
//! connected to the server, and spreads requests over them round robin, which
//! exercises per-client state such as rate limiting. In NTS mode each socket
//! is one NTS association with its own cookie jar. To keep measuring the
//! steady state of real clients (one cookie in, one new cookie out, no
//! placeholders) while many requests of one client are in flight at once, a
//! jar that runs short is topped up with copies of a cookie from the key
//! exchange ([`Report::cookies_reused`]); the server cannot tell, and its cost
//! per request is that of the steady state. A client that receives 16 NTS NAKs
//! in a row runs the key exchange again ([`Report::key_exchanges`]).
//!
//! **How CPU is attributed.** Nothing is estimated. Both processes are sampled
//! at the start and at the end of the window (the sending time plus the drain
//! of the last replies): the generator with `getrusage(RUSAGE_SELF)`, the
//! server (`--server-pid`) from `utime + stime` in `/proc/PID/stat` at
//! `sysconf(_SC_CLK_TCK)` ticks, summed over the process and its descendants
//! (chronyd runs NTS-KE in helper processes; see [`cpu`]). The change of the
//! kernel's UDP `RcvbufErrors` over the window is reported too, so loss in a
//! full socket queue is told apart from a server that dropped requests, and
//! so is the CPU time the hypervisor stole from the machine (`steal` in
//! `/proc/stat`, [`Report::steal_s`]): on a virtual machine a run the host
//! disturbed shows inflated CPU figures and stretched latencies, and the
//! steal says which runs to discard. The efficiency figure is server CPU
//! seconds per million answered requests; compare servers at the same
//! offered rate, with the server and the generator pinned to different cores.
//!
//! **Safety.** Targets outside 127.0.0.0/8 and `::1` are refused unless
//! [`Config::allow_remote`] is set, and every run stops by itself: the
//! duration is capped at [`MAX_DURATION`], replies are awaited at most
//! [`Config::reply_timeout`] after the last request.
//!
//! # Example
//!
//! ```no_run
//! use ntp_perf::{Config, Mode, Rate};
//!
//! let mut config = Config::new(Mode::Plain, "127.0.0.1");
//! config.port = Some(12345);
//! config.rate = Rate::PerSecond(20_000.0);
//! let report = ntp_perf::run(&config)?;
//! println!("{report}");
//! # Ok::<(), ntp_perf::PerfError>(())
//! ```

pub mod cli;
pub mod cpu;
pub mod histogram;
pub mod ke;
pub mod pacer;
pub mod report;
pub mod sweep;
pub mod target;
pub mod timing;
pub mod udp;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use histogram::Histogram;
pub use pacer::{Pacer, Rate};
pub use report::{Latency, Report};
pub use sweep::{SweepStep, sweep};

/// The longest run accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// What to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plain NTPv4 client requests.
    Plain,
    /// NTS-protected requests (RFC 8915 §5) after one NTS-KE per client.
    Nts,
    /// Full NTS-KE exchanges over TLS (RFC 8915 §4).
    Ke,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Nts => "nts",
            Self::Ke => "ke",
        }
    }
}

/// One run's settings. Build with [`Config::new`] and adjust the fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// What to load.
    pub mode: Mode,
    /// Server host name or address.
    pub host: String,
    /// NTP port. `None`: 123 for plain; for NTS, the port the key exchange
    /// names (else 123).
    pub port: Option<u16>,
    /// NTS-KE port (default 4460).
    pub ke_port: u16,
    /// PEM file of the CA that signed the NTS-KE server's certificate (the
    /// system roots when `None`).
    pub ca_file: Option<PathBuf>,
    /// Offered rate.
    pub rate: Rate,
    /// How long to send (at most [`MAX_DURATION`]).
    pub duration: Duration,
    /// Most requests outstanding at once (for `ke`, concurrent handshakes).
    pub inflight: usize,
    /// Distinct UDP sockets (source ports) to spread the load over.
    pub clients: usize,
    /// The server process whose CPU time to report.
    pub server_pid: Option<u32>,
    /// Allow a target that is not a loopback address.
    pub allow_remote: bool,
    /// How long a request may wait for its reply before it counts as lost.
    pub reply_timeout: Duration,
}

impl Config {
    /// Defaults: 1000 requests/s for 10 s, 8 clients, 1024 in flight (8
    /// handshakes for `ke`), 1 s reply timeout, NTS-KE on port 4460.
    pub fn new(mode: Mode, host: impl Into<String>) -> Self {
        Self {
            mode,
            host: host.into(),
            port: None,
            ke_port: ntp_io::DEFAULT_KE_PORT,
            ca_file: None,
            rate: Rate::PerSecond(1000.0),
            duration: Duration::from_secs(10),
            inflight: if mode == Mode::Ke { 8 } else { 1024 },
            clients: 8,
            server_pid: None,
            allow_remote: false,
            reply_timeout: Duration::from_secs(1),
        }
    }

    fn check(&self) -> Result<(), PerfError> {
        let bad = |what: String| Err(PerfError::Config(what));
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return bad(format!(
                "duration must be between 0 and {} s",
                MAX_DURATION.as_secs()
            ));
        }
        if !(1..=1 << 20).contains(&self.inflight) {
            return bad("inflight must be between 1 and 1048576".into());
        }
        if !(1..=4096).contains(&self.clients) {
            return bad("clients must be between 1 and 4096".into());
        }
        if self.reply_timeout.is_zero() || self.reply_timeout > Duration::from_secs(10) {
            return bad("reply timeout must be between 0 and 10 s".into());
        }
        if let Some(pid) = self.server_pid {
            cpu::process_tree_cpu(pid).map_err(|e| PerfError::ServerPid(pid, e.to_string()))?;
        }
        Ok(())
    }
}

/// Why a run could not start or went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfError {
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// The host did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The target is not loopback and remote targets were not allowed.
    #[error(
        "refusing to load {0}: not a loopback address (pass --allow-remote to load a server you run)"
    )]
    NotLoopback(IpAddr),
    /// `--server-pid` names no readable process.
    #[error("cannot read the CPU time of process {0}: {1}")]
    ServerPid(u32, String),
    /// A socket could not be set up.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The initial NTS key exchange failed.
    #[error("nts-ke: {0}")]
    KeyExchange(String),
    /// TLS configuration failed (e.g. an unreadable CA file).
    #[error("tls: {0}")]
    Tls(String),
}

/// Runs one measurement and returns its report.
///
/// # Errors
/// [`PerfError`] if the configuration is invalid, the target is refused or
/// cannot be reached to set up (sockets, the first NTS key exchanges).
pub fn run(config: &Config) -> Result<Report, PerfError> {
    config.check()?;
    match config.mode {
        Mode::Plain | Mode::Nts => udp::run(config),
        Mode::Ke => ke::run(config),
    }
}
