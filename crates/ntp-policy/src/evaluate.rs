//! Per-attempt, per-source and per-round evaluation: pure functions of the
//! policy and the round.

use std::collections::BTreeSet;

use crate::{
    CheckResult, DisagreementAction, LeapHandling, Mode, NtsRequirement, Reason, Round, Sample,
    SourceSpec, Tiebreak, ValidPolicy,
};

/// The judgement of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEvaluation {
    /// Whether the attempt passes every per-source rule.
    pub passed: bool,
    /// Whether it produced a usable result: a well-formed sample from a
    /// synchronized source. `first-pass` decides on the first source with
    /// one.
    pub usable: bool,
    /// Why it failed (empty when it passed).
    pub failures: Vec<Reason>,
    /// What makes a passing attempt degraded (`leap = "degrade"`).
    pub warnings: Vec<Reason>,
}

/// Judges one attempt against the per-source rules.
///
/// In order: a failed check fails; a malformed sample (NaN, infinity,
/// negative root delay or dispersion) or an unsynchronized source (LI 3,
/// stratum 0 or ≥ 16) fails and is not usable; otherwise the sample is usable
/// and fails on each of |offset| > `max_offset`,
/// `root_delay / 2 + root_dispersion` > `max_root_distance`, no NTS under
/// `nts-required = "all"`, and a pending leap under `leap = "fail"` (under
/// `"degrade"` the leap is a warning; under `"ignore"` nothing). All failing
/// rules are listed, not just the first.
pub fn evaluate_attempt(policy: &ValidPolicy, result: &CheckResult) -> AttemptEvaluation {
    let source = &result.source;
    let mut eval = AttemptEvaluation {
        passed: false,
        usable: false,
        failures: Vec::new(),
        warnings: Vec::new(),
    };
    let sample = match &result.outcome {
        Err(failure) => {
            eval.failures.push(Reason::CheckFailed {
                source: source.clone(),
                failure: failure.clone(),
            });
            return eval;
        }
        Ok(sample) => sample,
    };
    if !sample.is_well_formed() {
        eval.failures.push(Reason::MalformedSample {
            source: source.clone(),
        });
        return eval;
    }
    if !sample.is_synchronized() {
        eval.failures.push(Reason::Unsynchronized {
            source: source.clone(),
            leap: sample.leap,
            stratum: sample.stratum,
        });
        return eval;
    }
    eval.usable = true;
    let max_offset_s = policy.max_offset.as_secs_f64();
    if sample.offset_s.abs() > max_offset_s {
        eval.failures.push(Reason::OffsetExceeded {
            source: source.clone(),
            offset_s: sample.offset_s,
            max_s: max_offset_s,
        });
    }
    let max_rd_s = policy.max_root_distance.as_secs_f64();
    if sample.root_distance_s() > max_rd_s {
        eval.failures.push(Reason::RootDistanceExceeded {
            source: source.clone(),
            root_distance_s: sample.root_distance_s(),
            max_s: max_rd_s,
        });
    }
    if policy.nts_required == NtsRequirement::All && !result.nts {
        eval.failures.push(Reason::NtsRequired {
            source: source.clone(),
        });
    }
    if sample.leap.is_pending() {
        let reason = Reason::LeapPending {
            source: source.clone(),
            leap: sample.leap,
        };
        match policy.leap {
            LeapHandling::Ignore => {}
            LeapHandling::Degrade => eval.warnings.push(reason),
            LeapHandling::Fail => eval.failures.push(reason),
        }
    }
    eval.passed = eval.failures.is_empty();
    eval
}

/// Where a source stands after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceStatus {
    /// At least one considered attempt passed.
    Passed,
    /// No considered attempt passed, or the source was not checked.
    Failed,
    /// `first-pass` only: not checked, and an earlier source decided the
    /// round. Counts neither as passed nor as failed.
    Skipped,
}

/// The judgement of one configured source over a round.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEvaluation {
    /// The source's name.
    pub source: String,
    /// The operator label of the reported attempt, or the configured one if
    /// the source was not checked.
    pub operator: String,
    /// Whether the reported attempt was NTS-authenticated.
    pub nts: bool,
    /// The outcome.
    pub status: SourceStatus,
    /// Attempts considered (at most `1 + retries`).
    pub attempts: usize,
    /// Attempts beyond `1 + retries`, ignored.
    pub ignored_attempts: usize,
    /// Whether any considered attempt was usable.
    pub usable: bool,
    /// Considered attempts that failed NTS authentication or key
    /// establishment.
    pub nts_failures: usize,
    /// The sample of the reported attempt: the first passing attempt, else
    /// the last usable one, else the last one with a sample.
    pub sample: Option<Sample>,
    /// For a failed source, the failures of all considered attempts, without
    /// duplicates, in order; for a passed one, the warnings of the reported
    /// attempt.
    pub reasons: Vec<Reason>,
}

impl SourceEvaluation {
    /// Whether the source passed.
    pub fn passed(&self) -> bool {
        self.status == SourceStatus::Passed
    }

