//! Why a source failed, a round failed or degraded, or a verdict is what it
//! is.

use core::fmt;

use crate::{CheckFailure, Leap, UnixMs};

/// One reason behind a source evaluation, a round evaluation or a verdict.
///
/// Each carries the source and the figures it is about, so a logged verdict
/// explains itself. [`Reason::code`] is a stable machine-readable name;
/// `Display` is a lowercase sentence.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// An attempt failed without a sample.
    CheckFailed {
        /// The source.
        source: String,
        /// Why.
        failure: CheckFailure,
    },
    /// The round holds no attempt for a configured source (and, in
    /// `first-pass`, no later source decided the round).
    NotChecked {
        /// The source.
        source: String,
    },
    /// A sample has a NaN or infinite figure, or a negative root delay or
    /// dispersion.
    MalformedSample {
        /// The source.
        source: String,
    },
    /// The source says it is not synchronized (LI 3, stratum 0 or ≥ 16).
    Unsynchronized {
        /// The source.
        source: String,
        /// Its leap indicator.
        leap: Leap,
        /// Its stratum.
        stratum: u8,
    },
    /// |offset| is above `max-offset-ms`.
    OffsetExceeded {
        /// The source.
        source: String,
        /// The measured offset, seconds.
        offset_s: f64,
        /// The threshold, seconds.
        max_s: f64,
    },
    /// `root_delay / 2 + root_dispersion` is above `max-root-distance-ms`.
    RootDistanceExceeded {
        /// The source.
        source: String,
        /// The root distance, seconds.
        root_distance_s: f64,
        /// The threshold, seconds.
        max_s: f64,
    },
    /// A leap second is announced (with `leap = "degrade"` on a passing
    /// source, or `"fail"`).
    LeapPending {
        /// The source.
        source: String,
        /// The announcement.
        leap: Leap,
    },
    /// `nts-required = "all"` and the sample was not NTS-authenticated.
    NtsRequired {
        /// The source.
        source: String,
    },
    /// `first-pass`: no source had a usable result.
    NoUsableSource,
    /// `quorum`: fewer sources passed than required.
    QuorumNotReached {
        /// Sources that passed.
        passed: usize,
        /// The quorum.
        required: usize,
    },
    /// `quorum` with `tiebreak = "fail"`: as many sources failed as passed.
    QuorumTie {
        /// Sources that passed (and failed).
        passed: usize,
    },
    /// The round passed, but some configured sources failed.
    SourcesFailing {
        /// Sources that failed.
        failed: usize,
        /// Configured sources.
        configured: usize,
    },
    /// `nts-required = N`: fewer NTS-authenticated sources passed.
    TooFewNtsSources {
        /// Passing NTS sources.
        nts: usize,
        /// The requirement.
        required: usize,
    },
    /// `min-operators`: passing sources come from fewer operators.
    TooFewOperators {
        /// Distinct operator labels among passing sources.
        operators: usize,
        /// The requirement.
        required: usize,
    },
    /// Passing sources' offsets spread wider than the disagreement bound.
    SourcesDisagree {
        /// The source with the lowest offset.
        low_source: String,
        /// Its offset, seconds.
        low_offset_s: f64,
        /// The source with the highest offset.
        high_source: String,
        /// Its offset, seconds.
        high_offset_s: f64,
        /// The bound, seconds.
        bound_s: f64,
    },
    /// Start-up: not yet `release-after` consecutive passed rounds.
    NoVerdictYet {
        /// Consecutive passed rounds so far.
        passed_rounds: u32,
        /// `release-after`.
        release_after: u32,
    },
    /// The round failed; the hold starts after `hold-after` of these in a row.
    RoundFailed {
        /// Consecutive failed rounds so far.
        failed_rounds: u32,
        /// `hold-after`.
        hold_after: u32,
    },
    /// In hold after `hold-after` failed rounds; released after
    /// `release-after` consecutive passed rounds.
    Held {
        /// Consecutive passed rounds since the last failure.
        passed_rounds: u32,
        /// `release-after`.
        release_after: u32,
    },
    /// The verdict's lease does not cover `now`.
    StaleVerdict {
        /// When the verdict was issued.
        issued_at: UnixMs,
        /// Its lease end.
        valid_until: UnixMs,
        /// The time it was read at.
        now: UnixMs,
    },
}

