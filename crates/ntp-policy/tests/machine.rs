//! The state machine: hysteresis, leases and alerts on transitions.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use ntp_policy::{
    AlertKind, CheckFailure, Leap, LeapHandling, Mode, Phase, PolicyState, Reason, Round, Sample,
    Step, UnixMs, ValidPolicy, VerdictState, next,
};

const INTERVAL_MS: u64 = 16_000;

/// Runs rounds one interval apart from `T0`, returning every step.
fn run(p: &ValidPolicy, rounds: &[Round]) -> Vec<Step> {
    let mut state = PolicyState::new();
    let mut steps = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        let now = UnixMs(T0.0 + INTERVAL_MS * i as u64);
        let step = next(p, state, r, now);
        state = step.state.clone();
        steps.push(step);
    }
    steps
}

/// A one-source round: `P` passes, `F` fails, `D` passes degraded (leap
/// pending under `leap = "degrade"`).
fn round_of(c: char) -> Round {
    Round::new(vec![match c {
        'P' => ok("a", 0.0),
        'F' => ok("a", 0.5),
        'D' => ok_sample(
            "a",
            Sample {
                leap: Leap::InsertSecond,
                ..sample(0.0)
            },
        ),
        other => panic!("bad round {other}"),
    }])
}

fn states(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s.verdict.state {
            VerdictState::Trusted => 'T',
            VerdictState::Degraded => 'D',
            VerdictState::Untrusted => 'U',
        })
        .collect()
}

#[test]
fn hysteresis() {
    // (hold-after, release-after, rounds, verdicts)
    let cases = [
        (2, 3, "PPP", "UUT"),
        (2, 3, "PPPF", "UUTD"),
        (2, 3, "PPPFF", "UUTDU"),
        (2, 3, "PPPFFF", "UUTDUU"),
        // A pass between failures resets the failure count.
        (2, 3, "PPPFPFPF", "UUTDTDTD"),
        // Released after exactly release-after passes; a failure in hold
        // resets the pass count.
        (2, 3, "PPPFFPPP", "UUTDUUUT"),
        (2, 3, "PPPFFPPFPPP", "UUTDUUUUUUT"),
        // Start-up: a failure resets the pass count too.
        (2, 3, "PFPPP", "UUUUT"),
        (2, 3, "FFFFPPP", "UUUUUUT"),
        // Degraded rounds count as passes and give DEGRADED once trusted.
        (2, 3, "PPDPD", "UUDTD"),
        (2, 3, "DDD", "UUD"),
        (1, 1, "PFP", "TUT"),
        (1, 3, "PPPFPPP", "UUTUUUT"),
        (3, 1, "PFFFP", "TDDUT"),
        (3, 2, "PPFFPFFF", "UTDDTDDU"),
    ];
    for (hold_after, release_after, rounds, want) in cases {
        let p = policy(&["a"], |p| {
            p.hold_after = hold_after;
            p.release_after = release_after;
        });
        let rounds: Vec<Round> = rounds.chars().map(round_of).collect();
        let steps = run(&p, &rounds);
        assert_eq!(
            states(&steps),
            want,
            "hold-after {hold_after} release-after {release_after}"
        );
    }
}

