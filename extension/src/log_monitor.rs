//! Real-time log monitors: a BEFORE INSERT row trigger gives each line its template (the
//! monitor's miner) and error class (its ruleset), writes them into the row when the monitor has
//! template/category columns, and counts lines per minute, template and class in backend memory;
//! an AFTER INSERT statement trigger writes the counts to `tidewatch.log_counts`, the miner's
//! changes to `tidewatch.log_templates`, new templates as events, and checks the error classes
//! for bursts (sql/logs.sql). Works for INSERT and COPY in any batch size.
//!
//! The row trigger is a plain version-1 C function: at a million lines per COPY, pgrx's trigger
//! wrapper and heap-tuple helpers cost more than mining the line.

use crate::errors;
use crate::log_miner::{self, Seen};
use crate::logs::{self, StatementKey};
use pgrx::prelude::*;
use pgrx::{IntoDatum, PgSqlErrorCode};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A monitor as the row trigger needs it, read once per statement.
struct Monitor {
    /// The monitored table and its columns' names.
    relid: pg_sys::Oid,
    names: [Option<String>; 4],
    /// Where those columns are in each relation the row trigger fired on in this statement: the
    /// table, or its partitions (row triggers are cloned onto them, and a partition made after a
    /// column was dropped from its parent numbers its columns differently).
    by_rel: RefCell<Vec<(pg_sys::Oid, Cols)>>,
    miner: String,
    ruleset: String,
}

/// Attribute numbers of a log monitor's columns in one relation.
#[derive(Clone, Copy)]
struct Cols {
    message: i32,
    time: Option<(i32, pg_sys::Oid)>,
    template: Option<i32>,
    category: Option<i32>,
}

/// What a statement's rows left to write: lines per (minute, template, class), and the times
/// each template was seen.
#[derive(Default)]
struct Pending {
    key: StatementKey,
    counts: HashMap<(i64, u64, std::borrow::Cow<'static, str>), (u64, &'static str)>,
    seen: HashMap<u64, Seen>,
    lines: i64,
    skipped: i64,
}

thread_local! {
    static MONITORS: RefCell<HashMap<String, (StatementKey, Rc<Monitor>)>> = RefCell::new(HashMap::new());
    static PENDING: RefCell<Vec<(String, Pending)>> = const { RefCell::new(Vec::new()) };
}

const MINUTE_US: i64 = 60_000_000;

fn monitor(name: &str, key: StatementKey) -> Rc<Monitor> {
    // Looked up by &str: no allocation per row.
    if let Some(m) = MONITORS.with(|m| {
        m.borrow()
            .get(name)
            .filter(|(k, _)| k.same_statement(&key))
            .map(|(_, m)| m.clone())
    }) {
        return m;
    }
    // Read as the extension's owner: the inserting role may hold INSERT on the table and not
    // SELECT, and the policies hide the monitor from such a role (definer.rs).
    let m = crate::definer::as_owner(|| load_monitor(name));
    MONITORS.with(|ms| ms.borrow_mut().insert(name.to_string(), (key, m.clone())));
    m
}

