//! Reading the columns of result rows without panicking.
//!
//! `tokio_postgres::Row::get` panics whenever a value cannot be decoded, and data written by SQL
//! (not through this service) can hold values the service's types cannot: `'infinity'` and
//! `'-infinity'` timestamps (say, in a hypertable's default partition), years beyond chrono's
//! range, a NULL where a column is read as non-optional. A panic in a handler would drop the
//! connection without an answer, and one in the outbox worker would stop deliveries for good.
//!
//! So handlers read columns with [`get`] (a 500 `undecodable_value` naming the column instead of
//! a panic), [`time_or_null`] for times taken from the data, whose JSON field is nullable (a time
//! JSON cannot carry becomes null), and [`time`] for times the API documents as always present
//! (a clear 500 when one is infinite).

use std::fmt::Display;

use chrono::{DateTime, Utc};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;

use crate::error::{ApiError, ApiResult};

/// The code of the 500 answered for a value the service cannot read.
pub const UNDECODABLE: &str = "undecodable_value";

/// A `timestamptz` as PostgreSQL stores it: a time chrono can hold, `infinity`, `-infinity`, or a
/// finite time beyond chrono's range (microseconds since 2000-01-01 UTC, as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTime {
    Time(DateTime<Utc>),
    Infinity,
    NegInfinity,
    OutOfRange(i64),
}

impl PgTime {
    /// The time, when JSON (RFC 3339 through chrono) can carry it.
    pub fn finite(self) -> Option<DateTime<Utc>> {
        match self {
            PgTime::Time(t) => Some(t),
            _ => None,
        }
    }

    /// The time, or a 500 `undecodable_value` saying which column holds what.
    pub fn required(self, column: &str) -> ApiResult<DateTime<Utc>> {
        let what = match self {
            PgTime::Time(t) => return Ok(t),
            PgTime::Infinity => "infinity".to_string(),
            PgTime::NegInfinity => "-infinity".to_string(),
            PgTime::OutOfRange(us) => format!(
                "a time outside the years {}..{} ({us} µs from 2000-01-01 UTC)",
                DateTime::<Utc>::MIN_UTC.format("%Y"),
                DateTime::<Utc>::MAX_UTC.format("%Y")
            ),
        };
        tracing::error!(column, value = %what, "a time the API cannot return");
        Err(ApiError::internal(
            UNDECODABLE,
            format!(
                "column \"{column}\" holds {what}, which the API cannot return as a time \
                 (a row written by SQL, not through the service?): correct or delete that row"
            ),
        ))
    }
}

impl<'a> FromSql<'a> for PgTime {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 8] = raw
            .try_into()
            .map_err(|_| format!("a timestamp is 8 bytes, got {}", raw.len()))?;
        Ok(match i64::from_be_bytes(bytes) {
            i64::MAX => PgTime::Infinity,
            i64::MIN => PgTime::NegInfinity,
            us => match DateTime::<Utc>::from_sql(ty, raw) {
                Ok(t) => PgTime::Time(t),
                Err(_) => PgTime::OutOfRange(us),
            },
        })
    }

    fn accepts(ty: &Type) -> bool {
        <DateTime<Utc> as FromSql>::accepts(ty)
    }
}

