//! What the server's timestamps are worth: the four-timestamp view of each
//! answered request.
//!
//! The round trip the generator measures (`T4 − T1`) includes the time a
//! request waited in the server, in its socket queue and while it was being
//! handled. An NTP client does not count that wait: it subtracts the server's
//! own `T3 − T2` (RFC 5905 §8), so a server that stamps `T2` on arrival and
//! `T3` as the reply leaves can queue without harming its clients. What does
//! harm them is a gap between the stamp and the real event: a `T3` written
//! some time before the datagram actually leaves lengthens the return path
//! only, and the client's offset is off by half that gap.
//!
//! For every answered request the generator therefore also keeps:
//! - **residence**, `T3 − T2`: the wait the server admits to;
//! - **delay**, `(T4 − T1) − (T3 − T2)`: the round trip as a client computes
//!   it, which is the time outside the server's two stamps;
//! - **reply lag**, `T4 − T3`: from the server's transmit stamp to the reply's
//!   arrival here. On loopback the kernel delivers a datagram, and stamps its
//!   arrival, inside the sender's own send call, so this is the time between
//!   the server writing `T3` and the reply actually leaving, plus the
//!   kernel's send path (a microsecond or two). It depends on the server
//!   alone, not on how the generator sends;
//! - **request lag**, `T2 − T1`: the same for the request. On loopback the
//!   server's kernel stamps the request's arrival inside the generator's
//!   `sendmmsg`, so this is how long after `T1` the generator's kernel got to
//!   that datagram of the batch: the generator's own stamping error;
//! - **offset**, `((T2 − T1) + (T3 − T4)) / 2`: the client's clock offset.
//!   On loopback the server reads the same system clock as the generator, so
//!   the true offset is zero and what is measured is the error that the two
//!   ends' stamping adds. It is reported as the mean (signed, the bias) and as
//!   percentiles of its magnitude. Against a remote server it is the real
//!   offset between the two clocks, and only its spread is about stamping.
//!   It is half of request lag minus reply lag, so on loopback its mean
//!   carries the generator's own lag (about +20 µs with full batches of 32)
//!   for every server alike; the reply lag is the server's part alone.
//!
//! `T1` is read just before the generator's `sendmmsg` and `T4` is the
//! kernel's receive stamp, so the generator's own stamping errors are part of
//! every figure, equally for every server measured with it.

use ntp_proto::{NtpTimestamp, UnixTime};

use crate::histogram::Histogram;

/// The figures of one answered request, nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// `T3 − T2`.
    pub residence_ns: i64,
    /// `(T4 − T1) − (T3 − T2)`.
    pub delay_ns: i64,
    /// `T2 − T1`.
    pub request_lag_ns: i64,
    /// `T4 − T3`.
    pub reply_lag_ns: i64,
    /// `((T2 − T1) + (T3 − T4)) / 2`.
    pub offset_ns: i64,
}

impl Sample {
    /// The figures for a request sent at `t1_ns` and answered at `t4_ns`
    /// (Unix nanoseconds, this host's clock) by a reply that carries the
    /// server's receive time `t2` and transmit time `t3`.
    pub fn new(t1_ns: u64, t2: NtpTimestamp, t3: NtpTimestamp, t4_ns: u64) -> Self {
        let t1 = ntp_time(t1_ns);
        let t4 = ntp_time(t4_ns);
        let residence_ns = t3.duration_since(t2).to_nanos();
        let round_trip = i64::try_from(t4_ns.saturating_sub(t1_ns)).unwrap_or(i64::MAX);
        let outbound = t2.duration_since(t1).to_nanos();
        let inbound = t3.duration_since(t4).to_nanos();
        Self {
            residence_ns,
            delay_ns: round_trip.saturating_sub(residence_ns),
            request_lag_ns: outbound,
            reply_lag_ns: inbound.saturating_neg(),
            offset_ns: outbound.saturating_add(inbound) / 2,
        }
    }
}

