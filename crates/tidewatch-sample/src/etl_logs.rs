//! ETL / application logs: `ts,pipeline,level,message`.
//!
//! Seven scheduled pipelines (every 5 min … daily) log each run: start,
//! connection, extracted/loaded row counts with durations, occasional slow
//! queries and transient retries, and the finish line. Durations follow
//! `duration = overhead + rows / throughput`.
//!
//! Error bursts are planned up front (after the 15 % warm-up, one per slot):
//! during a burst of category `C` on pipeline `P`, `P` logs `C` errors every
//! ~20 s (exponential gaps) from the burst start to its end, and runs of `P`
//! that start inside the burst fail with `C` after retries. Every error line
//! of a category lies inside its labelled window; outside bursts only WARN
//! lines (retried transient problems) occur. Categories (label `kind`):
//! `timeout`, `connection`, `duplicate_key`, `permission`, `out_of_memory`,
//! `missing_column`, `deadlock`. Timestamps have millisecond precision.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use chrono::{DateTime, Utc};

use crate::csv::write_field;
use crate::labels::{Label, LabelFile, SeriesRef};
use rand::RngCore;

use crate::rng::Xoshiro256pp;
use crate::slots::{deck, Slots};
use crate::telemetry::default_start;
use crate::time::{civil_from_days, rfc3339, write_pg_ts_millis, DAY};
use crate::{Error, Result};

const STREAM_PLAN: u64 = 21;
const STREAM_PIPE: u64 = 22;
const STREAM_HOSTS: u64 = 23;
const STREAM_BURST: u64 = 24;

/// CSV header of the log data set.
pub const HEADER: &str = "ts,pipeline,level,message";

/// Configuration of the log generator.
#[derive(Debug, Clone, PartialEq)]
pub struct EtlConfig {
    /// Start of the range.
    pub start: DateTime<Utc>,
    /// Length in days.
    pub days: f64,
    /// Master seed.
    pub seed: u64,
    /// Number of error bursts over the range.
    pub bursts: u32,
}

impl Default for EtlConfig {
    fn default() -> Self {
        Self {
            start: default_start(),
            days: 7.0,
            seed: 42,
            bursts: 10,
        }
    }
}

impl EtlConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if !self.days.is_finite() || self.days <= 0.0 || self.days > 3660.0 {
            return Err(Error::Config("days must be in (0, 3660]".into()));
        }
        if self.bursts > 100_000 {
            return Err(Error::Config("too many bursts".into()));
        }
        Ok(())
    }

    fn range_secs(&self) -> i64 {
        (self.days * DAY as f64).floor() as i64
    }
}

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// DEBUG.
    Debug,
    /// INFO.
    Info,
    /// WARN.
    Warn,
    /// ERROR.
    Error,
    /// FATAL.
    Fatal,
}

impl Level {
    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

/// Error categories (label kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Read/statement/pool timeouts.
    Timeout,
    /// Refused/reset connections, DNS failures.
    Connection,
    /// Unique constraint violations.
    DuplicateKey,
    /// Permission denied / access denied.
    Permission,
    /// Heap exhaustion, OOM kills.
    OutOfMemory,
    /// Schema drift: a column is missing.
    MissingColumn,
    /// Database deadlocks.
    Deadlock,
}

impl ErrorCategory {
    /// All categories.
    pub const ALL: [ErrorCategory; 7] = [
        ErrorCategory::Timeout,
        ErrorCategory::Connection,
        ErrorCategory::DuplicateKey,
        ErrorCategory::Permission,
        ErrorCategory::OutOfMemory,
        ErrorCategory::MissingColumn,
        ErrorCategory::Deadlock,
    ];

    /// Label name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Connection => "connection",
            ErrorCategory::DuplicateKey => "duplicate_key",
            ErrorCategory::Permission => "permission",
            ErrorCategory::OutOfMemory => "out_of_memory",
            ErrorCategory::MissingColumn => "missing_column",
            ErrorCategory::Deadlock => "deadlock",
        }
    }
}

