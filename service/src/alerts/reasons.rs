//! The top reasons of `tidewatch.explain_anomaly` for the episodes an alert payload is linked to.
//!
//! explain_anomaly is the costly part of receiving alerts (a few milliseconds an episode: it reads
//! the series around the episode, its usual values, drift and log events), and a 100-alert payload
//! links up to 500 episodes. So reasons are (1) kept in a cache across requests: Grafana sends the
//! same episodes again in later groups, resolved alerts and repeats; an ended episode's entry lives
//! `TTL_ENDED`, an ongoing one's `TTL_ONGOING` (its explanation still moves), and an entry whose
//! episode has ended since is stale; and (2) the rest are explained in one statement per chunk,
//! the chunks concurrently on other pooled connections (read-only work, outside the receiving
//! transaction), falling back to the transaction's own connection when the pool has none to spare.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::row::get;
use crate::error::ApiResult;
use crate::state::AppState;

/// Top reasons (rank, reason) by episode id.
pub type Found = HashMap<i64, Vec<(i32, String)>>;

const TTL_ENDED: Duration = Duration::from_secs(600);
const TTL_ONGOING: Duration = Duration::from_secs(30);
/// Entries kept at most; past it, expired entries are dropped, then the oldest half.
const CAPACITY: usize = 20_000;
/// Connections explaining at once (besides the receiving transaction's).
const MAX_CONNECTIONS: usize = 4;
/// Episodes per statement at least (fewer chunks than connections for small payloads).
const MIN_CHUNK: usize = 8;

const EXPLAIN_SQL: &str = "\
SELECT id, rank, reason FROM ( \
    SELECT e.id, r.rank, r.reason, row_number() OVER (PARTITION BY e.id ORDER BY r.rank) AS n \
    FROM unnest($1::bigint[]) AS e(id), LATERAL tidewatch.explain_anomaly(e.id) r) x \
WHERE n <= 3 ORDER BY id, rank";

struct Entry {
    ended_at: Option<DateTime<Utc>>,
    at: Instant,
    top: Vec<(i32, String)>,
}

impl Entry {
    fn fresh(&self, ended_at: Option<DateTime<Utc>>, now: Instant) -> bool {
        let ttl = if self.ended_at.is_some() {
            TTL_ENDED
        } else {
            TTL_ONGOING
        };
        self.ended_at == ended_at && now.duration_since(self.at) < ttl
    }
}

#[derive(Default)]
pub struct Cache(Mutex<HashMap<i64, Entry>>);

impl Cache {
    /// The fresh entries among `wanted`; the ids to explain.
    fn lookup(&self, wanted: &[(i64, Option<DateTime<Utc>>)]) -> (Found, Vec<i64>) {
        let now = Instant::now();
        let mut found = Found::new();
        let mut missing = Vec::new();
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (id, ended_at) in wanted {
            if found.contains_key(id) || missing.contains(id) {
                continue;
            }
            match map.get(id) {
                Some(e) if e.fresh(*ended_at, now) => {
                    found.insert(*id, e.top.clone());
                }
                _ => missing.push(*id),
            }
        }
        (found, missing)
    }

    fn store(&self, wanted: &[(i64, Option<DateTime<Utc>>)], explained: &Found) {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + explained.len() > CAPACITY {
            map.retain(|_, e| e.fresh(e.ended_at, now));
            if map.len() + explained.len() > CAPACITY {
                let mut ages: Vec<Instant> = map.values().map(|e| e.at).collect();
                ages.sort();
                let cut = ages.get(ages.len() / 2).copied().unwrap_or(now);
                map.retain(|_, e| e.at > cut);
            }
        }
        for (id, ended_at) in wanted {
            if let Some(top) = explained.get(id) {
                map.insert(
                    *id,
                    Entry {
                        ended_at: *ended_at,
                        at: now,
                        top: top.clone(),
                    },
                );
            }
        }
    }
}

async fn explain(client: &impl tokio_postgres::GenericClient, ids: &[i64]) -> ApiResult<Found> {
    let rows = client.query(EXPLAIN_SQL, &[&ids]).await?;
    let mut found: Found = ids.iter().map(|id| (*id, Vec::new())).collect();
    for r in &rows {
        found
            .entry(get(r, 0)?)
            .or_default()
            .push((get(r, 1)?, get(r, 2)?));
    }
    Ok(found)
}

/// The top three reasons of each wanted episode (id, and its end as the caller saw it).
pub async fn top(
    state: &AppState,
    tx: &tokio_postgres::Transaction<'_>,
    wanted: &[(i64, Option<DateTime<Utc>>)],
) -> ApiResult<Found> {
    let (mut found, missing) = state.reasons.lookup(wanted);
    metrics::counter!("tidewatch_alert_reasons_cached_total").increment(found.len() as u64);
    if missing.is_empty() {
        return Ok(found);
    }
    metrics::counter!("tidewatch_alert_reasons_explained_total").increment(missing.len() as u64);
    let connections = missing
        .len()
        .div_ceil(MIN_CHUNK)
        .min(MAX_CONNECTIONS)
        .min(state.config.pool_size.saturating_sub(1));
    let mut explained = Found::new();
    if connections <= 1 {
        explained = explain(tx, &missing).await?;
    } else {
        let size = missing.len().div_ceil(connections);
        let results =
            futures_util::future::join_all(missing.chunks(size).map(|chunk| async move {
                // A pool with nothing to spare (a full one, under load): the transaction does it.
                let Ok(client) = state.pool.timeout_get(&no_wait()).await else {
                    return (chunk, None);
                };
                (chunk, Some(explain(&**client, chunk).await))
            }))
            .await;
        for (chunk, result) in results {
            match result {
                Some(r) => explained.extend(r?),
                None => explained.extend(explain(tx, chunk).await?),
            }
        }
    }
    state.reasons.store(wanted, &explained);
    found.extend(explained);
    Ok(found)
}

/// Take a pooled connection only if one is free or can be opened now.
fn no_wait() -> deadpool_postgres::Timeouts {
    deadpool_postgres::Timeouts {
        wait: Some(Duration::ZERO),
        create: Some(Duration::from_secs(2)),
        recycle: Some(Duration::from_secs(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_go_stale_when_the_episode_ends() {
        let cache = Cache::default();
        let end = DateTime::from_timestamp(1_700_000_000, 0);
        let mut ex = Found::new();
        ex.insert(1, vec![(1, "a".into())]);
        ex.insert(2, vec![(1, "b".into())]);
        cache.store(&[(1, end), (2, None)], &ex);
        let (found, missing) = cache.lookup(&[(1, end), (2, None), (3, None), (1, end)]);
        assert_eq!(found.len(), 2);
        assert_eq!(missing, vec![3]);
        // Episode 2 ended since it was cached: explained again.
        let (found, missing) = cache.lookup(&[(2, end)]);
        assert!(found.is_empty());
        assert_eq!(missing, vec![2]);
        // An old entry is not fresh.
        let old = Entry {
            ended_at: None,
            at: Instant::now()
                .checked_sub(TTL_ONGOING + Duration::from_secs(1))
                .unwrap_or_else(Instant::now),
            top: Vec::new(),
        };
        assert!(!old.fresh(None, Instant::now()) || TTL_ONGOING.is_zero());
    }
}
