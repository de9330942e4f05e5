//! UTC time as text: RFC 3339 out, RFC 3339 / date / Unix seconds in. No
//! time zone database: the monitor speaks UTC only.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use ntp_policy::UnixMs;

/// The wall clock now, in milliseconds since the Unix epoch.
pub fn now() -> UnixMs {
    UnixMs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-22T00:51:03.250Z`.
pub fn rfc3339(t: UnixMs) -> String {
    let ms = t.as_millis();
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses a time given on the command line: RFC 3339 in UTC
/// (`2026-11-22T10:00:00Z`, fraction optional, `Z` or `+00:00`), a date
/// (`2026-11-22`, midnight UTC), or Unix seconds (`1763800000`).
///
/// # Errors
/// Anything else, quoting it.
pub fn parse(s: &str) -> anyhow::Result<UnixMs> {
    let bad =
        || format!("cannot read time {s:?}: use 2026-11-22T10:00:00Z, 2026-11-22 or Unix seconds");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().with_context(bad)?;
        return Ok(UnixMs::from_secs(secs));
    }
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let mut num = |len: usize| -> anyhow::Result<u32> {
        let p = parts.next().with_context(bad)?;
        if p.len() != len || !p.bytes().all(|b| b.is_ascii_digit()) {
            bail!(bad());
        }
        p.parse().with_context(bad)
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        bail!(bad());
    }
    let mut ms = days_from_civil(i64::from(y), m, d) * 86_400_000;
    if let Some(t) = time {
        let t = t
            .strip_suffix(['Z', 'z'])
            .or_else(|| t.strip_suffix("+00:00"))
            .with_context(|| format!("{}; times must be UTC (Z)", bad()))?;
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let f: Vec<&str> = hms.split(':').collect();
        let [h, mi, sec] = f.as_slice() else {
            bail!(bad());
        };
        let field = |v: &str, max: i64| -> anyhow::Result<i64> {
            let n: i64 = v.parse().with_context(bad)?;
            if v.len() != 2 || !(0..=max).contains(&n) {
                bail!(bad());
            }
            Ok(n)
        };
        ms += field(h, 23)? * 3_600_000 + field(mi, 59)? * 60_000 + field(sec, 60)? * 1000;
        if !frac.is_empty() {
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                bail!(bad());
            }
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            ms += digits.parse::<i64>().with_context(bad)?;
        }
    }
    Ok(UnixMs(u64::try_from(ms).with_context(bad)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let t = UnixMs(1_763_772_663_250);
        assert_eq!(rfc3339(t), "2025-11-22T00:51:03.250Z");
        assert_eq!(parse(&rfc3339(t)).unwrap(), t);
        assert_eq!(rfc3339(UnixMs(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse("2000-03-01").unwrap(), UnixMs::from_secs(951_868_800));
        assert_eq!(
            parse("1763772663").unwrap(),
            UnixMs::from_secs(1_763_772_663)
        );
        assert_eq!(
            parse("2025-11-22T00:51:03+00:00").unwrap(),
            UnixMs::from_secs(1_763_772_663)
        );
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-11-22T10:00:00+01:00",
            "2025-11-22T25:00:00Z",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for days in [-1000, 0, 59, 365 * 30 + 7, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