/// Static description of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineSpec {
    /// Pipeline name.
    pub name: &'static str,
    /// Schedule interval in seconds.
    pub interval: i64,
    /// Offset of the schedule from midnight UTC in seconds.
    pub offset: i64,
    /// Source description.
    pub source: &'static str,
    /// Target table or location.
    pub target: &'static str,
    /// Rows per run (min, max).
    pub rows: (u64, u64),
    /// Database / service host.
    pub host: &'static str,
    /// Port of the host.
    pub port: u16,
    /// Unique constraint on the target.
    pub constraint: &'static str,
    /// Key column of the target.
    pub key: &'static str,
    /// A column that may go missing.
    pub column: &'static str,
}

/// The pipelines that log.
pub const PIPELINES: [PipelineSpec; 7] = [
    PipelineSpec {
        name: "orders_ingest",
        interval: 900,
        offset: 60,
        source: "postgres://orders-db-1:5432/orders (public.orders)",
        target: "analytics.orders",
        rows: (2_000, 8_000),
        host: "orders-db-1",
        port: 5432,
        constraint: "orders_pkey",
        key: "order_id",
        column: "discount_code",
    },
    PipelineSpec {
        name: "clickstream_hourly",
        interval: 3600,
        offset: 300,
        source: "s3://tw-raw/clickstream/",
        target: "analytics.click_events",
        rows: (200_000, 1_200_000),
        host: "minio-gw-2",
        port: 9000,
        constraint: "click_events_pkey",
        key: "event_id",
        column: "user_agent",
    },
    PipelineSpec {
        name: "billing_daily",
        interval: 86_400,
        offset: 7_200,
        source: "postgres://billing-db:5432/billing (public.invoices)",
        target: "finance.invoices",
        rows: (40_000, 60_000),
        host: "billing-db",
        port: 5432,
        constraint: "invoices_pkey",
        key: "invoice_id",
        column: "tax_region",
    },
    PipelineSpec {
        name: "crm_sync",
        interval: 1_800,
        offset: 420,
        source: "https://crm-api.internal/v2/contacts",
        target: "crm.contacts",
        rows: (100, 2_000),
        host: "crm-api.internal",
        port: 443,
        constraint: "contacts_email_key",
        key: "contact_id",
        column: "customer_segment",
    },
    PipelineSpec {
        name: "inventory_snapshot",
        interval: 21_600,
        offset: 1_800,
        source: "mysql://inventory-db:3306/inventory (stock_levels)",
        target: "ops.inventory_snapshot",
        rows: (1_200_000, 1_600_000),
        host: "inventory-db",
        port: 3306,
        constraint: "inventory_snapshot_pkey",
        key: "sku",
        column: "warehouse_code",
    },
    PipelineSpec {
        name: "metrics_rollup",
        interval: 300,
        offset: 30,
        source: "warehouse-1 (raw.metrics)",
        target: "analytics.metrics_5m",
        rows: (5_000, 20_000),
        host: "warehouse-1",
        port: 5432,
        constraint: "metrics_5m_pkey",
        key: "bucket_id",
        column: "unit",
    },
    PipelineSpec {
        name: "ledger_export",
        interval: 86_400,
        offset: 16_200,
        source: "finance.ledger_entries",
        target: "sftp://partner-gw:22/exports/ledger/",
        rows: (80_000, 120_000),
        host: "partner-gw",
        port: 22,
        constraint: "ledger_exports_batch_key",
        key: "batch_id",
        column: "cost_center",
    },
];

/// A planned error burst.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    /// Index into [`PIPELINES`].
    pub pipeline: usize,
    /// Category of the errors.
    pub category: ErrorCategory,
    /// First second of the burst (Unix seconds, inclusive).
    pub start: i64,
    /// Last second of the burst (Unix seconds, inclusive).
    pub end: i64,
}

