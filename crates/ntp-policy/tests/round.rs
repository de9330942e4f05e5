//! Per-source thresholds, retries, modes and cross-source rules.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ntp_policy::{
    CheckFailure, CheckResult, DisagreementAction, Leap, LeapHandling, Mode, NtsRequirement,
    Policy, Reason, Round, RoundOutcome, Sample, SourceSpec, SourceStatus, Tiebreak,
    evaluate_round,
};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// One attempt per source from a pattern: `P` passes, `F` fails its offset
/// (a usable result), `T` times out, `U` is unsynchronized (neither usable),
/// `-` is not checked.
fn round_from(pattern: &str) -> Round {
    let results = pattern
        .chars()
        .zip(NAMES)
        .filter_map(|(c, name)| match c {
            'P' => Some(ok(name, 0.001)),
            'F' => Some(ok(name, 0.5)),
            'T' => Some(fail(name, CheckFailure::Timeout)),
            'U' => Some(ok_sample(
                name,
                Sample {
                    leap: Leap::Unsynchronized,
                    ..sample(0.0)
                },
            )),
            '-' => None,
            other => panic!("bad pattern char {other}"),
        })
        .collect();
    Round::new(results)
}

#[test]
fn modes_tiebreaks_and_mixes() {
    use RoundOutcome::{Degraded as D, Failed as X, Passed as P};
    // (mode, tiebreak or None for both, pattern, outcome, reason codes that must appear)
    type Case = (
        Mode,
        Option<Tiebreak>,
        &'static str,
        RoundOutcome,
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        (Mode::CheckAll, None, "PPPP", P, &[]),
        (Mode::CheckAll, None, "PPPF", X, &["offset-exceeded"]),
        (Mode::CheckAll, None, "PPPT", X, &["check-failed"]),
        (Mode::CheckAll, None, "PP--", X, &["not-checked"]),
        (Mode::CheckAll, None, "FFFF", X, &["offset-exceeded"]),
        (Mode::FirstPass, None, "P---", P, &[]),
        (Mode::FirstPass, None, "PPPP", P, &[]),
        (Mode::FirstPass, None, "PFFF", D, &["sources-failing"]),
        (Mode::FirstPass, None, "FP--", X, &["offset-exceeded"]),
        (Mode::FirstPass, None, "FPPP", X, &["offset-exceeded"]),
        (
            Mode::FirstPass,
            None,
            "TP--",
            D,
            &["sources-failing", "check-failed"],
        ),
        (
            Mode::FirstPass,
            None,
            "UP--",
            D,
            &["sources-failing", "unsynchronized"],
        ),
        (
            Mode::FirstPass,
            None,
            "-P--",
            D,
            &["sources-failing", "not-checked"],
        ),
        (Mode::FirstPass, None, "TUTF", X, &["offset-exceeded"]),
        (Mode::FirstPass, None, "TTTP", D, &["sources-failing"]),
        (Mode::FirstPass, None, "TTUT", X, &["no-usable-source"]),
        (
            Mode::FirstPass,
            None,
            "----",
            X,
            &["no-usable-source", "not-checked"],
        ),
        (Mode::Quorum(2), None, "PPPP", P, &[]),
        (Mode::Quorum(2), None, "PPPF", D, &["sources-failing"]),
        (Mode::Quorum(2), None, "PFFF", X, &["quorum-not-reached"]),
        (
            Mode::Quorum(2),
            Some(Tiebreak::Fail),
            "PPFF",
            X,
            &["quorum-tie"],
        ),
        (
            Mode::Quorum(2),
            Some(Tiebreak::Pass),
            "PPFF",
            D,
            &["sources-failing"],
        ),
        (
            Mode::Quorum(2),
            Some(Tiebreak::Fail),
            "PP--",
            X,
            &["quorum-tie", "not-checked"],
        ),
        (
            Mode::Quorum(2),
            Some(Tiebreak::Pass),
            "PPT-",
            D,
            &["sources-failing"],
        ),
        (
            Mode::Quorum(3),
            Some(Tiebreak::Pass),
            "PPFF",
            X,
            &["quorum-not-reached"],
        ),
        (
            Mode::Quorum(3),
            Some(Tiebreak::Fail),
            "PPFF",
            X,
            &["quorum-not-reached"],
        ),
        (Mode::Quorum(3), None, "PPPF", D, &["sources-failing"]),
        (Mode::Quorum(3), None, "PPPP", P, &[]),
        (Mode::Quorum(1), None, "TTTP", D, &["sources-failing"]),
        (Mode::Quorum(1), None, "TTTT", X, &["quorum-not-reached"]),
        (Mode::Quorum(4), None, "PPPT", X, &["quorum-not-reached"]),
    ];
    for &(mode, tiebreak, pattern, want, want_codes) in cases {
        let tiebreaks = match tiebreak {
            Some(t) => vec![t],
            None => vec![Tiebreak::Pass, Tiebreak::Fail],
        };
        for t in tiebreaks {
            let p = policy(&NAMES, |p| {
                p.mode = mode;
                p.tiebreak = t;
            });
            let eval = evaluate_round(&p, &round_from(pattern));
            let got = codes(&eval.reasons);
            assert_eq!(eval.outcome, want, "{mode:?} {t:?} {pattern}: {got:?}");
            for c in want_codes {
                assert!(
                    got.contains(c),
                    "{mode:?} {t:?} {pattern}: {c} not in {got:?}"
                );
            }
            if want == P {
                assert!(got.is_empty(), "{mode:?} {pattern}: {got:?}");
            }
        }
    }
}

