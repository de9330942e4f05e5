//! One sample from one source, and the on-wire calculation that produces it
//! from a client/server exchange (RFC 5905 §8, PROTOCOL.md §1.3).

use ntp_proto::{
    Header, KissCode, LeapIndicator, Mode, NtpDuration, NtpShort, NtpTimestamp, ReferenceId,
};

use crate::consts::{MAXDISP, PHI};

/// One offset/delay sample from one source, with what the source said about
/// itself in the same reply.
///
/// Offsets follow RFC 5905: `offset` is how far the source's clock is ahead
/// of ours, so a positive offset means our clock must be advanced.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Measurement {
    /// θ: the source's clock minus ours, `((T2 − T1) + (T3 − T4)) / 2`.
    pub offset: NtpDuration,
    /// δ: round-trip delay, `(T4 − T1) − (T3 − T2)`, at least the precision.
    pub delay: NtpDuration,
    /// ε₀: the sample's dispersion, `ρ_source + ρ_local + PHI·(T4 − T1)`.
    pub dispersion: NtpDuration,
    /// Local clock time at which the reply arrived (T4).
    pub time: NtpTimestamp,
    /// The source's stratum (1–15; 0 is never accepted).
    pub stratum: u8,
    /// The source's leap indicator.
    pub leap: LeapIndicator,
    /// The source's reference id.
    pub reference_id: ReferenceId,
    /// The source's root delay.
    pub root_delay: NtpShort,
    /// The source's root dispersion.
    pub root_dispersion: NtpShort,
    /// The poll exponent in the reply (the server echoes ours).
    pub poll: i8,
    /// The source's precision, log₂ seconds.
    pub precision: i8,
    /// Whether the reply was NTS-authenticated.
    pub nts: bool,
}

/// What the client knows about the exchange besides the reply itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Exchange {
    /// The value placed in the request's transmit field (random bits, per
    /// data minimization); the reply's origin must equal it.
    pub request_transmit: NtpTimestamp,
    /// T1: local clock time when the request left.
    pub t1: NtpTimestamp,
    /// T4: local clock time when the reply arrived.
    pub t4: NtpTimestamp,
    /// Transmit timestamp of the previous valid reply from this source, to
    /// detect duplicates and replays.
    pub last_reply_transmit: Option<NtpTimestamp>,
    /// Our clock's precision, log₂ seconds.
    pub local_precision: i8,
    /// Whether the reply was NTS-authenticated.
    pub nts: bool,
}

/// Why a reply was not turned into a [`Measurement`] (RFC 5905 §8 checks, in
/// the order they are applied).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnWireError {
    /// The reply is not in server mode.
    #[error("reply mode {0} is not server")]
    WrongMode(Mode),
    /// The reply's transmit timestamp is zero.
    #[error("zero transmit timestamp")]
    ZeroTransmit,
    /// The transmit timestamp equals the previous reply's: a duplicate or a
    /// replay.
    #[error("duplicate reply")]
    Duplicate,
    /// The origin timestamp is zero: the server has not seen our request.
    #[error("zero origin timestamp")]
    ZeroOrigin,
    /// The origin does not match what we sent: bogus or a stale reply.
    #[error("origin timestamp does not match the request")]
    BogusOrigin,
    /// A Kiss-o'-Death packet; hand the code to [`crate::Source::on_kiss`].
    #[error("kiss-o'-death {0}")]
    Kiss(KissCode),
    /// Leap indicator 3: the server is not synchronized.
    #[error("server is unsynchronized (leap indicator 3)")]
    Unsynchronized,
    /// Stratum 0 (without a kiss code) or 16 and above.
    #[error("server stratum {0} is not usable")]
    BadStratum(u8),
    /// `root delay / 2 + root dispersion` is MAXDISP (16 s) or more.
    #[error("server root distance is 16 s or more")]
    RootDistanceTooLarge,
    /// The reference time is after the transmit time.
    #[error("reference time is after transmit time")]
    ReferenceAfterTransmit,
}