impl Reason {
    /// A stable kebab-case name for logs and metrics labels, e.g.
    /// `offset-exceeded` or `stale-verdict`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::CheckFailed { .. } => "check-failed",
            Self::NotChecked { .. } => "not-checked",
            Self::MalformedSample { .. } => "malformed-sample",
            Self::Unsynchronized { .. } => "unsynchronized",
            Self::OffsetExceeded { .. } => "offset-exceeded",
            Self::RootDistanceExceeded { .. } => "root-distance-exceeded",
            Self::LeapPending { .. } => "leap-pending",
            Self::NtsRequired { .. } => "nts-required",
            Self::NoUsableSource => "no-usable-source",
            Self::QuorumNotReached { .. } => "quorum-not-reached",
            Self::QuorumTie { .. } => "quorum-tie",
            Self::SourcesFailing { .. } => "sources-failing",
            Self::TooFewNtsSources { .. } => "too-few-nts-sources",
            Self::TooFewOperators { .. } => "too-few-operators",
            Self::SourcesDisagree { .. } => "sources-disagree",
            Self::NoVerdictYet { .. } => "no-verdict-yet",
            Self::RoundFailed { .. } => "round-failed",
            Self::Held { .. } => "held",
            Self::StaleVerdict { .. } => "stale-verdict",
        }
    }

    /// The source the reason is about, if it is about one.
    pub fn source(&self) -> Option<&str> {
        match self {
            Self::CheckFailed { source, .. }
            | Self::NotChecked { source }
            | Self::MalformedSample { source }
            | Self::Unsynchronized { source, .. }
            | Self::OffsetExceeded { source, .. }
            | Self::RootDistanceExceeded { source, .. }
            | Self::LeapPending { source, .. }
            | Self::NtsRequired { source } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CheckFailed { source, failure } => write!(f, "{source}: {failure}"),
            Self::NotChecked { source } => write!(f, "{source}: not checked this round"),
            Self::MalformedSample { source } => write!(f, "{source}: malformed sample"),
            Self::Unsynchronized {
                source,
                leap,
                stratum,
            } => write!(
                f,
                "{source}: unsynchronized (leap indicator {}, stratum {stratum})",
                leap.indicator()
            ),
            Self::OffsetExceeded {
                source,
                offset_s,
                max_s,
            } => write!(f, "{source}: offset {offset_s:+.6} s beyond ±{max_s:.6} s"),
            Self::RootDistanceExceeded {
                source,
                root_distance_s,
                max_s,
            } => write!(
                f,
                "{source}: root distance {root_distance_s:.6} s beyond {max_s:.6} s"
            ),
            Self::LeapPending { source, leap } => write!(
                f,
                "{source}: leap second pending (leap indicator {})",
                leap.indicator()
            ),
            Self::NtsRequired { source } => write!(f, "{source}: nts required but not used"),
            Self::NoUsableSource => f.write_str("no source had a usable result"),
            Self::QuorumNotReached { passed, required } => {
                write!(
                    f,
                    "quorum not reached: {passed} passed, {required} required"
                )
            }
            Self::QuorumTie { passed } => {
                write!(
                    f,
                    "quorum tie: {passed} passed and {passed} failed, tiebreak fail"
                )
            }
            Self::SourcesFailing { failed, configured } => {
                write!(f, "{failed} of {configured} sources failing")
            }
            Self::TooFewNtsSources { nts, required } => {
                write!(f, "{nts} nts sources passed, {required} required")
            }
            Self::TooFewOperators {
                operators,
                required,
            } => write!(
                f,
                "passing sources from {operators} operators, {required} required"
            ),
            Self::SourcesDisagree {
                low_source,
                low_offset_s,
                high_source,
                high_offset_s,
                bound_s,
            } => write!(
                f,
                "sources disagree: {low_source} {low_offset_s:+.6} s and {high_source} {high_offset_s:+.6} s differ by more than {bound_s:.6} s"
            ),
            Self::NoVerdictYet {
                passed_rounds,
                release_after,
            } => write!(
                f,
                "no verdict yet: {passed_rounds} of {release_after} passed rounds"
            ),
            Self::RoundFailed {
                failed_rounds,
                hold_after,
            } => write!(
                f,
                "round failed: {failed_rounds} of {hold_after} failed rounds before hold"
            ),
            Self::Held {
                passed_rounds,
                release_after,
            } => write!(
                f,
                "in hold: {passed_rounds} of {release_after} passed rounds to release"
            ),
            Self::StaleVerdict {
                issued_at,
                valid_until,
                now,
            } => write!(
                f,
                "stale verdict: valid from {issued_at} until {valid_until}, now {now}"
            ),
        }
    }
}