#[test]
fn first_pass_records_decider_and_skips_later_sources() {
    let p = policy(&NAMES, |p| p.mode = Mode::FirstPass);
    let eval = evaluate_round(&p, &round_from("TP-F"));
    assert_eq!(eval.decided_by.as_deref(), Some("b"));
    let status: Vec<SourceStatus> = eval.sources.iter().map(|s| s.status).collect();
    assert_eq!(
        status,
        [
            SourceStatus::Failed,
            SourceStatus::Passed,
            SourceStatus::Skipped,
            SourceStatus::Failed
        ]
    );
    assert!(eval.reasons.contains(&Reason::SourcesFailing {
        failed: 2,
        configured: 4
    }));
    // Configured order decides, not the order of results in the round.
    let eval = evaluate_round(&p, &Round::new(vec![ok("c", 0.0), ok("b", 0.5)]));
    assert_eq!(eval.decided_by.as_deref(), Some("b"));
    assert_eq!(eval.outcome, RoundOutcome::Failed);
}

#[test]
fn offset_threshold() {
    let p = policy(&["a"], |_| {});
    let cases = [
        (0.0, true),
        (0.099, true),
        (0.1, true),
        (-0.1, true),
        (0.1001, false),
        (-0.1001, false),
        (5.0, false),
    ];
    for (offset, pass) in cases {
        let eval = evaluate_round(&p, &Round::new(vec![ok("a", offset)]));
        assert_eq!(eval.outcome.passed(), pass, "offset {offset}");
        if !pass {
            assert_eq!(
                eval.reasons,
                [Reason::OffsetExceeded {
                    source: "a".into(),
                    offset_s: offset,
                    max_s: 0.1
                }]
            );
        }
    }
}

#[test]
fn malformed_samples_fail() {
    let p = policy(&["a"], |_| {});
    let bad = [
        Sample {
            offset_s: f64::NAN,
            ..sample(0.0)
        },
        Sample {
            offset_s: f64::INFINITY,
            ..sample(0.0)
        },
        Sample {
            root_dispersion_s: f64::NAN,
            ..sample(0.0)
        },
        Sample {
            root_delay_s: -0.5,
            ..sample(0.0)
        },
        Sample {
            delay_s: f64::NEG_INFINITY,
            ..sample(0.0)
        },
    ];
    for s in bad {
        let eval = evaluate_round(&p, &Round::new(vec![ok_sample("a", s)]));
        assert_eq!(eval.outcome, RoundOutcome::Failed, "{s:?}");
        assert_eq!(codes(&eval.reasons), ["malformed-sample"], "{s:?}");
        assert!(!eval.sources[0].usable);
    }
}

