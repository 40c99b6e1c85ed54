//! Ingest: `POST /v1/metrics` (JSON or line protocol), `POST /api/v2/write` (InfluxDB v2),
//! `POST /api/v1/write` (Prometheus remote write 1.0) and `POST /v1/logs`. All need a write token.
//!
//! A request is parsed and validated whole before any database work; then its points go in one
//! transaction (COPY into staging, `INSERT ... ON CONFLICT DO NOTHING`), and the answer comes after
//! the commit. The database work runs in its own task, so a request that times out or whose
//! client goes away still ends its transaction cleanly (committed or rolled back) instead of
//! leaving a connection mid-COPY.

pub mod json;
pub mod line_protocol;
pub mod logs;
pub mod point;
pub mod remote_write;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::point::{now_us, Precision};
use crate::db::write::{self, LogLine, Point};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let limit = state.config.max_body_bytes;
    let auth = axum::middleware::from_fn_with_state(state.clone(), crate::auth::write);
    // gzip bodies: the limit applies to what arrives and to what it decompresses to.
    let compressible = OpenApiRouter::new()
        .routes(routes!(post_metrics))
        .routes(routes!(influx_write))
        .routes(routes!(post_logs))
        .route_layer(RequestBodyLimitLayer::new(limit))
        .route_layer(RequestDecompressionLayer::new())
        .route_layer(RequestBodyLimitLayer::new(limit))
        .route_layer(auth.clone());
    // Remote write is snappy-compressed; its decompressed size is checked before decompressing.
    let remote = OpenApiRouter::new()
        .routes(routes!(remote_write))
        .route_layer(RequestBodyLimitLayer::new(limit))
        .route_layer(auth);
    compressible.merge(remote)
}

/// What an ingest request wrote.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestResult {
    /// Points in the request (after skipping non-numeric fields and stale markers).
    pub accepted: u64,
    /// Points that were new.
    pub inserted: u64,
    /// Points already stored with the same (metric, labels, time): a retry, kept once.
    pub duplicates: u64,
    /// Line-protocol string/boolean fields and remote-write stale markers skipped.
    pub skipped: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogsResult {
    /// Lines written.
    pub accepted: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Unit of epoch timestamps: s, ms, us or ns. Default: s for JSON, ns for line protocol.
    pub precision: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
// bucket and org are parsed (so that they are not unknown parameters) but not used.
#[allow(dead_code)]
pub struct InfluxQuery {
    /// Accepted for compatibility; points go to the configured metrics table.
    pub bucket: Option<String>,
    /// Accepted for compatibility.
    pub org: Option<String>,
    /// Accepted for compatibility.
    #[serde(rename = "orgID")]
    #[param(rename = "orgID")]
    pub org_id: Option<String>,
    /// Unit of the timestamps: s, ms, us or ns (default ns).
    pub precision: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Source of plain-text lines and of JSON lines without one (default empty).
    pub source: Option<String>,
    /// Labels (a JSON object of strings) of plain-text lines and of JSON lines without their own.
    pub labels: Option<String>,
    /// Unit of epoch `ts` numbers in JSON lines: s, ms, us or ns (default s).
    pub precision: Option<String>,
}

fn precision(p: &Option<String>, default: Precision) -> ApiResult<Precision> {
    p.as_deref().map(Precision::parse).unwrap_or(Ok(default))
}

/// Write points in one transaction (see the module comment for why in a task of its own).
async fn store_points(
    state: &AppState,
    points: Vec<Point>,
    format: &'static str,
    skipped: u64,
) -> ApiResult<IngestResult> {
    let accepted = points.len() as u64;
    let inserted = if points.is_empty() {
        0
    } else {
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut client = st.pool.get().await?;
            let tx = client.transaction().await?;
            let insert = tx
                .prepare_cached(&write::insert_staged_sql(&st.tables.metrics))
                .await?;
            let inserted = write::stage_points(&tx, &insert, &points).await?;
            tx.commit().await?;
            Ok::<u64, ApiError>(inserted)
        });
        task.await.map_err(|e| {
            ApiError::internal("internal_error", format!("the write task failed: {e}"))
        })??
    };
    metrics::counter!("tidewatch_points_ingested_total", "format" => format).increment(inserted);
    metrics::counter!("tidewatch_points_duplicate_total", "format" => format)
        .increment(accepted - inserted);
    Ok(IngestResult {
        accepted,
        inserted,
        duplicates: accepted - inserted,
        skipped,
    })
}

