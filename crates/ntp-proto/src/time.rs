//! NTP time formats (RFC 5905 §6) and their conversion to Unix time.
//!
//! Three newtypes carry the wire formats:
//!
//! - [`NtpTimestamp`]: the 64-bit 32.32 timestamp. It has no era: the same bits
//!   recur every 2³² seconds (about 136 years), so it only orders and
//!   subtracts correctly against another timestamp that is within 68 years of
//!   it. It deliberately has no `Ord`; use [`NtpTimestamp::is_before`].
//! - [`NtpShort`]: the unsigned 16.16 short format of root delay and dispersion.
//! - [`NtpDuration`]: a signed 32.32 span, the result of subtracting two
//!   timestamps with wrapping arithmetic, which is correct across the 2036
//!   rollover (era 0 → era 1).
//!
//! The era is chosen only when a timestamp is turned into an absolute date:
//! [`NtpTimestamp::to_unix_near`] picks the era that lands closest to a pivot
//! (normally the local clock), and [`NtpTimestamp::to_unix_rfc4330`] applies
//! the pivot-free RFC 4330 rule. [`UnixTime`] is the absolute time on the
//! other side and can be printed as an RFC 3339 UTC date without any calendar
//! dependency.

use core::fmt;
use core::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01):
/// 2 208 988 800 (RFC 5905 Figure 4).
pub const UNIX_OFFSET_SECONDS: i64 = 2_208_988_800;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const FRACTION_SCALE: f64 = 4_294_967_296.0; // 2^32

/// A 64-bit NTP timestamp: 32 bits of seconds and 32 bits of fraction since
/// the start of the timestamp's (unknown) era (RFC 5905 §6).
///
/// The value 0 means "unknown" on the wire (an unset origin, say).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp(u64);

impl NtpTimestamp {
    /// The all-zero timestamp, which the wire uses for "unknown".
    pub const ZERO: Self = Self(0);

    /// A timestamp from its raw 64-bit wire value.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw 64-bit wire value.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// A timestamp from whole seconds and a fraction in units of 2⁻³² s.
    pub const fn from_seconds_and_fraction(seconds: u32, fraction: u32) -> Self {
        Self(((seconds as u64) << 32) | fraction as u64)
    }

    /// The seconds part (seconds since the start of the era).
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The fraction part, in units of 2⁻³² s.
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Whether this is the zero ("unknown") timestamp.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The timestamp for an absolute Unix time. The era is dropped: times in
    /// era 1 (from 2036-02-07T06:28:16Z) wrap to small second values, as on
    /// the wire.
    pub fn from_unix(time: UnixTime) -> Self {
        let seconds = time.seconds.wrapping_add(UNIX_OFFSET_SECONDS) as u32;
        Self::from_seconds_and_fraction(seconds, 0) + NtpDuration::from_nanos(time.nanos as i64)
    }

    /// The absolute time this timestamp denotes, choosing the era that puts it
    /// nearest to `pivot` (RFC 5905 §6: "the era … nearest the local clock").
    ///
    /// This is exact for any timestamp within 68 years of the pivot, which is
    /// what makes the 2036 rollover harmless.
    pub fn to_unix_near(self, pivot: UnixTime) -> UnixTime {
        let pivot_ts = Self::from_unix(pivot);
        pivot + self.duration_since(pivot_ts)
    }

    /// The absolute time under the RFC 4330 §3 rule that needs no clock: a
    /// timestamp with the most significant bit set is in 1968–2036 (era 0),
    /// one with it clear is in 2036–2104 (era 1).
    pub fn to_unix_rfc4330(self) -> UnixTime {
        let era: i64 = if self.seconds() & 0x8000_0000 != 0 {
            0
        } else {
            1
        };
        let ntp_seconds = (era << 32) + i64::from(self.seconds());
        UnixTime::new(ntp_seconds - UNIX_OFFSET_SECONDS, 0)
            + NtpDuration::from_bits(i64::from(self.fraction()))
    }

    /// `self − earlier` as a signed span, computed with wrapping arithmetic.
    ///
    /// Correct whenever the two timestamps are within 68 years of each other,
    /// including across an era boundary (PROTOCOL.md §1.2).
    pub const fn duration_since(self, earlier: Self) -> NtpDuration {
        NtpDuration(self.0.wrapping_sub(earlier.0) as i64)
    }

    /// Whether `self` is strictly before `other`, under the same
    /// within-68-years assumption as [`NtpTimestamp::duration_since`].
    pub const fn is_before(self, other: Self) -> bool {
        self.duration_since(other).0 < 0
    }
}

