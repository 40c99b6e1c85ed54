//! Template mining with its state in tables: `log_parse`, `mine_logs`, and the miner side of log
//! monitors. The miner is `tidewatch_logs::Miner`; its clusters are rows of
//! `tidewatch.log_templates` (sql/logs.sql), one per template.
//!
//! Concurrency: every writer of a miner holds a transaction-level advisory lock on it, so two
//! connections never mine into the same miner at once: no duplicate templates, and a single lock
//! cannot deadlock. Each backend keeps a copy of the miners it uses; the copy is checked against
//! `log_miners.version` once per transaction after the lock is taken (every change of templates
//! bumps it), and dropped when a (sub)transaction aborts, since the rows it wrote are gone.

use crate::errors;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tidewatch_logs::{Cluster, Config, Match, Miner};

extension_sql_file!(
    "../../sql/logs.sql",
    name = "logs_catalog",
    requires = [
        "anomaly",
        "jobs",
        "drift_monitor",
        _log_miner_config_check,
        monitor_async::decoder::wal_insert_end_bytes
    ]
);

/// A backend's copy of one miner.
struct Cached {
    miner: Miner,
    version: i64,
    /// Local transaction id in which the copy was last checked (0: never), and the abort
    /// generation then.
    checked_lxid: u32,
    aborts: u64,
    /// Checked by a log monitor's trigger as the extension's owner (definer.rs), not by the
    /// calling role: a caller's own use must check again that it may see the miner.
    by_owner: bool,
}

thread_local! {
    static MINERS: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

/// Counts the transactions and subtransactions that aborted in this backend: what they wrote is
/// gone, so a copy (or pending counts) made before must be checked again before use.
static ABORTS: AtomicU64 = AtomicU64::new(0);

/// The number of aborts so far in this backend.
pub fn aborts() -> u64 {
    ABORTS.load(Ordering::Relaxed)
}

unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    {
        ABORTS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    _mysubid: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        ABORTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Registered once per backend by `_PG_init`.
pub fn init() {
    // SAFETY: plain callback registration with static functions and no argument.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}

fn lxid() -> u32 {
    // SAFETY: MyProc is set for every backend that runs SQL.
    unsafe { pg_sys::MyProc.as_ref().map_or(0, |p| p.lxid) }
}

/// FNV-1a of the miner name: the second key of its advisory lock.
fn lock_key(name: &str) -> i64 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // First key: "tw" + 0x4c ('L'); second: the hash.
    (0x7477_4c00_i64 << 32) | i64::from(h)
}

use crate::errors::spi as spi_error;

fn unknown_miner(name: &str) -> ! {
    errors::raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("log miner \"{name}\" does not exist"),
        None,
        Some(
            "Use 'default', create one with tidewatch.create_log_miner(name), or let tidewatch.mine_logs(..., miner => name) create it."
                .into(),
        ),
    )
}

fn config_of(name: &str, json: &serde_json::Value) -> Config {
    serde_json::from_value::<ConfigPatch>(json.clone())
        .map(|p| p.apply(Config::default()))
        .unwrap_or_else(|e| {
            errors::raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid settings of log miner \"{name}\": {e}"),
                None,
                Some(CONFIG_HINT.into()),
            )
        })
}

const CONFIG_HINT: &str = "Settings are a JSON object with any of sim_threshold (0..1], max_clusters (>= 1), depth (>= 3), max_children (>= 1), max_line_len (>= 16).";

/// The settings a user may change; everything else keeps the one configuration used for every
/// Loghub system.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigPatch {
    sim_threshold: Option<f64>,
    max_clusters: Option<usize>,
    depth: Option<usize>,
    max_children: Option<usize>,
    max_line_len: Option<usize>,
}

impl ConfigPatch {
    fn apply(self, mut c: Config) -> Config {
        if let Some(v) = self.sim_threshold {
            c.sim_threshold = v;
        }
        if let Some(v) = self.max_clusters {
            c.max_clusters = v;
        }
        if let Some(v) = self.depth {
            c.depth = v;
        }
        if let Some(v) = self.max_children {
            c.max_children = v;
        }
        if let Some(v) = self.max_line_len {
            c.max_line_len = v;
        }
        c
    }