/// The 500 for a column that could not be decoded (`cause` says why: a NULL, a value too large).
pub fn undecodable(column: &str, ty: &str, cause: &dyn Display) -> ApiError {
    tracing::error!(column, r#type = ty, error = %cause, "cannot decode a database value");
    ApiError::internal(
        UNDECODABLE,
        format!(
            "the database returned a value the service cannot read in column \"{column}\" ({ty}): {cause}"
        ),
    )
}

fn column_name(row: &Row, idx: usize) -> (String, String) {
    match row.columns().get(idx) {
        Some(c) => (c.name().to_string(), c.type_().name().to_string()),
        None => (format!("#{idx}"), "?".to_string()),
    }
}

/// Column `idx` as `T`, or a 500 `undecodable_value` naming the column (never a panic).
pub fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> ApiResult<T> {
    row.try_get(idx).map_err(|e| {
        let (name, ty) = column_name(row, idx);
        undecodable(&name, &ty, &e)
    })
}

/// A (nullable) timestamptz column for a nullable JSON time: NULL, `infinity`, `-infinity` and
/// times beyond chrono's years are all `None` (null in JSON).
pub fn time_or_null(row: &Row, idx: usize) -> ApiResult<Option<DateTime<Utc>>> {
    Ok(get::<Option<PgTime>>(row, idx)?.and_then(PgTime::finite))
}

/// A NOT NULL timestamptz column for a JSON time that is always present: an infinite or
/// out-of-range value is a 500 `undecodable_value` naming the column.
pub fn time(row: &Row, idx: usize) -> ApiResult<DateTime<Utc>> {
    let t: PgTime = get(row, idx)?;
    t.required(&column_name(row, idx).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// µs from 2000-01-01 UTC, as PostgreSQL sends a timestamptz.
    fn decode(us: i64) -> PgTime {
        PgTime::from_sql(&Type::TIMESTAMPTZ, &us.to_be_bytes()).expect("8 bytes decode")
    }

    #[test]
    fn infinite_and_out_of_range_times_decode_without_error() {
        assert_eq!(decode(i64::MAX), PgTime::Infinity);
        assert_eq!(decode(i64::MIN), PgTime::NegInfinity);
        // PostgreSQL's last valid timestamptz (294276 AD) is beyond chrono's years.
        let end = 9_223_371_331_200_000_000 - 1;
        assert_eq!(decode(end), PgTime::OutOfRange(end));
        // chrono fails on those: what Row::get used to panic with.
        assert!(DateTime::<Utc>::from_sql(&Type::TIMESTAMPTZ, &i64::MAX.to_be_bytes()).is_err());
        let t = DateTime::parse_from_rfc3339("2026-03-02T10:00:05.123456Z")
            .expect("a time")
            .with_timezone(&Utc);
        let pg_epoch = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").expect("a time");
        let us = (t - pg_epoch.with_timezone(&Utc))
            .num_microseconds()
            .expect("in range");
        assert_eq!(decode(us), PgTime::Time(t));
        assert_eq!(
            decode(0).finite().map(|t| t.to_rfc3339()).as_deref(),
            Some("2000-01-01T00:00:00+00:00")
        );
    }

    #[test]
    fn only_timestamptz_of_eight_bytes_is_read() {
        assert!(<PgTime as FromSql>::accepts(&Type::TIMESTAMPTZ));
        assert!(!<PgTime as FromSql>::accepts(&Type::INT8));
        assert!(!<PgTime as FromSql>::accepts(&Type::TEXT));
        assert!(PgTime::from_sql(&Type::TIMESTAMPTZ, &[0, 1, 2]).is_err());
    }

    #[test]
    fn non_finite_times_are_null_or_a_clear_error() {
        assert_eq!(decode(i64::MAX).finite(), None);
        assert_eq!(decode(i64::MIN).finite(), None);
        assert_eq!(decode(9_000_000_000_000_000_000).finite(), None);
        let t = decode(0);
        assert_eq!(t.required("started_at").ok(), t.finite());
        let e = decode(i64::MAX)
            .required("started_at")
            .expect_err("infinity is refused");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, UNDECODABLE);
        assert!(
            e.message.contains("\"started_at\" holds infinity"),
            "{}",
            e.message
        );
        let e = decode(i64::MIN)
            .required("run_at")
            .expect_err("-infinity is refused");
        assert!(
            e.message.contains("\"run_at\" holds -infinity"),
            "{}",
            e.message
        );
        let e = decode(9_000_000_000_000_000_000)
            .required("window_end")
            .expect_err("out of range is refused");
        assert!(e.message.contains("outside the years"), "{}", e.message);
    }

    #[test]
    fn undecodable_values_name_the_column_and_the_cause() {
        let cause = DateTime::<Utc>::from_sql(&Type::TIMESTAMPTZ, &i64::MAX.to_be_bytes())
            .expect_err("too large");
        let e = undecodable("first", "timestamptz", &cause);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, UNDECODABLE);
        assert_eq!(
            e.message,
            "the database returned a value the service cannot read in column \"first\" (timestamptz): value too large to decode"
        );
    }
}
