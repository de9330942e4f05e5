//! What the server says about its own clock in every reply (the RFC 5905
//! system variables), in local-reference mode: the host clock is taken as
//! the reference at the configured stratum and reference id.
//!
//! Honest values:
//! - precision: measured at start-up as the smallest step seen between
//!   successive clock reads (at least the clock's resolution), in log₂ s;
//! - root delay 0 (the reference is local);
//! - root dispersion: the precision plus PHI (15 ppm) for each second since
//!   the reference time, which is refreshed every [`REFRESH`];
//! - leap "unsynchronized" and stratum 0 on the wire when the configured
//!   stratum is 16 (ntpd-rs's default `local-stratum`: no time to give).

use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use ntp_proto::{LeapIndicator, NtpShort, NtpTimestamp, ReferenceId, SystemInfo, UnixTime};

/// How often the reference time is refreshed.
pub const REFRESH: Duration = Duration::from_secs(16);
const PHI: f64 = 15e-6;

/// The shared, periodically refreshed system variables.
#[derive(Debug)]
pub struct SystemState {
    stratum: u8,
    reference_id: ReferenceId,
    precision: i8,
    current: RwLock<SystemInfo>,
}

impl SystemState {
    /// State for a local reference at `stratum` (1–16) named
    /// `reference_id`, with `precision` (log₂ s) if given, else measured.
    pub fn local(stratum: u8, reference_id: ReferenceId, precision: Option<i8>) -> Self {
        let precision = precision.unwrap_or_else(measure_precision);
        let state = Self {
            stratum,
            reference_id,
            precision,
            current: RwLock::new(info(stratum, reference_id, precision, now())),
        };
        state.refresh();
        state
    }

    /// The variables to put in a reply now.
    pub fn get(&self) -> SystemInfo {
        match self.current.read() {
            Ok(info) => *info,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Moves the reference time to now (called every [`REFRESH`]).
    pub fn refresh(&self) {
        let fresh = info(self.stratum, self.reference_id, self.precision, now());
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
    }

    /// The measured precision, log₂ s.
    pub fn precision(&self) -> i8 {
        self.precision
    }
}

fn info(
    stratum: u8,
    reference_id: ReferenceId,
    precision: i8,
    reference: NtpTimestamp,
) -> SystemInfo {
    let synced = stratum < 16;
    // Dispersion grows by PHI per second until the next refresh.
    let dispersion = 2f64.powi(i32::from(precision)) + PHI * REFRESH.as_secs_f64();
    SystemInfo {
        leap: if synced {
            LeapIndicator::NoWarning
        } else {
            LeapIndicator::Unsynchronized
        },
        stratum,
        precision,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::from_seconds_f64(dispersion),
        reference_id: if synced {
            reference_id
        } else {
            ReferenceId::NONE
        },
        reference_timestamp: if synced {
            reference
        } else {
            NtpTimestamp::ZERO
        },
    }
}

fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now()))
}

/// log₂ of the smallest non-zero step between successive clock reads.
fn measure_precision() -> i8 {
    let started = Instant::now();
    let mut smallest = f64::MAX;
    let mut last = SystemTime::now();
    while started.elapsed() < Duration::from_millis(5) {
        let next = SystemTime::now();
        if let Ok(step) = next.duration_since(last) {
            let s = step.as_secs_f64();
            if s > 0.0 && s < smallest {
                smallest = s;
            }
        }
        last = next;
    }
    if smallest == f64::MAX {
        return -20;
    }
    // A finite log2 of a small positive number; clamp into i8.
    smallest.log2().ceil().clamp(-32.0, 0.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_reference_values() {
        let s = SystemState::local(1, ReferenceId::from_ascii("XNON").unwrap(), None);
        let info = s.get();
        assert_eq!(info.stratum, 1);
        assert_eq!(info.leap, LeapIndicator::NoWarning);
        assert_eq!(info.reference_id.as_ascii(), Some("XNON"));
        // A modern clock reads in well under a millisecond.
        assert!(
            info.precision <= -10 && info.precision >= -32,
            "{}",
            info.precision
        );
        assert!(info.root_dispersion.to_seconds_f64() < 0.01);
        assert!(!info.reference_timestamp.is_zero());
    }

    #[test]
    fn stratum_16_is_unsynchronized() {
        let info = SystemState::local(16, ReferenceId::from_ascii("XNON").unwrap(), None).get();
        assert_eq!(info.leap, LeapIndicator::Unsynchronized);
        assert!(info.reference_timestamp.is_zero());
    }
}
