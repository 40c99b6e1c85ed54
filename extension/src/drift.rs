//! Drift statistics in SQL: `drift(reference, current, method, threshold)` over arrays, the
//! parallel-safe aggregates `drift_agg(value, is_current [, method, threshold])`, and
//! `drift_report` / `drift_summary` over a table's time windows (sql/drift.sql). The statistics
//! are `crates/tidewatch-drift`.

use crate::aggregate::{
    self, args, expanded_methods, expanded_mut, expanded_ref, finfo_v1, AggState,
};
use crate::errors;
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum, PgSqlErrorCode};
use tidewatch_drift::samples::Samples;
use tidewatch_drift::{DriftError, DriftReport};

extension_sql!(
    r#"
CREATE TYPE tidewatch.drift_result AS (
    method text, statistic float8, p_value float8, threshold float8, drifted boolean,
    reference_count bigint, current_count bigint, reference_dropped bigint, current_dropped bigint,
    reference_nulls bigint, current_nulls bigint);
"#,
    name = "drift_types"
);

use crate::errors::drift as raise;

type ResultRow = (String, Option<f64>, Option<f64>, f64, bool);

fn row(report: DriftReport) -> ResultRow {
    let r = report.result;
    (
        r.method.to_string(),
        Some(r.statistic).filter(|s| !s.is_nan()),
        r.p_value,
        r.threshold,
        r.drifted,
    )
}

/// Drift between two numeric samples. NULL elements are skipped; NaN and ±Infinity are dropped.
#[pg_extern(immutable, parallel_safe, name = "drift")]
fn drift_numeric(
    reference: Option<Array<f64>>,
    current: Option<Array<f64>>,
    method: default!(Option<String>, "'auto'"),
    threshold: default!(Option<f64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(statistic, Option<f64>),
        name!(p_value, Option<f64>),
        name!(threshold, f64),
        name!(drifted, bool),
    ),
> {
    let reference = errors::required(reference, "reference");
    let current = errors::required(current, "current");
    let method = errors::required(method, "method");
    let s = Samples {
        reference: reference.iter().flatten().collect(),
        current: current.iter().flatten().collect(),
        methods: vec![(method, threshold)],
        ..Default::default()
    };
    TableIterator::once(row(s.test().unwrap_or_else(|e| raise(e))))
}

/// Drift between two categorical samples. NULL elements are skipped.
#[pg_extern(immutable, parallel_safe, name = "drift")]
fn drift_categorical(
    reference: Option<Array<&str>>,
    current: Option<Array<&str>>,
    method: default!(Option<String>, "'auto'"),
    threshold: default!(Option<f64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(statistic, Option<f64>),
        name!(p_value, Option<f64>),
        name!(threshold, f64),
        name!(drifted, bool),
    ),
> {
    let reference = errors::required(reference, "reference");
    let current = errors::required(current, "current");
    let method = errors::required(method, "method");
    let s = Samples {
        reference: reference.iter().flatten().map(String::from).collect(),
        current: current.iter().flatten().map(String::from).collect(),
        methods: vec![(method, threshold)],
        ..Default::default()
    };
    TableIterator::once(row(s.test().unwrap_or_else(|e| raise(e))))
}

// The drift aggregates' state: both windows of a column (and the methods), a `bytea` held as an
// expanded object (crate::aggregate), so that Citus runs them partially on its workers. Its byte
// form keeps every number of a numeric column (as distinct values with counts when they repeat)
// and counts per category of a categorical one.
impl AggState for Samples<f64> {
    fn to_bytes(&self) -> Vec<u8> {
        Samples::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Samples::from_bytes(bytes)
    }
    fn merge(&mut self, other: &Self) {
        Samples::merge(self, other);
    }
    expanded_methods!(Samples<f64>);
}

impl AggState for Samples<String> {
    fn to_bytes(&self) -> Vec<u8> {
        Samples::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Samples::from_bytes(bytes)
    }
    fn merge(&mut self, other: &Self) {
        Samples::merge(self, other);
    }
    expanded_methods!(Samples<String>);
}

fn result_tuple(
    report: Result<DriftReport, DriftError>,
    nulls: [u64; 2],
) -> pgrx::composite_type!('static, "drift_result") {
    let r = report.unwrap_or_else(|e| raise(e));
    let mut t = PgHeapTuple::new_composite_type("tidewatch.drift_result").unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            e.to_string(),
            None,
            None,
        )
    });
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let _ = t.set_by_name("method", r.result.method);
    let _ = t.set_by_name(
        "statistic",
        Some(r.result.statistic).filter(|s| !s.is_nan()),
    );
    let _ = t.set_by_name("p_value", r.result.p_value);
    let _ = t.set_by_name("threshold", r.result.threshold);
    let _ = t.set_by_name("drifted", r.result.drifted);
    let _ = t.set_by_name("reference_count", count(r.n_reference));
    let _ = t.set_by_name("current_count", count(r.n_current));
    let _ = t.set_by_name("reference_dropped", count(r.dropped_reference));
    let _ = t.set_by_name("current_dropped", count(r.dropped_current));
    let _ = t.set_by_name("reference_nulls", count(nulls[0] as usize));
    let _ = t.set_by_name("current_nulls", count(nulls[1] as usize));
    t
}

fn finish(
    report: Result<DriftReport, DriftError>,
) -> pgrx::composite_type!('static, "drift_result") {
    result_tuple(report, [0, 0])
}

