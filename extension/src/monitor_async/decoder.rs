//! The decoder of one database's async monitors: a background worker that the scheduler starts.
//! Each poll reads what committed since the last one and scores it: [`poll`] = flush the WAL →
//! load the monitors → [`read_slot`] → [`group_by_series`] → [`apply`] (with
//! [`record_positions`] in the same transaction) → [`advance_slot`].

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB};
use std::collections::HashMap;
use std::time::Duration;

use super::wire::{decode_labels, more_values, parse_block};
use super::{Spec, MONITOR_NAPTIME_MS};
use crate::scheduler::select_one;

/// At most this many blocks per peek, so that one poll stays short under a backlog.
const BLOCKS_PER_POLL: i64 = 64;

/// A label text as `to_jsonb` would render the column's value (numbers and booleans as such).
fn label_json(text: Option<&String>, typ: u32) -> serde_json::Value {
    let Some(t) = text else {
        return serde_json::Value::Null;
    };
    let o = pg_sys::Oid::from(typ);
    let numeric = [
        pg_sys::INT2OID,
        pg_sys::INT4OID,
        pg_sys::INT8OID,
        pg_sys::FLOAT4OID,
        pg_sys::FLOAT8OID,
        pg_sys::NUMERICOID,
    ];
    if numeric.contains(&o) {
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(t) {
            return serde_json::Value::Number(n);
        }
    } else if o == pg_sys::BOOLOID {
        return serde_json::Value::Bool(t == "t");
    } else if o == pg_sys::JSONBOID || o == pg_sys::JSONOID {
        if let Ok(v) = serde_json::from_str(t) {
            return v;
        }
    }
    serde_json::Value::String(t.clone())
}

#[derive(Default)]
struct Batch {
    ts: Vec<Option<i64>>,
    values: Vec<Option<f64>>,
    messages: Vec<Option<String>>,
}

struct Monitor {
    name: String,
    spec: Spec,
    types: Vec<u32>,
    done: u64,
}

/// For the decoding transactions: no "starting logical decoding" LOG line per poll, room to
/// decode a large transaction in memory instead of spilling it to disk at the default 64MB, and a
/// durable commit whatever the server's `synchronous_commit`: the slot is advanced right after,
/// and may be saved to disk at once; if the scored states and positions were then lost in a
/// crash, the rows between would never be scored.
const QUIET: &str = "SELECT pg_catalog.set_config('log_min_messages', 'fatal', true), \
                     pg_catalog.set_config('logical_decoding_work_mem', '256MB', true), \
                     pg_catalog.set_config('synchronous_commit', 'on', true)";

/// The end of the WAL inserted so far: the insert position, except that right after a page
/// header (where the next record will start) it is the page boundary, where the last record
/// ended. XLogFlush refuses a position past the last inserted byte ("xlog flush request ... is
/// not satisfied"), and a slot cannot confirm beyond what is flushed.
fn wal_insert_end() -> u64 {
    const fn maxalign(n: usize) -> u64 {
        n.div_ceil(8) as u64 * 8
    }
    let short = maxalign(std::mem::size_of::<pg_sys::XLogPageHeaderData>());
    let long = maxalign(std::mem::size_of::<pg_sys::XLogLongPageHeaderData>());
    // SAFETY: reads of the WAL module's insert position and of a constant GUC.
    let (pos, seg) = unsafe {
        (
            pg_sys::GetXLogInsertRecPtr(),
            u64::try_from(pg_sys::wal_segment_size).unwrap_or(16 << 20),
        )
    };
    let page = u64::from(pg_sys::XLOG_BLCKSZ);
    // A record can end inside the first bytes of a page (its continuation), but never exactly
    // at the end of the page header: it would then have ended at the boundary.
    if pos % seg == long {
        pos - long
    } else if pos % page == short {
        pos - short
    } else {
        pos
    }
}

/// Flush the WAL up to the end of what is inserted now, and return that position.
fn flush_wal() -> u64 {
    let upto = wal_insert_end();
    // SAFETY: outside recovery (logical decoding needs a primary), flushing up to the end of
    // inserted WAL is always valid.
    unsafe { pg_sys::XLogFlush(upto) };
    upto
}

