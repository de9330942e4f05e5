//! The hysteresis state machine and the leased verdict it issues.

use core::fmt;
use std::collections::BTreeSet;

use crate::{
    Alert, AlertKind, Figure, Reason, Round, RoundEvaluation, RoundOutcome, SourceEvaluation,
    SourceStatus, UnixMs, ValidPolicy, evaluate_round,
};

/// The trust states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerdictState {
    /// The time is right: signing may proceed.
    Trusted,
    /// The time is believed right but the evidence is weaker than
    /// configured; see the reasons.
    Degraded,
    /// The time is not known to be right: do not sign.
    Untrusted,
}

impl VerdictState {
    /// `TRUSTED`, `DEGRADED` or `UNTRUSTED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trusted => "TRUSTED",
            Self::Degraded => "DEGRADED",
            Self::Untrusted => "UNTRUSTED",
        }
    }
}

impl fmt::Display for VerdictState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trust state with its reasons and its lease.
///
/// A verdict is valid from `issued_at` to `valid_until` inclusive; read it
/// through [`Verdict::effective`] or [`Verdict::as_of`], which turn a stale
/// verdict into UNTRUSTED. A verdict read before its `issued_at` (the clock
/// went backwards) is stale too.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The state when issued.
    pub state: VerdictState,
    /// Why (empty only for a clean TRUSTED).
    pub reasons: Vec<Reason>,
    /// When it was issued: the `now` given to [`next`].
    pub issued_at: UnixMs,
    /// `issued_at` + `lease-s`.
    pub valid_until: UnixMs,
}

impl Verdict {
    /// Whether the lease does not cover `now`: `now` > `valid_until` or
    /// `now` < `issued_at`.
    pub fn is_stale(&self, now: UnixMs) -> bool {
        now > self.valid_until || now < self.issued_at
    }

    /// The state at `now`: [`VerdictState::Untrusted`] if stale, else
    /// `state`.
    pub fn effective(&self, now: UnixMs) -> VerdictState {
        if self.is_stale(now) {
            VerdictState::Untrusted
        } else {
            self.state
        }
    }

    /// The verdict as it stands at `now`: itself, or if stale an UNTRUSTED
    /// copy whose first reason is [`Reason::StaleVerdict`], followed by the
    /// original reasons.
    pub fn as_of(&self, now: UnixMs) -> Self {
        if !self.is_stale(now) {
            return self.clone();
        }
        let mut reasons = Vec::with_capacity(self.reasons.len() + 1);
        reasons.push(Reason::StaleVerdict {
            issued_at: self.issued_at,
            valid_until: self.valid_until,
            now,
        });
        reasons.extend(self.reasons.iter().cloned());
        Self {
            state: VerdictState::Untrusted,
            reasons,
            ..self.clone()
        }
    }
}

/// Where the state machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// Since start: UNTRUSTED until `release-after` passed rounds in a row.
    #[default]
    Startup,
    /// Trust established: TRUSTED or DEGRADED.
    Normal,
    /// After `hold-after` failed rounds in a row: UNTRUSTED until
    /// `release-after` passed rounds in a row.
    Held,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Condition {
    CommFailed,
    NtsAuthFailed,
    OffsetExceeded,
    RootDistanceExceeded,
    LeapPending,
}

/// The memory of the policy between rounds: the phase, the consecutive
/// passed and failed round counters, and which alert conditions are active
/// (so alerts fire on transitions only).
///
/// Start with [`PolicyState::default`] and feed every round to [`next`]. A
/// state belongs to one policy; after a configuration change, start afresh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyState {
    phase: Phase,
    failed_rounds: u32,
    passed_rounds: u32,
    rounds: u64,
    active: BTreeSet<(String, Condition)>,
    disagreeing: bool,
}

impl PolicyState {
    /// The start state: [`Phase::Startup`], no rounds seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// The phase.
    pub const fn phase(&self) -> Phase {
        self.phase
    }

