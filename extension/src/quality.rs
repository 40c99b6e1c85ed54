//! Model quality aggregates: `regression_quality(prediction, target)` and
//! `classification_quality(prediction, target)`. The maths is in `crates/tidewatch-quality`.

use crate::aggregate::{
    self, args, expanded_methods, expanded_mut, expanded_ref, finfo_v1, AggState,
};
use pgrx::prelude::*;
use pgrx::JsonB;
use tidewatch_quality::{Classification, Regression};

extension_sql!(
    r#"
CREATE TYPE tidewatch.regression_metrics AS (
    n bigint, mae float8, rmse float8, mape float8, r2 float8, mean_error float8);
CREATE TYPE tidewatch.classification_metrics AS (
    n bigint, accuracy float8, precision_macro float8, recall_macro float8, f1_macro float8,
    per_class jsonb, confusion jsonb);
"#,
    name = "quality_types"
);

impl AggState for Regression {
    fn to_bytes(&self) -> Vec<u8> {
        Regression::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Regression::from_bytes(bytes)
    }
    fn merge(&mut self, other: &Self) {
        Regression::merge(self, other);
    }
    expanded_methods!(Regression);
}

impl AggState for Classification {
    fn to_bytes(&self) -> Vec<u8> {
        Classification::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Classification::from_bytes(bytes)
    }
    fn merge(&mut self, other: &Self) {
        Classification::merge(self, other);
    }
    expanded_methods!(Classification);
}

finfo_v1!(
    pg_finfo_tidewatch_regression_quality_step,
    pg_finfo_tidewatch_regression_quality_combine,
    pg_finfo_tidewatch_regression_quality_final,
    pg_finfo_tidewatch_classification_quality_step,
    pg_finfo_tidewatch_classification_quality_combine,
    pg_finfo_tidewatch_classification_quality_final,
);

/// A float8 argument (passed by value).
fn float8(a: &pg_sys::NullableDatum) -> Option<f64> {
    (!a.isnull).then(|| f64::from_bits(a.value.value() as u64))
}

/// The composite of a final function, or an internal error.
fn composite(type_name: &str) -> PgHeapTuple<'static, pgrx::AllocatedByRust> {
    PgHeapTuple::new_composite_type(type_name).unwrap_or_else(|e| {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            e.to_string(),
            None,
            None,
        )
    })
}

/// Transition of `regression_quality(float8, float8)`: (bytea, float8, float8) → bytea.
///
/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_regression_quality_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo, declared (bytea, float8, float8).
    let a = unsafe { args(fcinfo) };
    // SAFETY: argument 0 is this aggregate's state.
    let (s, d) = unsafe { expanded_mut::<Regression>(fcinfo, Regression::default) };
    if let (Some(p), Some(t)) = (float8(&a[1]), float8(&a[2])) {
        s.add(p, t);
    }
    d
}

/// # Safety
/// Only for fmgr, as the combine function of `regression_quality`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_regression_quality_combine(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: as declared below.
    unsafe { aggregate::combine::<Regression>(fcinfo) }
}

/// Final function of `regression_quality`: (bytea) → tidewatch.regression_metrics.
///
/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_regression_quality_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo, declared (bytea); the state of regression_quality or NULL.
    let state = unsafe { expanded_ref::<Regression>(args(fcinfo)[0]) };
    let m = state.map_or_else(|| Regression::default().metrics(), |s| s.metrics());
    let mut t = composite("tidewatch.regression_metrics");
    let set = |t: &mut PgHeapTuple<'_, _>, k: &str, v: Option<f64>| {
        let _ = t.set_by_name(k, v);
    };
    let _ = t.set_by_name("n", i64::try_from(m.n).unwrap_or(i64::MAX));
    set(&mut t, "mae", m.mae);
    set(&mut t, "rmse", m.rmse);
    set(&mut t, "mape", m.mape);
    set(&mut t, "r2", m.r2);
    set(&mut t, "mean_error", m.mean_error);
    t.into_composite_datum().unwrap_or(pg_sys::Datum::from(0))
}

