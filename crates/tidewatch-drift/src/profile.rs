//! Reference profiles: what `save_reference` stores of a reference window, and drift tests of a
//! current window against it.
//!
//! # Numeric columns
//! After dropping non-finite values (counted), a column of n finite values is kept as
//! - **`Exact`** when n <= `EXACT_MAX` (100,000): every value, in input order (not sorted, so
//!   that floating-point sums run in the same order and every method gives a report
//!   *identical* to [`numeric_drift`] on the original window);
//! - **`Counts`** when n > `EXACT_MAX` but the column has at most `SKETCH_K` (10,000) distinct
//!   values: the exact sorted (value, count) table. Every method is exact (the reference is
//!   expanded back, O(n) memory at test time); results equal [`numeric_drift`] up to
//!   floating-point summation order (tested within 1e-9 relative, the fixture tolerance);
//! - **`Sketch`** otherwise: a deterministic quantile sketch ([`Sketch`]) of at most
//!   K + 2T = 12,000 knots (x_(r), r): the exact tails r = 1..=T and n−T+1..=n (T = `TAIL` =
//!   1,000) and the equi-depth ranks r = ⌈i·n/K⌉, i = 1..=K (K = `SKETCH_K` = 10,000), plus
//!   the exact count, min, max, mean and population std (≈ 190 KB).
//!
//! ## Error bounds of the sketch
//! Between consecutive knots (x_a, r_a) < (x_b, r_b) the number of values ≤ t (or < t) for
//! x_a ≤ t < x_b lies in [r_a, r_b − 1]; the sketch interpolates linearly in t inside that
//! interval. So the estimated CDF F̂ satisfies **|F̂(t) − F(t)| ≤ max gap/n ≤ 1/K** for every t
//! (both F(t) = P(X ≤ t) and P(X < t)), and is exact in the tails (F < T/n or F > 1 − T/n).
//! Tested on 10⁶ seeded values, continuous and heavily tied (`sketch::bound_tests`), and on
//! the drift scores in `tests/profile.rs` (5 scenarios, 10⁶ reference values each: normal vs
//! shifted / same / wider, lognormal, values rounded to 2 decimals). Consequences:
//! - `ks`: |D_sketch − D_exact| ≤ sup|F̂ − F| ≤ **1/K = 1e-4** (guaranteed; measured max
//!   8.9e-5). The p-value is computed from D_sketch with the true sizes (asymptotic `kstwo`, as
//!   scipy for max(n) > 10,000); it has no a-priori bound (its slope in D can be large):
//!   measured max 1.6e-3 absolute (tests allow 5e-3).
//! - `wasserstein`: the sketch's quantile function Q̂ (linear through ((r − ½)/n, x_(r))) is
//!   compared with the current window's; by the triangle inequality the error of W₁ is at most
//!   W₁(Q̂, reference), which is computed exactly when the profile is built and stored
//!   ([`NumericProfile::wasserstein_error_bound`]); the normed score divides by the stored exact
//!   std, so its error is at most that bound / max(std, 0.001) (guaranteed; on the tests the
//!   normed bound is 2e-5–1.1e-4 and the measured error at most 4.2e-5).
//! - `psi`, `kl_div`, `jensenshannon`: Sturges edges need only the pooled min, max and size,
//!   which the profile holds exactly, so the bins are exactly Evidently's; each reference bin
//!   share is within 1/K (guaranteed). The score tolerance is empirical: **1e-4 absolute**
//!   (0.1% of the default threshold 0.1), asserted by the tests; measured max 2.2e-5 (PSI),
//!   6.6e-6 (KL), 7.9e-6 (JS).
//! - `auto` gives `wasserstein` (n > 1000 and > 5 distinct values, as Evidently).
//! - Other methods (anderson, cramer_von_mises, mannw, t_test, ed, es, hellinger, chisquare, z,
//!   fisher_exact, g_test, TVD) need the exact values and give `NotApplicable` on a sketch.
//!
//! # Categorical columns
//! Exact category counts (labels cleaned as in [`categorical_drift`]), up to `MAX_CATEGORIES`
//! (10,000) categories. Beyond that the `MAX_CATEGORIES` most frequent categories are kept (ties
//! by label) and the rest pooled into an "other" bucket; current labels outside the kept set are
//! then pooled into the same bucket before testing. Without overflow results are identical to
//! [`categorical_drift`].
//!
//! # Byte form
//! `b"TWPF"`, format version (`PROFILE_VERSION`), kind (1 numeric, 2 categorical), then the
//! fields little-endian (u64 sizes, f64 values, length-prefixed UTF-8 labels).

