//! Anomaly scoring in SQL: the batch aggregate behind `detect_anomalies`, the streaming window
//! aggregate `anomaly_score`, trained models (`train_detector`, `predict`, `score`) and the
//! per-batch step of real-time monitors. The detectors live in `crates/tidewatch-anomaly`; the
//! catalog, triggers, episodes and explanations in `sql/anomaly.sql`.

use crate::aggregate::{deserialize, state_mut};
use crate::errors;
use pgrx::prelude::*;
use pgrx::{Internal, JsonB, PgSqlErrorCode};
use tidewatch_anomaly::monitor::MonitorState;
use tidewatch_anomaly::{AnomalyError, Kind, Model, Scored};

/// µs between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn unix_us(ts: TimestampWithTimeZone) -> i64 {
    let pg: i64 = ts.into();
    pg.saturating_add(PG_EPOCH_US)
}

fn tstz(unix: i64) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(unix.saturating_sub(PG_EPOCH_US)).ok()
}

fn raise(e: AnomalyError) -> ! {
    let code = match e {
        AnomalyError::CorruptState(_) => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    let hint = e.hint();
    errors::raise(code, e.to_string(), None, Some(hint))
}

fn params_value(params: Option<JsonB>) -> serde_json::Value {
    params.map_or(serde_json::Value::Null, |p| p.0)
}

/// Check a method and its params; raises 22023 with the valid names in the hint.
#[pg_extern(immutable, parallel_safe)]
fn _anomaly_check(method: Option<&str>, params: Option<JsonB>) -> bool {
    let method = method.unwrap_or("auto");
    Model::new(method, &params_value(params)).unwrap_or_else(|e| raise(e));
    true
}

// ---------------------------------------------------------------------------------------------
// Batch aggregate: collect a series' points, score them in time order at the end.

/// The state of `anomaly_agg`: the method, its params and the points (unsorted).
#[derive(Default, Clone)]
struct Batch {
    method: Option<String>,
    params: Option<serde_json::Value>,
    points: Vec<(i64, f64)>,
    nulls: u64,
}

impl Batch {
    /// Layout: u32 header length, header JSON [method, params, nulls], then (i64, f64) pairs LE.
    fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::json!([self.method, self.params, self.nulls]).to_string();
        let mut out = Vec::with_capacity(4 + header.len() + self.points.len() * 16);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for (t, v) in &self.points {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn from_bytes(b: &[u8]) -> Result<Batch, String> {
        let len = b
            .get(..4)
            .and_then(|h| <[u8; 4]>::try_from(h).ok())
            .map(|h| u32::from_le_bytes(h) as usize)
            .ok_or("truncated header")?;
        let header = b.get(4..4 + len).ok_or("truncated header")?;
        let (method, params, nulls): (Option<String>, Option<serde_json::Value>, u64) =
            serde_json::from_slice(header).map_err(|e| e.to_string())?;
        let body = &b[4 + len..];
        if body.len() % 16 != 0 {
            return Err("truncated points".into());
        }
        let points = body
            .chunks_exact(16)
            .map(|c| {
                let mut t = [0u8; 8];
                let mut v = [0u8; 8];
                t.copy_from_slice(&c[..8]);
                v.copy_from_slice(&c[8..]);
                (i64::from_le_bytes(t), f64::from_le_bytes(v))
            })
            .collect();
        Ok(Batch {
            method,
            params,
            points,
            nulls,
        })
    }
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_agg_step(
    mut state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    method: Option<String>,
    params: Option<JsonB>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: this aggregate's state is always a Batch.
    let s: &mut Batch = unsafe { state_mut(&mut state, fcinfo) };
    if s.method.is_none() {
        let m = method.unwrap_or_else(|| "auto".into());
        let p = params_value(params);
        // Fail on the first row, not after the whole scan.
        Model::new(&m, &p).unwrap_or_else(|e| raise(e));
        s.method = Some(m);
        s.params = Some(p);
    }
    match (ts, value) {
        (Some(t), Some(v)) => s.points.push((unix_us(t), v)),
        _ => s.nulls += 1,
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_agg_step2(
    state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    _anomaly_agg_step(state, ts, value, None, None, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_agg_step3(
    state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    method: Option<String>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    _anomaly_agg_step(state, ts, value, method, None, fcinfo)
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
        let s: &mut Batch = unsafe { state_mut(&mut a, fcinfo) };
        if s.method.is_none() {
            s.method = other.method;
            s.params = other.params;
        }
        s.points.extend_from_slice(&other.points);
        s.nulls += other.nulls;
    }
    a
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _anomaly_agg_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: this aggregate's state is always a Batch.
    unsafe { state.get::<Batch>() }
        .map(Batch::to_bytes)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _anomaly_agg_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, Batch::from_bytes, fcinfo)
}

/// Bytes per scored point in the result of `anomaly_agg`.
const POINT_BYTES: usize = 8 * 6 + 2;

fn kind_code(k: Option<Kind>) -> u8 {
    k.map_or(0, |k| k as u8 + 1)
}

fn kind_name(code: u8) -> Option<&'static str> {
    const KINDS: [Kind; 8] = [
        Kind::Spike,
        Kind::Dip,
        Kind::LevelShift,
        Kind::VarianceChange,
        Kind::Flatline,
        Kind::MissingData,
        Kind::SeasonalBreak,
        Kind::PeerOutlier,
    ];
    code.checked_sub(1)
        .and_then(|i| KINDS.get(i as usize))
        .map(|k| k.as_str())
}

/// Score the collected series; the result is a compact array of scored points (bytea) that
/// `anomaly_points()` expands into rows.
#[pg_extern(immutable, parallel_safe)]
fn _anomaly_agg_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: this aggregate's state is always a Batch (or NULL when no row came).
    let s = unsafe { state.get::<Batch>() }?;
    let method = s.method.as_deref().unwrap_or("auto");
    let params = s.params.clone().unwrap_or(serde_json::Value::Null);
    let r =
        tidewatch_anomaly::detect(method, &params, s.points.clone()).unwrap_or_else(|e| raise(e));
    let mut out = Vec::with_capacity(16 + r.points.len() * POINT_BYTES);
    out.extend_from_slice(&(r.skipped as u64 + s.nulls).to_le_bytes());
    for (t, v, sc) in &r.points {
        out.extend_from_slice(&t.to_le_bytes());
        for x in [*v, sc.expected, sc.lower, sc.upper, sc.score] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.push(u8::from(sc.is_anomaly) | (u8::from(sc.outside) << 1));
        out.push(kind_code(sc.kind));
    }
    Some(out)
}

fn read_f64(c: &[u8], at: usize) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&c[at..at + 8]);
    f64::from_le_bytes(b)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Expand the result of `anomaly_agg` into one row per scored point, in time order.
#[pg_extern(immutable, parallel_safe, strict)]
fn anomaly_points(
    batch: &[u8],
) -> TableIterator<
    'static,
    (
        name!(ts, Option<TimestampWithTimeZone>),
        name!(value, f64),
        name!(expected, Option<f64>),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(score, f64),
        name!(is_anomaly, bool),
        name!(kind, Option<&'static str>),
    ),
> {
    if batch.len() < 8 || (batch.len() - 8) % POINT_BYTES != 0 {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "not the result of tidewatch.anomaly_agg()".into(),
            Some(format!("{} bytes", batch.len())),
            Some("Pass the value returned by tidewatch.anomaly_agg(ts, value).".into()),
        );
    }
    let rows: Vec<_> = batch[8..]
        .chunks_exact(POINT_BYTES)
        .map(|c| {
            let mut t = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            (
                tstz(i64::from_le_bytes(t)),
                read_f64(c, 8),
                finite(read_f64(c, 16)),
                finite(read_f64(c, 24)),
                finite(read_f64(c, 32)),
                read_f64(c, 40),
                c[48] & 1 == 1,
                kind_name(c[49]),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// How many input rows `anomaly_agg` skipped (NULL time or value, NaN, ±Infinity).
#[pg_extern(immutable, parallel_safe, strict)]
fn anomaly_skipped(batch: &[u8]) -> i64 {
    batch
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| u64::from_le_bytes(b) as i64)
}

// ---------------------------------------------------------------------------------------------
// Streaming window aggregate: the score of the current row given the rows before it.

#[derive(Default)]
struct Stream {
    model: Option<Model>,
    last: Option<Scored>,
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_stream_step(
    mut state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    method: Option<String>,
    params: Option<JsonB>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: this aggregate's state is always a Stream.
    let s: &mut Stream = unsafe { state_mut(&mut state, fcinfo) };
    if s.model.is_none() {
        let m = method.unwrap_or_else(|| "auto".into());
        s.model = Some(Model::new(&m, &params_value(params)).unwrap_or_else(|e| raise(e)));
    }
    s.last = match (ts, value, s.model.as_mut()) {
        (Some(t), Some(v), Some(m)) if v.is_finite() => Some(m.update(unix_us(t), v)),
        _ => None,
    };
    state
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_stream_step2(
    state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    _anomaly_stream_step(state, ts, value, None, None, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn _anomaly_stream_step3(
    state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    method: Option<String>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    _anomaly_stream_step(state, ts, value, method, None, fcinfo)
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
CREATE AGGREGATE tidewatch.anomaly_agg(ts timestamptz, value float8) (
    SFUNC = tidewatch._anomaly_agg_step2, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_agg_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_agg(ts timestamptz, value float8, method text) (
    SFUNC = tidewatch._anomaly_agg_step3, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_agg_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_agg(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_agg_final, PARALLEL = SAFE);
-- Order-dependent, so no combine function: it is meant as a window function
-- (OVER (PARTITION BY series ORDER BY ts)), which never runs partial aggregation.
CREATE AGGREGATE tidewatch.anomaly_score(ts timestamptz, value float8) (
    SFUNC = tidewatch._anomaly_stream_step2, STYPE = internal,
    FINALFUNC = tidewatch._anomaly_stream_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_score(ts timestamptz, value float8, method text) (
    SFUNC = tidewatch._anomaly_stream_step3, STYPE = internal,
    FINALFUNC = tidewatch._anomaly_stream_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.anomaly_score(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_stream_step, STYPE = internal,
    FINALFUNC = tidewatch._anomaly_stream_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
"#,
    name = "anomaly_aggregates",
    requires = [
        _anomaly_agg_step,
        _anomaly_agg_step2,
        _anomaly_agg_step3,
        _anomaly_agg_combine,
        _anomaly_agg_serialize,
        _anomaly_agg_deserialize,
        _anomaly_agg_final,
        _anomaly_stream_step,
        _anomaly_stream_step2,
        _anomaly_stream_step3,
        _anomaly_stream_final
    ]
);

// ---------------------------------------------------------------------------------------------
// Trained models: the model bytes after learning from a window, with a JSON summary.

#[pg_extern(immutable, parallel_safe)]
fn _train_final(state: Internal) -> Option<JsonB> {
    // SAFETY: the training aggregate's state is a Batch (or NULL when no row came).
    let s = unsafe { state.get::<Batch>() }?;
    let method = s.method.as_deref().unwrap_or("auto");
    let params = s.params.clone().unwrap_or(serde_json::Value::Null);
    let mut model = Model::new(method, &params).unwrap_or_else(|e| raise(e));
    let mut pts = s.points.clone();
    pts.sort_by_key(|p| p.0);
    let (mut n, mut skipped, mut flagged) = (0u64, s.nulls, 0u64);
    let (mut first, mut last) = (None, None);
    for (t, v) in pts {
        if !v.is_finite() {
            skipped += 1;
            continue;
        }
        let sc = model.update(t, v);
        n += 1;
        flagged += u64::from(sc.is_anomaly);
        first.get_or_insert(t);
        last = Some(t);
    }
    let hex: String = model
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(JsonB(serde_json::json!({
        "n": n,
        "skipped": skipped,
        "anomaly_rate": if n > 0 { flagged as f64 / n as f64 } else { 0.0 },
        "first_us": first,
        "last_us": last,
        "state_hex": hex,
    })))
}

extension_sql!(
    r#"
CREATE AGGREGATE tidewatch._train_agg(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._train_final, PARALLEL = SAFE);
"#,
    name = "train_aggregate",
    requires = ["anomaly_aggregates", _train_final]
);

fn load_model(state: &[u8]) -> Model {
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

/// Advance a monitor's per-series state by a batch of points; returns the new state and the
/// episodes the batch opened, extended or closed (jsonb array, times in µs since the Unix epoch).
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _monitor_step(
    state: Option<&[u8]>,
    method: &str,
    params: Option<JsonB>,
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
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
    let episodes: Vec<serde_json::Value> = out
        .episodes
        .iter()
        .map(|e| {
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
        })
        .collect();
    TableIterator::once((
        st.to_bytes(),
        st.last_ts.and_then(tstz),
        st.spacing_us,
        out.scored as i64,
        out.late as i64,
        out.skipped as i64 + nulls,
        JsonB(serde_json::Value::Array(episodes)),
    ))
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
        anomaly_points
    ]
);
