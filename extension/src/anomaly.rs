//! Anomaly scoring in SQL: the batch aggregate behind `detect_anomalies`, the streaming window
//! aggregate `anomaly_score`, trained models (`train_detector`, `predict`, `score`) and the
//! per-batch step of real-time monitors. The detectors live in `crates/tidewatch-anomaly`; the
//! catalog, triggers, episodes and explanations in `sql/anomaly.sql`.

use crate::aggregate::{agg_context, deserialize, state_mut};
use crate::errors;
use pgrx::prelude::*;
use pgrx::{Internal, JsonB, PgMemoryContexts, PgSqlErrorCode};
use tidewatch_anomaly::monitor::MonitorState;
use tidewatch_anomaly::{Model, Scored};

/// µs between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

pub(crate) fn unix_us(ts: TimestampWithTimeZone) -> i64 {
    let pg: i64 = ts.into();
    pg.saturating_add(PG_EPOCH_US)
}

use crate::errors::anomaly as raise;

pub(crate) fn tstz(unix: i64) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(unix.saturating_sub(PG_EPOCH_US)).ok()
}

fn params_value(params: Option<errors::JsonbArg>) -> serde_json::Value {
    params.map_or(serde_json::Value::Null, |p| p.value("params"))
}

/// The detector for `method` (default `auto`) and `params`, or an SQL error listing valid ones.
fn build_model(method: Option<&str>, params: &serde_json::Value) -> Model {
    Model::new(method.unwrap_or("auto"), params).unwrap_or_else(|e| raise(e))
}

/// Check a method and its params; raises 22023 with the valid names in the hint.
#[pg_extern(immutable, parallel_safe)]
fn _anomaly_check(method: Option<&str>, params: Option<errors::JsonbArg>) -> bool {
    build_model(method, &params_value(params));
    true
}

// ---------------------------------------------------------------------------------------------
// Batch aggregate: collect a series' points, score them in time order at the end.

/// The state of `anomaly_agg`; its byte format lives in the algorithm crate.
use tidewatch_anomaly::formats::{Batch, ScoredPoints};

/// The method and params of an aggregate call: arguments 3 and 4 when given, read only on the
/// first row of each group (the state keeps them).
///
/// # Safety
/// `args` are the call's arguments; 3 is text and 4 is jsonb when present.
unsafe fn method_params(args: &[pg_sys::NullableDatum]) -> (Option<String>, serde_json::Value) {
    let arg = |i: usize| args.get(i).filter(|a| !a.isnull).map(|a| a.value);
    // SAFETY: the caller's contract on argument types.
    let method = arg(3).and_then(|d| unsafe { String::from_datum(d, false) });
    // SAFETY: argument 4 is jsonb (the caller's contract).
    let params = arg(4).map(|d| unsafe { errors::JsonbArg::from_jsonb_datum(d) });
    (method, params_value(params))
}

/// The (timestamptz, float8) of arguments 1 and 2, None when either is NULL.
fn point_arg(args: &[pg_sys::NullableDatum]) -> Option<(i64, f64)> {
    match (args.get(1), args.get(2)) {
        (Some(t), Some(v)) if !t.isnull && !v.isnull => Some((
            (t.value.value() as i64).saturating_add(PG_EPOCH_US),
            f64::from_bits(v.value.value() as u64),
        )),
        _ => None,
    }
}

/// Transition of `anomaly_agg(ts, value [, method [, params]])`: a plain version-1 C function,
/// since pgrx's wrapper converted the method and the params (jsonb to serde) on every row.
///
/// # Safety
/// Only for fmgr, as the transition function of the aggregates declared below (state: Batch).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_anomaly_agg_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo with nargs (3 to 5) arguments.
    let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    let state: *mut Batch = if args[0].isnull {
        let ctx = agg_context(fcinfo);
        // SAFETY: declared (internal, timestamptz, float8 [, text [, jsonb]]).
        let (method, params) = unsafe { method_params(args) };
        // Fail on the first row, not after the whole scan.
        build_model(method.as_deref(), &params);
        let fresh = Batch {
            method: Some(method.unwrap_or_else(|| "auto".into())),
            params: Some(params),
            points: Vec::new(),
            nulls: 0,
        };
        // Owned by the aggregate's memory context, as pgrx's Internal::new does.
        PgMemoryContexts::For(ctx).leak_and_drop_on_delete(fresh)
    } else {
        args[0].value.cast_mut_ptr()
    };
    // SAFETY: a live Batch of this aggregate (created above, or by combine/deserialize).
    let s = unsafe { &mut *state };
    match point_arg(args) {
        Some(p) => s.points.push(p),
        None => s.nulls += 1,
    }
    pg_sys::Datum::from(state)
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_anomaly_agg_step() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_agg_combine(
    mut a: Internal,
    b: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: both states are Batches of this aggregate.
    let other = unsafe { b.get::<Batch>() }.cloned();
    if let Some(other) = other {
        // SAFETY: `a` is this aggregate's Batch state and fcinfo is the call's (state_mut's contract).
        let s: &mut Batch = unsafe { state_mut(&mut a, fcinfo) };
        s.merge(&other);
    }
    a
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _anomaly_agg_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: this aggregate's state is always a Batch.
    unsafe { state.get::<Batch>() }
        .map(Batch::encode)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _anomaly_agg_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, Batch::decode, fcinfo)
}

