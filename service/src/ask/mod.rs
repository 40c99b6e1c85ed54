//! The assistant: `POST /v1/ask` (`{"q": "..."}`) and `GET /v1/ask?q=...` answer questions about
//! anomalies in plain English, with the rows they used. Deterministic and offline: `parse` finds
//! the intent, the series (matched against the catalog of metric names and label values),
//! severities, kinds and the time range (`time`); `answer` reads `tidewatch.anomalies`,
//! `tidewatch.explain_anomaly`, drift results and the logs table, and writes the reply.
//! `tidewatch-service ask "..."` prints the same reply (`cli`).

pub mod answer;
pub mod catalog;
pub mod cli;
pub mod parse;
pub mod time;

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

pub use answer::AskAnswer;

/// Longest question accepted, in characters.
pub const MAX_QUESTION: usize = 1000;
/// Largest body of `POST /v1/ask`.
const MAX_BODY: usize = 64 * 1024;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ask_get, ask_post))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::read,
        ))
        // The page holds no data (it asks /v1/ask with the token typed into it): no auth.
        .route("/", axum::routing::get(page))
}

/// `GET /`: the assistant's page (inline CSS and JavaScript, charts drawn as SVG; no CDN).
async fn page() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("page.html"),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AskQuery {
    /// The question, e.g. "when did SAT2 SCH.M1 have anomalies last week?".
    pub q: Option<String>,
    /// Time zone of the question and of the answer's times: UTC, UTC+2, UTC-05:30 (default: the
    /// `ask_timezone` setting, else UTC).
    pub tz: Option<String>,
}

/// The body of `POST /v1/ask`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    /// The question.
    pub q: String,
    /// Time zone (as the `tz` query parameter).
    pub tz: Option<String>,
}

fn check_question(q: Option<&str>) -> Result<String, ApiError> {
    let q = q.map(str::trim).unwrap_or("");
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "missing_field",
            "ask a question in \"q\", e.g. {\"q\": \"how many anomalies yesterday?\"}",
        ));
    }
    if q.chars().count() > MAX_QUESTION {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("the question is longer than {MAX_QUESTION} characters"),
        ));
    }
    Ok(q.to_string())
}

async fn run(state: &AppState, q: String, tz: Option<String>) -> ApiResult<Json<AskAnswer>> {
    let offset = answer::resolve_offset(tz.as_deref(), &state.config.ask_timezone)
        .map_err(|m| ApiError::bad_request("invalid_parameter", m))?;
    let client = state.pool.get().await?;
    let tables = answer::Tables {
        metrics: Some(state.tables.metrics.sql.clone()),
        logs: Some(state.tables.logs.sql.clone()),
    };
    let catalog = catalog::cached(&client, &tables).await?;
    let reply = answer::answer(&client, &tables, &catalog, &q, chrono::Utc::now(), offset).await?;
    Ok(Json(reply))
}

/// Ask a question about anomalies in plain English (query string).
#[utoipa::path(get, path = "/v1/ask", tag = "query", params(AskQuery),
    responses(
        (status = 200, description = "The answer, with the episodes, reasons, drift results or log errors it used", body = AskAnswer),
        (status = 400, description = "No question, too long, or a bad time zone (`missing_field`, `invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn ask_get(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<AskAnswer>> {
    let query: AskQuery = extract::query(&uri)?;
    let q = check_question(query.q.as_deref())?;
    run(&state, q, query.tz).await
}

/// Ask a question about anomalies in plain English (JSON body `{"q": "..."}`).
#[utoipa::path(post, path = "/v1/ask", tag = "query", request_body = AskBody,
    responses(
        (status = 200, description = "The answer, with the episodes, reasons, drift results or log errors it used", body = AskAnswer),
        (status = 400, description = "Not JSON, no question, too long, or a bad time zone (`invalid_json`, `missing_field`, `invalid_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 415, description = "Not application/json (`unsupported_media_type`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn ask_post(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<AskAnswer>> {
    match extract::content_type(&headers).as_deref() {
        Some("application/json") | None => {}
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "send the question as application/json ({{\"q\": \"...\"}}), not {}",
                crate::ingest::point::clip(other)
            )))
        }
    }
    // No body limit layer covers this route: read at most MAX_BODY bytes.
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::too_large(format!(
                    "a question's body is at most {MAX_BODY} bytes"
                ));
            }
            source = s.source();
        }
        ApiError::bad_request(
            "invalid_body",
            format!("the request body could not be read: {e}"),
        )
    })?;
    let parsed: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not JSON: {e}")))?;
    let body: AskBody = serde_json::from_value(parsed).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("missing field") {
            ApiError::bad_request(
                "missing_field",
                "ask a question in \"q\", e.g. {\"q\": \"how many anomalies yesterday?\"}",
            )
        } else if msg.contains("unknown field") {
            ApiError::bad_request(
                "unknown_field",
                format!("{msg}; the body has \"q\" and optionally \"tz\""),
            )
        } else {
            ApiError::bad_request("invalid_type", format!("{msg}; \"q\" is a string"))
        }
    })?;
    let q = check_question(Some(&body.q))?;
    run(&state, q, body.tz).await
}
