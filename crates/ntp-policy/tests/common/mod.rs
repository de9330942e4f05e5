//! Builders shared by the integration tests.
#![allow(dead_code)]

use ntp_policy::{
    CheckFailure, CheckResult, Leap, Policy, Sample, SourceSpec, UnixMs, ValidPolicy,
};

pub const T0: UnixMs = UnixMs(1_700_000_000_000);

/// Sources `names`, each its own operator, all NTS.
pub fn specs(names: &[&str]) -> Vec<SourceSpec> {
    names
        .iter()
        .map(|n| SourceSpec::new(*n, *n, true))
        .collect()
}

/// A validated policy over `names` after `edit`.
pub fn policy(names: &[&str], edit: impl FnOnce(&mut Policy)) -> ValidPolicy {
    let mut p = Policy::new(specs(names));
    edit(&mut p);
    p.validate().unwrap()
}

/// A clean sample with this offset.
pub fn sample(offset_s: f64) -> Sample {
    Sample::new(offset_s, 0.02, 0.002, 0.001, 2, Leap::NoWarning)
}

/// An NTS attempt with this sample.
pub fn ok_sample(source: &str, s: Sample) -> CheckResult {
    CheckResult {
        source: source.into(),
        operator: source.into(),
        address: format!("{source}.example:123"),
        nts: true,
        outcome: Ok(s),
        at: T0,
    }
}

/// An NTS attempt measuring this offset.
pub fn ok(source: &str, offset_s: f64) -> CheckResult {
    ok_sample(source, sample(offset_s))
}

/// A failed attempt.
pub fn fail(source: &str, failure: CheckFailure) -> CheckResult {
    CheckResult {
        outcome: Err(failure),
        ..ok(source, 0.0)
    }
}

/// The attempt with other fields changed.
pub fn with(mut r: CheckResult, edit: impl FnOnce(&mut CheckResult)) -> CheckResult {
    edit(&mut r);
    r
}

/// The reason codes, in order.
pub fn codes(reasons: &[ntp_policy::Reason]) -> Vec<&'static str> {
    reasons.iter().map(ntp_policy::Reason::code).collect()
}