impl fmt::Debug for NtpTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtpTimestamp({self})")
    }
}

/// Prints the raw value as `ssssssss.ffffffff` in hex, as ntpq and Wireshark do.
impl fmt::Display for NtpTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.seconds(), self.fraction())
    }
}

impl Add<NtpDuration> for NtpTimestamp {
    type Output = Self;
    fn add(self, rhs: NtpDuration) -> Self {
        Self(self.0.wrapping_add(rhs.0 as u64))
    }
}

impl AddAssign<NtpDuration> for NtpTimestamp {
    fn add_assign(&mut self, rhs: NtpDuration) {
        *self = *self + rhs;
    }
}

impl Sub<NtpDuration> for NtpTimestamp {
    type Output = Self;
    fn sub(self, rhs: NtpDuration) -> Self {
        Self(self.0.wrapping_sub(rhs.0 as u64))
    }
}

impl SubAssign<NtpDuration> for NtpTimestamp {
    fn sub_assign(&mut self, rhs: NtpDuration) {
        *self = *self - rhs;
    }
}

/// Wrapping difference; see [`NtpTimestamp::duration_since`].
impl Sub for NtpTimestamp {
    type Output = NtpDuration;
    fn sub(self, rhs: Self) -> NtpDuration {
        self.duration_since(rhs)
    }
}

/// A signed span of time in 32.32 fixed point (2⁻³² s resolution, ±68 years).
///
/// Arithmetic on durations saturates rather than wraps, so an absurd value
/// from the network stays absurd instead of turning into a plausible one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpDuration(i64);

impl NtpDuration {
    /// No time at all.
    pub const ZERO: Self = Self(0);
    /// The largest representable span (just under 2³¹ s).
    pub const MAX: Self = Self(i64::MAX);
    /// The most negative representable span (−2³¹ s).
    pub const MIN: Self = Self(i64::MIN);
    /// One second.
    pub const ONE_SECOND: Self = Self(1 << 32);

    /// A span from its raw signed 32.32 value.
    pub const fn from_bits(bits: i64) -> Self {
        Self(bits)
    }

    /// The raw signed 32.32 value.
    pub const fn to_bits(self) -> i64 {
        self.0
    }

    /// A span of whole seconds, saturating at the representable range.
    pub const fn from_seconds(seconds: i64) -> Self {
        if seconds >= 1 << 31 {
            Self::MAX
        } else if seconds < -(1 << 31) {
            Self::MIN
        } else {
            Self(seconds << 32)
        }
    }

    /// A span of nanoseconds, rounded to the nearest 2⁻³² s and saturating.
    pub const fn from_nanos(nanos: i64) -> Self {
        let whole = nanos.div_euclid(NANOS_PER_SECOND as i64);
        let rest = nanos.rem_euclid(NANOS_PER_SECOND as i64) as u64;
        let fraction = ((rest << 32) + NANOS_PER_SECOND / 2) / NANOS_PER_SECOND;
        let whole = Self::from_seconds(whole);
        whole.saturating_add(Self(fraction as i64))
    }

    /// The span in nanoseconds, rounded toward negative infinity.
    pub const fn to_nanos(self) -> i64 {
        // i128 keeps the full range exact: |self| < 2^63, times 1e9 < 2^93.
        ((self.0 as i128 * NANOS_PER_SECOND as i128) >> 32) as i64
    }

    /// A span from floating-point seconds; NaN gives zero, out-of-range
    /// values saturate.
    pub fn from_seconds_f64(seconds: f64) -> Self {
        // `as` from f64 to i64 saturates and maps NaN to 0.
        Self((seconds * FRACTION_SCALE) as i64)
    }

    /// The span in floating-point seconds.
    pub fn to_seconds_f64(self) -> f64 {
        self.0 as f64 / FRACTION_SCALE
    }

    /// The absolute value, saturating at [`NtpDuration::MAX`].
    pub const fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    /// Whether the span is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Saturating addition.
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// Saturating subtraction.
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// Half the span, rounded toward negative infinity.
    pub const fn half(self) -> Self {
        Self(self.0 >> 1)
    }
}

impl fmt::Debug for NtpDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtpDuration({self})")
    }
}