/// Transition of `classification_quality(text, text)`: (bytea, text, text) → bytea.
///
/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_classification_quality_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo, declared (bytea, text, text).
    let a = unsafe { args(fcinfo) };
    // SAFETY: argument 0 is this aggregate's state.
    let (s, d) = unsafe { expanded_mut::<Classification>(fcinfo, Classification::default) };
    // SAFETY: arguments 1 and 2 are text.
    let (p, t) = unsafe {
        (
            <&str>::from_datum(a[1].value, a[1].isnull),
            <&str>::from_datum(a[2].value, a[2].isnull),
        )
    };
    if let (Some(p), Some(t)) = (p, t) {
        s.add(p, t);
    }
    d
}

/// # Safety
/// Only for fmgr, as the combine function of `classification_quality`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_classification_quality_combine(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: as declared below.
    unsafe { aggregate::combine::<Classification>(fcinfo) }
}

/// Final function of `classification_quality`: (bytea) → tidewatch.classification_metrics.
///
/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_classification_quality_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo, declared (bytea); the state of classification_quality or NULL.
    let state = unsafe { expanded_ref::<Classification>(args(fcinfo)[0]) };
    let empty = Classification::default();
    let c: &Classification = state.as_deref().unwrap_or(&empty);
    let m = c.metrics();
    let mut t = composite("tidewatch.classification_metrics");
    let _ = t.set_by_name("n", i64::try_from(m.n).unwrap_or(i64::MAX));
    let _ = t.set_by_name("accuracy", m.accuracy);
    let _ = t.set_by_name("precision_macro", m.precision_macro);
    let _ = t.set_by_name("recall_macro", m.recall_macro);
    let _ = t.set_by_name("f1_macro", m.f1_macro);
    let _ = t.set_by_name(
        "per_class",
        JsonB(serde_json::to_value(&m.per_class).unwrap_or_default()),
    );
    let _ = t.set_by_name(
        "confusion",
        JsonB(serde_json::to_value(&c.confusion).unwrap_or_default()),
    );
    t.into_composite_datum().unwrap_or(pg_sys::Datum::from(0))
}