impl Burst {
    fn contains_ms(&self, ms: i64) -> bool {
        ms >= self.start * 1000 && ms <= self.end * 1000
    }
}

/// Everything decided up front.
#[derive(Debug, Clone)]
pub struct EtlPlan {
    /// The configuration.
    pub config: EtlConfig,
    /// Unix seconds of the range start.
    pub start_unix: i64,
    /// Unix seconds of the range end (exclusive).
    pub end_unix: i64,
    /// Per-pipeline IPv4 address of its host.
    pub host_ips: Vec<String>,
    /// Bursts sorted by start.
    pub bursts: Vec<Burst>,
}

impl EtlPlan {
    /// Builds the plan.
    pub fn new(cfg: &EtlConfig) -> Result<Self> {
        cfg.validate()?;
        let start_unix = cfg.start.timestamp();
        let secs = cfg.range_secs();
        let mut hosts = Xoshiro256pp::stream(cfg.seed, &[STREAM_HOSTS]);
        let host_ips = PIPELINES
            .iter()
            .map(|_| {
                format!(
                    "10.{}.{}.{}",
                    hosts.int_in(0, 40),
                    hosts.int_in(0, 255),
                    hosts.int_in(2, 250)
                )
            })
            .collect();
        let slots = Slots::new(secs.max(0) as u64, u64::from(cfg.bursts));
        let cats = deck(
            &ErrorCategory::ALL,
            slots.count as usize,
            &mut Xoshiro256pp::stream(cfg.seed, &[STREAM_PLAN]),
        );
        let mut bursts = Vec::with_capacity(cats.len());
        for (slot, category) in cats.into_iter().enumerate() {
            let mut r = Xoshiro256pp::stream(cfg.seed, &[STREAM_PLAN, slot as u64]);
            let pipeline = r.index(PIPELINES.len());
            let want = r.int_in(5 * 60, 30 * 60);
            let (s, len) = slots.place(slot as u64, want, &mut r);
            bursts.push(Burst {
                pipeline,
                category,
                start: start_unix + s as i64,
                end: start_unix + (s + len - 1) as i64,
            });
        }
        Ok(Self {
            config: cfg.clone(),
            start_unix,
            end_unix: start_unix + secs,
            host_ips,
            bursts,
        })
    }

    /// Labels of the plan.
    pub fn labels(&self) -> Vec<Label> {
        self.bursts
            .iter()
            .map(|b| {
                let p = &PIPELINES[b.pipeline];
                Label {
                    series: SeriesRef::pipeline(p.name),
                    kind: b.category.as_str().to_string(),
                    start: rfc3339(b.start),
                    end: rfc3339(b.end),
                    magnitude_sigma: None,
                    columns: Vec::new(),
                    detail: Some(format!(
                        "{} ({}:{})",
                        p.host, self.host_ips[b.pipeline], p.port
                    )),
                }
            })
            .collect()
    }

    /// The label file.
    pub fn label_file(&self) -> LabelFile {
        LabelFile::new(
            "etl-logs",
            self.config.seed,
            rfc3339(self.start_unix),
            rfc3339(self.end_unix),
            None,
            self.labels(),
        )
    }
}

/// Labels for `cfg`, without generating rows.
pub fn etl_labels(cfg: &EtlConfig) -> Result<Vec<Label>> {
    Ok(EtlPlan::new(cfg)?.labels())
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Unix milliseconds.
    pub ts_ms: i64,
    /// Index into [`PIPELINES`].
    pub pipeline: usize,
    /// Level.
    pub level: Level,
    /// Message (may contain commas and quotes).
    pub message: String,
}

impl LogRow {
    /// Pipeline name.
    pub fn pipeline_name(&self) -> &'static str {
        PIPELINES[self.pipeline].name
    }
}