/// Prints seconds with nanosecond precision and a sign, e.g. `+0.000123456s`.
impl fmt::Display for NtpDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.to_nanos();
        let sign = if nanos < 0 { '-' } else { '+' };
        let abs = nanos.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:09}s",
            abs / NANOS_PER_SECOND,
            abs % NANOS_PER_SECOND
        )
    }
}

impl Add for NtpDuration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub for NtpDuration {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        self.saturating_sub(rhs)
    }
}

impl Neg for NtpDuration {
    type Output = Self;
    fn neg(self) -> Self {
        Self(self.0.saturating_neg())
    }
}

/// The 32-bit NTP short format: unsigned 16.16 seconds (RFC 5905 §6), used for
/// root delay and root dispersion.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpShort(u32);

impl NtpShort {
    /// Zero seconds.
    pub const ZERO: Self = Self(0);
    /// The largest value, just under 65536 s.
    pub const MAX: Self = Self(u32::MAX);

    /// A value from its raw wire bits.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw wire bits.
    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// A value from floating-point seconds, clamped to `[0, MAX]` (NaN → 0).
    pub fn from_seconds_f64(seconds: f64) -> Self {
        // `as` from f64 to u32 saturates at both ends and maps NaN to 0.
        Self((seconds * 65_536.0) as u32)
    }

    /// The value in floating-point seconds.
    pub fn to_seconds_f64(self) -> f64 {
        f64::from(self.0) / 65_536.0
    }

    /// The value as a duration (exact).
    pub const fn to_duration(self) -> NtpDuration {
        NtpDuration((self.0 as i64) << 16)
    }

    /// The nearest short value for a duration, clamped to `[0, MAX]`.
    pub const fn from_duration(duration: NtpDuration) -> Self {
        let bits = duration.0 >> 16;
        if bits < 0 {
            Self::ZERO
        } else if bits > u32::MAX as i64 {
            Self::MAX
        } else {
            Self(bits as u32)
        }
    }
}

impl fmt::Debug for NtpShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtpShort({self})")
    }
}

/// Prints seconds with microsecond precision, e.g. `0.001465s`.
impl fmt::Display for NtpShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = (u64::from(self.0) * 1_000_000 + 32_768) >> 16;
        write!(f, "{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
    }
}

/// An absolute time as seconds and nanoseconds since the Unix epoch
/// (1970-01-01T00:00:00Z), ignoring leap seconds as POSIX does.
///
/// `nanos` is always below 1 000 000 000.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct UnixTime {
    seconds: i64,
    nanos: u32,
}

impl UnixTime {
    /// The Unix epoch.
    pub const EPOCH: Self = Self {
        seconds: 0,
        nanos: 0,
    };

    /// A time from seconds and nanoseconds; nanoseconds of a second or more
    /// carry into the seconds.
    pub const fn new(seconds: i64, nanos: u32) -> Self {
        let carry = (nanos / NANOS_PER_SECOND as u32) as i64;
        Self {
            seconds: seconds.saturating_add(carry),
            nanos: nanos % NANOS_PER_SECOND as u32,
        }
    }

    /// Whole seconds since the Unix epoch (negative before 1970).
    pub const fn seconds(self) -> i64 {
        self.seconds
    }

    /// Nanoseconds within the second, below 1 000 000 000.
    pub const fn nanos(self) -> u32 {
        self.nanos
    }

    /// The time as floating-point seconds since the Unix epoch.
    pub fn to_seconds_f64(self) -> f64 {
        self.seconds as f64 + f64::from(self.nanos) / 1e9
    }

    /// The time a `SystemTime` denotes.
    #[cfg(feature = "std")]
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => Self::new(
                i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                after.subsec_nanos(),
            ),
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                if before.subsec_nanos() == 0 {
                    Self::new(-secs, 0)
                } else {
                    Self::new(-secs - 1, 1_000_000_000 - before.subsec_nanos())
                }
            }
        }
    }

    /// The calendar date and time of day in UTC (proleptic Gregorian).
    pub const fn to_civil(self) -> CivilDateTime {
        let days = self.seconds.div_euclid(86_400);
        let secs_of_day = self.seconds.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days, valid over the whole i64 day range
        // that fits after the shift below.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
        CivilDateTime {
            year,
            month,
            day,
            hour: (secs_of_day / 3_600) as u8,
            minute: (secs_of_day / 60 % 60) as u8,
            second: (secs_of_day % 60) as u8,
            nanos: self.nanos,
        }
    }
}