use crate::binning;
use crate::numeric;
use crate::samples::{MAX_CATEGORICAL_ROWS, MAX_NUMERIC_ROWS};
pub use crate::sketch::{Sketch, TAIL};
use crate::{
    categorical_drift, check_nonempty, clean_categorical, clean_numeric, defaults, make,
    numeric_drift, unknown, DriftError, DriftReport,
};
use serde::Serialize;
use std::collections::{BTreeMap, TryReserveError};

/// Numeric windows of at most this many finite values are stored exactly.
pub const EXACT_MAX: usize = 100_000;
/// Number of order statistics in a sketch (and the distinct-value limit of `Counts`).
pub const SKETCH_K: usize = 10_000;
/// Categories kept exactly; the rest go to the "other" bucket.
pub const MAX_CATEGORIES: usize = 10_000;
/// Label of the "other" bucket (starts with NUL, which PostgreSQL text cannot contain).
pub const OTHER_LABEL: &str = "\u{0}other";
/// Version byte of [`Profile::to_bytes`].
pub const PROFILE_VERSION: u8 = 1;

const MAGIC: &[u8; 4] = b"TWPF";

/// A saved reference window of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Profile {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

/// Numeric column profile; see the module documentation for the representations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumericProfile {
    /// Finite values in the window.
    pub count: u64,
    /// Non-finite values dropped.
    pub dropped: u64,
    /// Exact minimum, maximum, mean and population std (ddof = 0) of the finite values
    /// (NaN when `count` = 0).
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    pub values: NumericValues,
}

/// How the values of a numeric profile are kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NumericValues {
    /// All finite values, input order (count <= EXACT_MAX).
    Exact(Vec<f64>),
    /// Sorted distinct values and their counts (count > EXACT_MAX, <= SKETCH_K distinct).
    Counts(Vec<(f64, u64)>),
    /// Quantile sketch (count > EXACT_MAX, > SKETCH_K distinct values).
    Sketch(Sketch),
}

/// Categorical column profile: counts per label (sorted by label).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoricalProfile {
    pub count: u64,
    pub dropped: u64,
    /// Kept categories and their counts, sorted by label.
    pub categories: Vec<(String, u64)>,
    /// Values of categories beyond `MAX_CATEGORIES` (pooled as `OTHER_LABEL`).
    pub other_count: u64,
    /// Number of distinct categories pooled into the other bucket.
    pub other_categories: u64,
}

impl Profile {
    /// Profile of a numeric reference window (non-finite values dropped and counted).
    pub fn from_numeric(values: &[f64]) -> Profile {
        let (kept, dropped) = clean_numeric(values);
        let n = kept.len();
        let (min, max, mean, std) = if n == 0 {
            (f64::NAN, f64::NAN, f64::NAN, f64::NAN)
        } else {
            let nf = n as f64;
            // Same order of operations as `wasserstein_normed`.
            let mean = kept.iter().sum::<f64>() / nf;
            let var = kept.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / nf;
            let min = kept.iter().copied().fold(f64::INFINITY, f64::min);
            let max = kept.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (min, max, mean, var.sqrt())
        };
        let values = if n <= EXACT_MAX {
            NumericValues::Exact(kept)
        } else {
            let mut s = kept;
            s.sort_unstable_by(f64::total_cmp);
            let mut table: Vec<(f64, u64)> = Vec::new();
            for &v in &s {
                match table.last_mut() {
                    Some((last, c)) if *last == v => *c += 1,
                    _ => {
                        if table.len() > SKETCH_K {
                            break;
                        }
                        table.push((v, 1));
                    }
                }
            }
            // Counts are expanded back into values to be tested exactly, which a decoded profile
            // may do for at most `MAX_NUMERIC_ROWS` of them; beyond that, a sketch.
            if table.len() <= SKETCH_K && n as u64 <= MAX_NUMERIC_ROWS as u64 {
                NumericValues::Counts(table)
            } else {
                NumericValues::Sketch(Sketch::build(&s, SKETCH_K))
            }
        };
        Profile::Numeric(NumericProfile {
            count: n as u64,
            dropped: dropped as u64,
            min,
            max,
            mean,
            std,
            values,
        })
    }