#[test]
fn hold_alerts_and_reasons() {
    let p = policy(&["a"], |p| {
        p.hold_after = 2;
        p.release_after = 3;
    });
    let rounds: Vec<Round> = "PPPFFPPP".chars().map(round_of).collect();
    let steps = run(&p, &rounds);
    let hold: Vec<(usize, AlertKind)> = steps
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.alerts
                .iter()
                .filter(|a| matches!(a.kind, AlertKind::HoldEntered | AlertKind::HoldReleased))
                .map(move |a| (i, a.kind))
        })
        .collect();
    // No HOLD_RELEASED at the end of start-up.
    assert_eq!(
        hold,
        [(4, AlertKind::HoldEntered), (7, AlertKind::HoldReleased)]
    );
    let entered = steps[4]
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::HoldEntered)
        .unwrap();
    assert_eq!(entered.figure("failed_rounds"), Some(2.0));
    assert_eq!(entered.figure("hold_after"), Some(2.0));
    assert_eq!(entered.source, None);
    assert_eq!(entered.at, UnixMs(T0.0 + 4 * INTERVAL_MS));
    let released = steps[7]
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::HoldReleased)
        .unwrap();
    assert_eq!(released.figure("passed_rounds"), Some(3.0));
    assert_eq!(released.figure("release_after"), Some(3.0));

    let phases: Vec<Phase> = steps.iter().map(|s| s.state.phase()).collect();
    use Phase::{Held as H, Normal as N, Startup as S};
    assert_eq!(phases, [S, S, N, N, H, H, H, N]);

    // The state's reason leads the verdict's reasons.
    assert_eq!(
        steps[0].verdict.reasons[0],
        Reason::NoVerdictYet {
            passed_rounds: 1,
            release_after: 3
        }
    );
    assert_eq!(
        codes(&steps[3].verdict.reasons),
        ["round-failed", "offset-exceeded"]
    );
    assert_eq!(
        steps[3].verdict.reasons[0],
        Reason::RoundFailed {
            failed_rounds: 1,
            hold_after: 2
        }
    );
    assert_eq!(
        codes(&steps[4].verdict.reasons),
        ["held", "offset-exceeded"]
    );
    assert_eq!(
        steps[6].verdict.reasons,
        [Reason::Held {
            passed_rounds: 2,
            release_after: 3
        }]
    );
    assert!(steps[7].verdict.reasons.is_empty());
}

#[test]
fn lease() {
    let p = policy(&["a"], |p| {
        p.release_after = 1;
        p.lease = Duration::from_secs(60);
    });
    let now = UnixMs(T0.0 + 500);
    let step = next(&p, PolicyState::new(), &round_of('P'), now);
    let v = &step.verdict;
    assert_eq!(v.state, VerdictState::Trusted);
    assert_eq!(v.issued_at, now);
    assert_eq!(v.valid_until, UnixMs(now.0 + 60_000));
    // (read at, effective)
    let cases = [
        (now.0, VerdictState::Trusted),
        (now.0 + 60_000, VerdictState::Trusted),
        (now.0 + 60_001, VerdictState::Untrusted),
        (u64::MAX, VerdictState::Untrusted),
        (now.0 - 1, VerdictState::Untrusted),
    ];
    for (at, want) in cases {
        let at = UnixMs(at);
        assert_eq!(v.effective(at), want, "{at}");
        let as_of = v.as_of(at);
        assert_eq!(as_of.state, want, "{at}");
        if want == VerdictState::Untrusted {
            assert_eq!(
                as_of.reasons[0],
                Reason::StaleVerdict {
                    issued_at: now,
                    valid_until: v.valid_until,
                    now: at
                }
            );
            assert!(as_of.reasons[0].to_string().starts_with("stale verdict"));
        } else {
            assert_eq!(&as_of, v);
        }
    }
}

/// The kinds and sources of a step's alerts.
fn kinds(step: &Step) -> Vec<(AlertKind, Option<&str>)> {
    step.alerts
        .iter()
        .map(|a| (a.kind, a.source.as_deref()))
        .collect()
}

#[test]
fn comm_failed_fires_on_transitions() {
    let p = policy(&["a", "b"], |p| {
        p.mode = Mode::Quorum(1);
        p.retries = 1;
    });
    let t = |n| fail(n, CheckFailure::Timeout);
    let rounds = [
        Round::new(vec![ok("a", 0.0), t("b"), t("b")]),
        Round::new(vec![ok("a", 0.0), t("b"), t("b")]),
        Round::new(vec![ok("a", 0.0), ok("b", 0.0)]),
        Round::new(vec![ok("a", 0.0)]),
        Round::new(vec![ok("a", 0.0), t("b"), ok("b", 0.0)]),
    ];
    let steps = run(&p, &rounds);
    let want: [&[(AlertKind, Option<&str>)]; 5] = [
        &[(AlertKind::NtpCommFailed, Some("b"))],
        &[],
        &[],
        // Not checked counts as a communication failure.
        &[(AlertKind::NtpCommFailed, Some("b"))],
        &[],
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(kinds(&steps[i]), *w, "round {i}");
    }
    assert_eq!(steps[0].alerts[0].figure("attempts"), Some(2.0));
    assert_eq!(steps[3].alerts[0].figure("attempts"), Some(0.0));
    assert!(steps[0].alerts[0].message.contains("timeout"));
}

