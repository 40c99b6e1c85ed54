//! `GET /v1/notifications`: notifications, newest first, with the state of each delivery.

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::row::{get, time, time_or_null};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::query::{limit, opt_time};
use crate::state::AppState;

pub const ALERT_STATUSES: &[&str] = &["firing", "resolved"];
pub const DELIVERY_STATUSES: &[&str] = &["pending", "sending", "delivered", "dead"];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Comma-separated: the alert's status (firing, resolved) and/or a delivery state (pending,
    /// sending, delivered, dead: notifications with a delivery in that state).
    pub status: Option<String>,
    /// Only notifications received at or after this time (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// Only notifications received before this time.
    pub to: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub route: String,
    /// webhook.
    pub kind: String,
    /// pending, sending, delivered or dead.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Sent as the Idempotency-Key header of every attempt.
    pub idempotency_key: String,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_http_status: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    /// grafana.
    pub source: String,
    pub fingerprint: String,
    /// firing or resolved.
    pub status: String,
    pub alertname: Option<String>,
    /// startsAt as sent (0001-01-01T00:00:00Z included).
    pub starts_at: DateTime<Utc>,
    /// Null while firing (Grafana's zero time).
    pub ends_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub last_received_at: DateTime<Utc>,
    /// How many times the same alert arrived again (not notified again).
    pub repeats: i32,
    /// info, warning or critical: the alert's severity label, else its episodes' highest.
    pub severity: Option<String>,
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    /// Linked anomaly episodes (`/v1/anomalies/{id}`).
    pub episodes: Vec<i64>,
    /// Their top reasons: [{episode, rank, reason}].
    #[schema(value_type = Vec<Object>)]
    pub reasons: serde_json::Value,
    pub subject: String,
    pub message: String,
    /// The alert exactly as Grafana sent it.
    #[schema(value_type = Object)]
    pub alert: serde_json::Value,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationList {
    pub notifications: Vec<Notification>,
}

/// Notifications, newest first, with their deliveries.
#[utoipa::path(get, path = "/v1/notifications", tag = "alerts", params(NotificationsQuery),
    responses(
        (status = 200, description = "Notifications", body = NotificationList),
        (status = 400, description = "Bad parameter (`invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<NotificationList>> {
    let q: NotificationsQuery = extract::query(&uri)?;
    let from = opt_time("from", &q.from)?;
    let to = opt_time("to", &q.to)?;
    let limit = limit(q.limit, 100, 1000)?;
    let mut alert_status: Option<Vec<String>> = None;
    let mut delivery_status: Option<Vec<String>> = None;
    if let Some(s) = &q.status {
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            if ALERT_STATUSES.contains(&item) {
                alert_status
                    .get_or_insert_with(Vec::new)
                    .push(item.to_string());
            } else if DELIVERY_STATUSES.contains(&item) {
                delivery_status
                    .get_or_insert_with(Vec::new)
                    .push(item.to_string());
            } else {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "unknown status \"{}\"; valid values: {}, {}",
                        crate::ingest::point::clip(item),
                        ALERT_STATUSES.join(", "),
                        DELIVERY_STATUSES.join(", ")
                    ),
                ));
            }
        }
    }
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT n.id, n.source, n.fingerprint, n.status, n.alertname, n.starts_at, n.ends_at, n.received_at, \
                    n.last_received_at, n.repeats, n.severity, n.labels, n.episodes, n.reasons, n.subject, n.message, n.alert \
             FROM tidewatch.notifications n \
             WHERE ($1::timestamptz IS NULL OR n.received_at >= $1) \
               AND ($2::timestamptz IS NULL OR n.received_at < $2) \
               AND ($3::text[] IS NULL OR n.status = ANY ($3)) \
               AND ($4::text[] IS NULL OR EXISTS (SELECT 1 FROM tidewatch.notification_outbox o \
                                                  WHERE o.notification_id = n.id AND o.status = ANY ($4))) \
             ORDER BY n.received_at DESC, n.id DESC LIMIT $5",
            &[&from, &to, &alert_status, &delivery_status, &limit],
        )
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| get(r, 0)).collect::<ApiResult<_>>()?;
    let deliveries = client
        .query(
            "SELECT notification_id, route, kind, status, attempts, max_attempts, idempotency_key, next_attempt_at, \
                    delivered_at, last_error, last_http_status \
             FROM tidewatch.notification_outbox WHERE notification_id = ANY ($1) ORDER BY id",
            &[&ids],
        )
        .await?;
    let mut notifications: Vec<Notification> = rows
        .iter()
        .map(|r| {
            Ok(Notification {
                id: get(r, 0)?,
                source: get(r, 1)?,
                fingerprint: get(r, 2)?,
                status: get(r, 3)?,
                alertname: get(r, 4)?,
                starts_at: time(r, 5)?,
                ends_at: time_or_null(r, 6)?,
                received_at: time(r, 7)?,
                last_received_at: time(r, 8)?,
                repeats: get(r, 9)?,
                severity: get(r, 10)?,
                labels: get(r, 11)?,
                episodes: get(r, 12)?,
                reasons: get(r, 13)?,
                subject: get(r, 14)?,
                message: get(r, 15)?,
                alert: get(r, 16)?,
                deliveries: Vec::new(),
            })
        })
        .collect::<ApiResult<_>>()?;
    for d in &deliveries {
        let nid: i64 = get(d, 0)?;
        if let Some(n) = notifications.iter_mut().find(|n| n.id == nid) {
            n.deliveries.push(Delivery {
                route: get(d, 1)?,
                kind: get(d, 2)?,
                status: get(d, 3)?,
                attempts: get(d, 4)?,
                max_attempts: get(d, 5)?,
                idempotency_key: get(d, 6)?,
                next_attempt_at: time(d, 7)?,
                delivered_at: time_or_null(d, 8)?,
                last_error: get(d, 9)?,
                last_http_status: get(d, 10)?,
            });
        }
    }
    Ok(Json(NotificationList { notifications }))
}