/// Formats `n` with thousands separators (`1,234,567`).
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Per-pipeline event source producing one schedule interval at a time.
struct PipelineGen {
    idx: usize,
    rng: Xoshiro256pp,
    /// Scheduled time of the next run (Unix seconds).
    next_run: i64,
    /// Start of the next chunk (Unix seconds).
    chunk_lo: i64,
    buffer: std::collections::VecDeque<LogRow>,
    /// Bursts of this pipeline, sorted.
    bursts: Vec<Burst>,
    /// Pending burst error lines (Unix ms, category), sorted.
    burst_times: std::collections::VecDeque<(i64, ErrorCategory)>,
    ip: String,
}

impl PipelineGen {
    fn new(idx: usize, plan: &EtlPlan) -> Self {
        let spec = &PIPELINES[idx];
        let day0 = plan.start_unix - plan.start_unix.rem_euclid(DAY);
        let mut first = day0 + spec.offset;
        if first < plan.start_unix {
            first += (plan.start_unix - first + spec.interval - 1) / spec.interval * spec.interval;
        }
        let bursts: Vec<Burst> = plan
            .bursts
            .iter()
            .filter(|b| b.pipeline == idx)
            .cloned()
            .collect();
        let mut r = Xoshiro256pp::stream(plan.config.seed, &[STREAM_BURST, idx as u64]);
        let burst_times = bursts
            .iter()
            .flat_map(|b| {
                burst_times(b, &mut r)
                    .into_iter()
                    .map(move |t| (t, b.category))
                    .collect::<Vec<_>>()
            })
            .collect();
        Self {
            idx,
            rng: Xoshiro256pp::stream(plan.config.seed, &[STREAM_PIPE, idx as u64]),
            next_run: first,
            chunk_lo: plan.start_unix,
            buffer: Default::default(),
            bursts,
            burst_times,
            ip: plan.host_ips[idx].clone(),
        }
    }

    fn push(&self, out: &mut Vec<LogRow>, ts_ms: i64, level: Level, message: String) {
        out.push(LogRow {
            ts_ms,
            pipeline: self.idx,
            level,
            message,
        });
    }

    /// Fills the buffer with the next chunk; returns false at the end.
    fn refill(&mut self, end_unix: i64) -> bool {
        while self.buffer.is_empty() {
            let lo = self.chunk_lo;
            if lo >= end_unix {
                return false;
            }
            let run_at = self.next_run;
            let spec = &PIPELINES[self.idx];
            let hi = (run_at + spec.interval).min(end_unix);
            let mut events = Vec::new();
            if run_at < end_unix {
                self.run(&mut events, run_at);
            }
            self.burst_lines(&mut events, lo, hi);
            events.retain(|e| e.ts_ms >= lo * 1000 && e.ts_ms < hi * 1000);
            events.sort_by_key(|e| e.ts_ms);
            self.buffer.extend(events);
            self.chunk_lo = hi;
            self.next_run = run_at + spec.interval;
        }
        true
    }

    fn run_id(&self, t: i64) -> String {
        let (y, m, d) = civil_from_days(t.div_euclid(DAY));
        let sod = t.rem_euclid(DAY);
        format!(
            "{}-{y:04}{m:02}{d:02}T{:02}{:02}",
            PIPELINES[self.idx].name,
            sod / 3600,
            (sod / 60) % 60
        )
    }

