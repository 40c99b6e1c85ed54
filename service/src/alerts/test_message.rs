//! `POST /v1/notifications/test`: send a test message through a named route now and say how it
//! went. The message is stored like any notification (source `test`, one delivery of one try),
//! so it shows in `GET /v1/notifications` and the delivery history; the outbox worker leaves it
//! alone (it is leased while it is sent, and a failure is final).

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::channels::{self, Message, Outcome};
use super::outbox::{self, Job};
use crate::db::row::get;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

/// A test message's text is at most this long.
const MAX_TEXT: usize = 2000;
const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The route's name (alert_routes).
    pub route: String,
    /// The message's text (at most 2000 characters) [default: a line naming the route].
    pub text: Option<String>,
}

/// How the test delivery went.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    pub route: String,
    /// webhook, telegram, slack or email.
    pub kind: String,
    /// delivered, or dead (the one try failed; see error).
    pub status: String,
    /// The receiver's HTTP status (webhook, telegram, slack).
    pub http_status: Option<u16>,
    /// What the receiver answered: the SMTP server's reply (`250 ...`), Telegram's message id,
    /// the start of an HTTP receiver's body.
    pub reply: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The stored test notification (source `test`).
    pub notification_id: i64,
    pub idempotency_key: String,
    pub duration_ms: f64,
}

const INSERT_SQL: &str = "\
WITH n AS ( \
    INSERT INTO tidewatch.notifications (source, fingerprint, status, starts_at, alertname, labels, alert, subject, message) \
    VALUES ('test', $1, 'firing', now(), 'TidewatchTest', '{}', $2, $3, $4) RETURNING id) \
INSERT INTO tidewatch.notification_outbox (notification_id, route, channel, kind, idempotency_key, max_attempts, \
    status, attempts, locked_until) \
SELECT n.id, $5, $5, $6, 'tidewatch-' || n.id || '-' || $5, 1, 'sending', 1, now() + make_interval(secs => $7) \
FROM n RETURNING id, notification_id, idempotency_key";

/// Send a test message through a route, synchronously, and return the outcome of that one try
/// (no retries). The message is stored as a notification of source `test`.
#[utoipa::path(post, path = "/v1/notifications/test", tag = "alerts",
    request_body = TestRequest,
    responses(
        (status = 200, description = "Tried: `status` is delivered or dead (with `error`)", body = TestResult),
        (status = 400, description = "Not JSON, no route, an unknown field or a text too long (`invalid_json`, `invalid_body`)", body = ErrorBody),
        (status = 401, description = "Write token needed", body = ErrorBody),
        (status = 404, description = "No route of that name (`unknown_route`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn send_test(State(state): State<AppState>, body: Body) -> ApiResult<Json<TestResult>> {
    let bytes = extract::body(body, MAX_BODY).await?;
    let req: TestRequest = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not JSON: {e}")))
        .and_then(|v| {
            serde_json::from_value(v).map_err(|e| {
                ApiError::bad_request(
                    "invalid_body",
                    format!(
                        "{e}; send {{\"route\": \"<name>\", \"text\": \"...\"}} (text optional)"
                    ),
                )
            })
        })?;
    if let Some(t) = &req.text {
        if t.chars().count() > MAX_TEXT || t.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("text must have 1 to {MAX_TEXT} characters"),
            ));
        }
    }
    let Some(route) = state.routes.0.iter().find(|r| r.config.name == req.route) else {
        let names: Vec<&str> = state
            .routes
            .0
            .iter()
            .map(|r| r.config.name.as_str())
            .collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_route",
            format!(
                "no route is named \"{}\"; configured routes: {}",
                crate::ingest::point::clip(&req.route),
                if names.is_empty() {
                    "none (set alert_routes)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    let name = route.config.name.clone();
    let kind = route.config.kind.clone();
    let subject = format!("[TEST] Tidewatch test message (route {name})");
    let text = req.text.clone().unwrap_or_else(|| {
        format!(
            "A test message from Tidewatch through route \"{name}\" ({kind}), sent {}. \
             If you can read it, notifications reach this channel.",
            crate::zone::Zone::of(&state.config).format(&Utc::now())
        )
    });
    let st = state.clone();
    // In a task of its own: a client that goes away does not leave the delivery leased.
    let task = tokio::spawn(async move { run(&st, &name, &kind, &subject, &text).await });
    let result = task.await.map_err(|e| {
        ApiError::internal("internal_error", format!("the test task failed: {e}"))
    })??;
    Ok(Json(result))
}

async fn run(
    state: &AppState,
    name: &str,
    kind: &str,
    subject: &str,
    text: &str,
) -> ApiResult<TestResult> {
    let fingerprint = format!("test-{name}-{:016x}", rand::thread_rng().gen::<u64>());
    let lease =
        (state.config.alert_delivery_timeout + std::time::Duration::from_secs(5)).as_secs_f64();
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            INSERT_SQL,
            &[
                &fingerprint,
                &json!({"test": true, "route": name, "text": text}),
                &subject,
                &text,
                &name,
                &kind,
                &lease,
            ],
        )
        .await?;
    drop(client);
    let job = Job {
        id: get(&row, 0)?,
        route: name.to_string(),
        kind: kind.to_string(),
        key: get(&row, 2)?,
        attempt: 1,
        max_attempts: 1,
        notification_id: get(&row, 1)?,
    };
    let started = std::time::Instant::now();
    let outcome = match state.routes.0.iter().find(|r| r.config.name == name) {
        Some(route) => {
            let (subject, text, body) = outbox::fetch(state, job.notification_id).await?;
            let msg = Message {
                key: &job.key,
                attempt: 1,
                subject: &subject,
                text: &text,
                body: &body,
            };
            channels::send(
                &state.http,
                route,
                &msg,
                state.config.alert_delivery_timeout,
            )
            .await
        }
        None => Outcome::Failed {
            http: None,
            error: "the route went away".into(),
            retry_after: None,
            permanent: true,
        },
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let status = outbox::record(state, &job, &outcome, ms)
        .await
        .map_err(|e| ApiError::unavailable("database_unavailable", e))?;
    let (http_status, reply, error) = match outcome {
        Outcome::Delivered { http, reply } => (http, reply, None),
        Outcome::Failed { http, error, .. } => (http, None, Some(error)),
    };
    Ok(TestResult {
        route: name.to_string(),
        kind: kind.to_string(),
        status: status.to_string(),
        http_status,
        reply,
        error,
        notification_id: job.notification_id,
        idempotency_key: job.key,
        duration_ms: (ms * 10.0).round() / 10.0,
    })
}
