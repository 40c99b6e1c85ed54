//! The delivery worker: drains `tidewatch.notification_outbox`. A due row is claimed with a lease
//! (status `sending`, `locked_until`) in one statement (`FOR UPDATE SKIP LOCKED`, so several
//! services can share a database), sent with its idempotency key, and then marked `delivered`,
//! or `pending` again with an exponentially growing, jittered delay (at least the receiver's
//! Retry-After), or `dead` after `max_attempts` tries or a permanent refusal (a 4xx other than
//! 408, 425 and 429). A service killed while sending leaves rows `sending` whose lease expires;
//! they are claimed again, by this service after its restart or by another, and sent again with
//! the same idempotency key, so a receiver that honours it shows each notification once.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};

use super::channels::{self, Message, Outcome};
use crate::state::AppState;

const BATCH: i64 = 16;
const POLL: Duration = Duration::from_millis(500);

const CLAIM_SQL: &str = "\
WITH due AS ( \
    SELECT id FROM tidewatch.notification_outbox \
    WHERE status IN ('pending', 'sending') AND next_attempt_at <= now() \
      AND (locked_until IS NULL OR locked_until < now()) \
    ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
UPDATE tidewatch.notification_outbox o \
SET status = 'sending', attempts = o.attempts + 1, locked_until = now() + make_interval(secs => $1) \
FROM due WHERE o.id = due.id \
RETURNING o.id, o.route, o.kind, o.idempotency_key, o.attempts, o.max_attempts, o.notification_id";

const NOTIFICATION_SQL: &str = "\
SELECT id, status, fingerprint, alertname, severity, starts_at, ends_at, labels, alert -> 'annotations', episodes, \
       reasons, subject, message, alert, source \
FROM tidewatch.notifications WHERE id = $1";

/// A claimed delivery.
pub struct Job {
    pub id: i64,
    pub route: String,
    pub kind: String,
    pub key: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub notification_id: i64,
}

/// Start the worker (one task; each batch is sent concurrently).
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let client = state.http.clone();
        loop {
            let busy = match run_batch(&state, &client).await {
                Ok(n) => n > 0,
                Err(e) => {
                    // The database is away (a restart, say): try again a little later.
                    tracing::warn!(error = %e, "outbox: cannot claim deliveries; retrying");
                    tokio::time::sleep(POLL * 4).await;
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = state.outbox_wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    });
}

async fn run_batch(state: &AppState, http: &reqwest::Client) -> Result<usize, String> {
    let client = state.pool.get().await.map_err(|e| e.to_string())?;
    let lease = (state.config.alert_delivery_timeout + Duration::from_secs(5)).as_secs_f64();
    let rows = client
        .query(CLAIM_SQL, &[&lease, &BATCH])
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let jobs: Vec<Job> = rows
        .iter()
        .map(|r| Job {
            id: r.get(0),
            route: r.get(1),
            kind: r.get(2),
            key: r.get(3),
            attempt: r.get(4),
            max_attempts: r.get(5),
            notification_id: r.get(6),
        })
        .collect();
    let n = jobs.len();
    futures_util::future::join_all(jobs.into_iter().map(|j| deliver(state, http, j))).await;
    Ok(n)
}