#[test]
fn threshold_reached_fires_per_threshold() {
    let p = policy(&["a"], |p| p.max_root_distance = Duration::from_millis(100));
    let s = |offset_s: f64, root_dispersion_s: f64| {
        Round::new(vec![ok_sample(
            "a",
            Sample {
                offset_s,
                root_dispersion_s,
                ..sample(0.0)
            },
        )])
    };
    let rounds = [
        s(0.25, 0.0),
        s(0.3, 0.0),
        s(0.3, 0.2),
        s(0.0, 0.0),
        s(-0.2, 0.0),
    ];
    let steps = run(&p, &rounds);
    let th = (AlertKind::NtpThresholdReached, Some("a"));
    assert_eq!(kinds(&steps[0]), [th]);
    assert_eq!(steps[0].alerts[0].figure("offset_s"), Some(0.25));
    assert_eq!(steps[0].alerts[0].figure("max_offset_s"), Some(0.1));
    assert_eq!(kinds(&steps[1]), []);
    assert_eq!(kinds(&steps[2]), [th]);
    let rd = steps[2].alerts[0].figure("root_distance_s").unwrap();
    assert!((rd - 0.201).abs() < 1e-9, "{rd}");
    assert_eq!(steps[2].alerts[0].figure("max_root_distance_s"), Some(0.1));
    assert_eq!(steps[2].alerts[0].figure("offset_s"), None);
    assert_eq!(kinds(&steps[3]), []);
    assert_eq!(kinds(&steps[4]), [th]);
    assert_eq!(steps[4].alerts[0].figure("offset_s"), Some(-0.2));
}

#[test]
fn nts_auth_failed() {
    let p = policy(&["a"], |p| p.retries = 1);
    let rounds = [
        // An authentication failure, then a passing retry: alert, source passes.
        Round::new(vec![fail("a", CheckFailure::NtsAuthFailed), ok("a", 0.0)]),
        Round::new(vec![ok("a", 0.0)]),
        // Key establishment failing every attempt: NTS alert only.
        Round::new(vec![
            fail("a", CheckFailure::NtsKeFailed),
            fail("a", CheckFailure::NtsKeFailed),
        ]),
        Round::new(vec![
            fail("a", CheckFailure::NtsKeFailed),
            fail("a", CheckFailure::NtsKeFailed),
        ]),
    ];
    let steps = run(&p, &rounds);
    let nts = (AlertKind::NtsAuthFailed, Some("a"));
    assert_eq!(kinds(&steps[0]), [nts]);
    assert!(steps[0].round.sources[0].passed());
    assert_eq!(steps[0].alerts[0].figure("nts_failures"), Some(1.0));
    assert_eq!(steps[0].alerts[0].figure("attempts"), Some(2.0));
    assert_eq!(kinds(&steps[1]), []);
    assert_eq!(kinds(&steps[2]), [nts]);
    assert_eq!(kinds(&steps[3]), []);
}

#[test]
fn leap_pending_fires_in_every_setting() {
    for handling in [
        LeapHandling::Ignore,
        LeapHandling::Degrade,
        LeapHandling::Fail,
    ] {
        let p = policy(&["a"], |p| p.leap = handling);
        let leap = |l| {
            Round::new(vec![ok_sample(
                "a",
                Sample {
                    leap: l,
                    ..sample(0.0)
                },
            )])
        };
        let rounds = [
            leap(Leap::NoWarning),
            leap(Leap::DeleteSecond),
            leap(Leap::DeleteSecond),
            leap(Leap::NoWarning),
            leap(Leap::InsertSecond),
        ];
        let steps = run(&p, &rounds);
        let lp = (AlertKind::LeapPending, Some("a"));
        let got: Vec<_> = steps.iter().map(kinds).collect();
        assert_eq!(
            got,
            [vec![], vec![lp], vec![], vec![], vec![lp]],
            "{handling:?}"
        );
        assert_eq!(steps[1].alerts[0].figure("leap_indicator"), Some(2.0));
        assert_eq!(steps[4].alerts[0].figure("leap_indicator"), Some(1.0));
    }
}

