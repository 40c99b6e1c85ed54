//! The job scheduler: per database listed in `tidewatch.scheduler_databases` (when the library
//! is in `shared_preload_libraries`), a launcher connected to no database, which keeps that
//! database's scheduler running while the database exists.
//!
//! Each scheduler wakes every `tidewatch.scheduler_naptime` milliseconds, asks
//! `tidewatch._due_jobs()` for due jobs and runs each in its own short-lived dynamic background
//! worker connected as the job's owner. So a job runs with its owner's rights, in its own
//! transaction, and a job that crashes its process only fails that run: the scheduler records it
//! (`tidewatch._job_crashed`) and goes on.

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    SignalWakeFlags,
};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;
use std::ffi::CString;
use std::time::Duration;

static SCHEDULER_DATABASES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
static SCHEDULER_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
static SCHEDULER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
static MAX_PARALLEL_JOBS: GucSetting<i32> = GucSetting::<i32>::new(4);

pub fn init() {
    GucRegistry::define_string_guc(
        c"tidewatch.scheduler_databases",
        c"Databases in which the tidewatch job scheduler runs (comma-separated).",
        c"One background worker per database; it sleeps while the extension is not installed there. \
          Needs tidewatch in shared_preload_libraries; changing it needs a restart.",
        &SCHEDULER_DATABASES,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"tidewatch.scheduler_naptime",
        c"How often (milliseconds) the tidewatch scheduler looks for due jobs.",
        c"",
        &SCHEDULER_NAPTIME_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"tidewatch.scheduler_enabled",
        c"Whether the tidewatch scheduler runs due jobs.",
        c"When off, schedulers keep running but start no job; CALL tidewatch.run_job() still works.",
        &SCHEDULER_ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );

    GucRegistry::define_int_guc(
        c"tidewatch.max_parallel_jobs",
        c"How many jobs of one database the tidewatch scheduler runs at once.",
        c"Each running job is a background worker (count them in max_worker_processes). A long job \
          delays the others only when this many run at once; a job's max_runtime bounds how long.",
        &MAX_PARALLEL_JOBS,
        1,
        64,
        GucContext::Sighup,
        GucFlags::default(),
    );

    // Background workers can only be registered while the postmaster loads the library.
    // SAFETY: a global PostgreSQL sets while it loads shared_preload_libraries; read from the postmaster's only thread.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    for db in database_list() {
        BackgroundWorkerBuilder::new(&format!("tidewatch launcher {db}"))
            .set_type("tidewatch launcher")
            .set_function("tidewatch_launcher_main")
            .set_library("tidewatch")
            .set_extra(&db)
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(5)))
            .load();
    }
}

fn database_list() -> Vec<String> {
    let raw = SCHEDULER_DATABASES
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() < 64)
        .map(String::from)
        .collect()
}

fn naptime() -> Duration {
    Duration::from_millis(u64::try_from(SCHEDULER_NAPTIME_MS.get()).unwrap_or(1000))
}

/// The first column of the first row of a read-only query. Unlike `Spi::get_one`, which goes
/// through pgrx's "update" path and so gives the transaction an id, this writes no commit
/// record: a scheduler tick or an idle decoder poll leaves the write-ahead log alone (and so
/// does not wake the decoder of async monitors).
pub(crate) fn select_one<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    Spi::connect(|client| {
        client
            .select(sql, Some(1), args)
            .ok()
            .and_then(|t| t.first().get_one::<T>().ok().flatten())
    })
}

/// The extension in this database, as the scheduler sees it.
#[derive(PartialEq)]
enum Installed {
    No,
    /// Its SQL objects are of this library's version.
    Current,
    /// Its SQL objects are of another version (the library was upgraded and `ALTER EXTENSION
    /// tidewatch UPDATE` has not run yet): jobs and the decoder wait, and the async monitors'
    /// replication slot is kept.
    Other(String),
}

fn extension_installed() -> Installed {
    let version = BackgroundWorker::transaction(|| {
        select_one::<String>(
            "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'tidewatch'",
            &[],
        )
    });
    match version {
        None => Installed::No,
        Some(v) if v == env!("CARGO_PKG_VERSION") => Installed::Current,
        Some(v) => Installed::Other(v),
    }
}

/// A due job: its id, owner, whether the owner may log in, and `max_runtime` in milliseconds
/// (None: no limit).
struct Due {
    id: i32,
    owner: pg_sys::Oid,
    can_login: bool,
    max_runtime_ms: Option<i64>,
}