#[test]
fn root_distance_threshold() {
    let p = policy(&["a"], |p| {
        p.max_root_distance = std::time::Duration::from_millis(100);
    });
    // (root delay, root dispersion, passes): distance = delay / 2 + dispersion.
    let cases = [
        (0.0, 0.0, true),
        (0.1, 0.04, true),
        (0.1, 0.05, true),
        (0.1, 0.051, false),
        (0.3, 0.0, false),
        (0.0, 0.2, false),
    ];
    for (root_delay_s, root_dispersion_s, pass) in cases {
        let s = Sample {
            root_delay_s,
            root_dispersion_s,
            ..sample(0.0)
        };
        let eval = evaluate_round(&p, &Round::new(vec![ok_sample("a", s)]));
        assert_eq!(
            eval.outcome.passed(),
            pass,
            "{root_delay_s} {root_dispersion_s}"
        );
        if !pass {
            assert!(matches!(
                eval.reasons[..],
                [Reason::RootDistanceExceeded { root_distance_s, max_s, .. }]
                    if (root_distance_s - (root_delay_s / 2.0 + root_dispersion_s)).abs() < 1e-12
                        && (max_s - 0.1).abs() < 1e-12
            ));
        }
    }
}

#[test]
fn unsynchronized_sources_fail() {
    let p = policy(&["a"], |_| {});
    let cases = [
        (Leap::Unsynchronized, 2, false),
        (Leap::NoWarning, 16, false),
        (Leap::NoWarning, 255, false),
        (Leap::NoWarning, 0, false),
        (Leap::NoWarning, 1, true),
        (Leap::NoWarning, 15, true),
    ];
    for (leap, stratum, pass) in cases {
        let s = Sample {
            leap,
            stratum,
            ..sample(0.0)
        };
        let eval = evaluate_round(&p, &Round::new(vec![ok_sample("a", s)]));
        assert_eq!(eval.outcome.passed(), pass, "{leap:?} {stratum}");
        if !pass {
            assert_eq!(
                eval.reasons,
                [Reason::Unsynchronized {
                    source: "a".into(),
                    leap,
                    stratum
                }]
            );
        }
    }
}

#[test]
fn leap_handling() {
    for leap in [Leap::InsertSecond, Leap::DeleteSecond] {
        for (handling, want) in [
            (LeapHandling::Ignore, RoundOutcome::Passed),
            (LeapHandling::Degrade, RoundOutcome::Degraded),
            (LeapHandling::Fail, RoundOutcome::Failed),
        ] {
            let p = policy(&["a"], |p| p.leap = handling);
            let s = Sample {
                leap,
                ..sample(0.0)
            };
            let eval = evaluate_round(&p, &Round::new(vec![ok_sample("a", s)]));
            assert_eq!(eval.outcome, want, "{leap:?} {handling:?}");
            let want_reasons = if handling == LeapHandling::Ignore {
                vec![]
            } else {
                vec![Reason::LeapPending {
                    source: "a".into(),
                    leap,
                }]
            };
            assert_eq!(eval.reasons, want_reasons, "{leap:?} {handling:?}");
        }
    }
}

#[test]
fn check_failures_fail_the_source() {
    let p = policy(&["a"], |_| {});
    let failures = [
        CheckFailure::Unreachable,
        CheckFailure::Timeout,
        CheckFailure::KissOfDeath(*b"RATE"),
        CheckFailure::NtsAuthFailed,
        CheckFailure::NtsKeFailed,
        CheckFailure::Unsynchronized,
        CheckFailure::Other("refused".into()),
    ];
    for f in failures {
        let eval = evaluate_round(&p, &Round::new(vec![fail("a", f.clone())]));
        assert_eq!(eval.outcome, RoundOutcome::Failed, "{f:?}");
        assert_eq!(
            eval.reasons,
            [Reason::CheckFailed {
                source: "a".into(),
                failure: f.clone()
            }]
        );
        assert_eq!(eval.sources[0].nts_failures, usize::from(f.is_nts()));
    }
}

#[test]
fn nts_required_all() {
    let p = policy(&["a", "b"], |p| p.nts_required = NtsRequirement::All);
    let plain = |name| with(ok(name, 0.0), |r| r.nts = false);
    let eval = evaluate_round(&p, &Round::new(vec![ok("a", 0.0), ok("b", 0.0)]));
    assert_eq!(eval.outcome, RoundOutcome::Passed);
    let eval = evaluate_round(&p, &Round::new(vec![ok("a", 0.0), plain("b")]));
    assert_eq!(eval.outcome, RoundOutcome::Failed);
    assert_eq!(eval.reasons, [Reason::NtsRequired { source: "b".into() }]);
    // Without the requirement, plain NTP passes.
    let p = policy(&["a", "b"], |_| {});
    let eval = evaluate_round(&p, &Round::new(vec![plain("a"), plain("b")]));
    assert_eq!(eval.outcome, RoundOutcome::Passed);
}

