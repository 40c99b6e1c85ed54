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
///
/// Every step is checked: a bucket start that does not fit in an `i64`, or that lands exactly on
/// `i64::MIN` (PostgreSQL's `-infinity`), is [`BucketError::OutOfRange`] rather than a wrapped
/// value. With a width or origin near the ends of the range the bucket start of a valid timestamp
/// can be far below it (width 9.2e18 µs, origin 9.1e18 µs, ts -1.1e17 µs starts at -9.3e18 µs).
fn bucket_fixed(period: i64, ts: i64, origin: i64) -> Result<i64, BucketError> {
    let shift = origin % period;
    // TimescaleDB's range check: `ts - shift` must be representable.
    let t = ts.checked_sub(shift).ok_or(BucketError::OutOfRange)?;
    // floor(t / w) * w + s == ts - (t mod w): one subtraction, with no intermediate product that
    // could overflow while the bucket start itself is representable.
    let bucket = ts
        .checked_sub(t.rem_euclid(period))
        .ok_or(BucketError::OutOfRange)?;
    if bucket == TS_NOBEGIN {
        return Err(BucketError::OutOfRange);
    }
    Ok(bucket)
}

/// Month bucketing of a month count `m = year * 12 + month0` against an origin month count:
/// `floor((m - o) / p) * p + o` with `o = origin % p`, computed as `m - ((m - o) mod p)`.
fn bucket_month_count(period: i32, m: i64, origin: i64) -> Result<i64, BucketError> {
    let period = i64::from(period);
    let offset = origin % period;
    let since = m.checked_sub(offset).ok_or(BucketError::OutOfRange)?;
    m.checked_sub(since.rem_euclid(period))
        .ok_or(BucketError::OutOfRange)
}

