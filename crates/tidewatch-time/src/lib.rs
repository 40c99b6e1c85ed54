//! Time bucketing on PostgreSQL's internal time representation, with the exact semantics of
//! TimescaleDB's `time_bucket`:
//!
//! * timestamps are `i64` microseconds since 2000-01-01 00:00:00 (PostgreSQL's epoch), dates are
//!   `i32` days since 2000-01-01;
//! * fixed-width buckets (an interval without months; a day counts as 24 hours) are aligned to an
//!   origin, by default Monday 2000-01-03 00:00, so weekly buckets start on Mondays;
//! * month buckets (an interval of months only) count whole months since the origin's month, by
//!   default January 2000, and start on the first day of a month;
//! * infinite inputs come back unchanged.
//!
//! The formula is the floor division `bucket = floor((t - s) / w) * w + s` with the shift
//! `s = origin mod w` taken with C's truncating remainder, as TimescaleDB does, so results are
//! bit-identical to it, including for timestamps before the origin.

use thiserror::Error;

/// Microseconds in a day (PostgreSQL's `USECS_PER_DAY`).
pub const USECS_PER_DAY: i64 = 86_400_000_000;
/// Default origin of fixed-width buckets: Monday 2000-01-03 00:00:00, in microseconds.
pub const DEFAULT_ORIGIN: i64 = 2 * USECS_PER_DAY;
/// PostgreSQL's `-infinity` timestamp (`DT_NOBEGIN`).
pub const TS_NOBEGIN: i64 = i64::MIN;
/// PostgreSQL's `infinity` timestamp (`DT_NOEND`).
pub const TS_NOEND: i64 = i64::MAX;
/// PostgreSQL's `-infinity` date (`DATEVAL_NOBEGIN`).
pub const DATE_NOBEGIN: i32 = i32::MIN;
/// PostgreSQL's `infinity` date (`DATEVAL_NOEND`).
pub const DATE_NOEND: i32 = i32::MAX;
/// Julian day number of 2000-01-01 (PostgreSQL's `POSTGRES_EPOCH_JDATE`).
const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;

/// A bucket width as PostgreSQL stores an interval: months, days and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Width {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Width {
    pub const fn micros(micros: i64) -> Self {
        Width {
            months: 0,
            days: 0,
            micros,
        }
    }
    pub const fn days(days: i32) -> Self {
        Width {
            months: 0,
            days,
            micros: 0,
        }
    }
    pub const fn months(months: i32) -> Self {
        Width {
            months,
            days: 0,
            micros: 0,
        }
    }
}

/// Why a bucket could not be computed. Each maps to one SQLSTATE at the SQL boundary.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BucketError {
    /// `22023 invalid_parameter_value`
    #[error("period must be greater than 0")]
    NonPositivePeriod,
    /// `0A000 feature_not_supported`
    #[error("month intervals cannot have day or time component")]
    MixedMonthInterval,
    /// `0A000 feature_not_supported`
    #[error("interval must not have sub-day precision")]
    SubDayDateInterval,
    /// `0A000 feature_not_supported`
    #[error("interval must be a multiple of a day")]
    NonDailyDateInterval,
    /// `22008 datetime_field_overflow`
    #[error("timestamp out of range")]
    OutOfRange,
}

/// What kind of bucketing a width asks for.
enum Kind {
    Fixed(i64),
    Months(i32),
}

fn classify(width: Width) -> Result<Kind, BucketError> {
    if width.months != 0 {
        if width.days != 0 || width.micros != 0 {
            return Err(BucketError::MixedMonthInterval);
        }
        if width.months < 0 {
            return Err(BucketError::NonPositivePeriod);
        }
        return Ok(Kind::Months(width.months));
    }
    let period = i64::from(width.days)
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(width.micros))
        .ok_or(BucketError::OutOfRange)?;
    if period <= 0 {
        return Err(BucketError::NonPositivePeriod);
    }
    Ok(Kind::Fixed(period))
}

/// Fixed-width bucketing of a finite timestamp: `floor((t - s) / w) * w + s`, `s = origin % w`
/// (truncating remainder, as C and TimescaleDB compute it).
fn bucket_fixed(period: i64, ts: i64, origin: i64) -> Result<i64, BucketError> {
    let shift = origin % period;
    if (shift > 0 && ts < TS_NOBEGIN + shift) || (shift < 0 && ts > TS_NOEND + shift) {
        return Err(BucketError::OutOfRange);
    }
    let t = ts - shift;
    let result = t.div_euclid(period) * period;
    result.checked_add(shift).ok_or(BucketError::OutOfRange)
}

