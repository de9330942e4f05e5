//! NTP clock algorithms (RFC 5905 §§8–13): per-source clock filter and poll
//! control, selection by interval intersection, clustering, combining, and a
//! clock discipline that hands step/slew/panic decisions to its caller — plus
//! a deterministic network and clock simulator ([`sim`]) that measures them.
//!
//! # Design overview
//!
//! The crate is sans-IO and reads no clock: every call takes `now`, the local
//! clock's time as an [`NtpTimestamp`], and returns values. The daemon owns
//! the sockets and the OS clock (behind the [`Clock`] trait it implements).
//!
//! ```text
//!  reply ──► Measurement::from_reply ──► Source::on_measurement ──► System::update ──► Decision
//!            (RFC 5905 §8 checks)        (clock filter, reach,      (fitness, select,     (Step / Slew /
//!                                         poll, KoD)                  cluster, combine,      Panic) ──► Clock
//!                                                                     discipline)
//! ```
//!
//! - [`Measurement`]: one sample (θ, δ, ε, the server's stratum, leap, refid,
//!   root delay and dispersion, poll, precision, NTS or not).
//!   [`Measurement::from_reply`] computes it from T1–T4 and the reply
//!   [`ntp_proto::Header`], rejecting with a typed [`OnWireError`].
//! - [`Source`]: the 8-stage [`filter::ClockFilter`] with popcorn spike
//!   suppression, the reach register, poll control (a burst at start-up and
//!   after unreachability, then the system poll between min and max), and
//!   Kiss-o'-Death handling ([`KissAction`]). Its call order is documented on
//!   the type.
//! - [`System`]: fitness, [`select::select`] (Marzullo-style intersection,
//!   a majority must agree), [`select::cluster`], [`select::combine`], and
//!   the [`Discipline`]. It sets each source's [`SourceState`] and keeps a
//!   [`SystemEstimate`] with a [`SyncState`] that says why when it is not
//!   synchronized. A huge offset never ends the process: the discipline
//!   returns [`Decision::Panic`], steers no more, and measuring goes on.
//! - [`Discipline`]: RFC 5905's PLL/FLL and a least-squares alternative
//!   (the default, because the simulator shows it converges much faster:
//!   see `docs/ACCURACY.md`), behind the same step threshold, stepout and
//!   panic threshold.
//!
//! # Call order for a daemon
//!
//! ```text
//! let mut sources = vec![Source::new(SourceConfig::default(), refid); n];
//! let mut system = System::new(SystemConfig::default());
//! loop {
//!     for each source i with sources[i].poll_due(now):
//!         send a request with poll = sources[i].poll(); sources[i].on_sent(now)
//!     on a reply to source i (T4 = now):
//!         match Measurement::from_reply(&exchange, &header) {
//!             Ok(m) => { sources[i].on_measurement(&m, now);
//!                        if let Some(d) = system.update(now, &mut sources) { d.apply(&mut clock)? } }
//!             Err(OnWireError::Kiss(code)) => act on sources[i].on_kiss(code, now),
//!             Err(_) => drop the reply,
//!         }
//!     on a reply timeout: sources[i].on_timeout(now)
//!     sleep until the earliest sources[i].next_poll(now) or a reply
//! }
//! ```
//!
//! # Guarantees
//!
//! - No panics on network input: indexing is checked (`clippy::indexing_slicing`),
//!   and non-finite values never reach the discipline.
//! - Deterministic: the same inputs give the same decisions; the simulator
//!   is seeded and uses its own PRNG.
//! - Every deviation from RFC 5905 is documented where it is made (filter
//!   dispersion of never-filled stages, popcorn gate jitter, PLL constant).
//!
//! # Example
//!
//! ```
//! use ntp_clock::sim::{run, PathModel, Scenario, ServerModel};
//!
//! let scenario = Scenario::new(7)
//!     .server(ServerModel::honest("a", 20e-6), PathModel::lan())
//!     .server(ServerModel::honest("b", -10e-6), PathModel::lan())
//!     .server(ServerModel::falseticker("liar", 0.3, 0.0), PathModel::lan());
//! let report = run(&Scenario { duration: 1800.0, settle: 900.0, ..scenario });
//! assert!(report.rms < 200e-6);
//! assert_eq!(report.sources[2].final_state, ntp_clock::SourceState::Falseticker);
//! ```

#![warn(clippy::indexing_slicing)]

pub mod clock;
pub mod discipline;
pub mod filter;
pub mod measurement;
pub mod select;
pub mod sim;
pub mod source;
pub mod system;

pub use clock::Clock;
pub use discipline::{Algorithm, Decision, Discipline, DisciplineConfig, DisciplineStatus};
pub use measurement::{Exchange, Measurement, OnWireError};
pub use ntp_proto::NtpTimestamp;
pub use source::{
    KissAction, SampleOutcome, Source, SourceConfig, SourceInfo, SourceState, UnfitReason,
};
pub use system::{SyncState, System, SystemConfig, SystemEstimate, UnsyncReason};

/// RFC 5905 constants (PROTOCOL.md §4), where the RFC's main text and
/// Appendix A differ, the value chosen is noted.
pub mod consts {
    /// Frequency tolerance, s/s (15 ppm).
    pub const PHI: f64 = 15e-6;
    /// Maximum dispersion, seconds.
    pub const MAXDISP: f64 = 16.0;
    /// Minimum dispersion increment, seconds (Appendix A's 0.01).
    pub const MINDISP: f64 = 0.01;
    /// Maximum root distance for a fit source, seconds.
    pub const MAXDIST: f64 = 1.0;
    /// Clock filter stages.
    pub const NSTAGE: usize = 8;
    /// Popcorn spike gate, in jitters.
    pub const SGATE: f64 = 3.0;
    /// Minimum survivors of the cluster algorithm.
    pub const NMIN: usize = 3;
    /// Minimum candidates for synchronization.
    pub const CMIN: usize = 1;
    /// Largest poll exponent.
    pub const MAXPOLL: i8 = 17;
    /// Allan intercept, seconds.
    pub const ALLAN: f64 = 1500.0;
    /// Jitter averaging constant (main text's 8... Appendix A's 4; we use 4).
    pub const AVG: f64 = 4.0;
    /// Poll adjustment counter limit.
    pub const LIMIT: i32 = 30;
    /// Poll adjustment gate, in jitters.
    pub const PGATE: f64 = 4.0;
}