async fn store_logs(state: &AppState, lines: Vec<LogLine>) -> ApiResult<u64> {
    if lines.is_empty() {
        return Ok(0);
    }
    let st = state.clone();
    let task = tokio::spawn(async move {
        let mut client = st.pool.get().await?;
        let tx = client.transaction().await?;
        let n = write::copy_logs(&tx, &st.tables.logs, &lines).await?;
        tx.commit().await?;
        Ok::<u64, ApiError>(n)
    });
    let n = task.await.map_err(|e| {
        ApiError::internal("internal_error", format!("the write task failed: {e}"))
    })??;
    metrics::counter!("tidewatch_log_lines_ingested_total").increment(n);
    Ok(n)
}

fn line_protocol(body: &[u8], precision: Precision) -> ApiResult<(Vec<Point>, u64)> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request("invalid_utf8", format!("the body is not valid UTF-8: {e}"))
    })?;
    let parsed = line_protocol::parse(text, precision, now_us())
        .map_err(|m| ApiError::bad_request("invalid_line_protocol", m))?;
    Ok((parsed.points, parsed.skipped_fields as u64))
}

/// Write a batch of points: a JSON array (`application/json`) or InfluxDB line protocol
/// (`text/plain`), optionally gzip-compressed. All points or none are written; a retried batch
/// adds nothing.
#[utoipa::path(post, path = "/v1/metrics", tag = "ingest", params(MetricsQuery),
    request_body(
        description = "A JSON array of points, or InfluxDB line protocol. `Content-Encoding: gzip` accepted.",
        content(
            (Vec<json::JsonPoint> = "application/json"),
            (String = "text/plain", example = "telemetry,satellite=SAT2 SCH_M1=1.5 1772445605000000000")
        )
    ),
    responses(
        (status = 200, description = "Written (after commit)", body = IngestResult),
        (status = 400, description = "Malformed body or a bad point (`invalid_json`, `invalid_line_protocol`, `invalid_value`, `invalid_timestamp`, `invalid_metric`, `invalid_labels`, `invalid_utf8`, `invalid_encoding`, `missing_field`, `unknown_field`, `invalid_type`, `unknown_parameter`, `invalid_parameter`); nothing written", body = ErrorBody),
        (status = 401, description = "Missing or wrong write token (`unauthorized`, `invalid_token`)", body = ErrorBody),
        (status = 413, description = "Body over max_body_bytes, before or after decompression (`body_too_large`)", body = ErrorBody),
        (status = 415, description = "Content-Type or Content-Encoding not supported (`unsupported_media_type`, `unsupported_encoding`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out; retry after Retry-After (`database_unavailable`, `pool_exhausted`, `overloaded`, `timeout`)", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn post_metrics(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<IngestResult>> {
    let q: MetricsQuery = extract::query(&uri)?;
    let ctype = extract::content_type(&headers);
    let (points, skipped, format) = match ctype.as_deref() {
        Some("application/json") => {
            let body = extract::body(body, state.config.max_body_bytes).await?;
            let points = json::parse(&body, precision(&q.precision, Precision::S)?, now_us())
                .map_err(|(code, m)| ApiError::bad_request(code, m))?;
            (points, 0, "json")
        }
        Some("text/plain") => {
            let body = extract::body(body, state.config.max_body_bytes).await?;
            let (points, skipped) = line_protocol(&body, precision(&q.precision, Precision::Ns)?)?;
            (points, skipped, "line_protocol")
        }
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "Content-Type {} is not supported here: send application/json (points) or text/plain (InfluxDB line protocol)",
                other.map(|c| format!("\"{c}\"")).unwrap_or_else(|| "(none)".into())
            )))
        }
    };
    Ok(Json(store_points(&state, points, format, skipped).await?))
}

