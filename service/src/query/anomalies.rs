//! `GET /v1/anomalies` (episodes, newest first, with a cursor) and `GET /v1/anomalies/{id}` (one
//! episode with `explain_anomaly`'s ranked reasons).

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};

use super::{limit, opt_time, parse_labels, parse_list};
use crate::config::parse_duration;
use crate::db::row::{get, time, time_or_null};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

pub const SEVERITIES: &[&str] = &["info", "warning", "critical"];
pub const KINDS: &[&str] = &[
    "spike",
    "dip",
    "level_shift",
    "variance_change",
    "flatline",
    "missing_data",
    "seasonal_break",
    "peer_outlier",
    "log_burst",
];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnomaliesQuery {
    /// Only episodes of this metric (series `metric` label).
    pub metric: Option<String>,
    /// Only series whose labels contain these (a JSON object of strings).
    pub labels: Option<String>,
    /// Only episodes still going on at or after this time (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// Only episodes that started before this time.
    pub to: Option<String>,
    /// Comma-separated severities: info, warning, critical.
    pub severity: Option<String>,
    /// Comma-separated kinds: spike, dip, level_shift, variance_change, flatline, missing_data,
    /// seasonal_break, peer_outlier, log_burst.
    pub kind: Option<String>,
    /// Only this monitor.
    pub monitor: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An anomaly episode.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Anomaly {
    pub id: i64,
    pub monitor: String,
    /// The series' labels as the monitor keys them (for the service's monitor: metric and labels).
    #[schema(value_type = Object)]
    pub series: serde_json::Value,
    /// `series.metric`, when the series has one.
    pub metric: Option<String>,
    /// `series.labels` when present, else the series itself.
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    pub started_at: DateTime<Utc>,
    /// Null while a missing-data episode is going on (or when the end is `infinity`).
    pub ended_at: Option<DateTime<Utc>>,
    /// Null when unknown, or a time JSON cannot carry (`infinity`, `-infinity`).
    pub peak_at: Option<DateTime<Utc>>,
    pub peak_value: Option<f64>,
    pub expected: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// In [0, 1].
    pub score: Option<f64>,
    pub sigma: Option<f64>,
    /// info, warning or critical.
    pub severity: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnomalyPage {
    pub anomalies: Vec<Anomaly>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    pub rank: i32,
    pub reason: String,
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExplainedAnomaly {
    pub anomaly: Anomaly,
    /// `tidewatch.explain_anomaly`: reasons ranked by weight, each with its evidence.
    pub explanation: Vec<Reason>,
}

pub const COLUMNS: &str =
    "a.id, a.monitor, a.series, a.started_at, a.ended_at, a.peak_at, a.peak_value, a.expected, \
                       a.lower, a.upper, a.score, a.sigma, a.severity, a.kind, a.detail";

/// An episode from a row of `COLUMNS`. `started_at` (the cursor's key) must be a time JSON can
/// carry; an infinite `ended_at` or `peak_at` is null.
pub fn anomaly(r: &Row) -> ApiResult<Anomaly> {
    let series: serde_json::Value = get(r, 2)?;
    let metric = series
        .get("metric")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let labels = series
        .get("labels")
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| series.clone());
    Ok(Anomaly {
        id: get(r, 0)?,
        monitor: get(r, 1)?,
        series,
        metric,
        labels,
        started_at: time(r, 3)?,
        ended_at: time_or_null(r, 4)?,
        peak_at: time_or_null(r, 5)?,
        peak_value: get(r, 6)?,
        expected: get(r, 7)?,
        lower: get(r, 8)?,
        upper: get(r, 9)?,
        score: get(r, 10)?,
        sigma: get(r, 11)?,
        severity: get(r, 12)?,
        kind: get(r, 13)?,
        detail: get(r, 14)?,
    })
}

/// The cursor: where the last page ended, as (started_at µs, id), base64url.
fn encode_cursor(started_at: DateTime<Utc>, id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{id}", started_at.timestamp_micros()))
}

fn decode_cursor(s: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_parameter",
            "cursor is not one this service returned (pass next_cursor as is)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = text.split_once(':').ok_or_else(bad)?;
    let t: i64 = t.parse().map_err(|_| bad())?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    Ok((DateTime::from_timestamp_micros(t).ok_or_else(bad)?, id))
}

/// Anomaly episodes, newest first, filtered, a page at a time.
#[utoipa::path(get, path = "/v1/anomalies", tag = "query", params(AnomaliesQuery),
    responses(
        (status = 200, description = "A page of episodes", body = AnomalyPage),
        (status = 400, description = "Bad parameter (`invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<AnomalyPage>> {
    let q: AnomaliesQuery = extract::query(&uri)?;
    let labels = parse_labels(&q.labels)?;
    let from = opt_time("from", &q.from)?;
    let to = opt_time("to", &q.to)?;
    let severity = parse_list("severity", &q.severity, SEVERITIES)?;
    let kind = parse_list("kind", &q.kind, KINDS)?;
    let limit = limit(q.limit, 100, 1000)?;
    let (after_t, after_id) = match q.cursor.as_deref() {
        Some(c) => {
            let (t, id) = decode_cursor(c)?;
            (Some(t), Some(id))
        }
        None => (None, None),
    };
    let client = state.pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM tidewatch.anomalies a \
         WHERE ($1::text IS NULL OR a.monitor = $1) \
           AND ($2::text IS NULL OR a.series ->> 'metric' = $2) \
           AND ($3::jsonb IS NULL OR a.series -> 'labels' @> $3 OR a.series @> $3) \
           AND ($4::timestamptz IS NULL OR coalesce(a.ended_at, 'infinity') >= $4) \
           AND ($5::timestamptz IS NULL OR a.started_at < $5) \
           AND ($6::text[] IS NULL OR a.severity = ANY ($6)) \
           AND ($7::text[] IS NULL OR a.kind = ANY ($7)) \
           AND ($8::timestamptz IS NULL OR (a.started_at, a.id) < ($8, $9::bigint)) \
         ORDER BY a.started_at DESC, a.id DESC LIMIT $10"
    );
    let rows = client
        .query(
            &sql,
            &[
                &q.monitor,
                &q.metric,
                &labels,
                &from,
                &to,
                &severity,
                &kind,
                &after_t,
                &after_id,
                &(limit + 1),
            ],
        )
        .await?;
    let mut anomalies: Vec<Anomaly> = rows.iter().map(anomaly).collect::<ApiResult<_>>()?;
    let next_cursor = if anomalies.len() as i64 > limit {
        anomalies.truncate(limit as usize);
        anomalies.last().map(|a| encode_cursor(a.started_at, a.id))
    } else {
        None
    };
    Ok(Json(AnomalyPage {
        anomalies,
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// How far around the episode to look for related episodes and events (default 30m).
    pub window: Option<String>,
}

/// One episode with its ranked explanation (`tidewatch.explain_anomaly`).
#[utoipa::path(get, path = "/v1/anomalies/{id}", tag = "query",
    params(("id" = i64, Path, description = "Episode id"), ExplainQuery),
    responses(
        (status = 200, description = "The episode and its reasons", body = ExplainedAnomaly),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 404, description = "No such episode (`not_found`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<ExplainedAnomaly>> {
    let q: ExplainQuery = extract::query(&uri)?;
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!(
                "anomaly id \"{}\" is not an integer",
                crate::ingest::point::clip(&id)
            ),
        )
    })?;
    let window_secs = match &q.window {
        None => 1800.0,
        Some(w) => parse_duration(w)
            .map_err(|m| ApiError::bad_request("invalid_parameter", format!("window: {m}")))?
            .as_secs_f64(),
    };
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM tidewatch.anomalies a WHERE a.id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no anomaly episode with id {id}")))?;
    let reasons = client
        .query(
            "SELECT rank, reason, evidence FROM tidewatch.explain_anomaly($1, make_interval(secs => $2))",
            &[&id, &window_secs],
        )
        .await?;
    Ok(Json(ExplainedAnomaly {
        anomaly: anomaly(&row)?,
        explanation: reasons.iter().map(reason).collect::<ApiResult<_>>()?,
    }))
}

/// A reason from a row of (rank, reason, evidence), as `explain_anomaly` returns them.
pub fn reason(r: &Row) -> ApiResult<Reason> {
    Ok(Reason {
        rank: get(r, 0)?,
        reason: get(r, 1)?,
        evidence: get(r, 2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let t = DateTime::from_timestamp_micros(1_772_445_605_123_456).unwrap_or_default();
        let c = encode_cursor(t, 42);
        assert_eq!(decode_cursor(&c).ok(), Some((t, 42)));
        assert!(decode_cursor("not-a-cursor").is_err());
        assert!(
            decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("1:x")).is_err()
        );
    }
}