    /// Profile of a categorical reference window (empty / "nan" labels dropped and counted).
    pub fn from_categorical<S: AsRef<str>>(values: &[S]) -> Profile {
        let (kept, dropped) = clean_categorical(values);
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for v in kept.iter() {
            *counts.entry(v.clone()).or_default() += 1;
        }
        let mut categories: Vec<(String, u64)> = counts.into_iter().collect();
        let (mut other_count, mut other_categories) = (0, 0);
        if categories.len() > MAX_CATEGORIES {
            // most frequent first, ties by label; keep MAX_CATEGORIES
            categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            for (_, c) in categories.drain(MAX_CATEGORIES..) {
                other_count += c;
                other_categories += 1;
            }
            categories.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Profile::Categorical(CategoricalProfile {
            count: kept.len() as u64,
            dropped: dropped as u64,
            categories,
            other_count,
            other_categories,
        })
    }

    /// Whether tests against this profile are exact (no sketch, no "other" bucket).
    pub fn is_exact(&self) -> bool {
        match self {
            Profile::Numeric(p) => !matches!(p.values, NumericValues::Sketch(_)),
            Profile::Categorical(p) => p.other_categories == 0,
        }
    }

    /// Versioned byte form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(PROFILE_VERSION);
        match self {
            Profile::Numeric(p) => {
                out.push(1);
                put_u64(&mut out, p.count);
                put_u64(&mut out, p.dropped);
                for v in [p.min, p.max, p.mean, p.std] {
                    put_f64(&mut out, v);
                }
                match &p.values {
                    NumericValues::Exact(v) => {
                        out.push(0);
                        put_u64(&mut out, v.len() as u64);
                        v.iter().for_each(|&x| put_f64(&mut out, x));
                    }
                    NumericValues::Counts(t) => {
                        out.push(1);
                        put_u64(&mut out, t.len() as u64);
                        for &(x, c) in t {
                            put_f64(&mut out, x);
                            put_u64(&mut out, c);
                        }
                    }
                    NumericValues::Sketch(sk) => {
                        out.push(2);
                        put_f64(&mut out, sk.w1_bound);
                        put_u64(&mut out, sk.knots.len() as u64);
                        for &(x, r) in &sk.knots {
                            put_f64(&mut out, x);
                            put_u64(&mut out, r);
                        }
                    }
                }
            }
            Profile::Categorical(p) => {
                out.push(2);
                put_u64(&mut out, p.count);
                put_u64(&mut out, p.dropped);
                put_u64(&mut out, p.other_count);
                put_u64(&mut out, p.other_categories);
                put_u64(&mut out, p.categories.len() as u64);
                for (label, c) in &p.categories {
                    put_u64(&mut out, label.len() as u64);
                    out.extend_from_slice(label.as_bytes());
                    put_u64(&mut out, *c);
                }
            }
        }
        out
    }

