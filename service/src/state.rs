//! What every handler shares: the configuration, the connection pool, the resolved tables, the
//! tokens, the concurrency limit and the Prometheus handle. Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{Notify, Semaphore};

use crate::alerts::routes::Routes;
use crate::auth::Tokens;
use crate::config::Config;
use crate::db::schema::Tables;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub pool: Pool,
    pub tables: Tables,
    pub write_tokens: Tokens,
    pub read_tokens: Tokens,
    /// Permits for requests in flight (max_concurrency); none left means 503 at once.
    pub in_flight: Arc<Semaphore>,
    pub prometheus: PrometheusHandle,
    /// Delivery routes of notifications (validated with the configuration).
    pub routes: Routes,
    /// Wakes the outbox worker when notifications were queued.
    pub outbox_wake: Arc<Notify>,
    /// The HTTP client of deliveries (webhook, Telegram, Slack).
    pub http: reqwest::Client,
    /// explain_anomaly's top reasons by episode, across alert payloads.
    pub reasons: crate::alerts::reasons::Cache,
}

impl AppState {
    pub fn new(
        config: Config,
        pool: Pool,
        tables: Tables,
        prometheus: PrometheusHandle,
        http: reqwest::Client,
    ) -> Self {
        AppState(Arc::new(Inner {
            write_tokens: Tokens::new(&config.write_tokens),
            read_tokens: Tokens::new(&config.read_tokens),
            in_flight: Arc::new(Semaphore::new(config.max_concurrency)),
            routes: Routes::compile(&config.alert_routes).unwrap_or_default(),
            outbox_wake: Arc::new(Notify::new()),
            http,
            reasons: Default::default(),
            config,
            pool,
            tables,
            prometheus,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