/// Score the collected series; the result is a compact array of scored points (bytea) that
/// `anomaly_points()` expands into rows.
#[pg_extern(immutable, parallel_safe)]
fn _anomaly_agg_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: this aggregate's state is always a Batch (or NULL when no row came).
    let s = unsafe { state.get::<Batch>() }?;
    Some(s.score().unwrap_or_else(|e| raise(e)))
}

/// `_anomaly_agg_final` keeping only the flagged points: the final function of
/// `_anomaly_agg_flagged`, which `detect_anomalies(..., anomalies_only => true)` uses.
#[pg_extern(immutable, parallel_safe)]
fn _anomaly_flagged_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: this aggregate's state is always a Batch (or NULL when no row came).
    let s = unsafe { state.get::<Batch>() }?;
    Some(s.score_flagged().unwrap_or_else(|e| raise(e)))
}

/// The scored points of `anomaly_agg`'s result, or 22P03 for bytes that are not one.
fn scored_points(batch: &[u8]) -> ScoredPoints<'_> {
    ScoredPoints::parse(batch).unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "not the result of tidewatch.anomaly_agg()".into(),
            Some(e.to_string()),
            Some("Pass the value returned by tidewatch.anomaly_agg(ts, value).".into()),
        )
    })
}

/// `anomaly_points(batch bytea, anomalies_only boolean DEFAULT false)`: the result of
/// `anomaly_agg` as one row per scored point, in time order. A plain version-1 C function that
/// fills the executor's tuplestore directly (materialize mode): `detect_anomalies` returns every
/// point of a table through it; with pgrx's value-per-call wrapper each row went through the
/// set-returning-function protocol and was then copied into the executor's tuplestore.
///
/// # Safety
/// Only for fmgr, as declared below: STRICT (bytea, boolean), returning a set of 8 columns.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_anomaly_points(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo with two non-NULL arguments (STRICT): a bytea and a boolean.
    let (batch, anomalies_only) = unsafe {
        let args = (*fcinfo).args.as_slice(2);
        (
            <&[u8]>::from_datum(args[0].value, false).unwrap_or_default(),
            args[1].value.value() != 0,
        )
    };
    let points = scored_points(batch);
    // SAFETY: InitMaterializedSRF checks the call context (a set-returning call that accepts
    // materialize mode) and raises an error otherwise; it sets setResult and setDesc.
    let (store, desc) = unsafe {
        pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo.cast::<pg_sys::ReturnSetInfo>();
        ((*rsinfo).setResult, (*rsinfo).setDesc)
    };
    let f8 = |x: f64| pg_sys::Datum::from(x.to_bits() as usize);
    for p in points.iter() {
        if anomalies_only && !p.is_anomaly {
            continue;
        }
        let pg = p.ts.saturating_sub(PG_EPOCH_US);
        let ts_ok = (MIN_TIMESTAMP..END_TIMESTAMP).contains(&pg);
        let (e, lo, hi) = (p.expected, p.lower, p.upper);
        let kind = p.kind.map(|k| k.as_str());
        let mut values = [
            pg_sys::Datum::from(pg as usize),
            f8(p.value),
            f8(e),
            f8(lo),
            f8(hi),
            f8(p.score),
            pg_sys::Datum::from(usize::from(p.is_anomaly)),
            kind.and_then(|k| k.into_datum())
                .unwrap_or(pg_sys::Datum::from(0)),
        ];
        let mut nulls = [
            !ts_ok,
            false,
            !e.is_finite(),
            !lo.is_finite(),
            !hi.is_finite(),
            false,
            false,
            kind.is_none(),
        ];
        // SAFETY: the tuplestore and descriptor InitMaterializedSRF made for this call, whose
        // 8 columns the values match.
        unsafe {
            pg_sys::tuplestore_putvalues(store, desc, values.as_mut_ptr(), nulls.as_mut_ptr())
        };
    }
    pg_sys::Datum::from(0)
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_anomaly_points() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// PostgreSQL's valid timestamp range (`MIN_TIMESTAMP`, `END_TIMESTAMP` in datatype/timestamp.h).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

extension_sql!(
    r#"
CREATE FUNCTION tidewatch.anomaly_points(batch bytea, anomalies_only boolean DEFAULT false)
    RETURNS TABLE (ts timestamptz, value float8, expected float8, lower float8, upper float8,
                   score float8, is_anomaly boolean, kind text)
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_points' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
"#,
    name = "anomaly_points_c"
);