    /// Logs one run scheduled at `sched`.
    fn run(&mut self, out: &mut Vec<LogRow>, sched: i64) {
        let spec = PIPELINES[self.idx];
        let run_id = self.run_id(sched);
        let r = &mut self.rng;
        let jitter_ms = r.int_in(0, (spec.interval * 1000 / 20).min(20_000) as u64) as i64;
        let t0 = sched * 1000 + jitter_ms;
        let rows = r.int_in(spec.rows.0, spec.rows.1);
        let throughput = r.uniform(20_000.0, 80_000.0);
        let overhead = r.uniform(0.5, 3.0);
        let extract_s = overhead * 0.5 + rows as f64 / throughput * r.uniform(0.3, 0.5);
        let load_s = overhead * 0.5 + rows as f64 / throughput * r.uniform(0.5, 0.7);
        let max_s = spec.interval as f64 * 0.7;
        let scale = ((extract_s + load_s) / max_s).max(1.0);
        let (extract_s, load_s) = (extract_s / scale, load_s / scale);
        let connect_ms = r.int_in(15, 120) as i64;
        let slow = r.chance(0.04);
        let transient = r.chance(0.03);
        let dupes = if r.chance(0.3) {
            Some(r.int_in(1, (rows / 200).max(2)))
        } else {
            None
        };
        let slow_s = r.uniform(10.5, 45.0);
        let query_id = hex_id(r);
        let ip = self.ip.clone();
        let failing = self.bursts.iter().find(|b| b.contains_ms(t0)).cloned();

        let mut ev: Vec<(i64, Level, String)> = vec![
            (
                t0,
                Level::Info,
                format!("Job started run_id={run_id} trigger=schedule attempt=1"),
            ),
            (
                t0 + connect_ms,
                Level::Debug,
                format!(
                    "Connecting to {} ({ip}:{}) as etl_{} (pool_size=4)",
                    spec.host, spec.port, spec.name
                ),
            ),
        ];
        if let Some(b) = failing {
            // Fail with the burst's category, retrying twice; every line
            // stays inside the burst window.
            let deadline = (b.end * 1000).min(t0 + (max_s * 1000.0) as i64);
            let mut t = t0 + connect_ms + self.rng.int_in(200, 3_000) as i64;
            for attempt in 1..=3 {
                let (level, msg) = error_message(b.category, &spec, &ip, &mut self.rng);
                ev.push((t.min(deadline), level, msg));
                if attempt < 3 {
                    t += 5_000 * attempt;
                    ev.push((
                        t.min(deadline),
                        Level::Warn,
                        format!("Retrying in {}s (attempt {}/3)", 5 * attempt, attempt + 1),
                    ));
                    t += self.rng.int_in(100, 1_500) as i64;
                }
            }
            let t_end = (t + 50).min(deadline);
            ev.push((
                t_end,
                Level::Error,
                format!(
                    "Job failed run_id={run_id} status=failed duration={:.1}s error={}",
                    (t_end - t0) as f64 / 1000.0,
                    b.category.as_str()
                ),
            ));
        } else {
            let t_extract = t0 + connect_ms + (extract_s * 1000.0) as i64;
            ev.push((
                t_extract,
                Level::Info,
                format!(
                    "Extracted {} rows from {} in {:.1}s",
                    thousands(rows),
                    spec.source,
                    extract_s
                ),
            ));
            if slow {
                ev.push((
                    t_extract - 5,
                    Level::Warn,
                    format!("Slow query detected: {slow_s:.1}s > 10.0s threshold (query_id=q-{query_id})"),
                ));
            }
            if transient {
                ev.push((
                    t_extract + 10,
                    Level::Warn,
                    format!(
                        "Connection reset by peer ({ip}:{}); retrying in 2s (attempt 1/3)",
                        spec.port
                    ),
                ));
            }
            let mut loaded = rows;
            if let Some(d) = dupes {
                loaded -= d.min(rows);
                ev.push((
                    t_extract + 20,
                    Level::Info,
                    format!("Transform 'dedupe_{}' dropped {d} duplicate rows", spec.key),
                ));
            }
            let t_load = t_extract + 30 + (load_s * 1000.0) as i64;
            ev.push((
                t_load,
                Level::Info,
                format!(
                    "Loaded {} rows into {} in {:.1}s (batch_size=5000)",
                    thousands(loaded),
                    spec.target,
                    load_s
                ),
            ));
            ev.push((
                t_load + 8,
                Level::Info,
                format!(
                    "Job finished run_id={run_id} status=success duration={:.1}s rows={loaded}",
                    (t_load + 8 - t0) as f64 / 1000.0
                ),
            ));
        }
        for (t, level, msg) in ev {
            self.push(out, t, level, msg);
        }
    }

