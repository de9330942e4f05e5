//! Inputs: the result of one check attempt against one source, and a round of
//! them.

use core::fmt;

use crate::UnixMs;

/// The leap indicator of an NTP response (RFC 5905 §7.3, field LI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leap {
    /// LI 0: no leap second pending.
    NoWarning,
    /// LI 1: the last minute of the day has 61 seconds.
    InsertSecond,
    /// LI 2: the last minute of the day has 59 seconds.
    DeleteSecond,
    /// LI 3: the server's clock is not synchronized.
    Unsynchronized,
}

impl Leap {
    /// The leap indicator from the two LI bits (higher bits are ignored).
    pub const fn from_indicator(li: u8) -> Self {
        match li & 0b11 {
            0 => Self::NoWarning,
            1 => Self::InsertSecond,
            2 => Self::DeleteSecond,
            _ => Self::Unsynchronized,
        }
    }

    /// The LI value, 0 to 3.
    pub const fn indicator(self) -> u8 {
        match self {
            Self::NoWarning => 0,
            Self::InsertSecond => 1,
            Self::DeleteSecond => 2,
            Self::Unsynchronized => 3,
        }
    }

    /// Whether a leap second is announced (LI 1 or 2).
    pub const fn is_pending(self) -> bool {
        matches!(self, Self::InsertSecond | Self::DeleteSecond)
    }
}

/// What a successful check measured, in seconds (RFC 5905 §8 and §11.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Offset of the local clock relative to the source (θ), signed.
    pub offset_s: f64,
    /// Round-trip delay to the source (δ).
    pub delay_s: f64,
    /// The source's root delay (its delay to the primary reference).
    pub root_delay_s: f64,
    /// The source's root dispersion.
    pub root_dispersion_s: f64,
    /// The source's stratum; 0 (unspecified) and 16 or more count as
    /// unsynchronized.
    pub stratum: u8,
    /// The source's leap indicator.
    pub leap: Leap,
    /// Jitter of the source, when the monitor measured it over several
    /// samples. Recorded for the log; no rule uses it.
    pub jitter_s: Option<f64>,
}

impl Sample {
    /// A sample without a jitter figure.
    pub const fn new(
        offset_s: f64,
        delay_s: f64,
        root_delay_s: f64,
        root_dispersion_s: f64,
        stratum: u8,
        leap: Leap,
    ) -> Self {
        Self {
            offset_s,
            delay_s,
            root_delay_s,
            root_dispersion_s,
            stratum,
            leap,
            jitter_s: None,
        }
    }

    /// The source's root distance as this policy defines it:
    /// `root_delay / 2 + root_dispersion`.
    ///
    /// This is the distance of the source to its primary reference (RFC 5905
    /// §11.2.1 `rootdist()` without the local delay and dispersion terms, which
    /// the offset threshold covers).
    pub fn root_distance_s(&self) -> f64 {
        self.root_delay_s / 2.0 + self.root_dispersion_s
    }

    /// Whether the source claims to be synchronized: LI is not 3 and the
    /// stratum is 1 to 15.
    pub fn is_synchronized(&self) -> bool {
        self.leap != Leap::Unsynchronized && (1..16).contains(&self.stratum)
    }

    /// Whether every figure is a finite number (no NaN or infinity), and the
    /// root delay and dispersion are not negative.
    pub fn is_well_formed(&self) -> bool {
        self.offset_s.is_finite()
            && self.delay_s.is_finite()
            && self.root_delay_s.is_finite()
            && self.root_dispersion_s.is_finite()
            && self.root_delay_s >= 0.0
            && self.root_dispersion_s >= 0.0
    }
}