/// `tidewatch._wal_insert_end()`: [`wal_insert_end`] for SQL (`monitor_wait`, `monitor_lag`),
/// so that they wait for the same position the decoder reads up to.
#[pg_extern(volatile, parallel_safe, name = "_wal_insert_end_bytes")]
pub fn wal_insert_end_bytes() -> i64 {
    i64::try_from(wal_insert_end()).unwrap_or(i64::MAX)
}

/// True unless some `monitor()`/`log_monitor()` call holds the slot lock (shared) right now.
fn no_monitor_being_added() -> bool {
    BackgroundWorker::transaction(|| {
        select_one::<bool>(
            "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('tidewatch async monitor slot')) \
                    AND pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('tidewatch async monitor slot'))",
            &[],
        )
        .unwrap_or(false)
    })
}

const SLOT_LOCK: &str = "SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('tidewatch async monitor slot'))";

fn lsn_sql(v: u64) -> String {
    format!("'{:X}/{:X}'::pg_lsn", v >> 32, v & 0xffff_ffff)
}

/// The async monitors of this database (in a transaction, and so a snapshot, of its own) and
/// whether the slot exists.
fn load_monitors(slot: &str) -> Result<(Vec<Monitor>, bool), String> {
    BackgroundWorker::transaction(|| {
        Spi::connect(|client| {
            // Positions recorded in another cluster (a monitor restored by pg_dump) mean nothing
            // here: with the system identifier, such a monitor starts afresh.
            let facts = client
                .select(
                    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1), \
                            (SELECT system_identifier::text FROM pg_catalog.pg_control_system()), \
                            pg_catalog.to_regclass('tidewatch.monitors') IS NOT NULL, \
                            pg_catalog.to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL",
                    None,
                    &[slot.into()],
                )
                .map_err(|e| e.to_string())?
                .first();
            let slot_exists = facts.get::<bool>(1).map_err(|e| e.to_string())?;
            let system = facts
                .get::<String>(2)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let installed = facts
                .get::<bool>(3)
                .map_err(|e| e.to_string())?
                .unwrap_or(false);
            if !installed {
                return Ok((Vec::new(), false));
            }
            let citus = facts
                .get::<bool>(4)
                .map_err(|e| e.to_string())?
                .unwrap_or(false);
            let rows = client
                .select(
                    "SELECT false, m.name, m.relid::oid::int8, m.value_column::text, m.time_column::text, \
                            m.series_columns::text[], \
                            (SELECT array_agg(a.atttypid::int8 ORDER BY c.ord) \
                               FROM unnest(m.series_columns) WITH ORDINALITY c(n, ord) \
                               JOIN pg_catalog.pg_attribute a ON a.attrelid = m.relid AND a.attname = c.n), \
                            CASE WHEN m.wal_system = $1::numeric \
                                 THEN (coalesce(m.async_lsn, m.created_lsn, '0/0') - '0/0'::pg_lsn)::int8 ELSE 0 END, \
                            coalesce(m.value_columns[2:]::text[], '{}') \
                     FROM tidewatch.monitors m WHERE m.mode = 'async' \
                     UNION ALL \
                     SELECT true, l.name, l.relid::oid::int8, '', coalesce(l.time_column::text, ''), \
                            ARRAY[l.message_column::text], ARRAY[25::int8], \
                            CASE WHEN l.wal_system = $1::numeric \
                                 THEN (coalesce(l.async_lsn, l.created_lsn, '0/0') - '0/0'::pg_lsn)::int8 ELSE 0 END, \
                            '{}'::text[] \
                     FROM tidewatch.log_monitors l WHERE l.mode = 'async' \
                     ORDER BY 1, 2",
                    None,
                    &[system.into()],
                )
                .map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for row in rows {
                let log: bool = row.get(1).ok().flatten().unwrap_or(false);
                let name: String = row.get(2).ok().flatten().unwrap_or_default();
                let relid: i64 = row.get(3).ok().flatten().unwrap_or(0);
                let series: Vec<String> = row.get(6).ok().flatten().unwrap_or_default();
                let types: Vec<i64> = row.get(7).ok().flatten().unwrap_or_default();
                // A Citus distributed table's rows are written into its shards: those placed on
                // this node are this node's to score (docs/scale-out.md, async monitors).
                let shards = if citus && !log {
                    local_shards(client, relid)?
                } else {
                    Vec::new()
                };
                out.push(Monitor {
                    name,
                    spec: Spec {
                        relid: relid as u32,
                        shards,
                        value: row.get(4).ok().flatten().unwrap_or_default(),
                        time: row.get(5).ok().flatten().unwrap_or_default(),
                        series,
                        log,
                        more: row.get(9).ok().flatten().unwrap_or_default(),
                    },
                    types: types.into_iter().map(|t| t as u32).collect(),
                    done: row.get::<i64>(8).ok().flatten().unwrap_or(0) as u64,
                });
            }
            Ok((out, slot_exists.unwrap_or(false)))
        })
    })
}