/// How many input rows `anomaly_agg` skipped (NULL time or value, NaN, ±Infinity).
#[pg_extern(immutable, parallel_safe, strict)]
fn anomaly_skipped(batch: &[u8]) -> i64 {
    i64::try_from(scored_points(batch).skipped()).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Streaming window aggregate: the score of the current row given the rows before it.

#[derive(Default)]
struct Stream {
    model: Option<Model>,
    last: Option<Scored>,
}

/// Transition of the window aggregate `anomaly_score(ts, value [, method [, params]])`; a plain
/// version-1 C function for the same reason as `tidewatch_anomaly_agg_step`.
///
/// # Safety
/// Only for fmgr, as the transition function of the aggregates declared below (state: Stream).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_anomaly_stream_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo with nargs (3 to 5) arguments.
    let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    let state: *mut Stream = if args[0].isnull {
        let ctx = agg_context(fcinfo);
        // SAFETY: declared (internal, timestamptz, float8 [, text [, jsonb]]).
        let (method, params) = unsafe { method_params(args) };
        let fresh = Stream {
            model: Some(build_model(method.as_deref(), &params)),
            last: None,
        };
        PgMemoryContexts::For(ctx).leak_and_drop_on_delete(fresh)
    } else {
        args[0].value.cast_mut_ptr()
    };
    // SAFETY: a live Stream of this aggregate, created above.
    let s = unsafe { &mut *state };
    s.last = match (point_arg(args), s.model.as_mut()) {
        (Some((t, v)), Some(m)) if v.is_finite() => Some(m.update(t, v)),
        _ => None,
    };
    pg_sys::Datum::from(state)
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_anomaly_stream_step() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_stream_final(state: Internal) -> Option<f64> {
    // SAFETY: this aggregate's state is always a Stream.
    unsafe { state.get::<Stream>() }
        .and_then(|s| s.last)
        .map(|s| s.score)
}

extension_sql!(
    r#"
CREATE FUNCTION tidewatch._anomaly_agg_step(internal, timestamptz, float8) RETURNS internal
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_agg_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._anomaly_agg_step(internal, timestamptz, float8, text) RETURNS internal
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_agg_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._anomaly_agg_step(internal, timestamptz, float8, text, jsonb) RETURNS internal
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_agg_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._anomaly_stream_step(internal, timestamptz, float8) RETURNS internal
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_stream_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._anomaly_stream_step(internal, timestamptz, float8, text) RETURNS internal
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_stream_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._anomaly_stream_step(internal, timestamptz, float8, text, jsonb) RETURNS internal
    AS 'MODULE_PATHNAME', 'tidewatch_anomaly_stream_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch.anomaly_agg(ts timestamptz, value float8) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_agg_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_agg(ts timestamptz, value float8, method text) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_agg_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_agg(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_agg_final, PARALLEL = SAFE);
-- Order-dependent, so no combine function: it is meant as a window function
-- (OVER (PARTITION BY series ORDER BY ts)), which never runs partial aggregation.
CREATE AGGREGATE tidewatch.anomaly_score(ts timestamptz, value float8) (
    SFUNC = tidewatch._anomaly_stream_step, STYPE = internal,
    FINALFUNC = tidewatch._anomaly_stream_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_score(ts timestamptz, value float8, method text) (
    SFUNC = tidewatch._anomaly_stream_step, STYPE = internal,
    FINALFUNC = tidewatch._anomaly_stream_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_score(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_stream_step, STYPE = internal,
    FINALFUNC = tidewatch._anomaly_stream_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
"#,
    name = "anomaly_aggregates",
    requires = [
        _anomaly_agg_combine,
        _anomaly_agg_serialize,
        _anomaly_agg_deserialize,
        _anomaly_agg_final,
        _anomaly_stream_final
    ]
);

// ---------------------------------------------------------------------------------------------
// Trained models: the model bytes after learning from a window, with a JSON summary.

extension_sql!(
    r#"
CREATE TYPE tidewatch._trained AS (n bigint, skipped bigint, anomaly_rate float8,
                                   first_seen timestamptz, last_seen timestamptz, state bytea);
"#,
    name = "trained_type"
);

/// The model trained on the collected series (see `Batch::train`), as `train_detector` stores it.
#[pg_extern(immutable, parallel_safe, requires = ["trained_type"])]
fn _train_final(state: Internal) -> Option<pgrx::composite_type!('static, "_trained")> {
    // SAFETY: the training aggregate's state is a Batch (or NULL when no row came).
    let s = unsafe { state.get::<Batch>() }?;
    Some(trained_row(s.train().unwrap_or_else(|e| raise(e))))
}

/// A trained model as the row `tidewatch._trained` (train_detector, train_device_detector).
pub(crate) fn trained_row(
    t: tidewatch_anomaly::formats::Trained,
) -> pgrx::composite_type!('static, "_trained") {
    let mut row = PgHeapTuple::new_composite_type("tidewatch._trained").unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            e.to_string(),
            None,
            None,
        )
    });
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let set = [
        row.set_by_name("n", count(t.n)),
        row.set_by_name("skipped", count(t.skipped)),
        row.set_by_name("anomaly_rate", t.anomaly_rate()),
        row.set_by_name("first_seen", t.first_us.and_then(tstz)),
        row.set_by_name("last_seen", t.last_us.and_then(tstz)),
        row.set_by_name("state", t.model),
    ];
    if let Some(Err(e)) = set.into_iter().find(Result::is_err) {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("building the trained model's row: {e}"),
            None,
            None,
        );
    }
    row
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

extension_sql!(
    r#"
CREATE AGGREGATE tidewatch._train_agg(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._train_final, PARALLEL = SAFE);
-- Scoring (or training on) a series in the final function costs about what scanning its rows
-- does, not one operator's cost: told so, the planner lets parallel workers finalize whole
-- hash partitions of a hypertable with space partitioning (a Parallel Append of complete
-- aggregates) instead of finalizing every series in the leader after a partial aggregation
-- (benches/RESULTS.md, "Space partitioning"). Other plans do not change: every one of them
-- runs the final function once per series.
ALTER FUNCTION tidewatch._anomaly_agg_final(internal) COST 100000;
ALTER FUNCTION tidewatch._train_final(internal) COST 100000;
-- anomaly_agg with only the flagged points in its result (detect_anomalies' anomalies_only).
CREATE AGGREGATE tidewatch._anomaly_agg_flagged(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_flagged_final, PARALLEL = SAFE);
ALTER FUNCTION tidewatch._anomaly_flagged_final(internal) COST 100000;
COMMENT ON AGGREGATE tidewatch._anomaly_agg_flagged(timestamptz, float8, text, jsonb) IS
'Internal: anomaly_agg whose result holds only the flagged points (detect_anomalies with anomalies_only => true).';
"#,
    name = "train_aggregate",
    requires = ["anomaly_aggregates", _train_final, _anomaly_flagged_final]
);

fn load_model(state: &[u8]) -> Model {
    if tidewatch_anomaly::device::is_device_state(state) {
        errors::raise(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            "this model is a device model (several value columns)".into(),
            None,
            Some("Pass the device's values as an array: tidewatch.score(name, series, ts, ARRAY[...]).".into()),
        );
    }
    Model::from_bytes(state).unwrap_or_else(|e| raise(e))
}

/// Score of `value` at `ts` under a stored model (no learning).
#[pg_extern(immutable, parallel_safe, strict)]
fn _model_score(state: &[u8], ts: TimestampWithTimeZone, value: f64) -> f64 {
    load_model(state).score(unix_us(ts), value).score
}

/// The full verdict of a stored model on one point, as jsonb.
#[pg_extern(immutable, parallel_safe, strict)]
fn _model_verdict(state: &[u8], ts: TimestampWithTimeZone, value: f64) -> JsonB {
    let s = load_model(state).score(unix_us(ts), value);
    JsonB(serde_json::json!({
        "expected": finite(s.expected),
        "lower": finite(s.lower),
        "upper": finite(s.upper),
        "score": s.score,
        "sigma": s.sigma,
        "is_anomaly": s.is_anomaly,
        "kind": s.kind.map(|k| k.as_str()),
    }))
}

// ---------------------------------------------------------------------------------------------
// Real-time monitors: one step per series per inserting statement.

/// An episode as `_monitor_apply` reads it: its fields, its severity, NULL for non-finite numbers.
pub(crate) fn episode_json(e: &tidewatch_anomaly::monitor::Episode) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("severity".into(), e.severity().into());
        for k in ["expected", "lower", "upper", "peak_value", "sigma", "score"] {
            if o.get(k).and_then(|x| x.as_f64()).is_none() {
                o.insert(k.into(), serde_json::Value::Null);
            }
        }
    }
    v
}