impl Measurement {
    /// Computes a measurement from a server reply, applying the RFC 5905 §8
    /// checks (PROTOCOL.md §1.3) in order: mode, zero transmit, duplicate,
    /// origin, kiss code, leap 3, stratum, root distance, reference time.
    ///
    /// The origin check comes before the kiss check, so an off-path attacker
    /// who cannot see our random transmit value cannot kiss us.
    ///
    /// # Errors
    /// The first check that fails, as an [`OnWireError`]. On
    /// [`OnWireError::Kiss`] pass the code to [`crate::Source::on_kiss`].
    ///
    /// # Example
    /// PROTOCOL.md §5.4: T1 = 100.000, T2 = 100.060, T3 = 100.061,
    /// T4 = 100.021 gives θ = +0.050 s and δ = 0.020 s.
    /// ```
    /// use ntp_clock::{Exchange, Measurement};
    /// use ntp_proto::{Header, LeapIndicator, NtpDuration, NtpShort, NtpTimestamp,
    ///                 ReferenceId, SystemInfo};
    /// let at = |s: f64| NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0)
    ///     + NtpDuration::from_seconds_f64(s);
    /// let request = Header::client_request(6, 0x1234_5678_9abc_def0);
    /// let system = SystemInfo {
    ///     leap: LeapIndicator::NoWarning, stratum: 1, precision: -20,
    ///     root_delay: NtpShort::ZERO, root_dispersion: NtpShort::ZERO,
    ///     reference_id: ReferenceId::NONE, reference_timestamp: at(0.0),
    /// };
    /// let reply = Header::server_response(&request, &system, at(100.060), at(100.061));
    /// let exchange = Exchange {
    ///     request_transmit: request.transmit_timestamp,
    ///     t1: at(100.000), t4: at(100.021),
    ///     last_reply_transmit: None, local_precision: -20, nts: false,
    /// };
    /// let m = Measurement::from_reply(&exchange, &reply)?;
    /// assert!((m.offset.to_seconds_f64() - 0.050).abs() < 1e-6);
    /// assert!((m.delay.to_seconds_f64() - 0.020).abs() < 1e-6);
    /// # Ok::<(), ntp_clock::OnWireError>(())
    /// ```
    pub fn from_reply(exchange: &Exchange, reply: &Header) -> Result<Self, OnWireError> {
        if reply.mode != Mode::Server {
            return Err(OnWireError::WrongMode(reply.mode));
        }
        if reply.transmit_timestamp.is_zero() {
            return Err(OnWireError::ZeroTransmit);
        }
        if exchange.last_reply_transmit == Some(reply.transmit_timestamp) {
            return Err(OnWireError::Duplicate);
        }
        if reply.origin_timestamp.is_zero() {
            return Err(OnWireError::ZeroOrigin);
        }
        if reply.origin_timestamp != exchange.request_transmit {
            return Err(OnWireError::BogusOrigin);
        }
        if let Some(code) = reply.kiss_code() {
            return Err(OnWireError::Kiss(code));
        }
        if reply.leap == LeapIndicator::Unsynchronized {
            return Err(OnWireError::Unsynchronized);
        }
        if reply.stratum == 0 || reply.stratum >= ntp_proto::MAX_STRATUM {
            return Err(OnWireError::BadStratum(reply.stratum));
        }
        let root_distance =
            reply.root_delay.to_seconds_f64() / 2.0 + reply.root_dispersion.to_seconds_f64();
        if root_distance >= MAXDISP {
            return Err(OnWireError::RootDistanceTooLarge);
        }
        if reply
            .transmit_timestamp
            .is_before(reply.reference_timestamp)
        {
            return Err(OnWireError::ReferenceAfterTransmit);
        }

        // Each first-order difference goes to f64 before summing
        // (PROTOCOL.md §1.2), so the sum cannot overflow the 68-year range.
        let t1 = exchange.t1;
        let t4 = exchange.t4;
        let t2 = reply.receive_timestamp;
        let t3 = reply.transmit_timestamp;
        let a = t2.duration_since(t1).to_seconds_f64();
        let b = t3.duration_since(t4).to_seconds_f64();
        let round_trip = t4.duration_since(t1).to_seconds_f64();
        let server_hold = t3.duration_since(t2).to_seconds_f64();
        let local_precision = log2_seconds(exchange.local_precision);
        let offset = (a + b) / 2.0;
        let delay = (round_trip - server_hold).max(local_precision);
        let dispersion =
            log2_seconds(reply.precision) + local_precision + PHI * round_trip.max(0.0);
        Ok(Self {
            offset: NtpDuration::from_seconds_f64(offset),
            delay: NtpDuration::from_seconds_f64(delay),
            dispersion: NtpDuration::from_seconds_f64(dispersion),
            time: t4,
            stratum: reply.stratum,
            leap: reply.leap,
            reference_id: reply.reference_id,
            root_delay: reply.root_delay,
            root_dispersion: reply.root_dispersion,
            poll: reply.poll,
            precision: reply.precision,
            nts: exchange.nts,
        })
    }
}

