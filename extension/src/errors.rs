//! One place that turns crate errors into SQL errors with SQLSTATE, message and hint.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use tidewatch_time::BucketError;

/// Raise a PostgreSQL ERROR (never returns).
pub fn raise(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    let mut report = ErrorReport::new(code, message, "tidewatch");
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn bucket_error(e: BucketError) -> ! {
    use PgSqlErrorCode::*;
    let (code, hint) = match e {
        BucketError::NonPositivePeriod => (
            ERRCODE_INVALID_PARAMETER_VALUE,
            "Use a positive bucket width such as '5 minutes'.",
        ),
        BucketError::MixedMonthInterval => (
            ERRCODE_FEATURE_NOT_SUPPORTED,
            "Use whole months ('3 months') or days and hours ('7 days'), not both.",
        ),
        BucketError::SubDayDateInterval | BucketError::NonDailyDateInterval => (
            ERRCODE_FEATURE_NOT_SUPPORTED,
            "Bucket dates by whole days or months; cast to timestamp for finer buckets.",
        ),
        BucketError::OutOfRange => (
            ERRCODE_DATETIME_FIELD_OVERFLOW,
            "The bucket would start outside the range PostgreSQL can store.",
        ),
    };
    raise(code, e.to_string(), None, Some(hint.to_string()))
}
