//! The write path: points and log lines go to PostgreSQL through binary COPY, one transaction per
//! request (or per import), so that a request is written whole or not at all.
//!
//! Points are COPYed into a per-session temporary staging table, then moved into the metrics
//! table with `INSERT ... ON CONFLICT (metric, labels, time) DO NOTHING`: a retried batch adds
//! nothing, whatever the order of its label keys (jsonb equality ignores key order). Log lines
//! have no natural key and are COPYed straight into the logs table.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Statement, Transaction};

use super::schema::TableRef;

/// Created on every new connection of the pool (and by the importer): emptied at each commit.
pub const STAGING_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS tidewatch_staging_points \
     (time timestamptz, metric text, labels jsonb, value float8) ON COMMIT DELETE ROWS";

/// One point, validated: finite value, a time PostgreSQL can store, labels as a canonical JSON
/// object text.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Microseconds since 1970-01-01 00:00 UTC.
    pub time_us: i64,
    pub metric: String,
    /// A JSON object of string values, keys sorted (jsonb normalises the order anyway).
    pub labels: String,
    pub value: f64,
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub time_us: i64,
    pub source: String,
    pub labels: String,
    pub message: String,
}

/// Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A timestamptz in binary COPY: µs since 2000-01-01 UTC, big-endian.
#[derive(Debug)]
struct PgTimestamp(i64);

impl ToSql for PgTimestamp {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i64(self.0 - PG_EPOCH_US);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
    to_sql_checked!();
}

/// jsonb in binary COPY: format version 1, then the JSON text.
#[derive(Debug)]
struct JsonbText<'a>(&'a str);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }
    to_sql_checked!();
}

/// The statement that moves staged points into the metrics table, skipping those already there.
pub fn insert_staged_sql(table: &TableRef) -> String {
    format!(
        "INSERT INTO {} (time, metric, labels, value) SELECT time, metric, labels, value \
         FROM pg_temp.tidewatch_staging_points ON CONFLICT (metric, labels, time) DO NOTHING",
        table.sql
    )
}

/// COPY the points into the staging table and move them into the metrics table with `insert`
/// (prepared from [`insert_staged_sql`]); returns how many were new (the others were already
/// there). The caller commits, or empties the staging table before staging more.
pub async fn stage_points(
    tx: &Transaction<'_>,
    insert: &Statement,
    points: &[Point],
) -> Result<u64, tokio_postgres::Error> {
    if points.is_empty() {
        return Ok(0);
    }
    let sink = tx
        .copy_in("COPY pg_temp.tidewatch_staging_points (time, metric, labels, value) FROM STDIN (FORMAT binary)")
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::TIMESTAMPTZ, Type::TEXT, Type::JSONB, Type::FLOAT8],
    );
    pin_mut!(writer);
    for p in points {
        writer
            .as_mut()
            .write(&[
                &PgTimestamp(p.time_us),
                &p.metric,
                &JsonbText(&p.labels),
                &p.value,
            ])
            .await?;
    }
    writer.finish().await?;
    tx.execute(insert, &[]).await
}

/// COPY log lines straight into the logs table. The caller commits.
pub async fn copy_logs(
    tx: &Transaction<'_>,
    table: &TableRef,
    lines: &[LogLine],
) -> Result<u64, tokio_postgres::Error> {
    if lines.is_empty() {
        return Ok(0);
    }
    let sink = tx
        .copy_in(&format!(
            "COPY {} (time, source, labels, message) FROM STDIN (FORMAT binary)",
            table.sql
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::TIMESTAMPTZ, Type::TEXT, Type::JSONB, Type::TEXT],
    );
    pin_mut!(writer);
    for l in lines {
        writer
            .as_mut()
            .write(&[
                &PgTimestamp(l.time_us),
                &l.source,
                &JsonbText(&l.labels),
                &l.message,
            ])
            .await?;
    }
    writer.finish().await
}