/// Advance a monitor's per-series state by a batch of points; returns the new state and the
/// episodes the batch opened, extended or closed (jsonb array, times in µs since the Unix epoch).
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _monitor_step(
    state: Option<&[u8]>,
    method: Option<&str>,
    params: Option<errors::JsonbArg>,
    ts: Option<Vec<Option<TimestampWithTimeZone>>>,
    vals: Option<Vec<Option<f64>>>,
) -> TableIterator<
    'static,
    (
        name!(state, Vec<u8>),
        name!(last_ts, Option<TimestampWithTimeZone>),
        name!(spacing_us, f64),
        name!(scored, i64),
        name!(late, i64),
        name!(skipped, i64),
        name!(episodes, JsonB),
    ),
> {
    // Not STRICT (a NULL state starts a new one): the other arguments are checked here (22004),
    // not by pgrx's unboxing, which panics on NULL (XX000).
    let method = errors::required(method, "method");
    let (ts, vals) = (errors::required(ts, "ts"), errors::required(vals, "vals"));
    let mut st = match state {
        Some(b) => MonitorState::from_bytes(b).unwrap_or_else(|e| raise(e)),
        None => MonitorState::new(method, &params_value(params)).unwrap_or_else(|e| raise(e)),
    };
    let mut nulls = 0i64;
    let points: Vec<(i64, f64)> = ts
        .into_iter()
        .zip(vals)
        .filter_map(|p| match p {
            (Some(t), Some(v)) => Some((unix_us(t), v)),
            _ => {
                nulls += 1;
                None
            }
        })
        .collect();
    let out = st.step(points);
    let episodes: Vec<serde_json::Value> = out.episodes.iter().map(episode_json).collect();
    TableIterator::once((
        st.to_bytes(),
        st.track.last_ts.and_then(tstz),
        st.track.spacing_us,
        out.scored as i64,
        out.late as i64,
        out.skipped as i64 + nulls,
        JsonB(serde_json::Value::Array(episodes)),
    ))
}

