//! Time-trust policy for timestamp authorities: rounds of NTP/NTS check
//! results in, a leased verdict (TRUSTED, DEGRADED, UNTRUSTED) with reasons
//! and alert events out.
//!
//! A timestamp authority (RFC 3161) may sign only while its clock is provably
//! right. A monitor checks its configured sources in rounds; this crate turns
//! each round into a verdict the monitor serves (e.g. on `/health`) and logs,
//! so that an auditor can later see why signing was allowed at any moment.
//!
//! # Design overview
//!
//! Policy is data plus pure functions. The crate does no I/O and never reads
//! a clock: time is passed in as [`UnixMs`], milliseconds since the Unix
//! epoch. The pipeline has four stages, each a public function:
//!
//! 1. **Attempt and source** ([`evaluate_attempt`], [`evaluate_source`]):
//!    each [`CheckResult`] is judged against the thresholds (offset, root
//!    distance `root_delay / 2 + root_dispersion`, synchronization, leap
//!    handling, NTS). A source passes a round if any of its first
//!    `1 + retries` attempts passes.
//! 2. **Round** ([`evaluate_round`]): the [`Mode`] combines the sources
//!    (`check-all`, `first-pass`, `quorum` with a [`Tiebreak`]), then
//!    cross-source rules apply (NTS count, distinct operators, disagreement).
//!    The outcome is passed, degraded or failed, with [`Reason`]s.
//! 3. **State machine** ([`next`]): a [`PolicyState`] counts consecutive
//!    passed and failed rounds: UNTRUSTED from start until `release-after`
//!    passes, DEGRADED for the first `hold-after − 1` failed rounds, held
//!    (UNTRUSTED) after `hold-after`, released after `release-after` passes.
//! 4. **Verdict and alerts**: every round yields a [`Verdict`] valid until
//!    `now + lease`; [`Verdict::effective`] reads a stale verdict as
//!    UNTRUSTED. [`Alert`]s fire when a condition starts, not while it lasts.
//!
//! The exact rules are documented on [`evaluate_attempt`],
//! [`evaluate_round`] and [`next`].
//!
//! # Configuration
//!
//! [`Policy`] is a plain struct (no serde); the monitor maps its `[policy]`
//! TOML section onto it, with [`Mode::from_config`] and the `FromStr`
//! implementations of [`Tiebreak`], [`LeapHandling`] and
//! [`DisagreementAction`] for the string keys. The keys are those of the
//! spec plus `max-root-distance-ms`, `leap = "ignore" | "degrade" | "fail"`,
//! `nts-required = "none" | "all" | N`, `min-operators = N`,
//! `max-disagreement-ms` and `on-disagreement = "degrade" | "fail"`; each
//! field's documentation names its key and default. [`Policy::validate`]
//! returns a [`ValidPolicy`] (what every function takes) or a
//! [`PolicyError`], plus [`PolicyWarning`]s.
//!
//! # Guarantees
//!
//! - Every function is total: no panics, whatever the figures (NaN and
//!   infinite samples fail their source).
//! - A verdict is TRUSTED only if the current round passed cleanly, some
//!   `release-after` rounds in a row passed, and no `hold-after` rounds in a
//!   row failed since then. (It is not required that the *last*
//!   `release-after` rounds all passed: fewer than `hold-after` failed rounds
//!   in a row only degrade, so one clean pass after them is TRUSTED again.)
//! - [`Verdict::effective`] is never TRUSTED outside the lease.
//!
//! # Example
//!
//! ```
//! use ntp_policy::{
//!     next, AlertKind, CheckResult, Leap, Policy, PolicyState, Round, Sample, SourceSpec,
//!     UnixMs, VerdictState,
//! };
//!
//! let mut policy = Policy::new(vec![
//!     SourceSpec::new("ptb", "ptb.de", true),
//!     SourceSpec::new("nist", "nist.gov", true),
//! ]);
//! policy.release_after = 2;
//! let policy = policy.validate()?;
//!
//! let check = |source: &str, offset_s: f64, at: UnixMs| CheckResult {
//!     source: source.into(),
//!     operator: source.into(),
//!     address: format!("{source}.example:123"),
//!     nts: true,
//!     outcome: Ok(Sample::new(offset_s, 0.020, 0.001, 0.001, 1, Leap::NoWarning)),
//!     at,
//! };
//! let round = |now| Round::new(vec![check("ptb", 0.002, now), check("nist", -0.001, now)]);
//!
//! let mut state = PolicyState::new();
//! let t0 = UnixMs::from_secs(1_700_000_000);
//!
//! // Start-up: one passed round is not enough evidence.
//! let step = next(&policy, state, &round(t0), t0);
//! assert_eq!(step.verdict.state, VerdictState::Untrusted);
//! state = step.state;
//!
//! // The second passed round establishes trust, leased for 60 s.
//! let t1 = UnixMs::from_secs(1_700_000_016);
//! let step = next(&policy, state, &round(t1), t1);
//! assert_eq!(step.verdict.state, VerdictState::Trusted);
//! assert_eq!(step.verdict.valid_until, UnixMs::from_secs(1_700_000_076));
//! assert!(step.alerts.is_empty());
//! state = step.state;
//!
//! // A source drifting 250 ms off: check-all fails the round, DEGRADED
//! // until hold-after (2) failed rounds, with an alert naming the source.
//! let t2 = UnixMs::from_secs(1_700_000_032);
//! let bad = Round::new(vec![check("ptb", 0.250, t2), check("nist", 0.0, t2)]);
//! let step = next(&policy, state, &bad, t2);
//! assert_eq!(step.verdict.state, VerdictState::Degraded);
//! assert_eq!(step.alerts[0].kind.as_str(), "NTP_THRESHOLD_REACHED");
//! assert_eq!(step.alerts[0].source.as_deref(), Some("ptb"));
//! assert_eq!(step.alerts[0].figure("offset_s"), Some(0.250));
//!
//! // Without a new round, the verdict goes stale after its lease.
//! let later = UnixMs::from_secs(1_700_000_093);
//! assert_eq!(step.verdict.effective(later), VerdictState::Untrusted);
//! assert_eq!(step.verdict.as_of(later).reasons[0].code(), "stale-verdict");
//! # let _ = AlertKind::HoldEntered;
//! # Ok::<(), ntp_policy::PolicyError>(())
//! ```

mod alert;
mod check;
mod config;
mod evaluate;
mod reason;
mod state;
mod time;

pub use alert::{Alert, AlertKind, Figure};
pub use check::{CheckFailure, CheckResult, Leap, Round, Sample};
pub use config::{
    DisagreementAction, LeapHandling, Mode, NtsRequirement, Policy, PolicyError, PolicyWarning,
    SourceSpec, Tiebreak, ValidPolicy,
};
pub use evaluate::{
    AttemptEvaluation, RoundEvaluation, RoundOutcome, SourceEvaluation, SourceStatus,
    evaluate_attempt, evaluate_round, evaluate_source,
};
pub use reason::Reason;
pub use state::{Phase, PolicyState, Step, Verdict, VerdictState, next};
pub use time::UnixMs;