/// The monitor `name` from tidewatch.log_monitors, checked.
fn load_monitor(name: &str) -> Rc<Monitor> {
    let row = Spi::connect(|client| {
        client
            .select(
                "SELECT m.relid::oid, m.miner, m.ruleset, m.message_column::text, m.time_column::text,
                        m.template_column::text, m.category_column::text
                 FROM tidewatch.log_monitors m WHERE m.name = $1",
                None,
                &[name.into()],
            )
            .ok()
            .and_then(|t| t.into_iter().next())
            .map(|r| {
                (
                    r.get::<pg_sys::Oid>(1).ok().flatten(),
                    r.get::<String>(2).ok().flatten(),
                    r.get::<String>(3).ok().flatten(),
                    [
                        r.get::<String>(4).ok().flatten(),
                        r.get::<String>(5).ok().flatten(),
                        r.get::<String>(6).ok().flatten(),
                        r.get::<String>(7).ok().flatten(),
                    ],
                )
            })
    });
    let Some((Some(relid), Some(miner), Some(ruleset), names)) = row else {
        gone(name)
    };
    // The message column's type may have changed since log_monitor() checked it (ALTER TABLE);
    // the trigger reads it as a varlena, so check again (once per statement).
    let checked = Spi::get_one_with_args::<String>(
        "SELECT tidewatch._log_message_type(m.relid, m.message_column)::text \
         FROM tidewatch.log_monitors m WHERE m.name = $1",
        &[name.into()],
    );
    if let Err(e) = checked {
        errors::raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!("log monitor \"{name}\": {e}"),
            Some("The message column's type changed after log_monitor() was called.".into()),
            Some(
                "ALTER the column back to text, or create the monitor again on a text column."
                    .into(),
            ),
        );
    }
    let m = Monitor {
        relid,
        names,
        by_rel: RefCell::new(Vec::new()),
        miner,
        ruleset,
    };
    // The monitored table itself (a plain table: its rows fire the trigger there).
    let Some(cols) = columns_in(&m, relid) else {
        gone(name)
    };
    m.by_rel.borrow_mut().push((relid, cols));
    Rc::new(m)
}

fn gone(name: &str) -> ! {
    errors::raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("log monitor \"{name}\" does not exist or its message column is gone"),
        None,
        Some(
            "Drop the trigger with tidewatch.unmonitor_logs(), or create the monitor again.".into(),
        ),
    )
}

/// Where the monitor's columns are in relation `rel` (None: its message column is not there).
fn columns_in(m: &Monitor, rel: pg_sys::Oid) -> Option<Cols> {
    let [message, time, template, category] = m.names.clone();
    let row = Spi::connect(|client| {
        client
            .select(
                "SELECT (SELECT a.attnum::int FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $2 AND NOT a.attisdropped),
                        (SELECT a.attnum::int FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $3 AND NOT a.attisdropped),
                        (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $3 AND NOT a.attisdropped),
                        (SELECT a.attnum::int FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $4 AND NOT a.attisdropped),
                        (SELECT a.attnum::int FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $5 AND NOT a.attisdropped)",
                None,
                &[rel.into(), message.into(), time.into(), template.into(), category.into()],
            )
            .ok()
            .and_then(|t| t.into_iter().next())
            .map(|r| {
                (
                    r.get::<i32>(1).ok().flatten(),
                    r.get::<i32>(2).ok().flatten(),
                    r.get::<pg_sys::Oid>(3).ok().flatten(),
                    r.get::<i32>(4).ok().flatten(),
                    r.get::<i32>(5).ok().flatten(),
                )
            })
    });
    let (Some(message), time, time_type, template, category) = row? else {
        return None;
    };
    Some(Cols {
        message,
        time: time.zip(time_type),
        template,
        category,
    })
}

