//! Clock discipline: turns the combined offset into decisions for the
//! caller (step, slew with a frequency, or panic), never acting itself.
//!
//! Two algorithms share one state machine for the thresholds:
//!
//! - [`Algorithm::PllFll`]: RFC 5905 §11.3 / App. A.5.5 — a type-II
//!   phase-locked loop, with the frequency-locked loop above the Allan
//!   intercept, and the FREQ state that measures the frequency directly over
//!   one stepout after start-up. The loop constant is ntpd's
//!   (`CLOCK_PLL` = 16): the RFC's `PLL = 65536` is in other units.
//! - [`Algorithm::LeastSquares`] (default): chrony's approach — a
//!   least-squares line of offset against time over the recent updates, the
//!   window chosen by a runs test on the residuals. The line's value now is
//!   slewed out in full, its slope corrects the frequency (shrunk by its own
//!   uncertainty so that a short, noisy baseline moves it little), and the
//!   stored samples are re-expressed as if the correction had always been in
//!   force. It converges much faster than the PLL from start-up and is
//!   about as accurate in steady state: see docs/ACCURACY.md.
//!
//! Thresholds (PROTOCOL.md §4): an offset beyond `step_threshold` is ignored
//! as a spike until it has persisted for `stepout`, and then stepped; at
//! start-up it is stepped at once if `startup_step_allowed`. An offset beyond
//! `panic_threshold` gives [`Decision::Panic`] on every update and no
//! steering, until the offset comes back.

use std::collections::VecDeque;

use ntp_proto::{NtpDuration, NtpTimestamp};

use crate::consts::{ALLAN, AVG, LIMIT, PGATE};
use crate::measurement::log2_seconds;

/// Which discipline algorithm to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Algorithm {
    /// RFC 5905 PLL/FLL (the baseline).
    PllFll,
    /// Weighted least-squares regression of offset over time (chrony-like).
    #[default]
    LeastSquares,
}

/// Thresholds and limits of the discipline.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct DisciplineConfig {
    /// Algorithm (default [`Algorithm::LeastSquares`]).
    pub algorithm: Algorithm,
    /// Offsets beyond this are stepped, not slewed (default 0.125 s, STEPT).
    pub step_threshold: NtpDuration,
    /// How long an offset beyond the step threshold must persist before it
    /// is stepped (default 900 s, WATCH).
    pub stepout: NtpDuration,
    /// Offsets beyond this are never corrected: [`Decision::Panic`]
    /// (default 1000 s, PANICT).
    pub panic_threshold: NtpDuration,
    /// Step at once on the first update if beyond the step threshold
    /// (default true).
    pub startup_step_allowed: bool,
    /// Allow that first step even beyond the panic threshold, like
    /// `ntpd -g` (default false).
    pub startup_panic_step_allowed: bool,
    /// Frequency corrections are clamped to ± this (default 500 ppm).
    pub max_frequency_ppm: f64,
    /// Lowest system poll exponent (default 6).
    pub min_poll: i8,
    /// Highest system poll exponent (default 10).
    pub max_poll: i8,
}

impl Default for DisciplineConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            step_threshold: NtpDuration::from_seconds_f64(0.125),
            stepout: NtpDuration::from_seconds(900),
            panic_threshold: NtpDuration::from_seconds(1000),
            startup_step_allowed: true,
            startup_panic_step_allowed: false,
            max_frequency_ppm: 500.0,
            min_poll: 6,
            max_poll: 10,
        }
    }
}

/// What the caller should do to its clock. The frequency is absolute (the
/// correction to set, not a change), in ppm; positive makes the clock run
/// faster. [`Decision::apply`] does it through a [`crate::Clock`].
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Decision {
    /// Set the frequency, then step the clock by `offset` (add it).
    Step {
        /// Amount to add to the clock.
        offset: NtpDuration,
        /// Frequency correction to set, ppm.
        frequency_ppm: f64,
    },
    /// Set the frequency, then slew `offset` away gradually (adjtime-like;
    /// a new slew replaces any unfinished one).
    Slew {
        /// Amount to slew (add) in total.
        offset: NtpDuration,
        /// Frequency correction to set, ppm.
        frequency_ppm: f64,
    },
    /// The offset is beyond the panic threshold: do not touch the clock;
    /// report it. Measuring continues.
    Panic {
        /// The offending offset.
        offset: NtpDuration,
    },
}

