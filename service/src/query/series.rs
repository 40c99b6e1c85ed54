//! `GET /v1/series` (which series exist) and `GET /v1/series/points` (their points, or
//! `time_bucket` aggregates, with the expected band when a monitor or a trained model exists).

use std::time::Duration;

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{limit, opt_time, parse_labels};
use crate::config::parse_duration;
use crate::db::row::{get, time_or_null};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Only this metric.
    pub metric: Option<String>,
    /// Only series whose labels contain these (a JSON object of strings).
    pub labels: Option<String>,
    /// Only points at or after this time (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// Only points before this time.
    pub to: Option<String>,
    /// At most this many series (default 1000, at most 10000).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeriesInfo {
    pub metric: String,
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    /// The first and last point's time; null when it is one JSON cannot carry (`infinity`,
    /// `-infinity` or a year beyond 262142, from rows written by SQL).
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeriesList {
    pub series: Vec<SeriesInfo>,
}

/// The metrics and label sets in the metrics table, with their first and last point and count.
#[utoipa::path(get, path = "/v1/series", tag = "query", params(SeriesQuery),
    responses(
        (status = 200, description = "Series, ordered by metric and labels", body = SeriesList),
        (status = 400, description = "Bad parameter (`invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed (`unauthorized`, `invalid_token`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn list_series(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<SeriesList>> {
    let q: SeriesQuery = extract::query(&uri)?;
    let labels = parse_labels(&q.labels)?;
    let from = opt_time("from", &q.from)?;
    let to = opt_time("to", &q.to)?;
    let limit = limit(q.limit, 1000, 10_000)?;
    let client = state.pool.get().await?;
    let sql = format!(
        "SELECT metric::text, labels, min(time), max(time), count(*) FROM {} \
         WHERE ($1::text IS NULL OR metric = $1) AND ($2::jsonb IS NULL OR labels @> $2) \
           AND ($3::timestamptz IS NULL OR time >= $3) AND ($4::timestamptz IS NULL OR time < $4) \
         GROUP BY metric, labels ORDER BY metric, labels::text LIMIT $5",
        state.tables.metrics.sql
    );
    let rows = client
        .query(&sql, &[&q.metric, &labels, &from, &to, &limit])
        .await?;
    let series = rows
        .iter()
        .map(|r| {
            Ok(SeriesInfo {
                metric: get(r, 0)?,
                labels: get(r, 1)?,
                first: time_or_null(r, 2)?,
                last: time_or_null(r, 3)?,
                count: get(r, 4)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(SeriesList { series }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PointsQuery {
    /// The metric (required).
    pub metric: String,
    /// The exact label set (a JSON object of strings); without it, every series of the metric (at most 100).
    pub labels: Option<String>,
    /// From this time (RFC 3339 or epoch seconds; default: `to` minus one day).
    pub from: Option<String>,
    /// Before this time (default: now).
    pub to: Option<String>,
    /// Bucket width (e.g. 30s, 5m, 1h): return `time_bucket` aggregates instead of points.
    pub step: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PointOut {
    /// The point's time, or the bucket's start.
    pub ts: DateTime<Utc>,
    /// The value, or the bucket's mean.
    pub value: f64,
    /// With `step`: the bucket's minimum, maximum and number of points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// The expected value and normal band (with `step`: the bucket's mean expected value, lowest
    /// lower and highest upper bound), when a monitor or model exists for the series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Anomaly score in [0, 1] (with `step`: the bucket's highest) and flag, with the band.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_anomaly: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoints {
    pub metric: String,
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    /// Where the band comes from: `monitor:<name>` or `model:<name>` (method and params), or null.
    pub band: Option<String>,
    pub points: Vec<PointOut>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PointsResponse {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The bucket width in seconds, when `step` was given.
    pub step_seconds: Option<f64>,
    pub series: Vec<SeriesPoints>,
}

/// Raw points returned at most per request; more needs a `step`.
const MAX_POINTS: usize = 100_000;
/// Points before `from` that the band's detector learns from first.
const WARMUP_POINTS: i64 = 1024;

/// The points of a metric's series in a time range, or `time_bucket` aggregates with `step`,
/// each with the expected value and normal band when the metrics table has a monitor (or the
/// series a trained model): the band is recomputed with that method and params over the
/// 1,024 points before `from` and the range.
#[utoipa::path(get, path = "/v1/series/points", tag = "query", params(PointsQuery),
    responses(
        (status = 200, description = "Points per series", body = PointsResponse),
        (status = 400, description = "Bad parameter or too many points without a step (`invalid_parameter`, `unknown_parameter`, `too_many_points`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn points(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<PointsResponse>> {
    let q: PointsQuery = extract::query(&uri)?;
    let labels = parse_labels(&q.labels)?;
    let to = opt_time("to", &q.to)?.unwrap_or_else(Utc::now);
    let from = opt_time("from", &q.from)?.unwrap_or(to - chrono::Duration::days(1));
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "from must be before to",
        ));
    }
    let step = match &q.step {
        None => None,
        Some(s) => {
            let d = parse_duration(s)
                .map_err(|m| ApiError::bad_request("invalid_parameter", format!("step: {m}")))?;
            if d < Duration::from_millis(1) {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    "step must be at least 1ms",
                ));
            }
            Some(d)
        }
    };
    let table = &state.tables.metrics;
    let client = state.pool.get().await?;
    let series_rows = client
        .query(
            &format!(
                "SELECT DISTINCT labels FROM {} WHERE metric = $1 AND ($2::jsonb IS NULL OR labels = $2) \
                 AND time >= $3 AND time < $4 ORDER BY 1 LIMIT 101",
                table.sql
            ),
            &[&q.metric, &labels, &from, &to],
        )
        .await?;
    if series_rows.len() > 100 {
        return Err(ApiError::bad_request(
            "too_many_series",
            format!(
                "metric \"{}\" has more than 100 series in this range; pass labels to pick one",
                q.metric
            ),
        ));
    }
    // A monitor on the metrics table scoring per (metric, labels), or a model of the series.
    let monitor = client
        .query_opt(
            "SELECT name, method, params FROM tidewatch.monitors WHERE relid = $1::oid::regclass AND value_column = 'value' \
             AND series_columns IN ('{metric,labels}'::name[], '{labels,metric}'::name[]) ORDER BY created_at LIMIT 1",
            &[&table.oid],
        )
        .await?
        .map(|r| band_of("monitor", &r))
        .transpose()?;
    let mut total = 0usize;
    let mut out = Vec::new();
    for row in series_rows {
        let series_labels: serde_json::Value = get(&row, 0)?;
        let band = match &monitor {
            Some(m) => Some(m.clone()),
            None => client
                .query_opt(
                    "SELECT name, method, params FROM tidewatch.models WHERE relation = $1::oid::regclass \
                     AND value_column = 'value' AND series = jsonb_build_object('metric', $2::text, 'labels', $3::jsonb) \
                     ORDER BY trained_at DESC LIMIT 1",
                    &[&table.oid, &q.metric, &series_labels],
                )
                .await?
                .map(|r| band_of("model", &r))
                .transpose()?,
        };
        let points = series_points(
            &client,
            &table.sql,
            &q.metric,
            &series_labels,
            from,
            to,
            step,
            band.as_ref(),
        )
        .await?;
        total += points.len();
        if step.is_none() && total > MAX_POINTS {
            return Err(ApiError::bad_request(
                "too_many_points",
                format!("more than {MAX_POINTS} points in this range; pass step (e.g. step=1m) or a shorter range"),
            ));
        }
        out.push(SeriesPoints {
            metric: q.metric.clone(),
            labels: series_labels,
            band: band.map(|b| b.0),
            points,
        });
    }
    Ok(Json(PointsResponse {
        from,
        to,
        step_seconds: step.map(|d| d.as_secs_f64()),
        series: out,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn series_points(
    client: &deadpool_postgres::Client,
    table: &str,
    metric: &str,
    labels: &serde_json::Value,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Option<Duration>,
    band: Option<&(String, String, serde_json::Value)>,
) -> ApiResult<Vec<PointOut>> {
    let step_us = step.map(|d| d.as_micros() as i64);
    // make_interval keeps days apart from seconds, as time_bucket's day widths expect.
    let bucket = "tidewatch.time_bucket(make_interval(days => ($7 / 86400000000)::int, \
                  secs => ($7 % 86400000000) / 1e6), ts)";
    let rows = match (band, step_us) {
        (None, None) => {
            let sql = format!(
                "SELECT time, value FROM {table} WHERE metric = $1 AND labels = $2 AND time >= $3 AND time < $4 \
                 ORDER BY time LIMIT {}",
                MAX_POINTS + 1
            );
            let rows = client.query(&sql, &[&metric, labels, &from, &to]).await?;
            return rows
                .iter()
                .map(|r| Ok(plain(get(r, 0)?, get(r, 1)?)))
                .collect();
        }
        (None, Some(us)) => {
            let sql = format!(
                "SELECT {} AS b, avg(value), min(value), max(value), count(*) \
                 FROM (SELECT time AS ts, value FROM {table} WHERE metric = $1 AND labels = $2 AND time >= $3 AND time < $4) s \
                 GROUP BY b ORDER BY b",
                bucket.replace("$7", "$5")
            );
            let rows = client
                .query(&sql, &[&metric, labels, &from, &to, &us])
                .await?;
            return rows
                .iter()
                .map(|r| {
                    Ok(PointOut {
                        min: get(r, 2)?,
                        max: get(r, 3)?,
                        count: get(r, 4)?,
                        ..plain(get(r, 0)?, get(r, 1)?)
                    })
                })
                .collect();
        }
        (Some((_, method, params)), step_us) => {
            let scored = format!(
                "WITH pts AS ((SELECT time, value FROM {table} WHERE metric = $1 AND labels = $2 AND time < $3 \
                               ORDER BY time DESC LIMIT {WARMUP_POINTS}) \
                              UNION ALL \
                              (SELECT time, value FROM {table} WHERE metric = $1 AND labels = $2 AND time >= $3 AND time < $4 \
                               ORDER BY time LIMIT {})) \
                 SELECT p.ts, p.value, p.expected, p.lower, p.upper, p.score, p.is_anomaly \
                 FROM (SELECT tidewatch.anomaly_agg(time, value, $5, $6) AS b FROM pts) g, \
                      LATERAL tidewatch.anomaly_points(g.b) p WHERE p.ts >= $3",
                MAX_POINTS + 1
            );
            match step_us {
                None => {
                    let sql = format!("{scored} ORDER BY p.ts");
                    client
                        .query(&sql, &[&metric, labels, &from, &to, method, params])
                        .await?
                }
                Some(us) => {
                    let sql = format!(
                        "SELECT {bucket} AS b, avg(value), min(value), max(value), count(*), avg(expected), min(lower), \
                         max(upper), max(score), bool_or(is_anomaly) FROM ({scored}) s GROUP BY b ORDER BY b"
                    );
                    let rows = client
                        .query(&sql, &[&metric, labels, &from, &to, method, params, &us])
                        .await?;
                    return rows
                        .iter()
                        .map(|r| {
                            Ok(PointOut {
                                ts: get(r, 0)?,
                                value: get(r, 1)?,
                                min: get(r, 2)?,
                                max: get(r, 3)?,
                                count: get(r, 4)?,
                                expected: get(r, 5)?,
                                lower: get(r, 6)?,
                                upper: get(r, 7)?,
                                score: get(r, 8)?,
                                is_anomaly: get(r, 9)?,
                            })
                        })
                        .collect();
                }
            }
        }
    };
    rows.iter()
        .map(|r| {
            Ok(PointOut {
                expected: get(r, 2)?,
                lower: get(r, 3)?,
                upper: get(r, 4)?,
                score: get(r, 5)?,
                is_anomaly: get(r, 6)?,
                ..plain(get(r, 0)?, get(r, 1)?)
            })
        })
        .collect()
}

/// A band's source (`monitor:<name>` or `model:<name>`), method and params from a catalog row.
fn band_of(
    source: &str,
    r: &tokio_postgres::Row,
) -> ApiResult<(String, String, serde_json::Value)> {
    Ok((
        format!("{source}:{}", get::<String>(r, 0)?),
        get(r, 1)?,
        get(r, 2)?,
    ))
}

fn plain(ts: DateTime<Utc>, value: f64) -> PointOut {
    PointOut {
        ts,
        value,
        min: None,
        max: None,
        count: None,
        expected: None,
        lower: None,
        upper: None,
        score: None,
        is_anomaly: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::row::PgTime;
    use serde_json::json;

    #[test]
    fn series_times_are_rfc3339_and_null_when_json_cannot_carry_them() {
        let t = DateTime::parse_from_rfc3339("2026-03-02T10:00:05Z")
            .expect("a time")
            .with_timezone(&Utc);
        let normal = SeriesInfo {
            metric: "SCH.M1".into(),
            labels: json!({"satellite": "SAT2"}),
            first: PgTime::Time(t).finite(),
            last: PgTime::Time(t).finite(),
            count: 2,
        };
        // The documented shape (docs/service.md) is unchanged for normal times.
        assert_eq!(
            serde_json::to_value(&normal).expect("JSON"),
            json!({"metric": "SCH.M1", "labels": {"satellite": "SAT2"},
                   "first": "2026-03-02T10:00:05Z", "last": "2026-03-02T10:00:05Z", "count": 2})
        );
        let infinite = SeriesInfo {
            first: PgTime::NegInfinity.finite(),
            last: PgTime::Infinity.finite(),
            ..normal
        };
        let v = serde_json::to_value(&infinite).expect("JSON");
        assert_eq!(v["first"], serde_json::Value::Null);
        assert_eq!(v["last"], serde_json::Value::Null);
        assert_eq!(v["count"], 2);
    }
}