// The transition functions are what a scan calls once per row and column, so they are plain
// version-1 C functions (as time_bucket): `#[pg_extern]`'s Internal and argument conversion cost
// about 150 ns a row, more than the rest of the work. Methods and thresholds are read from the
// arguments of the first call only (they are constant per aggregate call). The state is a
// `Samples<T>` held as an expanded bytea (crate::aggregate), which the combine and final
// functions, plain C functions too, read in place.

/// The declared type of argument `i`: from the call's expression, or, when the caller gave none
/// (Citus' worker_partial_agg calls the transition function through fmgr_info alone), from the
/// function's own signature in pg_proc.
///
/// # Safety
/// `fcinfo` is fmgr's.
unsafe fn arg_type(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> pg_sys::Oid {
    // SAFETY: flinfo is set by fmgr for every call.
    let flinfo = unsafe { (*fcinfo).flinfo };
    // SAFETY: as above; get_fn_expr_argtype returns InvalidOid without an expression.
    let t = unsafe { pg_sys::get_fn_expr_argtype(flinfo, i as i32) };
    if t != pg_sys::InvalidOid {
        return t;
    }
    let mut types: *mut pg_sys::Oid = std::ptr::null_mut();
    let mut n: i32 = 0;
    // SAFETY: fn_oid is the called function's; get_func_signature pallocs its argument types.
    unsafe { pg_sys::get_func_signature((*flinfo).fn_oid, &mut types, &mut n) };
    if types.is_null() || i >= usize::try_from(n).unwrap_or(0) {
        return pg_sys::InvalidOid;
    }
    // SAFETY: types holds n argument types.
    unsafe { *types.add(i) }
}

/// The methods of an aggregate call: none (auto), `(text, float8)` or `(text[], float8[])`.
///
/// # Safety
/// `fcinfo` is fmgr's, with at least `nargs` arguments.
unsafe fn methods_of(fcinfo: pg_sys::FunctionCallInfo, nargs: usize) -> Vec<(String, Option<f64>)> {
    if nargs < 4 {
        return Vec::new();
    }
    // SAFETY: fmgr's fcinfo holds nargs arguments.
    let args = unsafe { (*fcinfo).args.as_slice(nargs) };
    let arg = |i: usize| (args[i].value, args[i].isnull);
    // SAFETY: flinfo is set by fmgr for every call.
    let array = unsafe { arg_type(fcinfo, 3) } == pg_sys::TEXTARRAYOID;
    if array {
        let (d, n) = arg(3);
        // SAFETY: argument 3 is a text[] (checked above).
        let names: Vec<Option<String>> = unsafe { Vec::from_datum(d, n) }.unwrap_or_default();
        let thresholds: Vec<Option<f64>> = if nargs > 4 {
            let (d, n) = arg(4);
            // SAFETY: argument 4 is a float8[] in the (text[], float8[]) form.
            unsafe { Vec::from_datum(d, n) }.unwrap_or_default()
        } else {
            Vec::new()
        };
        if names.is_empty() {
            errors::raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "the list of drift methods is empty".into(),
                None,
                Some("Pass methods such as ARRAY['ks', 'psi', 'wasserstein'], or 'auto'.".into()),
            );
        }
        return names
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let m = m.unwrap_or_else(|| "auto".into());
                check_method(&m);
                (m, thresholds.get(i).copied().flatten())
            })
            .collect();
    }
    let (d, n) = arg(3);
    // SAFETY: argument 3 is a text in the (text, float8) form.
    let method: String = unsafe { String::from_datum(d, n) }.unwrap_or_else(|| "auto".into());
    check_method(&method);
    let threshold = if nargs > 4 {
        let (d, n) = arg(4);
        // SAFETY: argument 4 is a float8.
        unsafe { f64::from_datum(d, n) }
    } else {
        None
    };
    vec![(method, threshold)]
}

/// An unknown method is an error at the first row, not after the whole scan.
fn check_method(m: &str) {
    if m != "auto" && !tidewatch_drift::METHODS.contains(&m) {
        raise(DriftError::UnknownMethod {
            name: m.to_string(),
            valid: tidewatch_drift::METHODS.join(", "),
        });
    }
}

