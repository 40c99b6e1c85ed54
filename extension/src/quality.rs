//! Model quality aggregates: `regression_quality(prediction, target)` and
//! `classification_quality(prediction, target)`. The maths is in `crates/tidewatch-quality`.

use crate::aggregate::{deserialize, state_mut};
use pgrx::prelude::*;
use pgrx::{Internal, JsonB};
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

#[pg_extern(immutable, parallel_safe)]
fn _regression_quality_step(
    mut state: Internal,
    prediction: Option<f64>,
    target: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: this aggregate's state is always a Regression.
    let s: &mut Regression = unsafe { state_mut(&mut state, fcinfo) };
    if let (Some(p), Some(t)) = (prediction, target) {
        s.add(p, t);
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn _regression_quality_combine(
    mut a: Internal,
    b: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: both states are Regressions of this aggregate.
    let other = unsafe { b.get::<Regression>() }.cloned();
    if let Some(other) = other {
        // SAFETY: `a` is this aggregate's Regression state and fcinfo is the call's.
        let s: &mut Regression = unsafe { state_mut(&mut a, fcinfo) };
        s.merge(&other);
    }
    a
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _regression_quality_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: this aggregate's state is always a Regression.
    unsafe { state.get::<Regression>() }
        .map(Regression::to_bytes)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _regression_quality_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, Regression::from_bytes, fcinfo)
}

#[pg_extern(immutable, parallel_safe, requires = ["quality_types"])]
fn _regression_quality_final(
    state: Internal,
) -> pgrx::composite_type!('static, "regression_metrics") {
    // SAFETY: this aggregate's state is always a Regression.
    let m = unsafe { state.get::<Regression>() }
        .cloned()
        .unwrap_or_default()
        .metrics();
    let mut t =
        PgHeapTuple::new_composite_type("tidewatch.regression_metrics").unwrap_or_else(|e| {
            crate::errors::raise(
                pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                e.to_string(),
                None,
                None,
            )
        });
    let set = |t: &mut PgHeapTuple<'_, _>, k: &str, v: Option<f64>| {
        let _ = t.set_by_name(k, v);
    };
    let _ = t.set_by_name("n", i64::try_from(m.n).unwrap_or(i64::MAX));
    set(&mut t, "mae", m.mae);
    set(&mut t, "rmse", m.rmse);
    set(&mut t, "mape", m.mape);
    set(&mut t, "r2", m.r2);
    set(&mut t, "mean_error", m.mean_error);
    t
}

#[pg_extern(immutable, parallel_safe)]
fn _classification_quality_step(
    mut state: Internal,
    prediction: Option<&str>,
    target: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: this aggregate's state is always a Classification.
    let s: &mut Classification = unsafe { state_mut(&mut state, fcinfo) };
    if let (Some(p), Some(t)) = (prediction, target) {
        s.add(p, t);
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn _classification_quality_combine(
    mut a: Internal,
    b: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: both states are Classifications of this aggregate.
    let other = unsafe { b.get::<Classification>() }.cloned();
    if let Some(other) = other {
        // SAFETY: `a` is this aggregate's Classification state and fcinfo is the call's.
        let s: &mut Classification = unsafe { state_mut(&mut a, fcinfo) };
        s.merge(&other);
    }
    a
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _classification_quality_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: this aggregate's state is always a Classification.
    unsafe { state.get::<Classification>() }
        .map(Classification::to_bytes)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _classification_quality_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, Classification::from_bytes, fcinfo)
}

#[pg_extern(immutable, parallel_safe, requires = ["quality_types"])]
fn _classification_quality_final(
    state: Internal,
) -> pgrx::composite_type!('static, "classification_metrics") {
    // SAFETY: this aggregate's state is always a Classification.
    let c = unsafe { state.get::<Classification>() }
        .cloned()
        .unwrap_or_default();
    let m = c.metrics();
    let mut t =
        PgHeapTuple::new_composite_type("tidewatch.classification_metrics").unwrap_or_else(|e| {
            crate::errors::raise(
                pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                e.to_string(),
                None,
                None,
            )
        });
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
    t
}

extension_sql!(
    r#"
CREATE AGGREGATE tidewatch.regression_quality(prediction float8, target float8) (
    SFUNC = tidewatch._regression_quality_step, STYPE = internal,
    COMBINEFUNC = tidewatch._regression_quality_combine,
    SERIALFUNC = tidewatch._regression_quality_serialize,
    DESERIALFUNC = tidewatch._regression_quality_deserialize,
    FINALFUNC = tidewatch._regression_quality_final,
    PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.classification_quality(prediction text, target text) (
    SFUNC = tidewatch._classification_quality_step, STYPE = internal,
    COMBINEFUNC = tidewatch._classification_quality_combine,
    SERIALFUNC = tidewatch._classification_quality_serialize,
    DESERIALFUNC = tidewatch._classification_quality_deserialize,
    FINALFUNC = tidewatch._classification_quality_final,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE tidewatch.regression_quality(float8, float8) IS
'Regression quality of predictions against targets: n, MAE, RMSE, MAPE (percent, rows with target 0 skipped), R² and mean error (prediction − target). Rows with a NULL or non-finite value are skipped; parallel-safe, combines across workers.';
COMMENT ON AGGREGATE tidewatch.classification_quality(text, text) IS
'Classification quality of predicted against true labels: n, accuracy, macro precision/recall/F1 (0 for a class never predicted), per-class metrics and the confusion matrix {target: {prediction: count}} as jsonb. Rows with a NULL label are skipped; parallel-safe.';
"#,
    name = "quality_aggregates",
    requires = [
        _regression_quality_step,
        _regression_quality_combine,
        _regression_quality_serialize,
        _regression_quality_deserialize,
        _regression_quality_final,
        _classification_quality_step,
        _classification_quality_combine,
        _classification_quality_serialize,
        _classification_quality_deserialize,
        _classification_quality_final
    ]
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
