//! The `tidewatch` PostgreSQL extension. This file is a table of contents: one module per SQL
//! feature, each a thin layer over the plain crates in `crates/` and the SQL in `sql/`.

// pgrx's TableIterator signatures name every column of a result: complex by nature.
#![allow(clippy::type_complexity)]
// #[pg_test] functions are tests that clippy does not recognise as such: unwrap there as in tests.
#![cfg_attr(feature = "pg_test", allow(clippy::unwrap_used))]

mod aggregate;
mod anomaly;
mod definer;
mod device;
mod drift;
mod errors;
mod hypertable;
mod jobs;
mod log_miner;
mod log_monitor;
mod logs;
mod monitor_async;
mod notifications;
mod quality;
mod scheduler;
mod time_bucket;

::pgrx::pg_module_magic!(name, version);

/// Registers the GUCs, the log miner's abort callbacks and, when loaded through
/// `shared_preload_libraries`, the scheduler background workers. Everything else works without
/// preloading.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    scheduler::init();
    monitor_async::init();
    log_miner::init();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'tidewatch'",
            "tidewatch.scheduler_databases = 'pgrx_tests'",
            "tidewatch.scheduler_naptime = 200",
            "wal_level = logical",
            "output_plugin_libraries = 'pgoutput, test_decoding, tidewatch'",
        ]
    }
}