    /// Whether the source passed but with a warning (a pending leap under
    /// `leap = "degrade"`).
    pub fn degraded(&self) -> bool {
        self.passed() && !self.reasons.is_empty()
    }
}

/// Judges one source from its attempts in a round (all of them, in order;
/// only the first `1 + retries` count). No attempts: failed, not checked.
pub fn evaluate_source(
    policy: &ValidPolicy,
    spec: &SourceSpec,
    attempts: &[&CheckResult],
) -> SourceEvaluation {
    let limit = usize::try_from(policy.retries)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let considered = attempts.get(..limit).unwrap_or(attempts);
    let evals: Vec<AttemptEvaluation> = considered
        .iter()
        .map(|r| evaluate_attempt(policy, r))
        .collect();
    let reported = evals
        .iter()
        .position(|e| e.passed)
        .or_else(|| evals.iter().rposition(|e| e.usable))
        .or_else(|| considered.iter().rposition(|r| r.outcome.is_ok()))
        .or_else(|| considered.len().checked_sub(1));
    let reported_result = reported.and_then(|i| considered.get(i));
    let passed = evals.iter().any(|e| e.passed);
    let reasons = if passed {
        reported
            .and_then(|i| evals.get(i))
            .map(|e| e.warnings.clone())
            .unwrap_or_default()
    } else if considered.is_empty() {
        vec![Reason::NotChecked {
            source: spec.name.clone(),
        }]
    } else {
        let mut all: Vec<Reason> = Vec::new();
        for r in evals.iter().flat_map(|e| &e.failures) {
            if !all.contains(r) {
                all.push(r.clone());
            }
        }
        all
    };
    SourceEvaluation {
        source: spec.name.clone(),
        operator: reported_result.map_or_else(|| spec.operator.clone(), |r| r.operator.clone()),
        nts: reported_result.is_some_and(|r| r.nts),
        status: if passed {
            SourceStatus::Passed
        } else {
            SourceStatus::Failed
        },
        attempts: considered.len(),
        ignored_attempts: attempts.len() - considered.len(),
        usable: evals.iter().any(|e| e.usable),
        nts_failures: considered
            .iter()
            .filter(|r| r.outcome.as_ref().is_err_and(|f| f.is_nts()))
            .count(),
        sample: reported_result.and_then(|r| r.outcome.as_ref().ok().copied()),
        reasons,
    }
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundOutcome {
    /// The mode and every cross-source rule are satisfied, cleanly.
    Passed,
    /// Passed, but with a reason to worry (see [`evaluate_round`]).
    Degraded,
    /// The mode or a cross-source rule is not satisfied.
    Failed,
}

impl RoundOutcome {
    /// Whether the round counts as passed for the state machine
    /// ([`Passed`](Self::Passed) or [`Degraded`](Self::Degraded)).
    pub const fn passed(self) -> bool {
        matches!(self, Self::Passed | Self::Degraded)
    }
}

/// The judgement of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundEvaluation {
    /// How it ended.
    pub outcome: RoundOutcome,
    /// Why it failed or is degraded; empty when it passed cleanly.
    pub reasons: Vec<Reason>,
    /// Every configured source, in configured order.
    pub sources: Vec<SourceEvaluation>,
    /// `first-pass`: the source that decided the round.
    pub decided_by: Option<String>,
    /// The disagreement found between passing sources, if any (it is also
    /// among `reasons`).
    pub disagreement: Option<Reason>,
    /// Names in the round that are not configured sources; their results
    /// were ignored.
    pub unknown_sources: Vec<String>,
}

