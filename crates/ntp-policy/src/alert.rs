//! Alert events.

use core::fmt;

use crate::UnixMs;

/// The alert codes. [`AlertKind::as_str`] gives the exact code to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// `NTP_COMM_FAILED`: a source started failing without giving a usable
    /// sample (unreachable, timeout, kiss-o'-death, unsynchronized, …).
    NtpCommFailed,
    /// `NTP_THRESHOLD_REACHED`: a failing source's offset or root distance
    /// went beyond its threshold.
    NtpThresholdReached,
    /// `NTS_AUTH_FAILED`: NTS authentication or key establishment failed
    /// for a source.
    NtsAuthFailed,
    /// `SOURCES_DISAGREE`: passing sources' offsets spread beyond the bound.
    SourcesDisagree,
    /// `HOLD_ENTERED`: `hold-after` failed rounds in a row; UNTRUSTED.
    HoldEntered,
    /// `HOLD_RELEASED`: `release-after` passed rounds in a row after a hold.
    HoldReleased,
    /// `LEAP_PENDING`: a source announces a leap second.
    LeapPending,
}

impl AlertKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::NtpCommFailed,
        Self::NtpThresholdReached,
        Self::NtsAuthFailed,
        Self::SourcesDisagree,
        Self::HoldEntered,
        Self::HoldReleased,
        Self::LeapPending,
    ];

    /// The code: `NTP_COMM_FAILED`, `NTP_THRESHOLD_REACHED`,
    /// `NTS_AUTH_FAILED`, `SOURCES_DISAGREE`, `HOLD_ENTERED`,
    /// `HOLD_RELEASED` or `LEAP_PENDING`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NtpCommFailed => "NTP_COMM_FAILED",
            Self::NtpThresholdReached => "NTP_THRESHOLD_REACHED",
            Self::NtsAuthFailed => "NTS_AUTH_FAILED",
            Self::SourcesDisagree => "SOURCES_DISAGREE",
            Self::HoldEntered => "HOLD_ENTERED",
            Self::HoldReleased => "HOLD_RELEASED",
            Self::LeapPending => "LEAP_PENDING",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named number behind an alert, e.g. `offset_s = 0.25`. Names end in
/// their unit (`_s` for seconds) or are counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// The figure's name, snake_case.
    pub name: &'static str,
    /// Its value.
    pub value: f64,
}

impl Figure {
    /// A figure.
    pub const fn new(name: &'static str, value: f64) -> Self {
        Self { name, value }
    }
}

/// An alert event: what happened, to which source, with the figures that
/// caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The code.
    pub kind: AlertKind,
    /// The source concerned; `None` for round-level alerts (hold,
    /// disagreement: the two sources are in the message and figures).
    pub source: Option<String>,
    /// The figures that caused it.
    pub figures: Vec<Figure>,
    /// A lowercase sentence for humans.
    pub message: String,
    /// The `now` of the round that raised it.
    pub at: UnixMs,
}

impl Alert {
    /// The figure called `name`, if present.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(source) = &self.source {
            write!(f, " [{source}]")?;
        }
        write!(f, ": {}", self.message)?;
        for fig in &self.figures {
            write!(f, " {}={}", fig.name, fig.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let codes: Vec<&str> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            codes,
            [
                "NTP_COMM_FAILED",
                "NTP_THRESHOLD_REACHED",
                "NTS_AUTH_FAILED",
                "SOURCES_DISAGREE",
                "HOLD_ENTERED",
                "HOLD_RELEASED",
                "LEAP_PENDING"
            ]
        );
        let a = Alert {
            kind: AlertKind::NtpThresholdReached,
            source: Some("a".into()),
            figures: vec![Figure::new("offset_s", 0.5)],
            message: "offset beyond threshold".into(),
            at: UnixMs(0),
        };
        assert_eq!(a.figure("offset_s"), Some(0.5));
        assert_eq!(
            a.to_string(),
            "NTP_THRESHOLD_REACHED [a]: offset beyond threshold offset_s=0.5"
        );
    }
}