/// One row: the state (created in the aggregate context on the first row), then the value or
/// a NULL counted for its window. Rows with a NULL is_current are skipped.
///
/// # Safety
/// Called by fmgr as the transition function of an aggregate whose state is `Samples<T>`.
unsafe fn step_fcinfo<T: Clone>(
    fcinfo: pg_sys::FunctionCallInfo,
    value: impl FnOnce(pg_sys::Datum) -> T,
) -> pg_sys::Datum
where
    Samples<T>: AggState,
{
    // SAFETY: fmgr's fcinfo; nargs is at least 3 for these aggregates.
    let a = unsafe { args(fcinfo) };
    let nargs = a.len();
    // SAFETY: argument 0 is this aggregate's state; a new one reads the methods of the call.
    let (s, d) = unsafe {
        expanded_mut::<Samples<T>>(fcinfo, || Samples::<T> {
            // SAFETY: same fcinfo, nargs arguments.
            methods: methods_of(fcinfo, nargs),
            ..Default::default()
        })
    };
    if !a[2].isnull {
        let is_current = a[2].value.value() != 0;
        if a[1].isnull {
            s.add_null(is_current);
        } else {
            s.add(value(a[1].value), is_current);
        }
    }
    d
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_drift_num_step() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Transition of the numeric drift aggregates: (internal, float8, boolean [, text, float8 |
/// text[] [, float8[]]]).
///
/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_drift_num_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: declared with a float8 second argument, passed by value.
    unsafe { step_fcinfo::<f64>(fcinfo, |d| f64::from_bits(d.value() as u64)) }
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_drift_cat_step() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Transition of the categorical drift aggregates: (internal, text, boolean [, ...]).
///
/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_drift_cat_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: declared with a text second argument; it is not NULL when this closure runs.
    unsafe { step_fcinfo::<String>(fcinfo, |d| String::from_datum(d, false).unwrap_or_default()) }
}

extension_sql!(
    r#"
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean, text, float8) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean, text[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean, text[], float8[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean, text, float8) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean, text[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean, text[], float8[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
"#,
    name = "drift_steps",
    requires = ["drift_types"]
);

/// The tests of a state, numeric or categorical.
trait Tested: Clone + Default {
    fn all(&self) -> Vec<Result<DriftReport, DriftError>>;
    fn nulls(&self) -> [u64; 2];
}

impl Tested for Samples<f64> {
    fn all(&self) -> Vec<Result<DriftReport, DriftError>> {
        self.test_all()
    }
    fn nulls(&self) -> [u64; 2] {
        self.nulls
    }
}

impl Tested for Samples<String> {
    fn all(&self) -> Vec<Result<DriftReport, DriftError>> {
        self.test_all()
    }
    fn nulls(&self) -> [u64; 2] {
        self.nulls
    }
}

/// Every method's result of a state (an empty state when no row came: an error per method).
fn results<S: Tested>(s: &S) -> Vec<pgrx::composite_type!('static, "drift_result")> {
    s.all()
        .into_iter()
        .map(|r| result_tuple(r, s.nulls()))
        .collect()
}

/// The state in argument 0 of a final function, read in place (the windows can hold 10^7
/// values: no copy of an expanded state), and what to do with it.
///
/// # Safety
/// Only for fmgr, as the final function of an aggregate whose state is `S`.
unsafe fn with_state<S: Tested + AggState, R>(
    fcinfo: pg_sys::FunctionCallInfo,
    f: impl FnOnce(&S) -> R,
) -> R {
    // SAFETY: fmgr's fcinfo, declared (bytea).
    let state = unsafe { expanded_ref::<S>(args(fcinfo)[0]) };
    let empty = S::default();
    f(state.as_deref().unwrap_or(&empty))
}

/// `_drift_*_final`: the first method's result as a drift_result.
///
/// # Safety
/// As for `with_state`.
unsafe fn final_one<S: Tested + AggState>(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller's contract.
    let t = unsafe { with_state::<S, _>(fcinfo, |s| results(s).swap_remove(0)) };
    t.into_composite_datum().unwrap_or(pg_sys::Datum::from(0))
}

/// `_drift_*_final_all`: every method's result as a drift_result[].
///
/// # Safety
/// As for `with_state`; the function is declared to return drift_result[].
unsafe fn final_all<S: Tested + AggState>(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the caller's contract.
    let tuples = unsafe { with_state::<S, _>(fcinfo, |s| results(s)) };
    let mut datums: Vec<pg_sys::Datum> = tuples
        .into_iter()
        .map(|t| t.into_composite_datum().unwrap_or(pg_sys::Datum::from(0)))
        .collect();
    // SAFETY: flinfo is fmgr's; the function returns an array of drift_result, whose element
    // type is read from its declared result type.
    let elem =
        unsafe { pg_sys::get_element_type(pg_sys::get_func_rettype((*(*fcinfo).flinfo).fn_oid)) };
    // SAFETY: datums holds n composite datums of type elem (varlena, double-aligned).
    let array = unsafe {
        pg_sys::construct_array(
            datums.as_mut_ptr(),
            i32::try_from(datums.len()).unwrap_or(i32::MAX),
            elem,
            -1,
            false,
            pg_sys::TYPALIGN_DOUBLE as std::ffi::c_char,
        )
    };
    pg_sys::Datum::from(array)
}

finfo_v1!(
    pg_finfo_tidewatch_drift_num_combine,
    pg_finfo_tidewatch_drift_num_final,
    pg_finfo_tidewatch_drift_num_final_all,
    pg_finfo_tidewatch_drift_cat_combine,
    pg_finfo_tidewatch_drift_cat_final,
    pg_finfo_tidewatch_drift_cat_final_all,
    pg_finfo_tidewatch_profile_num_final,
    pg_finfo_tidewatch_profile_cat_final,
);

/// Defines the combine and final functions of the numeric or categorical drift aggregates.
macro_rules! drift_support {
    ($t:ty, $combine:ident, $final:ident, $final_all:ident) => {
        /// # Safety
        /// Only for fmgr, as declared below.
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $combine(
            fcinfo: pg_sys::FunctionCallInfo,
        ) -> pg_sys::Datum {
            // SAFETY: the combine function of an aggregate whose state is this type.
            unsafe { aggregate::combine::<Samples<$t>>(fcinfo) }
        }

        /// # Safety
        /// Only for fmgr, as declared below.
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $final(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            // SAFETY: the final function of an aggregate whose state is this type.
            unsafe { final_one::<Samples<$t>>(fcinfo) }
        }

        /// # Safety
        /// Only for fmgr, as declared below.
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $final_all(
            fcinfo: pg_sys::FunctionCallInfo,
        ) -> pg_sys::Datum {
            // SAFETY: the final function of an aggregate whose state is this type.
            unsafe { final_all::<Samples<$t>>(fcinfo) }
        }
    };
}

drift_support!(
    f64,
    tidewatch_drift_num_combine,
    tidewatch_drift_num_final,
    tidewatch_drift_num_final_all
);
drift_support!(
    String,
    tidewatch_drift_cat_combine,
    tidewatch_drift_cat_final,
    tidewatch_drift_cat_final_all
);

extension_sql!(
    r#"
CREATE FUNCTION tidewatch._drift_num_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_final(bytea) RETURNS tidewatch.drift_result
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_final_all(bytea) RETURNS tidewatch.drift_result[]
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_final_all' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_final(bytea) RETURNS tidewatch.drift_result
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_final_all(bytea) RETURNS tidewatch.drift_result[]
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_final_all' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean, method text, threshold float8) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean, methods text[]) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final_all, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._drift_agg(value float8, is_current boolean, methods text[], thresholds float8[]) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final_all, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean, method text, threshold float8) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean, methods text[]) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final_all, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._drift_agg(value text, is_current boolean, methods text[], thresholds float8[]) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final_all, PARALLEL = SAFE);
"#,
    name = "drift_aggregates",
    requires = ["drift_steps"]
);

// ---------------------------------------------------------------------------------------------
// Reference profiles (save_reference): the reference window of a column as a compact profile,
// exact up to a documented size, a sketch beyond (see crates/tidewatch-drift/src/profile.rs).

/// `_profile_*_final`: the reference window of the state as a profile (bytea), or NULL.
///
/// # Safety
/// Only for fmgr, as the final function of an aggregate whose state is `Samples<T>`.
unsafe fn profile_final<T>(
    fcinfo: pg_sys::FunctionCallInfo,
    make: impl FnOnce(&[T]) -> tidewatch_drift::Profile,
    limit: Option<usize>,
) -> pg_sys::Datum
where
    Samples<T>: AggState,
{
    // SAFETY: fmgr's fcinfo, declared (bytea).
    let bytes = unsafe { expanded_ref::<Samples<T>>(args(fcinfo)[0]) }.and_then(|s| {
        // `limit`: the most values a stored profile of this kind may hold (categorical ones
        // are tested by expanding their counts; numeric ones become a sketch instead).
        if let Some(limit) = limit.filter(|&l| s.reference.len() > l) {
            errors::raise(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "a reference of {} values: at most {limit} can be saved for this column type",
                    s.reference.len()
                ),
                None,
                Some("Save the reference from a shorter window.".into()),
            );
        }
        make(&s.reference).to_bytes().into_datum()
    });
    bytes.unwrap_or_else(|| {
        // SAFETY: fmgr's fcinfo.
        unsafe { (*fcinfo).isnull = true };
        pg_sys::Datum::from(0)
    })
}

/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_profile_num_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the final function of _profile_agg(float8, boolean).
    unsafe { profile_final::<f64>(fcinfo, tidewatch_drift::Profile::from_numeric, None) }
}

/// # Safety
/// Only for fmgr, as declared below.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_profile_cat_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the final function of _profile_agg(text, boolean).
    unsafe {
        profile_final::<String>(
            fcinfo,
            tidewatch_drift::Profile::from_categorical,
            Some(tidewatch_drift::samples::MAX_CATEGORICAL_ROWS),
        )
    }
}

fn profile(bytes: &[u8]) -> tidewatch_drift::Profile {
    tidewatch_drift::Profile::from_bytes(bytes).unwrap_or_else(|e| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("invalid reference profile: {e}"),
            None,
            Some("Save the reference again with tidewatch.save_reference().".into()),
        )
    })
}

