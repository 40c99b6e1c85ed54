//! The tables the service writes into: found by name, or created (hypertables with the default
//! layout and a monitor) when missing; an existing table's layout is checked once at start.
//!
//! Identifiers are quoted by the server (`format('%I')`, `regclass`): the SQL below never splices a
//! configured name into a statement itself.

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::config::{split_table_name, Config, MonitorMode};

/// A table resolved at start: its oid and its name as SQL (schema-qualified, quoted as needed).
#[derive(Debug, Clone)]
pub struct TableRef {
    pub oid: u32,
    /// `schema.name`, each part quoted by `quote_ident`: safe to put into SQL text.
    pub sql: String,
    /// The name of the monitor (anomaly or log) the service put on it, if any.
    pub monitor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Tables {
    pub metrics: TableRef,
    pub logs: TableRef,
    /// The extension's version, as installed in the database.
    pub extension_version: String,
}

/// The comment that marks a table as created by the service (so that a monitor is put on it).
const CREATED_MARK: &str = "tidewatch-service:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metrics,
    Logs,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Metrics => "metrics",
            Kind::Logs => "logs",
        }
    }
    /// Required columns and the types accepted for each.
    fn columns(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Kind::Metrics => &[
                ("time", &["timestamp with time zone"]),
                ("metric", &["text", "character varying"]),
                ("labels", &["jsonb"]),
                ("value", &["double precision"]),
            ],
            Kind::Logs => &[
                ("time", &["timestamp with time zone"]),
                ("source", &["text", "character varying"]),
                ("labels", &["jsonb"]),
                ("message", &["text", "character varying"]),
            ],
        }
    }
    fn ddl(self) -> &'static str {
        match self {
            Kind::Metrics => {
                "(time timestamptz NOT NULL, metric text NOT NULL, labels jsonb NOT NULL DEFAULT '{}', \
                  value float8 NOT NULL, UNIQUE (metric, labels, time)) PARTITION BY RANGE (time)"
            }
            Kind::Logs => {
                "(time timestamptz NOT NULL, source text NOT NULL DEFAULT '', labels jsonb NOT NULL DEFAULT '{}', \
                  message text NOT NULL) PARTITION BY RANGE (time)"
            }
        }
    }
    fn comment(self) -> &'static str {
        match self {
            Kind::Metrics => {
                "tidewatch-service: points pushed over HTTP (JSON, InfluxDB line protocol, Prometheus remote write), \
                 one row per (metric, labels, time)."
            }
            Kind::Logs => "tidewatch-service: log lines pushed over HTTP (POST /v1/logs), with their source and labels.",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Check the extension, then find or create both tables (and their monitors).
pub async fn prepare(client: &mut Client, config: &Config) -> Result<Tables, SetupError> {
    let extension_version = extension_version(client).await?.ok_or_else(|| {
        SetupError::Invalid(
            "the tidewatch extension is not installed in this database: run CREATE EXTENSION tidewatch (as a superuser) \
             and then sql/roles.sql"
                .into(),
        )
    })?;
    let metrics = prepare_table(client, config, &config.metrics_table, Kind::Metrics).await?;
    let logs = prepare_table(client, config, &config.logs_table, Kind::Logs).await?;
    if metrics.oid == logs.oid {
        return Err(SetupError::Invalid(format!(
            "metrics_table and logs_table are the same table ({})",
            metrics.sql
        )));
    }
    Ok(Tables {
        metrics,
        logs,
        extension_version,
    })
}

pub async fn extension_version(client: &Client) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'tidewatch'",
            &[],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Look a configured name up: `schema.name` exactly, or `name` on the search_path.
async fn lookup(
    client: &Client,
    schema: Option<&str>,
    name: &str,
) -> Result<Option<u32>, tokio_postgres::Error> {
    let row = match schema {
        Some(s) => {
            client
                .query_opt(
                    "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                    &[&s, &name],
                )
                .await?
        }
        None => {
            client
                .query_opt(
                    "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(quote_ident($1)) \
                     AND c.relkind IN ('r', 'p')",
                    &[&name],
                )
                .await?
        }
    };
    Ok(row.map(|r| r.get(0)))
}

async fn prepare_table(
    client: &mut Client,
    config: &Config,
    configured: &str,
    kind: Kind,
) -> Result<TableRef, SetupError> {
    let (schema, name) = split_table_name(configured).map_err(SetupError::Invalid)?;
    let oid = match lookup(client, schema.as_deref(), &name).await? {
        Some(oid) => oid,
        None => create_table(client, schema.as_deref().unwrap_or("public"), &name, kind).await?,
    };
    let sql: String = client
        .query_one(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await?
        .get(0);
    check_layout(client, oid, &sql, kind).await?;
    let monitor = ensure_monitor(client, config, oid, &sql, kind).await?;
    Ok(TableRef { oid, sql, monitor })
}

/// CREATE TABLE ... PARTITION BY RANGE (time), make it a hypertable (1-day chunks) and mark it,
/// all in one transaction under an advisory lock (several instances may start at once).
async fn create_table(
    client: &mut Client,
    schema: &str,
    name: &str,
    kind: Kind,
) -> Result<u32, SetupError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tidewatch-service setup'))",
        &[],
    )
    .await?;
    let existing = tx
        .query_opt(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &name],
        )
        .await?;
    if let Some(row) = existing {
        tx.commit().await?;
        return Ok(row.get(0));
    }
    let create: String = tx
        .query_one(
            &format!(
                "SELECT format($ddl$CREATE TABLE %I.%I {}$ddl$, $1::text, $2::text)",
                kind.ddl().replace('%', "%%")
            ),
            &[&schema, &name],
        )
        .await?
        .get(0);
    tx.batch_execute(&create).await.map_err(|e| match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE || *c == SqlState::INVALID_SCHEMA_NAME => SetupError::Invalid(format!(
            "cannot create the {} table {schema}.{name}: {} (grant CREATE on the schema to the service's role, see sql/roles.sql, \
             or create the table beforehand)",
            kind.what(),
            e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default()
        )),
        _ => SetupError::Db(e),
    })?;
    let oid: u32 = tx
        .query_one(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &name],
        )
        .await?
        .get(0);
    tx.execute(
        "SELECT 1 FROM tidewatch.create_hypertable($1::oid::regclass, 'time', chunk_time_interval => interval '1 day')",
        &[&oid],
    )
    .await?;
    let comment: String = tx
        .query_one(
            "SELECT format('COMMENT ON TABLE %s IS %L', $1::oid::regclass, $2::text)",
            &[&oid, &kind.comment()],
        )
        .await?
        .get(0);
    tx.batch_execute(&comment).await?;
    tx.commit().await?;
    tracing::info!(table = %format!("{schema}.{name}"), "created the {} hypertable", kind.what());
    Ok(oid)
}

