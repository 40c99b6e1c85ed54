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
use crate::db::row::{self, get, time, time_or_null};
use crate::error::{ApiError, ApiResult};
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
        .map(|r| {
            Ok(Job {
                id: get(r, 0)?,
                route: get(r, 1)?,
                kind: get(r, 2)?,
                key: get(r, 3)?,
                attempt: get(r, 4)?,
                max_attempts: get(r, 5)?,
                notification_id: get(r, 6)?,
            })
        })
        .collect::<ApiResult<_>>()
        .map_err(|e| e.message)?;
    let n = jobs.len();
    futures_util::future::join_all(jobs.into_iter().map(|j| deliver(state, http, j))).await;
    Ok(n)
}

/// The JSON body a webhook receives (an infinite `ends_at` is null, as while firing).
fn body(r: &tokio_postgres::Row) -> ApiResult<Value> {
    let starts_at: DateTime<Utc> = time(r, 5)?;
    let ends_at: Option<DateTime<Utc>> = time_or_null(r, 6)?;
    let alert: Value = get(r, 13)?;
    let link = |f: &str| {
        alert
            .get(f)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let episodes: Vec<i64> = get(r, 9)?;
    Ok(json!({
        "notification_id": get::<i64>(r, 0)?,
        "source": get::<String>(r, 14)?,
        "status": get::<String>(r, 1)?,
        "fingerprint": get::<String>(r, 2)?,
        "alertname": get::<Option<String>>(r, 3)?,
        "severity": get::<Option<String>>(r, 4)?,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "labels": get::<Value>(r, 7)?,
        "annotations": get::<Option<Value>>(r, 8)?,
        "episodes": episodes,
        "reasons": get::<Value>(r, 10)?,
        "subject": get::<String>(r, 11)?,
        "message": get::<String>(r, 12)?,
        "links": {
            "generator": link("generatorURL"),
            "panel": link("panelURL"),
            "dashboard": link("dashboardURL"),
            "silence": link("silenceURL"),
            "image": link("imageURL"),
            "episodes": episodes.iter().map(|id| format!("/v1/anomalies/{id}")).collect::<Vec<_>>(),
        },
    }))
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
            // Its row holds a value that cannot be read: trying again would not help.
            Err(FetchError::Unreadable(error)) => Outcome::Failed {
                http: None,
                error,
                retry_after: None,
                permanent: true,
            },
            Err(FetchError::Unavailable(e)) => {
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

/// Why a notification could not be read for sending.
#[derive(Debug, PartialEq)]
pub enum FetchError {
    /// The database is away: the delivery waits for its lease to expire and is tried again.
    Unavailable(String),
    /// A value of its row cannot be read (a time written as 'infinity' by SQL, say): trying
    /// again would not help, so the delivery is dead with this error.
    Unreadable(String),
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Unavailable(m) => ApiError::unavailable("database_unavailable", m),
            FetchError::Unreadable(m) => ApiError::internal(row::UNDECODABLE, m),
        }
    }
}

/// The subject, the text and the webhook body of a notification.
pub async fn fetch(state: &AppState, id: i64) -> Result<(String, String, Value), FetchError> {
    let unavailable = |e: &dyn std::fmt::Display| FetchError::Unavailable(e.to_string());
    let client = state.pool.get().await.map_err(|e| unavailable(&e))?;
    let row = client
        .query_one(NOTIFICATION_SQL, &[&id])
        .await
        .map_err(|e| unavailable(&e))?;
    let unreadable = |e: ApiError| FetchError::Unreadable(e.message);
    Ok((
        get(&row, 11).map_err(unreadable)?,
        get(&row, 12).map_err(unreadable)?,
        body(&row).map_err(unreadable)?,
    ))
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
    fn unreadable_notifications_are_a_500_and_an_unreachable_database_a_503() {
        let e = ApiError::from(FetchError::Unreadable(
            "column \"starts_at\" holds infinity".into(),
        ));
        assert_eq!(e.status.as_u16(), 500);
        assert_eq!(e.code, row::UNDECODABLE);
        assert!(e.message.contains("infinity"));
        let e = ApiError::from(FetchError::Unavailable("connection refused".into()));
        assert_eq!(e.status.as_u16(), 503);
        assert_eq!(e.code, "database_unavailable");
    }

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