    /// Error lines of this pipeline's bursts within `[lo, hi)` seconds.
    fn burst_lines(&mut self, out: &mut Vec<LogRow>, lo: i64, hi: i64) {
        let spec = PIPELINES[self.idx];
        while let Some(&(t, category)) = self.burst_times.front() {
            if t >= hi * 1000 {
                break;
            }
            self.burst_times.pop_front();
            if t < lo * 1000 {
                continue;
            }
            let (level, msg) = error_message(category, &spec, &self.ip, &mut self.rng);
            self.push(out, t, level, msg);
        }
    }
}

/// Times of a burst's error lines: exponential gaps with a 20 s mean; the
/// burst's first and last second always carry a line.
fn burst_times(b: &Burst, r: &mut Xoshiro256pp) -> Vec<i64> {
    let (from, to) = (b.start * 1000, b.end * 1000);
    let mut times = Vec::new();
    let mut t = from;
    while t < to {
        times.push(t);
        t += (-20_000.0 * (1.0 - r.unit()).ln()) as i64 + 1;
    }
    times.push(to);
    times
}

/// Short random hexadecimal identifier.
fn hex_id(r: &mut Xoshiro256pp) -> String {
    format!("{:08x}", r.next_u64() >> 32)
}

/// One error line of `category` for pipeline `spec`.
fn error_message(
    category: ErrorCategory,
    spec: &PipelineSpec,
    ip: &str,
    r: &mut Xoshiro256pp,
) -> (Level, String) {
    let host = spec.host;
    let port = spec.port;
    match category {
        ErrorCategory::Timeout => match r.index(3) {
            0 => (
                Level::Error,
                format!("Read timed out after 30000 ms waiting for {host} ({ip}:{port})"),
            ),
            1 => (
                Level::Error,
                format!(
                    "canceling statement due to statement timeout (query_id=q-{}, elapsed={:.1}s)",
                    hex_id(r),
                    r.uniform(60.0, 61.0)
                ),
            ),
            _ => (
                Level::Error,
                format!(
                    "Timeout waiting for connection from pool \"{}\" after 30s (active=20, idle=0, waiting={})",
                    spec.name,
                    r.int_in(3, 40)
                ),
            ),
        },
        ErrorCategory::Connection => match r.index(4) {
            0 => (
                Level::Error,
                format!(
                    "Connection refused: could not connect to server {host} ({ip}:{port}). Is the server running and accepting TCP/IP connections?"
                ),
            ),
            1 => (
                Level::Error,
                format!(
                    "could not translate host name \"{host}\" to address: Temporary failure in name resolution"
                ),
            ),
            2 => (
                Level::Error,
                format!("SSL SYSCALL error: EOF detected (peer {ip}:{port})"),
            ),
            _ => (
                Level::Error,
                format!("Connection reset by peer ({ip}:{port}) after 3 retries, giving up"),
            ),
        },
        ErrorCategory::DuplicateKey => (
            Level::Error,
            format!(
                "duplicate key value violates unique constraint \"{}\" DETAIL: Key ({})=({}) already exists.",
                spec.constraint,
                spec.key,
                r.int_in(100_000, 9_999_999)
            ),
        ),
        ErrorCategory::Permission => match r.index(2) {
            0 => (
                Level::Error,
                format!(
                    "permission denied for table {} (role \"etl_{}\")",
                    spec.target.rsplit('.').next().unwrap_or(spec.target),
                    spec.name
                ),
            ),
            _ => (
                Level::Error,
                format!(
                    "AccessDenied: role etl_{} is not authorized to perform: read on resource \"{}\"",
                    spec.name, spec.source
                ),
            ),
        },
        ErrorCategory::OutOfMemory => match r.index(3) {
            0 => (
                Level::Fatal,
                format!(
                    "java.lang.OutOfMemoryError: Java heap space (heap=4096m, used={}m)",
                    r.int_in(4085, 4096)
                ),
            ),
            1 => (
                Level::Fatal,
                format!(
                    "Container killed by OOM killer: memory usage {:.1} GiB exceeds limit 8 GiB",
                    r.uniform(8.0, 8.4)
                ),
            ),
            _ => (
                Level::Error,
                format!(
                    "out of memory DETAIL: Failed on request of size {} in memory context \"ExecutorState\".",
                    r.int_in(1 << 20, 1 << 28)
                ),
            ),
        },
        ErrorCategory::MissingColumn => match r.index(2) {
            0 => (
                Level::Error,
                format!(
                    "column \"{}\" of relation \"{}\" does not exist",
                    spec.column,
                    spec.target.rsplit('.').next().unwrap_or(spec.target)
                ),
            ),
            _ => (
                Level::Error,
                format!(
                    "KeyError: '{}' - missing column in source schema (expected 42 columns, got 41)",
                    spec.column
                ),
            ),
        },
        ErrorCategory::Deadlock => {
            let p1 = r.int_in(10_000, 65_000);
            let p2 = r.int_in(10_000, 65_000);
            let tx = r.int_in(1_000_000, 99_999_999);
            (
                Level::Error,
                format!(
                    "deadlock detected DETAIL: Process {p1} waits for ShareLock on transaction {tx}; blocked by process {p2}. HINT: See server log for query details."
                ),
            )
        }
    }
}