// The state is a bytea (an expanded object in memory, see aggregate.rs), so that Citus runs
// these aggregates partially on its workers; parallel query ships it as it is (a bytea state
// needs no serialize/deserialize functions).
extension_sql!(
    r#"
CREATE FUNCTION tidewatch._regression_quality_step(bytea, float8, float8) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_regression_quality_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._regression_quality_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_regression_quality_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._regression_quality_final(bytea) RETURNS tidewatch.regression_metrics
    AS 'MODULE_PATHNAME', 'tidewatch_regression_quality_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._classification_quality_step(bytea, text, text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_classification_quality_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._classification_quality_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_classification_quality_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._classification_quality_final(bytea) RETURNS tidewatch.classification_metrics
    AS 'MODULE_PATHNAME', 'tidewatch_classification_quality_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch.regression_quality(prediction float8, target float8) (
    SFUNC = tidewatch._regression_quality_step, STYPE = bytea,
    COMBINEFUNC = tidewatch._regression_quality_combine,
    FINALFUNC = tidewatch._regression_quality_final,
    PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.classification_quality(prediction text, target text) (
    SFUNC = tidewatch._classification_quality_step, STYPE = bytea,
    COMBINEFUNC = tidewatch._classification_quality_combine,
    FINALFUNC = tidewatch._classification_quality_final,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE tidewatch.regression_quality(float8, float8) IS
'Regression quality of predictions against targets: n, MAE, RMSE, MAPE (percent, rows with target 0 skipped), R² and mean error (prediction − target). Rows with a NULL or non-finite value are skipped; parallel-safe, combines across workers.';
COMMENT ON AGGREGATE tidewatch.classification_quality(text, text) IS
'Classification quality of predicted against true labels: n, accuracy, macro precision/recall/F1 (0 for a class never predicted), per-class metrics and the confusion matrix {target: {prediction: count}} as jsonb. Rows with a NULL label are skipped; parallel-safe.';
"#,
    name = "quality_aggregates",
    requires = ["quality_types"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup() {
        Spi::run(
            "CREATE TABLE preds AS
             SELECT i, tidewatch.time_bucket('1 hour', timestamptz '2024-01-01' + i * interval '1 minute') AS hour,
                    (i % 97) * 1.5 + (i % 7) AS target, (i % 97) * 1.5 + (i % 11) - 3 AS prediction,
                    (ARRAY['ok','warn','fail'])[1 + i % 3] AS label, (ARRAY['ok','warn','fail'])[1 + (i % 5) % 3] AS guess
             FROM generate_series(1, 200000) i;
             ANALYZE preds;
             SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2;",
        )
        .unwrap();
    }

    #[pg_test]
    fn regression_quality_matches_formulas_under_parallel_query() {
        setup();
        let plan = format!(
            "{:?}",
            Spi::explain("SELECT tidewatch.regression_quality(prediction, target) FROM preds")
                .unwrap()
                .0
        );
        assert!(
            plan.contains("Partial"),
            "expected a parallel partial aggregate: {plan}"
        );
        let diff = Spi::get_one::<f64>(
            "WITH q AS (SELECT (tidewatch.regression_quality(prediction, target)).* FROM preds),
                  f AS (SELECT count(*) AS n, avg(abs(prediction - target)) AS mae,
                               sqrt(avg((prediction - target) ^ 2)) AS rmse,
                               100 * avg(abs((prediction - target) / target)) FILTER (WHERE target <> 0) AS mape,
                               1 - sum((prediction - target) ^ 2) / sum((target - (SELECT avg(target) FROM preds)) ^ 2) AS r2,
                               avg(prediction - target) AS mean_error FROM preds)
             SELECT greatest(abs(q.n - f.n), abs(q.mae - f.mae), abs(q.rmse - f.rmse), abs(q.mape - f.mape),
                             abs(q.r2 - f.r2), abs(q.mean_error - f.mean_error)) FROM q, f",
        )
        .unwrap()
        .unwrap();
        assert!(diff < 1e-9, "max difference {diff}");
    }

    #[pg_test]
    fn classification_quality_matches_counts_under_parallel_query() {
        setup();
        let row = Spi::get_three::<f64, f64, i64>(
            "SELECT (q).accuracy, (q).recall_macro, ((q).confusion -> 'ok' ->> 'warn')::bigint
             FROM (SELECT tidewatch.classification_quality(guess, label) AS q FROM preds) s",
        )
        .unwrap();
        let expect = Spi::get_three::<f64, f64, i64>(
            "SELECT avg((guess = label)::int)::float8,
                    (SELECT avg(r) FROM (SELECT avg((guess = label)::int)::float8 AS r FROM preds GROUP BY label) x),
                    count(*) FILTER (WHERE label = 'ok' AND guess = 'warn') FROM preds",
        )
        .unwrap();
        let (a, b) = (row, expect);
        assert!((a.0.unwrap() - b.0.unwrap()).abs() < 1e-12);
        assert!((a.1.unwrap() - b.1.unwrap()).abs() < 1e-12);
        assert_eq!(a.2, b.2);
    }

    #[pg_test]
    fn quality_composes_with_time_bucket_and_handles_empty_input() {
        setup();
        let hours = Spi::get_one::<i64>(
            "SELECT count(*) FROM (SELECT hour, tidewatch.regression_quality(prediction, target) FROM preds GROUP BY hour) s",
        )
        .unwrap();
        assert_eq!(
            hours,
            Spi::get_one::<i64>("SELECT count(DISTINCT hour) FROM preds").unwrap()
        );
        let empty = Spi::get_two::<i64, f64>(
            "SELECT (q).n, (q).mae FROM (SELECT tidewatch.regression_quality(prediction, target) q FROM preds WHERE false) s",
        )
        .unwrap();
        assert_eq!(empty, (Some(0), None));
    }
}