/// A date (days since 2000-01-01) as a timestamp at midnight; dates beyond about ±292,000 years
/// have none.
fn date_to_timestamp(days: i32) -> Result<i64, BucketError> {
    i64::from(days)
        .checked_mul(USECS_PER_DAY)
        .ok_or(BucketError::OutOfRange)
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
/// ("days from civil", same source). `year` must be within ±10^16; the day count of a year
/// beyond that does not fit in an `i64`.
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

/// Months since year 0 of a date. An `i32` day count is within ±5.9 million years, so this
/// cannot overflow.
fn month_count(days: i32) -> i64 {
    let (y, m, _) = date_to_ymd(days);
    y * 12 + i64::from(m) - 1
}

/// Years beyond which no first of a month has an `i32` day count (±5.9 million years do).
const MAX_ABS_YEAR: i64 = 10_000_000;

fn first_of_month(count: i64) -> Result<i32, BucketError> {
    let year = count.div_euclid(12);
    if !(-MAX_ABS_YEAR..=MAX_ABS_YEAR).contains(&year) {
        return Err(BucketError::OutOfRange);
    }
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
                bucket_month_count(period, month_count(timestamp_to_date(ts)), origin_months)?;
            date_to_timestamp(first_of_month(count)?)
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
            let origin_ts = origin.map_or(Ok(DEFAULT_ORIGIN), date_to_timestamp)?;
            let ts = date_to_timestamp(date)?;
            Ok(timestamp_to_date(bucket_fixed(period, ts, origin_ts)?))
        }
        Kind::Months(period) => {
            let origin_months = origin.map_or(2000 * 12, month_count);
            first_of_month(bucket_month_count(
                period,
                month_count(date),
                origin_months,
            )?)
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

    /// An independent model of the fixed-width rule in i128 arithmetic, where nothing overflows:
    /// TimescaleDB's range check on `ts - shift`, then `floor((ts - shift) / w) * w + shift`. A
    /// bucket start outside `i64`, or on `i64::MIN` (`-infinity`), is out of range.
    fn fixed_oracle(w: i64, ts: i64, origin: i64) -> Result<i64, BucketError> {
        let (w, ts, o) = (i128::from(w), i128::from(ts), i128::from(origin));
        let shift = o % w; // truncating, as in C
        let t = ts - shift;
        if i64::try_from(t).is_err() {
            return Err(BucketError::OutOfRange);
        }
        match i64::try_from(t.div_euclid(w) * w + shift) {
            Ok(b) if b != i64::MIN => Ok(b),
            _ => Err(BucketError::OutOfRange),
        }
    }

    /// The code before the overflow checks, as a release build ran it (the product wrapped).
    fn unchecked_formula(w: i64, ts: i64, origin: i64) -> Result<i64, BucketError> {
        let shift = origin % w;
        if (shift > 0 && ts < TS_NOBEGIN + shift) || (shift < 0 && ts > TS_NOEND + shift) {
            return Err(BucketError::OutOfRange);
        }
        let t = ts - shift;
        let result = t.div_euclid(w).wrapping_mul(w);
        result.checked_add(shift).ok_or(BucketError::OutOfRange)
    }

    /// PostgreSQL's valid timestamp range, `MIN_TIMESTAMP..END_TIMESTAMP`.
    const PG_MIN_TS: i64 = -211_813_488_000_000_000;
    const PG_END_TS: i64 = 9_223_371_331_200_000_000;

    #[test]
    fn a_bucket_below_the_range_is_an_error_not_a_wrapped_value() {
        // Width 9.2e18 µs, origin 9.1e18 µs, ts -1.1e17 µs (all valid PostgreSQL values): the
        // bucket starts at 9.1e18 - 2 * 9.2e18 = -9.3e18 µs, below i64::MIN. Unchecked, the
        // product wrapped and the result was about +9.146e18 µs (year ~292,000).
        let (w, origin, t) = (
            9_200_000_000_000_000_000i64,
            9_100_000_000_000_000_000i64,
            -110_000_000_000_000_000i64,
        );
        let true_start = (i128::from(t) - i128::from(origin)).div_euclid(i128::from(w))
            * i128::from(w)
            + i128::from(origin);
        assert_eq!(true_start, -9_300_000_000_000_000_000);
        assert!(matches!(unchecked_formula(w, t, origin), Ok(v) if v > 9_140_000_000_000_000_000));
        assert_eq!(
            bucket_timestamp(Width::micros(w), t, Some(origin)),
            Err(BucketError::OutOfRange)
        );
        // The same width given as days plus microseconds.
        let days = Width {
            months: 0,
            days: 100_000_000,
            micros: w - 100_000_000 * USECS_PER_DAY,
        };
        assert_eq!(
            bucket_timestamp(days, t, Some(origin)),
            Err(BucketError::OutOfRange)
        );
    }

    #[test]
    fn a_finite_bucket_never_comes_back_as_minus_infinity() {
        // Width 2^63 - 1e17 µs, origin -1e17 µs, ts -1.5e17 µs: the bucket starts at exactly
        // -2^63 µs, PostgreSQL's -infinity.
        let w = i64::MAX - 100_000_000_000_000_000 + 1;
        let (origin, t) = (-100_000_000_000_000_000i64, -150_000_000_000_000_000i64);
        assert_eq!(unchecked_formula(w, t, origin), Ok(i64::MIN));
        assert_eq!(
            bucket_timestamp(Width::micros(w), t, Some(origin)),
            Err(BucketError::OutOfRange)
        );
    }

    #[test]
    fn extreme_widths_origins_and_timestamps_match_the_i128_model() {
        let stamps = [
            TS_NOBEGIN + 1,
            TS_NOBEGIN + 2,
            PG_MIN_TS,
            -110_000_000_000_000_000,
            -1,
            0,
            1,
            ts(2024, 3, 10, 13, 47, 31),
            PG_END_TS - 1,
            TS_NOEND - 1,
        ];
        let widths = [
            1,
            3,
            HOUR,
            USECS_PER_DAY,
            1 << 62,
            (1 << 62) + 1,
            9_200_000_000_000_000_000,
            i64::MAX - 100_000_000_000_000_000 + 1,
            i64::MAX - 1,
            i64::MAX,
        ];
        let origins = [
            TS_NOBEGIN,
            TS_NOBEGIN + 1,
            PG_MIN_TS,
            -100_000_000_000_000_000,
            -1,
            0,
            1,
            DEFAULT_ORIGIN,
            9_100_000_000_000_000_000,
            PG_END_TS - 1,
            TS_NOEND - 1,
            TS_NOEND,
        ];
        let mut errors = 0;
        for &t in &stamps {
            for &w in &widths {
                for &o in &origins {
                    let got = bucket_timestamp(Width::micros(w), t, Some(o));
                    assert_eq!(got, fixed_oracle(w, t, o), "w={w} t={t} origin={o}");
                    errors += usize::from(got.is_err());
                }
            }
        }
        // The grid does reach the out-of-range cases.
        assert!(errors > 0);
    }

    #[test]
    fn dates_beyond_the_timestamp_range_are_errors() {
        // Fixed-width date buckets go through microseconds: 106,751,991 days (year ~294,000) is
        // the last date whose midnight fits in an i64; later dates (still valid PostgreSQL dates)
        // used to overflow the conversion.
        let last = 106_751_991;
        assert_eq!(bucket_date(Width::days(1), last, None), Ok(last));
        for w in [Width::days(1), Width::days(7)] {
            assert_eq!(bucket_date(w, last + 1, None), Err(BucketError::OutOfRange));
            assert_eq!(
                bucket_date(w, 200_000_000, None),
                Err(BucketError::OutOfRange)
            );
            assert_eq!(
                bucket_date(w, -last - 1, None),
                Err(BucketError::OutOfRange)
            );
            assert_eq!(
                bucket_date(w, 9000, Some(200_000_000)),
                Err(BucketError::OutOfRange)
            );
        }
    }

    #[test]
    fn extreme_month_widths_are_errors_or_exact() {
        let wide = Width::months(i32::MAX);
        // After January 2000 the bucket is January 2000 itself.
        assert_eq!(bucket_date(wide, 9000, None), Ok(0));
        assert_eq!(
            bucket_timestamp(wide, ts(2024, 3, 10, 0, 0, 0), None),
            Ok(0)
        );
        // Before it, the bucket starts 2^31 - 1 months (179 million years) earlier.
        assert_eq!(bucket_date(wide, -1, None), Err(BucketError::OutOfRange));
        assert_eq!(
            bucket_timestamp(wide, -1, None),
            Err(BucketError::OutOfRange)
        );
        assert_eq!(
            bucket_date(wide, 9000, Some(DATE_NOEND - 1)),
            Err(BucketError::OutOfRange)
        );
        // The ends of the date range in one-month buckets.
        let (y, m, _) = date_to_ymd(DATE_NOEND - 1);
        assert_eq!(
            bucket_date(Width::months(1), DATE_NOEND - 1, None),
            Ok(ymd_to_date(y, m, 1) as i32)
        );
        assert_eq!(
            bucket_date(Width::months(1), DATE_NOBEGIN + 1, None),
            Err(BucketError::OutOfRange)
        );
        let (y, m, _) = date_to_ymd(timestamp_to_date(TS_NOEND - 1));
        assert_eq!(
            bucket_timestamp(Width::months(1), TS_NOEND - 1, None),
            Ok(ymd_to_date(y, m, 1) * USECS_PER_DAY)
        );
    }

    proptest! {
        /// Over all of i64 (any width, origin and finite timestamp) the result is the i128
        /// model's: the exact bucket start, or OutOfRange when it is not representable.
        #[test]
        fn fixed_bucket_matches_the_i128_model_everywhere(
            t in (TS_NOBEGIN + 1)..TS_NOEND,
            w in 1i64..=i64::MAX,
            origin in any::<i64>(),
        ) {
            prop_assert_eq!(
                bucket_timestamp(Width::micros(w), t, Some(origin)),
                fixed_oracle(w, t, origin)
            );
        }

        /// For PostgreSQL timestamps and origins and widths up to 10,000 years the results are
        /// unchanged: the unchecked code's (including its range error when `ts - shift` does not
        /// fit), which the i128 model agrees with.
        #[test]
        fn ordinary_inputs_keep_their_results(
            t in PG_MIN_TS..PG_END_TS,
            w in 1i64..(3_652_500 * USECS_PER_DAY),
            origin in -100_000_000_000_000_000i64..100_000_000_000_000_000i64,
        ) {
            let want = unchecked_formula(w, t, origin);
            prop_assert_eq!(fixed_oracle(w, t, origin), want.clone());
            prop_assert_eq!(bucket_timestamp(Width::micros(w), t, Some(origin)), want);
        }

        /// Brute force for small widths: walk from the origin in steps of w.
        #[test]
        fn fixed_bucket_agrees_with_walking_from_the_origin(
            t in -1_000_000i64..1_000_000,
            w in 1i64..5_000,
            origin in -1_000_000i64..1_000_000,
        ) {
            let mut b = origin;
            while b > t {
                b -= w;
            }
            while b + w <= t {
                b += w;
            }
            prop_assert_eq!(bucket_timestamp(Width::micros(w), t, Some(origin)), Ok(b));
        }

        /// Dates over the whole i32 range, fixed widths in days: the i128 model on midnights, or
        /// OutOfRange when the date has no midnight in an i64.
        #[test]
        fn fixed_date_buckets_never_overflow(
            d in (DATE_NOBEGIN + 1)..DATE_NOEND,
            days in 1i32..=i32::MAX,
            origin in (DATE_NOBEGIN + 1)..DATE_NOEND,
        ) {
            let got = bucket_date(Width::days(days), d, Some(origin));
            let want = match (
                i64::from(days).checked_mul(USECS_PER_DAY),
                i64::from(d).checked_mul(USECS_PER_DAY),
                i64::from(origin).checked_mul(USECS_PER_DAY),
            ) {
                (Some(w), Some(t), Some(o)) => fixed_oracle(w, t, o).map(timestamp_to_date),
                _ => Err(BucketError::OutOfRange),
            };
            prop_assert_eq!(got, want);
        }

        /// Month buckets over the whole i32 date range and any month count: a first of a month
        /// within one period at or before the date, or OutOfRange exactly when that day does
        /// not fit.
        #[test]
        fn month_buckets_never_overflow(
            d in (DATE_NOBEGIN + 1)..DATE_NOEND,
            months in 1i32..=i32::MAX,
            origin in (DATE_NOBEGIN + 1)..DATE_NOEND,
        ) {
            let (m, o, p) = (
                i128::from(month_count(d)),
                i128::from(month_count(origin)),
                i128::from(months),
            );
            let count = (m - o % p).div_euclid(p) * p + o % p;
            let year = i64::try_from(count.div_euclid(12)).unwrap();
            let month = count.rem_euclid(12) as u32 + 1;
            let want =
                i32::try_from(ymd_to_date(year, month, 1)).map_err(|_| BucketError::OutOfRange);
            prop_assert_eq!(bucket_date(Width::months(months), d, Some(origin)), want);
        }

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