/// Peer outliers over a series x bucket grid (row-major `vals`, NULL = missing bucket), with
/// augurs-outlier's MAD or DBSCAN detector.
#[pg_extern(immutable, parallel_safe)]
fn _peer_outliers(
    n_series: i32,
    n_buckets: i32,
    vals: Vec<Option<f64>>,
    method: &str,
    sensitivity: f64,
) -> TableIterator<
    'static,
    (
        name!(series_idx, i32),
        name!(bucket_idx, i32),
        name!(score, Option<f64>),
        name!(is_outlier, bool),
    ),
> {
    let (ns, nb) = (n_series.max(0) as usize, n_buckets.max(0) as usize);
    if vals.len() != ns * nb {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "expected {} values for {ns} series x {nb} buckets, got {}",
                ns * nb,
                vals.len()
            ),
            None,
            None,
        );
    }
    if ns == 0 || nb == 0 {
        return TableIterator::new(Vec::new());
    }
    let grid: Vec<Vec<f64>> = vals
        .chunks(nb)
        .map(|row| row.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .collect();
    let r =
        tidewatch_anomaly::peer_outliers(&grid, method, sensitivity).unwrap_or_else(|e| raise(e));
    let mut rows = Vec::with_capacity(ns * nb);
    for (s, (flags, scores)) in r.flags.iter().zip(&r.scores).enumerate() {
        for (b, (f, sc)) in flags.iter().zip(scores).enumerate() {
            rows.push((s as i32, b as i32, finite(*sc), *f));
        }
    }
    TableIterator::new(rows)
}