    fn valid(&self) -> bool {
        self.sim_threshold.is_none_or(|v| v > 0.0 && v <= 1.0)
            && self.max_clusters.is_none_or(|v| v >= 1)
            && self.depth.is_none_or(|v| v >= 3)
            && self.max_children.is_none_or(|v| v >= 1)
            && self.max_line_len.is_none_or(|v| v >= 16)
    }
}

/// Check a miner's settings (the CHECK constraint of tidewatch.log_miners.config).
#[pg_extern(immutable, parallel_safe, strict)]
fn _log_miner_config_check(config: errors::JsonbArg) -> bool {
    let config = pgrx::JsonB(config.value("config"));
    let ok = serde_json::from_value::<ConfigPatch>(config.0.clone()).map(|p| p.valid());
    match ok {
        Ok(true) => true,
        Ok(false) => errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("log miner setting out of range: {}", config.0),
            None,
            Some(CONFIG_HINT.into()),
        ),
        Err(e) => errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid log miner settings: {e}"),
            None,
            Some(CONFIG_HINT.into()),
        ),
    }
}

/// Whether the backend's copy of the miner was checked in this transaction, with no abort since
/// (for the calling role unless `by_owner`: a copy the owner checked is no proof the caller may
/// see the miner).
fn is_fresh(name: &str, by_owner: bool) -> bool {
    let lx = lxid();
    MINERS.with(|m| {
        m.borrow().get(name).is_some_and(|c| {
            c.checked_lxid == lx && lx != 0 && c.aborts == aborts() && (by_owner || !c.by_owner)
        })
    })
}

