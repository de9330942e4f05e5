//! The one time type of the crate: wall-clock milliseconds since the Unix
//! epoch, passed in by the caller.

use core::fmt;
use core::time::Duration;

/// A point in time as milliseconds since the Unix epoch (1970-01-01 UTC).
///
/// The policy never reads a clock: every function that needs "now" takes a
/// `UnixMs`, and every [`CheckResult`](crate::CheckResult) carries the time of
/// its attempt. A verdict's lease (`issued_at`, `valid_until`) is expressed in
/// this type too, so a monitor can store it and an auditor can compare it with
/// the timestamps it signed.
///
/// Unlike an NTP timestamp this is not era-less, so ordering is meaningful and
/// `Ord` is derived. Arithmetic saturates instead of wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMs(pub u64);

impl UnixMs {
    /// The time `secs` whole seconds after the Unix epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `d` (truncated to whole milliseconds), saturating at
    /// `u64::MAX`.
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }
}

impl fmt::Display for UnixMs {
    /// Seconds since the epoch with three decimals, e.g. `1700000000.250`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_display() {
        let t = UnixMs::from_secs(1_700_000_000);
        assert_eq!(t.as_millis(), 1_700_000_000_000);
        assert_eq!(
            t.saturating_add(Duration::from_millis(250)).to_string(),
            "1700000000.250"
        );
        assert_eq!(
            UnixMs(u64::MAX).saturating_add(Duration::from_secs(1)),
            UnixMs(u64::MAX)
        );
    }
}
