//! The catalog the parser matches names against: the distinct series of the metrics table (a
//! loose index scan over its unique index on (metric, labels, time): one index descent per
//! series) and of `tidewatch.anomalies` (every monitor's series, log bursts included). Kept for a
//! few seconds between questions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::answer::Tables;
use super::parse::Catalog;
use crate::db::row::get;
use crate::error::ApiResult;

/// How long a loaded catalog is reused.
const TTL: Duration = Duration::from_secs(5);

struct Cached {
    at: Instant,
    key: String,
    catalog: Arc<Catalog>,
}

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// Load the catalog from the database.
pub async fn load(client: &Client, tables: &Tables) -> ApiResult<Catalog> {
    let mut series: Vec<serde_json::Value> = Vec::new();
    if let Some(m) = &tables.metrics {
        let sql = format!(
            "WITH RECURSIVE s AS ( \
               (SELECT t.metric, t.labels FROM {m} t ORDER BY t.metric, t.labels LIMIT 1) \
               UNION ALL \
               SELECT n.metric, n.labels FROM s, LATERAL ( \
                 SELECT t.metric, t.labels FROM {m} t WHERE (t.metric, t.labels) > (s.metric, s.labels) \
                 ORDER BY t.metric, t.labels LIMIT 1) n) \
             SELECT jsonb_build_object('metric', metric, 'labels', labels) FROM s LIMIT 100000"
        );
        for r in client.query(&sql, &[]).await? {
            series.push(get(&r, 0)?);
        }
    }
    for r in client
        .query(
            "SELECT DISTINCT series FROM tidewatch.anomalies LIMIT 100000",
            &[],
        )
        .await?
    {
        series.push(get(&r, 0)?);
    }
    Ok(Catalog::from_series(series.iter()))
}

/// The catalog, from the cache when it is younger than the TTL.
pub async fn cached(client: &Client, tables: &Tables) -> ApiResult<Arc<Catalog>> {
    let key = format!("{:?}", tables.metrics);
    if let Ok(guard) = CACHE.lock() {
        if let Some(c) = guard.as_ref() {
            if c.key == key && c.at.elapsed() < TTL {
                return Ok(c.catalog.clone());
            }
        }
    }
    let catalog = Arc::new(load(client, tables).await?);
    if let Ok(mut guard) = CACHE.lock() {
        *guard = Some(Cached {
            at: Instant::now(),
            key,
            catalog: catalog.clone(),
        });
    }
    Ok(catalog)
}