impl Add<NtpDuration> for UnixTime {
    type Output = Self;
    fn add(self, rhs: NtpDuration) -> Self {
        let nanos = i128::from(self.seconds) * NANOS_PER_SECOND as i128
            + i128::from(self.nanos)
            + i128::from(rhs.to_nanos());
        let seconds = nanos.div_euclid(NANOS_PER_SECOND as i128);
        let seconds =
            i64::try_from(seconds).unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX });
        Self::new(seconds, nanos.rem_euclid(NANOS_PER_SECOND as i128) as u32)
    }
}

impl Sub for UnixTime {
    type Output = NtpDuration;
    /// The span between two absolute times, saturating at ±68 years.
    fn sub(self, rhs: Self) -> NtpDuration {
        let nanos = (i128::from(self.seconds) - i128::from(rhs.seconds)) * NANOS_PER_SECOND as i128
            + i128::from(self.nanos)
            - i128::from(rhs.nanos);
        let nanos = i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
        NtpDuration::from_nanos(nanos)
    }
}

/// Prints the time as an RFC 3339 UTC date with nanoseconds.
impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_civil().fmt(f)
    }
}

/// A UTC calendar date and time of day, as [`UnixTime::to_civil`] returns it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CivilDateTime {
    /// The year (proleptic Gregorian; may be below 1 or above 9999).
    pub year: i64,
    /// Month, 1–12.
    pub month: u8,
    /// Day of the month, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59 (POSIX time has no leap seconds).
    pub second: u8,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// RFC 3339, e.g. `2023-06-30T12:27:30.711927000Z`.
