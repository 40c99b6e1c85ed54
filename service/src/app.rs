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
//! unbounded queue). Areas add body limits, decompression and auth to their own routes.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
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
                .layer(from_fn_with_state(state.clone(), concurrency)),
        )
        .with_state(state)
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
