//! Drift statistics in SQL: `drift(reference, current, method, threshold)` over arrays, the
//! parallel-safe aggregates `drift_agg(value, is_current [, method, threshold])`, and
//! `drift_report` / `drift_summary` over a table's time windows (sql/drift.sql). The statistics
//! are `crates/tidewatch-drift`.

use crate::aggregate::{deserialize, state_mut};
use crate::errors;
use pgrx::prelude::*;
use pgrx::{Internal, PgSqlErrorCode};
use tidewatch_drift::samples::Samples;
use tidewatch_drift::{DriftError, DriftReport};

extension_sql!(
    r#"
CREATE TYPE tidewatch.drift_result AS (
    method text, statistic float8, p_value float8, threshold float8, drifted boolean,
    reference_count bigint, current_count bigint, reference_dropped bigint, current_dropped bigint);
"#,
    name = "drift_types"
);

fn raise(e: DriftError) -> ! {
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
    errors::raise(code, e.to_string(), None, Some(hint))
}

type ResultRow = (String, Option<f64>, Option<f64>, f64, bool);

fn row(report: DriftReport) -> ResultRow {
    let r = report.result;
    (
        r.method.to_string(),
        Some(r.statistic).filter(|s| !s.is_nan()),
        r.p_value,
        r.threshold,
        r.drifted,
    )
}

/// Drift between two numeric samples. NULL elements are skipped; NaN and ±Infinity are dropped.
#[pg_extern(immutable, parallel_safe, name = "drift")]
fn drift_numeric(
    reference: Array<f64>,
    current: Array<f64>,
    method: default!(String, "'auto'"),
    threshold: default!(Option<f64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(statistic, Option<f64>),
        name!(p_value, Option<f64>),
        name!(threshold, f64),
        name!(drifted, bool),
    ),
> {
    let s = Samples {
        reference: reference.iter().flatten().collect(),
        current: current.iter().flatten().collect(),
        method: Some(method),
        threshold,
    };
    TableIterator::once(row(s.test().unwrap_or_else(|e| raise(e))))
}

/// Drift between two categorical samples. NULL elements are skipped.
#[pg_extern(immutable, parallel_safe, name = "drift")]
fn drift_categorical(
    reference: Array<&str>,
    current: Array<&str>,
    method: default!(String, "'auto'"),
    threshold: default!(Option<f64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(statistic, Option<f64>),
        name!(p_value, Option<f64>),
        name!(threshold, f64),
        name!(drifted, bool),
    ),
> {
    let s = Samples {
        reference: reference.iter().flatten().map(String::from).collect(),
        current: current.iter().flatten().map(String::from).collect(),
        method: Some(method),
        threshold,
    };
    TableIterator::once(row(s.test().unwrap_or_else(|e| raise(e))))
}

fn step<T: Clone>(
    mut state: Internal,
    value: Option<T>,
    is_current: Option<bool>,
    method: Option<String>,
    threshold: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: the state of these aggregates is always a Samples<T> of the same T.
    let s: &mut Samples<T> = unsafe { state_mut(&mut state, fcinfo) };
    if s.method.is_none() {
        s.method = method;
    }
    if s.threshold.is_none() {
        s.threshold = threshold;
    }
    if let (Some(v), Some(c)) = (value, is_current) {
        s.add(v, c);
    }
    state
}

fn combine<T: Clone>(mut a: Internal, b: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: both are Samples<T> of the same aggregate.
    let other = unsafe { b.get::<Samples<T>>() }.cloned();
    if let Some(other) = other {
        let s: &mut Samples<T> = unsafe { state_mut(&mut a, fcinfo) };
        s.merge(&other);
    }
    a
}

fn finish(
    report: Result<DriftReport, DriftError>,
) -> pgrx::composite_type!('static, "drift_result") {
    let r = report.unwrap_or_else(|e| raise(e));
    let mut t = PgHeapTuple::new_composite_type("tidewatch.drift_result").unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            e.to_string(),
            None,
            None,
        )
    });
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let _ = t.set_by_name("method", r.result.method);
    let _ = t.set_by_name(
        "statistic",
        Some(r.result.statistic).filter(|s| !s.is_nan()),
    );
    let _ = t.set_by_name("p_value", r.result.p_value);
    let _ = t.set_by_name("threshold", r.result.threshold);
    let _ = t.set_by_name("drifted", r.result.drifted);
    let _ = t.set_by_name("reference_count", count(r.n_reference));
    let _ = t.set_by_name("current_count", count(r.n_current));
    let _ = t.set_by_name("reference_dropped", count(r.dropped_reference));
    let _ = t.set_by_name("current_dropped", count(r.dropped_current));
    t
}

