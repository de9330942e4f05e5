//! The per-source clock filter (RFC 5905 §10, PROTOCOL.md §4).
//!
//! An 8-stage shift register of (θ, δ, ε, t) samples. The sample with the
//! lowest delay is the one least disturbed by queueing, so its offset is the
//! source's offset. The peer dispersion is a weighted sum of the stages'
//! dispersions, which grow by PHI per second of age; the jitter is the RMS of
//! the other offsets about the chosen one. A popcorn spike suppressor drops a
//! new minimum-delay sample whose offset jumps by more than SGATE jitters
//! within two poll intervals. The gate compares with the jitter held before
//! the sample (the jitter about the new sample would include the spike).
//!
//! One deliberate deviation: stages never filled since start-up (or since a
//! clock step) are left out of the dispersion sum, while the dummy stages of
//! missed polls count at MAXDISP as in the RFC. Counting empty stages at
//! MAXDISP keeps a new source's root distance above MAXDIST until five
//! samples are in (which is why ntpd's iburst sends eight); without them a
//! 4-request burst gives a first estimate within seconds.
//!
//! Units: all values are `f64` seconds.

use ntp_proto::NtpTimestamp;

use crate::consts::{MAXDISP, NSTAGE, PHI, SGATE};
use crate::measurement::log2_seconds;

/// One sample entering the filter.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct FilterSample {
    /// θ, seconds.
    pub offset: f64,
    /// δ, seconds.
    pub delay: f64,
    /// ε₀, seconds.
    pub dispersion: f64,
    /// Local time of the sample.
    pub time: NtpTimestamp,
}

/// What the filter currently says about its source.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct FilterOutput {
    /// Offset of the chosen (minimum-delay) sample, seconds.
    pub offset: f64,
    /// Delay of the chosen sample, seconds.
    pub delay: f64,
    /// Peer dispersion ε = Σ εᵢ/2^(i+1) over the delay-sorted stages, seconds.
    pub dispersion: f64,
    /// Peer jitter ψ, seconds (at least the precision).
    pub jitter: f64,
    /// Local time of the chosen sample.
    pub time: NtpTimestamp,
}

/// What [`ClockFilter::add`] did with a sample.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FilterVerdict {
    /// A newer minimum-delay sample became the filter output.
    Updated,
    /// The sample was stored, but an older sample still has the lowest
    /// delay, so the output's offset did not change.
    NotNewer,
    /// The popcorn spike suppressor held back the new minimum-delay sample.
    Spike,
}

#[derive(Clone, Copy, PartialEq, Debug)]
struct Stage {
    offset: f64,
    delay: f64,
    dispersion: f64,
    /// `None` for the initial and the dummy (missed poll) stages.
    time: Option<NtpTimestamp>,
    /// Never filled since start or reset: left out of the dispersion sum.
    empty: bool,
}

const EMPTY: Stage = Stage {
    offset: 0.0,
    delay: MAXDISP,
    dispersion: MAXDISP,
    time: None,
    empty: true,
};

const DUMMY: Stage = Stage {
    empty: false,
    ..EMPTY
};

/// The 8-stage clock filter of one source (RFC 5905 §10).
#[derive(Clone, Debug)]
pub struct ClockFilter {
    stages: [Stage; NSTAGE],
    last_update: Option<NtpTimestamp>,
    output: Option<FilterOutput>,
    precision: f64,
}

impl ClockFilter {
    /// An empty filter; `precision` is the log₂-seconds floor of the jitter
    /// (the larger of the local and source precision).
    pub fn new(precision: i8) -> Self {
        Self {
            stages: [EMPTY; NSTAGE],
            last_update: None,
            output: None,
            precision: log2_seconds(precision),
        }
    }

    /// The current output, if any real sample has been accepted.
    pub fn output(&self) -> Option<FilterOutput> {
        self.output
    }

    /// Forgets every sample (after a clock step the stored offsets are
    /// wrong).
    pub fn reset(&mut self) {
        self.stages = [EMPTY; NSTAGE];
        self.last_update = None;
        self.output = None;
    }