extension_sql_file!(
    "../../sql/anomaly.sql",
    name = "anomaly",
    requires = [
        "hypertable",
        "jobs",
        "anomaly_aggregates",
        "train_aggregate",
        _anomaly_check,
        _model_score,
        _model_verdict,
        _monitor_step,
        _peer_outliers,
        "anomaly_points_c"
    ]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(-1)
    }

    /// 2 series x 600 minutes of a slow sine plus deterministic jitter; one spike in series b.
    fn load() {
        Spi::run(
            "CREATE TABLE t (ts timestamptz NOT NULL, s text, v float8);
             SELECT setseed(0.42);
             INSERT INTO t SELECT timestamptz '2026-01-01' + i * interval '1 minute', s,
                    10 + sin(i / 40.0) + random() / 3
                    + CASE WHEN s = 'b' AND i = 400 THEN 15 ELSE 0 END
             FROM generate_series(0, 599) i, unnest(ARRAY['a', 'b']) s;",
        )
        .unwrap();
    }

    #[pg_test]
    fn detect_finds_the_spike_in_its_series_only() {
        load();
        let flagged = Spi::get_two::<String, String>(
            "SELECT series::text, ts::text FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts')
             WHERE is_anomaly",
        )
        .unwrap();
        assert_eq!(
            flagged,
            (
                Some(r#"{"s": "b"}"#.to_string()),
                Some("2026-01-01 06:40:00+00".to_string())
            )
        );
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts')"),
            1200
        );
        // anomalies_only returns the same flagged points and nothing else.
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts', anomalies_only => true)"),
            count("SELECT count(*) FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts') WHERE is_anomaly")
        );
    }

    #[pg_test]
    fn window_form_agrees_with_the_batch_form() {
        load();
        // The streaming window aggregate and the batch aggregate run the same causal detector.
        assert!(count("SELECT count(*) FROM (SELECT tidewatch.anomaly_score(ts, v) OVER (PARTITION BY s ORDER BY ts) AS x FROM t) q WHERE x > 0") > 0);
        let diff = count(
            "WITH w AS (SELECT s, ts, tidewatch.anomaly_score(ts, v) OVER (PARTITION BY s ORDER BY ts) AS score FROM t),
                  b AS (SELECT series ->> 's' AS s, ts, score, is_anomaly FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts'))
             SELECT count(*) FROM w JOIN b USING (s, ts)
             WHERE abs(w.score - b.score) > 1e-12
               -- except where the batch form moved a late alarm back onto the spike itself
               AND NOT (b.is_anomaly AND b.score > w.score)",
        );
        assert_eq!(diff, 0);
    }

    #[pg_test]
    fn one_score_everywhere_window_batch_trained_and_monitor_agree() {
        // Issue 16, "One score everywhere": for the same point and history, the window function,
        // detect_anomalies, score() of a model trained on the history, and a monitor's episode
        // mean the same number.
        load();
        let window = |i: i32| {
            Spi::get_one::<f64>(&format!(
                "SELECT x FROM (SELECT ts, tidewatch.anomaly_score(ts, v) OVER (ORDER BY ts) AS x
                 FROM t WHERE s = 'b') q WHERE ts = timestamptz '2026-01-01' + {i} * interval '1 minute'"
            ))
            .unwrap()
            .unwrap_or(f64::NAN)
        };
        for i in [300, 400, 401] {
            // A model trained on the series' points before i scores point i as the window did.
            Spi::run(&format!(
                "DROP TABLE IF EXISTS hist; CREATE TABLE hist AS SELECT * FROM t
                     WHERE s = 'b' AND ts < timestamptz '2026-01-01' + {i} * interval '1 minute';
                 SELECT tidewatch.create_hypertable('hist', 'ts', migrate_data => true);
                 SELECT tidewatch.train_detector('upto', 'hist', 'v', '{{s}}', interval '100 years');"
            ))
            .unwrap();
            let trained = Spi::get_one::<f64>(&format!(
                "SELECT tidewatch.score('upto', '{{\"s\": \"b\"}}', ts, v) FROM t
                 WHERE s = 'b' AND ts = timestamptz '2026-01-01' + {i} * interval '1 minute'"
            ))
            .unwrap()
            .unwrap_or(f64::NAN);
            assert_eq!(
                trained.to_bits(),
                window(i).to_bits(),
                "point {i}: {trained} vs {}",
                window(i)
            );
            let batch = Spi::get_one::<f64>(&format!(
                "SELECT score FROM tidewatch.detect_anomalies('t', 'v', '{{s}}', 'ts')
                 WHERE series ->> 's' = 'b' AND ts = timestamptz '2026-01-01' + {i} * interval '1 minute'"
            ))
            .unwrap()
            .unwrap_or(f64::NAN);
            // The batch form may move a late alarm back onto the spike: then it is higher there.
            assert!(
                batch.to_bits() == window(i).to_bits() || batch > window(i),
                "point {i}: {batch}"
            );
        }
        assert!(
            window(400) >= 0.5 || window(401) >= 0.5,
            "the spike is flagged"
        );
        // A monitor fed the same rows: its episode's score is the highest window score in it.
        Spi::run(
            "CREATE TABLE live (LIKE t);
             SELECT tidewatch.monitor('live', 'live', 'v', '{s}', time_column => 'ts');
             INSERT INTO live SELECT * FROM t WHERE s = 'b' AND ts < '2026-01-01 05:00+00';
             INSERT INTO live SELECT * FROM t WHERE s = 'b' AND ts >= '2026-01-01 05:00+00';",
        )
        .unwrap();
        let (episode, highest) = Spi::get_two::<f64, f64>(
            "WITH w AS (SELECT ts, tidewatch.anomaly_score(ts, v) OVER (ORDER BY ts) AS x FROM t WHERE s = 'b')
             SELECT a.score, (SELECT max(x) FROM w WHERE w.ts BETWEEN a.started_at AND a.ended_at)
             FROM tidewatch.anomalies a WHERE a.monitor = 'live'
               AND a.started_at <= timestamptz '2026-01-01' + 401 * interval '1 minute'
               AND a.ended_at >= timestamptz '2026-01-01' + 400 * interval '1 minute'",
        )
        .unwrap();
        assert_eq!(
            episode.map(f64::to_bits),
            highest.map(|x| x.min(1.0).to_bits()),
            "{episode:?} {highest:?}"
        );
    }

    #[pg_test]
    fn non_finite_and_null_values_are_skipped_and_counted() {
        Spi::run(
            "CREATE TABLE n (ts timestamptz, v float8);
             SELECT setseed(0.42);
             INSERT INTO n SELECT timestamptz '2026-01-01' + i * interval '1 minute', 5 + random() / 10
             FROM generate_series(0, 99) i;
             INSERT INTO n VALUES ('2026-01-01 00:30:30', 'NaN'), ('2026-01-01 00:31:30', 'Infinity'),
                                  ('2026-01-01 00:32:30', '-Infinity'), ('2026-01-01 00:33:30', NULL),
                                  (NULL, 1);",
        )
        .unwrap();
        assert_eq!(
            count("SELECT tidewatch.anomaly_skipped(tidewatch.anomaly_agg(ts, v)) FROM n"),
            5
        );
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.anomaly_points((SELECT tidewatch.anomaly_agg(ts, v) FROM n))"),
            100
        );
        // The skipped values did not poison the state: no point is flagged.
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('n', 'v', time_column => 'ts') WHERE is_anomaly OR score <> score"),
            0
        );
    }

    #[pg_test]
    fn empty_one_point_constant_and_unsorted_duplicate_input() {
        Spi::run("CREATE TABLE e (ts timestamptz, v float8)").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('e', 'v', time_column => 'ts')"),
            0
        );
        Spi::run("INSERT INTO e VALUES ('2026-01-01', 1)").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('e', 'v', time_column => 'ts') WHERE NOT is_anomaly AND score = 0"),
            1
        );
        // A constant series (MAD = 0) gives no anomaly.
        Spi::run(
            "TRUNCATE e; INSERT INTO e SELECT timestamptz '2026-01-01' + i * interval '1 s', 7 FROM generate_series(0, 499) i",
        )
        .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('e', 'v', time_column => 'ts') WHERE is_anomaly"),
            0
        );
        // Unsorted input with duplicate timestamps: every row comes back, in time order.
        Spi::run(
            "TRUNCATE e; INSERT INTO e SELECT timestamptz '2026-01-01' + ((i * 37) % 200) * interval '1 s', i % 5
             FROM generate_series(0, 399) i",
        )
        .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.detect_anomalies('e', 'v', time_column => 'ts')"),
            400
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM (SELECT ts, lag(ts) OVER () AS prev
                 FROM tidewatch.anomaly_points((SELECT tidewatch.anomaly_agg(ts, v) FROM e))) x WHERE ts < prev"
            ),
            0
        );
    }

    #[pg_test(error = "unknown method \"madd\"")]
    fn unknown_anomaly_method_is_an_error() {
        load();
        Spi::run(
            "SELECT * FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts', method => 'madd')",
        )
        .unwrap();
    }

    #[pg_test(error = "unknown parameter \"windw\" for method \"robust\"")]
    fn unknown_param_is_an_error() {
        load();
        Spi::run("SELECT * FROM tidewatch.detect_anomalies('t', 'v', '{s}', 'ts', method => 'robust', params => '{\"windw\": 5}')").unwrap();
    }

    #[pg_test(error = "value column \"s\" of \"public.t\" has type text, not a number")]
    fn non_numeric_column_is_an_error() {
        load();
        Spi::run("SELECT * FROM tidewatch.detect_anomalies('t', 's', time_column => 'ts')")
            .unwrap();
    }

    #[pg_test(error = "table \"public.t\" is not a hypertable, so time_column is required")]
    fn plain_table_needs_a_time_column() {
        load();
        Spi::run("SELECT * FROM tidewatch.detect_anomalies('t', 'v')").unwrap();
    }

    #[pg_test]
    fn trained_models_predict_and_score() {
        load();
        Spi::run("SELECT tidewatch.create_hypertable('t', 'ts', migrate_data => true)").unwrap();
        assert_eq!(
            Spi::get_one::<i32>("SELECT tidewatch.train_detector('m', 't', 'v', '{s}')").unwrap(),
            Some(2)
        );
        assert_eq!(
            count("SELECT sum(n)::bigint FROM tidewatch.models WHERE name = 'm'"),
            1200
        );
        let (normal, outlier) = Spi::get_two::<i32, i32>(
            "SELECT tidewatch.predict('m', '{\"s\": \"a\"}', '2026-01-01 10:00', 10.5),
                    tidewatch.predict('m', '{\"s\": \"a\"}', '2026-01-01 10:00', 60)",
        )
        .unwrap();
        assert_eq!((normal, outlier), (Some(1), Some(-1)));
        let s = Spi::get_one::<f64>(
            "SELECT tidewatch.score('m', '{\"s\": \"a\"}', '2026-01-01 10:00', 60)",
        )
        .unwrap()
        .unwrap_or(-1.0);
        assert!((0.5..=1.0).contains(&s), "{s}");
        // Retraining replaces rather than duplicates.
        Spi::run("SELECT tidewatch.train_detector('m', 't', 'v', '{s}')").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.models WHERE name = 'm'"),
            2
        );
    }

    #[pg_test(error = "model \"m\" has no series {\"s\": \"zz\"}")]
    fn unknown_series_is_an_error() {
        load();
        Spi::run("SELECT tidewatch.create_hypertable('t', 'ts', migrate_data => true)").unwrap();
        Spi::run("SELECT tidewatch.train_detector('m', 't', 'v', '{s}')").unwrap();
        Spi::run("SELECT tidewatch.predict('m', '{\"s\": \"zz\"}', now(), 1)").unwrap();
    }

    #[pg_test(error = "no rows to train model \"m\" on: \"public.e\" has no rows up to now")]
    fn training_without_rows_is_an_error() {
        Spi::run("CREATE TABLE e (ts timestamptz NOT NULL, v float8); SELECT tidewatch.create_hypertable('e', 'ts')")
            .unwrap();
        Spi::run("SELECT tidewatch.train_detector('m', 'e', 'v')").unwrap();
    }

    #[pg_test]
    fn monitor_records_episodes_and_counts_late_rows() {
        Spi::run(
            "CREATE TABLE live (ts timestamptz NOT NULL, s text, v float8);
             SELECT tidewatch.create_hypertable('live', 'ts');
             SELECT tidewatch.monitor('mon', 'live', 'v', '{s}');
             SELECT setseed(0.42);
             INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'a',
                    10 + random() / 3 FROM generate_series(0, 299) i;
             INSERT INTO live VALUES ('2026-01-01 05:00', 'a', 40);
             INSERT INTO live SELECT timestamptz '2026-01-01 05:01' + i * interval '1 minute', 'a', 10 + random() / 3
                    FROM generate_series(0, 59) i;
             INSERT INTO live VALUES ('2026-01-01 00:10:30', 'a', 10.2), ('2026-01-01 06:10', 'a', 'NaN');",
        )
        .unwrap();
        let (kind, peak) = Spi::get_two::<String, f64>(
            "SELECT kind, peak_value FROM tidewatch.anomalies WHERE monitor = 'mon'",
        )
        .unwrap();
        assert_eq!((kind.as_deref(), peak), (Some("spike"), Some(40.0)));
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'mon' AND ended_at IS NOT NULL AND NOT (detail ->> 'open')::boolean"),
            1
        );
        let (n, late) = Spi::get_two::<i64, i64>(
            "SELECT n, late FROM tidewatch.monitor_state WHERE monitor = 'mon'",
        )
        .unwrap();
        // n counts scored rows, late ones included; late rows are not learned from.
        assert_eq!((n, late), (Some(362), Some(1)));
        assert_eq!(
            count("SELECT skipped FROM tidewatch.monitor_state WHERE monitor = 'mon'"),
            1
        );
        // unmonitor drops the trigger and the state, keeps the episodes.
        Spi::run("SELECT tidewatch.unmonitor('mon')").unwrap();
        Spi::run("INSERT INTO live VALUES ('2026-01-01 07:00', 'a', 99)").unwrap();
        assert_eq!(count("SELECT count(*) FROM tidewatch.monitor_state"), 0);
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'mon'"),
            1
        );
    }

    #[pg_test]
    fn explain_cites_detector_usual_level_peers_and_events() {
        Spi::run(
            "CREATE TABLE live (ts timestamptz NOT NULL, sat text, metric text, v float8);
             SELECT tidewatch.create_hypertable('live', 'ts');
             SELECT tidewatch.monitor('mon', 'live', 'v', '{sat,metric}');
             SELECT setseed(0.42);
             INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '10 minutes', 'SAT2', m,
                    10 + random() / 3 FROM generate_series(0, 431) i, unnest(ARRAY['M1', 'M2']) m;
             INSERT INTO live VALUES ('2026-01-04 05:00', 'SAT2', 'M1', 40), ('2026-01-04 05:00', 'SAT2', 'M2', -20);
             SELECT tidewatch.record_event('log_burst', '47 connection timeouts in the 5 minutes before',
                                           '2026-01-04 04:58', 'etl', '{\"sat\": \"SAT2\"}');",
        )
        .unwrap();
        let id = count("SELECT id FROM tidewatch.anomalies WHERE series ->> 'metric' = 'M1'");
        let reasons = Spi::get_one::<String>(&format!(
            "SELECT string_agg(rank || ': ' || reason, E'\\n' ORDER BY rank) FROM tidewatch.explain_anomaly({id})"
        ))
        .unwrap()
        .unwrap_or_default();
        assert!(
            reasons.starts_with("1: auto detector fired at 2026-01-04 05:00:00+00: value 40.0000"),
            "{reasons}"
        );
        assert!(reasons.contains("kind: spike"), "{reasons}");
        assert!(
            reasons.contains("at 5:00 UTC this series is usually"),
            "{reasons}"
        );
        assert!(
            reasons.contains("1 other episode(s) of series sharing labels"),
            "{reasons}"
        );
        assert!(reasons.contains("dip"), "{reasons}");
        assert!(reasons.contains("log_burst event \"etl\""), "{reasons}");
    }

    #[pg_test(error = "no anomaly episode with id 424242")]
    fn explaining_an_unknown_episode_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.explain_anomaly(424242)").unwrap();
    }
}

/// The number of CPUs this server may use (`std::thread::available_parallelism`: affinity and
/// cgroup quotas counted), 1 when unknown: `_partitionwise` keeps the leader out of partition-wise
/// per-series work when the workers already take every CPU.
#[pg_extern(parallel_safe)]
fn _cpu_count() -> i32 {
    std::thread::available_parallelism()
        .map(|n| i32::try_from(n.get()).unwrap_or(i32::MAX))
        .unwrap_or(1)
}