impl Decision {
    /// Carries the decision out on `clock` (a panic does nothing).
    ///
    /// # Errors
    /// Whatever the clock returns.
    pub fn apply<C: crate::Clock + ?Sized>(&self, clock: &mut C) -> Result<(), C::Error> {
        match *self {
            Self::Step {
                offset,
                frequency_ppm,
            } => {
                clock.set_frequency(frequency_ppm)?;
                clock.step(offset)
            }
            Self::Slew {
                offset,
                frequency_ppm,
            } => {
                clock.set_frequency(frequency_ppm)?;
                clock.slew(offset)
            }
            Self::Panic { .. } => Ok(()),
        }
    }
}

/// The discipline's state, as reported to the system.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum DisciplineStatus {
    /// No update yet.
    Unset,
    /// PLL/FLL only: measuring the frequency over a stepout after start-up.
    MeasuringFrequency,
    /// Steering normally.
    Tracking,
    /// The offset is beyond the step threshold; a step follows after the
    /// stepout unless it comes back (seconds).
    StepPending {
        /// The offset, seconds.
        offset: f64,
    },
    /// The offset is beyond the panic threshold (seconds); not steering.
    Panic {
        /// The offset, seconds.
        offset: f64,
    },
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Nset,
    Freq { since: NtpTimestamp },
    Sync,
}

/// Window limits of the least-squares discipline.
const LS_MAX_SAMPLES: usize = 64;
const LS_MIN_WINDOW: usize = 6;
/// PLL loop constant (ntpd `CLOCK_PLL`).
const PLL_GAIN: f64 = 16.0;
/// FLL constant (RFC 5905: MAXPOLL + 1).
const FLL: f64 = 18.0;

/// The clock discipline state machine (RFC 5905 §11.3).
///
/// Call [`Discipline::update`] with each new combined offset; it returns at
/// most one [`Decision`]. [`crate::System`] drives it; use it directly only
/// for a single-source setup or tests.
#[derive(Clone, Debug)]
pub struct Discipline {
    config: DisciplineConfig,
    state: State,
    status: DisciplineStatus,
    frequency_ppm: f64,
    spike_since: Option<NtpTimestamp>,
    last: Option<(NtpTimestamp, f64)>,
    residual: f64,
    jitter: f64,
    poll: i8,
    poll_count: i32,
    frequency_known: bool,
    /// Least-squares samples: (time, offset re-expressed in the current
    /// correction frame).
    samples: VecDeque<(NtpTimestamp, f64)>,
}

