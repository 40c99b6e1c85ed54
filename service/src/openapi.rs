//! The OpenAPI document's frame (title, security scheme, tags, shared schemas) and the routes that
//! serve it: `GET /openapi.json` and the API page `GET /docs` (Swagger UI, embedded in the binary
//! through utoipa-swagger-ui's `vendored` feature: no CDN, works offline).
//!
//! Paths are collected from the handlers' `#[utoipa::path]` by each area's `OpenApiRouter`
//! (see `app.rs`), so a route cannot be served without being documented.

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tidewatch service",
        description = "Ingest metrics (JSON, InfluxDB line protocol, Prometheus remote write) and logs into a \
                       Tidewatch database, and read back series, anomaly episodes with their explanations, drift \
                       results and log templates; receive Grafana's alerts and deliver them as notifications. Every error is JSON {code, message}. Write endpoints need a \
                       write token (Authorization: Bearer <token>); read endpoints need a read or write token \
                       when read tokens are configured.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "ingest", description = "Points and log lines in."),
        (name = "query", description = "Series, points, anomalies, drift and logs out."),
        (name = "alerts", description = "Grafana alerts in; notifications and their deliveries out."),
        (name = "operations", description = "Health, readiness, metrics and this document.")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // POST /v1/alerts/grafana: Grafana's HMAC-SHA256 signature instead of a token.
        components.add_security_scheme(
            "grafana_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Grafana-Alerting-Signature",
                "hex HMAC-SHA256(TIDEWATCH_ALERT_HMAC_SECRET, body), or of timestamp \":\" body when the \
                 timestamp header is sent; also accepted as X-Grafana-Alert-Signature",
            ))),
        );
    }
}

/// The document's frame; areas add their paths to it.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// `GET /openapi.json` and the API page under `/docs`.
pub fn routes(api: utoipa::openapi::OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", api))
}
