//! What the server says about its own clock in every reply (the RFC 5905
//! system variables).
//!
//! Two modes:
//!
//! - **local reference** (no `[[source]]`): the host clock is taken as the
//!   reference at the configured stratum and reference id;
//! - **upstream** (`[[source]]`s configured): the sync engine
//!   ([`ntp_io::sync`]) follows the sources and [`SystemState::follow`]
//!   advertises what it found — stratum = the system peer's + 1, its reference
//!   id (the upstream's address), its leap indicator, and the root delay and
//!   dispersion of the combined estimate — but only while the served time is
//!   **trustworthy**: the engine is synchronised (a majority of sources
//!   agree) *and* the system clock, which is what the server serves and which
//!   it never steers, is within `max-offset-ms` of the sources' time. The
//!   system clock's offset is added to the root dispersion. Until then, and
//!   whenever trust is lost, the server serves the local-reference values:
//!   with the default `local-stratum = 16` that is "unsynchronised" (leap 3,
//!   stratum 0 on the wire); an operator who sets a lower `local-stratum`
//!   chooses it as the fallback.
//!
//! Local-reference values:
//! Honest values:
//! - precision: measured at start-up as the smallest step seen between
//!   successive clock reads (at least the clock's resolution), in log₂ s;
//! - root delay 0 (the reference is local);
//! - root dispersion: the precision plus PHI (15 ppm) for each second since
//!   the reference time, which is refreshed every [`REFRESH`];
//! - leap "unsynchronized" and stratum 0 on the wire when the configured
//!   stratum is 16 (ntpd-rs's default `local-stratum`: no time to give).

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ntp_io::sync::Status;
use ntp_proto::{
    LeapIndicator, NtpDuration, NtpShort, NtpTimestamp, ReferenceId, SystemInfo, UnixTime,
};

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
    /// Upstream mode: the largest trustworthy offset of the system clock.
    max_offset: Option<f64>,
    /// Upstream mode: whether the engine's values are served.
    trusted: AtomicBool,
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
            max_offset: None,
            trusted: AtomicBool::new(false),
        };
        state.refresh();
        state
    }

    /// State for upstream mode: serves the local-reference values of
    /// `fallback_stratum` and `reference_id` until [`SystemState::follow`]
    /// finds the engine trustworthy, the system clock within `max_offset` of
    /// the sources.
    pub fn upstream(
        fallback_stratum: u8,
        reference_id: ReferenceId,
        precision: Option<i8>,
        max_offset: Duration,
    ) -> Self {
        Self {
            max_offset: Some(max_offset.as_secs_f64()),
            ..Self::local(fallback_stratum, reference_id, precision)
        }
    }

    /// Whether the engine's values are being served (upstream mode).
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Relaxed)
    }

    /// Upstream mode: takes the engine's latest status (see the module docs
    /// for when it is trusted). Does nothing in local-reference mode.
    pub fn follow(&self, status: &Status) {
        let Some(max_offset) = self.max_offset else {
            return;
        };
        let verdict = trust(status, max_offset);
        let fresh = match (&verdict, status.system_info) {
            (Ok(()), Some(engine)) => {
                let dispersion = engine.root_dispersion.to_seconds_f64() + status.offset.abs();
                let reference_timestamp = if engine.reference_timestamp.is_zero() {
                    now()
                } else {
                    // Engine time is the system clock plus the offset.
                    engine.reference_timestamp - NtpDuration::from_seconds_f64(status.offset)
                };
                SystemInfo {
                    precision: self.precision,
                    root_dispersion: NtpShort::from_seconds_f64(dispersion),
                    reference_timestamp,
                    ..engine
                }
            }
            _ => info(self.stratum, self.reference_id, self.precision, now()),
        };
        let trusted = verdict.is_ok() && status.system_info.is_some();
        if self.trusted.swap(trusted, Ordering::Relaxed) != trusted {
            match &verdict {
                Ok(()) => tracing::info!(
                    stratum = fresh.stratum,
                    reference = %ntp_io::sync::reference_id_text(fresh.reference_id),
                    offset = status.offset,
                    "synchronised to the sources: serving their time"
                ),
                Err(why) => tracing::warn!(
                    stratum = fresh.stratum,
                    "time not trustworthy ({why}): serving the local-reference values"
                ),
            }
        }
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
    }

    /// The variables to put in a reply now.
    pub fn get(&self) -> SystemInfo {
        match self.current.read() {
            Ok(info) => *info,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Moves the reference time to now (called every [`REFRESH`]); in
    /// upstream mode only while the local values are served.
    pub fn refresh(&self) {
        if self.max_offset.is_some() && self.is_trusted() {
            return;
        }
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

/// Whether the engine's status can be served, or why not.
fn trust(status: &Status, max_offset: f64) -> Result<(), String> {
    if !status.synchronized {
        return Err(status
            .reason
            .clone()
            .unwrap_or_else(|| "not synchronised".into()));
    }
    if status.stratum >= ntp_proto::MAX_STRATUM || status.leap == 3 {
        return Err("the sources are unsynchronised".into());
    }
    if !status.offset.is_finite() || status.offset.abs() > max_offset {
        return Err(format!(
            "the system clock is {:+.6} s from the sources, beyond max-offset-ms",
            status.offset
        ));
    }
    Ok(())
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

    fn engine_status(synchronized: bool, offset: f64) -> Status {
        let info = SystemInfo {
            leap: LeapIndicator::NoWarning,
            stratum: 2,
            precision: -20,
            root_delay: NtpShort::from_seconds_f64(0.001),
            root_dispersion: NtpShort::from_seconds_f64(0.002),
            reference_id: ReferenceId::from_bytes([127, 0, 0, 1]),
            reference_timestamp: now(),
        };
        Status {
            synchronized,
            offset,
            stratum: 2,
            leap: 0,
            system_info: Some(info),
            ..Status::default()
        }
    }

    #[test]
    fn upstream_mode_follows_a_trustworthy_engine_only() {
        let s = SystemState::upstream(
            16,
            ReferenceId::from_ascii("XNON").unwrap(),
            Some(-20),
            Duration::from_millis(128),
        );
        assert_eq!(s.get().leap, LeapIndicator::Unsynchronized);
        s.follow(&engine_status(true, 0.0005));
        let info = s.get();
        assert!(s.is_trusted());
        assert_eq!(info.stratum, 2);
        assert_eq!(info.leap, LeapIndicator::NoWarning);
        assert_eq!(info.reference_id.to_bytes(), [127, 0, 0, 1]);
        assert!((info.root_dispersion.to_seconds_f64() - 0.0025).abs() < 1e-4);
        // The timer does not overwrite the engine's values.
        s.refresh();
        assert_eq!(s.get().stratum, 2);
        // A system clock 2 s off is not served as stratum 2...
        s.follow(&engine_status(true, 2.0));
        assert!(!s.is_trusted());
        assert_eq!(s.get().leap, LeapIndicator::Unsynchronized);
        assert_eq!(s.get().stratum, 16);
        // ...nor is an unsynchronised engine.
        s.follow(&engine_status(false, 0.0));
        assert_eq!(s.get().leap, LeapIndicator::Unsynchronized);
        // A configured local stratum is the fallback.
        let s = SystemState::upstream(
            3,
            ReferenceId::from_ascii("XNON").unwrap(),
            Some(-20),
            Duration::from_millis(128),
        );
        s.follow(&engine_status(false, 0.0));
        assert_eq!(s.get().stratum, 3);
    }

    #[test]
    fn local_mode_ignores_the_engine() {
        let s = SystemState::local(16, ReferenceId::from_ascii("XNON").unwrap(), Some(-20));
        s.follow(&engine_status(true, 0.0));
        assert_eq!(s.get().stratum, 16);
    }

    #[test]
    fn stratum_16_is_unsynchronized() {
        let info = SystemState::local(16, ReferenceId::from_ascii("XNON").unwrap(), None).get();
        assert_eq!(info.leap, LeapIndicator::Unsynchronized);
        assert!(info.reference_timestamp.is_zero());
    }
}