#[test]
fn nts_required_at_least() {
    let p = Policy {
        mode: Mode::Quorum(2),
        nts_required: NtsRequirement::AtLeast(2),
        ..Policy::new(vec![
            SourceSpec::new("a", "a", true),
            SourceSpec::new("b", "b", true),
            SourceSpec::new("c", "c", false),
        ])
    }
    .validate()
    .unwrap();
    let r = |name: &str, nts: bool, offset: f64| with(ok(name, offset), |r| r.nts = nts);
    // (results, outcome)
    let cases: Vec<(Vec<CheckResult>, RoundOutcome)> = vec![
        (
            vec![r("a", true, 0.0), r("b", true, 0.0), r("c", false, 0.0)],
            RoundOutcome::Passed,
        ),
        (
            vec![r("a", true, 0.0), r("b", false, 0.0), r("c", false, 0.0)],
            RoundOutcome::Failed,
        ),
        // b is NTS but fails its offset: only one NTS source passes.
        (
            vec![r("a", true, 0.0), r("b", true, 0.5), r("c", false, 0.0)],
            RoundOutcome::Failed,
        ),
    ];
    for (i, (results, want)) in cases.into_iter().enumerate() {
        let eval = evaluate_round(&p, &Round::new(results));
        assert_eq!(eval.outcome, want, "case {i}: {:?}", eval.reasons);
        if want == RoundOutcome::Failed {
            assert!(
                eval.reasons.contains(&Reason::TooFewNtsSources {
                    nts: 1,
                    required: 2
                }),
                "case {i}: {:?}",
                eval.reasons
            );
        }
    }
}

#[test]
fn distinct_operators() {
    let p = Policy {
        mode: Mode::Quorum(2),
        tiebreak: Tiebreak::Pass,
        min_operators: 2,
        ..Policy::new(vec![
            SourceSpec::new("a", "x", true),
            SourceSpec::new("b", "x", true),
            SourceSpec::new("c", "y", true),
        ])
    }
    .validate()
    .unwrap();
    let r = |name: &str, op: &str, offset: f64| with(ok(name, offset), |r| r.operator = op.into());
    let eval = evaluate_round(
        &p,
        &Round::new(vec![r("a", "x", 0.0), r("b", "x", 0.0), r("c", "y", 0.0)]),
    );
    assert_eq!(eval.outcome, RoundOutcome::Passed);
    // The quorum is met by a and b, but both are operator x.
    let eval = evaluate_round(
        &p,
        &Round::new(vec![r("a", "x", 0.0), r("b", "x", 0.0), r("c", "y", 0.5)]),
    );
    assert_eq!(eval.outcome, RoundOutcome::Failed);
    assert!(eval.reasons.contains(&Reason::TooFewOperators {
        operators: 1,
        required: 2
    }));
    // The label of the result counts, not the configured one.
    let eval = evaluate_round(
        &p,
        &Round::new(vec![r("a", "x", 0.0), r("b", "z", 0.0), r("c", "y", 0.5)]),
    );
    assert_eq!(eval.outcome, RoundOutcome::Degraded);
}

