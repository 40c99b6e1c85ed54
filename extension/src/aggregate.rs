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

// ---------------------------------------------------------------------------------------------
// bytea states held as expanded objects.
//
// Citus runs a user-defined aggregate partially on its workers only when the aggregate's state
// has a real type: it ships states between nodes through the type's output and input functions
// and refuses `internal` (citus multi_logical_optimizer.c, AggregateEnabledCustom: a pseudo-type
// state pulls every row to the coordinator instead). So the aggregates that must run partially
// on workers (`regression_quality`, `classification_quality`, ...) have a `bytea` state. In
// memory it is an *expanded object* (PostgreSQL's mechanism behind `array_append` in
// aggregates, src/include/utils/expandeddatum.h): the datum points at the Rust value, which the
// transition function changes in place row after row, with no copy. It becomes bytes (the
// state's `to_bytes` form, a plain bytea) only where it leaves the backend: in a parallel
// worker's result tuple, a Citus worker's partial result (byteaout), a spilled hash aggregate;
// the combine function reads such bytes back with `from_bytes`. A bytea state needs no
// serialize/deserialize functions: the bytea is the serialized form.
// ---------------------------------------------------------------------------------------------

/// A Rust value that serves as the state of an aggregate with a `bytea` state type.
pub trait AggState: Clone + Sized + 'static {
    /// Its byte form: the flat bytea that crosses process and node boundaries.
    fn to_bytes(&self) -> Vec<u8>;
    /// The value back from its byte form; an error (never a panic) for bytes it did not write.
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
    /// Add another state of the same aggregate call (the combine step).
    fn merge(&mut self, other: &Self);
    /// The expanded-object methods of this type: write them with `expanded_state!(Type)`.
    fn methods() -> &'static pg_sys::ExpandedObjectMethods;
}

/// `impl AggState`'s `methods` for `$t`, with its flattening functions: one static method table
/// per state type, whose address also tells this type's objects apart from any other.
macro_rules! expanded_methods {
    ($t:ty) => {
        fn methods() -> &'static ::pgrx::pg_sys::ExpandedObjectMethods {
            /// # Safety
            /// Called by PostgreSQL with the header of an expanded `$t` state.
            #[::pgrx::pg_guard]
            unsafe extern "C-unwind" fn flat_size(
                eoh: *mut ::pgrx::pg_sys::ExpandedObjectHeader,
            ) -> ::pgrx::pg_sys::Size {
                // SAFETY: PostgreSQL calls this only for objects with these methods.
                unsafe { $crate::aggregate::flat_size::<$t>(eoh) }
            }
            /// # Safety
            /// Called by PostgreSQL right after flat_size, with as many bytes as it returned.
            #[::pgrx::pg_guard]
            unsafe extern "C-unwind" fn flatten_into(
                eoh: *mut ::pgrx::pg_sys::ExpandedObjectHeader,
                result: *mut ::std::ffi::c_void,
                allocated_size: ::pgrx::pg_sys::Size,
            ) {
                // SAFETY: as for flat_size.
                unsafe { $crate::aggregate::flatten_into::<$t>(eoh, result, allocated_size) }
            }
            static METHODS: ::pgrx::pg_sys::ExpandedObjectMethods =
                ::pgrx::pg_sys::ExpandedObjectMethods {
                    get_flat_size: Some(flat_size),
                    flatten_into: Some(flatten_into),
                };
            &METHODS
        }
    };
}
pub(crate) use expanded_methods;

/// `pg_finfo_*` records for version-1 C functions written by hand (transition and combine
/// functions, which must see the state datum as it is, not detoasted or flattened).
macro_rules! finfo_v1 {
    ($($name:ident),+ $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            pub extern "C" fn $name() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                static V1: ::pgrx::pg_sys::Pg_finfo_record =
                    ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }
        )+
    };
}
pub(crate) use finfo_v1;

/// An expanded state: the header PostgreSQL knows (first, so that a pointer to one is a pointer
/// to the other), the value, and its bytes between `flat_size` and `flatten_into`.
#[repr(C)]
struct Expanded<T> {
    hdr: pg_sys::ExpandedObjectHeader,
    state: T,
    flat: Option<Vec<u8>>,
}