/// Month bucketing of a month count `m = year * 12 + month0` against an origin month count.
fn bucket_month_count(period: i32, m: i64, origin: i64) -> i64 {
    let period = i64::from(period);
    let offset = origin % period;
    (m - offset).div_euclid(period) * period + offset
}

/// Days since 2000-01-01 to (year, month 1..=12, day). Proleptic Gregorian calendar, the
/// "civil from days" algorithm of Howard Hinnant (chrono-Compatible Low-Level Date Algorithms).
pub fn date_to_ymd(days: i32) -> (i64, u32, u32) {
    // shift epoch from 2000-01-01 to 0000-03-01
    let z = i64::from(days) + 730_425;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month 1..=12, day) to days since 2000-01-01; the inverse of [`date_to_ymd`]
/// ("days from civil", same source).
pub fn ymd_to_date(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 730_425
}

/// Julian day number of a PostgreSQL date, for callers that want it.
pub fn julian_day(days: i32) -> i64 {
    i64::from(days) + POSTGRES_EPOCH_JDATE
}

fn month_count(days: i32) -> i64 {
    let (y, m, _) = date_to_ymd(days);
    y * 12 + i64::from(m) - 1
}

fn first_of_month(count: i64) -> Result<i32, BucketError> {
    let year = count.div_euclid(12);
    let month = count.rem_euclid(12) as u32 + 1;
    i32::try_from(ymd_to_date(year, month, 1)).map_err(|_| BucketError::OutOfRange)
}

/// Date part (days since 2000-01-01) of a finite timestamp, as PostgreSQL's `timestamp_date`.
pub fn timestamp_to_date(ts: i64) -> i32 {
    ts.div_euclid(USECS_PER_DAY) as i32
}

/// `time_bucket(width, timestamp [, origin])` and `time_bucket(width, timestamptz [, origin])`.
///
/// Both share one implementation: TimescaleDB buckets `timestamptz` on its UTC value, and month
/// buckets of a `timestamptz` start at midnight UTC. `origin = None` means the default origin.
pub fn bucket_timestamp(width: Width, ts: i64, origin: Option<i64>) -> Result<i64, BucketError> {
    let kind = classify(width)?;
    if ts == TS_NOBEGIN || ts == TS_NOEND {
        return Ok(ts);
    }
    match kind {
        Kind::Fixed(period) => bucket_fixed(period, ts, origin.unwrap_or(DEFAULT_ORIGIN)),
        Kind::Months(period) => {
            let origin_months = match origin {
                // TimescaleDB compares against its default origin, whose month is January 2000.
                Some(o) if o != DEFAULT_ORIGIN => month_count(timestamp_to_date(o)),
                _ => 2000 * 12,
            };
            let count =
                bucket_month_count(period, month_count(timestamp_to_date(ts)), origin_months);
            let date = first_of_month(count)?;
            i64::from(date)
                .checked_mul(USECS_PER_DAY)
                .ok_or(BucketError::OutOfRange)
        }
    }
}