fn ntp_time(unix_ns: u64) -> NtpTimestamp {
    let seconds = i64::try_from(unix_ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(unix_ns % 1_000_000_000).unwrap_or(0);
    NtpTimestamp::from_unix(UnixTime::new(seconds, nanos))
}

/// Histograms of the figures over a run (no allocation per sample).
#[derive(Clone, Debug, Default)]
pub struct Timing {
    /// `T3 − T2`, negative values counted as zero.
    pub residence: Histogram,
    /// The client's delay, negative values counted as zero.
    pub delay: Histogram,
    /// `T2 − T1`, negative values counted as zero.
    pub request_lag: Histogram,
    /// `T4 − T3`, negative values counted as zero.
    pub reply_lag: Histogram,
    /// `|offset|`.
    pub offset_abs: Histogram,
    offset_sum_ns: i128,
    /// Replies whose `T3` is before their `T2` (a server that does not
    /// stamp honestly, or whose clock stepped).
    pub negative_residence: u64,
}

impl Timing {
    /// Adds one answered request.
    pub fn record(&mut self, sample: Sample) {
        if sample.residence_ns < 0 {
            self.negative_residence += 1;
        }
        self.residence
            .record(u64::try_from(sample.residence_ns).unwrap_or(0));
        self.delay
            .record(u64::try_from(sample.delay_ns).unwrap_or(0));
        self.request_lag
            .record(u64::try_from(sample.request_lag_ns).unwrap_or(0));
        self.reply_lag
            .record(u64::try_from(sample.reply_lag_ns).unwrap_or(0));
        self.offset_abs.record(sample.offset_ns.unsigned_abs());
        self.offset_sum_ns += i128::from(sample.offset_ns);
    }

    /// Mean signed offset in microseconds, `None` without samples.
    pub fn offset_mean_us(&self) -> Option<f64> {
        let n = self.offset_abs.len();
        (n > 0).then(|| self.offset_sum_ns as f64 / n as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000_000_000; // 2027, Unix ns

    fn at(ns: u64) -> NtpTimestamp {
        ntp_time(ns)
    }

    #[test]
    fn an_honest_server_on_one_clock_has_zero_offset() {
        // 10 µs each way on the wire, 50 µs in the server.
        let s = Sample::new(T0, at(T0 + 10_000), at(T0 + 60_000), T0 + 70_000);
        assert!((s.residence_ns - 50_000).abs() <= 1, "{s:?}");
        assert!((s.delay_ns - 20_000).abs() <= 1, "{s:?}");
        assert!(s.offset_ns.abs() <= 1, "{s:?}");
        assert!((s.reply_lag_ns - 10_000).abs() <= 1, "{s:?}");
        assert!((s.request_lag_ns - 10_000).abs() <= 1, "{s:?}");
    }

    #[test]
    fn a_transmit_stamp_taken_early_shows_as_half_the_gap() {
        // The server wrote T3 at +20 µs but the reply left at +60 µs.
        let s = Sample::new(T0, at(T0 + 10_000), at(T0 + 20_000), T0 + 70_000);
        assert!((s.residence_ns - 10_000).abs() <= 1, "{s:?}");
        assert!((s.delay_ns - 60_000).abs() <= 1, "{s:?}");
        assert!((s.offset_ns + 20_000).abs() <= 1, "{s:?}");
        assert!((s.reply_lag_ns - 50_000).abs() <= 1, "{s:?}");
    }

    #[test]
    fn a_clock_ahead_shows_as_positive_offset() {
        // Server clock 1 ms ahead, 10 µs each way, 5 µs inside.
        let ahead = 1_000_000;
        let s = Sample::new(
            T0,
            at(T0 + 10_000 + ahead),
            at(T0 + 15_000 + ahead),
            T0 + 25_000,
        );
        assert!((s.offset_ns - ahead as i64).abs() <= 1, "{s:?}");
        assert!((s.delay_ns - 20_000).abs() <= 1, "{s:?}");
    }

    #[test]
    fn timing_keeps_bias_and_magnitude() {
        let mut t = Timing::default();
        assert_eq!(t.offset_mean_us(), None);
        for offset in [-4_000i64, -2_000, 2_000, -4_000] {
            t.record(Sample {
                residence_ns: -1,
                delay_ns: 1_000,
                request_lag_ns: 500,
                reply_lag_ns: 500,
                offset_ns: offset,
            });
        }
        assert_eq!(t.offset_mean_us(), Some(-2.0));
        assert_eq!(t.offset_abs.max(), 4_000);
        assert_eq!(t.negative_residence, 4);
        assert_eq!(t.residence.max(), 0);
    }
}
