//! The send schedule: a token bucket driven by elapsed time.
//!
//! Request `k` (0-based) is due at `k / rate` seconds after the start. Each
//! call to [`Pacer::take`] hands out the requests due since the last call, so
//! the loop sends in batches of whatever accumulated while it waited (about
//! `rate × 1 ms` at a 1 ms tick). If the loop falls behind by more than the
//! burst, the excess is dropped from the schedule rather than sent in one
//! flood, and counted in [`Pacer::skipped`]: the offered rate then shows the
//! generator could not keep up.

use std::time::Duration;

/// How many requests the generator sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// This many requests per second.
    PerSecond(f64),
    /// As fast as `--inflight` allows.
    Unlimited,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("unlimited") || s == "max" {
            return Ok(Self::Unlimited);
        }
        let value = s
            .strip_suffix('k')
            .map(|k| k.parse::<f64>().map(|v| v * 1000.0))
            .unwrap_or_else(|| s.parse::<f64>())
            .map_err(|_| {
                format!("{s:?} is not a rate (a number, e.g. 50000 or 50k, or \"unlimited\")")
            })?;
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("rate must be positive, not {s}"));
        }
        Ok(Self::PerSecond(value))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerSecond(r) => write!(f, "{r}"),
            Self::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// Token bucket over elapsed time (see the module docs).
#[derive(Clone, Debug)]
pub struct Pacer {
    rate: Rate,
    burst: u64,
    issued: u64,
    skipped: u64,
}

impl Pacer {
    /// A pacer for `rate` that lets at most `burst` requests pile up.
    pub fn new(rate: Rate, burst: u64) -> Self {
        Self {
            rate,
            burst: burst.max(1),
            issued: 0,
            skipped: 0,
        }
    }

    /// How many requests to send now, `elapsed` after the start, at most
    /// `room` (free in-flight slots). Those not taken because of `room` stay
    /// due, up to the burst.
    pub fn take(&mut self, elapsed: Duration, room: u64) -> u64 {
        let Rate::PerSecond(rate) = self.rate else {
            self.issued += room;
            return room;
        };
        let due_total = due_total(elapsed, rate);
        let mut due = due_total.saturating_sub(self.issued);
        if due > self.burst {
            self.skipped += due - self.burst;
            self.issued += due - self.burst;
            due = self.burst;
        }
        let n = due.min(room);
        self.issued += n;
        n
    }

    /// How many requests are due at `elapsed` (up to the burst), without
    /// taking them.
    pub fn due(&self, elapsed: Duration) -> u64 {
        let Rate::PerSecond(rate) = self.rate else {
            return u64::MAX;
        };
        due_total(elapsed, rate)
            .saturating_sub(self.issued)
            .min(self.burst)
    }

    /// Time from `elapsed` until the next request is due (zero if one is due
    /// now, `None` at an unlimited rate).
    pub fn until_next(&self, elapsed: Duration) -> Option<Duration> {
        let Rate::PerSecond(rate) = self.rate else {
            return None;
        };
        let next = Duration::from_secs_f64((self.issued + 1) as f64 / rate);
        Some(next.saturating_sub(elapsed))
    }

    /// Requests dropped from the schedule because the loop fell behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Requests due from the start to `elapsed`. The epsilon keeps binary
/// rounding (1.001 s × 10000/s = 10009.999…) from losing a request; float to
/// integer saturates.
fn due_total(elapsed: Duration, rate: f64) -> u64 {
    (elapsed.as_secs_f64() * rate + 1e-6).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule() {
        let mut p = Pacer::new(Rate::PerSecond(1000.0), 100);
        assert_eq!(p.take(Duration::ZERO, 1000), 0);
        assert_eq!(p.until_next(Duration::ZERO), Some(Duration::from_millis(1)));
        assert_eq!(p.take(Duration::from_millis(10), 1000), 10);
        assert_eq!(p.take(Duration::from_millis(10), 1000), 0);
        // Room limits; the rest stays due.
        assert_eq!(p.take(Duration::from_millis(30), 5), 5);
        assert_eq!(p.take(Duration::from_millis(30), 1000), 15);
        let total: u64 = (1..=1000)
            .map(|ms| p.take(Duration::from_millis(30 + ms), 1000))
            .sum();
        assert_eq!(total, 1000);
        assert_eq!(p.skipped(), 0);
    }

    #[test]
    fn a_stall_is_capped_by_the_burst() {
        let mut p = Pacer::new(Rate::PerSecond(10_000.0), 50);
        assert_eq!(p.take(Duration::from_secs(1), u64::MAX), 50);
        assert_eq!(p.skipped(), 9_950);
        assert_eq!(p.take(Duration::from_millis(1001), u64::MAX), 10);
    }

    #[test]
    fn unlimited_fills_the_room() {
        let mut p = Pacer::new(Rate::Unlimited, 1);
        assert_eq!(p.take(Duration::ZERO, 77), 77);
        assert_eq!(p.until_next(Duration::ZERO), None);
    }

    #[test]
    fn parses_rates() {
        assert_eq!("50k".parse(), Ok(Rate::PerSecond(50_000.0)));
        assert_eq!("2000".parse(), Ok(Rate::PerSecond(2000.0)));
        assert_eq!("unlimited".parse(), Ok(Rate::Unlimited));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }
}
