//! Async monitors (`tidewatch.monitor(..., mode => 'async')`): rows are scored after they
//! commit, from the write-ahead log, so that ingest runs without any trigger.
//!
//! - [`plugin`]: a logical-decoding **output plugin** (this library is the plugin `tidewatch`):
//!   for every row inserted into a monitored table (or any partition/chunk of it), it emits the
//!   monitor index, the time, the value and the label texts, packed in blocks tagged with the
//!   commit's end position;
//! - [`wire`]: that block format, its writer and reader side by side;
//! - [`decoder`]: a background worker per database started by the scheduler while async
//!   monitors exist. Every `tidewatch.monitor_naptime` it flushes the WAL, reads the slot up to
//!   there, applies each series' points with `tidewatch._monitor_apply_async` (the same code as
//!   the sync trigger), records in the same transaction the commit position each monitor has
//!   scored (`monitors.async_lsn`), commits, and only then advances the slot. A crash between
//!   the two replays the changes, and the positions skip what was already scored: every
//!   committed row is scored exactly once, in commit order, late ones included.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use serde::{Deserialize, Serialize};

pub(crate) mod decoder;
mod plugin;
mod wire;

pub use decoder::{decoder_wanted, drop_orphan_slot};

static MONITOR_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(100);

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
/// anomaly monitor has a value column and label columns; a device monitor also the device's
/// further value columns (`more`, after `value`); a log monitor (`log`) no value column, its
/// message column as the one "label", and maybe no time column.
#[derive(Serialize, Deserialize, Clone)]
struct Spec {
    relid: u32,
    value: String,
    time: String,
    series: Vec<String>,
    #[serde(default)]
    log: bool,
    #[serde(default)]
    more: Vec<String>,
    /// A Citus distributed table's shards on this node (relids): their rows are the table's.
    #[serde(default)]
    shards: Vec<u32>,
}
