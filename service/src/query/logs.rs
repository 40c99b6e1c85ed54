//! `GET /v1/logs/templates` (a miner's templates) and `GET /v1/logs/errors` (lines of error
//! classes counted by a log monitor, per class and template).

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{limit, opt_time};
use crate::db::row::{get, time_or_null};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TemplatesQuery {
    /// The miner (default: the miner of the logs table's monitor, else `default`).
    pub miner: Option<String>,
    /// Only templates seen at or after this time (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// Only templates first seen before this time.
    pub to: Option<String>,
    /// At most this many (default 1000, at most 10000), most frequent first.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub id: i64,
    /// The line with its variable parts as `<*>`.
    pub template: String,
    /// Null when the time is one JSON cannot carry (`infinity`, `-infinity`, or a year beyond
    /// 262142, from log lines written by SQL).
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Lines mined into it.
    pub count: i64,
    /// Dropped from the live set by the miner's size cap.
    pub evicted: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Templates {
    pub miner: String,
    pub templates: Vec<Template>,
}

async fn default_miner(state: &AppState, client: &deadpool_postgres::Client) -> ApiResult<String> {
    if let Some(monitor) = &state.tables.logs.monitor {
        if let Some(row) = client
            .query_opt(
                "SELECT miner FROM tidewatch.log_monitors WHERE name = $1",
                &[monitor],
            )
            .await?
        {
            return get(&row, 0);
        }
    }
    Ok("default".into())
}

/// The templates of a log miner, most frequent first.
#[utoipa::path(get, path = "/v1/logs/templates", tag = "query", params(TemplatesQuery),
    responses(
        (status = 200, description = "Templates", body = Templates),
        (status = 400, description = "Bad parameter (`invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 404, description = "No such miner (`not_found`)", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn templates(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Templates>> {
    let q: TemplatesQuery = extract::query(&uri)?;
    let from = opt_time("from", &q.from)?;
    let to = opt_time("to", &q.to)?;
    let limit = limit(q.limit, 1000, 10_000)?;
    let client = state.pool.get().await?;
    let miner = match q.miner {
        Some(m) => m,
        None => default_miner(&state, &client).await?,
    };
    if client
        .query_opt(
            "SELECT 1 FROM tidewatch.log_miners WHERE name = $1",
            &[&miner],
        )
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "log miner \"{}\" does not exist",
            crate::ingest::point::clip(&miner)
        )));
    }
    let rows = client
        .query(
            "SELECT id, template, first_seen, last_seen, count, evicted FROM tidewatch.log_templates \
             WHERE miner = $1 AND ($2::timestamptz IS NULL OR last_seen >= $2) AND ($3::timestamptz IS NULL OR first_seen < $3) \
             ORDER BY count DESC, id LIMIT $4",
            &[&miner, &from, &to, &limit],
        )
        .await?;
    let templates = rows
        .iter()
        .map(|r| {
            Ok(Template {
                id: get(r, 0)?,
                template: get(r, 1)?,
                first_seen: time_or_null(r, 2)?,
                last_seen: time_or_null(r, 3)?,
                count: get(r, 4)?,
                evicted: get(r, 5)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(Templates { miner, templates }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ErrorsQuery {
    /// Only this error class (connection, timeout, authentication, resource, data_quality, schema,
    /// upstream, configuration, syntax, lock, or your ruleset's); `unknown` lists unclassified lines.
    pub category: Option<String>,
    /// The log monitor (default: the logs table's).
    pub monitor: Option<String>,
    /// From this time (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// Before this time.
    pub to: Option<String>,
    /// At most this many rows (default 1000, at most 10000), most lines first.
    pub limit: Option<i64>,
}

/// Lines of one error class and template in the range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorCount {
    pub category: String,
    /// The class's severity (warning, error, critical).
    pub severity: String,
    pub template_id: i64,
    pub template: Option<String>,
    pub count: i64,
    /// First and last minute with such lines (null: a time JSON cannot carry, such as
    /// `infinity`, from log lines written by SQL).
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Errors {
    /// The log monitor counted from (null: the logs table has none, and the list is empty).
    pub monitor: Option<String>,
    pub errors: Vec<ErrorCount>,
}

/// Error lines counted by a log monitor (`tidewatch.log_counts`) per class and template, most
/// lines first. Lines of severity `info` (unclassified) are left out unless `category=unknown`.
#[utoipa::path(get, path = "/v1/logs/errors", tag = "query", params(ErrorsQuery),
    responses(
        (status = 200, description = "Error counts", body = Errors),
        (status = 400, description = "Bad parameter (`invalid_parameter`, `unknown_parameter`)", body = ErrorBody),
        (status = 401, description = "Read token needed", body = ErrorBody),
        (status = 503, description = "Database unavailable, pool exhausted, overloaded or timed out", body = ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn errors(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Errors>> {
    let q: ErrorsQuery = extract::query(&uri)?;
    let from = opt_time("from", &q.from)?;
    let to = opt_time("to", &q.to)?;
    let limit = limit(q.limit, 1000, 10_000)?;
    let Some(monitor) = q.monitor.or_else(|| state.tables.logs.monitor.clone()) else {
        return Ok(Json(Errors {
            monitor: None,
            errors: vec![],
        }));
    };
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT c.category, c.severity, c.template_id, t.template, sum(c.n)::bigint, min(c.bucket), max(c.bucket) \
             FROM tidewatch.log_counts c \
             LEFT JOIN tidewatch.log_monitors m ON m.name = c.monitor \
             LEFT JOIN tidewatch.log_templates t ON t.miner = m.miner AND t.id = c.template_id \
             WHERE c.monitor = $1 AND ($2::text IS NULL AND c.severity <> 'info' OR c.category = $2) \
               AND ($3::timestamptz IS NULL OR c.bucket >= $3) AND ($4::timestamptz IS NULL OR c.bucket < $4) \
             GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 3 LIMIT $5",
            &[&monitor, &q.category, &from, &to, &limit],
        )
        .await?;
    let errors = rows
        .iter()
        .map(|r| {
            Ok(ErrorCount {
                category: get(r, 0)?,
                severity: get(r, 1)?,
                template_id: get(r, 2)?,
                template: get(r, 3)?,
                count: get(r, 4)?,
                first: time_or_null(r, 5)?,
                last: time_or_null(r, 6)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(Errors {
        monitor: Some(monitor),
        errors,
    }))
}