/// Due jobs of this database (where the extension is installed), at most `limit`, leaving out
/// those that run now.
fn due_jobs(limit: i32, running: &[i32]) -> Vec<Due> {
    BackgroundWorker::transaction(|| {
        Spi::connect(|client| {
            let mut out = Vec::new();
            if let Ok(rows) = client.select(
                "SELECT job_id, owner, (extract(epoch FROM max_runtime) * 1000)::int8, \
                        (SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.oid = owner) \
                 FROM tidewatch._due_jobs($1) WHERE job_id <> ALL ($2)",
                None,
                &[
                    (limit + running.len() as i32).into(),
                    running.to_vec().into(),
                ],
            ) {
                for row in rows {
                    if let (Ok(Some(id)), Ok(Some(owner))) =
                        (row.get::<i32>(1), row.get::<pg_sys::Oid>(2))
                    {
                        let max_runtime_ms = row.get::<i64>(3).ok().flatten();
                        // A role that is gone: connecting as it fails, and the run is recorded.
                        let can_login = row.get::<bool>(4).ok().flatten().unwrap_or(true);
                        out.push(Due {
                            id,
                            owner,
                            can_login,
                            max_runtime_ms,
                        });
                    }
                }
            }
            out.truncate(usize::try_from(limit).unwrap_or(0));
            out
        })
    })
}

/// Record a run whose process ended without recording an outcome (a crash, a FATAL error, or
/// stopped at its max_runtime), with the SQLSTATE that says which.
fn record_crash(job_id: i32, started: TimestampWithTimeZone, reason: &str, sqlstate: &str) {
    BackgroundWorker::transaction(|| {
        if let Err(e) = Spi::run_with_args(
            "SELECT tidewatch._job_crashed($1, $2, $3, $4)",
            &[
                job_id.into(),
                started.into(),
                reason.into(),
                sqlstate.into(),
            ],
        ) {
            warning!("tidewatch scheduler: could not record the outcome of job {job_id}: {e}");
        }
    });
}

/// One job run in progress: its worker, when it began and when it must end.
struct Running {
    job_id: i32,
    started: TimestampWithTimeZone,
    deadline: Option<std::time::Instant>,
    max_runtime_ms: i64,
    stopped: bool,
    worker: pgrx::bgworkers::DynamicBackgroundWorker,
}

/// Reap the runs that ended (recording those that did not record their outcome) and stop the
/// ones past their max_runtime: SIGTERM ends the job's transaction (rolled back) and process.
fn reap_and_stop(running: &mut Vec<Running>) {
    let now = std::time::Instant::now();
    running.retain_mut(|r| {
        match r.worker.pid() {
            Ok(pid) => {
                if !r.stopped && r.deadline.is_some_and(|d| now >= d) {
                    r.stopped = true;
                    warning!(
                        "tidewatch scheduler: job {} ran longer than its max_runtime ({} ms); stopping it",
                        r.job_id,
                        r.max_runtime_ms
                    );
                    BackgroundWorker::transaction(|| {
                        select_one::<bool>("SELECT pg_catalog.pg_terminate_backend($1)", &[pid.into()])
                    });
                }
                true
            }
            // Registered but not started yet (the postmaster starts workers on its own time, later
            // under load): still running as far as the job is concerned. Reaping it here once
            // recorded a crash for a job that then ran, untracked and never stopped.
            Err(BackgroundWorkerStatus::NotYetStarted) => true,
            Err(_) => {
                if !run_recorded(r.job_id, r.started) {
                    if r.stopped {
                        record_crash(
                            r.job_id,
                            r.started,
                            &format!(
                                "stopped after running longer than its max_runtime ({} ms)",
                                r.max_runtime_ms
                            ),
                            "57014",
                        );
                    } else {
                        record_crash(
                            r.job_id,
                            r.started,
                            "the job's worker process ended (terminated or crashed) without recording an outcome; see the server log",
                            "XX000",
                        );
                    }
                }
                false
            }
        }
    });
}

/// Did the run that began at `started` record its outcome?
fn run_recorded(job_id: i32, started: TimestampWithTimeZone) -> bool {
    BackgroundWorker::transaction(|| {
        select_one::<bool>(
            "SELECT coalesce((SELECT last_finish >= $2 FROM tidewatch.job_stat WHERE job_id = $1), false)",
            &[job_id.into(), started.into()],
        )
        .unwrap_or(true)
    })
}