/// Judges a round.
///
/// 1. Each configured source is judged from its attempts
///    ([`evaluate_source`]); attempts of unknown sources are ignored.
/// 2. The mode decides:
///    - `check-all`: passes iff every source passed.
///    - `first-pass`: the first source (configured order) with a usable
///      attempt decides: the round passes iff that source passed. Sources
///      after it without attempts are [`SourceStatus::Skipped`]. No usable
///      source: fails ([`Reason::NoUsableSource`]).
///    - `quorum(K)`: with P passed and F failed sources (unchecked ones
///      count as failed), passes iff P ≥ K, except that P = F with
///      `tiebreak = "fail"` fails ([`Reason::QuorumTie`]). `tiebreak =
///      "pass"` never lets P < K pass.
/// 3. Cross-source rules over the passed sources, in every mode (in
///    `first-pass`, check the sources these rules need): fewer NTS sources
///    than `nts-required = N` fails; fewer distinct operator labels than
///    `min-operators` (when above 1) fails; offsets spreading (highest minus lowest) beyond
///    the disagreement bound raise [`Reason::SourcesDisagree`], which degrades
///    or fails the round per `on-disagreement`.
/// 4. A round that passes is [`RoundOutcome::Degraded`] when any configured
///    source failed ([`Reason::SourcesFailing`], followed by those sources'
///    reasons), a passing source announces a leap under `leap = "degrade"`,
///    or the sources disagree under `on-disagreement = "degrade"`.
///
/// A failed round lists the reasons of the mode (and of each failed source)
/// followed by those of the cross-source rules.
pub fn evaluate_round(policy: &ValidPolicy, round: &Round) -> RoundEvaluation {
    let configured: BTreeSet<&str> = policy.sources.iter().map(|s| s.name.as_str()).collect();
    let mut unknown_sources: Vec<String> = Vec::new();
    for r in &round.results {
        if !configured.contains(r.source.as_str()) && !unknown_sources.contains(&r.source) {
            unknown_sources.push(r.source.clone());
        }
    }
    let mut sources: Vec<SourceEvaluation> = policy
        .sources
        .iter()
        .map(|spec| {
            let attempts: Vec<&CheckResult> = round
                .results
                .iter()
                .filter(|r| r.source == spec.name)
                .collect();
            evaluate_source(policy, spec, &attempts)
        })
        .collect();

    let mut reasons = Vec::new();
    let mut decided_by = None;
    let failed_reasons = |sources: &[SourceEvaluation]| -> Vec<Reason> {
        sources
            .iter()
            .filter(|s| s.status == SourceStatus::Failed)
            .flat_map(|s| s.reasons.iter().cloned())
            .collect()
    };
    let mode_passed = match policy.mode {
        Mode::CheckAll => sources.iter().all(SourceEvaluation::passed),
        Mode::FirstPass => match sources.iter().position(|s| s.usable) {
            Some(i) => {
                for s in sources.iter_mut().skip(i + 1) {
                    if s.attempts == 0 {
                        s.status = SourceStatus::Skipped;
                        s.reasons.clear();
                    }
                }
                let decider = sources.get(i);
                decided_by = decider.map(|s| s.source.clone());
                decider.is_some_and(SourceEvaluation::passed)
            }
            None => {
                reasons.push(Reason::NoUsableSource);
                false
            }
        },
        Mode::Quorum(k) => {
            let passed = sources.iter().filter(|s| s.passed()).count();
            let failed = sources.len() - passed;
            if passed < k {
                reasons.push(Reason::QuorumNotReached {
                    passed,
                    required: k,
                });
                false
            } else if passed == failed && policy.tiebreak == Tiebreak::Fail {
                reasons.push(Reason::QuorumTie { passed });
                false
            } else {
                true
            }
        }
    };
    if !mode_passed {
        reasons.extend(failed_reasons(&sources));
    }

    // Cross-source rules over the passing sources.
    let passing: Vec<&SourceEvaluation> = sources.iter().filter(|s| s.passed()).collect();
    let mut cross_failed = false;
    let mut degraded = Vec::new();
    if let NtsRequirement::AtLeast(required) = policy.nts_required {
        let nts = passing.iter().filter(|s| s.nts).count();
        if nts < required {
            cross_failed = true;
            reasons.push(Reason::TooFewNtsSources { nts, required });
        }
    }
    let operators = passing
        .iter()
        .map(|s| s.operator.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    if policy.min_operators > 1 && operators < policy.min_operators {
        cross_failed = true;
        reasons.push(Reason::TooFewOperators {
            operators,
            required: policy.min_operators,
        });
    }
    let disagreement = disagreement(policy, &passing);
    if let Some(d) = &disagreement {
        match policy.on_disagreement {
            DisagreementAction::Fail => {
                cross_failed = true;
                reasons.push(d.clone());
            }
            DisagreementAction::Degrade => degraded.push(d.clone()),
        }
    }

    let outcome = if !mode_passed || cross_failed {
        RoundOutcome::Failed
    } else {
        let failed = sources
            .iter()
            .filter(|s| s.status == SourceStatus::Failed)
            .count();
        if failed > 0 {
            reasons.push(Reason::SourcesFailing {
                failed,
                configured: sources.len(),
            });
            reasons.extend(failed_reasons(&sources));
        }
        reasons.extend(passing.iter().flat_map(|s| s.reasons.iter().cloned()));
        reasons.extend(degraded);
        if reasons.is_empty() {
            RoundOutcome::Passed
        } else {
            RoundOutcome::Degraded
        }
    };
    RoundEvaluation {
        outcome,
        reasons,
        sources,
        decided_by,
        disagreement,
        unknown_sources,
    }
}

fn disagreement(policy: &ValidPolicy, passing: &[&SourceEvaluation]) -> Option<Reason> {
    let with_offset = || {
        passing
            .iter()
            .filter_map(|s| s.sample.map(|x| (s.source.as_str(), x.offset_s)))
    };
    let low = with_offset().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let high = with_offset().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let bound_s = policy.disagreement_bound().as_secs_f64();
    (high.1 - low.1 > bound_s).then(|| Reason::SourcesDisagree {
        low_source: low.0.to_owned(),
        low_offset_s: low.1,
        high_source: high.0.to_owned(),
        high_offset_s: high.1,
        bound_s,
    })
}
