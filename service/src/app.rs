//! The router: one sub-router per area, merged, plus the layers every request goes through.
//!
//! Adding an area is one line here: `.merge(area::router(&state))`, where the area returns an
//! `OpenApiRouter<AppState>` whose handlers carry `#[utoipa::path]` (so they are documented in
//! `/openapi.json` by construction) and which adds its own auth with `auth::read` or
//! `auth::write` as a route layer.
//!
//! Layers, outermost first: JSON errors (every 4xx/5xx becomes `{code, message}` and is counted)
//! → trace span (method and route only: never headers, so never tokens) → request metrics →
//! per-request timeout (503 `timeout`) → concurrency limit (503 `overloaded`, immediately: no
//! unbounded queue) → panics caught (a handler that panics answers 500 `internal_error`, seen
//! by the layers above, instead of dropping the connection). Areas add body limits,
//! decompression and auth to their own routes.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{self, ApiError};
use crate::state::AppState;
use crate::{alerts, ask, ingest, observe, openapi, ops, query};

pub fn build(state: AppState) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(openapi::base())
        .merge(ingest::router(&state))
        .merge(query::router(&state))
        .merge(alerts::router(&state))
        .merge(ops::router())
        .merge(ask::router(&state))
        .split_for_parts();
    let timeout = state.config.request_timeout;
    router
        .merge(openapi::routes(api))
        .fallback(error::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(error::json_errors))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let route = req
                                .extensions()
                                .get::<MatchedPath>()
                                .map(|p| p.as_str())
                                .unwrap_or("unmatched");
                            tracing::info_span!("request", method = %req.method(), route)
                        })
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
                )
                .layer(from_fn(observe::track))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    timeout,
                ))
                .layer(from_fn_with_state(state.clone(), concurrency))
                .layer(catch_panics()),
        )
        .with_state(state)
}

type PanicHandler = fn(Box<dyn std::any::Any + Send + 'static>) -> Response;

/// Innermost layer: a panic in a handler (or a route's own layers) becomes a 500
/// `internal_error` response, which the trace, metrics and JSON-error layers then see like any
/// other.
pub fn catch_panics() -> CatchPanicLayer<PanicHandler> {
    CatchPanicLayer::custom(error::panic_response as PanicHandler)
}

/// Paths that answer even when the service is saturated (probes and scrapes).
const EXEMPT: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// At most `max_concurrency` requests in flight; the next one is refused at once with 503 and
/// Retry-After rather than queued.
async fn concurrency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if EXEMPT.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match state.in_flight.clone().try_acquire_owned() {
        Ok(permit) => {
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        Err(_) => ApiError::unavailable(
            "overloaded",
            "too many requests in flight (max_concurrency); retry after the Retry-After delay",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("value too large to decode")
    }

    /// The layers of `build` that matter here: JSON errors outermost, panics caught innermost.
    fn tiny() -> Router {
        Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(
                ServiceBuilder::new()
                    .layer(from_fn(error::json_errors))
                    .layer(catch_panics()),
            )
    }

    async fn call(path: &str) -> (StatusCode, String, Vec<u8>) {
        let req = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("a request");
        let resp = tiny().oneshot(req).await.expect("an answer, not an error");
        let status = resp.status();
        let ct = resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes()
            .to_vec();
        (status, ct, body)
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_error_body() {
        let (status, ct, body) = call("/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ct, "application/json");
        let err: error::ErrorBody = serde_json::from_slice(&body).expect("{code, message}");
        assert_eq!(err.code, "internal_error");
        // The panic's message (which may quote data) stays in the log.
        assert!(!err.message.contains("too large"), "{}", err.message);
        // Other requests are unaffected.
        let (status, _, body) = call("/fine").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"fine");
    }

    #[test]
    fn panic_payloads_of_any_type_make_a_500() {
        for payload in [
            Box::new("static str") as Box<dyn std::any::Any + Send>,
            Box::new(String::from("formatted")),
            Box::new(42_u8),
        ] {
            let resp = error::panic_response(payload);
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(resp.extensions().get::<error::ErrorCode>().is_some());
        }
    }
}