/// Does the database exist? A heap scan of the shared catalog pg_database, as PostgreSQL's
/// autovacuum launcher lists databases: a process connected to no database can read shared
/// catalogs but not open their indexes.
fn database_exists(db: &str) -> bool {
    BackgroundWorker::transaction(|| {
        let mut found = false;
        // SAFETY: pg_database is a shared catalog, readable without a database; the scan and
        // the relation are closed before the transaction ends, and each tuple's fixed part is a
        // FormData_pg_database.
        unsafe {
            let rel = pg_sys::table_open(
                pg_sys::DatabaseRelationId,
                pg_sys::AccessShareLock as pg_sys::LOCKMODE,
            );
            let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
            loop {
                let tup = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
                if tup.is_null() {
                    break;
                }
                let header = (*tup).t_data;
                let form = header
                    .cast::<u8>()
                    .add((*header).t_hoff as usize)
                    .cast::<pg_sys::FormData_pg_database>();
                let name = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr());
                if name.to_bytes() == db.as_bytes() {
                    found = true;
                    break;
                }
            }
            pg_sys::table_endscan(scan);
            pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        }
        found
    })
}

/// A dynamic background worker of this library, connected to a database, never restarted by
/// the postmaster, that tells this process when it starts and ends (so that its starter can
/// wait for it).
fn dynamic_worker(name: &str, typ: &str) -> BackgroundWorkerBuilder {
    BackgroundWorkerBuilder::new(name)
        .set_type(typ)
        .set_library("tidewatch")
        .enable_spi_access()
        .set_restart_time(None)
        // SAFETY: MyProcPid is the current backend's pid, set before any extension code runs.
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
}

/// Background sessions that run as the bootstrap superuser pin their search_path, so that no
/// role's function or operator in `public` can win the resolution of an unqualified name in their
/// queries (an exact-type overload there beats pg_catalog's polymorphic or variadic one).
pub(crate) fn pin_search_path() {
    let pinned = BackgroundWorker::transaction(|| {
        Spi::run("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)")
    });
    if let Err(e) = pinned {
        warning!("tidewatch: could not pin the background session's search_path: {e}");
    }
}

/// The static worker of one database in `tidewatch.scheduler_databases`: connected to no
/// database, it starts that database's scheduler (a dynamic worker) while the database exists,
/// and starts it again after it ends (say, after `DROP DATABASE ... WITH (FORCE)` or
/// `pg_terminate_backend`), at most once per 5 seconds. A database that does not exist (yet, or
/// any more) is waited for quietly: connecting to it would end the worker with a FATAL error, and
/// the postmaster would restart it every few seconds, logging each time.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn tidewatch_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(None, None);
    let mut waiting_logged = false;
    let mut last_start: Option<std::time::Instant> = None;
    while BackgroundWorker::wait_latch(Some(naptime())) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: a background worker re-reads its configuration on SIGHUP in its main loop, as PostgreSQL's own workers do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if last_start.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            continue;
        }
        if !database_exists(&db) {
            if !waiting_logged {
                log!("tidewatch launcher: database \"{db}\" does not exist; waiting for it");
                waiting_logged = true;
            }
            continue;
        }
        waiting_logged = false;
        last_start = Some(std::time::Instant::now());
        let spawned = dynamic_worker(&format!("tidewatch scheduler {db}"), "tidewatch scheduler")
            .set_function("tidewatch_scheduler_main")
            .set_extra(&db)
            .load_dynamic();
        match spawned {
            Ok(worker) => {
                let _ = worker.wait_for_shutdown();
            }
            Err(_) => warning!(
                "tidewatch launcher: could not start the scheduler of database \"{db}\"; \
                 raise max_worker_processes"
            ),
        }
    }
    // Exit with 1 so that a launcher terminated on its own comes back (restart time 5 s); at
    // server shutdown nothing is restarted anyway.
    // SAFETY: proc_exit runs the exit callbacks and ends this worker process; nothing after it runs.
    unsafe { pg_sys::proc_exit(1) };
}