/// The shards of Citus table `relid` placed on this node (their tables exist here), as relids.
fn local_shards(client: &pgrx::spi::SpiClient<'_>, relid: i64) -> Result<Vec<u32>, String> {
    let rows = client
        .select(
            "SELECT r::oid::int8 FROM pg_catalog.pg_dist_shard s, \
                    LATERAL pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid, false)) r \
             WHERE s.logicalrelid = $1::int8::oid AND r IS NOT NULL ORDER BY 1",
            None,
            &[relid.into()],
        )
        .map_err(|e| e.to_string())?;
    Ok(rows
        .filter_map(|r| r.get::<i64>(1).ok().flatten())
        .map(|r| r as u32)
        .collect())
}

/// Drop the slot when no async monitor is left, unless a `monitor()` call holds the lock (it is
/// about to add one). Returns whether the decoder may end.
fn drop_slot_if_unused(slot: &str) -> bool {
    BackgroundWorker::transaction(|| {
        Spi::connect_mut(|client| {
            let locked = client
                .update(SLOT_LOCK, None, &[])
                .ok()
                .and_then(|t| t.first().get_one::<bool>().ok().flatten())
                .unwrap_or(false);
            if !locked {
                return false;
            }
            let any = client
                .select(
                    "SELECT pg_catalog.to_regclass('tidewatch.monitors') IS NOT NULL \
                     AND (EXISTS (SELECT 1 FROM tidewatch.monitors WHERE mode = 'async') \
                          OR EXISTS (SELECT 1 FROM tidewatch.log_monitors WHERE mode = 'async'))",
                    None,
                    &[],
                )
                .ok()
                .and_then(|t| t.first().get_one::<bool>().ok().flatten())
                .unwrap_or(true);
            if any {
                return false;
            }
            let _ = client.update(
                "SELECT pg_catalog.pg_drop_replication_slot(slot_name) \
                 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active",
                None,
                &[slot.into()],
            );
            true
        })
    })
}

/// What a poll found.
enum Polled {
    /// No async monitor in this database.
    NoMonitors,
    /// Nothing committed since the last poll.
    Idle,
    /// The new slot position and the number of blocks read.
    Read(u64, i64),
}