/// 2^exp seconds, for precision and poll exponents.
pub(crate) fn log2_seconds(exp: i8) -> f64 {
    2f64.powi(i32::from(exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ntp_proto::SystemInfo;

    fn at(s: f64) -> NtpTimestamp {
        NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
    }

    fn exchange_and_reply() -> (Exchange, Header) {
        let request = Header::client_request(6, 0xdead_beef_0bad_f00d);
        let system = SystemInfo {
            leap: LeapIndicator::NoWarning,
            stratum: 2,
            precision: -20,
            root_delay: NtpShort::from_seconds_f64(0.01),
            root_dispersion: NtpShort::from_seconds_f64(0.002),
            reference_id: ReferenceId::from_ascii("GPS").unwrap(),
            reference_timestamp: at(50.0),
        };
        let reply = Header::server_response(&request, &system, at(100.060), at(100.061));
        let exchange = Exchange {
            request_transmit: request.transmit_timestamp,
            t1: at(100.0),
            t4: at(100.021),
            last_reply_transmit: None,
            local_precision: -20,
            nts: true,
        };
        (exchange, reply)
    }

    #[test]
    fn protocol_vector() {
        let (ex, reply) = exchange_and_reply();
        let m = Measurement::from_reply(&ex, &reply).unwrap();
        assert!((m.offset.to_seconds_f64() - 0.050).abs() < 1e-6);
        assert!((m.delay.to_seconds_f64() - 0.020).abs() < 1e-6);
        assert!(m.dispersion.to_seconds_f64() > 0.021 * PHI);
        assert_eq!(m.stratum, 2);
        assert!(m.nts);
        assert_eq!(m.time, at(100.021));
    }

    #[test]
    fn origin_mismatch() {
        let (ex, mut reply) = exchange_and_reply();
        reply.origin_timestamp = NtpTimestamp::from_bits(1);
        assert_eq!(
            Measurement::from_reply(&ex, &reply),
            Err(OnWireError::BogusOrigin)
        );
        reply.origin_timestamp = NtpTimestamp::ZERO;
        assert_eq!(
            Measurement::from_reply(&ex, &reply),
            Err(OnWireError::ZeroOrigin)
        );
    }

    #[test]
    fn zero_transmit_and_duplicate() {
        let (mut ex, mut reply) = exchange_and_reply();
        ex.last_reply_transmit = Some(reply.transmit_timestamp);
        assert_eq!(
            Measurement::from_reply(&ex, &reply),
            Err(OnWireError::Duplicate)
        );
        reply.transmit_timestamp = NtpTimestamp::ZERO;
        assert_eq!(
            Measurement::from_reply(&ex, &reply),
            Err(OnWireError::ZeroTransmit)
        );
    }

    #[test]
    fn leap_three_stratum_sixteen_and_reference_after_transmit() {
        let (ex, reply) = exchange_and_reply();
        let r = Header {
            leap: LeapIndicator::Unsynchronized,
            ..reply
        };
        assert_eq!(
            Measurement::from_reply(&ex, &r),
            Err(OnWireError::Unsynchronized)
        );
        let r = Header {
            stratum: 16,
            ..reply
        };
        assert_eq!(
            Measurement::from_reply(&ex, &r),
            Err(OnWireError::BadStratum(16))
        );
        let r = Header {
            reference_timestamp: at(200.0),
            ..reply
        };
        assert_eq!(
            Measurement::from_reply(&ex, &r),
            Err(OnWireError::ReferenceAfterTransmit)
        );
        let r = Header {
            root_dispersion: NtpShort::from_seconds_f64(16.5),
            ..reply
        };
        assert_eq!(
            Measurement::from_reply(&ex, &r),
            Err(OnWireError::RootDistanceTooLarge)
        );
    }

    #[test]
    fn kiss_is_reported_only_after_the_origin_matches() {
        let (ex, reply) = exchange_and_reply();
        let kod = Header {
            stratum: 0,
            leap: LeapIndicator::Unsynchronized,
            reference_id: KissCode::RATE.to_reference_id(),
            ..reply
        };
        assert_eq!(
            Measurement::from_reply(&ex, &kod),
            Err(OnWireError::Kiss(KissCode::RATE))
        );
        let spoofed = Header {
            origin_timestamp: NtpTimestamp::from_bits(7),
            ..kod
        };
        assert_eq!(
            Measurement::from_reply(&ex, &spoofed),
            Err(OnWireError::BogusOrigin)
        );
    }

    #[test]
    fn wrong_mode() {
        let (ex, reply) = exchange_and_reply();
        let r = Header {
            mode: Mode::Broadcast,
            ..reply
        };
        assert_eq!(
            Measurement::from_reply(&ex, &r),
            Err(OnWireError::WrongMode(Mode::Broadcast))
        );
    }
}