/// The JSON body a webhook receives.
fn body(r: &tokio_postgres::Row) -> Value {
    let starts_at: DateTime<Utc> = r.get(5);
    let ends_at: Option<DateTime<Utc>> = r.get(6);
    let alert: Value = r.get(13);
    let link = |f: &str| {
        alert
            .get(f)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let episodes: Vec<i64> = r.get(9);
    json!({
        "notification_id": r.get::<_, i64>(0),
        "source": r.get::<_, String>(14),
        "status": r.get::<_, String>(1),
        "fingerprint": r.get::<_, String>(2),
        "alertname": r.get::<_, Option<String>>(3),
        "severity": r.get::<_, Option<String>>(4),
        "starts_at": starts_at,
        "ends_at": ends_at,
        "labels": r.get::<_, Value>(7),
        "annotations": r.get::<_, Option<Value>>(8),
        "episodes": episodes,
        "reasons": r.get::<_, Value>(10),
        "subject": r.get::<_, String>(11),
        "message": r.get::<_, String>(12),
        "links": {
            "generator": link("generatorURL"),
            "panel": link("panelURL"),
            "dashboard": link("dashboardURL"),
            "silence": link("silenceURL"),
            "image": link("imageURL"),
            "episodes": episodes.iter().map(|id| format!("/v1/anomalies/{id}")).collect::<Vec<_>>(),
        },
    })
}

/// Delay before try `attempt + 1`: base · 2^(attempt-1), at most the maximum, times a jitter in
/// [0.5, 1]; never earlier than Retry-After.
pub fn backoff(
    base: Duration,
    max: Duration,
    attempt: i32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi((attempt - 1).clamp(0, 30));
    let d = Duration::from_secs_f64(exp.min(max.as_secs_f64()) * jitter.clamp(0.5, 1.0));
    match retry_after {
        Some(r) => d.max(r.min(Duration::from_secs(3600))),
        None => d,
    }
}

async fn deliver(state: &AppState, http: &reqwest::Client, job: Job) {
    let started = Instant::now();
    let route = state.routes.0.iter().find(|r| r.config.name == job.route);
    let outcome = match route {
        None => Outcome::Failed {
            http: None,
            error: format!("route \"{}\" is not configured (alert_routes)", job.route),
            retry_after: None,
            permanent: true,
        },
        Some(route) => match fetch(state, job.notification_id).await {
            Ok((subject, text, body)) => {
                let msg = Message {
                    key: &job.key,
                    attempt: job.attempt,
                    subject: &subject,
                    text: &text,
                    body: &body,
                };
                channels::send(http, route, &msg, state.config.alert_delivery_timeout).await
            }
            Err(e) => {
                // The database is away: leave the row to its lease.
                tracing::warn!(error = %e, outbox = job.id, "outbox: cannot read the notification");
                return;
            }
        },
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Err(e) = record(state, &job, &outcome, ms).await {
        tracing::warn!(error = %e, outbox = job.id, "outbox: cannot record the outcome; the delivery will be retried after its lease");
    }
}

/// The subject, the text and the webhook body of a notification.
pub async fn fetch(state: &AppState, id: i64) -> Result<(String, String, Value), String> {
    let client = state.pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(NOTIFICATION_SQL, &[&id])
        .await
        .map_err(|e| e.to_string())?;
    Ok((row.get(11), row.get(12), body(&row)))
}

/// What `record` wrote: `delivered`, `retry` or `dead`.
pub async fn record(
    state: &AppState,
    job: &Job,
    outcome: &Outcome,
    ms: f64,
) -> Result<&'static str, String> {
    let client = state.pool.get().await.map_err(|e| e.to_string())?;
    let (outcome_name, http, error) = match outcome {
        Outcome::Delivered { http, .. } => {
            let http = http.map(i32::from);
            client
                .execute(
                    "UPDATE tidewatch.notification_outbox SET status = 'delivered', delivered_at = now(), \
                     locked_until = NULL, last_http_status = $2, last_error = NULL WHERE id = $1",
                    &[&job.id, &http],
                )
                .await
                .map_err(|e| e.to_string())?;
            ("delivered", http, None)
        }
        Outcome::Failed {
            http,
            error: err,
            retry_after,
            permanent,
        } => {
            let http = http.map(i32::from);
            if *permanent || job.attempt >= job.max_attempts {
                client
                    .execute(
                        "UPDATE tidewatch.notification_outbox SET status = 'dead', dead_at = now(), \
                         locked_until = NULL, last_http_status = $2, last_error = $3 WHERE id = $1",
                        &[&job.id, &http, err],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::warn!(outbox = job.id, route = %job.route, error = %err, "delivery given up (dead)");
                ("dead", http, Some(err.clone()))
            } else {
                let jitter = rand::thread_rng().gen_range(0.5..=1.0);
                let delay = backoff(
                    state.config.alert_retry_base,
                    state.config.alert_retry_max,
                    job.attempt,
                    *retry_after,
                    jitter,
                );
                client
                    .execute(
                        "UPDATE tidewatch.notification_outbox SET status = 'pending', locked_until = NULL, \
                         next_attempt_at = now() + make_interval(secs => $4), last_http_status = $2, \
                         last_error = $3 WHERE id = $1",
                        &[&job.id, &http, err, &delay.as_secs_f64()],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                ("retry", http, Some(err.clone()))
            }
        }
    };
    client
        .execute(
            "INSERT INTO tidewatch.notification_attempts (outbox_id, attempt, outcome, http_status, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (outbox_id, attempt) DO NOTHING",
            &[&job.id, &job.attempt, &outcome_name, &http, &error, &ms],
        )
        .await
        .map_err(|e| e.to_string())?;
    let counter = if outcome_name == "delivered" {
        "tidewatch_notifications_delivered_total"
    } else {
        "tidewatch_notification_failures_total"
    };
    metrics::counter!(counter, "kind" => job.kind.clone()).increment(1);
    Ok(outcome_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_respects_retry_after() {
        let b = Duration::from_secs(1);
        let m = Duration::from_secs(60);
        assert_eq!(backoff(b, m, 1, None, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(b, m, 3, None, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(b, m, 30, None, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(b, m, 3, None, 0.5), Duration::from_secs(2));
        assert_eq!(
            backoff(b, m, 1, Some(Duration::from_secs(7)), 1.0),
            Duration::from_secs(7)
        );
    }
}