/// One poll: score every transaction committed up to now (at most BLOCKS_PER_POLL blocks).
fn poll(slot: &str, advanced: u64) -> Result<Polled, String> {
    // Where this poll reads up to, in this order:
    // 1. `upto`, the WAL insert position, flushed at once. A peek decodes only WAL that is
    //    flushed, while the slot is then advanced to `upto`: any commit between the two would be
    //    skipped for ever. Commits made with `synchronous_commit = off` are visible before their
    //    WAL is flushed, and this decoder once lost 18% of such rows that way (issue 15). After
    //    the flush, the peek sees every commit before `upto`.
    // 2. No `monitor()` call may be between choosing its `created_lsn` and its commit (it holds
    //    the lock from before the one until after the other): else its monitor, invisible to our
    //    snapshot, would miss its rows before `upto` once the slot moves past them.
    // 3. The monitors, in a transaction (a snapshot) that starts after both.
    let upto = flush_wal();
    if !no_monitor_being_added() {
        return Ok(Polled::Idle);
    }
    let (monitors, slot_exists) = load_monitors(slot)?;
    if monitors.is_empty() {
        return Ok(Polled::NoMonitors);
    }
    if !slot_exists {
        recreate_slot(slot)?;
        return Ok(Polled::Idle);
    }
    if upto <= advanced {
        return Ok(Polled::Idle);
    }
    let specs: Vec<Spec> = monitors.iter().map(|m| m.spec.clone()).collect();
    let (target, nblocks) = BackgroundWorker::transaction(|| -> Result<(u64, i64), String> {
        Spi::connect_mut(|client| {
            let data = read_slot(client, slot, upto, &specs)?;
            let read = group_by_series(&data, &specs, &monitors)?;
            apply(client, &monitors, read.groups)?;
            record_positions(client, &monitors, &read.scored_end)?;
            let nblocks = data.len() as i64;
            // A full batch may have stopped before `upto`: advance only past what was read.
            // Otherwise the peek decoded every record up to `upto` (flushed before it began).
            let target = if nblocks >= BLOCKS_PER_POLL {
                read.max_end
            } else {
                upto.max(read.max_end)
            };
            Ok((target, nblocks))
        })
    })?;
    Ok(Polled::Read(advance_slot(slot, advanced, target)?, nblocks))
}

/// A slot dropped by hand: create it again (rows committed meanwhile are not seen; say so).
fn recreate_slot(slot: &str) -> Result<(), String> {
    warning!(
        "tidewatch decoder: replication slot \"{slot}\" is missing; creating it again. \
         Rows committed while it was missing are not scored."
    );
    // Read-only SPI: a transaction with an id cannot create a logical slot.
    BackgroundWorker::transaction(|| {
        select_one::<String>(
            "SELECT pg_catalog.pg_create_logical_replication_slot($1, 'tidewatch')::text",
            &[slot.into()],
        )
    })
    .map(|_| ())
    .ok_or_else(|| "could not create the replication slot".into())
}

/// The blocks of every transaction committed after the slot's position, up to `upto` (at most
/// BLOCKS_PER_POLL of them), in commit order.
fn read_slot(
    client: &mut pgrx::spi::SpiClient<'_>,
    slot: &str,
    upto: u64,
    specs: &[Spec],
) -> Result<Vec<Vec<u8>>, String> {
    let spec_json = serde_json::to_string(specs).map_err(|e| e.to_string())?;
    // Each decoding call logs "starting logical decoding for slot" at LOG level: several lines
    // per poll under load. Our own warnings are raised outside this transaction. (Read-only SPI
    // calls throughout: pgrx gives a transaction id to any "update", and its commit record would
    // wake the decoder again.)
    client.select(QUIET, None, &[]).map_err(|e| e.to_string())?;
    let blocks = client
        .select(
            &format!(
                "SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, {}, {BLOCKS_PER_POLL}, 'monitors', $2)",
                lsn_sql(upto)
            ),
            None,
            &[slot.into(), spec_json.as_str().into()],
        )
        .map_err(|e| e.to_string())?;
    Ok(blocks
        .map(|row| row.get::<Vec<u8>>(1).ok().flatten().unwrap_or_default())
        .collect())
}

/// What a poll read, grouped: (monitor, encoded labels) -> points in commit order (a log
/// monitor's lines go to one group per monitor, the message in place of the value), the last
/// commit position per monitor that got points, and the last commit position read.
struct Read<'a> {
    groups: HashMap<(usize, &'a [u8]), Batch>,
    scored_end: HashMap<usize, u64>,
    max_end: u64,
}

