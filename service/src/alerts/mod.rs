//! Alert notifications: `POST /v1/alerts/grafana` receives Grafana's webhook, stores each alert
//! once in `tidewatch.notifications` (deduplicated on fingerprint, status and startsAt), links it
//! to the anomaly episodes of the same series and time with `explain_anomaly`'s top reasons, and
//! queues its deliveries in `tidewatch.notification_outbox` in the same transaction; the `outbox`
//! worker delivers them. `GET /v1/notifications` lists them with their delivery state.
//!
//! Authentication: a write token, or (when `alert_hmac_secret` is set) Grafana's HMAC signature.

pub mod channels;
pub mod grafana;
pub mod list;
pub mod outbox;
pub mod reasons;
pub mod routes;
pub mod test_message;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::grafana::Alert;
use crate::auth::{self, Access};
use crate::db::row::{get, time_or_null};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;
use crate::zone::Zone;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let receive = OpenApiRouter::new()
        .routes(routes!(receive_grafana))
        .route_layer(RequestBodyLimitLayer::new(state.config.max_body_bytes));
    let read = OpenApiRouter::new()
        .routes(routes!(list::list))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::read,
        ));
    let write = OpenApiRouter::new()
        .routes(routes!(test_message::send_test))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::write,
        ));
    receive.merge(read).merge(write)
}

/// Signature headers: Grafana's documentation names the first, its code's default is the second.
const SIGNATURE_HEADERS: &[&str] = &["X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature"];

/// A write token, or a valid signature when a secret is configured.
fn authenticate(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let token_err = match auth::check(state, headers, Access::Write) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let Some(secret) = &state.config.alert_hmac_secret else {
        return Err(token_err);
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = SIGNATURE_HEADERS.iter().find_map(|h| header(h));
    let ts_header = state.config.alert_hmac_timestamp_header.trim();
    grafana::verify(
        secret.expose().as_bytes(),
        body,
        signature,
        header(ts_header),
        Utc::now(),
    )
    .map_err(|e| e.into_api(ts_header))
}

/// What a webhook call stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiveResult {
    /// Alerts in the payload.
    pub received: u64,
    /// Alerts stored as new notifications (and queued for delivery).
    pub stored: u64,
    /// Alerts already stored with the same (fingerprint, status, startsAt): repeats, not notified again.
    pub duplicates: u64,
    /// The notification id of each alert, in the payload's order.
    pub notifications: Vec<i64>,
}

/// Receive Grafana's webhook contact-point payload: each alert becomes one notification (once per
/// fingerprint, status and startsAt), linked to the anomaly episodes of its series and time, and
/// queued for delivery to the routes whose matchers its labels match.
#[utoipa::path(post, path = "/v1/alerts/grafana", tag = "alerts",
    request_body(
        description = "Grafana's webhook payload (receiver, status, orgId, alerts[], groupLabels, commonLabels, \
                       commonAnnotations, externalURL, version, groupKey, truncatedAlerts, title, state, message); \
                       unknown fields are kept.",
        content((Object = "application/json"))
    ),
    params(
        ("X-Grafana-Alerting-Signature" = Option<String>, Header, description = "hex HMAC-SHA256(secret, body), or of timestamp \":\" body with a timestamp header (also accepted as X-Grafana-Alert-Signature)"),
        ("X-Grafana-Alerting-Timestamp" = Option<String>, Header, description = "Unix seconds of the signature (the header name is alert_hmac_timestamp_header); more than 5 minutes old is refused")
    ),
    responses(
        (status = 200, description = "Stored (after commit)", body = ReceiveResult),
        (status = 400, description = "Not Grafana's format (`invalid_json`, `invalid_payload`); nothing stored", body = ErrorBody),
        (status = 401, description = "No write token and no valid signature (`unauthorized`, `invalid_token`, `missing_signature`, `invalid_signature`, `invalid_timestamp`, `stale_timestamp`)", body = ErrorBody),
        (status = 413, description = "Body over max_body_bytes (`body_too_large`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out (`database_unavailable`, `pool_exhausted`, `overloaded`, `timeout`)", body = ErrorBody)
    ),
    security(("bearer" = []), ("grafana_signature" = [])))]