/// The columns the service writes must exist with usable types; metrics need a unique index on
/// exactly (metric, labels, time) for idempotent writes.
async fn check_layout(client: &Client, oid: u32, sql: &str, kind: Kind) -> Result<(), SetupError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&oid],
        )
        .await?;
    let cols: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (name, types) in kind.columns() {
        match cols.iter().find(|(c, _)| c == name) {
            None => {
                return Err(SetupError::Invalid(format!(
                    "the {} table {sql} has no column \"{name}\"; it needs {} (or configure another table)",
                    kind.what(),
                    kind.columns().iter().map(|(c, t)| format!("{c} {}", t[0])).collect::<Vec<_>>().join(", ")
                )))
            }
            Some((_, t)) if !types.contains(&t.as_str()) => {
                return Err(SetupError::Invalid(format!(
                    "column \"{name}\" of the {} table {sql} has type {t}, expected {}",
                    kind.what(),
                    types.join(" or ")
                )))
            }
            Some(_) => {}
        }
    }
    if kind == Kind::Metrics {
        let unique: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisunique \
                   AND i.indnkeyatts = 3 AND i.indpred IS NULL AND i.indexprs IS NULL \
                   AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_catalog.pg_attribute a \
                        WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) = ARRAY['labels', 'metric', 'time'])",
                &[&oid],
            )
            .await?
            .get(0);
        if !unique {
            return Err(SetupError::Invalid(format!(
                "the metrics table {sql} has no unique index on (metric, labels, time), which idempotent writes need: \
                 CREATE UNIQUE INDEX ON {sql} (metric, labels, time)"
            )));
        }
    }
    Ok(())
}

/// Put the default monitor on a table the service created, unless TIDEWATCH_MONITOR=off or one is
/// there already; returns the monitor watching the table, if any.
async fn ensure_monitor(
    client: &Client,
    config: &Config,
    oid: u32,
    sql: &str,
    kind: Kind,
) -> Result<Option<String>, SetupError> {
    let catalog = match kind {
        Kind::Metrics => "tidewatch.monitors",
        Kind::Logs => "tidewatch.log_monitors",
    };
    let existing = client
        .query_opt(&format!("SELECT name FROM {catalog} WHERE relid = $1::oid::regclass ORDER BY created_at LIMIT 1"), &[&oid])
        .await?;
    if let Some(row) = existing {
        return Ok(Some(row.get(0)));
    }
    let created_by_us: bool = client
        .query_one(
            "SELECT coalesce(starts_with(obj_description($1::oid, 'pg_class'), $2), false)",
            &[&oid, &CREATED_MARK],
        )
        .await?
        .get(0);
    if !created_by_us || config.monitor == MonitorMode::Off {
        return Ok(None);
    }
    // Named after the table, e.g. "public.metrics".
    let name: String = client
        .query_one(
            "SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await?
        .get(0);
    let call = match kind {
        Kind::Metrics => "SELECT tidewatch.monitor($1, $2::oid::regclass, 'value', '{metric,labels}', 'auto', mode => $3)::text",
        Kind::Logs => "SELECT tidewatch.log_monitor($1, $2::oid::regclass, 'message', 'time', mode => $3)::text",
    };
    let modes: &[&str] = match config.monitor {
        MonitorMode::Auto => &["async", "sync"],
        MonitorMode::Async => &["async"],
        MonitorMode::Sync => &["sync"],
        MonitorMode::Off => &[],
    };
    for (i, mode) in modes.iter().enumerate() {
        // Its own transaction (autocommit): an async monitor creates a replication slot, which
        // must happen before any write of the transaction.
        match client.query_one(call, &[&name, &oid, mode]).await {
            Ok(_) => {
                tracing::info!(table = sql, monitor = %name, mode, "monitoring the {} table", kind.what());
                return Ok(Some(name));
            }
            // Not set up for async monitors (wal_level, the scheduler, ...: 55000), or the role may
            // not create the replication slot (42501: sql/roles.sql grants it): fall back to sync.
            Err(e)
                if i + 1 < modes.len()
                    && (e.code() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE)
                        || e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)) =>
            {
                tracing::info!(
                    reason = e.as_db_error().map(|d| d.message()).unwrap_or_default(),
                    "async monitors are not available here; using a sync monitor"
                );
            }
            Err(e) => {
                return Err(SetupError::Invalid(format!(
                    "cannot put a {mode} monitor on the {} table {sql}: {} (set TIDEWATCH_MONITOR=off to run without one)",
                    kind.what(),
                    e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
                )))
            }
        }
    }
    Ok(None)
}