    /// Parses [`Profile::to_bytes`]; errors (never panics) on other versions or corrupt input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Profile, String> {
        let bad = || "truncated or corrupt reference profile".to_string();
        let mut r = Reader(bytes);
        if r.take(4) != Some(&MAGIC[..]) {
            return Err("not a tidewatch reference profile".into());
        }
        let version = r.u8().ok_or_else(bad)?;
        if version != PROFILE_VERSION {
            return Err(format!(
                "unsupported reference profile version {version} (this build reads {PROFILE_VERSION})"
            ));
        }
        let profile = match r.u8().ok_or_else(bad)? {
            1 => {
                let count = r.u64().ok_or_else(bad)?;
                let dropped = r.u64().ok_or_else(bad)?;
                let mut f = [0.0; 4];
                for v in &mut f {
                    *v = r.f64().ok_or_else(bad)?;
                }
                let tag = r.u8().ok_or_else(bad)?;
                let w1_bound = if tag == 2 {
                    r.f64().ok_or_else(bad)?
                } else {
                    0.0
                };
                let len = r.len(if tag == 0 { 8 } else { 16 }).ok_or_else(bad)?;
                let values = match tag {
                    0 => NumericValues::Exact(
                        (0..len)
                            .map(|_| r.f64())
                            .collect::<Option<Vec<f64>>>()
                            .ok_or_else(bad)?,
                    ),
                    1 | 2 => {
                        let pairs = (0..len)
                            .map(|_| Some((r.f64()?, r.u64()?)))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(bad)?;
                        if tag == 1 {
                            NumericValues::Counts(pairs)
                        } else {
                            if pairs.is_empty() {
                                return Err(bad());
                            }
                            NumericValues::Sketch(Sketch {
                                knots: pairs,
                                w1_bound,
                            })
                        }
                    }
                    _ => return Err(bad()),
                };
                Profile::Numeric(NumericProfile {
                    count,
                    dropped,
                    min: f[0],
                    max: f[1],
                    mean: f[2],
                    std: f[3],
                    values,
                })
            }
            2 => {
                let count = r.u64().ok_or_else(bad)?;
                let dropped = r.u64().ok_or_else(bad)?;
                let other_count = r.u64().ok_or_else(bad)?;
                let other_categories = r.u64().ok_or_else(bad)?;
                let n = r.len(16).ok_or_else(bad)?;
                let mut categories = Vec::with_capacity(n);
                for _ in 0..n {
                    let l = r.len(1).ok_or_else(bad)?;
                    let label = r.take(l).ok_or_else(bad)?;
                    let label = String::from_utf8(label.to_vec()).map_err(|_| bad())?;
                    categories.push((label, r.u64().ok_or_else(bad)?));
                }
                Profile::Categorical(CategoricalProfile {
                    count,
                    dropped,
                    categories,
                    other_count,
                    other_categories,
                })
            }
            _ => return Err(bad()),
        };
        if !r.0.is_empty() {
            return Err(bad());
        }
        profile.check_counts()?;
        Ok(profile)
    }

    /// For [`Profile::from_bytes`]: the counts agree as the constructors make them, and a
    /// profile that the tests expand back to its values (`Exact`, `Counts`, categorical) holds
    /// no more of them than a window read from bytes may (`samples.rs`'s limits). The byte
    /// form bounds the lengths of the lists but not the counts: one crafted count of 2^50 would
    /// otherwise make the expansion fail to allocate, which aborts the process (the whole
    /// server, in PostgreSQL), not just the query.
    fn check_counts(&self) -> Result<(), String> {
        // Sums in u128: fewer than 2^64 items of less than 2^64 each cannot overflow it.
        let (count, total, limit) = match self {
            Profile::Numeric(p) => match &p.values {
                NumericValues::Exact(v) => (p.count, v.len() as u128, MAX_NUMERIC_ROWS),
                NumericValues::Counts(t) => (
                    p.count,
                    t.iter().map(|&(_, c)| u128::from(c)).sum(),
                    MAX_NUMERIC_ROWS,
                ),
                NumericValues::Sketch(sk) => {
                    // Never expanded (so no row limit), but its ranks are divided and
                    // subtracted: 1, strictly increasing, the last one the count.
                    let ranks_ok = sk.knots.first().is_some_and(|k| k.1 == 1)
                        && sk.knots.windows(2).all(|w| w[0].1 < w[1].1)
                        && sk.knots.last().is_some_and(|k| k.1 == p.count);
                    return if ranks_ok {
                        Ok(())
                    } else {
                        Err(format!(
                            "corrupt reference profile: the sketch's ranks do not run from 1 \
                             up to its count {}",
                            p.count
                        ))
                    };
                }
            },
            Profile::Categorical(p) => {
                // Pooled categories hold at least one value each, and only pooled ones do.
                if (p.other_count == 0) != (p.other_categories == 0)
                    || p.other_categories > p.other_count
                {
                    return Err(format!(
                        "corrupt reference profile: {} value(s) in {} pooled categories",
                        p.other_count, p.other_categories
                    ));
                }
                let kept: u128 = p.categories.iter().map(|(_, c)| u128::from(*c)).sum();
                (
                    p.count,
                    kept + u128::from(p.other_count),
                    MAX_CATEGORICAL_ROWS,
                )
            }
        };
        if total != u128::from(count) {
            return Err(format!(
                "corrupt reference profile: its counts sum to {total}, not to its count {count}"
            ));
        }
        if count > limit as u64 {
            return Err(format!(
                "reference profile of {count} values: at most {limit} can be tested exactly"
            ));
        }
        Ok(())
    }
}

impl NumericProfile {
    /// For a sketch: W₁(sketch, reference), computed exactly when the profile was built; by the
    /// triangle inequality a bound on the absolute error of the (un-normed) Wasserstein-1
    /// distance computed from the sketch. 0 for exact profiles.
    pub fn wasserstein_error_bound(&self) -> f64 {
        match &self.values {
            NumericValues::Sketch(sk) => sk.w1_bound,
            _ => 0.0,
        }
    }

