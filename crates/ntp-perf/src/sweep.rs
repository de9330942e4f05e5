//! Finding the highest rate a server answers with (almost) no loss, as
//! ntpperf does: run at increasing fixed rates and stop at the first step
//! that fails.

use crate::{Config, PerfError, Rate, Report};

/// The loss (unanswered, KoD, NAK or invalid) a step may show and still pass,
/// percent.
pub const MAX_LOSS_PCT: f64 = 0.1;
/// Most steps in one sweep.
pub const MAX_STEPS: usize = 100;

/// One step of a sweep.
#[derive(Clone, Debug)]
pub struct SweepStep {
    /// The offered rate asked for.
    pub rate: f64,
    /// What was measured.
    pub report: Report,
    /// Whether less than [`MAX_LOSS_PCT`] went unanswered.
    pub passed: bool,
    /// Whether the generator sent at least 98 % of the asked rate (if not,
    /// the step says nothing about the server).
    pub generator_kept_up: bool,
}

/// The rates of a sweep: `from`, then `+ step` or `× factor` while `≤ to`
/// (at most [`MAX_STEPS`]).
///
/// # Errors
/// [`PerfError::Config`] unless `0 < from ≤ to` and exactly one of a
/// positive `step` or a `factor` above 1 is given.
pub fn rates(
    from: f64,
    to: f64,
    step: Option<f64>,
    factor: Option<f64>,
) -> Result<Vec<f64>, PerfError> {
    let bad = |m: &str| Err(PerfError::Config(m.to_string()));
    if !(from > 0.0 && from <= to && to.is_finite()) {
        return bad("sweep needs 0 < --from <= --to");
    }
    let next: Box<dyn Fn(f64) -> f64> = match (step, factor) {
        (Some(s), None) if s > 0.0 => Box::new(move |r| r + s),
        (None, Some(f)) if f > 1.0 => Box::new(move |r| r * f),
        _ => return bad("sweep needs either --step > 0 or --factor > 1"),
    };
    let mut out = Vec::new();
    let mut r = from;
    while r <= to * (1.0 + 1e-9) && out.len() < MAX_STEPS {
        out.push(r);
        r = next(r);
    }
    Ok(out)
}

/// Runs `base` at each rate in turn, calling `on_step` after each, and stops
/// at the first step that fails or where the generator could not keep up.
/// Returns the highest rate that passed.
///
/// # Errors
/// As [`crate::run`].
pub fn sweep(
    base: &Config,
    rates: &[f64],
    mut on_step: impl FnMut(&SweepStep),
) -> Result<Option<f64>, PerfError> {
    let mut best = None;
    for &rate in rates {
        let mut config = base.clone();
        config.rate = Rate::PerSecond(rate);
        let report = crate::run(&config)?;
        let failed = report.sent.saturating_sub(report.answered);
        let passed = report.sent > 0 && (failed as f64) * 100.0 < MAX_LOSS_PCT * report.sent as f64;
        let generator_kept_up = report.offered_rate >= 0.98 * rate;
        let step = SweepStep {
            rate,
            report,
            passed,
            generator_kept_up,
        };
        on_step(&step);
        if !(passed && generator_kept_up) {
            break;
        }
        best = Some(rate);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additive_and_multiplicative_rates() {
        assert_eq!(
            rates(10.0, 40.0, Some(10.0), None).ok(),
            Some(vec![10.0, 20.0, 30.0, 40.0])
        );
        assert_eq!(
            rates(1000.0, 5000.0, None, Some(2.0)).ok(),
            Some(vec![1000.0, 2000.0, 4000.0])
        );
        assert!(rates(10.0, 5.0, Some(1.0), None).is_err());
        assert!(rates(10.0, 50.0, None, None).is_err());
        assert!(rates(10.0, 50.0, Some(1.0), Some(2.0)).is_err());
        assert_eq!(
            rates(1.0, 1e9, Some(1.0), None).map(|r| r.len()).ok(),
            Some(MAX_STEPS)
        );
    }
}
