//! Devices: several value columns of one series scored together (`detect_device_anomalies`).
//! The aggregate `_device_agg(ts, values, params)` collects a device's rows and scores them in
//! time order with `auto`'s device mode; `device_points` expands its result. The scoring and the
//! byte formats live in `tidewatch_anomaly::device`.

use crate::aggregate::{deserialize, state_mut};
use crate::errors;
use pgrx::prelude::*;
use pgrx::{Internal, JsonB, PgSqlErrorCode};
use tidewatch_anomaly::device::{DeviceBatch, DeviceMonitorState, DevicePoints};

use crate::errors::anomaly as raise;

/// µs between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn bad_row(e: impl std::fmt::Display) -> ! {
    errors::raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("a device row does not fit: {e}"),
        None,
        Some("Pass the same value columns, as one array, on every row of a device.".into()),
    )
}

/// Transition: keep the row (a NULL time counts as skipped; NULL values are missing sensors).
#[pg_extern(immutable, parallel_safe)]
fn _device_agg_step(
    mut state: Internal,
    ts: Option<TimestampWithTimeZone>,
    vals: Option<Array<f64>>,
    params: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    // SAFETY: this aggregate's state is always a DeviceBatch, created by state_mut.
    let s: &mut DeviceBatch = unsafe { state_mut(&mut state, fcinfo) };
    if s.params.is_none() {
        let p = params.unwrap_or("{}");
        // Fail on the first row, not after the whole scan.
        let v: serde_json::Value = serde_json::from_str(p).unwrap_or_else(|e| {
            raise(tidewatch_anomaly::AnomalyError::ParamsNotObject { got: e.to_string() })
        });
        tidewatch_anomaly::device::device_config(&v).unwrap_or_else(|e| raise(e));
        s.params = Some(p.to_string());
    }
    match (ts, vals) {
        (Some(t), Some(v)) => {
            let pg: i64 = t.into();
            s.push(pg.saturating_add(PG_EPOCH_US), v.iter())
                .unwrap_or_else(|e| bad_row(e));
        }
        _ => s.nulls += 1,
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn _device_agg_combine(mut a: Internal, b: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: both states are DeviceBatches of this aggregate.
    let other = unsafe { b.get::<DeviceBatch>() }.cloned();
    if let Some(other) = other {
        // SAFETY: `a` is this aggregate's state and fcinfo the call's (state_mut's contract).
        let s: &mut DeviceBatch = unsafe { state_mut(&mut a, fcinfo) };
        s.merge(&other).unwrap_or_else(|e| bad_row(e));
    }
    a
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _device_agg_serialize(state: Internal) -> Vec<u8> {
    // SAFETY: this aggregate's state is always a DeviceBatch.
    unsafe { state.get::<DeviceBatch>() }
        .map(DeviceBatch::encode)
        .unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _device_agg_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    deserialize(bytes, DeviceBatch::decode, fcinfo)
}

/// Score the device's rows; every row in the result.
#[pg_extern(immutable, parallel_safe)]
fn _device_agg_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: this aggregate's state is always a DeviceBatch (or NULL when no row came).
    let s = unsafe { state.get::<DeviceBatch>() }?;
    Some(s.score(false).unwrap_or_else(|e| raise(e)))
}

/// Score the device's rows; only the flagged rows in the result.
#[pg_extern(immutable, parallel_safe)]
fn _device_agg_flagged_final(state: Internal) -> Option<Vec<u8>> {
    // SAFETY: as above.
    let s = unsafe { state.get::<DeviceBatch>() }?;
    Some(s.score(true).unwrap_or_else(|e| raise(e)))
}

/// The device model trained on the collected rows, as `train_device_detector` stores it.
#[pg_extern(immutable, parallel_safe, requires = ["trained_type"])]
fn _device_train_final(state: Internal) -> Option<pgrx::composite_type!('static, "_trained")> {
    // SAFETY: this aggregate's state is always a DeviceBatch (or NULL when no row came).
    let s = unsafe { state.get::<DeviceBatch>() }?;
    Some(crate::anomaly::trained_row(
        s.train().unwrap_or_else(|e| raise(e)),
    ))
}

/// The verdict of a stored device model on one row (the model is not changed), as jsonb:
/// score, is_anomaly, kind, the index of the sensor that moved most (0-based) and every
/// sensor's share.
#[pg_extern(immutable, parallel_safe, strict)]
fn _device_verdict(state: &[u8], ts: TimestampWithTimeZone, vals: Array<f64>) -> JsonB {
    if !tidewatch_anomaly::device::is_device_state(state) {
        errors::raise(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            "this model scores one value column, not a device".into(),
            None,
            Some("Pass one value: tidewatch.score(name, series, ts, value).".into()),
        );
    }
    let values: Vec<f64> = vals.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let pg: i64 = ts.into();
    let v =
        tidewatch_anomaly::device::device_verdict(state, pg.saturating_add(PG_EPOCH_US), &values)
            .unwrap_or_else(|e| raise(e));
    JsonB(serde_json::json!({
        "score": v.score,
        "is_anomaly": v.is_anomaly,
        "kind": v.kind.map(|k| k.as_str()),
        "top": v.top,
        "shares": v.sensors.iter().map(|s| s.share).collect::<Vec<_>>(),
    }))
}

/// The rows of a `_device_agg` result: time, score, flag, kind, the sensor that moved most and
/// each surprised sensor's share of the device's surprise (named by `sensors`, else by position).
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn device_points(
    result: Option<&[u8]>,
    sensors: default!(Option<Vec<Option<String>>>, "NULL"),
    anomalies_only: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(ts, Option<TimestampWithTimeZone>),
        name!(score, f64),
        name!(is_anomaly, bool),
        name!(kind, Option<String>),
        name!(top_sensor, Option<String>),
        name!(contributions, JsonB),
    ),
> {
    let Some(result) = result else {
        return TableIterator::new(Vec::new());
    };
    let points = DevicePoints::parse(result).unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "not the result of tidewatch._device_agg()".into(),
            Some(e.to_string()),
            Some("Pass the value that tidewatch._device_agg(ts, values, params) returned.".into()),
        )
    });
    let names: Vec<String> = (0..points.sensors())
        .map(|i| {
            sensors
                .as_ref()
                .and_then(|s| s.get(i).cloned().flatten())
                .unwrap_or_else(|| format!("sensor_{}", i + 1))
        })
        .collect();
    let rows: Vec<_> = points
        .iter()
        .filter(|p| !anomalies_only.unwrap_or(false) || p.is_anomaly)
        .map(|p| {
            let mut shares: Vec<(usize, f64)> = p
                .shares
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, s)| *s > 0.0)
                .collect();
            shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut obj = serde_json::Map::new();
            for (i, s) in shares {
                if let Some(n) = names.get(i) {
                    obj.insert(n.clone(), serde_json::json!((s * 1000.0).round() / 1000.0));
                }
            }
            (
                TimestampWithTimeZone::try_from(p.ts.saturating_sub(PG_EPOCH_US)).ok(),
                p.score,
                p.is_anomaly,
                p.kind.map(|k| k.as_str().to_string()),
                p.top.and_then(|i| names.get(i).cloned()),
                JsonB(serde_json::Value::Object(obj)),
            )
        })
        .collect();
    TableIterator::new(rows)
}