/// `EOM_get_flat_size_method`: the size of the byte form with its varlena header.
///
/// # Safety
/// `eoh` is the header of an `Expanded<T>` made by `new_state`.
pub unsafe fn flat_size<T: AggState>(eoh: *mut pg_sys::ExpandedObjectHeader) -> pg_sys::Size {
    // SAFETY: the header is the first field of an Expanded<T> (the methods are per type).
    let e = unsafe { &mut *eoh.cast::<Expanded<T>>() };
    let bytes = e.state.to_bytes();
    let size = bytes.len() + pg_sys::VARHDRSZ;
    e.flat = Some(bytes);
    size
}

/// `EOM_flatten_into_method`: the byte form into `allocated_size` bytes at `result`.
///
/// # Safety
/// As for `flat_size`; `result` has `allocated_size` writable bytes.
pub unsafe fn flatten_into<T: AggState>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
    result: *mut std::ffi::c_void,
    allocated_size: pg_sys::Size,
) {
    // SAFETY: as in flat_size.
    let e = unsafe { &mut *eoh.cast::<Expanded<T>>() };
    let bytes = e.flat.take().unwrap_or_else(|| e.state.to_bytes());
    let n = bytes
        .len()
        .min(allocated_size.saturating_sub(pg_sys::VARHDRSZ));
    // SAFETY: result has allocated_size >= n + VARHDRSZ bytes; the varlena header takes 4.
    unsafe {
        pgrx::set_varsize_4b(
            result.cast(),
            i32::try_from(n + pg_sys::VARHDRSZ).unwrap_or(i32::MAX),
        );
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), result.cast::<u8>().add(pg_sys::VARHDRSZ), n);
    }
}

/// Our expanded object behind `d` and whether the pointer is read-write; None for a flat bytea
/// (or any other expanded object).
///
/// # Safety
/// `d` is a non-NULL bytea datum.
unsafe fn expanded<T: AggState>(d: pg_sys::Datum) -> Option<(*mut Expanded<T>, bool)> {
    let p = d.cast_mut_ptr::<u8>();
    // VARATT_IS_EXTERNAL_EXPANDED: a 1-byte external header (0x01 on little-endian machines)
    // whose tag is VARTAG_EXPANDED_RO or _RW (postgres.h).
    // SAFETY: a varlena has at least its first header byte.
    if unsafe { *p } != 0x01 {
        return None;
    }
    // SAFETY: an external varlena has its tag right after its header byte.
    let tag = u32::from(unsafe { *p.add(1) });
    let rw = tag == pg_sys::vartag_external::VARTAG_EXPANDED_RW;
    if !(rw || tag == pg_sys::vartag_external::VARTAG_EXPANDED_RO) {
        return None;
    }
    // DatumGetEOHP, read here without a call into PostgreSQL (this runs once per row): an
    // expanded datum is its 2-byte header followed by the (unaligned) header pointer.
    // SAFETY: an expanded external datum holds a varatt_expanded after its 2 header bytes.
    let eoh =
        unsafe { std::ptr::read_unaligned(p.add(2).cast::<*mut pg_sys::ExpandedObjectHeader>()) };
    // SAFETY: eoh is a live expanded object header.
    if !std::ptr::eq(unsafe { (*eoh).eoh_methods }, T::methods()) {
        return None;
    }
    Some((eoh.cast::<Expanded<T>>(), rw))
}

/// A state from its byte form, or an error that says so.
///
/// # Safety
/// `d` is a non-NULL bytea datum.
unsafe fn from_flat<T: AggState>(d: pg_sys::Datum) -> T {
    // SAFETY: a bytea; from_datum detoasts (and flattens any foreign expanded value).
    let bytes = unsafe { <&[u8]>::from_datum(d, false) }.unwrap_or_default();
    T::from_bytes(bytes).unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid aggregate state: {e}"),
            Some(format!("The state has {} bytes.", bytes.len())),
            Some("Pass only states made by the same Tidewatch aggregate.".into()),
        )
    })
}