/// Why a check attempt produced no sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckFailure {
    /// The source could not be reached (name resolution, route, ICMP, …).
    Unreachable,
    /// No response before the deadline.
    Timeout,
    /// The source answered with a Kiss-o'-Death packet (RFC 5905 §7.4); the
    /// four ASCII bytes of the kiss code, e.g. `*b"RATE"`.
    KissOfDeath([u8; 4]),
    /// An NTS-protected response failed authentication (RFC 8915 §5.7).
    NtsAuthFailed,
    /// NTS key establishment failed (TLS or NTS-KE, RFC 8915 §4).
    NtsKeFailed,
    /// The source said it is not synchronized (LI 3 or stratum 16), and the
    /// monitor reported that as a failure rather than as a sample.
    Unsynchronized,
    /// Anything else, described.
    Other(String),
}

impl CheckFailure {
    /// Whether this is an NTS failure (authentication or key establishment),
    /// which raises `NTS_AUTH_FAILED` instead of `NTP_COMM_FAILED`.
    pub const fn is_nts(&self) -> bool {
        matches!(self, Self::NtsAuthFailed | Self::NtsKeFailed)
    }
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("unreachable"),
            Self::Timeout => f.write_str("timeout"),
            Self::KissOfDeath(code) => {
                f.write_str("kiss-o'-death ")?;
                for &b in code {
                    if b.is_ascii_graphic() {
                        write!(f, "{}", char::from(b))?;
                    } else {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                Ok(())
            }
            Self::NtsAuthFailed => f.write_str("nts authentication failed"),
            Self::NtsKeFailed => f.write_str("nts key establishment failed"),
            Self::Unsynchronized => f.write_str("source unsynchronized"),
            Self::Other(what) => write!(f, "check failed: {what}"),
        }
    }
}

/// One attempt to check one source.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The source's configured name; it must match a
    /// [`SourceSpec::name`](crate::SourceSpec::name) of the policy, or the
    /// result is ignored.
    pub source: String,
    /// The label of the organisation operating the source, used by the
    /// distinct-operators rule.
    pub operator: String,
    /// The address actually queried, for the log.
    pub address: String,
    /// Whether this attempt was NTS-authenticated.
    pub nts: bool,
    /// What the attempt measured, or why it failed.
    pub outcome: Result<Sample, CheckFailure>,
    /// When the attempt was made.
    pub at: UnixMs,
}

/// All attempts of one round, retries included.
///
/// A round holds any number of [`CheckResult`]s per source, in the order they
/// were made. The policy considers at most `1 + retries` attempts per source
/// (the first ones); the source passes if any of those passes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Round {
    /// The attempts, in the order they were made.
    pub results: Vec<CheckResult>,
}

impl Round {
    /// A round of these attempts.
    pub const fn new(results: Vec<CheckResult>) -> Self {
        Self { results }
    }
}

impl From<Vec<CheckResult>> for Round {
    fn from(results: Vec<CheckResult>) -> Self {
        Self { results }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_bits() {
        for li in 0..4u8 {
            assert_eq!(Leap::from_indicator(li).indicator(), li);
        }
        assert_eq!(Leap::from_indicator(0b101), Leap::InsertSecond);
        assert!(Leap::DeleteSecond.is_pending());
        assert!(!Leap::Unsynchronized.is_pending());
    }

    #[test]
    fn sample_checks() {
        let s = Sample::new(0.0, 0.01, 0.02, 0.005, 2, Leap::NoWarning);
        assert!((s.root_distance_s() - 0.015).abs() < 1e-12);
        assert!(s.is_synchronized() && s.is_well_formed());
        assert!(!Sample { stratum: 16, ..s }.is_synchronized());
        assert!(!Sample { stratum: 0, ..s }.is_synchronized());
        assert!(
            !Sample {
                offset_s: f64::NAN,
                ..s
            }
            .is_well_formed()
        );
        assert!(
            !Sample {
                root_dispersion_s: -1.0,
                ..s
            }
            .is_well_formed()
        );
    }

    #[test]
    fn kiss_display() {
        assert_eq!(
            CheckFailure::KissOfDeath(*b"RATE").to_string(),
            "kiss-o'-death RATE"
        );
        assert_eq!(
            CheckFailure::KissOfDeath([0, b'A', b' ', b'B']).to_string(),
            "kiss-o'-death \\x00A\\x20B"
        );
    }
}
