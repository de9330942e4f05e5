#![allow(clippy::unwrap_used)]
//! Seeded simulator scenarios with asserted bounds (figures in
//! docs/ACCURACY.md). Each runs 4 simulated hours of the real code.

use ntp_clock::sim::{Report, Scenario, run, standard_scenarios};
use ntp_clock::{Algorithm, SourceState, SyncState, UnsyncReason};

fn scenario(name: &str) -> Scenario {
    standard_scenarios()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
}

fn run_named(name: &str) -> Report {
    let r = run(&scenario(name));
    eprintln!("{name}: {}", r.summary());
    r
}

#[test]
fn deterministic_for_a_seed() {
    assert_eq!(run(&scenario("wan3")), run(&scenario("wan3")));
}

#[test]
fn converges_from_half_a_second_and_30_ppm_on_a_lan() {
    let r = run_named("lan3");
    assert!(r.time_to_trust.unwrap() <= 10.0, "{:?}", r.time_to_trust);
    assert_eq!(r.steps, 1);
    assert!(r.rms < 100e-6, "rms {}", r.rms);
    assert!(r.max < 300e-6, "max {}", r.max);
    assert!(r.final_frequency_error_ppm.abs() < 0.2);
    assert_eq!(r.final_sync, SyncState::Synchronized);
    for s in &r.sources {
        assert_eq!(s.falseticker_updates, 0, "{s:?}");
    }
}

#[test]
fn steady_state_on_a_wan() {
    let r = run_named("wan3");
    assert!(r.time_to_trust.unwrap() <= 10.0);
    assert!(r.rms < 1e-3, "rms {}", r.rms);
    assert!(r.max < 3e-3, "max {}", r.max);
    assert_eq!(r.final_sync, SyncState::Synchronized);
}

#[test]
fn one_of_three_lying_is_a_falseticker() {
    let r = run_named("liar1of3");
    let liar = &r.sources[1];
    assert_eq!(liar.final_state, SourceState::Falseticker);
    assert_eq!(liar.selected_updates, 0);
    assert!(liar.falseticker_updates as f64 > 0.9 * liar.updates as f64);
    assert!(r.rms < 150e-6, "rms {}", r.rms);
    assert!(r.max < 500e-6);
}

#[test]
fn two_of_five_lying_are_falsetickers() {
    let r = run_named("liar2of5");
    for i in [1, 3] {
        assert_eq!(r.sources[i].final_state, SourceState::Falseticker);
        assert_eq!(r.sources[i].selected_updates, 0);
    }
    for i in [0, 2, 4] {
        assert_eq!(r.sources[i].falseticker_updates, 0);
    }
    assert!(r.rms < 300e-6, "rms {}", r.rms);
    assert!(r.max < 1e-3);
}

#[test]
fn recovers_when_the_system_peer_stops() {
    let r = run_named("peer_stops");
    assert_eq!(r.sources[0].final_state, SourceState::Unreachable);
    assert!(
        r.sources[1..]
            .iter()
            .any(|s| s.final_state == SourceState::SystemPeer)
    );
    assert_eq!(r.final_sync, SyncState::Synchronized);
    assert!(r.rms < 1e-3, "rms {}", r.rms);
    assert!(r.max < 2e-3);
}

#[test]
fn a_server_stepping_by_one_second_is_outvoted() {
    let r = run_named("server_steps");
    assert_eq!(r.sources[1].final_state, SourceState::Falseticker);
    assert_eq!(r.steps, 1, "no second step of our clock");
    assert_eq!(r.final_sync, SyncState::Synchronized);
    assert!(r.rms < 2e-3, "rms {}", r.rms);
    assert!(r.max < 5e-3, "max {}", r.max);
}

#[test]
fn panic_offset_is_reported_not_corrected() {
    let r = run_named("panic");
    assert!(r.panics > 0);
    assert_eq!(r.steps + r.slews, 0);
    assert_eq!(r.steering_after_panic, 0);
    assert!(r.measurements_after_panic > 100, "measuring continues");
    assert!(r.time_to_trust.is_none());
    assert!(matches!(
        r.final_sync,
        SyncState::Unsynchronized {
            reason: UnsyncReason::Panic { .. }
        }
    ));
    assert!(r.final_error > 1999.0);
}

#[test]
fn least_squares_beats_the_pll_on_the_lan() {
    let ls = run(&scenario("lan3"));
    let mut s = scenario("lan3");
    s.system.discipline.algorithm = Algorithm::PllFll;
    let pll = run(&s);
    eprintln!("ls {} / pll {}", ls.summary(), pll.summary());
    assert!(ls.rms < pll.rms);
}