/// The monitor's columns in `rel`, the relation its row trigger fired on: its table or one of its
/// partitions. Any other relation is refused: the trigger mines and counts as the extension's
/// owner, so attached by hand to another table it would let any role write that monitor's
/// templates, counts and bursts.
fn check_relation(name: &str, m: &Monitor, rel: pg_sys::Oid) -> Cols {
    if let Some((_, cols)) = m.by_rel.borrow().iter().find(|(r, _)| *r == rel) {
        return *cols;
    }
    let cols = crate::definer::as_owner(|| {
        let ours = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_partition_ancestors($1::oid::regclass) a WHERE a.relid = $2::oid::regclass)",
            &[rel.into(), m.relid.into()],
        );
        matches!(ours, Ok(Some(true))).then(|| columns_in(m, rel))
    });
    let Some(cols) = cols else {
        // SAFETY: plain catalog lookups of two relation names (NULL when gone: shown as an oid).
        let show = |oid: pg_sys::Oid| unsafe {
            let n = pg_sys::get_rel_name(oid);
            if n.is_null() {
                format!("{}", u32::from(oid))
            } else {
                std::ffi::CStr::from_ptr(n).to_string_lossy().into_owned()
            }
        };
        errors::raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "the trigger of log monitor \"{name}\" fired on {}, not on its table {}",
                show(rel),
                show(m.relid)
            ),
            None,
            Some("tidewatch.log_monitor() attaches this trigger; do not attach tidewatch._log_monitor_row by hand.".into()),
        );
    };
    let Some(cols) = cols else { gone(name) };
    m.by_rel.borrow_mut().push((rel, cols));
    cols
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_log_monitor_row() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The BEFORE INSERT FOR EACH ROW trigger of a log monitor (argument: the monitor's name).
///
/// # Safety
/// Only for fmgr, as a row trigger declared in sql/logs.sql.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_log_monitor_row(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo; the context is checked to be TriggerData before use.
    let td = unsafe { (*fcinfo).context } as *mut pg_sys::TriggerData;
    // SAFETY: td is non-null here; reading its node tag is how PostgreSQL checks a trigger context.
    if td.is_null() || unsafe { (*td).type_ } != pg_sys::NodeTag::T_TriggerData {
        errors::raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "tidewatch log monitor function called outside a trigger".into(),
            None,
            None,
        );
    }
    // SAFETY: a TriggerData from the executor, valid for this call; the name stays valid for the
    // call (it is the trigger's argument in the relcache).
    let (tuple, tupdesc, rel, name) = unsafe {
        let trig = &*(*td).tg_trigger;
        if trig.tgnargs < 1 || trig.tgargs.is_null() {
            errors::raise(
                PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "the log monitor trigger needs the monitor name as argument".into(),
                None,
                None,
            );
        }
        let name = std::ffi::CStr::from_ptr(*trig.tgargs)
            .to_str()
            .unwrap_or_default();
        (
            (*td).tg_trigtuple,
            (*(*td).tg_relation).rd_att,
            (*(*td).tg_relation).rd_id,
            name,
        )
    };
    let key = StatementKey::current();
    let m = monitor(name, key);
    let at = check_relation(name, &m, rel);
    // SAFETY: attribute numbers come from pg_attribute of this relation; tuple and tupdesc match.
    let message = unsafe { get_attr::<String>(tuple, tupdesc, at.message) };
    let Some(message) = message else {
        PENDING.with(|p| pending(&mut p.borrow_mut(), name, key).skipped += 1);
        return pg_sys::Datum::from(tuple);
    };
    let t = match at.time {
        // SAFETY: as above; timestamp and timestamptz are int8 µs since 2000-01-01.
        Some((att, typ)) if typ == pg_sys::TIMESTAMPTZOID || typ == pg_sys::TIMESTAMPOID => {
            // SAFETY: att is an attribute of tupdesc whose type is timestamp[tz], an int8 datum.
            unsafe { get_attr::<i64>(tuple, tupdesc, att) }.unwrap_or_else(log_miner::now_us)
        }
        // SAFETY: as above; a date is int4 days since 2000-01-01.
        Some((att, typ)) if typ == pg_sys::DATEOID => {
            // SAFETY: att is an attribute of tupdesc whose type is date, an int4 datum.
            unsafe { get_attr::<i32>(tuple, tupdesc, att) }
                .map_or_else(log_miner::now_us, |d| i64::from(d) * 86_400_000_000)
        }
        _ => log_miner::now_us(),
    };
    let (id, class) = record_line(name, key, &m, t, &message);
    let mut cols: Vec<i32> = Vec::with_capacity(2);
    let mut values: Vec<pg_sys::Datum> = Vec::with_capacity(2);
    if let Some(att) = at.template {
        cols.push(att);
        values.push((id as i64).into_datum().unwrap_or(pg_sys::Datum::from(0)));
    }
    if let Some(att) = at.category {
        cols.push(att);
        values.push(
            class
                .category
                .into_datum()
                .unwrap_or(pg_sys::Datum::from(0)),
        );
    }
    if cols.is_empty() {
        return pg_sys::Datum::from(tuple);
    }
    let nulls = vec![false; cols.len()];
    // SAFETY: cols are attribute numbers of this tuple descriptor with values of their types
    // (checked by log_monitor when the monitor was created: bigint and text).
    let new = unsafe {
        pg_sys::heap_modify_tuple_by_cols(
            tuple,
            tupdesc,
            cols.len() as i32,
            cols.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr().cast_mut(),
        )
    };
    pg_sys::Datum::from(new)
}