#[pg_extern(immutable, parallel_safe)]
fn _drift_num_step(
    state: Internal,
    value: Option<f64>,
    is_current: Option<bool>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    step(state, value, is_current, None, None, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn _drift_num_step_with(
    state: Internal,
    value: Option<f64>,
    is_current: Option<bool>,
    method: Option<String>,
    threshold: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    step(state, value, is_current, method, threshold, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn _drift_num_combine(a: Internal, b: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    combine::<f64>(a, b, fcinfo)
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _drift_num_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: the state is a Samples<f64>.
    unsafe { state.get::<Samples<f64>>() }
        .map(Samples::to_bytes)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _drift_num_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, Samples::<f64>::from_bytes, fcinfo)
}

#[pg_extern(immutable, parallel_safe, requires = ["drift_types"])]
fn _drift_num_final(state: Internal) -> pgrx::composite_type!('static, "drift_result") {
    // SAFETY: the state is a Samples<f64> (or NULL when no row came).
    finish(
        unsafe { state.get::<Samples<f64>>() }
            .cloned()
            .unwrap_or_default()
            .test(),
    )
}

#[pg_extern(immutable, parallel_safe)]
fn _drift_cat_step(
    state: Internal,
    value: Option<String>,
    is_current: Option<bool>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    step(state, value, is_current, None, None, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn _drift_cat_step_with(
    state: Internal,
    value: Option<String>,
    is_current: Option<bool>,
    method: Option<String>,
    threshold: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    step(state, value, is_current, method, threshold, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn _drift_cat_combine(a: Internal, b: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    combine::<String>(a, b, fcinfo)
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _drift_cat_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: the state is a Samples<String>.
    unsafe { state.get::<Samples<String>>() }
        .map(Samples::to_bytes)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _drift_cat_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, Samples::<String>::from_bytes, fcinfo)
}

#[pg_extern(immutable, parallel_safe, requires = ["drift_types"])]
fn _drift_cat_final(state: Internal) -> pgrx::composite_type!('static, "drift_result") {
    // SAFETY: the state is a Samples<String> (or NULL when no row came).
    finish(
        unsafe { state.get::<Samples<String>>() }
            .cloned()
            .unwrap_or_default()
            .test(),
    )
}

extension_sql!(
    r#"
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean) (
    SFUNC = tidewatch._drift_num_step, STYPE = internal, COMBINEFUNC = tidewatch._drift_num_combine,
    SERIALFUNC = tidewatch._drift_num_serialize, DESERIALFUNC = tidewatch._drift_num_deserialize,
    FINALFUNC = tidewatch._drift_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean, method text, threshold float8) (
    SFUNC = tidewatch._drift_num_step_with, STYPE = internal, COMBINEFUNC = tidewatch._drift_num_combine,
    SERIALFUNC = tidewatch._drift_num_serialize, DESERIALFUNC = tidewatch._drift_num_deserialize,
    FINALFUNC = tidewatch._drift_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean) (
    SFUNC = tidewatch._drift_cat_step, STYPE = internal, COMBINEFUNC = tidewatch._drift_cat_combine,
    SERIALFUNC = tidewatch._drift_cat_serialize, DESERIALFUNC = tidewatch._drift_cat_deserialize,
    FINALFUNC = tidewatch._drift_cat_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean, method text, threshold float8) (
    SFUNC = tidewatch._drift_cat_step_with, STYPE = internal, COMBINEFUNC = tidewatch._drift_cat_combine,
    SERIALFUNC = tidewatch._drift_cat_serialize, DESERIALFUNC = tidewatch._drift_cat_deserialize,
    FINALFUNC = tidewatch._drift_cat_final, PARALLEL = SAFE);
"#,
    name = "drift_aggregates",
    requires = [
        _drift_num_step,
        _drift_num_step_with,
        _drift_num_combine,
        _drift_num_serialize,
        _drift_num_deserialize,
        _drift_num_final,
        _drift_cat_step,
        _drift_cat_step_with,
        _drift_cat_combine,
        _drift_cat_serialize,
        _drift_cat_deserialize,
        _drift_cat_final
    ]
);

// ---------------------------------------------------------------------------------------------
// Reference profiles (save_reference): the reference window of a column as a compact profile,
// exact up to a documented size, a sketch beyond (see crates/tidewatch-drift/src/profile.rs).

#[pg_extern(immutable, parallel_safe)]
fn _profile_num_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: the state is a Samples<f64> (or NULL when no row came).
    let s = unsafe { state.get::<Samples<f64>>() }?;
    Some(tidewatch_drift::Profile::from_numeric(&s.reference).to_bytes())
}

#[pg_extern(immutable, parallel_safe)]
fn _profile_cat_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: the state is a Samples<String> (or NULL when no row came).
    let s = unsafe { state.get::<Samples<String>>() }?;
    Some(tidewatch_drift::Profile::from_categorical(&s.reference).to_bytes())
}

fn profile(bytes: &[u8]) -> tidewatch_drift::Profile {
    tidewatch_drift::Profile::from_bytes(bytes).unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("invalid reference profile: {e}"),
            None,
            Some("Save the reference again with tidewatch.save_reference().".into()),
        )
    })
}