    /// Consecutive failed rounds up to now.
    pub const fn failed_rounds(&self) -> u32 {
        self.failed_rounds
    }

    /// Consecutive passed (or degraded) rounds up to now.
    pub const fn passed_rounds(&self) -> u32 {
        self.passed_rounds
    }

    /// Rounds seen.
    pub const fn rounds(&self) -> u64 {
        self.rounds
    }
}

/// What [`next`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The state to pass to the next call.
    pub state: PolicyState,
    /// The verdict, leased from `now`.
    pub verdict: Verdict,
    /// Alerts raised by this round, in order: per source in configured order
    /// (`NTP_COMM_FAILED`, `NTS_AUTH_FAILED`, `NTP_THRESHOLD_REACHED` for the
    /// offset then the root distance, `LEAP_PENDING`), then
    /// `SOURCES_DISAGREE`, then `HOLD_ENTERED` or `HOLD_RELEASED`.
    pub alerts: Vec<Alert>,
    /// The round's evaluation, for the check log.
    pub round: RoundEvaluation,
}

/// Feeds one round to the state machine: evaluates it
/// ([`evaluate_round`]), moves the state, and issues a verdict leased from
/// `now` and the alerts of this round.
///
/// # State machine
///
/// A round *passes* when its outcome is passed or degraded. With
/// N = `hold-after` and M = `release-after`:
///
/// | phase   | round  | then                                                                  |
/// |---------|--------|-----------------------------------------------------------------------|
/// | Startup | passes | M-th pass in a row → Normal (no alert); before: UNTRUSTED, no verdict yet |
/// | Startup | fails  | UNTRUSTED, pass counter reset                                         |
/// | Normal  | passes | TRUSTED (clean round) or DEGRADED (degraded round); fail counter reset |
/// | Normal  | fails  | N-th failure in a row → Held, `HOLD_ENTERED`, UNTRUSTED; before: DEGRADED |
/// | Held    | passes | M-th pass in a row → Normal, `HOLD_RELEASED`, as Normal; before: UNTRUSTED |
/// | Held    | fails  | UNTRUSTED, pass counter reset                                         |
///
/// So the verdict is not UNTRUSTED exactly when, at some round j, M rounds in
/// a row had passed, and since j no N rounds in a row failed; it is TRUSTED
/// when in addition this round passed cleanly. The time is UNTRUSTED from
/// start until M rounds pass: a timestamp authority must not sign on no
/// evidence.
///
/// The verdict's reasons are the state's reason ([`Reason::NoVerdictYet`],
/// [`Reason::RoundFailed`] or [`Reason::Held`], when not in Normal or after a
/// failed round) followed by the round's reasons.
///
/// # Alerts
///
/// Alerts fire when a condition starts, not on every round it lasts; a
/// condition ends (and can fire again) at the first round that evaluates
/// the source without it. A [`SourceStatus::Skipped`] source keeps its
/// conditions. There are no recovery alerts: recovery shows in the verdicts
/// and the check log. Per source:
///
/// - `NTP_COMM_FAILED`: the source failed with no usable attempt, and not
///   only because of NTS failures (this includes "not checked", unreachable,
///   timeout, kiss-o'-death, unsynchronized and malformed samples). Figures:
///   `attempts`.
/// - `NTS_AUTH_FAILED`: any considered attempt failed NTS authentication or
///   key establishment, even if a retry then passed. Figures:
///   `nts_failures`, `attempts`.
/// - `NTP_THRESHOLD_REACHED`: the source failed and its reported sample's
///   |offset| is beyond `max-offset-ms` (figures `offset_s`, `max_offset_s`),
///   or its root distance beyond `max-root-distance-ms` (figures
///   `root_distance_s`, `max_root_distance_s`, `root_delay_s`,
///   `root_dispersion_s`); each threshold is its own condition.
/// - `LEAP_PENDING`: the reported sample is usable and announces a leap
///   (in every `leap` setting). Figures: `leap_indicator`.
///
/// Per round: `SOURCES_DISAGREE` when the disagreement starts (figures
/// `low_offset_s`, `high_offset_s`, `spread_s`, `bound_s`); `HOLD_ENTERED`
/// (figures `failed_rounds`, `hold_after`) and `HOLD_RELEASED` (figures
/// `passed_rounds`, `release_after`) on those transitions.
pub fn next(policy: &ValidPolicy, state: PolicyState, round: &Round, now: UnixMs) -> Step {
    let eval = evaluate_round(policy, round);
    let mut state = state;
    state.rounds = state.rounds.saturating_add(1);
    let mut alerts = source_alerts(policy, &mut state, &eval, now);

    if let Some(d) = &eval.disagreement {
        if !state.disagreeing {
            alerts.push(disagree_alert(d, now));
        }
        state.disagreeing = true;
    } else {
        state.disagreeing = false;
    }

    let passed = eval.outcome.passed();
    if passed {
        state.passed_rounds = state.passed_rounds.saturating_add(1);
        state.failed_rounds = 0;
    } else {
        state.failed_rounds = state.failed_rounds.saturating_add(1);
        state.passed_rounds = 0;
    }
    let round_state = if eval.outcome == RoundOutcome::Passed {
        VerdictState::Trusted
    } else {
        VerdictState::Degraded
    };
    let (m, n) = (policy.release_after, policy.hold_after);
    let mut lead = None;
    let verdict_state = match (state.phase, passed) {
        (Phase::Startup, _) if state.passed_rounds < m => {
            lead = Some(Reason::NoVerdictYet {
                passed_rounds: state.passed_rounds,
                release_after: m,
            });
            VerdictState::Untrusted
        }
        (Phase::Held, _) if state.passed_rounds < m => {
            lead = Some(Reason::Held {
                passed_rounds: state.passed_rounds,
                release_after: m,
            });
            VerdictState::Untrusted
        }
        (Phase::Startup | Phase::Held, _) => {
            if state.phase == Phase::Held {
                alerts.push(Alert {
                    kind: AlertKind::HoldReleased,
                    source: None,
                    figures: vec![
                        Figure::new("passed_rounds", f64::from(state.passed_rounds)),
                        Figure::new("release_after", f64::from(m)),
                    ],
                    message: format!("hold released after {} passed rounds", state.passed_rounds),
                    at: now,
                });
            }
            state.phase = Phase::Normal;
            round_state
        }
        (Phase::Normal, true) => round_state,
        (Phase::Normal, false) if state.failed_rounds < n => {
            lead = Some(Reason::RoundFailed {
                failed_rounds: state.failed_rounds,
                hold_after: n,
            });
            VerdictState::Degraded
        }
        (Phase::Normal, false) => {
            state.phase = Phase::Held;
            alerts.push(Alert {
                kind: AlertKind::HoldEntered,
                source: None,
                figures: vec![
                    Figure::new("failed_rounds", f64::from(state.failed_rounds)),
                    Figure::new("hold_after", f64::from(n)),
                ],
                message: format!(
                    "hold entered after {} failed rounds: {}",
                    state.failed_rounds,
                    join(&eval.reasons)
                ),
                at: now,
            });
            lead = Some(Reason::Held {
                passed_rounds: 0,
                release_after: m,
            });
            VerdictState::Untrusted
        }
    };
    let mut reasons: Vec<Reason> = lead.into_iter().collect();
    reasons.extend(eval.reasons.iter().cloned());
    let verdict = Verdict {
        state: verdict_state,
        reasons,
        issued_at: now,
        valid_until: now.saturating_add(policy.lease),
    };
    Step {
        state,
        verdict,
        alerts,
        round: eval,
    }
}

