//! One place that turns crate errors into SQL errors with SQLSTATE, message and hint.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use tidewatch_anomaly::AnomalyError;
use tidewatch_drift::DriftError;
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

/// A required argument of a non-strict function: NULL is refused with 22004 (pgrx would panic,
/// which reports XX000).
pub fn required<T>(value: Option<T>, name: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{name} must not be NULL"),
            None,
            None,
        )
    })
}

/// A `jsonb` argument as its text, parsed by the function itself: pgrx's `JsonB` parses it while
/// unboxing the argument and panics (XX000) on jsonb that serde_json refuses (nesting deeper than
/// 128 levels, numbers beyond f64 such as 1e999). [`JsonbArg::value`] refuses those with 22023.
pub struct JsonbArg(pub String);

impl JsonbArg {
    /// The parsed value, or ERROR 22023 naming `what` (e.g. "params").
    pub fn value(&self, what: &str) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{what} cannot be read: {e}"),
                Some("Tidewatch reads jsonb nested at most 128 levels deep, with numbers that fit a float8.".into()),
                Some(format!("Pass {what} as a flat jsonb object such as '{{\"threshold\": 0.6}}'.")),
            )
        })
    }

    /// Read the jsonb datum `d` (not NULL) as its text.
    ///
    /// # Safety
    /// `d` must be a jsonb datum.
    pub unsafe fn from_jsonb_datum(d: pg_sys::Datum) -> JsonbArg {
        // SAFETY: d is a jsonb varlena (caller); jsonb_out returns a palloc'd C string.
        let cstr = unsafe {
            let detoasted = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
            pgrx::direct_function_call::<&core::ffi::CStr>(
                pg_sys::jsonb_out,
                &[Some(detoasted.into())],
            )
        };
        JsonbArg(
            cstr.map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    }
}

impl pgrx::FromDatum for JsonbArg {
    unsafe fn from_polymorphic_datum(
        d: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbArg> {
        // SAFETY: a jsonb argument (the SQL type below), not NULL.
        (!is_null).then(|| unsafe { JsonbArg::from_jsonb_datum(d) })
    }
}

// SAFETY: JsonbArg is read from a jsonb datum (FromDatum above) and only used as an argument.
unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for JsonbArg {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: the argument is a jsonb (caller); NULL is handled by the Option.
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("argument {} must not be NULL", index + 1),
                None,
                None,
            )
        })
    }
}

pgrx::impl_sql_translatable!(JsonbArg, arg_only = "jsonb");

/// An anomaly crate error: 22023 for bad methods and params, XX001 for a corrupt state, 55000 for a
/// state an earlier version wrote that this one cannot read.
pub fn anomaly(e: AnomalyError) -> ! {
    let code = match e {
        AnomalyError::CorruptState(_) => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        AnomalyError::OldState { .. } => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    let hint = e.hint();
    raise(code, e.to_string(), None, Some(hint))
}

/// A drift crate error: 22023 for unknown or inapplicable methods and empty samples, 42804 for a
/// method that does not fit the column's type.
pub fn drift(e: DriftError) -> ! {
    let (code, hint) = match &e {
        DriftError::UnknownMethod { valid, .. } => {
            (PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("Valid methods: auto, {valid}."))
        }
        DriftError::EmptySample { which, .. } => (
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("The {which} window has no finite values; check its time range and column."),
        ),
        DriftError::MethodNotForType { .. } => (
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            "For text or boolean columns use auto, chisquare, z, fisher_exact, g_test, psi, kl_div, jensenshannon, TVD or hellinger.".into(),
        ),
        DriftError::NotApplicable { .. } => {
            (PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "Choose another method or use auto.".into())
        }
    };
    raise(code, e.to_string(), None, Some(hint))
}

/// A failure of SPI itself (not of the user's input): XX000, naming the log miner.
pub fn spi(e: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("tidewatch log miner: {e}"),
        None,
        None,
    )
}