/// Drift of a current window (array) against a saved numeric profile.
#[pg_extern(immutable, parallel_safe, requires = ["drift_types"])]
fn _drift_num_profile(
    reference: &[u8],
    current: Vec<Option<f64>>,
    method: default!(Option<String>, "NULL"),
    threshold: default!(Option<f64>, "NULL"),
) -> pgrx::composite_type!('static, "drift_result") {
    let cur: Vec<f64> = current.into_iter().flatten().collect();
    finish(tidewatch_drift::numeric_drift_against_profile(
        &profile(reference),
        &cur,
        method.as_deref().unwrap_or("auto"),
        threshold,
    ))
}

/// Drift of a current window (array) against a saved categorical profile.
#[pg_extern(immutable, parallel_safe, requires = ["drift_types"])]
fn _drift_cat_profile(
    reference: &[u8],
    current: Vec<Option<String>>,
    method: default!(Option<String>, "NULL"),
    threshold: default!(Option<f64>, "NULL"),
) -> pgrx::composite_type!('static, "drift_result") {
    let cur: Vec<String> = current.into_iter().flatten().collect();
    finish(tidewatch_drift::categorical_drift_against_profile(
        &profile(reference),
        &cur,
        method.as_deref().unwrap_or("auto"),
        threshold,
    ))
}

/// Whether a saved profile holds the exact values (else a sketch with documented error).
#[pg_extern(immutable, parallel_safe, strict)]
fn _profile_is_exact(reference: &[u8]) -> bool {
    profile(reference).is_exact()
}