fn join(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn source_alerts(
    policy: &ValidPolicy,
    state: &mut PolicyState,
    eval: &RoundEvaluation,
    now: UnixMs,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for s in &eval.sources {
        if s.status == SourceStatus::Skipped {
            continue;
        }
        for (condition, alert) in conditions(policy, s) {
            let key = (s.source.clone(), condition);
            match alert {
                Some(alert) => {
                    if state.active.insert(key) {
                        alerts.push(Alert {
                            kind: alert.0,
                            source: Some(s.source.clone()),
                            figures: alert.1,
                            message: alert.2,
                            at: now,
                        });
                    }
                }
                None => {
                    state.active.remove(&key);
                }
            }
        }
    }
    alerts
}

type AlertParts = (AlertKind, Vec<Figure>, String);

/// Each condition of a source with, when it holds this round, its alert.
fn conditions(policy: &ValidPolicy, s: &SourceEvaluation) -> [(Condition, Option<AlertParts>); 5] {
    let failed = s.status == SourceStatus::Failed;
    let count = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    let usable_sample = s.sample.filter(|_| s.usable);

    let comm =
        (failed && !s.usable && !(s.attempts > 0 && s.nts_failures == s.attempts)).then(|| {
            (
                AlertKind::NtpCommFailed,
                vec![Figure::new("attempts", count(s.attempts))],
                format!("source failing: {}", join(&s.reasons)),
            )
        });
    let nts = (s.nts_failures > 0).then(|| {
        (
            AlertKind::NtsAuthFailed,
            vec![
                Figure::new("nts_failures", count(s.nts_failures)),
                Figure::new("attempts", count(s.attempts)),
            ],
            format!("{} of {} attempts failed nts", s.nts_failures, s.attempts),
        )
    });
    let max_offset_s = policy.max_offset.as_secs_f64();
    let offset = usable_sample
        .filter(|x| failed && x.offset_s.abs() > max_offset_s)
        .map(|x| {
            (
                AlertKind::NtpThresholdReached,
                vec![
                    Figure::new("offset_s", x.offset_s),
                    Figure::new("max_offset_s", max_offset_s),
                ],
                format!("offset {:+.6} s beyond ±{max_offset_s:.6} s", x.offset_s),
            )
        });
    let max_rd_s = policy.max_root_distance.as_secs_f64();
    let root_distance = usable_sample
        .filter(|x| failed && x.root_distance_s() > max_rd_s)
        .map(|x| {
            (
                AlertKind::NtpThresholdReached,
                vec![
                    Figure::new("root_distance_s", x.root_distance_s()),
                    Figure::new("max_root_distance_s", max_rd_s),
                    Figure::new("root_delay_s", x.root_delay_s),
                    Figure::new("root_dispersion_s", x.root_dispersion_s),
                ],
                format!(
                    "root distance {:.6} s beyond {max_rd_s:.6} s",
                    x.root_distance_s()
                ),
            )
        });
    let leap = usable_sample.filter(|x| x.leap.is_pending()).map(|x| {
        (
            AlertKind::LeapPending,
            vec![Figure::new("leap_indicator", f64::from(x.leap.indicator()))],
            format!(
                "leap second announced (leap indicator {})",
                x.leap.indicator()
            ),
        )
    });
    [
        (Condition::CommFailed, comm),
        (Condition::NtsAuthFailed, nts),
        (Condition::OffsetExceeded, offset),
        (Condition::RootDistanceExceeded, root_distance),
        (Condition::LeapPending, leap),
    ]
}

fn disagree_alert(d: &Reason, now: UnixMs) -> Alert {
    let figures = match d {
        Reason::SourcesDisagree {
            low_offset_s,
            high_offset_s,
            bound_s,
            ..
        } => vec![
            Figure::new("low_offset_s", *low_offset_s),
            Figure::new("high_offset_s", *high_offset_s),
            Figure::new("spread_s", high_offset_s - low_offset_s),
            Figure::new("bound_s", *bound_s),
        ],
        _ => Vec::new(),
    };
    Alert {
        kind: AlertKind::SourcesDisagree,
        source: None,
        figures,
        message: d.to_string(),
        at: now,
    }
}