impl fmt::Display for CivilDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unix(seconds: i64) -> UnixTime {
        UnixTime::new(seconds, 0)
    }

    #[test]
    fn rfc5905_figure4_era_offsets() {
        // 1970-01-01 is NTP second 2 208 988 800 in era 0.
        assert_eq!(NtpTimestamp::from_unix(unix(0)).seconds(), 2_208_988_800);
        // 1972-01-01 (Unix 63 072 000) → 2 272 060 800.
        assert_eq!(
            NtpTimestamp::from_unix(unix(63_072_000)).seconds(),
            2_272_060_800
        );
        // 1999-12-31 (Unix 946 598 400) → 3 155 587 200.
        assert_eq!(
            NtpTimestamp::from_unix(unix(946_598_400)).seconds(),
            3_155_587_200
        );
        // 1899-12-31 is era −1, second 4 294 880 896.
        assert_eq!(
            NtpTimestamp::from_unix(unix(-UNIX_OFFSET_SECONDS - 86_400)).seconds(),
            4_294_880_896
        );
        // 2036-02-08 is era 1, second 63 104.
        let d = NtpTimestamp::from_unix(unix(2_085_978_496 + 63_104));
        assert_eq!(d.seconds(), 63_104);
        // 2024-01-01 → 0xE93C7F00.
        assert_eq!(
            NtpTimestamp::from_unix(unix(1_704_067_200)).seconds(),
            0xE93C_7F00
        );
    }

    #[test]
    fn era_one_starts_at_unix_2085978496() {
        let t = NtpTimestamp::from_unix(unix(2_085_978_496));
        assert_eq!(t, NtpTimestamp::ZERO);
        assert_eq!(t.to_unix_near(unix(2_085_978_000)).seconds(), 2_085_978_496);
        assert_eq!(t.to_unix_rfc4330().seconds(), 2_085_978_496);
        assert_eq!(
            t.to_unix_near(unix(2_085_978_000)).to_string(),
            "2036-02-07T06:28:16.000000000Z"
        );
    }

    #[test]
    fn known_date_from_captured_packet() {
        let t = NtpTimestamp::from_bits(0xe84948b2_b640d701);
        let u = t.to_unix_near(unix(1_700_000_000));
        assert_eq!(u.to_string(), "2023-06-30T12:27:30.711926877Z");
        assert_eq!(t.to_unix_rfc4330(), u);
    }

    #[test]
    fn differences_cross_the_2036_rollover() {
        let before = NtpTimestamp::from_unix(unix(2_085_978_496 - 10));
        let after = NtpTimestamp::from_unix(unix(2_085_978_496 + 5));
        assert_eq!(after - before, NtpDuration::from_seconds(15));
        assert_eq!(before - after, NtpDuration::from_seconds(-15));
        assert!(before.is_before(after));
        assert!(!after.is_before(before));
    }

    #[test]
    fn on_wire_example_from_protocol_digest() {
        let base = NtpTimestamp::from_seconds_and_fraction(100, 0);
        let ms = |m: i64| base + NtpDuration::from_nanos(m * 1_000_000);
        let (t1, t2, t3, t4) = (ms(0), ms(60), ms(61), ms(21));
        let theta = ((t2 - t1) + (t3 - t4)).half();
        let delta = (t4 - t1) - (t3 - t2);
        assert!((theta.to_seconds_f64() - 0.050).abs() < 1e-9);
        assert!((delta.to_seconds_f64() - 0.020).abs() < 1e-9);
    }

    #[test]
    fn fractions() {
        assert_eq!(NtpDuration::from_nanos(500_000_000).to_bits(), 0x8000_0000);
        assert_eq!(NtpDuration::from_nanos(1_000).to_bits(), 0x10C7);
        assert_eq!(NtpShort::from_bits(0x60).to_string(), "0.001465s");
        assert_eq!(NtpShort::from_seconds_f64(1.5).to_bits(), 0x0001_8000);
        assert_eq!(NtpShort::from_seconds_f64(-3.0), NtpShort::ZERO);
        assert_eq!(NtpShort::from_seconds_f64(f64::NAN), NtpShort::ZERO);
        assert_eq!(NtpShort::from_seconds_f64(1e12), NtpShort::MAX);
        assert_eq!(NtpDuration::from_seconds_f64(f64::NAN), NtpDuration::ZERO);
        assert_eq!(NtpDuration::from_seconds_f64(1e30), NtpDuration::MAX);
        assert_eq!(
            NtpDuration::from_nanos(-1_500_000_000).to_string(),
            "-1.500000000s"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(
            UnixTime::EPOCH.to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            unix(951_782_400).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(unix(-1).to_string(), "1969-12-31T23:59:59.000000000Z");
        assert_eq!(
            unix(-UNIX_OFFSET_SECONDS).to_string(),
            "1900-01-01T00:00:00.000000000Z"
        );
    }

    fn any_unix() -> impl Strategy<Value = UnixTime> {
        // 1900 to 2200 covers era 0, era 1 and the 2036 boundary.
        (
            -UNIX_OFFSET_SECONDS..7_258_118_400_i64,
            0..1_000_000_000_u32,
        )
            .prop_map(|(s, n)| UnixTime::new(s, n))
    }

    proptest! {
        #[test]
        fn unix_round_trip_near_any_pivot_within_68_years(
            t in any_unix(),
            offset in -(2_i64.pow(31) - 2)..(2_i64.pow(31) - 2),
        ) {
            let pivot = UnixTime::new(t.seconds().saturating_add(offset), 0);
            let back = NtpTimestamp::from_unix(t).to_unix_near(pivot);
            // 2^-32 s resolution: the nanoseconds survive to within 1 ns.
            let err = (back - t).to_nanos().abs();
            prop_assert!(err <= 1, "{t} came back as {back}");
        }

        #[test]
        fn wrapping_difference_equals_true_difference(a in any_unix(), d in -2_000_000_000_i64..2_000_000_000) {
            let b = UnixTime::new(a.seconds() + d, a.nanos());
            let diff = NtpTimestamp::from_unix(b) - NtpTimestamp::from_unix(a);
            prop_assert_eq!(diff, NtpDuration::from_seconds(d));
            prop_assert_eq!(NtpTimestamp::from_unix(a).is_before(NtpTimestamp::from_unix(b)), d > 0);
        }

        #[test]
        fn add_then_subtract_is_identity(bits: u64, d: i64) {
            let t = NtpTimestamp::from_bits(bits);
            let d = NtpDuration::from_bits(d);
            prop_assert_eq!((t + d) - d, t);
            prop_assert_eq!((t + d) - t, d);
        }

        #[test]
        fn rfc4330_rule_matches_pivot_rule_in_its_range(s in -2_208_988_800_i64 + 2_i64.pow(31)..(4_294_967_296_i64 + 2_i64.pow(31) - UNIX_OFFSET_SECONDS)) {
            // The RFC 4330 window is 1968-01-20 .. 2104-02-26.
            let t = UnixTime::new(s, 0);
            prop_assert_eq!(NtpTimestamp::from_unix(t).to_unix_rfc4330(), t);
        }

        #[test]
        fn short_format_round_trips(bits: u32) {
            let s = NtpShort::from_bits(bits);
            prop_assert_eq!(NtpShort::from_duration(s.to_duration()), s);
            prop_assert_eq!(NtpShort::from_seconds_f64(s.to_seconds_f64()), s);
        }
    }
}
