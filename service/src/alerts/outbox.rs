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

use super::grafana;
use super::routes::Route;
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
       reasons, subject, message, alert \
FROM tidewatch.notifications WHERE id = $1";

struct Job {
    id: i64,
    route: String,
    kind: String,
    key: String,
    attempt: i32,
    max_attempts: i32,
    notification_id: i64,
}

enum Outcome {
    Delivered(u16),
    /// A failure: (HTTP status if any, error, Retry-After, permanent).
    Failed(Option<u16>, String, Option<Duration>, bool),
}

/// Start the worker (one task; each batch is sent concurrently).
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(state.config.alert_delivery_timeout)
            .user_agent(concat!("tidewatch-service/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client: notifications will not be delivered");
                return;
            }
        };
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

async fn send(
    route: &Route,
    http: &reqwest::Client,
    key: &str,
    attempt: i32,
    payload: &Value,
) -> Outcome {
    let bytes = match serde_json::to_vec(payload) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(None, format!("cannot encode the body: {e}"), None, true),
    };
    let mut req = http
        .post(&route.config.url)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .header("X-Tidewatch-Attempt", attempt.to_string());
    if let Some(secret) = &route.config.hmac_secret {
        let ts = Utc::now().timestamp().to_string();
        let sig = grafana::sign(secret.as_bytes(), &[ts.as_bytes(), b":", &bytes]);
        req = req
            .header("X-Tidewatch-Timestamp", ts)
            .header("X-Tidewatch-Signature", sig);
    }
    match req.body(bytes).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return Outcome::Delivered(status);
            }
            let retry_after = resp
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = resp.text().await.unwrap_or_default();
            let permanent = (400..500).contains(&status) && ![408, 425, 429].contains(&status);
            Outcome::Failed(
                Some(status),
                format!("HTTP {status}: {}", crate::ingest::point::clip(text.trim())),
                retry_after,
                permanent,
            )
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Outcome::Failed(None, msg, None, false)
        }
    }
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
        None => Outcome::Failed(
            None,
            format!("route \"{}\" is not configured (alert_routes)", job.route),
            None,
            true,
        ),
        Some(route) => match fetch_body(state, job.notification_id).await {
            Ok(payload) => send(route, http, &job.key, job.attempt, &payload).await,
            Err(e) => {
                // The database is away: leave the row to its lease.
                tracing::warn!(error = %e, outbox = job.id, "outbox: cannot read the notification");
                return;
            }
        },
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let result = record(state, &job, &outcome, ms).await;
    if let Err(e) = result {
        tracing::warn!(error = %e, outbox = job.id, "outbox: cannot record the outcome; the delivery will be retried after its lease");
    }
    match outcome {
        Outcome::Delivered(_) => {
            metrics::counter!("tidewatch_notifications_delivered_total", "kind" => job.kind.clone())
                .increment(1)
        }
        Outcome::Failed(..) => {
            metrics::counter!("tidewatch_notification_failures_total", "kind" => job.kind.clone())
                .increment(1)
        }
    }
}

async fn fetch_body(state: &AppState, id: i64) -> Result<Value, String> {
    let client = state.pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(NOTIFICATION_SQL, &[&id])
        .await
        .map_err(|e| e.to_string())?;
    Ok(body(&row))
}

async fn record(state: &AppState, job: &Job, outcome: &Outcome, ms: f64) -> Result<(), String> {
    let client = state.pool.get().await.map_err(|e| e.to_string())?;
    let (outcome_name, http, error) = match outcome {
        Outcome::Delivered(s) => {
            client
                .execute(
                    "UPDATE tidewatch.notification_outbox SET status = 'delivered', delivered_at = now(), \
                     locked_until = NULL, last_http_status = $2, last_error = NULL WHERE id = $1",
                    &[&job.id, &(*s as i32)],
                )
                .await
                .map_err(|e| e.to_string())?;
            ("delivered", Some(*s as i32), None)
        }
        Outcome::Failed(s, err, retry_after, permanent) => {
            let http = s.map(|x| x as i32);
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
    Ok(())
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