    /// The local clock was corrected at `now` by `offset` seconds (added to
    /// it) and its frequency by `frequency_change` (s/s), which the
    /// discipline estimated as the drift the clock had: every stored sample
    /// is re-expressed as if that correction had always been in force,
    /// `θᵢ −= offset + frequency_change·(tᵢ − now)`. This keeps old
    /// minimum-delay samples consistent with the corrected clock (chrony
    /// re-expresses its samples the same way).
    pub fn adjust(&mut self, now: NtpTimestamp, offset: f64, frequency_change: f64) {
        let shift = |time: NtpTimestamp| {
            offset + frequency_change * time.duration_since(now).to_seconds_f64()
        };
        for s in &mut self.stages {
            if let Some(t) = s.time {
                s.offset -= shift(t);
            }
        }
        if let Some(out) = self.output.as_mut() {
            out.offset -= shift(out.time);
        }
    }

    /// Shifts in a dummy stage (δ = ε = MAXDISP) for a run of missed polls
    /// (RFC 5905 §13: three low bits of reach all zero).
    pub fn add_dummy(&mut self, now: NtpTimestamp) {
        self.shift(DUMMY, now);
        self.recompute(now);
    }

    /// Adds a sample taken at `now` with the current poll exponent `poll`,
    /// and says whether the output moved to it.
    pub fn add(&mut self, sample: FilterSample, now: NtpTimestamp, poll: i8) -> FilterVerdict {
        let stage = Stage {
            offset: sample.offset,
            delay: sample.delay.max(0.0),
            dispersion: sample.dispersion.clamp(0.0, MAXDISP),
            time: Some(sample.time),
            empty: false,
        };
        self.shift(stage, now);
        let previous = self.output;
        let Some((best, dispersion, jitter)) = self.best() else {
            return FilterVerdict::NotNewer;
        };
        let Some(best_time) = best.time else {
            return FilterVerdict::NotNewer;
        };
        // Refresh dispersion and jitter always; offset only for newer samples.
        if let Some(out) = self.output.as_mut() {
            out.dispersion = dispersion;
            out.jitter = jitter;
        }
        if let Some(prev) = previous {
            if !prev.time.is_before(best_time) {
                return FilterVerdict::NotNewer;
            }
            // The gate uses the jitter before this sample: the jitter about
            // the new sample would include the spike itself.
            let since = best_time.duration_since(prev.time).to_seconds_f64();
            if (best.offset - prev.offset).abs() > SGATE * prev.jitter
                && since < 2.0 * log2_seconds(poll)
            {
                return FilterVerdict::Spike;
            }
        }
        self.output = Some(FilterOutput {
            offset: best.offset,
            delay: best.delay,
            dispersion,
            jitter,
            time: best_time,
        });
        FilterVerdict::Updated
    }

    fn shift(&mut self, stage: Stage, now: NtpTimestamp) {
        let age = self
            .last_update
            .map_or(0.0, |t| now.duration_since(t).to_seconds_f64().max(0.0));
        for s in &mut self.stages {
            s.dispersion = (s.dispersion + PHI * age).min(MAXDISP);
        }
        self.stages.rotate_right(1);
        if let Some(first) = self.stages.first_mut() {
            *first = stage;
        }
        self.last_update = Some(now);
    }

    fn recompute(&mut self, _now: NtpTimestamp) {
        if let Some((_, dispersion, jitter)) = self.best() {
            if let Some(out) = self.output.as_mut() {
                out.dispersion = dispersion;
                out.jitter = jitter;
            }
        } else if let Some(out) = self.output.as_mut() {
            out.dispersion = MAXDISP;
        }
    }