/// Drift of a current window (array) against a saved numeric profile.
#[pg_extern(immutable, parallel_safe, requires = ["drift_types"])]
fn _drift_num_profile(
    reference: Option<&[u8]>,
    current: Option<Vec<Option<f64>>>,
    method: default!(Option<String>, "NULL"),
    threshold: default!(Option<f64>, "NULL"),
) -> pgrx::composite_type!('static, "drift_result") {
    // Not STRICT (method and threshold may be NULL): 22004 here, not pgrx's XX000 on NULL.
    let reference = errors::required(reference, "reference");
    let cur: Vec<f64> = errors::required(current, "current")
        .into_iter()
        .flatten()
        .collect();
    finish(tidewatch_drift::numeric_drift_against_profile(
        &profile(reference),
        &cur,
        method.as_deref().unwrap_or("auto"),
        threshold,
    ))
}

/// Drift of a current window (array) against a saved categorical profile.
#[pg_extern(immutable, parallel_safe, requires = ["drift_types"])]
fn _drift_cat_profile(
    reference: Option<&[u8]>,
    current: Option<Vec<Option<String>>>,
    method: default!(Option<String>, "NULL"),
    threshold: default!(Option<f64>, "NULL"),
) -> pgrx::composite_type!('static, "drift_result") {
    let reference = errors::required(reference, "reference");
    let cur: Vec<String> = errors::required(current, "current")
        .into_iter()
        .flatten()
        .collect();
    finish(tidewatch_drift::categorical_drift_against_profile(
        &profile(reference),
        &cur,
        method.as_deref().unwrap_or("auto"),
        threshold,
    ))
}

/// Whether a saved profile holds the exact values (else a sketch with documented error).
#[pg_extern(immutable, parallel_safe, strict)]
fn _profile_is_exact(reference: &[u8]) -> bool {
    profile(reference).is_exact()
}