fn group_by_series<'a>(
    data: &'a [Vec<u8>],
    specs: &[Spec],
    monitors: &[Monitor],
) -> Result<Read<'a>, String> {
    let mut read = Read {
        groups: HashMap::new(),
        scored_end: HashMap::new(),
        max_end: 0,
    };
    for block in data {
        let (end, points) = parse_block(block, specs)?;
        read.max_end = read.max_end.max(end);
        for p in points {
            if end <= monitors[p.mon].done {
                continue; // scored before a restart
            }
            read.scored_end
                .entry(p.mon)
                .and_modify(|e| *e = (*e).max(end))
                .or_insert(end);
            if monitors[p.mon].spec.log {
                let g = read.groups.entry((p.mon, &[][..])).or_default();
                g.ts.push(p.ts);
                g.messages
                    .push(decode_labels(p.labels).into_iter().next().flatten());
            } else {
                let g = read.groups.entry((p.mon, p.labels)).or_default();
                g.ts.push(p.ts);
                g.values.push(p.value);
                // A device monitor's row: its further values follow (row-major).
                g.values.extend(more_values(p.more).map(Some));
            }
        }
    }
    Ok(read)
}

/// Score each group with the same SQL code as the sync trigger (`_monitor_apply_async`,
/// `_log_monitor_apply_async`), in a stable order of monitors and series.
fn apply(
    client: &mut pgrx::spi::SpiClient<'_>,
    monitors: &[Monitor],
    mut groups: HashMap<(usize, &[u8]), Batch>,
) -> Result<(), String> {
    let mut keys: Vec<(usize, &[u8])> = groups.keys().copied().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let apply = client
        .prepare_mut(
            "SELECT tidewatch._monitor_apply_async($1, $2, $3, $4)",
            &[
                PgOid::BuiltIn(PgBuiltInOids::TEXTOID),
                PgOid::BuiltIn(PgBuiltInOids::JSONBOID),
                PgOid::BuiltIn(PgBuiltInOids::TIMESTAMPTZARRAYOID),
                PgOid::BuiltIn(PgBuiltInOids::FLOAT8ARRAYOID),
            ],
        )
        .map_err(|e| e.to_string())?;
    let apply_log = client
        .prepare_mut(
            "SELECT tidewatch._log_monitor_apply_async($1, $2, $3)",
            &[
                PgOid::BuiltIn(PgBuiltInOids::TEXTOID),
                PgOid::BuiltIn(PgBuiltInOids::TIMESTAMPTZARRAYOID),
                PgOid::BuiltIn(PgBuiltInOids::TEXTARRAYOID),
            ],
        )
        .map_err(|e| e.to_string())?;
    for key in keys {
        let Some(batch) = groups.remove(&key) else {
            continue;
        };
        let m = &monitors[key.0];
        let ts: Vec<Option<TimestampWithTimeZone>> = batch
            .ts
            .into_iter()
            .map(|t| {
                // SAFETY: a timestamptz datum is its int8 value (µs since 2000-01-01).
                t.and_then(|t| unsafe {
                    TimestampWithTimeZone::from_datum(pg_sys::Datum::from(t), false)
                })
            })
            .collect();
        if m.spec.log {
            client
                .update(
                    &apply_log,
                    None,
                    &[m.name.as_str().into(), ts.into(), batch.messages.into()],
                )
                .map_err(|e| e.to_string())?;
            continue;
        }
        let mut labels = serde_json::Map::new();
        let texts = decode_labels(key.1);
        for (i, col) in m.spec.series.iter().enumerate() {
            let typ = m.types.get(i).copied().unwrap_or(0);
            labels.insert(
                col.clone(),
                label_json(texts.get(i).and_then(|l| l.as_ref()), typ),
            );
        }
        client
            .update(
                &apply,
                None,
                &[
                    m.name.as_str().into(),
                    JsonB(serde_json::Value::Object(labels)).into(),
                    ts.into(),
                    batch.values.into(),
                ],
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Record, in the transaction that wrote the scores, the commit position each monitor has
/// scored up to: after a crash, rows at or before it are skipped.
fn record_positions(
    client: &mut pgrx::spi::SpiClient<'_>,
    monitors: &[Monitor],
    scored_end: &HashMap<usize, u64>,
) -> Result<(), String> {
    for (&mon, &end) in scored_end {
        let table = if monitors[mon].spec.log {
            "log_monitors"
        } else {
            "monitors"
        };
        client
            .update(
                &format!(
                    "UPDATE tidewatch.{table} SET async_lsn = {}, async_at = now(), \
                     wal_system = (SELECT system_identifier FROM pg_catalog.pg_control_system()) \
                     WHERE name = $1",
                    lsn_sql(end)
                ),
                None,
                &[monitors[mon].name.as_str().into()],
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Move the slot to `target` (after the scores are committed) and return where it really is:
/// it stops at the WAL flushed so far, and the next poll goes on from there.
fn advance_slot(slot: &str, advanced: u64, target: u64) -> Result<u64, String> {
    if target <= advanced {
        return Ok(advanced);
    }
    BackgroundWorker::transaction(|| {
        select_one::<String>(QUIET, &[]);
        select_one::<i64>(
            &format!(
                "SELECT ((pg_catalog.pg_replication_slot_advance($1, {})).end_lsn - '0/0'::pg_lsn)::int8",
                lsn_sql(target)
            ),
            &[slot.into()],
        )
    })
    .map(|v| v as u64)
    .ok_or_else(|| "could not advance the replication slot".into())
}

/// The decoder of one database's async monitors, started by its scheduler.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn tidewatch_decoder_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    crate::scheduler::pin_search_path();
    // SAFETY: MyDatabaseId is set once the worker is connected to its database (line above).
    let slot = format!("tidewatch_{}", unsafe { pg_sys::MyDatabaseId }.to_u32());
    let mut advanced = 0u64;
    let mut idle_polls = 0u32;
    let mut busy = false;
    loop {
        let nap = if busy {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(u64::try_from(MONITOR_NAPTIME_MS.get()).unwrap_or(100))
        };
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: a background worker re-reads its configuration on SIGHUP in its main loop, as PostgreSQL's own workers do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        match poll(&slot, advanced) {
            Ok(Polled::Read(pos, nblocks)) => {
                // Rows came: poll again at once (there may be more); else nap.
                busy = nblocks > 0;
                advanced = pos;
                idle_polls = 0;
            }
            Ok(Polled::Idle) => {
                busy = false;
                idle_polls = 0;
            }
            Ok(Polled::NoMonitors) => {
                busy = false;
                idle_polls += 1;
                // No async monitor for a while: drop the slot (it would hold WAL) and end.
                if idle_polls >= 10 && drop_slot_if_unused(&slot) {
                    break;
                }
            }
            Err(e) => {
                warning!("tidewatch decoder in database \"{db}\": {e}");
                busy = false;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// After `DROP EXTENSION tidewatch`, the slot of its async monitors would hold WAL back for
/// ever: the scheduler drops it (unless a decoder still uses it; it ends on its own).
pub fn drop_orphan_slot() {
    BackgroundWorker::transaction(|| {
        // Read-only SPI (no transaction id, no commit record): dropping a slot is not a write.
        let _ = select_one::<String>(
            "SELECT pg_catalog.pg_drop_replication_slot(slot_name)::text FROM pg_catalog.pg_replication_slots \
             WHERE slot_name = 'tidewatch_' || (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
               AND NOT active",
            &[],
        );
    });
}

/// Should the scheduler start this database's decoder? Yes while async monitors exist and no
/// decoder runs here.
pub fn decoder_wanted() -> bool {
    BackgroundWorker::transaction(|| {
        select_one::<bool>(
            "SELECT (EXISTS (SELECT 1 FROM tidewatch.monitors WHERE mode = 'async') \
                     OR EXISTS (SELECT 1 FROM tidewatch.log_monitors WHERE mode = 'async')) \
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity \
                             WHERE backend_type = 'tidewatch decoder' AND datid = \
                             (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))",
            &[],
        )
        .unwrap_or(false)
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn labels_render_like_to_jsonb() {
        let n = Some("42".to_string());
        assert_eq!(
            label_json(n.as_ref(), pg_sys::INT4OID.to_u32()),
            serde_json::json!(42)
        );
        assert_eq!(
            label_json(n.as_ref(), pg_sys::TEXTOID.to_u32()),
            serde_json::json!("42")
        );
        let t = Some("t".to_string());
        assert_eq!(
            label_json(t.as_ref(), pg_sys::BOOLOID.to_u32()),
            serde_json::json!(true)
        );
        assert_eq!(
            label_json(None, pg_sys::TEXTOID.to_u32()),
            serde_json::Value::Null
        );
    }
}
