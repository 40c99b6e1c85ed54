//! Logs (tracing) and metrics (the `metrics` facade with the Prometheus exporter, rendered by
//! `GET /metrics`).
//!
//! Metric names, all prefixed `tidewatch_`:
//! - `http_requests_total{route, method, status}` and `http_request_duration_seconds{route}`;
//! - `points_ingested_total{format}` (new rows), `points_duplicate_total{format}` (already there),
//!   `log_lines_ingested_total`;
//! - `requests_rejected_total{reason}` (the error code of every 4xx/5xx);
//! - `pool_size`, `pool_available`, `pool_waiters`, `pool_max_size` (read at scrape time).

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Logs to stderr, text or JSON lines, filtered by `TIDEWATCH_LOG`.
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is not an error worth stopping for.
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// Install the global Prometheus recorder (once per process) and keep its histograms drained.
pub fn init_metrics() -> Result<PrometheusHandle, String> {
    // Latency buckets around the 50 ms target, from 1 ms to 30 s (the request timeout).
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("tidewatch_http_request_duration_seconds".into()),
            &buckets,
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "tidewatch_http_requests_total",
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(
        "tidewatch_http_request_duration_seconds",
        Unit::Seconds,
        "Time from the request's arrival to its response, by route."
    );
    describe_counter!(
        "tidewatch_points_ingested_total",
        "Points written (new rows), by format."
    );
    describe_counter!(
        "tidewatch_points_duplicate_total",
        "Points accepted that were already stored (retries), by format."
    );
    describe_counter!("tidewatch_log_lines_ingested_total", "Log lines written.");
    describe_counter!(
        "tidewatch_requests_rejected_total",
        "Requests answered with an error, by error code."
    );
    describe_gauge!("tidewatch_pool_size", "Database connections open.");
    describe_gauge!("tidewatch_pool_available", "Database connections idle.");
    describe_gauge!(
        "tidewatch_pool_waiters",
        "Requests waiting for a database connection."
    );
    describe_gauge!(
        "tidewatch_pool_max_size",
        "Largest number of database connections (pool_size)."
    );
}

/// Middleware: count and time every request by its route template (never its raw path, so the
/// number of series stays bounded).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16().to_string();
    metrics::counter!("tidewatch_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("tidewatch_http_request_duration_seconds", "route" => route)
        .record(elapsed);
    resp
}