    /// The reference values back (exact representations only; empty for a sketch). The memory
    /// is reserved first, fallibly: `from_bytes` bounds the counts, but a failed allocation
    /// would abort the process (the whole server, in PostgreSQL) rather than fail the query.
    fn expand(&self) -> Result<Vec<f64>, TryReserveError> {
        let mut out = Vec::new();
        match &self.values {
            NumericValues::Exact(v) => {
                out.try_reserve_exact(v.len())?;
                out.extend_from_slice(v);
            }
            NumericValues::Counts(t) => {
                // every count fits in usize once their sum does
                out.try_reserve_exact(total(t.iter().map(|&(_, c)| c)))?;
                for &(v, c) in t {
                    out.extend(std::iter::repeat_n(v, c as usize));
                }
            }
            NumericValues::Sketch(_) => {}
        }
        Ok(out)
    }
}

/// The sum of `counts` as a length; `usize::MAX` (which no reservation can meet) on overflow.
fn total(mut counts: impl Iterator<Item = u64>) -> usize {
    counts
        .try_fold(0usize, |n, c| n.checked_add(usize::try_from(c).ok()?))
        .unwrap_or(usize::MAX)
}

/// The error of a reference profile whose values do not fit in memory.
fn too_large(method: &str) -> DriftError {
    let name = match defaults(method) {
        Some(d) => d.0,
        None if method == "auto" => "auto",
        None => return unknown(method),
    };
    DriftError::NotApplicable {
        method: name,
        reason: "the reference profile is too large to expand in memory",
    }
}

/// Runs `method` (Evidently name or "auto") on `current` against a numeric reference profile;
/// `threshold` None keeps the method's default. Exact profiles give the same report as
/// [`numeric_drift`]; sketches support ks, wasserstein, psi, kl_div, jensenshannon and auto,
/// within the bounds documented in this module.
pub fn numeric_drift_against_profile(
    profile: &Profile,
    current: &[f64],
    method: &str,
    threshold: Option<f64>,
) -> Result<DriftReport, DriftError> {
    let Profile::Numeric(p) = profile else {
        let name = defaults(method)
            .map(|d| d.0)
            .ok_or_else(|| unknown(method))?;
        return Err(DriftError::NotApplicable {
            method: name,
            reason: "the reference profile is categorical",
        });
    };
    let report = match &p.values {
        NumericValues::Sketch(sk) => {
            let (mut c, dc) = clean_numeric(current);
            c.sort_unstable_by(f64::total_cmp);
            check_nonempty(p.count as usize, c.len(), p.dropped as usize, dc)?;
            // n_ref > EXACT_MAX > 1000 and > SKETCH_K distinct values: Evidently's auto rule
            // gives wasserstein.
            let method = if method == "auto" {
                "wasserstein"
            } else {
                method
            };
            let result = sketch_method(p, sk, method, &c)?;
            DriftReport {
                result,
                n_reference: p.count as usize,
                n_current: c.len(),
                dropped_reference: p.dropped as usize,
                dropped_current: dc,
            }
        }
        _ => {
            if p.count == 0 {
                return Err(DriftError::EmptySample {
                    which: "reference",
                    dropped: p.dropped as usize,
                });
            }
            let r = p.expand().map_err(|_| too_large(method))?;
            let mut rep = numeric_drift(method, &r, current)?;
            rep.dropped_reference = p.dropped as usize;
            rep
        }
    };
    Ok(judge(report, threshold))
}

fn judge(mut report: DriftReport, threshold: Option<f64>) -> DriftReport {
    if let Some(t) = threshold {
        report.result = report.result.with_threshold(t);
    }
    report
}

fn sketch_method(
    p: &NumericProfile,
    sk: &Sketch,
    method: &str,
    c: &[f64],
) -> Result<crate::DriftResult, DriftError> {
    let name = defaults(method)
        .map(|d| d.0)
        .ok_or_else(|| unknown(method))?;
    match method {
        "ks" => {
            let d = sk.ks_statistic(c);
            let (d, pv) = numeric::ks_pvalue(d, p.count as i64, c.len() as i64);
            make(method, d, Some(pv))
        }
        "wasserstein" => make(method, sk.w1(c) / p.std.max(0.001), None),
        "psi" | "kl_div" | "jensenshannon" => {
            let fill = method != "jensenshannon";
            let (rp, cp) = sketch_binned(p, sk, c, fill);
            let s = match method {
                "psi" => binning::psi(&rp, &cp),
                "kl_div" => binning::kl_div(&rp, &cp),
                _ => binning::jensenshannon(&rp, &cp),
            };
            make(method, s, None)
        }
        _ => Err(DriftError::NotApplicable {
            method: name,
            reason: "needs the exact reference values; this profile is a quantile sketch",
        }),
    }
}