/// InfluxDB v2 write API: line protocol (gzip accepted, as Telegraf sends it), answered with 204.
/// `Authorization: Token <t>` is accepted as well as `Bearer`.
#[utoipa::path(post, path = "/api/v2/write", tag = "ingest", params(InfluxQuery),
    request_body(description = "InfluxDB line protocol", content((String = "text/plain"))),
    responses(
        (status = 204, description = "Written (after commit)"),
        (status = 400, description = "Malformed line protocol or a bad point; nothing written", body = ErrorBody),
        (status = 401, description = "Missing or wrong write token", body = ErrorBody),
        (status = 413, description = "Body over the limit (also after decompression)", body = ErrorBody),
        (status = 415, description = "Content-Encoding not supported", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out; retry", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn influx_write(
    State(state): State<AppState>,
    uri: Uri,
    body: Body,
) -> ApiResult<Response> {
    let q: InfluxQuery = extract::query(&uri)?;
    let body = extract::body(body, state.config.max_body_bytes).await?;
    let (points, skipped) = line_protocol(&body, precision(&q.precision, Precision::Ns)?)?;
    store_points(&state, points, "influx_v2", skipped).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Prometheus remote write 1.0 (snappy-compressed protobuf WriteRequest), answered with 204.
#[utoipa::path(post, path = "/api/v1/write", tag = "ingest",
    request_body(description = "Snappy-compressed (block format) protobuf prometheus.WriteRequest", content((Vec<u8> = "application/x-protobuf"))),
    responses(
        (status = 204, description = "Written (after commit)"),
        (status = 400, description = "Not snappy, not a WriteRequest, or a bad sample (`invalid_encoding`, `invalid_remote_write`, `invalid_value`, `invalid_metric`, `invalid_labels`, `invalid_timestamp`); nothing written", body = ErrorBody),
        (status = 401, description = "Missing or wrong write token", body = ErrorBody),
        (status = 413, description = "Body over the limit, compressed or decompressed", body = ErrorBody),
        (status = 415, description = "Content-Encoding other than snappy", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out; retry", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn remote_write(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let _: NoParams = extract::query(&uri)?;
    if let Some(enc) = headers.get(axum::http::header::CONTENT_ENCODING) {
        if !enc
            .to_str()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("snappy")
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                "remote write bodies must be snappy-compressed (Content-Encoding: snappy)",
            ));
        }
    }
    let limit = state.config.max_body_bytes;
    let body = extract::body(body, limit).await?;
    let req = remote_write::decode(&body, limit).map_err(rw_error)?;
    let (points, stale) = remote_write::points(&req).map_err(rw_error)?;
    store_points(&state, points, "remote_write", stale as u64).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn rw_error(e: remote_write::RemoteWriteError) -> ApiError {
    match e {
        remote_write::RemoteWriteError::TooLarge(n) => ApiError::too_large(format!(
            "the remote write body decompresses to {n} bytes, more than the limit; lower max_samples_per_send"
        )),
        remote_write::RemoteWriteError::Encoding(m) => ApiError::bad_request("invalid_remote_write", m),
        remote_write::RemoteWriteError::Invalid(code, m) => ApiError::bad_request(code, m),
    }
}

/// No query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Write log lines: JSON lines (`application/x-ndjson`, `application/jsonl` or `application/json`,
/// also a JSON array) or plain text (`text/plain`, one message a line). They land in the logs
/// table, which a log monitor classifies.
#[utoipa::path(post, path = "/v1/logs", tag = "ingest", params(LogsQuery),
    request_body(
        description = "JSON lines of log objects, or plain text (one message a line). `Content-Encoding: gzip` accepted.",
        content(
            (logs::JsonLogLine = "application/x-ndjson", example = json!({"ts": "2026-03-02T10:00:05Z", "source": "etl", "labels": {"job": "nightly"}, "message": "ERROR: deadlock detected"})),
            (String = "text/plain", example = "ERROR: deadlock detected")
        )
    ),
    responses(
        (status = 200, description = "Written (after commit)", body = LogsResult),
        (status = 400, description = "A bad line (`invalid_json`, `invalid_value`, `invalid_labels`, `invalid_timestamp`, `invalid_utf8`, `missing_field`, `unknown_field`, `invalid_parameter`, `unknown_parameter`); nothing written", body = ErrorBody),
        (status = 401, description = "Missing or wrong write token", body = ErrorBody),
        (status = 413, description = "Body over the limit (also after decompression)", body = ErrorBody),
        (status = 415, description = "Content-Type or Content-Encoding not supported", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out; retry", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn post_logs(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<LogsResult>> {
    let q: LogsQuery = extract::query(&uri)?;
    let labels = match &q.labels {
        None => "{}".to_string(),
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("labels must be a JSON object of strings: {e}"),
                )
            })?;
            point::labels_from_json(Some(&v))
                .map_err(|m| ApiError::bad_request("invalid_parameter", m))?
        }
    };
    let defaults = logs::Defaults {
        source: q.source.as_deref().unwrap_or(""),
        labels: &labels,
        precision: precision(&q.precision, Precision::S)?,
        now: now_us(),
    };
    let lines = match extract::content_type(&headers).as_deref() {
        Some("application/x-ndjson" | "application/jsonl" | "application/json" | "application/x-jsonlines") => {
            let body = extract::body(body, state.config.max_body_bytes).await?;
            logs::parse_json(&body, &defaults)
        }
        Some("text/plain") => {
            let body = extract::body(body, state.config.max_body_bytes).await?;
            logs::parse_text(&body, &defaults)
        }
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "Content-Type {} is not supported here: send application/x-ndjson (JSON lines) or text/plain",
                other.map(|c| format!("\"{c}\"")).unwrap_or_else(|| "(none)".into())
            )))
        }
    }
    .map_err(|(code, m)| ApiError::bad_request(code, m))?;
    let accepted = store_logs(&state, lines).await?;
    Ok(Json(LogsResult { accepted }))
}