/// A new expanded state in its own memory context, a child of the aggregate's (so that the
/// executor adopts it without a copy); the Rust value is dropped with that context.
fn new_state<T: AggState>(ctx: pg_sys::MemoryContext, state: T) -> (&'static mut T, pg_sys::Datum) {
    // SAFETY: a child of the live aggregate context, sized like PostgreSQL's expanded arrays.
    let own = unsafe {
        pg_sys::AllocSetContextCreateInternal(
            ctx,
            c"tidewatch aggregate state".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    };
    let e = PgMemoryContexts::For(own).leak_and_drop_on_delete(Expanded {
        hdr: pg_sys::ExpandedObjectHeader::default(),
        state,
        flat: None,
    });
    // SAFETY: e lives until `own` is deleted; EOH_init_header fills in the header and its
    // read-write and read-only pointers.
    unsafe {
        pg_sys::EOH_init_header(&mut (*e).hdr, T::methods(), own);
        (
            &mut (*e).state,
            pg_sys::Datum::from((*e).hdr.eoh_rw_ptr.as_ptr()),
        )
    }
}

/// The state in argument 0 of an aggregate support function, ready to change in place, and the
/// datum to return. NULL: a new state from `init`. Our object behind a read-write pointer: that
/// object. A read-only one, or the byte form (a partial state from a parallel or a Citus worker,
/// a foreign expanded value): a new object in the aggregate's context with a copy.
///
/// # Safety
/// Argument 0 of `fcinfo` is a bytea (the state); the reference lives until the datum is
/// returned to the executor.
pub unsafe fn expanded_mut<T: AggState>(
    fcinfo: pg_sys::FunctionCallInfo,
    init: impl FnOnce() -> T,
) -> (&'static mut T, pg_sys::Datum) {
    // SAFETY: fmgr's fcinfo has at least one argument.
    let arg = unsafe { args(fcinfo) }[0];
    // The path of every row but the first: our object behind a read-write pointer, which the
    // executor passes only to a function allowed to change it in place (expandeddatum.h). No
    // call into PostgreSQL here (each costs a setjmp guard).
    // SAFETY: a non-NULL bytea datum (the caller's contract).
    let found = (!arg.isnull)
        .then(|| unsafe { expanded::<T>(arg.value) })
        .flatten();
    if let Some((e, true)) = found {
        // SAFETY: e is a live Expanded<T>.
        let e = unsafe { &mut *e };
        e.flat = None;
        return (&mut e.state, arg.value);
    }
    let ctx = agg_context(fcinfo);
    match found {
        _ if arg.isnull => new_state(ctx, init()),
        // SAFETY: a live Expanded<T>, read-only: copied.
        Some((e, _)) => new_state(ctx, unsafe { &*e }.state.clone()),
        // SAFETY: as above.
        None => new_state(ctx, unsafe { from_flat::<T>(arg.value) }),
    }
}

/// A state read in place (an expanded object) or decoded from its byte form.
pub enum StateRef<T: 'static> {
    Borrowed(&'static T),
    Owned(T),
}

impl<T> std::ops::Deref for StateRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            StateRef::Borrowed(t) => t,
            StateRef::Owned(t) => t,
        }
    }
}

/// The state in a bytea datum for reading (final functions, the second argument of combine): no
/// copy of an expanded object. None for NULL.
///
/// # Safety
/// `arg` is a bytea argument of the current call; the reference must not outlive the call.
pub unsafe fn expanded_ref<T: AggState>(arg: pg_sys::NullableDatum) -> Option<StateRef<T>> {
    if arg.isnull {
        return None;
    }
    // SAFETY: a non-NULL bytea datum (the caller's contract).
    Some(match unsafe { expanded::<T>(arg.value) } {
        // SAFETY: a live Expanded<T>, alive for the rest of the call.
        Some((e, _)) => StateRef::Borrowed(unsafe { &(*e).state }),
        // SAFETY: as above.
        None => StateRef::Owned(unsafe { from_flat::<T>(arg.value) }),
    })
}

/// The combine function of every bytea-state aggregate: (bytea, bytea) → bytea, not strict.
///
/// # Safety
/// Only for fmgr, as the combine function of an aggregate whose state is `T`.
pub unsafe fn combine<T: AggState>(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fmgr's fcinfo with two bytea arguments.
    let a = unsafe { args(fcinfo) };
    // SAFETY: argument 1 is a state of this aggregate (or bytes to check).
    let Some(other) = (unsafe { expanded_ref::<T>(a[1]) }) else {
        if a[0].isnull {
            // SAFETY: fmgr's fcinfo.
            unsafe { (*fcinfo).isnull = true };
        }
        return a[0].value;
    };
    let first = a[0].isnull;
    // SAFETY: argument 0 is this aggregate's state (NULL: it starts as a copy of the other).
    let (s, d) = unsafe { expanded_mut::<T>(fcinfo, || (*other).clone()) };
    if !first {
        s.merge(&other);
    }
    d
}

/// Arguments of a version-1 C function.
///
/// # Safety
/// `fcinfo` is fmgr's.
pub unsafe fn args<'a>(fcinfo: pg_sys::FunctionCallInfo) -> &'a [pg_sys::NullableDatum] {
    // SAFETY: fmgr's fcinfo holds nargs arguments.
    unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) }
}