extension_sql!(
    r#"
CREATE FUNCTION tidewatch._profile_num_final(bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_profile_num_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._profile_cat_final(bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_profile_cat_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch._profile_agg(value float8, is_current boolean) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._profile_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._profile_agg(value text, is_current boolean) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._profile_cat_final, PARALLEL = SAFE);
"#,
    name = "profile_aggregates",
    requires = ["drift_aggregates"]
);

extension_sql_file!(
    "../../sql/drift.sql",
    name = "drift_report",
    requires = [
        "drift_aggregates",
        "profile_aggregates",
        "hypertable",
        _drift_num_profile,
        _drift_cat_profile,
        _profile_is_exact
    ]
);

extension_sql_file!(
    "../../sql/drift_monitor.sql",
    name = "drift_monitor",
    requires = ["drift_report", "anomaly", "jobs"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use serde_json::Value;

    /// Loads a committed fixture (`group,value` CSV) into table `fx` and returns its expected
    /// Evidently scores (computed by scipy/Evidently's formulas, see the crate's fixtures).
    fn load(csv: &str, expected: &str, numeric: bool) -> Value {
        let typ = if numeric { "float8" } else { "text" };
        Spi::run(&format!("CREATE TABLE fx (grp text, value {typ})")).unwrap();
        Spi::run_with_args(
            &format!(
                "INSERT INTO fx SELECT CASE WHEN split_part(l, ',', 1) IN ('c', 'current') THEN 'current' ELSE 'reference' END,
                        nullif(split_part(l, ',', 2), '')::{typ}
                 FROM regexp_split_to_table($1, E'\\r?\\n') l WHERE l <> '' AND l NOT LIKE 'group,%'"
            ),
            &[csv.into()],
        )
        .unwrap();
        // Python's json writes NaN and Infinity, which JSON lacks; none of them is compared here.
        let expected = expected
            .replace("-Infinity", "null")
            .replace("Infinity", "null")
            .replace("NaN", "null");
        serde_json::from_str::<Value>(&expected).unwrap()["evidently"].clone()
    }

    fn check(method: &str, got: (Option<f64>, Option<bool>), expected: &Value) {
        let want = expected[method]["drift_score"].as_f64().unwrap();
        let score = got.0.unwrap();
        assert!(
            (score - want).abs() <= 1e-6_f64.max(1e-9 * want.abs()),
            "{method}: got {score}, scipy/Evidently {want}"
        );
        assert_eq!(
            got.1,
            expected[method]["drift"].as_bool(),
            "{method} drift decision"
        );
    }

    #[pg_test]
    fn drift_agg_matches_scipy_on_100k_rows_under_parallel_query() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/large_normal_60000v40000.csv"),
            include_str!(
                "../../crates/tidewatch-drift/fixtures/large_normal_60000v40000.expected.json"
            ),
            true,
        );
        Spi::run(
            "ANALYZE fx; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2",
        )
        .unwrap();
        let plan = format!(
            "{:?}",
            Spi::explain("SELECT tidewatch.drift_agg(value, grp = 'current', 'ks', NULL) FROM fx")
                .unwrap()
                .0
        );
        assert!(
            plan.contains("Partial"),
            "expected partial aggregation: {plan}"
        );
        for method in [
            "ks",
            "wasserstein",
            "psi",
            "jensenshannon",
            "kl_div",
            "hellinger",
            "t_test",
            "mannw",
            "anderson",
        ] {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce((r).p_value, (r).statistic), (r).drifted
                 FROM (SELECT tidewatch.drift_agg(value, grp = 'current', '{method}', NULL) AS r FROM fx) s"
            ))
            .unwrap();
            check(method, got, &expected);
        }
        let auto = Spi::get_one::<String>(
            "SELECT (tidewatch.drift_agg(value, grp = 'current')).method FROM fx",
        )
        .unwrap();
        assert_eq!(auto.as_deref(), Some("wasserstein"));
    }

    #[pg_test]
    fn several_methods_in_one_aggregate_under_parallel_query_give_each_methods_numbers() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/large_normal_60000v40000.csv"),
            include_str!(
                "../../crates/tidewatch-drift/fixtures/large_normal_60000v40000.expected.json"
            ),
            true,
        );
        Spi::run(
            "INSERT INTO fx VALUES ('reference', NULL), ('current', NULL), ('current', NULL);
             ANALYZE fx; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2",
        )
        .unwrap();
        let q = "SELECT tidewatch.drift_agg(value, grp = 'current', ARRAY['ks', 'psi', 'wasserstein']) AS r FROM fx";
        let plan = format!("{:?}", Spi::explain(q).unwrap().0);
        assert!(
            plan.contains("Partial"),
            "expected partial aggregation: {plan}"
        );
        for (i, method) in ["ks", "psi", "wasserstein"].iter().enumerate() {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce((r[{}]).p_value, (r[{}]).statistic), (r[{}]).drifted FROM ({q}) s",
                i + 1,
                i + 1,
                i + 1
            ))
            .unwrap();
            check(method, got, &expected);
        }
        // NULLs are counted per window; the counts of values are those of the fixture.
        let nulls = Spi::get_two::<i64, i64>(&format!(
            "SELECT (r[1]).reference_nulls, (r[1]).current_nulls FROM ({q}) s"
        ))
        .unwrap();
        assert_eq!(nulls, (Some(1), Some(2)));
        let counts = Spi::get_two::<i64, i64>(&format!(
            "SELECT (r[2]).reference_count, (r[2]).current_count FROM ({q}) s"
        ))
        .unwrap();
        assert_eq!(counts, (Some(60_000), Some(40_000)));
        // Thresholds per method.
        let th = Spi::get_two::<f64, f64>(
            "SELECT (r[1]).threshold, (r[2]).threshold FROM (SELECT tidewatch._drift_agg(value, grp = 'current',
                 ARRAY['ks', 'psi'], ARRAY[0.01, NULL]) AS r FROM fx) s",
        )
        .unwrap();
        assert_eq!(th, (Some(0.01), Some(0.1)));
    }

    #[pg_test(
        error = "unknown drift method \"kss\"; valid methods: ks, wasserstein, psi, jensenshannon, kl_div, anderson, cramer_von_mises, mannw, t_test, ed, es, hellinger, chisquare, z, fisher_exact, g_test, TVD"
    )]
    fn unknown_method_in_a_list_is_an_error_at_the_first_row() {
        Spi::run("SELECT tidewatch.drift_agg(x::float8, x > 5, ARRAY['ks', 'kss']) FROM generate_series(1, 10) x").unwrap();
    }

    #[pg_test]
    fn drift_report_runs_several_methods_per_column_and_counts_nulls() {
        Spi::run(
            "CREATE TABLE m (ts timestamptz NOT NULL, v float8, c text);
             INSERT INTO m SELECT timestamptz '2026-01-01' + i * interval '1 minute',
                    CASE WHEN i % 50 = 0 THEN NULL ELSE sin(i) + CASE WHEN i >= 1000 THEN 2 ELSE 0 END END,
                    CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END
             FROM generate_series(0, 1999) i",
        )
        .unwrap();
        let report = "SELECT * FROM tidewatch.drift_report('m',
                          tstzrange('2026-01-01', timestamptz '2026-01-01' + interval '1000 minutes'),
                          tstzrange(timestamptz '2026-01-01' + interval '1000 minutes', NULL),
                          time_column => 'ts', methods => '{\"v\": [\"ks\", \"psi\", \"wasserstein\"], \"thresholds\": {\"v\": [0.01, 0.2, null]}}')";
        let rows = Spi::get_one::<String>(&format!(
            "SELECT string_agg(column_name || ':' || method || ':' || drifted || ':' || threshold || ':' || reference_nulls || '/' || current_nulls, ' ' ORDER BY column_name, method) FROM ({report}) r"
        ))
        .unwrap();
        assert_eq!(
            rows.as_deref(),
            Some("c:z:false:0.05:0/0 v:ks:true:0.01:20/20 v:psi:true:0.2:20/20 v:wasserstein:true:0.1:20/20")
        );
        // Each method's numbers equal drift() over the same values.
        let same = Spi::get_one::<bool>(&format!(
            "SELECT bool_and(r.statistic = d.statistic AND r.p_value IS NOT DISTINCT FROM d.p_value)
             FROM ({report}) r,
             LATERAL tidewatch.drift((SELECT array_agg(v) FROM m WHERE ts < timestamptz '2026-01-01' + interval '1000 minutes'),
                                     (SELECT array_agg(v) FROM m WHERE ts >= timestamptz '2026-01-01' + interval '1000 minutes'),
                                     r.method) d
             WHERE r.column_name = 'v'"
        ))
        .unwrap();
        assert_eq!(same, Some(true));
    }

    #[pg_test(error = "invalid methods for column \"v\": 42")]
    fn bad_methods_spec_is_an_error() {
        Spi::run(
            "CREATE TABLE m2 (ts timestamptz NOT NULL, v float8);
             SELECT * FROM tidewatch.drift_report('m2', tstzrange('2026-01-01', '2026-01-02'), tstzrange('2026-01-02', '2026-01-03'),
                                                  time_column => 'ts', methods => '{\"v\": 42}')",
        )
        .unwrap();
    }

    /// A hypertable of two columns: a week of reference data and a last hour that moved.
    fn drift_table() {
        Spi::run(
            "CREATE TABLE feats (ts timestamptz NOT NULL, x float8, y float8);
             SELECT tidewatch.create_hypertable('feats', 'ts', chunk_time_interval => interval '1 day');
             INSERT INTO feats SELECT now() - interval '8 days' + i * interval '1 minute', sin(i * 0.7), cos(i * 0.3)
                 FROM generate_series(0, 7 * 1440) i;
             INSERT INTO feats SELECT now() - interval '59 minutes' + i * interval '10 seconds', 3 + sin(i * 0.7), cos(i * 0.3)
                 FROM generate_series(0, 350) i;",
        )
        .unwrap();
    }

    #[pg_test]
    fn drift_monitor_appends_results_and_records_a_drift_event() {
        drift_table();
        let job = Spi::get_one::<i32>(
            "SELECT tidewatch.monitor_drift('feats_hourly', 'feats', tstzrange(now() - interval '8 days', now() - interval '1 day'),
                                            interval '1 hour', drift_share => 0.5)",
        )
        .unwrap();
        assert!(job.is_some());
        let rows = Spi::get_one::<String>(
            "SELECT string_agg(column_name || ':' || method || ':' || drifted || ':' || share_of_drifted_columns || ':' || dataset_drift, ' ' ORDER BY column_name)
             FROM tidewatch.run_drift_monitor('feats_hourly')",
        )
        .unwrap();
        assert_eq!(
            rows.as_deref(),
            Some("x:wasserstein:true:0.5:true y:wasserstein:false:0.5:true")
        );
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM tidewatch.drift_results WHERE monitor = 'feats_hourly'"
            )
            .unwrap(),
            Some(2)
        );
        // The drifted dataset is an event on that table, spanning the current window.
        let ev = Spi::get_two::<String, bool>(
            "SELECT summary, \"until\" - at = interval '1 hour' FROM tidewatch.events WHERE source = 'drift' AND relid = 'feats'::regclass",
        )
        .unwrap();
        let summary = ev.0.unwrap();
        assert!(
            summary.contains("50.0% of the columns of public.feats drifted (x)"),
            "{summary}"
        );
        assert_eq!(ev.1, Some(true));
        // The job is the monitor's; unmonitor_drift removes both and keeps the results.
        Spi::run("SELECT tidewatch.unmonitor_drift('feats_hourly')").unwrap();
        assert_eq!(
            Spi::get_one::<i64>(&format!(
                "SELECT count(*) FROM tidewatch.job WHERE id = {}",
                job.unwrap()
            ))
            .unwrap(),
            Some(0)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM tidewatch.drift_results").unwrap(),
            Some(2)
        );
    }

    #[pg_test]
    fn drift_monitor_keeps_an_empty_window_as_an_error_row() {
        drift_table();
        Spi::run(
            "SELECT tidewatch.save_reference('week', 'feats', tstzrange(now() - interval '8 days', now() - interval '1 day'));
             SELECT tidewatch.monitor_drift('quiet', 'feats', 'week', interval '1 hour');
             DELETE FROM feats WHERE ts > now() - interval '2 hours'",
        )
        .unwrap();
        let row = Spi::get_three::<String, String, bool>(
            "SELECT column_name::text, error, dataset_drift FROM tidewatch.run_drift_monitor('quiet')",
        )
        .unwrap();
        assert_eq!(row.0.as_deref(), Some("*"));
        assert!(
            row.1.unwrap().contains("current"),
            "the error names the empty window"
        );
        assert_eq!(row.2, Some(false));
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM tidewatch.events WHERE source = 'drift'")
                .unwrap(),
            Some(0)
        );
    }

    #[pg_test]
    fn drift_event_is_cited_by_explain_anomaly_of_the_same_table_only() {
        drift_table();
        Spi::run(
            "SELECT tidewatch.monitor_drift('fh', 'feats', tstzrange(now() - interval '8 days', now() - interval '1 day'), interval '1 hour');
             SELECT count(*) FROM tidewatch.run_drift_monitor('fh');
             SELECT tidewatch.monitor('xm', 'feats', 'x');
             CREATE TABLE other (ts timestamptz NOT NULL, v float8);
             SELECT tidewatch.monitor('om', 'other', 'v', time_column => 'ts');
             INSERT INTO tidewatch.anomalies (id, monitor, started_at, ended_at, peak_at, peak_value, score, severity, kind)
                 VALUES (9001, 'xm', now() - interval '20 minutes', now() - interval '19 minutes', now() - interval '20 minutes', 4, 0.99, 'critical', 'spike'),
                        (9002, 'om', now() - interval '20 minutes', now() - interval '19 minutes', now() - interval '20 minutes', 4, 0.99, 'critical', 'spike')",
        )
        .unwrap();
        let cited = |id: i64| {
            Spi::get_one::<i64>(&format!(
                "SELECT count(*) FROM tidewatch.explain_anomaly({id}) WHERE evidence ->> 'source' = 'drift'"
            ))
            .unwrap()
        };
        assert_eq!(cited(9001), Some(1));
        assert_eq!(cited(9002), Some(0));
    }

    #[pg_test(error = "no saved reference named \"nope\"")]
    fn drift_monitor_with_unknown_reference_is_an_error() {
        drift_table();
        Spi::run("SELECT tidewatch.monitor_drift('m', 'feats', 'nope', interval '1 hour')")
            .unwrap();
    }

    #[pg_test(error = "drift monitor \"dup\" already exists")]
    fn duplicate_drift_monitor_is_an_error() {
        drift_table();
        Spi::run(
            "SELECT tidewatch.monitor_drift('dup', 'feats', tstzrange(now() - interval '8 days', now() - interval '1 day'), interval '1 hour');
             SELECT tidewatch.monitor_drift('dup', 'feats', tstzrange(now() - interval '8 days', now() - interval '1 day'), interval '1 hour')",
        )
        .unwrap();
    }

    #[pg_test]
    fn drift_over_arrays_matches_scipy() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_numeric.csv"),
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_numeric.expected.json"),
            true,
        );
        for method in [
            "ks",
            "wasserstein",
            "anderson",
            "mannw",
            "ed",
            "t_test",
            "psi",
            "kl_div",
            "jensenshannon",
            "hellinger",
        ] {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce(p_value, statistic), drifted FROM tidewatch.drift(
                    (SELECT array_agg(value) FROM fx WHERE grp = 'reference'),
                    (SELECT array_agg(value) FROM fx WHERE grp = 'current'), '{method}')"
            ))
            .unwrap();
            check(method, got, &expected);
        }
    }

    #[pg_test]
    fn categorical_drift_matches_evidently() {
        let expected = load(
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_categorical.csv"),
            include_str!("../../crates/tidewatch-drift/fixtures/tiny_categorical.expected.json"),
            false,
        );
        for method in [
            "psi",
            "kl_div",
            "jensenshannon",
            "hellinger",
            "chisquare",
            "g_test",
        ] {
            let got = Spi::get_two::<f64, bool>(&format!(
                "SELECT coalesce((r).p_value, (r).statistic), (r).drifted
                 FROM (SELECT tidewatch.drift_agg(value, grp = 'current', '{method}', NULL) AS r FROM fx) s"
            ))
            .unwrap();
            check(method, got, &expected);
        }
    }

    #[pg_test]
    fn custom_threshold_and_drift_report() {
        Spi::run(
            "CREATE TABLE feats (ts timestamptz NOT NULL, f_num float8, f_cat text, f_flag boolean, note int[]);
             INSERT INTO feats SELECT timestamptz '2024-01-01' + i * interval '1 minute',
                 CASE WHEN i < 1000 THEN (i % 50)::float8 ELSE (i % 50) + 20 END,
                 CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END, i % 2 = 0, NULL
             FROM generate_series(0, 1999) i;
             INSERT INTO feats VALUES ('2024-01-01 00:30', NULL, 'a', true, NULL), ('2024-01-01 00:31', 'NaN', 'b', false, NULL);",
        )
        .unwrap();
        let never = Spi::get_one::<bool>(
            "SELECT drifted FROM tidewatch.drift(ARRAY[1,2,3,4,5]::float8[], ARRAY[6,7,8,9,10]::float8[], 'ks', 0.0)",
        )
        .unwrap();
        assert_eq!(never, Some(false), "p > 0 never drifts at threshold 0");
        let rows = Spi::connect(|c| {
            c.select(
                "SELECT column_name::text, method, drifted, reference_count, reference_nulls
                 FROM tidewatch.drift_report('feats', tstzrange('2024-01-01', '2024-01-01 16:40'),
                      tstzrange('2024-01-01 16:40', '2024-01-02 09:20'), time_column => 'ts')",
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get::<String>(1).unwrap().unwrap(),
                    r.get::<String>(2).unwrap().unwrap(),
                    r.get::<bool>(3).unwrap().unwrap(),
                    r.get::<i64>(4).unwrap().unwrap(),
                    r.get::<i64>(5).unwrap().unwrap(),
                )
            })
            .collect::<Vec<_>>()
        });
        // NaN dropped and counted apart from the NULL; the shifted number drifts, the others not.
        assert_eq!(rows[0], ("f_num".into(), "ks".into(), true, 1000, 1));
        assert_eq!((rows[1].0.as_str(), rows[1].2), ("f_cat", false));
        // 1,002 reference rows: above 1,000 Evidently switches from z to jensenshannon.
        assert_eq!(
            (rows[2].0.as_str(), rows[2].1.as_str(), rows[2].2),
            ("f_flag", "jensenshannon", false)
        );
        assert_eq!(rows.len(), 3, "the int[] column is not compared by default");
        let summary = Spi::get_two::<f64, bool>(
            "SELECT share_of_drifted_columns, dataset_drift FROM tidewatch.drift_summary('feats',
                 tstzrange('2024-01-01', '2024-01-01 16:40'), tstzrange('2024-01-01 16:40', '2024-01-02 09:20'), time_column => 'ts')",
        )
        .unwrap();
        assert_eq!(summary, (Some(1.0 / 3.0), Some(false)));
    }

    #[pg_test(
        error = "unknown drift method \"madd\"; valid methods: ks, wasserstein, psi, jensenshannon, kl_div, anderson, cramer_von_mises, mannw, t_test, ed, es, hellinger, chisquare, z, fisher_exact, g_test, TVD"
    )]
    fn unknown_method_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.drift(ARRAY[1.0], ARRAY[2.0], 'madd')").unwrap();
    }

    #[pg_test(error = "empty reference sample after dropping 1 non-finite value(s)")]
    fn empty_window_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.drift(ARRAY['NaN']::float8[], ARRAY[2.0])").unwrap();
    }

    #[pg_test(error = "method \"ks\" needs numeric data, got categorical")]
    fn numeric_method_on_text_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.drift(ARRAY['a'], ARRAY['b'], 'ks')").unwrap();
    }

    #[pg_test]
    fn saved_reference_gives_the_range_forms_numbers() {
        Spi::run(
            "CREATE TABLE d (ts timestamptz NOT NULL, x float8, c text);
             SELECT tidewatch.create_hypertable('d', 'ts');
             SELECT setseed(0.3);
             INSERT INTO d SELECT timestamptz '2026-01-01' + i * interval '1 minute',
                    random() + CASE WHEN i >= 3000 THEN 0.05 ELSE 0 END, (ARRAY['a', 'b'])[1 + i % 2]
             FROM generate_series(0, 5999) i;",
        )
        .unwrap();
        let saved = Spi::get_one::<i32>(
            "SELECT tidewatch.save_reference('r', 'd', tstzrange('2026-01-01', '2026-01-03 02:00'))",
        )
        .unwrap();
        assert_eq!(saved, Some(2));
        let differing = Spi::get_one::<i64>(
            "WITH a AS (SELECT * FROM tidewatch.drift_report('d', 'r', tstzrange('2026-01-03 02:00', '2026-02-01'),
                                                          methods => '{\"x\": \"ks\"}')),
                  b AS (SELECT * FROM tidewatch.drift_report('d', tstzrange('2026-01-01', '2026-01-03 02:00'),
                                                          tstzrange('2026-01-03 02:00', '2026-02-01'),
                                                          methods => '{\"x\": \"ks\"}'))
             SELECT count(*) FROM a FULL JOIN b USING (column_name)
             WHERE a.method IS DISTINCT FROM b.method OR a.statistic IS DISTINCT FROM b.statistic
                OR a.p_value IS DISTINCT FROM b.p_value OR a.drifted IS DISTINCT FROM b.drifted
                OR a.reference_count IS DISTINCT FROM b.reference_count",
        )
        .unwrap();
        assert_eq!(differing, Some(0));
    }

    #[pg_test(error = "no saved reference named \"nope\"")]
    fn unknown_reference_is_an_error() {
        Spi::run("CREATE TABLE d (ts timestamptz NOT NULL, x float8); SELECT tidewatch.create_hypertable('d', 'ts')")
            .unwrap();
        Spi::run("SELECT * FROM tidewatch.drift_report('d', 'nope', tstzrange(now(), now() + interval '1 day'))").unwrap();
    }
}
