//! Async monitors (`tidewatch.monitor(..., mode => 'async')`): rows are scored after they
//! commit, from the write-ahead log, so that ingest runs without any trigger.
//!
//! Two parts live here:
//! - a logical-decoding **output plugin** (this library is the plugin `tidewatch`): for every
//!   row inserted into a monitored table (or any partition/chunk of it), it emits the monitor
//!   index, the time, the value and the label texts, packed in blocks tagged with the commit's
//!   end position;
//! - the **decoder**, a background worker per database started by the scheduler while async
//!   monitors exist. Every `tidewatch.monitor_naptime` it peeks the slot up to the current WAL
//!   position, applies each series' points with `tidewatch._monitor_apply_async` (the same code
//!   as the sync trigger), records in the same transaction the commit position each monitor has
//!   scored (`monitors.async_lsn`), commits, and only then advances the slot. A crash between
//!   the two replays the changes, and the positions skip what was already scored: every
//!   committed row is scored exactly once, in commit order, late ones included.

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::CStr;
use std::time::Duration;

use crate::scheduler::select_one;

static MONITOR_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(100);

/// Blocks the plugin emits are flushed at about this size.
const BLOCK_BYTES: usize = 1 << 20;
/// At most this many blocks per peek, so that one poll stays short under a backlog.
const BLOCKS_PER_POLL: i64 = 64;