/// The scheduler of one database, started by its launcher.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn tidewatch_scheduler_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    pin_search_path();
    log!("tidewatch scheduler started in database \"{db}\"");
    // SAFETY: MyDatabaseId is set once the worker is connected to its database (line above).
    let dboid = unsafe { pg_sys::MyDatabaseId };
    let mut decoder: Option<pgrx::bgworkers::DynamicBackgroundWorker> = None;
    let mut decoder_started: Option<std::time::Instant> = None;
    let mut jobs: Vec<Running> = Vec::new();
    let mut mismatch_warned: Option<std::time::Instant> = None;

    while BackgroundWorker::wait_latch(Some(naptime())) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: a background worker re-reads its configuration on SIGHUP in its main loop, as PostgreSQL's own workers do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        // The decoder of async monitors runs whether or not jobs are enabled.
        let running = decoder
            .as_ref()
            .is_some_and(|d| matches!(d.pid(), Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted)));
        let state = extension_installed();
        if state == Installed::No && !running {
            crate::monitor_async::drop_orphan_slot();
        }
        if let Installed::Other(v) = &state {
            if mismatch_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(300)) {
                mismatch_warned = Some(std::time::Instant::now());
                warning!(
                    "tidewatch {} is loaded but the extension in database \"{db}\" is at version {v}; \
                     jobs and async monitors wait until you run ALTER EXTENSION tidewatch UPDATE there",
                    env!("CARGO_PKG_VERSION")
                );
            }
        }
        let installed = state == Installed::Current;
        // At most one start per 5 seconds: a decoder that keeps failing (its error is in the
        // server log) must not be restarted in a tight loop.
        let may_start = decoder_started.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if !running && may_start && installed && crate::monitor_async::decoder_wanted() {
            decoder_started = Some(std::time::Instant::now());
            match dynamic_worker(&format!("tidewatch decoder {db}"), "tidewatch decoder")
                .set_function("tidewatch_decoder_main")
                .set_extra(&db)
                .load_dynamic()
            {
                Ok(w) => decoder = Some(w),
                Err(_) => warning!(
                    "tidewatch scheduler: could not start the decoder of async monitors; \
                     raise max_worker_processes"
                ),
            }
        }
        reap_and_stop(&mut jobs);
        if !SCHEDULER_ENABLED.get() || !installed {
            continue;
        }
        // Jobs run side by side, up to tidewatch.max_parallel_jobs: one that hangs delays no
        // other (until that many hang), and is stopped at its max_runtime.
        let free = MAX_PARALLEL_JOBS.get() - jobs.len() as i32;
        if free <= 0 {
            continue;
        }
        let busy: Vec<i32> = jobs.iter().map(|r| r.job_id).collect();
        for due in due_jobs(free, &busy) {
            if BackgroundWorker::sigterm_received() {
                break;
            }
            let started = BackgroundWorker::transaction(|| {
                select_one::<TimestampWithTimeZone>("SELECT clock_timestamp()", &[])
            });
            let Some(started) = started else {
                continue;
            };
            let spawned = dynamic_worker(&format!("tidewatch job {}", due.id), "tidewatch job")
                .set_function("tidewatch_job_main")
                .set_argument(due.id.into_datum())
                .set_extra(&format!(
                    "{} {} {}",
                    dboid.to_u32(),
                    due.owner.to_u32(),
                    u32::from(due.can_login)
                ))
                .load_dynamic();
            match spawned {
                Ok(worker) => jobs.push(Running {
                    job_id: due.id,
                    started,
                    deadline: due.max_runtime_ms.map(|ms| {
                        std::time::Instant::now()
                            + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                    }),
                    max_runtime_ms: due.max_runtime_ms.unwrap_or(0),
                    stopped: false,
                    worker,
                }),
                Err(_) => {
                    warning!(
                        "tidewatch scheduler: could not start a worker for job {}; \
                         raise max_worker_processes",
                        due.id
                    );
                    break;
                }
            }
        }
    }
    // Runs in progress go on and record their own outcome.
    log!("tidewatch scheduler in database \"{db}\" is stopping");
    // Its launcher starts it again while the database exists.
}