    /// The minimum-delay real stage, the peer dispersion and the jitter.
    fn best(&self) -> Option<(Stage, f64, f64)> {
        let mut sorted = self.stages;
        // Real samples first, by delay; then dummies; never-filled last.
        sorted.sort_by(|a, b| {
            (a.empty, a.time.is_none())
                .cmp(&(b.empty, b.time.is_none()))
                .then(a.delay.total_cmp(&b.delay))
        });
        let dispersion: f64 = sorted
            .iter()
            .filter(|s| !s.empty)
            .zip(1..)
            .map(|(s, i)| s.dispersion / 2f64.powi(i))
            .sum();
        let best = *sorted.first()?;
        best.time?;
        let others: Vec<f64> = sorted
            .iter()
            .skip(1)
            .filter(|s| s.time.is_some())
            .map(|s| (s.offset - best.offset).powi(2))
            .collect();
        let jitter = if others.is_empty() {
            self.precision
        } else {
            (others.iter().sum::<f64>() / others.len() as f64)
                .sqrt()
                .max(self.precision)
        };
        Some((best, dispersion, jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ntp_proto::NtpDuration;

    fn at(s: f64) -> NtpTimestamp {
        NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
    }

    fn sample(offset: f64, delay: f64, t: f64) -> FilterSample {
        FilterSample {
            offset,
            delay,
            dispersion: 1e-6,
            time: at(t),
        }
    }

    #[test]
    fn picks_the_minimum_delay_sample() {
        let mut f = ClockFilter::new(-20);
        let data = [
            (0.010, 0.050),
            (0.001, 0.020),
            (0.004, 0.030),
            (0.007, 0.040),
        ];
        for (i, (o, d)) in data.iter().enumerate() {
            f.add(sample(*o, *d, i as f64 * 1000.0), at(i as f64 * 1000.0), 6);
        }
        let out = f.output().unwrap();
        assert_eq!(out.offset, 0.001);
        assert_eq!(out.delay, 0.020);
        assert_eq!(out.time, at(1000.0));
        // Jitter: RMS of the others about 0.001.
        let expect = (((0.009f64).powi(2) + (0.003f64).powi(2) + (0.006f64).powi(2)) / 3.0).sqrt();
        assert!((out.jitter - expect).abs() < 1e-12);
    }

    #[test]
    fn dispersion_grows_with_age_and_dummies() {
        let mut f = ClockFilter::new(-20);
        f.add(sample(0.0, 0.01, 0.0), at(0.0), 6);
        let d0 = f.output().unwrap().dispersion;
        // One real sample: ε = ε₀/2 (never-filled stages do not count).
        assert!((d0 - 1e-6 / 2.0).abs() < 1e-12);
        f.add(sample(0.0, 0.02, 1000.0), at(1000.0), 6);
        let d1 = f.output().unwrap().dispersion;
        // The kept sample aged 1000 s: its ε grew by PHI·1000.
        let expect = (1e-6 + PHI * 1000.0) / 2.0 + 1e-6 / 4.0;
        assert!((d1 - expect).abs() < 1e-9, "{d1} vs {expect}");
        // A missed-poll dummy counts at MAXDISP.
        f.add_dummy(at(1064.0));
        assert!(f.output().unwrap().dispersion > d1 + MAXDISP / 8.0 - 1e-9);
    }

    #[test]
    fn popcorn_spike_is_suppressed_then_accepted_later() {
        let mut f = ClockFilter::new(-20);
        for i in 0..6 {
            let t = i as f64 * 64.0;
            f.add(
                sample(0.001 * (i % 2) as f64, 0.010 - 1e-4 * (i as f64), t),
                at(t),
                6,
            );
        }
        // Lower delay but offset far away: a spike within 2 polls.
        let t = 6.0 * 64.0;
        assert_eq!(f.add(sample(0.5, 0.001, t), at(t), 6), FilterVerdict::Spike);
        assert_eq!(f.output().unwrap().offset, 0.001);
        // Much later the same sample is no longer held back.
        let t = 7.0 * 64.0 + 1000.0;
        assert_eq!(
            f.add(sample(0.5, 0.0005, t), at(t), 6),
            FilterVerdict::Updated
        );
    }

    #[test]
    fn not_newer_keeps_the_output() {
        let mut f = ClockFilter::new(-20);
        assert_eq!(
            f.add(sample(0.002, 0.010, 0.0), at(0.0), 6),
            FilterVerdict::Updated
        );
        assert_eq!(
            f.add(sample(0.003, 0.020, 2.0), at(2.0), 6),
            FilterVerdict::NotNewer
        );
        assert_eq!(f.output().unwrap().offset, 0.002);
    }
}
