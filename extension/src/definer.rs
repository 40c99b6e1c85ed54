//! Catalog reads of a sync log monitor's row trigger, made as the extension's owner.
//!
//! The row trigger runs as the role that inserts the lines, which may hold INSERT on its log
//! table and nothing else: the row-level policies (sql/isolation.sql) then hide the monitor, its
//! miner and its classifier from it, and its lines were refused. The trigger's once-per-statement
//! catalog reads therefore run here as the extension's owner, the way a SECURITY DEFINER function
//! would (`fmgr_security_definer` in PostgreSQL's fmgr.c: switch the user id with
//! `SECURITY_LOCAL_USERID_CHANGE`, pin `search_path` in a new GUC nest level, undo both after).
//! Only the slow paths come here (a monitor's, miner's or ruleset's first use in a statement);
//! the per-row work stays in memory. The miner's writes of its templates come here too
//! (log_miner::persist, for any caller that was shown the miner): PUBLIC may not write templates
//! by hand. On an error, the transaction's (or subtransaction's) abort restores the user id and
//! the GUC nest level, as it does for a SECURITY DEFINER function.

use crate::errors;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

thread_local! {
    /// The extension's owner, read once per transaction (local transaction id, owner).
    static OWNER: std::cell::Cell<(u32, pg_sys::Oid)> = const { std::cell::Cell::new((0, pg_sys::Oid::INVALID)) };
}

/// The role that owns the extension (and so its catalog tables, to which row-level security
/// does not apply).
fn extension_owner() -> pg_sys::Oid {
    // SAFETY: MyProc is set for every backend that runs SQL.
    let lxid = unsafe { pg_sys::MyProc.as_ref().map_or(0, |p| p.lxid) };
    let (at, cached) = OWNER.get();
    if at == lxid && lxid != 0 {
        return cached;
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT e.extowner FROM pg_catalog.pg_extension e \
         WHERE e.extname OPERATOR(pg_catalog.=) 'tidewatch'",
    );
    match owner {
        Ok(Some(o)) => {
            OWNER.set((lxid, o));
            o
        }
        _ => errors::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "extension \"tidewatch\" is not installed in this database".into(),
            None,
            None,
        ),
    }
}

/// Run `f` as the extension's owner with `search_path` pinned to `pg_catalog, pg_temp`.
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0;
    // SAFETY: the same calls, in the same order, as fmgr_security_definer: read the current user
    // id and security context, switch to the owner for local use, open a GUC nest level and set
    // search_path in it (GUC_ACTION_SAVE: undone by AtEOXact_GUC below, or by the abort).
    let nest = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    let r = f();
    // SAFETY: undo the two changes above, innermost first, as fmgr_security_definer does.
    unsafe {
        pg_sys::AtEOXact_GUC(true, nest);
        pg_sys::SetUserIdAndSecContext(user, context);
    }
    r
}
