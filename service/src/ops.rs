//! Operations: `GET /healthz` (the process answers), `GET /readyz` (the database answers and the
//! extension is installed), `GET /metrics` (Prometheus text format). Open, no token.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// The tidewatch extension's version in the database.
    pub extension_version: String,
    /// The metrics table (schema-qualified).
    pub metrics_table: String,
    pub logs_table: String,
    /// Monitors on those tables, when any.
    pub metrics_monitor: Option<String>,
    pub logs_monitor: Option<String>,
}

/// The process is up (it does not touch the database).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// The database answers and the tidewatch extension is installed.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Database unreachable, pool exhausted or extension missing (codes `database_unavailable`, `pool_exhausted`, `not_ready`)", body = ErrorBody)
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let client = state.pool.get().await?;
    let version = crate::db::schema::extension_version(&client).await?;
    let Some(extension_version) = version else {
        return Err(ApiError::unavailable(
            "not_ready",
            "the tidewatch extension is not installed in the database",
        ));
    };
    Ok(Json(Ready {
        status: "ready".into(),
        extension_version,
        metrics_table: state.tables.metrics.sql.clone(),
        logs_table: state.tables.logs.sql.clone(),
        metrics_monitor: state.tables.metrics.monitor.clone(),
        logs_monitor: state.tables.logs.monitor.clone(),
    }))
}

/// Prometheus text format: requests by route and status, latency histograms, points and lines
/// ingested, rejected requests by reason, pool size and waiters.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let status = state.pool.status();
    metrics::gauge!("tidewatch_pool_size").set(status.size as f64);
    metrics::gauge!("tidewatch_pool_available").set(status.available as f64);
    metrics::gauge!("tidewatch_pool_waiters").set(status.waiting as f64);
    metrics::gauge!("tidewatch_pool_max_size").set(status.max_size as f64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
        .into_response()
}
