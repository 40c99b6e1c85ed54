//! Timestamp parsing and fast formatting.
//!
//! Rows carry timestamps as Unix seconds (or milliseconds for logs); the CSV
//! writers format them with [`write_pg_ts`] without allocating, using the
//! civil-from-days algorithm (H. Hinnant, "chrono-Compatible Low-Level Date
//! Algorithms").

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

use crate::{Error, Result};

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// Parses a start timestamp. Accepted forms: RFC 3339
/// (`2026-01-01T00:00:00Z`, `2026-01-01T02:00:00+02:00`), the PostgreSQL
/// style used in the CSV output (`2026-01-01 00:00:00+00`, optionally with
/// fractional seconds), a naive
/// `2026-01-01 00:00:00` / `2026-01-01T00:00:00` (taken as UTC) and a bare
/// date `2026-01-01` (midnight UTC).
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&ndt));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(ndt) = d.and_hms_opt(0, 0, 0) {
            return Ok(Utc.from_utc_datetime(&ndt));
        }
    }
    Err(Error::Timestamp(s.to_string()))
}

/// Formats Unix seconds as RFC 3339 (`2026-01-01T00:00:05Z`), as used in
/// label files.
pub fn rfc3339(unix_secs: i64) -> String {
    match Utc.timestamp_opt(unix_secs, 0).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => format!("@{unix_secs}"),
    }
}

/// Formats Unix milliseconds as RFC 3339 with milliseconds.
pub fn rfc3339_millis(unix_ms: i64) -> String {
    match Utc.timestamp_millis_opt(unix_ms).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("@{unix_ms}ms"),
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
#[inline]
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Appends `YYYY-MM-DD HH:MM:SS+00` for Unix seconds `unix_secs`.
pub fn write_pg_ts(out: &mut Vec<u8>, unix_secs: i64) {
    write_pg_ts_inner(out, unix_secs, None);
}

/// Appends `YYYY-MM-DD HH:MM:SS.mmm+00` for Unix milliseconds `unix_ms`.
pub fn write_pg_ts_millis(out: &mut Vec<u8>, unix_ms: i64) {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000) as u32;
    write_pg_ts_inner(out, secs, Some(ms));
}

fn write_pg_ts_inner(out: &mut Vec<u8>, unix_secs: i64, millis: Option<u32>) {
    let days = unix_secs.div_euclid(DAY);
    let sod = unix_secs.rem_euclid(DAY) as u32;
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        out.extend_from_slice(y.to_string().as_bytes());
    }
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(b' ');
    push2(out, sod / 3600);
    out.push(b':');
    push2(out, (sod / 60) % 60);
    out.push(b':');
    push2(out, sod % 60);
    if let Some(ms) = millis {
        out.push(b'.');
        out.push(b'0' + (ms / 100) as u8);
        push2(out, ms % 100);
    }
    out.extend_from_slice(b"+00");
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS+00` into a new string.
pub fn pg_ts(unix_secs: i64) -> String {
    let mut v = Vec::with_capacity(22);
    write_pg_ts(&mut v, unix_secs);
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_format_matches_chrono() {
        let mut r = crate::rng::Xoshiro256pp::from_u64(3);
        for _ in 0..2000 {
            let t = r.int_in(0, 8_000_000_000) as i64 - 1_000_000_000;
            let expected = Utc
                .timestamp_opt(t, 0)
                .single()
                .map(|d| d.format("%Y-%m-%d %H:%M:%S+00").to_string());
            assert_eq!(Some(pg_ts(t)), expected, "t = {t}");
        }
    }

    #[test]
    fn millis_format() {
        let mut v = Vec::new();
        write_pg_ts_millis(&mut v, 1_767_225_605_007);
        assert_eq!(v, b"2026-01-01 00:00:05.007+00");
    }

    #[test]
    fn parses_all_accepted_forms() {
        let want = 1_767_225_600; // 2026-01-01T00:00:00Z
        for s in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00+01:00",
            "2026-01-01 00:00:00+00",
            "2026-01-01 00:00:00.000+00",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00",
            "2026-01-01",
        ] {
            let got = parse_timestamp(s).map(|d| d.timestamp());
            assert_eq!(got.ok(), Some(want), "{s}");
        }
        assert!(parse_timestamp("yesterday").is_err());
        let ms = parse_timestamp("2026-01-01 00:00:05.007+00").map(|d| d.timestamp_millis());
        assert_eq!(ms.ok(), Some(want * 1000 + 5007));
        assert_eq!(pg_ts(want + 5), "2026-01-01 00:00:05+00");
        assert_eq!(rfc3339(want + 5), "2026-01-01T00:00:05Z");
    }
}