/// Mine and classify one line at time `t` (µs since 2000-01-01) and count it in this statement's
/// pending counts of the monitor.
fn record_line(
    name: &str,
    key: StatementKey,
    m: &Monitor,
    t: i64,
    message: &str,
) -> (u64, logs::Class) {
    let id = log_miner::mine_one(&m.miner, message);
    let class = logs::classify_with(&logs::compiled_at(&m.ruleset, key, true), message);
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let pend = pending(&mut p, name, key);
        let bucket = t.div_euclid(MINUTE_US) * MINUTE_US;
        let e = pend
            .counts
            .entry((bucket, id, class.category.clone()))
            .or_insert((0, class.severity));
        e.0 += 1;
        pend.seen
            .entry(id)
            .and_modify(|s| s.add(t))
            .or_insert_with(|| Seen::at(t));
        pend.lines += 1;
    });
    (id, class)
}

/// The async side of a log monitor: the decoder hands over the lines of committed transactions
/// (their times, NULL for none, and messages); they are mined, classified and counted as the row
/// trigger does, for `_log_monitor_flush` in the same statement. Returns the lines counted.
#[pg_extern(volatile)]
fn _log_monitor_ingest(
    monitor_name: &str,
    ts: Vec<Option<TimestampWithTimeZone>>,
    messages: Vec<Option<String>>,
) -> i64 {
    let key = StatementKey::current();
    let m = monitor(monitor_name, key);
    let mut lines = 0i64;
    for (t, message) in ts.into_iter().zip(messages) {
        let Some(message) = message else {
            PENDING.with(|p| pending(&mut p.borrow_mut(), monitor_name, key).skipped += 1);
            continue;
        };
        let t = t
            .and_then(|t| t.into_datum())
            .map_or_else(log_miner::now_us, |d| d.value() as i64);
        record_line(monitor_name, key, &m, t, &message);
        lines += 1;
    }
    lines
}

/// This statement's pending counts of a monitor (those of an earlier, failed statement are
/// dropped: its rows were never inserted).
fn pending<'a>(
    p: &'a mut Vec<(String, Pending)>,
    name: &str,
    key: StatementKey,
) -> &'a mut Pending {
    // A handful of monitors per backend: a list found by name, no allocation per row.
    let i = match p.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            p.push((name.to_string(), Pending::default()));
            p.len() - 1
        }
    };
    let e = &mut p[i].1;
    if !e.key.same_statement(&key) {
        *e = Pending {
            key,
            ..Default::default()
        };
    }
    e
}

/// A column of a heap tuple, None when NULL.
///
/// # Safety
/// `att` is a valid attribute number of `tupdesc`, whose type matches `T`.
unsafe fn get_attr<T: FromDatum>(
    tuple: pg_sys::HeapTuple,
    tupdesc: pg_sys::TupleDesc,
    att: i32,
) -> Option<T> {
    let mut isnull = false;
    // SAFETY: the caller's contract.
    unsafe {
        let d = pg_sys::heap_getattr(tuple, att, tupdesc, &mut isnull);
        T::from_datum(d, isnull)
    }
}

