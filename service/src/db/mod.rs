//! The connection pool, the mapping of database errors to API errors, reading result rows
//! without panicking (`row`), and the set-up of the tables the service writes into (`schema`).

pub mod row;
pub mod schema;
pub mod write;

use std::time::Duration;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::config::Config;
use crate::error::ApiError;

/// The pool: `pool_size` connections at most, a bounded wait for one (`pool_timeout`), then 503.
/// Each new connection gets the service's session settings and its staging table (`write`).
pub fn pool(config: &Config) -> Result<Pool, String> {
    let mut pg = config.pg_config().map_err(|e| e.to_string())?;
    if pg.get_application_name().is_none() {
        pg.application_name("tidewatch-service");
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    // A connection is checked (is_closed) before reuse; one the server dropped (a restart) is
    // replaced, not handed out.
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let statement_timeout_ms = config.statement_timeout.as_millis();
    Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.pool_timeout))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .post_create(Hook::async_fn(move |client, _| {
            Box::pin(async move {
                let sql = format!(
                    "SET statement_timeout = {statement_timeout_ms}; SET lock_timeout = {statement_timeout_ms}; {}",
                    write::STAGING_DDL
                );
                client.batch_execute(&sql).await.map_err(HookError::Backend)
            })
        }))
        .build()
        .map_err(|e| e.to_string())
}

/// Is this a lost or refused connection (the server restarting, say), after which a retry works?
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("57P")
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
        // No SQLSTATE: an I/O error or a connection-level failure.
        None => true,
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::QUERY_CANCELED {
                return ApiError::unavailable(
                    "timeout",
                    "the database statement took longer than statement_timeout",
                );
            }
            if *code == SqlState::INSUFFICIENT_PRIVILEGE {
                tracing::error!(
                    sqlstate = code.code(),
                    message = db.message(),
                    "permission denied in the database"
                );
                return ApiError::internal(
                    "database_permission",
                    format!(
                        "the service's database role lacks a privilege: {} (see sql/roles.sql)",
                        db.message()
                    ),
                );
            }
        }
        if is_transient(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return ApiError::unavailable(
                "database_unavailable",
                "the database is not reachable right now; retry shortly",
            );
        }
        tracing::error!(error = %e, "database error");
        let message = match e.as_db_error() {
            Some(db) => format!("database error {}: {}", db.code().code(), db.message()),
            None => format!("database error: {e}"),
        };
        ApiError::internal("database_error", message)
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => ApiError::unavailable(
                "pool_exhausted",
                "every database connection is busy; retry shortly (pool_size, pool_timeout)",
            ),
            PoolError::Backend(e) => e.into(),
            PoolError::PostCreateHook(HookError::Backend(e)) => e.into(),
            other => {
                tracing::warn!(error = %other, "no database connection");
                ApiError::unavailable(
                    "database_unavailable",
                    "the database is not reachable right now; retry shortly",
                )
            }
        }
    }
}