/// Run the rest of this worker's transaction as `owner`, a role that may not log in (the worker is
/// connected as the bootstrap superuser): its settings (`ALTER ROLE ... SET`, for this database
/// and for all) are applied first, as a login would, then the user id is switched the way a
/// SECURITY DEFINER function switches it (`SECURITY_LOCAL_USERID_CHANGE`, which also refuses
/// `SET ROLE` and `SET SESSION AUTHORIZATION`, so the job cannot take the session's superuser
/// rights back). PostgreSQL 17 has `BGWORKER_BYPASS_ROLELOGINCHECK` for this; 15 does not.
/// Returns false (and says why) when the role is gone.
fn become_owner(owner: pg_sys::Oid) -> bool {
    let settings: Result<Option<Vec<String>>, _> = Spi::connect(|client| {
        let exists = client
            .select(
                "SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = $1",
                None,
                &[owner.into()],
            )?
            .len();
        if exists == 0 {
            return Ok(None);
        }
        // Settings for every database first, then this database's (which win), as at login.
        let rows = client.select(
            "SELECT s.c FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) WITH ORDINALITY AS s(c, i) \
             WHERE d.setrole = $1 AND d.setdatabase IN (0, (SELECT b.oid FROM pg_catalog.pg_database b \
                                                           WHERE b.datname = pg_catalog.current_database())) \
             ORDER BY d.setdatabase <> 0, s.i",
            None,
            &[owner.into()],
        )?;
        Ok::<_, pgrx::spi::SpiError>(Some(
            rows.filter_map(|r| r.get::<String>(1).ok().flatten())
                .collect(),
        ))
    });
    let settings = match settings {
        Ok(Some(s)) => s,
        Ok(None) => {
            warning!(
                "tidewatch job worker: the job's owner (role {}) does not exist",
                owner.to_u32()
            );
            return false;
        }
        Err(e) => {
            warning!("tidewatch job worker: could not read the settings of the job's owner: {e}");
            return false;
        }
    };
    for setting in settings {
        if let Some((name, value)) = setting.split_once('=') {
            if let Err(e) = Spi::run_with_args(
                "SELECT pg_catalog.set_config($1, $2, false)",
                &[name.into(), value.into()],
            ) {
                warning!("tidewatch job worker: the owner's setting {name} was not applied: {e}");
            }
        }
    }
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0;
    // SAFETY: as fmgr_security_definer does; the transaction started before this call saved the
    // superuser as its user to restore on abort, and the process ends after this transaction.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    true
}

// PostgreSQL's SIGTERM handler of backends (postgres.c): the C symbol itself, since pgrx's
// `pg_sys::die` is a Rust wrapper and a signal handler must be the C function.
unsafe extern "C-unwind" {
    #[link_name = "die"]
    fn postgres_die(signal: std::ffi::c_int);
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn tidewatch_job_main(arg: pg_sys::Datum) {
    // SIGTERM (pg_terminate_backend, DROP DATABASE ... WITH (FORCE), server shutdown) is handled as
    // in a regular backend: die() marks the process and it exits at its next interrupt check, out
    // of any critical section. PostgreSQL's default for background workers, bgworker_die(),
    // raises FATAL from the signal handler itself, which becomes a PANIC (and restarts the whole
    // server) when the signal lands in a critical section: measured once in the test suite, a job
    // writing WAL when its database was dropped. SIGINT (pg_cancel_backend) cancels its query.
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    // SAFETY: installing PostgreSQL's own die() handler for SIGTERM (15 on Linux, the only
    // platform built here), as its backends and parallel workers do; signals are unblocked above.
    unsafe {
        pg_sys::pqsignal(15, Some(postgres_die));
    }
    // SAFETY: the worker's main argument is the int4 job id the scheduler registered it with.
    let job_id = unsafe { i32::from_datum(arg, false) }.unwrap_or(0);
    let mut parts = BackgroundWorker::get_extra()
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok());
    let (Some(dboid), Some(useroid)) = (parts.next(), parts.next()) else {
        warning!("tidewatch job worker started without database and role");
        return;
    };
    let owner = pg_sys::Oid::from(useroid);
    // A NOLOGIN owner (a group role owning the tables, as is common) cannot be connected as: the
    // worker connects as the bootstrap superuser and becomes the owner (become_owner).
    let can_login = parts.next() != Some(0);
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(dboid)),
        can_login.then_some(owner),
    );
    BackgroundWorker::transaction(|| {
        if !can_login && !become_owner(owner) {
            return;
        }
        // _execute_job catches the job's own errors; anything else ends this process only.
        let _ = Spi::run_with_args(
            "SELECT tidewatch._execute_job($1, true, pg_catalog.current_setting('search_path'))",
            &[job_id.into()],
        );
    });
}