#[test]
fn sources_disagree() {
    use std::time::Duration;
    // (bound, action, offsets, outcome)
    let cases = [
        (
            None,
            DisagreementAction::Degrade,
            [0.04, -0.04],
            RoundOutcome::Passed,
        ),
        (
            None,
            DisagreementAction::Degrade,
            [0.05, -0.05],
            RoundOutcome::Passed,
        ),
        (
            None,
            DisagreementAction::Degrade,
            [0.06, -0.06],
            RoundOutcome::Degraded,
        ),
        (
            None,
            DisagreementAction::Fail,
            [0.06, -0.06],
            RoundOutcome::Failed,
        ),
        (
            Some(Duration::from_millis(20)),
            DisagreementAction::Degrade,
            [0.015, -0.01],
            RoundOutcome::Degraded,
        ),
        (
            Some(Duration::from_millis(20)),
            DisagreementAction::Fail,
            [0.015, 0.0],
            RoundOutcome::Passed,
        ),
    ];
    for (bound, action, [oa, ob], want) in cases {
        let p = policy(&["a", "b"], |p| {
            p.max_disagreement = bound;
            p.on_disagreement = action;
        });
        let eval = evaluate_round(&p, &Round::new(vec![ok("a", oa), ok("b", ob)]));
        assert_eq!(eval.outcome, want, "{bound:?} {action:?} {oa} {ob}");
        if want == RoundOutcome::Passed {
            assert_eq!(eval.disagreement, None);
        } else {
            let d = Reason::SourcesDisagree {
                low_source: "b".into(),
                low_offset_s: ob,
                high_source: "a".into(),
                high_offset_s: oa,
                bound_s: bound.unwrap_or(Duration::from_millis(100)).as_secs_f64(),
            };
            assert_eq!(eval.disagreement.as_ref(), Some(&d));
            assert!(eval.reasons.contains(&d));
        }
    }
    // Failing sources do not take part.
    let p = policy(&["a", "b", "c"], |p| p.mode = Mode::Quorum(2));
    let eval = evaluate_round(
        &p,
        &Round::new(vec![ok("a", 0.05), ok("b", 0.04), ok("c", -0.3)]),
    );
    assert_eq!(eval.disagreement, None);
}

#[test]
fn retries() {
    let t = |name| fail(name, CheckFailure::Timeout);
    // (retries, attempts, source passes, attempts considered, attempts ignored)
    let cases: Vec<(u32, Vec<CheckResult>, bool, usize, usize)> = vec![
        (2, vec![t("a"), t("a"), ok("a", 0.0)], true, 3, 0),
        (2, vec![t("a"), t("a"), t("a")], false, 3, 0),
        (2, vec![t("a"), t("a"), t("a"), ok("a", 0.0)], false, 3, 1),
        (0, vec![t("a"), ok("a", 0.0)], false, 1, 1),
        (0, vec![ok("a", 0.0), t("a")], true, 1, 1),
        (3, vec![ok("a", 0.5), ok("a", 0.01)], true, 2, 0),
        (3, vec![], false, 0, 0),
    ];
    for (i, (retries, attempts, pass, considered, ignored)) in cases.into_iter().enumerate() {
        let p = policy(&["a"], |p| p.retries = retries);
        let eval = evaluate_round(&p, &Round::new(attempts));
        let s = &eval.sources[0];
        assert_eq!(s.passed(), pass, "case {i}: {:?}", s.reasons);
        assert_eq!(s.attempts, considered, "case {i}");
        assert_eq!(s.ignored_attempts, ignored, "case {i}");
    }
}

#[test]
fn retries_report_the_passing_sample_and_all_failures() {
    let p = policy(&["a", "b"], |p| p.retries = 3);
    let round = Round::new(vec![
        ok("a", 0.5),
        fail("b", CheckFailure::Timeout),
        ok("a", 0.01),
        fail("b", CheckFailure::Timeout),
        ok("b", 0.3),
        fail("b", CheckFailure::Unreachable),
    ]);
    let eval = evaluate_round(&p, &round);
    let [a, b] = &eval.sources[..] else {
        panic!("two sources")
    };
    assert!(a.passed());
    assert_eq!(a.sample.unwrap().offset_s, 0.01);
    assert!(!b.passed());
    assert_eq!(b.attempts, 4);
    // The last usable sample is reported; failures are listed once each.
    assert_eq!(b.sample.unwrap().offset_s, 0.3);
    assert_eq!(
        codes(&b.reasons),
        ["check-failed", "offset-exceeded", "check-failed"]
    );
}

#[test]
fn unknown_sources_are_ignored() {
    let p = policy(&["a"], |_| {});
    let eval = evaluate_round(
        &p,
        &Round::new(vec![ok("a", 0.0), ok("zz", 9.0), ok("zz", 9.0)]),
    );
    assert_eq!(eval.outcome, RoundOutcome::Passed);
    assert_eq!(eval.unknown_sources, ["zz"]);
    assert_eq!(eval.sources.len(), 1);
}
