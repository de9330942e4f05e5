//! Properties over arbitrary sequences of rounds.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ntp_policy::{
    AlertKind, CheckFailure, Leap, Mode, PolicyState, Round, RoundOutcome, Sample, Tiebreak,
    UnixMs, VerdictState, next,
};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["a", "b", "c"];

/// One source's attempts: 0 passes, 1 fails its offset, 2 times out, 3
/// announces a leap (degraded), 4 is missing, 5 fails NTS then passes, 6 a NaN
/// offset.
fn attempts(name: &str, kind: u8) -> Vec<ntp_policy::CheckResult> {
    match kind {
        0 => vec![ok(name, 0.001)],
        1 => vec![ok(name, -0.7)],
        2 => vec![fail(name, CheckFailure::Timeout)],
        3 => vec![ok_sample(
            name,
            Sample {
                leap: Leap::InsertSecond,
                ..sample(0.0)
            },
        )],
        4 => vec![],
        5 => vec![fail(name, CheckFailure::NtsAuthFailed), ok(name, 0.0)],
        _ => vec![ok(name, f64::NAN)],
    }
}

fn mode_strategy() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::CheckAll),
        Just(Mode::FirstPass),
        (1..=3usize).prop_map(Mode::Quorum)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The verdict is not UNTRUSTED exactly when some `release-after` rounds
    /// in a row passed and no `hold-after` rounds in a row failed since; it
    /// is TRUSTED exactly when, in addition, this round passed cleanly. And
    /// no verdict is TRUSTED outside its lease.
    #[test]
    fn verdict_follows_the_documented_rule(
        mode in mode_strategy(),
        tiebreak_pass in any::<bool>(),
        hold_after in 1..=4u32,
        release_after in 1..=4u32,
        lease_s in 1..=120u64,
        rounds in prop::collection::vec(prop::array::uniform3(0..7u8), 1..40),
        read_late_ms in 1..=1_000_000u64,
        read_early_ms in 1..=1_000_000u64,
    ) {
        let p = policy(&NAMES, |p| {
            p.mode = mode;
            p.tiebreak = if tiebreak_pass { Tiebreak::Pass } else { Tiebreak::Fail };
            p.hold_after = hold_after;
            p.release_after = release_after;
            p.lease = std::time::Duration::from_secs(lease_s);
            p.retries = 1;
        });
        let (n, m) = (hold_after as usize, release_after as usize);
        let mut state = PolicyState::new();
        let mut outcomes: Vec<RoundOutcome> = Vec::new();
        let mut held = false;
        for (i, kinds) in rounds.iter().enumerate() {
            let results = NAMES
                .iter()
                .zip(kinds)
                .flat_map(|(name, &k)| attempts(name, k))
                .collect();
            let now = UnixMs(T0.0 + 16_000 * i as u64);
            let step = next(&p, state, &Round::new(results), now);
            state = step.state;
            outcomes.push(step.round.outcome);

            // Established: some j ≤ i ends m passes in a row, and (j, i]
            // holds no n failures in a row.
            let passed: Vec<bool> = outcomes.iter().map(|o| o.passed()).collect();
            let established = (0..=i).any(|j| {
                j + 1 >= m
                    && passed[j + 1 - m..=j].iter().all(|&x| x)
                    && !passed[j + 1..=i]
                        .windows(n)
                        .any(|w| w.iter().all(|&x| !x))
            });
            let clean = outcomes[i] == RoundOutcome::Passed;
            let want = match (established, clean) {
                (false, _) => VerdictState::Untrusted,
                (true, true) => VerdictState::Trusted,
                (true, false) => VerdictState::Degraded,
            };
            prop_assert_eq!(step.verdict.state, want, "round {} outcomes {:?}", i, outcomes);
            if step.verdict.state == VerdictState::Trusted {
                prop_assert!(step.verdict.reasons.is_empty());
            } else {
                prop_assert!(!step.verdict.reasons.is_empty());
            }

            // Hold alerts exactly on the transitions.
            let now_held = step.verdict.state == VerdictState::Untrusted
                && state.phase() == ntp_policy::Phase::Held;
            let entered = step.alerts.iter().any(|a| a.kind == AlertKind::HoldEntered);
            let released = step.alerts.iter().any(|a| a.kind == AlertKind::HoldReleased);
            prop_assert_eq!(entered, !held && now_held);
            prop_assert_eq!(released, held && !now_held);
            held = now_held;

            // The lease.
            let v = &step.verdict;
            prop_assert_eq!(v.valid_until, UnixMs(now.0 + lease_s * 1000));
            prop_assert_eq!(v.effective(now), v.state);
            let late = UnixMs(v.valid_until.0 + read_late_ms);
            prop_assert_eq!(v.effective(late), VerdictState::Untrusted);
            prop_assert_eq!(v.as_of(late).reasons[0].code(), "stale-verdict");
            let early = UnixMs(now.0.saturating_sub(read_early_ms));
            prop_assert_eq!(v.effective(early), VerdictState::Untrusted);
        }
    }

    /// Whatever the figures, evaluation does not panic and a source passes
    /// only with a finite offset within the threshold.
    #[test]
    fn any_sample_is_judged(
        offset_s in any::<f64>(),
        root_delay_s in any::<f64>(),
        root_dispersion_s in any::<f64>(),
        stratum in any::<u8>(),
        li in 0..4u8,
    ) {
        let p = policy(&["a"], |p| p.leap = ntp_policy::LeapHandling::Ignore);
        let s = Sample {
            offset_s,
            root_delay_s,
            root_dispersion_s,
            stratum,
            leap: Leap::from_indicator(li),
            ..sample(0.0)
        };
        let eval = ntp_policy::evaluate_round(&p, &Round::new(vec![ok_sample("a", s)]));
        if eval.outcome.passed() {
            prop_assert!(offset_s.abs() <= 0.1);
            prop_assert!(root_delay_s / 2.0 + root_dispersion_s <= 1.5);
            prop_assert!((1..16).contains(&stratum) && li != 3);
        }
    }
}