pub fn init() {
    GucRegistry::define_int_guc(
        c"tidewatch.monitor_naptime",
        c"How often (milliseconds) the decoder of async monitors reads newly committed rows.",
        c"Bounds the lag of async monitors when idle; under load each poll starts as soon as the previous one ends.",
        &MONITOR_NAPTIME_MS,
        10,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
}

/// One async monitor as the decoder passes it to the plugin (option `monitors`, JSON). An
/// anomaly monitor has a value column and label columns; a log monitor (`log`) no value column,
/// its message column as the one "label", and maybe no time column.
#[derive(Serialize, Deserialize, Clone)]
struct Spec {
    relid: u32,
    value: String,
    time: String,
    series: Vec<String>,
    #[serde(default)]
    log: bool,
}

// ---------------------------------------------------------------------------------------------
// The output plugin.

unsafe extern "C-unwind" {
    // catalog/partition.h; not in pgrx's bindings. Called through pg_guard_ffi_boundary.
    fn get_partition_ancestors(relid: pg_sys::Oid) -> *mut pg_sys::List;
}

/// Where a monitor's columns are in one (leaf) relation.
struct Bound {
    mon: u16,
    value: Option<(usize, pg_sys::Oid)>,
    time: Option<(usize, pg_sys::Oid)>,
    series: Vec<(usize, pg_sys::Oid)>,
}

struct Plugin {
    specs: Vec<Spec>,
    /// Keyed by relation, whether it is a partition and its number of columns, as the
    /// historic catalog snapshot of each change shows them: a chunk filled before its ATTACH
    /// (maintenance moving rows out of the default partition) is not the hypertable's yet, so
    /// those moved rows are not scored twice; once attached, its rows are.
    bounds: HashMap<(pg_sys::Oid, bool, i32), Vec<Bound>>,
    out_funcs: HashMap<pg_sys::Oid, pg_sys::Oid>,
    buf: Vec<u8>,
    end_lsn: u64,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

/// Entry point PostgreSQL looks up when a slot uses the plugin `tidewatch`.
///
/// # Safety
/// Called by PostgreSQL with a valid callbacks struct.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _PG_output_plugin_init(cb: *mut pg_sys::OutputPluginCallbacks) {
    unsafe {
        (*cb).startup_cb = Some(plugin_startup);
        (*cb).begin_cb = Some(plugin_begin);
        (*cb).change_cb = Some(plugin_change);
        (*cb).commit_cb = Some(plugin_commit);
        (*cb).shutdown_cb = Some(plugin_shutdown);
    }
}

unsafe fn list_cells(list: *mut pg_sys::List) -> Vec<pg_sys::ListCell> {
    if list.is_null() {
        return Vec::new();
    }
    unsafe {
        let n = (*list).length.max(0) as usize;
        (0..n).map(|i| *(*list).elements.add(i)).collect()
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_startup(
    ctx: *mut pg_sys::LogicalDecodingContext,
    opts: *mut pg_sys::OutputPluginOptions,
    _is_init: bool,
) {
    unsafe {
        (*opts).output_type = pg_sys::OutputPluginOutputType::OUTPUT_PLUGIN_BINARY_OUTPUT;
        let mut specs = Vec::new();
        for cell in list_cells((*ctx).output_plugin_options) {
            let elem = cell.ptr_value.cast::<pg_sys::DefElem>();
            let name = CStr::from_ptr((*elem).defname).to_string_lossy();
            if name != "monitors" {
                error!("tidewatch output plugin: unknown option \"{name}\" (valid: monitors)");
            }
            let arg = (*elem).arg;
            if arg.is_null() || (*arg).type_ != pg_sys::NodeTag::T_String {
                error!("tidewatch output plugin: option monitors needs a JSON text value");
            }
            let text = CStr::from_ptr((*arg.cast::<pg_sys::String>()).sval).to_string_lossy();
            specs = serde_json::from_str(&text).unwrap_or_else(|e| {
                error!("tidewatch output plugin: option monitors is not valid: {e}")
            });
        }
        let state = Box::new(Plugin {
            specs,
            bounds: HashMap::new(),
            out_funcs: HashMap::new(),
            buf: Vec::new(),
            end_lsn: 0,
            values: Vec::new(),
            nulls: Vec::new(),
        });
        (*ctx).output_plugin_private = Box::into_raw(state).cast();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_shutdown(ctx: *mut pg_sys::LogicalDecodingContext) {
    unsafe {
        let p = (*ctx).output_plugin_private.cast::<Plugin>();
        if !p.is_null() {
            drop(Box::from_raw(p));
            (*ctx).output_plugin_private = std::ptr::null_mut();
        }
    }
}

unsafe fn plugin(ctx: *mut pg_sys::LogicalDecodingContext) -> &'static mut Plugin {
    unsafe { &mut *(*ctx).output_plugin_private.cast::<Plugin>() }
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_begin(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
) {
    unsafe {
        let p = plugin(ctx);
        p.buf.clear();
        p.end_lsn = (*txn).end_lsn;
    }
}

unsafe fn flush(ctx: *mut pg_sys::LogicalDecodingContext, p: &mut Plugin) {
    if p.buf.is_empty() {
        return;
    }
    unsafe {
        pg_sys::OutputPluginPrepareWrite(ctx, true);
        pg_sys::appendBinaryStringInfo((*ctx).out, p.end_lsn.to_le_bytes().as_ptr().cast(), 8);
        pg_sys::appendBinaryStringInfo((*ctx).out, p.buf.as_ptr().cast(), p.buf.len() as i32);
        pg_sys::OutputPluginWrite(ctx, true);
    }
    p.buf.clear();
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_commit(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    _commit_lsn: pg_sys::XLogRecPtr,
) {
    unsafe {
        let p = plugin(ctx);
        p.end_lsn = (*txn).end_lsn;
        flush(ctx, p);
    }
}

unsafe fn rel_key(rel: pg_sys::Relation) -> (pg_sys::Oid, bool, i32) {
    unsafe {
        (
            (*rel).rd_id,
            (*(*rel).rd_rel).relispartition,
            (*(*rel).rd_att).natts,
        )
    }
}

/// The monitors whose table is `rel` or an ancestor of it (a hypertable's chunk), with the
/// positions of their columns in `rel`; computed once per relation and peek.
unsafe fn bounds_for(p: &mut Plugin, rel: pg_sys::Relation) -> &[Bound] {
    unsafe {
        let key = rel_key(rel);
        let relid = key.0;
        if !p.bounds.contains_key(&key) {
            let mut roots = vec![relid];
            if key.1 {
                let ancestors =
                    pg_sys::ffi::pg_guard_ffi_boundary(|| get_partition_ancestors(relid));
                for cell in list_cells(ancestors) {
                    roots.push(cell.oid_value);
                }
            }
            let desc = (*rel).rd_att;
            let natts = (*desc).natts.max(0) as usize;
            let attr = |name: &str| -> Option<(usize, pg_sys::Oid)> {
                (0..natts).find_map(|i| {
                    let a = &*(*desc).attrs.as_ptr().add(i);
                    let n = CStr::from_ptr(a.attname.data.as_ptr());
                    (!a.attisdropped && n.to_bytes() == name.as_bytes()).then_some((i, a.atttypid))
                })
            };
            let mut found = Vec::new();
            for (mon, s) in p.specs.iter().enumerate() {
                if !roots.iter().any(|r| r.to_u32() == s.relid) {
                    continue;
                }
                let (value, time) = (attr(&s.value), attr(&s.time));
                if (value.is_none() && !s.log) || (time.is_none() && !s.time.is_empty()) {
                    continue;
                }
                let series: Option<Vec<_>> = s.series.iter().map(|c| attr(c)).collect();
                let Some(series) = series else { continue };
                found.push(Bound {
                    mon: mon as u16,
                    value,
                    time,
                    series,
                });
            }
            p.bounds.insert(key, found);
        }
        &p.bounds[&key]
    }
}

unsafe fn value_f64(d: pg_sys::Datum, typ: pg_sys::Oid) -> Option<f64> {
    unsafe {
        match typ {
            pg_sys::FLOAT8OID => f64::from_datum(d, false),
            pg_sys::FLOAT4OID => f32::from_datum(d, false).map(f64::from),
            pg_sys::INT2OID => i16::from_datum(d, false).map(f64::from),
            pg_sys::INT4OID => i32::from_datum(d, false).map(f64::from),
            pg_sys::INT8OID => i64::from_datum(d, false).map(|v| v as f64),
            pg_sys::NUMERICOID => {
                pgrx::direct_function_call::<f64>(pg_sys::numeric_float8_no_overflow, &[Some(d)])
            }
            _ => None,
        }
    }
}

unsafe fn time_us(d: pg_sys::Datum, typ: pg_sys::Oid) -> Option<i64> {
    unsafe {
        match typ {
            pg_sys::TIMESTAMPTZOID => i64::from_datum(d, false),
            pg_sys::TIMESTAMPOID => {
                pgrx::direct_function_call::<i64>(pg_sys::timestamp_timestamptz, &[Some(d)])
            }
            pg_sys::DATEOID => {
                pgrx::direct_function_call::<i64>(pg_sys::date_timestamptz, &[Some(d)])
            }
            _ => None,
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_change(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    rel: pg_sys::Relation,
    change: *mut pg_sys::ReorderBufferChange,
) {
    unsafe {
        if (*change).action != pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_INSERT {
            return;
        }
        let newtuple = (*change).data.tp.newtuple;
        if newtuple.is_null() {
            return;
        }
        let p = plugin(ctx);
        if p.specs.is_empty() || bounds_for(p, rel).is_empty() {
            return;
        }
        p.end_lsn = (*txn).end_lsn;
        let desc = (*rel).rd_att;
        let natts = (*desc).natts.max(0) as usize;
        p.values.resize(natts, pg_sys::Datum::from(0usize));
        p.nulls.resize(natts, true);
        pg_sys::heap_deform_tuple(
            &mut (*newtuple).tuple,
            desc,
            p.values.as_mut_ptr(),
            p.nulls.as_mut_ptr(),
        );
        let key = rel_key(rel);
        let bounds = p.bounds.remove(&key).unwrap_or_default();
        for b in &bounds {
            let t = b
                .time
                .filter(|&(i, _)| !p.nulls[i])
                .and_then(|(i, typ)| time_us(p.values[i], typ));
            let v = b
                .value
                .filter(|&(i, _)| !p.nulls[i])
                .and_then(|(i, typ)| value_f64(p.values[i], typ));
            let flags = u8::from(t.is_none()) | (u8::from(v.is_none()) << 1);
            p.buf.extend_from_slice(&b.mon.to_le_bytes());
            p.buf.push(flags);
            p.buf.extend_from_slice(&t.unwrap_or(0).to_le_bytes());
            p.buf.extend_from_slice(&v.unwrap_or(0.0).to_le_bytes());
            for &(i, typ) in &b.series {
                if p.nulls[i] {
                    p.buf.extend_from_slice(&(-1i32).to_le_bytes());
                    continue;
                }
                let func = *p.out_funcs.entry(typ).or_insert_with(|| {
                    let mut f = pg_sys::InvalidOid;
                    let mut varlena = false;
                    pg_sys::getTypeOutputInfo(typ, &mut f, &mut varlena);
                    f
                });
                let s = pg_sys::OidOutputFunctionCall(func, p.values[i]);
                let bytes = CStr::from_ptr(s).to_bytes();
                p.buf.extend_from_slice(&(bytes.len() as i32).to_le_bytes());
                p.buf.extend_from_slice(bytes);
                pg_sys::pfree(s.cast());
            }
        }
        p.bounds.insert(key, bounds);
        if p.buf.len() >= BLOCK_BYTES {
            flush(ctx, p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The decoder.

/// One row as read from a block; its labels stay encoded (a slice of the block), so that rows
/// are grouped by series without decoding or allocating per row.
struct Point<'a> {
    mon: usize,
    ts: Option<i64>,
    value: Option<f64>,
    labels: &'a [u8],
}

/// Parse one block the plugin wrote: its commit end position and its rows. A malformed block
/// (which only a different plugin version could produce) is an error, not a guess.
fn parse_block<'a>(block: &'a [u8], specs: &[Spec]) -> Result<(u64, Vec<Point<'a>>), String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("truncated block".into());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    let mut b = block;
    let end = u64::from_le_bytes(take(&mut b, 8)?.try_into().map_err(|_| "bad lsn")?);
    let mut out = Vec::new();
    while !b.is_empty() {
        let mon = u16::from_le_bytes(take(&mut b, 2)?.try_into().map_err(|_| "bad row")?) as usize;
        let spec = specs.get(mon).ok_or("unknown monitor index")?;
        let flags = take(&mut b, 1)?[0];
        let ts = i64::from_le_bytes(take(&mut b, 8)?.try_into().map_err(|_| "bad time")?);
        let v = f64::from_le_bytes(take(&mut b, 8)?.try_into().map_err(|_| "bad value")?);
        let start = b;
        let mut used = 0;
        for _ in &spec.series {
            let len = i32::from_le_bytes(take(&mut b, 4)?.try_into().map_err(|_| "bad label")?);
            used += 4;
            if len > 0 {
                take(&mut b, len as usize)?;
                used += len as usize;
            }
        }
        out.push(Point {
            mon,
            ts: (flags & 1 == 0).then_some(ts),
            value: (flags & 2 == 0).then_some(v),
            labels: &start[..used],
        });
    }
    Ok((end, out))
}

/// The label texts of an encoded label list (checked by `parse_block`).
fn decode_labels(mut b: &[u8]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        b = &b[4..];
        if len < 0 {
            out.push(None);
        } else {
            let n = (len as usize).min(b.len());
            out.push(Some(String::from_utf8_lossy(&b[..n]).into_owned()));
            b = &b[n..];
        }
    }
    out
}

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
                            pg_catalog.to_regclass('tidewatch.monitors') IS NOT NULL",
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
            let rows = client
                .select(
                    "SELECT false, m.name, m.relid::oid::int8, m.value_column::text, m.time_column::text, \
                            m.series_columns::text[], \
                            (SELECT array_agg(a.atttypid::int8 ORDER BY c.ord) \
                               FROM unnest(m.series_columns) WITH ORDINALITY c(n, ord) \
                               JOIN pg_catalog.pg_attribute a ON a.attrelid = m.relid AND a.attname = c.n), \
                            CASE WHEN m.wal_system = $1::numeric \
                                 THEN (coalesce(m.async_lsn, m.created_lsn, '0/0') - '0/0'::pg_lsn)::int8 ELSE 0 END \
                     FROM tidewatch.monitors m WHERE m.mode = 'async' \
                     UNION ALL \
                     SELECT true, l.name, l.relid::oid::int8, '', coalesce(l.time_column::text, ''), \
                            ARRAY[l.message_column::text], ARRAY[25::int8], \
                            CASE WHEN l.wal_system = $1::numeric \
                                 THEN (coalesce(l.async_lsn, l.created_lsn, '0/0') - '0/0'::pg_lsn)::int8 ELSE 0 END \
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
                out.push(Monitor {
                    name,
                    spec: Spec {
                        relid: relid as u32,
                        value: row.get(4).ok().flatten().unwrap_or_default(),
                        time: row.get(5).ok().flatten().unwrap_or_default(),
                        series,
                        log,
                    },
                    types: types.into_iter().map(|t| t as u32).collect(),
                    done: row.get::<i64>(8).ok().flatten().unwrap_or(0) as u64,
                });
            }
            Ok((out, slot_exists.unwrap_or(false)))
        })
    })
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
        // Dropped by hand: recreate it (rows committed meanwhile are not seen; say so).
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
        .ok_or("could not create the replication slot")?;
        return Ok(Polled::Idle);
    }
    if upto <= advanced {
        return Ok(Polled::Idle);
    }
    let specs: Vec<Spec> = monitors.iter().map(|m| m.spec.clone()).collect();
    let spec_json = serde_json::to_string(&specs).map_err(|e| e.to_string())?;
    let (target, nblocks) = BackgroundWorker::transaction(|| -> Result<(u64, i64), String> {
        Spi::connect_mut(|client| {
            // Each decoding call logs "starting logical decoding for slot" at LOG level: several
            // lines per poll under load. Our own warnings are raised outside this transaction.
            // (Read-only SPI calls throughout: pgrx gives a transaction id to any "update", and
            // its commit record would wake the decoder again.)
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
            let mut nblocks = 0i64;
            let mut max_end = 0u64;
            let data: Vec<Vec<u8>> = blocks
                .map(|row| row.get::<Vec<u8>>(1).ok().flatten().unwrap_or_default())
                .collect();
            // (monitor, encoded labels) -> points, in commit order; a log monitor's lines go to
            // one group per monitor, the message in place of the value.
            let mut groups: HashMap<(usize, &[u8]), Batch> = HashMap::new();
            let mut scored_end: HashMap<usize, u64> = HashMap::new();
            for block in &data {
                nblocks += 1;
                let (end, points) = parse_block(block, &specs)?;
                max_end = max_end.max(end);
                for p in points {
                    if end <= monitors[p.mon].done {
                        continue; // scored before a restart
                    }
                    scored_end
                        .entry(p.mon)
                        .and_modify(|e| *e = (*e).max(end))
                        .or_insert(end);
                    if monitors[p.mon].spec.log {
                        let g = groups.entry((p.mon, &[][..])).or_default();
                        g.ts.push(p.ts);
                        g.messages
                            .push(decode_labels(p.labels).into_iter().next().flatten());
                    } else {
                        let g = groups.entry((p.mon, p.labels)).or_default();
                        g.ts.push(p.ts);
                        g.values.push(p.value);
                    }
                }
            }
            let mut keys: Vec<(usize, &[u8])> = groups.keys().copied().collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
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
            for (mon, end) in scored_end {
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
            // A full batch may have stopped before `upto`: advance only past what was read.
            // Otherwise the peek decoded every record up to `upto` (flushed before it began).
            Ok((
                if nblocks >= BLOCKS_PER_POLL {
                    max_end
                } else {
                    upto.max(max_end)
                },
                nblocks,
            ))
        })
    })?;
    // The slot stops at the WAL flushed so far; remember where it really is, so that the next
    // poll goes on from there.
    let mut reached = advanced;
    if target > advanced {
        reached = BackgroundWorker::transaction(|| {
            select_one::<String>(QUIET, &[]);
            select_one::<i64>(
                &format!(
                    "SELECT ((pg_catalog.pg_replication_slot_advance($1, {})).end_lsn - '0/0'::pg_lsn)::int8",
                    lsn_sql(target)
                ),
                &[slot.into()],
            )
        })
        .ok_or("could not advance the replication slot")? as u64;
    }
    Ok(Polled::Read(reached, nblocks))
}

/// The decoder of one database's async monitors, started by its scheduler.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn tidewatch_decoder_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
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
    fn blocks_round_trip_and_reject_truncation() {
        let specs = vec![Spec {
            relid: 1,
            value: "v".into(),
            time: "t".into(),
            series: vec!["sat".into(), "n".into()],
            log: false,
        }];
        let mut b = 77u64.to_le_bytes().to_vec();
        b.extend_from_slice(&0u16.to_le_bytes());
        b.push(2);
        b.extend_from_slice(&123i64.to_le_bytes());
        b.extend_from_slice(&0f64.to_le_bytes());
        b.extend_from_slice(&4i32.to_le_bytes());
        b.extend_from_slice(b"SAT2");
        b.extend_from_slice(&(-1i32).to_le_bytes());
        let (end, pts) = parse_block(&b, &specs).unwrap();
        assert_eq!(end, 77);
        assert_eq!(pts.len(), 1);
        assert_eq!(pts[0].ts, Some(123));
        assert_eq!(pts[0].value, None);
        assert_eq!(
            decode_labels(pts[0].labels),
            vec![Some("SAT2".to_string()), None]
        );
        assert!(parse_block(&b[..b.len() - 1], &specs).is_err());
    }

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
