//! Reads: series and their points, anomaly episodes and their explanations, drift results, log
//! templates and error counts. Read endpoints need a read (or write) token when read tokens are
//! configured, and are open otherwise. Every query is parameterised; table names come from the
//! catalog, quoted by the server (`TableRef::sql`).

pub mod anomalies;
pub mod drift;
pub mod logs;
pub mod series;

use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::ingest::point::{parse_rfc3339, Precision};
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(series::list_series))
        .routes(routes!(series::points))
        .routes(routes!(anomalies::list))
        .routes(routes!(anomalies::one))
        .routes(routes!(drift::list))
        .routes(routes!(logs::templates))
        .routes(routes!(logs::errors))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::read,
        ))
}

/// A time parameter: RFC 3339, or a Unix epoch in seconds.
pub fn parse_time(name: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    let us = if let Ok(n) = s.parse::<f64>() {
        Precision::S
            .float_to_us(n)
            .ok_or_else(|| format!("{s} is out of range"))
    } else {
        parse_rfc3339(s)
    }
    .map_err(|m| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("{name}: {m}; use RFC 3339 or epoch seconds"),
        )
    })?;
    DateTime::from_timestamp_micros(us).ok_or_else(|| {
        ApiError::bad_request("invalid_parameter", format!("{name}: {s} is out of range"))
    })
}

pub fn opt_time(name: &str, s: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    s.as_deref().map(|v| parse_time(name, v)).transpose()
}

/// `labels=` as a JSON object of strings, canonicalised.
pub fn parse_labels(s: &Option<String>) -> Result<Option<serde_json::Value>, ApiError> {
    let Some(text) = s else { return Ok(None) };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(
            "invalid_parameter",
            format!(
                "labels must be a JSON object of strings, e.g. {{\"satellite\":\"SAT2\"}}: {e}"
            ),
        )
    })?;
    let canonical = crate::ingest::point::labels_from_json(Some(&v))
        .map_err(|m| ApiError::bad_request("invalid_parameter", format!("labels: {m}")))?;
    serde_json::from_str(&canonical)
        .map(Some)
        .map_err(|e| ApiError::internal("internal_error", e.to_string()))
}

/// `limit=`: default and maximum.
pub fn limit(v: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit {n} is out of range 1..{max}"),
        )),
    }
}

/// A comma-separated list checked against the allowed values.
pub fn parse_list(
    name: &str,
    s: &Option<String>,
    allowed: &[&str],
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(text) = s else { return Ok(None) };
    let items: Vec<String> = text
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect();
    for item in &items {
        if !allowed.contains(&item.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "unknown {name} \"{item}\"; valid values: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(Some(items))
}