pub async fn receive_grafana(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ReceiveResult>> {
    let body = extract::body(body, state.config.max_body_bytes).await?;
    authenticate(&state, &headers, &body)?;
    let payload = grafana::parse(&body)?;
    let received = payload.alerts.len() as u64;
    let st = state.clone();
    // In a task of its own: a client that goes away does not leave the transaction half done.
    let task = tokio::spawn(async move { store(&st, payload).await });
    let (ids, stored) = task.await.map_err(|e| {
        ApiError::internal("internal_error", format!("the write task failed: {e}"))
    })??;
    if stored > 0 {
        state.outbox_wake.notify_one();
    }
    metrics::counter!("tidewatch_alerts_received_total").increment(received);
    metrics::counter!("tidewatch_notifications_stored_total").increment(stored);
    Ok(Json(ReceiveResult {
        received,
        stored,
        duplicates: received - stored,
        notifications: ids,
    }))
}

/// Labels that say nothing about where an alert is.
fn is_meta_label(k: &str) -> bool {
    k == "alertname" || k == "grafana_folder" || k.starts_with("__")
}

/// The episodes of the alert's series overlapping its time (from `LOOKBACK` before its start to
/// its end, or now while it fires), those that started nearest the alert's start first, with their
/// severity and deviation. A series label holding the series as JSON (as Tidewatch's alert rules
/// return it) must equal the episode's series; otherwise every label of the episode's series
/// (its metric and labels) must be among the alert's labels with the same value.
const EPISODES_SQL: &str = "\
SELECT e.id, e.severity, e.sigma, e.kind, e.ended_at FROM tidewatch.anomalies e \
WHERE e.started_at <= $3 AND coalesce(e.ended_at, 'infinity') >= $2 \
  AND ($4::text IS NULL OR e.monitor = $4) \
  AND CASE WHEN $5::jsonb IS NOT NULL THEN e.series = $5 \
      ELSE (SELECT count(*) > 0 AND bool_and(coalesce($1::jsonb ->> f.key = f.value, false)) FROM ( \
              SELECT s.key, s.value FROM jsonb_each_text(e.series) s \
              WHERE jsonb_typeof(e.series -> s.key) IN ('string', 'number', 'boolean') \
              UNION ALL \
              SELECT l.key, l.value FROM jsonb_each_text(CASE WHEN jsonb_typeof(e.series -> 'labels') = 'object' \
                                                             THEN e.series -> 'labels' ELSE '{}' END) l) f) END \
ORDER BY abs(extract(epoch FROM e.started_at - $6::timestamptz)), e.id LIMIT 5";

/// How far before an alert's start an episode may have started (Grafana's pending period and
/// evaluation interval come between the anomaly and the alert).
const LOOKBACK: chrono::Duration = chrono::Duration::minutes(30);

struct Enrichment {
    episodes: Vec<i64>,
    reasons: Value,
    severity: Option<String>,
    sigma: Option<f64>,
    kind: Option<String>,
}

/// An episode the alert is linked to, as EPISODES_SQL found it.
struct Linked {
    id: i64,
    severity: String,
    sigma: Option<f64>,
    kind: String,
    ended_at: Option<DateTime<Utc>>,
}

/// The alert's episodes, most relevant first (`stmt`: EPISODES_SQL, prepared).
async fn episodes(
    tx: &tokio_postgres::Transaction<'_>,
    stmt: &tokio_postgres::Statement,
    alert: &Alert,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Linked>> {
    let labels = Value::Object(alert.labels.clone());
    let lo = alert
        .starts_at
        .checked_sub_signed(LOOKBACK)
        .unwrap_or(alert.starts_at);
    let hi = alert.ends_at.unwrap_or(now).max(alert.starts_at);
    let series: Option<Value> = alert
        .label("series")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(|v| v.is_object());
    let monitor = alert.label("monitor").map(str::to_string);
    let rows = tx
        .query(
            stmt,
            &[&labels, &lo, &hi, &monitor, &series, &alert.starts_at],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Linked {
                id: get(r, 0)?,
                severity: get(r, 1)?,
                sigma: get(r, 2)?,
                kind: get(r, 3)?,
                // An episode that ends at 'infinity' is linked like one still going on.
                ended_at: time_or_null(r, 4)?,
            })
        })
        .collect()
}

/// Severity, deviation and kind of the linked episodes, and their top reasons in order.
fn enrichment(linked: &[Linked], reasons: &reasons::Found) -> Enrichment {
    let rank = |s: &str| ["info", "warning", "critical"].iter().position(|x| *x == s);
    let mut e = Enrichment {
        episodes: Vec::new(),
        reasons: Value::Null,
        severity: None,
        sigma: None,
        kind: None,
    };
    let mut rs = Vec::new();
    for l in linked {
        if e.severity.as_deref().map(rank) < Some(rank(&l.severity)) {
            e.severity = Some(l.severity.clone());
        }
        if let Some(s) = l.sigma.filter(|s| s.is_finite()) {
            if e.sigma.is_none_or(|m| s.abs() > m.abs()) {
                e.sigma = Some(s);
            }
        }
        e.kind.get_or_insert_with(|| l.kind.clone());
        e.episodes.push(l.id);
        for (rank, reason) in reasons.get(&l.id).into_iter().flatten() {
            rs.push(json!({"episode": l.id, "rank": rank, "reason": reason}));
        }
    }
    e.reasons = Value::Array(rs);
    e
}

