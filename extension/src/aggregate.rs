//! Plumbing shared by the `internal`-state aggregates: states live in the aggregate's memory
//! context, and every aggregate has combine, serialize and deserialize functions so that it runs
//! under parallel query and on distributed PostgreSQL (Citus).

use crate::errors;
use pgrx::prelude::*;
use pgrx::{Internal, PgMemoryContexts, PgSqlErrorCode};

/// The aggregate's memory context, where states live; an error when not called as an aggregate.
pub fn agg_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is the caller's; AggCheckCallContext only reads it.
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 || ctx.is_null() {
        errors::raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "this function is an aggregate's transition function".into(),
            None,
            Some("Call the aggregate instead.".into()),
        );
    }
    ctx
}

/// The state in `state`, or a new `T::default()` allocated in the aggregate memory context.
///
/// # Safety
/// `state` must be NULL or hold a `T` created by this function for the same aggregate.
pub unsafe fn state_mut<T: Default>(
    state: &mut Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> &mut T {
    if !state.initialized() {
        let ctx = agg_context(fcinfo);
        // SAFETY: the new value lives (and is dropped) with the aggregate's memory context.
        unsafe { PgMemoryContexts::For(ctx).switch_to(|_| *state = Internal::new(T::default())) };
    }
    // SAFETY: initialised above or by an earlier call with the same T (the caller's contract).
    unsafe { state.get_mut::<T>() }.unwrap_or_else(|| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "aggregate state is missing".into(),
            None,
            None,
        )
    })
}

/// A state from its serialized bytes, in the aggregate memory context.
pub fn deserialize<T, E: std::fmt::Display>(
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let value = parse(bytes).unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid serialized aggregate state: {e}"),
            None,
            None,
        )
    });
    let mut ctx: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is the caller's; AggCheckCallContext only reads it.
    let in_agg = unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } != 0 && !ctx.is_null();
    if in_agg {
        // SAFETY: allocate in the aggregate context, as the executor expects for states.
        unsafe { PgMemoryContexts::For(ctx).switch_to(|_| Internal::new(value)) }
    } else {
        Internal::new(value)
    }
}
