//! `GET /v1/drift`: results of drift monitors (`tidewatch.drift_results`), newest first.

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{limit, opt_time};
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
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
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
        .map(|r| DriftResult {
            run_at: r.get(0),
            monitor: r.get(1),
            window_start: r.get(2),
            window_end: r.get(3),
            column_name: r.get(4),
            method: r.get(5),
            statistic: r.get(6),
            p_value: r.get(7),
            threshold: r.get(8),
            drifted: r.get(9),
            reference_count: r.get(10),
            current_count: r.get(11),
            share_of_drifted_columns: r.get(12),
            dataset_drift: r.get(13),
            error: r.get(14),
        })
        .collect();
    Ok(Json(DriftResults { results }))
}