/// The subject and the short message every channel sends: what, where, since when, how bad, the
/// top reason, and links.
fn compose(alert: &Alert, e: &Enrichment, severity: Option<&str>, zone: Zone) -> (String, String) {
    let name = alert.label("alertname").unwrap_or("alert");
    let mut where_: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| !is_meta_label(k) && k.as_str() != "severity")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    where_.sort();
    let state = if alert.status == "resolved" {
        "RESOLVED"
    } else {
        "FIRING"
    };
    let subject = format!(
        "[{state}{}] {name}{}",
        severity
            .map(|s| format!(" {}", s.to_uppercase()))
            .unwrap_or_default(),
        if where_.is_empty() {
            String::new()
        } else {
            format!(" ({})", where_.join(", "))
        }
    );
    let mut lines = Vec::new();
    if let Some(s) = alert
        .annotation("summary")
        .or(alert.annotation("description"))
    {
        lines.push(s.to_string());
    }
    if !where_.is_empty() {
        lines.push(format!("Where: {}", where_.join(", ")));
    }
    if alert.starts_at.timestamp() > -62_135_596_800 {
        lines.push(format!("Since: {}", zone.format(&alert.starts_at)));
    }
    if alert.status == "resolved" {
        if let Some(t) = &alert.ends_at {
            lines.push(format!("Resolved: {}", zone.format(t)));
        }
    }
    let mut how_bad = Vec::new();
    if let Some(s) = severity {
        how_bad.push(format!("severity {s}"));
    }
    if let Some(k) = &e.kind {
        how_bad.push(k.replace('_', " "));
    }
    if let Some(s) = e.sigma {
        how_bad.push(format!("{s:+.1} sigma"));
    }
    if let Some(Value::Object(values)) = alert.raw.get("values") {
        let mut vs: Vec<String> = values
            .iter()
            .map(|(k, v)| match v.as_f64() {
                Some(x) => format!("{k}={}", (x * 1e4).round() / 1e4),
                None => format!("{k}={v}"),
            })
            .collect();
        vs.sort();
        if !vs.is_empty() {
            how_bad.push(format!(
                "values {}",
                crate::ingest::point::clip(&vs.join(" "))
            ));
        }
    } else if let Some(v) = alert.field("valueString") {
        how_bad.push(format!("values {}", crate::ingest::point::clip(v)));
    }
    if !how_bad.is_empty() {
        lines.push(format!("How bad: {}", how_bad.join(", ")));
    }
    if let Some(r) = e
        .reasons
        .as_array()
        .and_then(|a| a.first())
        .and_then(|r| r.get("reason"))
        .and_then(|r| r.as_str())
    {
        lines.push(format!("Top reason: {r}"));
    }
    if !e.episodes.is_empty() {
        lines.push(format!(
            "Episodes: {}",
            e.episodes
                .iter()
                .map(|id| format!("/v1/anomalies/{id}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    for (label, field) in [
        ("Panel", "panelURL"),
        ("Dashboard", "dashboardURL"),
        ("Source", "generatorURL"),
    ] {
        if let Some(u) = alert.field(field) {
            lines.push(format!("{label}: {u}"));
            break;
        }
    }
    (subject, lines.join("\n"))
}

const REPEAT_SQL: &str = "\
UPDATE tidewatch.notifications SET repeats = repeats + 1, last_received_at = now() \
WHERE fingerprint = $1 AND status = $2 AND starts_at = $3 RETURNING id";

/// Also counts a repeat: another request may have stored the same alert since REPEAT_SQL looked.
const INSERT_SQL: &str = "\
INSERT INTO tidewatch.notifications AS n (source, fingerprint, status, starts_at, ends_at, alertname, labels, alert, \
    payload, episodes, reasons, severity, subject, message) \
VALUES ('grafana', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
ON CONFLICT (fingerprint, status, starts_at) DO UPDATE \
    SET repeats = n.repeats + 1, last_received_at = now() \
RETURNING n.id, (xmax = 0) AS inserted";

const OUTBOX_SQL: &str = "\
INSERT INTO tidewatch.notification_outbox (notification_id, route, channel, kind, idempotency_key, max_attempts) \
VALUES ($1, $2, $2, $3, $4, $5)";

/// One transaction: each alert inserted (or its repeat counted) and, when new, its deliveries
/// queued. In three passes: the repeats and the episodes of the new alerts; the top reasons of
/// those episodes (`reasons::top`: cached across requests, the rest explained concurrently on
/// other connections, since explain_anomaly is the costly part); then the rows. Each pass sends
/// its statements (prepared once per connection) without waiting for the answers in between:
/// tokio-postgres pipelines concurrent queries on one connection and the server runs them in
/// order, so a payload costs a few round trips rather than four per alert (measured: about 8x
/// less time on a loaded 2-core machine; benches/RESULTS.md).
async fn store(state: &AppState, payload: grafana::Payload) -> ApiResult<(Vec<i64>, u64)> {
    use futures_util::future::try_join_all;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let now = Utc::now();
    let zone = Zone::of(&state.config);
    let repeat_stmt = tx.prepare_cached(REPEAT_SQL).await?;
    let episodes_stmt = tx.prepare_cached(EPISODES_SQL).await?;
    let insert_stmt = tx.prepare_cached(INSERT_SQL).await?;
    let outbox_stmt = tx.prepare_cached(OUTBOX_SQL).await?;
    // Pass 1. A repeat (Grafana's repeat interval) is counted, not enriched or notified again.
    let txr = &tx;
    let repeats = try_join_all(payload.alerts.iter().map(|a| {
        let stmt = &repeat_stmt;
        async move {
            txr.query_opt(stmt, &[&a.fingerprint, &a.status, &a.starts_at])
                .await
        }
    }))
    .await?;
    let repeats: Vec<Option<i64>> = repeats
        .iter()
        .map(|r| r.as_ref().map(|r| get(r, 0)).transpose())
        .collect::<ApiResult<_>>()?;
    let linked = try_join_all(
        payload
            .alerts
            .iter()
            .zip(&repeats)
            .filter(|(_, r)| r.is_none())
            .map(|(a, _)| episodes(&tx, &episodes_stmt, a, now)),
    )
    .await?;
    // Pass 2.
    let wanted: Vec<(i64, Option<DateTime<Utc>>)> = linked
        .iter()
        .flatten()
        .map(|l| (l.id, l.ended_at))
        .collect();
    let found = reasons::top(state, &tx, &wanted).await?;
    // Pass 3: the new alerts' rows, then their deliveries.
    struct New<'a> {
        alert: &'a Alert,
        e: Enrichment,
        severity: Option<String>,
        subject: String,
        message: String,
    }
    let mut links = linked.iter();
    let mut new = Vec::new();
    for (alert, repeat) in payload.alerts.iter().zip(&repeats) {
        if repeat.is_some() {
            continue;
        }
        let e = enrichment(links.next().map(Vec::as_slice).unwrap_or(&[]), &found);
        let severity = alert
            .label("severity")
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| ["info", "warning", "critical"].contains(&s.as_str()))
            .or(e.severity.clone());
        let (subject, message) = compose(alert, &e, severity.as_deref(), zone);
        new.push(New {
            alert,
            e,
            severity,
            subject,
            message,
        });
    }
    let labels: Vec<Value> = new
        .iter()
        .map(|n| Value::Object(n.alert.labels.clone()))
        .collect();
    let rows = try_join_all(new.iter().zip(&labels).map(|(n, labels)| {
        let a = n.alert;
        let stmt = &insert_stmt;
        let rest = &payload.rest;
        async move {
            let alertname = a.label("alertname");
            txr.query_one(
                stmt,
                &[
                    &a.fingerprint,
                    &a.status,
                    &a.starts_at,
                    &a.ends_at,
                    &alertname,
                    labels,
                    &a.raw,
                    rest,
                    &n.e.episodes,
                    &n.e.reasons,
                    &n.severity,
                    &n.subject,
                    &n.message,
                ],
            )
            .await
        }
    }))
    .await?;
    let inserted_rows: Vec<(i64, bool)> = rows
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<ApiResult<_>>()?;
    let mut inserted_rows = inserted_rows.into_iter();
    let mut ids = Vec::with_capacity(payload.alerts.len());
    let mut deliveries = Vec::new();
    let mut stored = 0;
    let mut new_iter = new.iter();
    for repeat in &repeats {
        if let Some(id) = repeat {
            ids.push(*id);
            continue;
        }
        let (Some((id, inserted)), Some(n)) = (inserted_rows.next(), new_iter.next()) else {
            continue;
        };
        ids.push(id);
        if inserted {
            stored += 1;
            for route in state.routes.matching(&n.alert.labels) {
                deliveries.push((
                    id,
                    route.config.name.as_str(),
                    route.config.kind.as_str(),
                    format!("tidewatch-{id}-{}", route.config.name),
                    route.config.max_attempts as i32,
                ));
            }
        }
    }
    try_join_all(deliveries.iter().map(|(id, name, kind, key, max)| {
        let stmt = &outbox_stmt;
        async move { txr.execute(stmt, &[id, name, kind, key, max]).await }
    }))
    .await?;
    tx.commit().await?;
    Ok((ids, stored))
}