/// The statement side of a log monitor: write the pending counts, the miner's changes and the
/// new templates' events; return, per error class that got lines, the time of its newest line
/// (what the burst check looks at).
#[pg_extern(volatile)]
fn _log_monitor_flush(
    monitor: &str,
) -> TableIterator<'static, (name!(category, String), name!(at, TimestampWithTimeZone))> {
    let key = StatementKey::current();
    let pend = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.iter()
            .position(|(n, _)| n == monitor)
            .map(|i| p.swap_remove(i).1)
    });
    // Only lines mined: a statement whose messages were all NULL mined nothing (and in a fresh
    // session never loaded the miner, which persisting needs).
    let Some(pend) = pend.filter(|p| p.key.same_statement(&key) && p.lines > 0) else {
        return TableIterator::new(Vec::new());
    };
    let miner = monitor_miner(monitor);
    let mut newest: HashMap<String, i64> = HashMap::new();
    let mut buckets = Vec::with_capacity(pend.counts.len());
    let mut ids = Vec::with_capacity(pend.counts.len());
    let mut cats = Vec::with_capacity(pend.counts.len());
    let mut sevs = Vec::with_capacity(pend.counts.len());
    let mut ns = Vec::with_capacity(pend.counts.len());
    let mut rows: Vec<_> = pend.counts.into_iter().collect();
    // Sorted, so that concurrent statements of other monitors update rows in the same order.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for ((bucket, id, cat), (n, sev)) in rows {
        let last = pend.seen.get(&id).map_or(bucket, |s| s.last.max(bucket));
        newest
            .entry(cat.to_string())
            .and_modify(|t| *t = (*t).max(last))
            .or_insert(last);
        buckets.push(bucket);
        ids.push(id as i64);
        cats.push(cat.into_owned());
        sevs.push(sev);
        ns.push(n as i64);
    }
    Spi::connect_mut(|client| {
        let created = log_miner::persist(client, &miner, &pend.seen, pend.lines);
        client
            .update(
                "INSERT INTO tidewatch.log_counts AS c (monitor, bucket, template_id, category, severity, n)
                 SELECT $1, tidewatch._pg_us(b), t, cat, sev, n
                 FROM ROWS FROM (pg_catalog.unnest($2::bigint[]), pg_catalog.unnest($3::bigint[]), pg_catalog.unnest($4::text[]),
                                pg_catalog.unnest($5::text[]), pg_catalog.unnest($6::bigint[])) AS x(b, t, cat, sev, n)
                 ON CONFLICT (monitor, bucket, template_id, category) DO UPDATE SET n = c.n + excluded.n",
                None,
                &[
                    monitor.into(),
                    buckets.into(),
                    ids.into(),
                    cats.into(),
                    sevs.into(),
                    ns.into(),
                ],
            )
            .unwrap_or_else(|e| {
                errors::raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string(), None, None)
            });
        if !created.is_empty() {
            let created: Vec<i64> = created.into_iter().map(|i| i as i64).collect();
            client
                .update(
                    "INSERT INTO tidewatch.events (at, source, name, summary, detail)
                     SELECT t.first_seen, 'log_template', $1,
                            pg_catalog.format('new log template #%s of monitor %s: %s', t.id, $1, pg_catalog.left(t.template, 200)),
                            pg_catalog.jsonb_build_object('monitor', $1, 'miner', t.miner, 'template_id', t.id, 'template', t.template)
                     FROM tidewatch.log_templates t WHERE t.miner = $2 AND t.id = ANY ($3)",
                    None,
                    &[monitor.into(), miner.as_str().into(), created.into()],
                )
                .unwrap_or_else(|e| {
                    errors::raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string(), None, None)
                });
        }
    });
    let mut out: Vec<_> = newest
        .into_iter()
        .filter_map(|(c, t)| TimestampWithTimeZone::try_from(t).ok().map(|t| (c, t)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    TableIterator::new(out)
}

fn monitor_miner(monitor: &str) -> String {
    MONITORS
        .with(|m| m.borrow().get(monitor).map(|(_, m)| m.miner.clone()))
        .unwrap_or_else(|| {
            Spi::get_one_with_args::<String>(
                "SELECT miner FROM tidewatch.log_monitors WHERE name = $1",
                &[monitor.into()],
            )
            .ok()
            .flatten()
            .unwrap_or_else(|| "default".into())
        })
}

extension_sql!(
    r#"
CREATE FUNCTION tidewatch._log_monitor_row() RETURNS trigger
    AS 'MODULE_PATHNAME', 'tidewatch_log_monitor_row' LANGUAGE C;
-- Called by the monitor's statement trigger and the async decoder, both as the extension's owner.
REVOKE EXECUTE ON FUNCTION tidewatch._log_monitor_flush(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tidewatch._log_monitor_ingest(text, timestamptz[], text[]) FROM PUBLIC;
"#,
    name = "log_monitor_row",
    requires = ["logs_catalog", _log_monitor_flush, _log_monitor_ingest]
);

/// The upper tail of a Poisson law at `mu`: P(X >= k), and the largest count still "normal" at
/// the 1e-4 level (the upper edge of the band reported with a burst).
#[pg_extern(immutable, parallel_safe, strict)]
fn _poisson_burst(
    k: i64,
    mu: f64,
) -> TableIterator<'static, (name!(p_value, f64), name!(upper, Option<f64>))> {
    use statrs::distribution::{DiscreteCDF, Poisson};
    let Ok(d) = Poisson::new(mu.max(1e-12)) else {
        return TableIterator::once((1.0, None));
    };
    let p = if k <= 0 { 1.0 } else { d.sf((k - 1) as u64) };
    let upper = Some(d.inverse_cdf(1.0 - 1e-4) as f64);
    TableIterator::once((p.clamp(0.0, 1.0), upper))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup() {
        Spi::run(
            "CREATE TABLE app_logs (ts timestamptz NOT NULL, message text, template_id bigint, category text);
             SELECT tidewatch.create_hypertable('app_logs', 'ts', chunk_time_interval => interval '1 day');
             SELECT tidewatch.log_monitor('app', 'app_logs', 'message');
             -- A quiet day: a few errors an hour.
             INSERT INTO app_logs (ts, message)
             SELECT now() - interval '1 day' + i * interval '1 minute',
                    CASE WHEN i % 60 = 0 THEN format('read timeout after %s ms talking to db-%s', 3000 + i, i % 4)
                         ELSE format('request handled in %s ms', i % 90) END
             FROM generate_series(0, 1379) i;",
        )
        .unwrap();
    }

    #[pg_test]
    fn each_line_gets_its_template_and_class_and_is_counted() {
        setup();
        let (n, tpl, cat) = Spi::get_three::<i64, i64, i64>(
            "SELECT count(*), count(template_id), count(category) FROM app_logs",
        )
        .unwrap();
        assert_eq!((n, tpl, cat), (Some(1380), Some(1380), Some(1380)));
        let classes = Spi::get_one::<String>(
            "SELECT string_agg(category || '=' || n, ' ' ORDER BY category)
             FROM (SELECT category, count(*) AS n FROM app_logs GROUP BY 1) s",
        )
        .unwrap();
        assert_eq!(classes.as_deref(), Some("timeout=23 unknown=1357"));
        // log_counts holds the same lines per class, and the templates are the miner's.
        let counted = Spi::get_one::<i64>(
            "SELECT sum(n)::bigint FROM tidewatch.log_counts WHERE monitor = 'app' AND category = 'timeout'",
        )
        .unwrap();
        assert_eq!(counted, Some(23));
        let same = Spi::get_one::<bool>(
            "SELECT bool_and(t.template IS NOT NULL) FROM app_logs a
             LEFT JOIN tidewatch.log_templates t ON t.miner = 'app' AND t.id = a.template_id",
        )
        .unwrap();
        assert_eq!(same, Some(true));
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM tidewatch.events WHERE source = 'log_template' AND name = 'app'"
            )
            .unwrap(),
            Spi::get_one::<i64>("SELECT count(*) FROM tidewatch.log_templates WHERE miner = 'app'").unwrap()
        );
        // No burst on a quiet day.
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM tidewatch.anomalies WHERE kind = 'log_burst'"
            )
            .unwrap(),
            Some(0)
        );
    }

    #[pg_test]
    fn a_burst_of_timeouts_is_an_episode_that_explain_anomaly_cites() {
        setup();
        Spi::run(
            "INSERT INTO app_logs (ts, message)
             SELECT now() - interval '3 minutes' + i * interval '3 seconds',
                    format('read timeout after %s ms talking to db-%s', 3000 + i, i % 4)
             FROM generate_series(0, 46) i",
        )
        .unwrap();
        let ep = Spi::get_three::<i64, f64, String>(
            "SELECT id, peak_value, detail ->> 'category' FROM tidewatch.anomalies WHERE kind = 'log_burst'",
        )
        .unwrap();
        assert!(ep.1.unwrap() >= 47.0, "{ep:?}");
        assert_eq!(ep.2.as_deref(), Some("timeout"));
        let summary = Spi::get_one::<String>(
            "SELECT summary FROM tidewatch.events WHERE source = 'log_burst'",
        )
        .unwrap()
        .unwrap();
        assert!(
            summary.contains("timeout errors in the 5 minutes before"),
            "{summary}"
        );
        // An anomaly of a metric at the same time cites the burst.
        Spi::run(
            "CREATE TABLE metrics (ts timestamptz NOT NULL, v float8);
             SELECT tidewatch.monitor('lat', 'metrics', 'v', time_column => 'ts');
             INSERT INTO tidewatch.anomalies (id, monitor, started_at, ended_at, peak_at, peak_value, score, severity, kind)
                 VALUES (7001, 'lat', now() - interval '1 minute', now(), now() - interval '1 minute', 900, 0.99, 'critical', 'spike')",
        )
        .unwrap();
        let cited = Spi::get_one::<String>(
            "SELECT reason FROM tidewatch.explain_anomaly(7001) WHERE evidence ->> 'source' = 'log_burst'",
        )
        .unwrap()
        .unwrap();
        assert!(cited.contains("timeout errors"), "{cited}");
    }

    #[pg_test]
    fn copy_sized_batches_and_unmonitor() {
        setup();
        Spi::run("SELECT tidewatch.unmonitor_logs('app')").unwrap();
        Spi::run("INSERT INTO app_logs (ts, message) VALUES (now(), 'late line')").unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM app_logs WHERE template_id IS NULL").unwrap(),
            Some(1)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tidewatch_logs_%' AND NOT tgisinternal").unwrap(),
            Some(0)
        );
    }

    #[pg_test(error = "the template column \"template_id\" of \"public.bad\" must be bigint")]
    fn a_template_column_of_the_wrong_type_is_refused() {
        Spi::run(
            "CREATE TABLE bad (ts timestamptz NOT NULL, message text, template_id integer);
             SELECT tidewatch.log_monitor('bad', 'bad', 'message', 'ts')",
        )
        .unwrap();
    }

    #[pg_test(
        error = "the message column \"message\" of \"public.fixed\" has the fixed-length type name"
    )]
    fn a_fixed_length_message_column_is_refused() {
        Spi::run(
            "CREATE TABLE fixed (ts timestamptz NOT NULL, message name);
             SELECT tidewatch.log_monitor('fixed', 'fixed', 'message', 'ts')",
        )
        .unwrap();
    }

    #[pg_test]
    fn poisson_tail_matches_the_formula() {
        // P(X >= 3) for X ~ Poisson(1) = 1 - e^-1 (1 + 1 + 1/2).
        let p = Spi::get_one::<f64>("SELECT p_value FROM tidewatch._poisson_burst(3, 1.0)")
            .unwrap()
            .unwrap();
        let want = 1.0 - (-1.0f64).exp() * 2.5;
        assert!((p - want).abs() < 1e-12, "{p} vs {want}");
    }
}
