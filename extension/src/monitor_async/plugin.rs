//! The logical-decoding output plugin `tidewatch`: the inserted rows of monitored tables, in
//! blocks of [`super::wire`] format, one or more per committed transaction.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::HashMap;
use std::ffi::CStr;

use super::wire::Writer;
use super::Spec;

/// Blocks are flushed at about this size.
const BLOCK_BYTES: usize = 1 << 20;

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
    /// A device monitor's further value columns.
    more: Vec<(usize, pg_sys::Oid)>,
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
    // SAFETY: PostgreSQL passes a valid, writable callbacks struct (the function's contract).
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
    // SAFETY: list is a non-null PostgreSQL List whose `length` cells are initialised.
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
    // SAFETY: PostgreSQL calls the startup callback with valid ctx and opts; the options are DefElem nodes.
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
    // SAFETY: ctx is the decoding context this plugin's startup filled; its private data is our Plugin (or null).
    unsafe {
        let p = (*ctx).output_plugin_private.cast::<Plugin>();
        if !p.is_null() {
            drop(Box::from_raw(p));
            (*ctx).output_plugin_private = std::ptr::null_mut();
        }
    }
}

unsafe fn plugin(ctx: *mut pg_sys::LogicalDecodingContext) -> &'static mut Plugin {
    // SAFETY: startup stored a leaked Box<Plugin> in output_plugin_private for the context's lifetime.
    unsafe { &mut *(*ctx).output_plugin_private.cast::<Plugin>() }
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_begin(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
) {
    // SAFETY: PostgreSQL calls the callback with a valid ctx and txn of this plugin's context.
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
    // SAFETY: ctx is a valid decoding context; PrepareWrite/Write are called in pairs as the API requires.
    unsafe {
        pg_sys::OutputPluginPrepareWrite(ctx, true);
        pg_sys::appendBinaryStringInfo((*ctx).out, Writer::header(p.end_lsn).as_ptr().cast(), 8);
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
    // SAFETY: PostgreSQL calls the callback with a valid ctx and txn of this plugin's context.
    unsafe {
        let p = plugin(ctx);
        p.end_lsn = (*txn).end_lsn;
        flush(ctx, p);
    }
}

unsafe fn rel_key(rel: pg_sys::Relation) -> (pg_sys::Oid, bool, i32) {
    // SAFETY: rel is a valid, open relation passed by the change callback.
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
    // SAFETY: rel is a valid, open relation passed by the change callback; its tuple descriptor lives as long as it.
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
                if !roots
                    .iter()
                    .any(|r| r.to_u32() == s.relid || s.shards.contains(&r.to_u32()))
                {
                    continue;
                }
                let (value, time) = (attr(&s.value), attr(&s.time));
                if (value.is_none() && !s.log) || (time.is_none() && !s.time.is_empty()) {
                    continue;
                }
                let series: Option<Vec<_>> = s.series.iter().map(|c| attr(c)).collect();
                let Some(series) = series else { continue };
                let more: Option<Vec<_>> = s.more.iter().map(|c| attr(c)).collect();
                let Some(more) = more else { continue };
                found.push(Bound {
                    mon: mon as u16,
                    value,
                    time,
                    series,
                    more,
                });
            }
            p.bounds.insert(key, found);
        }
        &p.bounds[&key]
    }
}

unsafe fn value_f64(d: pg_sys::Datum, typ: pg_sys::Oid) -> Option<f64> {
    // SAFETY: d is a non-null datum of type typ (the column's), read only for the listed numeric types.
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
    // SAFETY: d is a non-null datum of type typ (the column's), read only for the listed time types.
    unsafe {
        match typ {
            pg_sys::TIMESTAMPTZOID => i64::from_datum(d, false),
            // The *_opt_overflow forms: a date or timestamp beyond timestamptz's range (say
            // 300000-01-01, a valid date) would raise an ERROR inside the decoding callback, and
            // the decoder would fail on that record at every poll; it is a row without a time.
            pg_sys::TIMESTAMPOID => {
                let mut overflow = 0;
                let t = pg_sys::timestamp2timestamptz_opt_overflow(
                    i64::from_datum(d, false)?,
                    &mut overflow,
                );
                finite_time(t, overflow)
            }
            pg_sys::DATEOID => {
                let mut overflow = 0;
                let t = pg_sys::date2timestamptz_opt_overflow(
                    i32::from_datum(d, false)?,
                    &mut overflow,
                );
                finite_time(t, overflow)
            }
            _ => None,
        }
    }
}

/// A converted time, unless the conversion overflowed or gave ±infinity.
fn finite_time(t: i64, overflow: std::ffi::c_int) -> Option<i64> {
    (overflow == 0 && t != i64::MIN && t != i64::MAX).then_some(t)
}

#[pg_guard]
unsafe extern "C-unwind" fn plugin_change(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    rel: pg_sys::Relation,
    change: *mut pg_sys::ReorderBufferChange,
) {
    // SAFETY: PostgreSQL calls the change callback with valid ctx, txn, rel and change pointers.
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
            Writer::new(&mut p.buf).row(b.mon, t, v);
            for &(i, typ) in &b.more {
                let v = (!p.nulls[i]).then(|| value_f64(p.values[i], typ)).flatten();
                Writer::new(&mut p.buf).more(v);
            }
            for &(i, typ) in &b.series {
                if p.nulls[i] {
                    Writer::new(&mut p.buf).label(None);
                    continue;
                }
                let func = *p.out_funcs.entry(typ).or_insert_with(|| {
                    let mut f = pg_sys::InvalidOid;
                    let mut varlena = false;
                    pg_sys::getTypeOutputInfo(typ, &mut f, &mut varlena);
                    f
                });
                let s = pg_sys::OidOutputFunctionCall(func, p.values[i]);
                Writer::new(&mut p.buf).label(Some(CStr::from_ptr(s).to_bytes()));
                pg_sys::pfree(s.cast());
            }
        }
        p.bounds.insert(key, bounds);
        if p.buf.len() >= BLOCK_BYTES {
            flush(ctx, p);
        }
    }
}