extension_sql!(
    r#"
CREATE AGGREGATE tidewatch._profile_agg(value float8, is_current boolean) (
    SFUNC = tidewatch._drift_num_step, STYPE = internal, COMBINEFUNC = tidewatch._drift_num_combine,
    SERIALFUNC = tidewatch._drift_num_serialize, DESERIALFUNC = tidewatch._drift_num_deserialize,
    FINALFUNC = tidewatch._profile_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._profile_agg(value text, is_current boolean) (
    SFUNC = tidewatch._drift_cat_step, STYPE = internal, COMBINEFUNC = tidewatch._drift_cat_combine,
    SERIALFUNC = tidewatch._drift_cat_serialize, DESERIALFUNC = tidewatch._drift_cat_deserialize,
    FINALFUNC = tidewatch._profile_cat_final, PARALLEL = SAFE);
"#,
    name = "profile_aggregates",
    requires = ["drift_aggregates", _profile_num_final, _profile_cat_final]
);

extension_sql_file!(
    "../../sql/drift.sql",
    name = "drift_report",
    requires = [
        "drift_aggregates",
        "profile_aggregates",
        "hypertable",
        _drift_num_profile,
        _drift_cat_profile,
        _profile_is_exact
    ]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use serde_json::Value;

    /// Loads a committed fixture (`group,value` CSV) into table `fx` and returns its expected
    /// Evidently scores (computed by scipy/Evidently's formulas, see the crate's fixtures).
    fn load(csv: &str, expected: &str, numeric: bool) -> Value {
        let typ = if numeric { "float8" } else { "text" };
        Spi::run(&format!("CREATE TABLE fx (grp text, value {typ})")).unwrap();
        Spi::run_with_args(
            &format!(
                "INSERT INTO fx SELECT CASE WHEN split_part(l, ',', 1) IN ('c', 'current') THEN 'current' ELSE 'reference' END,
                        nullif(split_part(l, ',', 2), '')::{typ}
                 FROM regexp_split_to_table($1, E'\\r?\\n') l WHERE l <> '' AND l NOT LIKE 'group,%'"
            ),
            &[csv.into()],
        )
        .unwrap();
        // Python's json writes NaN and Infinity, which JSON lacks; none of them is compared here.
        let expected = expected
            .replace("-Infinity", "null")
            .replace("Infinity", "null")
            .replace("NaN", "null");
        serde_json::from_str::<Value>(&expected).unwrap()["evidently"].clone()
    }

    fn check(method: &str, got: (Option<f64>, Option<bool>), expected: &Value) {
        let want = expected[method]["drift_score"].as_f64().unwrap();
        let score = got.0.unwrap();
        assert!(
            (score - want).abs() <= 1e-6_f64.max(1e-9 * want.abs()),
            "{method}: got {score}, scipy/Evidently {want}"
        );
        assert_eq!(
            got.1,
            expected[method]["drift"].as_bool(),
            "{method} drift decision"
        );
    }

    #[pg_test]
    fn drift_agg_matches_scipy_on_100k_rows_under_parallel_query() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/large_normal_60000v40000.csv"),
            include_str!(
                "../../crates/tidewatch-drift/fixtures/large_normal_60000v40000.expected.json"
            ),
            true,
        );
        Spi::run(
            "ANALYZE fx; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2",
        )
        .unwrap();
        let plan = format!(
            "{:?}",
            Spi::explain("SELECT tidewatch.drift_agg(value, grp = 'current', 'ks', NULL) FROM fx")
                .unwrap()
                .0
        );
        assert!(
            plan.contains("Partial"),
            "expected partial aggregation: {plan}"
        );
        for method in [
            "ks",
            "wasserstein",
            "psi",
            "jensenshannon",
            "kl_div",
            "hellinger",
            "t_test",
            "mannw",
            "anderson",
        ] {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce((r).p_value, (r).statistic), (r).drifted
                 FROM (SELECT tidewatch.drift_agg(value, grp = 'current', '{method}', NULL) AS r FROM fx) s"
            ))
            .unwrap();
            check(method, got, &expected);
        }
        let auto = Spi::get_one::<String>(
            "SELECT (tidewatch.drift_agg(value, grp = 'current')).method FROM fx",
        )
        .unwrap();
        assert_eq!(auto.as_deref(), Some("wasserstein"));
    }

    #[pg_test]
    fn drift_over_arrays_matches_scipy() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_numeric.csv"),
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_numeric.expected.json"),
            true,
        );
        for method in [
            "ks",
            "wasserstein",
            "anderson",
            "mannw",
            "ed",
            "t_test",
            "psi",
            "kl_div",
            "jensenshannon",
            "hellinger",
        ] {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce(p_value, statistic), drifted FROM tidewatch.drift(
                    (SELECT array_agg(value) FROM fx WHERE grp = 'reference'),
                    (SELECT array_agg(value) FROM fx WHERE grp = 'current'), '{method}')"
            ))
            .unwrap();
            check(method, got, &expected);
        }
    }

    #[pg_test]
    fn categorical_drift_matches_evidently() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_categorical.csv"),
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_categorical.expected.json"),
            false,
        );
        for method in [
            "psi",
            "kl_div",
            "jensenshannon",
            "hellinger",
            "chisquare",
            "g_test",
        ] {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce((r).p_value, (r).statistic), (r).drifted
                 FROM (SELECT tidewatch.drift_agg(value, grp = 'current', '{method}', NULL) AS r FROM fx) s"
            ))
            .unwrap();
            check(method, got, &expected);
        }
    }

    #[pg_test]
    fn custom_threshold_and_drift_report() {
        Spi::run(
            "CREATE TABLE feats (ts timestamptz NOT NULL, f_num float8, f_cat text, f_flag boolean, note int[]);
             INSERT INTO feats SELECT timestamptz '2024-01-01' + i * interval '1 minute',
                 CASE WHEN i < 1000 THEN (i % 50)::float8 ELSE (i % 50) + 20 END,
                 CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END, i % 2 = 0, NULL
             FROM generate_series(0, 1999) i;
             INSERT INTO feats VALUES ('2024-01-01 00:30', NULL, 'a', true, NULL), ('2024-01-01 00:31', 'NaN', 'b', false, NULL);",
        )
        .unwrap();
        let never = Spi::get_one::<bool>(
            "SELECT drifted FROM tidewatch.drift(ARRAY[1,2,3,4,5]::float8[], ARRAY[6,7,8,9,10]::float8[], 'ks', 0.0)",
        )
        .unwrap();
        assert_eq!(never, Some(false), "p > 0 never drifts at threshold 0");
        let rows = Spi::connect(|c| {
            c.select(
                "SELECT column_name::text, method, drifted, reference_count, reference_nulls
                 FROM tidewatch.drift_report('feats', tstzrange('2024-01-01', '2024-01-01 16:40'),
                      tstzrange('2024-01-01 16:40', '2024-01-02 09:20'), time_column => 'ts')",
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get::<String>(1).unwrap().unwrap(),
                    r.get::<String>(2).unwrap().unwrap(),
                    r.get::<bool>(3).unwrap().unwrap(),
                    r.get::<i64>(4).unwrap().unwrap(),
                    r.get::<i64>(5).unwrap().unwrap(),
                )
            })
            .collect::<Vec<_>>()
        });
        // NaN dropped and counted apart from the NULL; the shifted number drifts, the others not.
        assert_eq!(rows[0], ("f_num".into(), "ks".into(), true, 1000, 1));
        assert_eq!((rows[1].0.as_str(), rows[1].2), ("f_cat", false));
        // 1,002 reference rows: above 1,000 Evidently switches from z to jensenshannon.
        assert_eq!(
            (rows[2].0.as_str(), rows[2].1.as_str(), rows[2].2),
            ("f_flag", "jensenshannon", false)
        );
        assert_eq!(rows.len(), 3, "the int[] column is not compared by default");
        let summary = Spi::get_two::<f64, bool>(
            "SELECT share_of_drifted_columns, dataset_drift FROM tidewatch.drift_summary('feats',
                 tstzrange('2024-01-01', '2024-01-01 16:40'), tstzrange('2024-01-01 16:40', '2024-01-02 09:20'), time_column => 'ts')",
        )
        .unwrap();
        assert_eq!(summary, (Some(1.0 / 3.0), Some(false)));
    }

    #[pg_test(
        error = "unknown drift method \"madd\"; valid methods: ks, wasserstein, psi, jensenshannon, kl_div, anderson, cramer_von_mises, mannw, t_test, ed, es, hellinger, chisquare, z, fisher_exact, g_test, TVD"
    )]
    fn unknown_method_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.drift(ARRAY[1.0], ARRAY[2.0], 'madd')").unwrap();
    }

    #[pg_test(error = "empty reference sample after dropping 1 non-finite value(s)")]
    fn empty_window_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.drift(ARRAY['NaN']::float8[], ARRAY[2.0])").unwrap();
    }

    #[pg_test(error = "method \"ks\" needs numeric data, got categorical")]
    fn numeric_method_on_text_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.drift(ARRAY['a'], ARRAY['b'], 'ks')").unwrap();
    }

    #[pg_test]
    fn saved_reference_gives_the_range_forms_numbers() {
        Spi::run(
            "CREATE TABLE d (ts timestamptz NOT NULL, x float8, c text);
             SELECT tidewatch.create_hypertable('d', 'ts');
             SELECT setseed(0.3);
             INSERT INTO d SELECT timestamptz '2026-01-01' + i * interval '1 minute',
                    random() + CASE WHEN i >= 3000 THEN 0.05 ELSE 0 END, (ARRAY['a', 'b'])[1 + i % 2]
             FROM generate_series(0, 5999) i;",
        )
        .unwrap();
        let saved = Spi::get_one::<i32>(
            "SELECT tidewatch.save_reference('r', 'd', tstzrange('2026-01-01', '2026-01-03 02:00'))",
        )
        .unwrap();
        assert_eq!(saved, Some(2));
        let differing = Spi::get_one::<i64>(
            "WITH a AS (SELECT * FROM tidewatch.drift_report('d', 'r', tstzrange('2026-01-03 02:00', '2026-02-01'),
                                                          methods => '{\"x\": \"ks\"}')),
                  b AS (SELECT * FROM tidewatch.drift_report('d', tstzrange('2026-01-01', '2026-01-03 02:00'),
                                                          tstzrange('2026-01-03 02:00', '2026-02-01'),
                                                          methods => '{\"x\": \"ks\"}'))
             SELECT count(*) FROM a FULL JOIN b USING (column_name)
             WHERE a.method IS DISTINCT FROM b.method OR a.statistic IS DISTINCT FROM b.statistic
                OR a.p_value IS DISTINCT FROM b.p_value OR a.drifted IS DISTINCT FROM b.drifted
                OR a.reference_count IS DISTINCT FROM b.reference_count",
        )
        .unwrap();
        assert_eq!(differing, Some(0));
    }

    #[pg_test(error = "no saved reference named \"nope\"")]
    fn unknown_reference_is_an_error() {
        Spi::run("CREATE TABLE d (ts timestamptz NOT NULL, x float8); SELECT tidewatch.create_hypertable('d', 'ts')")
            .unwrap();
        Spi::run("SELECT * FROM tidewatch.drift_report('d', 'nope', tstzrange(now(), now() + interval '1 day'))").unwrap();
    }
}