/// Streaming iterator over log lines, ordered by time (then pipeline).
pub struct LogRows {
    plan: EtlPlan,
    gens: Vec<PipelineGen>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

/// Log lines for `cfg`, generated lazily.
pub fn log_rows(cfg: &EtlConfig) -> Result<LogRows> {
    let plan = EtlPlan::new(cfg)?;
    let mut gens: Vec<PipelineGen> = (0..PIPELINES.len())
        .map(|i| PipelineGen::new(i, &plan))
        .collect();
    let mut heap = BinaryHeap::new();
    for g in &mut gens {
        if g.refill(plan.end_unix) {
            if let Some(e) = g.buffer.front() {
                heap.push(Reverse((e.ts_ms, g.idx)));
            }
        }
    }
    Ok(LogRows { plan, gens, heap })
}

impl LogRows {
    /// The plan being generated.
    pub fn plan(&self) -> &EtlPlan {
        &self.plan
    }
}

impl Iterator for LogRows {
    type Item = LogRow;

    fn next(&mut self) -> Option<LogRow> {
        let Reverse((_, idx)) = self.heap.pop()?;
        let end = self.plan.end_unix;
        let g = &mut self.gens[idx];
        let row = g.buffer.pop_front()?;
        if g.refill(end) {
            if let Some(e) = g.buffer.front() {
                self.heap.push(Reverse((e.ts_ms, idx)));
            }
        }
        Some(row)
    }
}

/// Streams the log CSV for `cfg`; returns the number of data rows.
pub fn write_logs_csv<W: Write>(cfg: &EtlConfig, out: &mut W) -> Result<u64> {
    let mut buf = Vec::with_capacity(1 << 17);
    buf.extend_from_slice(HEADER.as_bytes());
    buf.push(b'\n');
    let mut count = 0;
    for row in log_rows(cfg)? {
        write_pg_ts_millis(&mut buf, row.ts_ms);
        buf.push(b',');
        buf.extend_from_slice(row.pipeline_name().as_bytes());
        buf.push(b',');
        buf.extend_from_slice(row.level.as_str().as_bytes());
        buf.push(b',');
        write_field(&mut buf, &row.message);
        buf.push(b'\n');
        count += 1;
        crate::csv::flush_if_full(out, &mut buf)?;
    }
    crate::csv::finish(out, &buf)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separator() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