/// Take the miner's lock for this transaction and make the backend's copy current. Returns
/// false when the miner does not exist (or is not visible to the role running this).
fn lock_and_load(client: &mut SpiClient<'_>, name: &str, by_owner: bool) -> bool {
    if is_fresh(name, by_owner) {
        return true;
    }
    let lx = lxid();
    let gen = aborts();
    client
        .update(
            "SELECT pg_catalog.pg_advisory_xact_lock($1)",
            None,
            &[lock_key(name).into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    // A new statement snapshot (read committed) sees what the previous holder committed.
    let row = client
        .update(
            // jsonb read as text and parsed here: pgrx's JsonB panics (XX000) on jsonb serde_json
            // refuses (nested deeper than 128, numbers beyond f64), and these rows are writable.
            "SELECT version, config::text FROM tidewatch.log_miners WHERE name = $1",
            None,
            &[name.into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    let Some((version, config)) = row.into_iter().next().map(|r| {
        (
            r.get::<i64>(1).ok().flatten().unwrap_or(0),
            r.get::<String>(2)
                .ok()
                .flatten()
                .map(|t| {
                    serde_json::from_str(&t).unwrap_or_else(|e| {
                        errors::raise(
                            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                            format!("invalid settings of log miner \"{name}\": {e}"),
                            None,
                            Some(CONFIG_HINT.into()),
                        )
                    })
                })
                .unwrap_or(serde_json::Value::Null),
        )
    }) else {
        return false;
    };
    // A copy made before an abort may hold clusters whose rows were rolled back: reload it.
    let current = MINERS.with(|m| {
        m.borrow()
            .get(name)
            .is_some_and(|c| c.version == version && c.checked_lxid != 0 && c.aborts == gen)
    });
    if !current {
        let config = config_of(name, &config);
        let rows = client
            .update(
                "SELECT cluster::text FROM tidewatch.log_templates WHERE miner = $1 AND NOT evicted",
                None,
                &[name.into()],
            )
            .unwrap_or_else(|e| spi_error(e));
        let mut clusters = Vec::new();
        for r in rows {
            if let Ok(Some(t)) = r.get::<String>(1) {
                match serde_json::from_str::<Cluster>(&t) {
                    Ok(c) => clusters.push(c),
                    Err(e) => errors::raise(
                        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                        format!("invalid template row of log miner \"{name}\": {e}"),
                        None,
                        Some("Delete the miner's rows from tidewatch.log_templates to start it afresh.".into()),
                    ),
                }
            }
        }
        let miner = Miner::from_clusters(config, clusters);
        MINERS.with(|m| {
            m.borrow_mut().insert(
                name.to_string(),
                Cached {
                    miner,
                    version,
                    checked_lxid: lx,
                    aborts: gen,
                    by_owner,
                },
            )
        });
    } else {
        MINERS.with(|m| {
            if let Some(c) = m.borrow_mut().get_mut(name) {
                c.checked_lxid = lx;
                c.aborts = gen;
                c.by_owner = by_owner;
            }
        });
    }
    true
}

/// Run `f` on the backend's current copy of the miner, under its lock.
pub fn with_miner<R>(client: &mut SpiClient<'_>, name: &str, f: impl FnOnce(&mut Miner) -> R) -> R {
    if !lock_and_load(client, name, false) {
        unknown_miner(name);
    }
    MINERS.with(|m| {
        let mut map = m.borrow_mut();
        match map.get_mut(name) {
            Some(c) => f(&mut c.miner),
            None => unknown_miner(name),
        }
    })
}

/// Mine one line into the named miner of a log monitor (loading it under its lock, as the
/// extension's owner, on the first line of a transaction); returns its template id. Changes stay
/// in memory until [`persist`].
pub fn mine_one(name: &str, message: &str) -> u64 {
    if !is_fresh(name, true) {
        let found = crate::definer::as_owner(|| {
            Spi::connect_mut(|client| lock_and_load(client, name, true))
        });
        if !found {
            unknown_miner(name);
        }
    }
    MINERS
        .with(|m| {
            m.borrow_mut()
                .get_mut(name)
                .map(|c| c.miner.add_id(message))
        })
        .unwrap_or_else(|| unknown_miner(name))
}

/// Per-cluster first/last time seen in a batch of lines.
#[derive(Default, Clone, Copy)]
pub struct Seen {
    pub first: i64,
    pub last: i64,
}

impl Seen {
    pub fn at(t: i64) -> Self {
        Seen { first: t, last: t }
    }
    pub fn add(&mut self, t: i64) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
    }
}

/// Write what the miner changed since the last call: new and changed templates, counts and
/// last-seen times, evictions, and the miner's version (bumped when templates changed, so that
/// other backends reload). `seen` gives the times of the lines per cluster (µs since
/// 2000-01-01, PostgreSQL's epoch). Returns the ids of the clusters created by this batch.
pub fn persist(
    client: &mut SpiClient<'_>,
    name: &str,
    seen: &HashMap<u64, Seen>,
    lines: i64,
) -> Vec<u64> {
    let (changes, rows) = MINERS.with(|m| {
        let mut map = m.borrow_mut();
        let Some(c) = map.get_mut(name) else {
            unknown_miner(name)
        };
        let changes = c.miner.take_changes();
        let counts: HashMap<u64, u64> = changes.counts.iter().copied().collect();
        let mut ids: Vec<u64> = changes.changed.clone();
        ids.extend(counts.keys().copied());
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<(
            i64,
            Option<String>,
            Option<serde_json::Value>,
            i64,
            i64,
            i64,
        )> = ids
            .iter()
            .filter_map(|id| {
                let cl = c.miner.cluster(*id)?;
                let s = seen.get(id).copied().unwrap_or_default();
                let structural = changes.changed.binary_search(id).is_ok();
                Some((
                    *id as i64,
                    structural.then(|| cl.template()),
                    if structural {
                        serde_json::to_value(cl).ok()
                    } else {
                        None
                    },
                    counts.get(id).copied().unwrap_or(0) as i64,
                    s.first,
                    s.last,
                ))
            })
            .collect();
        (changes, rows)
    });
    let structural = !changes.changed.is_empty() || !changes.evicted.is_empty();
    if rows.is_empty() && !structural && lines == 0 {
        return Vec::new();
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let templates: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
    let clusters: Vec<Option<pgrx::JsonB>> =
        rows.iter().map(|r| r.2.clone().map(pgrx::JsonB)).collect();
    let counts: Vec<i64> = rows.iter().map(|r| r.3).collect();
    let firsts: Vec<i64> = rows.iter().map(|r| r.4).collect();
    let lasts: Vec<i64> = rows.iter().map(|r| r.5).collect();
    let evicted: Vec<i64> = changes.evicted.iter().map(|&e| e as i64).collect();
    // Polymorphic and variadic built-ins are schema-qualified in the SQL of the log path: it runs
    // under the caller's search_path (a row trigger, log_parse), where a function in another
    // schema matching the argument types exactly would win over pg_catalog's.
    // One statement: upsert touched templates (a changed one brings its template and cluster),
    // mark evicted ones, and count lines and bump the version on the miner's row. Written as the
    // extension's owner: templates are written by the miner only (PUBLIC may not write them by
    // hand); the caller was checked to see the miner when it was loaded (lock_and_load).
    let new_rows = crate::definer::as_owner(|| {
        client
        .update(
            "WITH t AS (
                 SELECT * FROM ROWS FROM (pg_catalog.unnest($2::bigint[]), pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::jsonb[]),
                                         pg_catalog.unnest($5::bigint[]), pg_catalog.unnest($6::bigint[]), pg_catalog.unnest($7::bigint[]))
                     AS t(id, template, cluster, n, first_us, last_us)),
             up AS (
                 INSERT INTO tidewatch.log_templates AS lt (miner, id, template, first_seen, last_seen, count, cluster)
                 SELECT $1, t.id, coalesce(t.template, ''), tidewatch._pg_us(t.first_us), tidewatch._pg_us(t.last_us),
                        t.n, coalesce(t.cluster, '{}')
                 FROM t
                 ON CONFLICT (miner, id) DO UPDATE SET
                     template = CASE WHEN excluded.cluster = '{}' THEN lt.template ELSE excluded.template END,
                     cluster = CASE WHEN excluded.cluster = '{}' THEN lt.cluster ELSE excluded.cluster END,
                     count = lt.count + excluded.count,
                     first_seen = least(lt.first_seen, excluded.first_seen),
                     last_seen = greatest(lt.last_seen, excluded.last_seen),
                     evicted = false
                 RETURNING lt.id, (xmax = 0) AS inserted),
             ev AS (
                 UPDATE tidewatch.log_templates SET evicted = true WHERE miner = $1 AND id = ANY ($8))
             , mv AS (
                 UPDATE tidewatch.log_miners SET lines = lines + $9,
                        version = version + CASE WHEN $10 THEN 1 ELSE 0 END, updated_at = now()
                 WHERE name = $1 RETURNING version)
             SELECT (SELECT version FROM mv), array(SELECT id FROM up WHERE inserted ORDER BY id)",
            None,
            &[
                name.into(),
                ids.into(),
                templates.into(),
                clusters.into(),
                counts.into(),
                firsts.into(),
                lasts.into(),
                evicted.into(),
                lines.into(),
                structural.into(),
            ],
        )
        .unwrap_or_else(|e| spi_error(e))
    });
    let (version, inserted) = new_rows
        .into_iter()
        .next()
        .map(|r| {
            (
                r.get::<i64>(1).ok().flatten(),
                r.get::<Vec<i64>>(2).ok().flatten().unwrap_or_default(),
            )
        })
        .unwrap_or((None, Vec::new()));
    if let Some(v) = version {
        MINERS.with(|m| {
            if let Some(c) = m.borrow_mut().get_mut(name) {
                c.version = v;
            }
        });
    }
    inserted.into_iter().map(|i| i as u64).collect()
}

/// Microseconds since 2000-01-01 (PostgreSQL's timestamp epoch) of now().
pub fn now_us() -> i64 {
    // SAFETY: reads the transaction start time.
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

/// Template of a log line by the named miner (stored in tidewatch.log_templates): the id, the
/// template, the parameters and whether the line opened a new template.
#[pg_extern(volatile)]
fn log_parse(
    message: Option<&str>,
    miner: default!(Option<&str>, "'default'"),
) -> TableIterator<
    'static,
    (
        name!(template_id, i64),
        name!(template, String),
        name!(parameters, Vec<String>),
        name!(is_new, bool),
    ),
> {
    let miner = errors::required(miner, "miner");
    let Some(message) = message else {
        return TableIterator::new(std::iter::empty());
    };
    let m: Match = Spi::connect_mut(|client| {
        let m = with_miner(client, miner, |mm| mm.add(message));
        let t = now_us();
        let seen = HashMap::from([(m.cluster_id, Seen::at(t))]);
        persist(client, miner, &seen, 1);
        m
    });
    TableIterator::once((m.cluster_id as i64, m.template, m.parameters, m.is_new))
}

/// The body of mine_logs: mine every row of `relation` (its message column as text, its time
/// column, when given, as timestamptz) into the miner, with NOTICE progress, and return per
/// template of this run its lines and times. The caller checks the columns' types.
#[pg_extern(volatile)]
fn _mine_query(
    relation: pgrx::PgRelation,
    message_column: &str,
    time_column: Option<&str>,
    miner: &str,
    total: i64,
) -> TableIterator<
    'static,
    (
        name!(template_id, i64),
        name!(template, String),
        name!(lines, i64),
        name!(first_seen, TimestampWithTimeZone),
        name!(last_seen, TimestampWithTimeZone),
        name!(is_new, bool),
    ),
> {
    const BATCH: i64 = 10_000;
    let time = time_column.map_or_else(
        || "NULL::timestamptz".to_string(),
        |t| format!("{}::timestamptz", pgrx::spi::quote_identifier(t)),
    );
    let query = format!(
        "SELECT {}::text, {time} FROM {}",
        pgrx::spi::quote_identifier(message_column),
        pgrx::spi::quote_qualified_identifier(relation.namespace(), relation.name())
    );
    drop(relation);
    let now = now_us();
    let (stats, templates, created) = Spi::connect_mut(|client| {
        if !lock_and_load(client, miner, false) {
            unknown_miner(miner);
        }
        let mut seen: HashMap<u64, Seen> = HashMap::new();
        let mut lines: HashMap<u64, i64> = HashMap::new();
        let mut done: i64 = 0;
        let mut next_notice = 100_000.max(total / 10);
        let mut cursor = client.open_cursor(&query, &[]);
        loop {
            let batch = cursor.fetch(BATCH).unwrap_or_else(|e| spi_error(e));
            let n = batch.len();
            if n == 0 {
                break;
            }
            MINERS.with(|m| {
                let mut map = m.borrow_mut();
                let Some(c) = map.get_mut(miner) else {
                    unknown_miner(miner)
                };
                for row in batch {
                    let Ok(Some(msg)) = row.get::<&str>(1) else {
                        continue;
                    };
                    let t = row
                        .get::<TimestampWithTimeZone>(2)
                        .ok()
                        .flatten()
                        .map_or(now, |ts| ts.into_inner());
                    let id = c.miner.add_id(msg);
                    seen.entry(id)
                        .and_modify(|s| s.add(t))
                        .or_insert_with(|| Seen::at(t));
                    *lines.entry(id).or_default() += 1;
                }
            });
            done += n as i64;
            if done >= next_notice {
                pgrx::notice!(
                    "mine_logs: {done} of {total} rows mined, {} templates",
                    MINERS.with(|m| m.borrow().get(miner).map_or(0, |c| c.miner.len()))
                );
                next_notice += 100_000.max(total / 10);
            }
        }
        drop(cursor);
        let total_lines: i64 = lines.values().sum();
        let created = persist(client, miner, &seen, total_lines);
        let templates: HashMap<u64, String> = MINERS.with(|m| {
            m.borrow().get(miner).map_or_else(HashMap::new, |c| {
                lines
                    .keys()
                    .filter_map(|id| c.miner.cluster(*id).map(|cl| (*id, cl.template())))
                    .collect()
            })
        });
        let stats: Vec<(u64, i64, Seen)> = lines
            .into_iter()
            .map(|(id, n)| (id, n, seen.get(&id).copied().unwrap_or_default()))
            .collect();
        (stats, templates, created)
    });
    let mut out: Vec<_> = stats
        .into_iter()
        .map(|(id, n, s)| {
            (
                id as i64,
                templates
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "(evicted)".into()),
                n,
                tstz(s.first),
                tstz(s.last),
                created.binary_search(&id).is_ok(),
            )
        })
        .collect();
    out.sort_by_key(|r| (-r.2, r.0));
    TableIterator::new(out)
}

fn tstz(us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(us).unwrap_or_else(|_| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "log time out of range".into(),
            None,
            None,
        )
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn parse(line: &str) -> (i64, String, bool) {
        let r = Spi::get_three_with_args::<i64, String, bool>(
            "SELECT template_id, template, is_new FROM tidewatch.log_parse($1)",
            &[line.into()],
        )
        .unwrap();
        (r.0.unwrap(), r.1.unwrap(), r.2.unwrap())
    }

    #[pg_test]
    fn log_parse_keeps_templates_in_the_table() {
        let a = parse("Connection to 10.0.0.12:5432 timed out after 30s");
        let b = parse("Connection to 10.0.0.31:5432 timed out after 12s");
        let c = parse("Loaded 1043 rows into staging.orders");
        assert!(a.2 && !b.2 && c.2);
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, c.0);
        assert!(b.1.contains("<*>") && b.1.contains("timed out"), "{}", b.1);
        let params = Spi::get_one::<Vec<String>>(
            "SELECT parameters FROM tidewatch.log_parse('Connection to 10.9.9.9:6543 timed out after 7s')",
        )
        .unwrap()
        .unwrap();
        assert!(params.iter().any(|p| p.contains("10.9.9.9")), "{params:?}");
        let row = Spi::get_two::<i64, String>(&format!(
            "SELECT count, template FROM tidewatch.log_templates WHERE miner = 'default' AND id = {}",
            a.0
        ))
        .unwrap();
        assert_eq!(row.0, Some(3));
        assert_eq!(row.1.as_deref(), Some(b.1.as_str()));
        assert_eq!(
            Spi::get_one::<i64>("SELECT lines FROM tidewatch.log_miners WHERE name = 'default'")
                .unwrap(),
            Some(4)
        );
        // A NULL line gives no row and changes nothing.
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM tidewatch.log_parse(NULL)").unwrap(),
            Some(0)
        );
    }

    #[pg_test]
    fn a_rolled_back_template_is_forgotten() {
        Spi::run(
            "DO $$ BEGIN
                 PERFORM tidewatch.log_parse('Worker pool exhausted on node alpha');
                 RAISE EXCEPTION 'roll back';
             EXCEPTION WHEN raise_exception THEN NULL;
             END $$",
        )
        .unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM tidewatch.log_templates").unwrap(),
            Some(0)
        );
        let (id, _, is_new) = parse("Worker pool exhausted on node alpha");
        assert!(is_new);
        assert_eq!(
            Spi::get_one::<i64>(&format!(
                "SELECT count FROM tidewatch.log_templates WHERE id = {id}"
            ))
            .unwrap(),
            Some(1)
        );
    }

    #[pg_test]
    fn mine_logs_counts_every_line_once() {
        Spi::run(
            "CREATE TABLE etl (ts timestamptz NOT NULL, msg text);
             INSERT INTO etl SELECT timestamptz '2026-03-01' + i * interval '1 second',
                 CASE i % 3 WHEN 0 THEN format('Loaded %s rows into staging.t%s', i, i % 7)
                            WHEN 1 THEN format('Connection to 10.0.%s.%s:5432 refused', i % 200, i % 50)
                            ELSE CASE WHEN i % 100 = 2 THEN NULL ELSE format('Job %s finished in %s s', i, i % 60) END END
             FROM generate_series(0, 2999) i",
        )
        .unwrap();
        let (templates, lines, new) = Spi::get_three::<i64, i64, i64>(
            "SELECT count(*), sum(lines)::bigint, count(*) FILTER (WHERE is_new)
             FROM tidewatch.mine_logs('etl', 'msg', 'ts', miner => 'etl')",
        )
        .unwrap();
        assert_eq!(lines, Some(2990));
        assert_eq!(templates, new);
        assert_eq!(templates, Some(3));
        let t = Spi::get_two::<String, String>(
            "SELECT min(first_seen)::text, max(last_seen)::text FROM tidewatch.log_templates WHERE miner = 'etl'",
        )
        .unwrap();
        assert_eq!(t.0.as_deref(), Some("2026-03-01 00:00:00+00"));
        assert_eq!(t.1.as_deref(), Some("2026-03-01 00:49:59+00"));
        // A second run finds the same templates, none new, and doubles the counts.
        let again = Spi::get_two::<i64, i64>(
            "SELECT count(*) FILTER (WHERE is_new), sum(lines)::bigint FROM tidewatch.mine_logs('etl', 'msg', 'ts', miner => 'etl')",
        )
        .unwrap();
        assert_eq!(again, (Some(0), Some(2990)));
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT sum(count)::bigint FROM tidewatch.log_templates WHERE miner = 'etl'"
            )
            .unwrap(),
            Some(5980)
        );
    }

    #[pg_test]
    fn log_parse_and_mine_logs_learn_the_same_templates() {
        // One code path: lines given one by one to log_parse, and the same lines in the same
        // order mined by mine_logs, end in the same templates with the same counts.
        Spi::run(
            "CREATE TABLE mixed (ts timestamptz NOT NULL, msg text);
             INSERT INTO mixed SELECT timestamptz '2026-03-01' + i * interval '1 second',
                 CASE i % 6 WHEN 0 THEN format('Loaded %s rows into staging.t%s in %s ms', i, i % 7, i % 90)
                            WHEN 1 THEN format('Connection to db%s.example.com:5432 refused (attempt %s)', i % 9, i % 4)
                            WHEN 2 THEN format('user=u%s action=login result=%s', i % 13, CASE WHEN i % 5 = 0 THEN 'FAILED' ELSE 'ok' END)
                            WHEN 3 THEN format('GET /api/v1/items/%s HTTP/1.1 200 %s', md5(i::text), i % 1000)
                            WHEN 4 THEN format('Task %s changed state from RUNNING to %s', i, CASE WHEN i % 4 = 0 THEN 'FAILED' ELSE 'DONE' END)
                            ELSE format('block blk_%s replicated to %s nodes', i * 7919, 1 + i % 3) END
             FROM generate_series(0, 1199) i;
             SELECT tidewatch.create_log_miner('one');
             SELECT tidewatch.create_log_miner('bulk');",
        )
        .unwrap();
        Spi::run(
            "SELECT count(*) FROM (SELECT tidewatch.log_parse(msg, 'one') FROM (SELECT msg FROM mixed ORDER BY ts) s) x;
             SELECT count(*) FROM tidewatch.mine_logs('mixed', 'msg', 'ts', miner => 'bulk');",
        )
        .unwrap();
        let templates = |miner: &str| {
            Spi::get_one::<String>(&format!(
                "SELECT string_agg(template || ' x' || count, E'\\n' ORDER BY template, count)
                 FROM tidewatch.log_templates WHERE miner = '{miner}'"
            ))
            .unwrap()
            .unwrap_or_default()
        };
        let (one, bulk) = (templates("one"), templates("bulk"));
        assert!(one.lines().count() >= 6, "{one}");
        assert_eq!(one, bulk);
    }

    #[pg_test(error = "log miner \"nope\" does not exist")]
    fn unknown_miner_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.log_parse('x', 'nope')").unwrap();
    }

    #[pg_test(error = "log miner setting out of range: {\"sim_threshold\":2}")]
    fn bad_miner_settings_are_rejected() {
        Spi::run("SELECT tidewatch.create_log_miner('m', '{\"sim_threshold\": 2}')").unwrap();
    }

    #[pg_test]
    fn a_small_cap_evicts_templates_but_keeps_their_rows() {
        Spi::run("SELECT tidewatch.create_log_miner('tiny', '{\"max_clusters\": 2}')").unwrap();
        for line in [
            "alpha service started",
            "Beta queue drained",
            "Gamma cache flushed",
            "Delta index rebuilt",
        ] {
            Spi::run_with_args(
                "SELECT * FROM tidewatch.log_parse($1, 'tiny')",
                &[line.into()],
            )
            .unwrap();
        }
        let (all, live) = Spi::get_two::<i64, i64>(
            "SELECT count(*), count(*) FILTER (WHERE NOT evicted) FROM tidewatch.log_templates WHERE miner = 'tiny'",
        )
        .unwrap();
        assert_eq!((all, live), (Some(4), Some(2)));
    }
}