/// Evidently's Sturges binning (reference has > 20 distinct values) with the reference shares
/// estimated from the sketch.
fn sketch_binned(p: &NumericProfile, sk: &Sketch, c: &[f64], fill: bool) -> (Vec<f64>, Vec<f64>) {
    let cmin = c.iter().copied().fold(f64::INFINITY, f64::min);
    let cmax = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let edges =
        binning::sturges_edges_from(p.min.min(cmin), p.max.max(cmax), p.count as usize + c.len());
    let nb = edges.len() - 1;
    let mut rp = Vec::with_capacity(nb);
    let mut below = 0.0; // first edge is the pooled minimum: nothing of the reference below it
    for i in 0..nb {
        let next = if i + 1 == nb {
            1.0 // last bin is closed and ends at the pooled maximum
        } else {
            sk.cdf(edges[i + 1], true)
        };
        rp.push((next - below).max(0.0));
        below = next;
    }
    let mut cp: Vec<f64> = binning::histogram(c, &edges)
        .iter()
        .map(|&k| k as f64 / c.len() as f64)
        .collect();
    if fill {
        binning::fill_zeroes(&mut rp);
        binning::fill_zeroes(&mut cp);
    }
    (rp, cp)
}

/// Runs `method` on categorical `current` against a categorical reference profile. Without an
/// "other" bucket the report is identical to [`categorical_drift`]; with one, current labels
/// not among the kept categories are pooled into it first.
pub fn categorical_drift_against_profile<S: AsRef<str>>(
    profile: &Profile,
    current: &[S],
    method: &str,
    threshold: Option<f64>,
) -> Result<DriftReport, DriftError> {
    let Profile::Categorical(p) = profile else {
        let name = defaults(method)
            .map(|d| d.0)
            .ok_or_else(|| unknown(method))?;
        return Err(DriftError::NotApplicable {
            method: name,
            reason: "the reference profile is numeric",
        });
    };
    if p.count == 0 {
        return Err(DriftError::EmptySample {
            which: "reference",
            dropped: p.dropped as usize,
        });
    }
    // Reserved fallibly (see `NumericProfile::expand`), from the counts that are expanded
    // below; every count fits in usize once their sum does.
    let mut reference: Vec<&str> = Vec::new();
    let n = total(p.categories.iter().map(|(_, c)| *c).chain([p.other_count]));
    reference
        .try_reserve_exact(n)
        .map_err(|_| too_large(method))?;
    for (label, c) in &p.categories {
        reference.extend(std::iter::repeat_n(label.as_str(), *c as usize));
    }
    reference.extend(std::iter::repeat_n(OTHER_LABEL, p.other_count as usize));
    let mut rep = if p.other_categories == 0 {
        let cur: Vec<&str> = current.iter().map(|s| s.as_ref()).collect();
        categorical_drift(method, &reference, &cur)?
    } else {
        let kept = |s: &str| {
            p.categories
                .binary_search_by(|(l, _)| l.as_str().cmp(s))
                .is_ok()
        };
        let cur: Vec<&str> = current
            .iter()
            .map(|s| s.as_ref())
            .map(|s| {
                let cleaned = !s.trim().is_empty() && !s.eq_ignore_ascii_case("nan");
                if !cleaned || kept(s) {
                    s
                } else {
                    OTHER_LABEL
                }
            })
            .collect();
        categorical_drift(method, &reference, &cur)?
    };
    rep.dropped_reference = p.dropped as usize;
    Ok(judge(rep, threshold))
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    /// A length that cannot exceed what is left, given at least `min_item` bytes per item.
    fn len(&mut self, min_item: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len() / min_item).then_some(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Offset of `count` in [`Profile::to_bytes`]: after the magic, the version and the kind.
    const COUNT_AT: usize = MAGIC.len() + 2;
    /// Offset of the first (value, count) pair's count of a numeric `Counts` profile: after
    /// count, dropped, min, max, mean, std, the tag, the number of pairs and the first value.
    const FIRST_PAIR_COUNT_AT: usize = COUNT_AT + 6 * 8 + 1 + 8 + 8;

    fn read_u64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// `bytes` with the u64 at `at` (checked to hold `was`) replaced by `now`.
    fn patched(bytes: &[u8], at: usize, was: u64, now: u64) -> Vec<u8> {
        assert_eq!(read_u64(bytes, at), was, "offset {at}");
        let mut b = bytes.to_vec();
        b[at..at + 8].copy_from_slice(&now.to_le_bytes());
        b
    }

    fn few_distinct() -> Vec<f64> {
        (0..120_000).map(|i| f64::from(i % 7)).collect()
    }

    #[test]
    fn huge_counts_in_the_bytes_are_refused_without_allocating() {
        // numeric `Counts`: count and first pair raised together (consistent but huge)
        let p = Profile::from_numeric(&few_distinct());
        let Profile::Numeric(NumericProfile {
            count,
            values: NumericValues::Counts(t),
            ..
        }) = &p
        else {
            panic!("expected a Counts profile")
        };
        let (count, first) = (*count, t[0].1);
        let b = p.to_bytes();
        let with_count = |n: u64| {
            let b = patched(&b, COUNT_AT, count, n);
            let b = patched(&b, FIRST_PAIR_COUNT_AT, first, n - (count - first));
            Profile::from_bytes(&b)
        };
        assert!(with_count(MAX_NUMERIC_ROWS as u64).is_ok());
        let e = with_count(MAX_NUMERIC_ROWS as u64 + 1).unwrap_err();
        assert!(e.contains("at most 134217728"), "{e}");
        assert!(with_count(1 << 50).is_err());
        assert!(with_count(u64::MAX).is_err());

        // categorical: count and the count of "qz" raised together
        let p = Profile::from_categorical(&["qz", "qz", "b"]);
        let b = p.to_bytes();
        // the count of "qz" follows its bytes
        let qz = b.windows(2).position(|w| w == b"qz").unwrap() + 2;
        let with_count = |n: u64| {
            let b = patched(&b, COUNT_AT, 3, n);
            Profile::from_bytes(&patched(&b, qz, 2, n - 1))
        };
        assert!(with_count(MAX_CATEGORICAL_ROWS as u64).is_ok());
        let e = with_count(MAX_CATEGORICAL_ROWS as u64 + 1).unwrap_err();
        assert!(e.contains("at most 67108864"), "{e}");
        assert!(with_count(1 << 50).is_err());
        // u64::MAX in count and in "qz": the sum overflows u64, and is an error, not a panic
        let b = patched(&b, COUNT_AT, 3, u64::MAX);
        assert!(Profile::from_bytes(&patched(&b, qz, 2, u64::MAX)).is_err());
    }

    #[test]
    fn inconsistent_counts_in_the_bytes_are_refused() {
        let mismatch = |r: Result<Profile, String>| {
            let e = r.unwrap_err();
            assert!(e.starts_with("corrupt reference profile"), "{e}");
        };
        // numeric `Exact`: count is the number of values
        let b = Profile::from_numeric(&[1.0, 2.0, 3.0]).to_bytes();
        mismatch(Profile::from_bytes(&patched(&b, COUNT_AT, 3, 4)));
        mismatch(Profile::from_bytes(&patched(&b, COUNT_AT, 3, 1 << 50)));
        // numeric `Counts`: count is the sum of the pairs' counts
        let p = Profile::from_numeric(&few_distinct());
        let b = p.to_bytes();
        let first = read_u64(&b, FIRST_PAIR_COUNT_AT);
        mismatch(Profile::from_bytes(&patched(
            &b,
            COUNT_AT,
            120_000,
            1 << 50,
        )));
        mismatch(Profile::from_bytes(&patched(
            &b,
            FIRST_PAIR_COUNT_AT,
            first,
            1 << 50,
        )));
        // sketch: the last rank is the count
        let b = Profile::from_numeric(&(0..120_000).map(f64::from).collect::<Vec<_>>()).to_bytes();
        mismatch(Profile::from_bytes(&patched(
            &b,
            COUNT_AT,
            120_000,
            1 << 50,
        )));
        // categorical: count is the sum of the categories' and the other bucket's counts
        let b = Profile::from_categorical(&["qz", "qz", "b"]).to_bytes();
        mismatch(Profile::from_bytes(&patched(&b, COUNT_AT, 3, 1 << 50)));
        let other_count_at = COUNT_AT + 2 * 8;
        mismatch(Profile::from_bytes(&patched(
            &b,
            other_count_at,
            0,
            1 << 50,
        )));
        // ... and other values come with pooled categories, even when the sum agrees
        let b = patched(&b, COUNT_AT, 3, 4);
        mismatch(Profile::from_bytes(&patched(&b, other_count_at, 0, 1)));
    }

    #[test]
    fn valid_profiles_round_trip_with_the_same_results() {
        let cur: Vec<f64> = (0..500).map(|i| f64::from(i % 9) * 0.9 + 0.3).collect();
        // `Exact` and `Counts` (whose expansion is the sorted window)
        let small: Vec<f64> = (0..300).map(|i| f64::from((i * 37) % 101) / 10.0).collect();
        let mut sorted = few_distinct();
        sorted.sort_unstable_by(f64::total_cmp);
        for (r, same_as) in [(small.clone(), small), (few_distinct(), sorted)] {
            let p = Profile::from_numeric(&r);
            let back = Profile::from_bytes(&p.to_bytes()).unwrap();
            assert_eq!(back, p);
            for m in ["auto", "ks", "wasserstein", "psi", "anderson", "mannw"] {
                let got = numeric_drift_against_profile(&back, &cur, m, None);
                assert_eq!(got, numeric_drift(m, &same_as, &cur), "{m}");
                assert!(got.is_ok(), "{m}");
            }
        }
        // a sketch decodes to itself
        let p = Profile::from_numeric(&(0..120_000).map(f64::from).collect::<Vec<_>>());
        assert_eq!(Profile::from_bytes(&p.to_bytes()).unwrap(), p);
        // categorical, without and with the other bucket
        let r: Vec<String> = (0..2_000).map(|i| format!("c{}", i % 13)).collect();
        let c: Vec<String> = (0..700).map(|i| format!("c{}", i % 11)).collect();
        let p = Profile::from_categorical(&r);
        let back = Profile::from_bytes(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
        for m in ["auto", "chisquare", "psi", "jensenshannon", "TVD"] {
            let got = categorical_drift_against_profile(&back, &c, m, None);
            assert_eq!(got, categorical_drift(m, &r, &c), "{m}");
            assert!(got.is_ok(), "{m}");
        }
        let wide: Vec<String> = (0..MAX_CATEGORIES + 50).map(|i| format!("w{i}")).collect();
        let p = Profile::from_categorical(&wide);
        let back = Profile::from_bytes(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
        assert!(!back.is_exact());
        assert_eq!(
            categorical_drift_against_profile(&back, &c, "psi", None),
            categorical_drift_against_profile(&p, &c, "psi", None)
        );
    }

    #[test]
    fn a_profile_too_large_for_memory_is_an_error_not_an_abort() {
        // Built in memory, past `from_bytes`: 2^60 values of 8 or 16 bytes exceed any
        // allocation, so the reservation fails (with no allocation attempted).
        let numeric = |values| {
            Profile::Numeric(NumericProfile {
                count: 1 << 60,
                dropped: 0,
                min: 1.0,
                max: 2.0,
                mean: 1.5,
                std: 0.5,
                values,
            })
        };
        let too_large = |method| {
            Err(DriftError::NotApplicable {
                method,
                reason: "the reference profile is too large to expand in memory",
            })
        };
        let p = numeric(NumericValues::Counts(vec![(1.0, 1 << 59), (2.0, 1 << 59)]));
        assert_eq!(
            numeric_drift_against_profile(&p, &[1.0], "ks", None),
            too_large("ks")
        );
        assert_eq!(
            numeric_drift_against_profile(&p, &[1.0], "auto", None),
            too_large("auto")
        );
        // counts whose sum overflows
        let p = numeric(NumericValues::Counts(vec![
            (1.0, u64::MAX),
            (2.0, u64::MAX),
        ]));
        assert_eq!(
            numeric_drift_against_profile(&p, &[1.0], "psi", None),
            too_large("psi")
        );
        let p = Profile::Categorical(CategoricalProfile {
            count: 1 << 60,
            dropped: 0,
            categories: vec![("a".into(), 1 << 59)],
            other_count: 1 << 59,
            other_categories: 3,
        });
        assert_eq!(
            categorical_drift_against_profile(&p, &["a"], "chisquare", None),
            too_large("chisquare")
        );
    }
}
