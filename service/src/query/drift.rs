//! `GET /v1/drift`: results of drift monitors (`tidewatch.drift_results`), newest first.

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{limit, opt_time};
use crate::db::row::{get, time, time_or_null};
use crate::error::{ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DriftQuery {
    /// Only this drift monitor.
    pub monitor: Option<String>,
    /// Only runs at or after this time (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// Only runs before this time.
    pub to: Option<String>,
    /// At most this many rows (default 1000, at most 10000).
    pub limit: Option<i64>,
}

/// One column of one drift-monitor run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftResult {
    pub run_at: DateTime<Utc>,
    pub monitor: String,
    /// The window compared; null when its bound is a time JSON cannot carry (`infinity`,
    /// `-infinity`, or a year beyond 262142).
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    /// The column compared (`*` for a run that could not compare, with `error`).
    pub column_name: String,
    pub method: Option<String>,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub threshold: Option<f64>,
    pub drifted: Option<bool>,
    pub reference_count: Option<i64>,
    pub current_count: Option<i64>,
    pub share_of_drifted_columns: f64,
    pub dataset_drift: bool,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftResults {
    pub results: Vec<DriftResult>,
}

/// Drift results per run and column, newest run first.
#[utoipa::path(get, path = "/v1/drift", tag = "query", params(DriftQuery),
    responses(
        (status = 200, description = "Drift results", body = DriftResults),
        (status = 400, description = "Bad parameter (`invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<DriftResults>> {
    let q: DriftQuery = extract::query(&uri)?;
    let from = opt_time("from", &q.from)?;
    let to = opt_time("to", &q.to)?;
    let limit = limit(q.limit, 1000, 10_000)?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT run_at, monitor, window_start, window_end, column_name::text, method, statistic, p_value, threshold, \
                    drifted, reference_count, current_count, share_of_drifted_columns, dataset_drift, error \
             FROM tidewatch.drift_results \
             WHERE ($1::text IS NULL OR monitor = $1) AND ($2::timestamptz IS NULL OR run_at >= $2) \
               AND ($3::timestamptz IS NULL OR run_at < $3) \
             ORDER BY run_at DESC, monitor, column_name, method LIMIT $4",
            &[&q.monitor, &from, &to, &limit],
        )
        .await?;
    let results = rows
        .iter()
        .map(|r| {
            Ok(DriftResult {
                run_at: time(r, 0)?,
                monitor: get(r, 1)?,
                window_start: time_or_null(r, 2)?,
                window_end: time_or_null(r, 3)?,
                column_name: get(r, 4)?,
                method: get(r, 5)?,
                statistic: get(r, 6)?,
                p_value: get(r, 7)?,
                threshold: get(r, 8)?,
                drifted: get(r, 9)?,
                reference_count: get(r, 10)?,
                current_count: get(r, 11)?,
                share_of_drifted_columns: get(r, 12)?,
                dataset_drift: get(r, 13)?,
                error: get(r, 14)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(DriftResults { results }))
}