/// `time_bucket(width, date [, origin])`: fixed widths must be whole days.
pub fn bucket_date(width: Width, date: i32, origin: Option<i32>) -> Result<i32, BucketError> {
    let kind = classify(width)?;
    if date == DATE_NOBEGIN || date == DATE_NOEND {
        return Ok(date);
    }
    // An infinite origin has no bucket boundaries (its day count would overflow).
    if origin.is_some_and(|o| o == DATE_NOBEGIN || o == DATE_NOEND) {
        return Err(BucketError::OutOfRange);
    }
    match kind {
        Kind::Fixed(period) => {
            if period < USECS_PER_DAY {
                return Err(BucketError::SubDayDateInterval);
            }
            if period % USECS_PER_DAY != 0 {
                return Err(BucketError::NonDailyDateInterval);
            }
            let origin_ts = origin.map_or(DEFAULT_ORIGIN, |o| i64::from(o) * USECS_PER_DAY);
            let ts = i64::from(date) * USECS_PER_DAY;
            Ok(timestamp_to_date(bucket_fixed(period, ts, origin_ts)?))
        }
        Kind::Months(period) => {
            let origin_months = origin.map_or(2000 * 12, month_count);
            first_of_month(bucket_month_count(period, month_count(date), origin_months))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_infinite_date_origin_is_out_of_range() {
        let week = super::Width {
            months: 0,
            days: 7,
            micros: 0,
        };
        for o in [super::DATE_NOBEGIN, super::DATE_NOEND] {
            assert!(matches!(
                super::bucket_date(week, 9000, Some(o)),
                Err(super::BucketError::OutOfRange)
            ));
        }
    }
    use super::*;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000_000;
    const MIN: i64 = 60_000_000;

    fn ts(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        ymd_to_date(y, mo, d) * USECS_PER_DAY + h * HOUR + mi * MIN + s * 1_000_000
    }

    #[test]
    fn calendar_round_trips_known_dates() {
        assert_eq!(ymd_to_date(2000, 1, 1), 0);
        assert_eq!(ymd_to_date(2000, 1, 3), 2);
        assert_eq!(ymd_to_date(1970, 1, 1), -10957);
        assert_eq!(ymd_to_date(2024, 2, 29), 8825);
        assert_eq!(date_to_ymd(8825), (2024, 2, 29));
        assert_eq!(date_to_ymd(-1), (1999, 12, 31));
        assert_eq!(date_to_ymd(-10957), (1970, 1, 1));
    }

    #[test]
    fn default_origin_is_monday_2000_01_03() {
        // A week bucket of Sunday 2024-03-10 starts on Monday 2024-03-04.
        let w = Width::days(7);
        let got = bucket_timestamp(w, ts(2024, 3, 10, 12, 0, 0), None).unwrap();
        assert_eq!(got, ts(2024, 3, 4, 0, 0, 0));
    }

    #[test]
    fn fixed_widths_match_hand_worked_values() {
        let t = ts(2024, 3, 10, 13, 47, 31);
        let cases = [
            (Width::micros(5 * MIN), ts(2024, 3, 10, 13, 45, 0)),
            (Width::micros(HOUR), ts(2024, 3, 10, 13, 0, 0)),
            (Width::micros(90 * MIN), ts(2024, 3, 10, 13, 30, 0)),
            (Width::days(1), ts(2024, 3, 10, 0, 0, 0)),
            // 3-day buckets counted from 2000-01-03: 2024-03-10 is day 8835 after 2000-01-03 = 8833+2,
            // 8833 = 3*2944+1 so the bucket starts 1 day earlier, on 2024-03-09.
            (Width::days(3), ts(2024, 3, 9, 0, 0, 0)),
        ];
        for (w, want) in cases {
            assert_eq!(bucket_timestamp(w, t, None), Ok(want), "{w:?}");
        }
    }

    #[test]
    fn before_origin_floors_downwards() {
        // 1999-12-31 23:59 in 1-hour buckets, and in 1-week buckets (Monday 1999-12-27).
        let t = ts(1999, 12, 31, 23, 59, 0);
        assert_eq!(
            bucket_timestamp(Width::micros(HOUR), t, None),
            Ok(ts(1999, 12, 31, 23, 0, 0))
        );
        assert_eq!(
            bucket_timestamp(Width::days(7), t, None),
            Ok(ts(1999, 12, 27, 0, 0, 0))
        );
    }

    #[test]
    fn month_buckets_align_to_january_2000() {
        let t = ts(2024, 5, 17, 8, 0, 0);
        assert_eq!(
            bucket_timestamp(Width::months(1), t, None),
            Ok(ts(2024, 5, 1, 0, 0, 0))
        );
        assert_eq!(
            bucket_timestamp(Width::months(3), t, None),
            Ok(ts(2024, 4, 1, 0, 0, 0))
        );
        assert_eq!(
            bucket_timestamp(Width::months(12), t, None),
            Ok(ts(2024, 1, 1, 0, 0, 0))
        );
        // 5-month buckets: months since 2000-01 = 292, 292 = 5*58+2, so the bucket starts 2 months
        // earlier, in March 2024.
        assert_eq!(
            bucket_timestamp(Width::months(5), t, None),
            Ok(ts(2024, 3, 1, 0, 0, 0))
        );
        // With an origin in February, quarters start Feb/May/Aug/Nov.
        let origin = ts(2000, 2, 15, 0, 0, 0);
        assert_eq!(
            bucket_timestamp(Width::months(3), t, Some(origin)),
            Ok(ts(2024, 5, 1, 0, 0, 0))
        );
        // Before 2000.
        let old = ts(1999, 11, 30, 0, 0, 0);
        assert_eq!(
            bucket_timestamp(Width::months(3), old, None),
            Ok(ts(1999, 10, 1, 0, 0, 0))
        );
    }

    #[test]
    fn date_buckets() {
        let d = ymd_to_date(2024, 3, 10) as i32;
        assert_eq!(
            bucket_date(Width::days(7), d, None),
            Ok(ymd_to_date(2024, 3, 4) as i32)
        );
        assert_eq!(
            bucket_date(Width::months(1), d, None),
            Ok(ymd_to_date(2024, 3, 1) as i32)
        );
        let origin = ymd_to_date(2024, 3, 10) as i32;
        assert_eq!(bucket_date(Width::days(7), d + 6, Some(origin)), Ok(origin));
        assert_eq!(
            bucket_date(Width::micros(HOUR), d, None),
            Err(BucketError::SubDayDateInterval)
        );
        assert_eq!(
            bucket_date(Width::micros(36 * HOUR), d, None),
            Err(BucketError::NonDailyDateInterval)
        );
    }

    #[test]
    fn invalid_widths_are_errors() {
        let t = ts(2024, 1, 1, 0, 0, 0);
        assert_eq!(
            bucket_timestamp(Width::micros(0), t, None),
            Err(BucketError::NonPositivePeriod)
        );
        assert_eq!(
            bucket_timestamp(Width::micros(-5), t, None),
            Err(BucketError::NonPositivePeriod)
        );
        let mixed = Width {
            months: 1,
            days: 1,
            micros: 0,
        };
        assert_eq!(
            bucket_timestamp(mixed, t, None),
            Err(BucketError::MixedMonthInterval)
        );
    }

    #[test]
    fn infinities_pass_through() {
        assert_eq!(
            bucket_timestamp(Width::days(1), TS_NOEND, None),
            Ok(TS_NOEND)
        );
        assert_eq!(
            bucket_timestamp(Width::days(1), TS_NOBEGIN, None),
            Ok(TS_NOBEGIN)
        );
        assert_eq!(
            bucket_date(Width::days(1), DATE_NOEND, None),
            Ok(DATE_NOEND)
        );
    }

    #[test]
    fn extreme_values_error_instead_of_overflowing() {
        let near_min = TS_NOBEGIN + 1;
        assert_eq!(
            bucket_timestamp(Width::micros(HOUR), near_min, Some(30 * MIN)),
            Err(BucketError::OutOfRange)
        );
    }

    proptest! {
        /// Against a brute-force oracle in i128: the bucket is the largest `origin + k*w <= t`.
        #[test]
        fn fixed_bucket_is_largest_aligned_point_not_after_t(
            t in -10_000_000_000_000_000i64..10_000_000_000_000_000i64,
            w in 1i64..(400 * USECS_PER_DAY),
            origin in -1_000_000_000_000_000i64..1_000_000_000_000_000i64,
        ) {
            let b = bucket_timestamp(Width::micros(w), t, Some(origin)).unwrap();
            let (b, t, w, o) = (i128::from(b), i128::from(t), i128::from(w), i128::from(origin));
            prop_assert!(b <= t && t < b + w);
            prop_assert_eq!((b - o).rem_euclid(w), 0);
        }

        #[test]
        fn calendar_round_trip(days in -3_000_000i32..3_000_000i32) {
            let (y, m, d) = date_to_ymd(days);
            prop_assert_eq!(ymd_to_date(y, m, d), i64::from(days));
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        }

        #[test]
        fn month_bucket_is_first_of_a_month_within_period(
            days in -200_000i32..200_000i32, months in 1i32..48,
        ) {
            let b = bucket_date(Width::months(months), days, None).unwrap();
            let (_, _, bd) = date_to_ymd(b);
            prop_assert_eq!(bd, 1);
            let diff = month_count(days) - month_count(b);
            prop_assert!((0..i64::from(months)).contains(&diff));
            prop_assert_eq!((month_count(b) - 24_000).rem_euclid(i64::from(months)), 0);
        }
    }
}