impl Discipline {
    /// A discipline with no frequency correction yet.
    pub fn new(config: DisciplineConfig) -> Self {
        Self {
            config,
            state: State::Nset,
            status: DisciplineStatus::Unset,
            frequency_ppm: 0.0,
            spike_since: None,
            last: None,
            residual: 0.0,
            jitter: 0.0,
            poll: config.min_poll,
            poll_count: 0,
            frequency_known: false,
            samples: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DisciplineConfig {
        &self.config
    }

    /// The frequency correction in force, ppm.
    pub fn frequency_ppm(&self) -> f64 {
        self.frequency_ppm
    }

    /// Starts from a known frequency (a drift file): the PLL/FLL skips its
    /// frequency measurement (RFC 5905 FSET).
    pub fn set_frequency_ppm(&mut self, ppm: f64) {
        self.frequency_ppm = self.clamp_freq(ppm);
        self.frequency_known = true;
    }

    /// The system poll exponent the discipline asks for (RFC 5905 §11.3
    /// poll adjustment: up while offsets stay within PGATE jitters).
    pub fn poll(&self) -> i8 {
        self.poll
    }

    /// Clock jitter: RMS of successive offset differences, seconds.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The current status.
    pub fn status(&self) -> DisciplineStatus {
        self.status
    }

    /// Feeds the combined offset `offset` (seconds), measured by the sample
    /// taken at local time `sample_time`, at local time `now`, with the
    /// system jitter `jitter` (seconds). Time spans (stepout, frequency
    /// measurement, regression) are taken between sample times, so an old
    /// minimum-delay sample is placed where it was measured.
    pub fn update(
        &mut self,
        now: NtpTimestamp,
        sample_time: NtpTimestamp,
        offset: f64,
        jitter: f64,
    ) -> Option<Decision> {
        let t = sample_time;
        let abs = offset.abs();
        if !offset.is_finite() {
            return None;
        }
        if abs > self.config.panic_threshold.to_seconds_f64()
            && !(self.config.startup_panic_step_allowed && self.state == State::Nset)
        {
            self.status = DisciplineStatus::Panic { offset };
            return Some(Decision::Panic {
                offset: NtpDuration::from_seconds_f64(offset),
            });
        }
        let step_threshold = self.config.step_threshold.to_seconds_f64();
        match self.state {
            State::Nset => {
                if abs > step_threshold && self.config.startup_step_allowed {
                    return Some(self.step(t, offset, true));
                }
                self.last = Some((t, offset));
                match self.config.algorithm {
                    Algorithm::PllFll if !self.frequency_known => {
                        self.state = State::Freq { since: t };
                        self.status = DisciplineStatus::MeasuringFrequency;
                        self.residual = 0.0;
                        Some(self.slew(offset))
                    }
                    Algorithm::PllFll => {
                        self.state = State::Sync;
                        self.status = DisciplineStatus::Tracking;
                        Some(self.slew(offset))
                    }
                    Algorithm::LeastSquares => {
                        self.state = State::Sync;
                        self.status = DisciplineStatus::Tracking;
                        self.samples.clear();
                        Some(self.least_squares(now, t, offset))
                    }
                }
            }
            State::Freq { since } => {
                let mu = t.duration_since(since).to_seconds_f64();
                if mu < self.config.stepout.to_seconds_f64() {
                    return None;
                }
                // The offset was slewed out at `since`: what has built up
                // since is the frequency error.
                self.frequency_ppm = self.clamp_freq(self.frequency_ppm + offset / mu * 1e6);
                self.frequency_known = true;
                self.state = State::Sync;
                self.status = DisciplineStatus::Tracking;
                self.last = Some((t, offset));
                if abs > step_threshold {
                    return Some(self.step(t, offset, false));
                }
                self.residual = 0.0;
                Some(self.slew(offset))
            }
            State::Sync => {
                if abs > step_threshold {
                    let since = *self.spike_since.get_or_insert(t);
                    if t.duration_since(since) < self.config.stepout {
                        self.status = DisciplineStatus::StepPending { offset };
                        return None;
                    }
                    return Some(self.step(t, offset, false));
                }
                self.spike_since = None;
                self.status = DisciplineStatus::Tracking;
                let _ = jitter;
                self.update_jitter_and_poll(offset);
                let decision = match self.config.algorithm {
                    Algorithm::PllFll => self.pll_fll(t, offset),
                    Algorithm::LeastSquares => self.least_squares(now, t, offset),
                };
                self.last = Some((t, offset));
                Some(decision)
            }
        }
    }

    fn clamp_freq(&self, ppm: f64) -> f64 {
        ppm.clamp(
            -self.config.max_frequency_ppm,
            self.config.max_frequency_ppm,
        )
    }

    fn step(&mut self, now: NtpTimestamp, offset: f64, startup: bool) -> Decision {
        self.spike_since = None;
        self.samples.clear();
        self.residual = 0.0;
        self.last = None;
        self.state = match self.config.algorithm {
            Algorithm::PllFll if startup && !self.frequency_known => {
                self.status = DisciplineStatus::MeasuringFrequency;
                State::Freq { since: now }
            }
            _ => {
                self.status = DisciplineStatus::Tracking;
                State::Sync
            }
        };
        Decision::Step {
            offset: NtpDuration::from_seconds_f64(offset),
            frequency_ppm: self.frequency_ppm,
        }
    }

    fn slew(&self, offset: f64) -> Decision {
        Decision::Slew {
            offset: NtpDuration::from_seconds_f64(offset),
            frequency_ppm: self.frequency_ppm,
        }
    }

    fn update_jitter_and_poll(&mut self, offset: f64) {
        let previous = self.last.map_or(offset, |(_, o)| o);
        let d2 = (offset - previous).powi(2);
        self.jitter = (self.jitter.powi(2) + (d2 - self.jitter.powi(2)) / AVG)
            .max(0.0)
            .sqrt();
        let poll = i32::from(self.poll);
        if offset.abs() < PGATE * self.jitter {
            self.poll_count += poll;
            if self.poll_count > LIMIT {
                self.poll_count = LIMIT;
                if self.poll < self.config.max_poll {
                    self.poll_count = 0;
                    self.poll += 1;
                }
            }
        } else {
            self.poll_count -= 2 * poll;
            if self.poll_count < -LIMIT {
                self.poll_count = -LIMIT;
                if self.poll > self.config.min_poll {
                    self.poll_count = 0;
                    self.poll -= 1;
                }
            }
        }
    }

    fn pll_fll(&mut self, now: NtpTimestamp, offset: f64) -> Decision {
        let mu = self
            .last
            .map_or(0.0, |(t, _)| now.duration_since(t).to_seconds_f64())
            .max(1.0);
        let tau = log2_seconds(self.poll);
        let mut dfreq = 0.0;
        // FLL above the Allan intercept.
        if tau > ALLAN / 2.0 {
            let fll = FLL - f64::from(self.poll);
            dfreq += (offset - self.residual) / (mu.max(ALLAN) * fll.max(AVG));
        }
        // PLL: Δf = θ·min(μ, τ)/(4·K·τ)².
        let denom = 4.0 * PLL_GAIN * tau;
        dfreq += offset * mu.min(tau) / (denom * denom);
        self.frequency_ppm = self.clamp_freq(self.frequency_ppm + dfreq * 1e6);
        // ntpd amortizes the phase with time constant K·τ until the next
        // update; the interval since the last update stands in for the one
        // until the next.
        let fraction = 1.0 - (-mu / (PLL_GAIN * tau)).exp();
        let applied = offset * fraction;
        self.residual = offset - applied;
        self.slew(applied)
    }

    fn least_squares(&mut self, now: NtpTimestamp, t: NtpTimestamp, offset: f64) -> Decision {
        self.samples.push_back((t, offset));
        while self.samples.len() > LS_MAX_SAMPLES {
            self.samples.pop_front();
        }
        // Shrink the window from the old end while the residuals' runs test
        // says the line does not fit (the frequency wandered).
        let (mut a, mut b, mut var_b);
        loop {
            let points: Vec<(f64, f64)> = self
                .samples
                .iter()
                .map(|(t, o)| (t.duration_since(now).to_seconds_f64(), *o))
                .collect();
            let fit = fit_line(&points);
            a = fit.0;
            b = fit.1;
            var_b = fit.2;
            let n = points.len();
            if n <= LS_MIN_WINDOW || runs_ok(&points, a, b) {
                break;
            }
            let drop = (n / 4).max(1).min(n - LS_MIN_WINDOW);
            self.samples.drain(..drop);
        }
        // Shrink the slope by its uncertainty: b·b²/(b² + var_b).
        let b_used = if var_b.is_finite() && b != 0.0 {
            b * b * b / (b * b + var_b)
        } else {
            0.0
        };
        let new_freq = self.clamp_freq(self.frequency_ppm + b_used * 1e6);
        let b_used = (new_freq - self.frequency_ppm) / 1e6;
        self.frequency_ppm = new_freq;
        for (t, o) in &mut self.samples {
            *o -= a + b_used * t.duration_since(now).to_seconds_f64();
        }
        self.slew(a)
    }
}

/// Least-squares line through `(x, y)` points: `(intercept at x = 0, slope,
/// variance of the slope)`. With fewer than three points the slope variance
/// is infinite; with one point the slope is zero.
fn fit_line(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = points.len() as f64;
    if points.len() < 2 {
        return (points.first().map_or(0.0, |p| p.1), 0.0, f64::INFINITY);
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return (my, 0.0, f64::INFINITY);
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    if points.len() < 3 {
        return (a, b, f64::INFINITY);
    }
    let rss: f64 = points.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    (a, b, rss / (n - 2.0) / sxx)
}

/// Wald–Wolfowitz runs test on the residuals' signs: false when there are
/// too few runs (the residuals are correlated, so a line does not fit).
fn runs_ok(points: &[(f64, f64)], a: f64, b: f64) -> bool {
    let signs: Vec<bool> = points.iter().map(|p| p.1 - a - b * p.0 >= 0.0).collect();
    let n = signs.len() as f64;
    let pos = signs.iter().filter(|s| **s).count() as f64;
    let neg = n - pos;
    if pos == 0.0 || neg == 0.0 {
        return false;
    }
    let runs = 1 + signs.windows(2).filter(|w| w.first() != w.get(1)).count();
    let mean = 1.0 + 2.0 * pos * neg / n;
    let var = (mean - 1.0) * (mean - 2.0) / (n - 1.0);
    runs as f64 >= mean - 2.0 * var.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> NtpTimestamp {
        NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
    }

    fn both() -> [DisciplineConfig; 2] {
        [
            DisciplineConfig {
                algorithm: Algorithm::PllFll,
                ..DisciplineConfig::default()
            },
            DisciplineConfig::default(),
        ]
    }

    #[test]
    fn startup_step_then_slew() {
        for config in both() {
            let mut d = Discipline::new(config);
            assert!(matches!(
                d.update(at(0.0), at(0.0), 0.5, 0.001),
                Some(Decision::Step { .. })
            ));
            // The PLL measures frequency first (ignores updates).
            let later = at(1000.0);
            assert!(matches!(
                d.update(later, later, 0.01, 0.001),
                Some(Decision::Slew { .. })
            ));
        }
    }

    #[test]
    fn small_startup_offset_is_slewed() {
        for config in both() {
            let mut d = Discipline::new(config);
            let Some(Decision::Slew { offset, .. }) = d.update(at(0.0), at(0.0), 0.05, 0.001)
            else {
                panic!("expected a slew");
            };
            assert!((offset.to_seconds_f64() - 0.05).abs() < 1e-6);
        }
    }

    #[test]
    fn no_startup_step_when_disallowed() {
        let mut d = Discipline::new(DisciplineConfig {
            startup_step_allowed: false,
            ..DisciplineConfig::default()
        });
        assert!(matches!(
            d.update(at(0.0), at(0.0), 0.5, 0.001),
            Some(Decision::Slew { .. })
        ));
    }

    #[test]
    fn spike_is_held_then_stepped_after_stepout() {
        for config in both() {
            let mut d = Discipline::new(config);
            d.set_frequency_ppm(0.0);
            assert!(d.update(at(0.0), at(0.0), 0.001, 0.001).is_some());
            assert_eq!(d.update(at(64.0), at(64.0), 0.3, 0.001), None);
            assert_eq!(d.status(), DisciplineStatus::StepPending { offset: 0.3 });
            assert_eq!(d.update(at(500.0), at(500.0), 0.3, 0.001), None);
            // Back within threshold: the spike is forgotten.
            assert!(matches!(
                d.update(at(600.0), at(600.0), 0.001, 0.001),
                Some(Decision::Slew { .. })
            ));
            assert_eq!(d.update(at(700.0), at(700.0), 0.3, 0.001), None);
            assert!(matches!(
                d.update(at(1700.0), at(1700.0), 0.3, 0.001),
                Some(Decision::Step { .. })
            ));
        }
    }

    #[test]
    fn panic_beyond_threshold_always() {
        for config in both() {
            let mut d = Discipline::new(config);
            for i in 0..5 {
                assert_eq!(
                    d.update(
                        at(f64::from(i) * 64.0),
                        at(f64::from(i) * 64.0),
                        2000.0,
                        0.001
                    ),
                    Some(Decision::Panic {
                        offset: NtpDuration::from_seconds(2000)
                    })
                );
            }
            assert_eq!(d.status(), DisciplineStatus::Panic { offset: 2000.0 });
        }
        let mut d = Discipline::new(DisciplineConfig {
            startup_panic_step_allowed: true,
            ..DisciplineConfig::default()
        });
        assert!(matches!(
            d.update(at(0.0), at(0.0), 2000.0, 0.001),
            Some(Decision::Step { .. })
        ));
    }

    #[test]
    fn least_squares_learns_a_frequency_error() {
        // The clock loses 20 ppm; offsets accumulate between corrections.
        let mut d = Discipline::new(DisciplineConfig::default());
        let mut phase = 0.0;
        let mut t = 0.0;
        for _ in 0..40 {
            if let Some(Decision::Slew { offset, .. }) = d.update(at(t), at(t), phase, 1e-5) {
                phase -= offset.to_seconds_f64();
            }
            t += 64.0;
            phase += (20.0 - d.frequency_ppm()) * 1e-6 * 64.0;
        }
        assert!(
            (d.frequency_ppm() - 20.0).abs() < 0.5,
            "{}",
            d.frequency_ppm()
        );
    }

    #[test]
    fn fit_line_recovers_a_line() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 1.0 + 0.5 * f64::from(i)))
            .collect();
        let (a, b, v) = fit_line(&pts);
        assert!((a - 1.0).abs() < 1e-12 && (b - 0.5).abs() < 1e-12 && v < 1e-20);
    }
}