#[test]
fn sources_disagree_fires_on_start() {
    let p = policy(&["a", "b"], |_| {});
    let r = |oa, ob| Round::new(vec![ok("a", oa), ok("b", ob)]);
    let steps = run(
        &p,
        &[r(0.06, -0.06), r(0.07, -0.06), r(0.0, 0.0), r(-0.08, 0.03)],
    );
    let d = (AlertKind::SourcesDisagree, None);
    let got: Vec<_> = steps.iter().map(kinds).collect();
    assert_eq!(got, [vec![d], vec![], vec![], vec![d]]);
    let a = &steps[0].alerts[0];
    assert_eq!(a.figure("low_offset_s"), Some(-0.06));
    assert_eq!(a.figure("high_offset_s"), Some(0.06));
    assert!((a.figure("spread_s").unwrap() - 0.12).abs() < 1e-12);
    assert_eq!(a.figure("bound_s"), Some(0.1));
    assert!(a.message.contains('a') && a.message.contains('b'));
    let a = &steps[3].alerts[0];
    assert_eq!(a.figure("low_offset_s"), Some(-0.08));
}

#[test]
fn skipped_sources_keep_their_conditions() {
    let p = policy(&["a", "b"], |p| p.mode = Mode::FirstPass);
    let steps = run(
        &p,
        &[
            Round::new(vec![fail("a", CheckFailure::Timeout), ok("b", 0.0)]),
            Round::new(vec![ok("a", 0.0)]),
            Round::new(vec![fail("a", CheckFailure::Timeout), ok("b", 0.0)]),
            Round::new(vec![ok("a", 0.0), ok("b", 0.5)]),
            Round::new(vec![ok("a", 0.0)]),
            Round::new(vec![ok("a", 0.0), ok("b", 0.5)]),
        ],
    );
    let got: Vec<_> = steps.iter().map(kinds).collect();
    let comm_a = (AlertKind::NtpCommFailed, Some("a"));
    let th_b = (AlertKind::NtpThresholdReached, Some("b"));
    assert_eq!(
        got,
        [
            vec![comm_a],
            vec![],
            vec![comm_a],
            vec![th_b],
            vec![],
            vec![]
        ]
    );
}

#[test]
fn alert_order_within_a_round() {
    let p = policy(&["a", "b", "c"], |p| {
        p.mode = Mode::Quorum(1);
        p.hold_after = 1;
        p.release_after = 1;
        p.retries = 1;
        p.on_disagreement = ntp_policy::DisagreementAction::Fail;
    });
    let leap_b = Sample {
        leap: Leap::InsertSecond,
        ..sample(0.09)
    };
    let steps = run(
        &p,
        &[
            Round::new(vec![ok("a", 0.0), ok("b", 0.0), ok("c", 0.0)]),
            Round::new(vec![
                fail("a", CheckFailure::NtsAuthFailed),
                fail("a", CheckFailure::Timeout),
                ok_sample("b", leap_b),
                ok("c", -0.05),
            ]),
        ],
    );
    assert_eq!(steps[0].verdict.state, VerdictState::Trusted);
    assert_eq!(steps[1].verdict.state, VerdictState::Untrusted);
    assert_eq!(
        kinds(&steps[1]),
        [
            (AlertKind::NtpCommFailed, Some("a")),
            (AlertKind::NtsAuthFailed, Some("a")),
            (AlertKind::LeapPending, Some("b")),
            (AlertKind::SourcesDisagree, None),
            (AlertKind::HoldEntered, None),
        ]
    );
    for a in &steps[1].alerts {
        assert_eq!(a.at, UnixMs(T0.0 + INTERVAL_MS));
    }
}