extension_sql!(
    r#"
CREATE AGGREGATE tidewatch._device_agg(ts timestamptz, vals float8[], params text) (
    SFUNC = tidewatch._device_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._device_agg_combine,
    SERIALFUNC = tidewatch._device_agg_serialize, DESERIALFUNC = tidewatch._device_agg_deserialize,
    FINALFUNC = tidewatch._device_agg_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._device_agg_flagged(ts timestamptz, vals float8[], params text) (
    SFUNC = tidewatch._device_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._device_agg_combine,
    SERIALFUNC = tidewatch._device_agg_serialize, DESERIALFUNC = tidewatch._device_agg_deserialize,
    FINALFUNC = tidewatch._device_agg_flagged_final, PARALLEL = SAFE);
-- Scoring a device in the final function costs about what scanning its rows does (as anomaly_agg).
ALTER FUNCTION tidewatch._device_agg_final(internal) COST 100000;
ALTER FUNCTION tidewatch._device_agg_flagged_final(internal) COST 100000;
CREATE AGGREGATE tidewatch._device_train_agg(ts timestamptz, vals float8[], params text) (
    SFUNC = tidewatch._device_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._device_agg_combine,
    SERIALFUNC = tidewatch._device_agg_serialize, DESERIALFUNC = tidewatch._device_agg_deserialize,
    FINALFUNC = tidewatch._device_train_final, PARALLEL = SAFE);
ALTER FUNCTION tidewatch._device_train_final(internal) COST 100000;
COMMENT ON AGGREGATE tidewatch._device_train_agg(timestamptz, float8[], text) IS
'Internal: trains a device model on the rows of one device (train_device_detector).';
COMMENT ON AGGREGATE tidewatch._device_agg(timestamptz, float8[], text) IS
'Internal: collects the rows of one device (several value columns) and scores them together in time order with auto''s device mode; tidewatch.device_points expands the result.';
COMMENT ON AGGREGATE tidewatch._device_agg_flagged(timestamptz, float8[], text) IS
'Internal: tidewatch._device_agg whose result holds only the flagged rows (detect_device_anomalies with anomalies_only => true).';
"#,
    name = "device_aggregates",
    requires = [
        _device_agg_step,
        _device_agg_combine,
        _device_agg_serialize,
        _device_agg_deserialize,
        _device_agg_final,
        _device_agg_flagged_final,
        _device_train_final
    ]
);

extension_sql_file!(
    "../../sql/device.sql",
    name = "device",
    requires = [
        "anomaly",
        "device_aggregates",
        device_points,
        _device_verdict
    ]
);

/// Advance a device monitor's per-series state by a batch of rows (`vals`: one value per sensor
/// per row, row-major, as `array_agg(ARRAY[c1, c2, ...])` gives them); the same columns as
/// `_monitor_step`, each episode with the sensors' shares at its peak in `detail`.
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _device_monitor_step(
    state: Option<&[u8]>,
    params: Option<errors::JsonbArg>,
    sensors: Vec<Option<String>>,
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Array<f64>,
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
    let k = sensors.len();
    let mut st = match state {
        Some(b) => DeviceMonitorState::from_bytes(b).unwrap_or_else(|e| raise(e)),
        None => {
            let p = params.map_or_else(|| serde_json::json!({}), |p| p.value("params"));
            DeviceMonitorState::new(&p, k).unwrap_or_else(|e| raise(e))
        }
    };
    if st.sensors() != k || vals.len() != ts.len().saturating_mul(k) {
        bad_row(format!(
            "{} values for {} rows of {k} columns; the monitor's state has {} sensors",
            vals.len(),
            ts.len(),
            st.sensors()
        ));
    }
    let values: Vec<f64> = vals.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let mut nulls = 0i64;
    let rows: Vec<(i64, Vec<f64>)> = ts
        .iter()
        .zip(values.chunks(k.max(1)))
        .filter_map(|(t, row)| match t {
            Some(t) => Some((crate::anomaly::unix_us(*t), row.to_vec())),
            None => {
                nulls += 1;
                None
            }
        })
        .collect();
    let (out, eps) = st.step(rows);
    let name = |i: usize| sensors.get(i).cloned().flatten().unwrap_or_default();
    let episodes: Vec<serde_json::Value> = eps
        .iter()
        .map(|d| {
            let mut v = crate::anomaly::episode_json(&d.episode);
            let mut shares: Vec<(usize, f64)> = d
                .shares
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, x)| *x > 0.0)
                .collect();
            shares.sort_by(|a, b| b.1.total_cmp(&a.1));
            let contributions: serde_json::Map<String, serde_json::Value> = shares
                .iter()
                .map(|(i, x)| (name(*i), serde_json::json!((x * 1e4).round() / 1e4)))
                .collect();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "detail".into(),
                    serde_json::json!({
                        "top_sensor": d.top.map(name),
                        "contributions": contributions,
                    }),
                );
            }
            v
        })
        .collect();
    TableIterator::once((
        st.to_bytes(),
        st.track.last_ts.and_then(crate::anomaly::tstz),
        st.track.spacing_us,
        out.scored as i64,
        out.late as i64,
        out.skipped as i64 + nulls,
        JsonB(serde_json::Value::Array(episodes)),
    ))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use tidewatch_anomaly::auto::MultiAuto;

    /// 2 devices x 3 sensors x 1,500 minutes of deterministic noise; device d2's `mem` jumps by
    /// 25 at minute 1,200; every 7th `io` of d1 is NULL (a missing sensor value).
    fn load() {
        Spi::run(
            "CREATE TABLE dev (ts timestamptz NOT NULL, host text, cpu float8, mem real, io int);
             SELECT tidewatch.create_hypertable('dev', 'ts', interval '1 day');
             INSERT INTO dev SELECT timestamptz '2026-01-01' + i * interval '1 minute', h,
                    50 + ((i * 7919 + length(h) * 31) % 101) / 25.0,
                    (20 + ((i * 104729) % 97) / 30.0 + CASE WHEN h = 'd2' AND i = 1200 THEN 25 ELSE 0 END)::real,
                    CASE WHEN h = 'd1' AND i % 7 = 0 THEN NULL ELSE 100 + (i * 31) % 11 END
             FROM generate_series(0, 1499) i, unnest(ARRAY['d1', 'd2']) h;",
        )
        .unwrap();
    }

    /// A host's rows in time order (µs since the Unix epoch; NULL read as NaN), and a fresh
    /// device with the product's device defaults: the second code path of the tests below.
    fn rows_and_device(host: &str) -> (Vec<(i64, Vec<f64>)>, MultiAuto) {
        let rows = Spi::connect(|c| {
            c.select(
                &format!(
                    "SELECT (extract(epoch FROM ts) * 1000000)::int8, cpu, mem::float8, io::float8
                     FROM dev WHERE host = '{host}' ORDER BY ts"
                ),
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                let f = |i: usize| r.get::<f64>(i).unwrap().unwrap_or(f64::NAN);
                (r.get::<i64>(1).unwrap().unwrap(), vec![f(2), f(3), f(4)])
            })
            .collect()
        });
        let cfg = tidewatch_anomaly::device::device_config(&serde_json::json!({})).unwrap();
        (rows, MultiAuto::new(cfg, 3))
    }

    #[pg_test]
    fn device_scores_match_multiauto_and_blame_the_sensor_that_moved() {
        load();
        // The second code path: MultiAuto fed the same rows in time order, in Rust.
        for host in ["d1", "d2"] {
            let (rows, mut m) = rows_and_device(host);
            let want: Vec<(f64, bool, Option<String>)> = rows
                .iter()
                .map(|(t, r)| {
                    let v = m.update(*t, r);
                    let top = v.top.map(|i| ["cpu", "mem", "io"][i].to_string());
                    (v.score, v.is_anomaly, top)
                })
                .collect();
            let got: Vec<(f64, bool, Option<String>)> = Spi::connect(|c| {
                c.select(
                    &format!(
                        "SELECT score, is_anomaly, top_sensor FROM tidewatch.detect_device_anomalies(
                             'dev', '{{cpu,mem,io}}', '{{host}}', 'ts') WHERE series ->> 'host' = '{host}'
                         ORDER BY ts"
                    ),
                    None,
                    &[],
                )
                .unwrap()
                .map(|r| {
                    (
                        r.get::<f64>(1).unwrap().unwrap(),
                        r.get::<bool>(2).unwrap().unwrap(),
                        r.get::<String>(3).unwrap(),
                    )
                })
                .collect()
            });
            assert_eq!(got.len(), 1500);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.0.to_bits(), w.0.to_bits(), "{g:?} {w:?}");
                assert_eq!(g.1, w.1);
                // top_sensor is only reported with some surprise; it is the same sensor.
                assert!(g.2.is_none() || g.2 == w.2, "{g:?} {w:?}");
            }
        }
        let (top, share) = Spi::get_two::<String, f64>(
            "SELECT top_sensor, (contributions ->> 'mem')::float8
             FROM tidewatch.detect_device_anomalies('dev', '{cpu,mem,io}', '{host}', 'ts')
             WHERE is_anomaly AND series ->> 'host' = 'd2' AND ts = '2026-01-01 20:00+00'",
        )
        .unwrap();
        assert_eq!(top.as_deref(), Some("mem"));
        assert!(share.unwrap_or(0.0) > 0.5, "{share:?}");
        // anomalies_only returns the flagged rows and nothing else.
        let only = Spi::get_one::<i64>(
            "SELECT count(*) FROM tidewatch.detect_device_anomalies('dev', '{cpu,mem,io}', '{host}', 'ts',
                 anomalies_only => true)",
        )
        .unwrap();
        let flagged = Spi::get_one::<i64>(
            "SELECT count(*) FROM tidewatch.detect_device_anomalies('dev', '{cpu,mem,io}', '{host}', 'ts')
             WHERE is_anomaly",
        )
        .unwrap();
        assert_eq!(only, flagged);
        assert!(flagged.unwrap_or(0) >= 1);
    }

    #[pg_test]
    fn a_trained_device_scores_rows_as_multiauto_does() {
        load();
        // Train on the first 1,000 minutes (the newest row is minute 1,499: 499 minutes back,
        // exclusive lower bound).
        Spi::run("DELETE FROM dev WHERE ts >= '2026-01-01 16:40+00'").unwrap();
        let n = Spi::get_one::<i32>(
            "SELECT tidewatch.train_device_detector('hostmodel', 'dev', '{cpu,mem,io}', '{host}', interval '1000 days')",
        )
        .unwrap();
        assert_eq!(n, Some(2));
        let method = Spi::get_one::<String>(
            "SELECT string_agg(DISTINCT method, ',') FROM tidewatch.models WHERE name = 'hostmodel'",
        )
        .unwrap();
        assert_eq!(method.as_deref(), Some("device"));
        // The second path: MultiAuto fed d2's 1,000 rows in Rust, then a row with mem far out.
        let (rows, mut m) = rows_and_device("d2");
        assert_eq!(rows.len(), 1000);
        for (t, r) in &rows {
            m.update(*t, r);
        }
        let t_next = rows[999].0 + 60_000_000;
        let want = m.clone().update(t_next, &[51.0, 45.0, 105.0]);
        let got = Spi::get_two::<f64, i32>(
            "SELECT tidewatch.score('hostmodel', '{\"host\": \"d2\"}', '2026-01-01 16:40+00', ARRAY[51, 45, 105]),
                    tidewatch.predict('hostmodel', '{\"host\": \"d2\"}', '2026-01-01 16:40+00', ARRAY[51, 45, 105])",
        )
        .unwrap();
        assert_eq!(got.0.map(f64::to_bits), Some(want.score.to_bits()));
        assert_eq!(got.1, Some(if want.is_anomaly { -1 } else { 1 }));
        assert!(want.is_anomaly, "{want:?}");
        // A usual row is not flagged.
        let usual = Spi::get_one::<i32>(
            "SELECT tidewatch.predict('hostmodel', '{\"host\": \"d2\"}', '2026-01-01 16:40+00', ARRAY[51, 21, 105])",
        )
        .unwrap();
        assert_eq!(usual, Some(1));
    }

    #[pg_test(error = "this model is a device model (several value columns)")]
    fn a_device_model_refuses_one_value() {
        load();
        Spi::run("SELECT tidewatch.train_device_detector('hm', 'dev', '{cpu,mem,io}', '{host}', interval '1000 days')")
            .unwrap();
        Spi::run("SELECT tidewatch.score('hm', '{\"host\": \"d2\"}', now(), 3.0)").unwrap();
    }

    #[pg_test(error = "invalid parameter \"values\": 2 values for a device model of 3 sensors")]
    fn a_row_of_the_wrong_width_is_refused() {
        load();
        Spi::run("SELECT tidewatch.train_device_detector('hm', 'dev', '{cpu,mem,io}', '{host}', interval '1000 days')")
            .unwrap();
        Spi::run("SELECT tidewatch.score('hm', '{\"host\": \"d2\"}', now(), ARRAY[1.0, 2.0])")
            .unwrap();
    }

    #[pg_test(error = "column \"nope\" of \"public.dev\" does not exist")]
    fn a_missing_value_column_is_named() {
        load();
        Spi::run("SELECT count(*) FROM tidewatch.detect_device_anomalies('dev', '{cpu,nope}', '{host}', 'ts')")
            .unwrap();
    }

    #[pg_test(error = "value column \"host\" of \"public.dev\" has type text, not a number")]
    fn a_text_value_column_is_refused() {
        load();
        Spi::run("SELECT count(*) FROM tidewatch.detect_device_anomalies('dev', '{cpu,host}', '{}', 'ts')")
            .unwrap();
    }

    #[pg_test(error = "value_columns must name at least one column")]
    fn no_value_columns_is_refused() {
        load();
        Spi::run(
            "SELECT count(*) FROM tidewatch.detect_device_anomalies('dev', '{}', '{host}', 'ts')",
        )
        .unwrap();
    }

    #[pg_test]
    fn a_device_monitor_records_episodes_where_multiauto_alarms_and_names_the_sensor() {
        load();
        Spi::run(
            "CREATE TABLE dev_live (LIKE dev);
             -- The day before, at the jump's hour, before the monitor (so not scored): what
             -- explain_anomaly finds as mem's usual values.
             INSERT INTO dev_live SELECT ts - interval '1 day', host, cpu, mem, io FROM dev
                 WHERE host = 'd2' AND ts >= '2026-01-01 20:00+00' AND ts < '2026-01-01 21:00+00';
             SELECT tidewatch.monitor_device('devmon', 'dev_live', '{cpu,mem,io}', '{host}', time_column => 'ts');
             -- Three statements: the state crosses batches as it does in production.
             INSERT INTO dev_live SELECT * FROM dev WHERE ts < '2026-01-01 10:00+00';
             INSERT INTO dev_live SELECT * FROM dev WHERE ts >= '2026-01-01 10:00+00' AND ts < '2026-01-01 20:00+00';
             INSERT INTO dev_live SELECT * FROM dev WHERE ts >= '2026-01-01 20:00+00';",
        )
        .unwrap();
        for host in ["d1", "d2"] {
            // Oracle: MultiAuto fed the rows by hand. Every alarm lies in an episode, and every
            // episode starts at an alarm or at the point before it.
            let (rows, mut m) = rows_and_device(host);
            let alarms: Vec<i64> = rows
                .iter()
                .filter_map(|(t, r)| m.update(*t, r).is_anomaly.then_some(*t))
                .collect();
            let episodes: Vec<(i64, i64)> = Spi::connect(|c| {
                c.select(
                    &format!(
                        "SELECT (extract(epoch FROM started_at) * 1000000)::int8,
                                (extract(epoch FROM ended_at) * 1000000)::int8
                         FROM tidewatch.anomalies WHERE monitor = 'devmon' AND series ->> 'host' = '{host}'
                         ORDER BY started_at"
                    ),
                    None,
                    &[],
                )
                .unwrap()
                .map(|r| (r.get::<i64>(1).unwrap().unwrap(), r.get::<i64>(2).unwrap().unwrap()))
                .collect()
            });
            for a in &alarms {
                assert!(
                    episodes.iter().any(|(s, e)| s <= a && a <= e),
                    "{host}: alarm at {a} in no episode {episodes:?}"
                );
            }
            for (s, _) in &episodes {
                assert!(
                    alarms.iter().any(|a| *a >= *s && *a - *s <= 60_000_000),
                    "{host}: episode at {s} without an alarm {alarms:?}"
                );
            }
            let n = Spi::get_one::<i64>(&format!(
                "SELECT n FROM tidewatch.monitor_state WHERE monitor = 'devmon' AND series ->> 'host' = '{host}'"
            ))
            .unwrap();
            assert_eq!(n, Some(1500));
        }
        // d2's jump: one episode peaking at minute 1,200 on mem, with mem's value and share.
        let jump = "FROM tidewatch.anomalies WHERE monitor = 'devmon' AND series ->> 'host' = 'd2'
                    AND peak_at = '2026-01-01 20:00+00'";
        let (top, share, value) = Spi::get_three::<String, f64, f64>(&format!(
            "SELECT detail ->> 'top_sensor', (detail -> 'contributions' ->> 'mem')::float8, peak_value {jump}"
        ))
        .unwrap();
        let id = Spi::get_one::<i64>(&format!("SELECT id {jump}")).unwrap();
        assert_eq!(top.as_deref(), Some("mem"));
        assert!(share.unwrap_or(0.0) > 0.5, "{share:?}");
        let mem = Spi::get_one::<f64>(
            "SELECT mem::float8 FROM dev WHERE host = 'd2' AND ts = '2026-01-01 20:00+00'",
        )
        .unwrap();
        assert_eq!(value, mem);
        let why = Spi::get_one::<String>(&format!(
            "SELECT string_agg(reason, ' | ' ORDER BY rank) FROM tidewatch.explain_anomaly({})",
            id.unwrap_or(0)
        ))
        .unwrap()
        .unwrap_or_default();
        assert!(why.contains("sensor mem moved most"), "{why}");
        assert!(
            why.contains("sensor mem of this device is usually"),
            "{why}"
        );
        assert_eq!(
            Spi::get_one::<bool>("SELECT tidewatch.unmonitor('devmon')").unwrap(),
            Some(true)
        );
    }

    #[pg_test(error = "value_columns must not contain NULL")]
    fn a_device_monitor_refuses_a_null_column() {
        load();
        Spi::run(
            "SELECT tidewatch.monitor_device('m', 'dev', ARRAY['cpu', NULL]::name[], '{host}')",
        )
        .unwrap();
    }
}
