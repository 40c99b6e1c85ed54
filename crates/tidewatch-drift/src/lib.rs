//! Two-sample data-drift statistics with Evidently's stattest names, default thresholds and
//! drift rules, and scipy 1.17's numbers (checked against `drift_oracle.py` fixtures).
//!
//! Non-finite numeric values (NaN, ±inf) and empty/"nan" category labels are dropped before
//! testing and counted in [`DriftReport`], as Evidently does.
//!
//! A reference window with a single distinct value (std = 0) is handled as Evidently does:
//! `wasserstein` divides by max(std, 0.001); distribution-based tests use the pooled values.

mod binning;
mod categorical;
mod cvm;
mod epps;
mod kolmogorov;
mod numeric;
mod sketch;

use serde::Serialize;

pub mod profile;
pub mod samples;

pub use profile::{
    categorical_drift_against_profile, numeric_drift_against_profile, CategoricalProfile,
    NumericProfile, NumericValues, Profile,
};

/// Stattest names accepted by [`numeric_drift`] / [`categorical_drift`] (Evidently spelling).
pub const METHODS: &[&str] = &[
    "ks",
    "wasserstein",
    "psi",
    "jensenshannon",
    "kl_div",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "t_test",
    "ed",
    "es",
    "hellinger",
    "chisquare",
    "z",
    "fisher_exact",
    "g_test",
    "TVD",
];

/// Methods that only make sense for numeric columns.
pub const NUMERIC_ONLY: &[&str] = &[
    "ks",
    "wasserstein",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "t_test",
    "ed",
    "es",
];

/// Errors of the drift API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// The reference or current sample is empty after dropping non-finite values.
    #[error("empty {which} sample after dropping {dropped} non-finite value(s)")]
    EmptySample { which: &'static str, dropped: usize },
    /// The method name is not one of [`METHODS`].
    #[error("unknown drift method {name:?}; valid methods: {valid}")]
    UnknownMethod { name: String, valid: String },
    /// A numeric-only method was asked for categorical data.
    #[error("method {method:?} needs numeric data, got categorical")]
    MethodNotForType { method: String },
    /// The method cannot be applied to this data (as in Evidently/scipy, which raise).
    #[error("method {method:?} not applicable: {reason}")]
    NotApplicable {
        method: &'static str,
        reason: &'static str,
    },
}

/// Whether the drift score is a p-value (drift when small) or a distance (drift when large).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScoreKind {
    PValue,
    Distance,
}

/// Result of one test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftResult {
    /// Evidently stattest name (`ks`, `wasserstein`, ...).
    pub method: &'static str,
    /// Test statistic (KS D, chi-square, normed Wasserstein, PSI, ...).
    pub statistic: f64,
    /// p-value for hypothesis tests, None for distance methods.
    pub p_value: Option<f64>,
    /// Evidently's default threshold.
    pub threshold: f64,
    /// Evidently's drift decision with that threshold.
    pub drifted: bool,
}

impl DriftResult {
    /// Evidently's `drift_score`: the p-value for tests, the statistic for distances.
    pub fn drift_score(&self) -> f64 {
        self.p_value.unwrap_or(self.statistic)
    }
}

/// A test result plus the number of dropped (non-finite / empty) inputs per window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub result: DriftResult,
    pub n_reference: usize,
    pub n_current: usize,
    pub dropped_reference: usize,
    pub dropped_current: usize,
}

#[derive(Clone, Copy)]
enum Rule {
    Lt,
    Le,
    Gt,
    Ge,
}

/// (kind, default threshold, drift rule) as in Evidently 0.7 `stattests/*.py`.
fn defaults(method: &str) -> Option<(&'static str, ScoreKind, f64, Rule)> {
    use ScoreKind::*;
    let d = match method {
        "ks" => ("ks", PValue, 0.05, Rule::Le),
        "chisquare" => ("chisquare", PValue, 0.05, Rule::Lt),
        "z" => ("z", PValue, 0.05, Rule::Lt),
        "wasserstein" => ("wasserstein", Distance, 0.1, Rule::Ge),
        "jensenshannon" => ("jensenshannon", Distance, 0.1, Rule::Ge),
        "kl_div" => ("kl_div", Distance, 0.1, Rule::Ge),
        "psi" => ("psi", Distance, 0.1, Rule::Ge),
        "anderson" => ("anderson", PValue, 0.1, Rule::Lt),
        "cramer_von_mises" => ("cramer_von_mises", PValue, 0.1, Rule::Le),
        "es" => ("es", PValue, 0.05, Rule::Lt),
        "fisher_exact" => ("fisher_exact", PValue, 0.1, Rule::Lt),
        "g_test" => ("g_test", PValue, 0.1, Rule::Lt),
        "hellinger" => ("hellinger", Distance, 0.1, Rule::Ge),
        "mannw" => ("mannw", PValue, 0.05, Rule::Lt),
        "ed" => ("ed", Distance, 0.1, Rule::Gt),
        "t_test" => ("t_test", PValue, 0.05, Rule::Lt),
        // Evidently's TVD drift_score is a seeded permutation p-value; here the score is the
        // distance itself (see `TVD` notes in the README), drift when >= 0.1.
        "TVD" => ("TVD", Distance, 0.1, Rule::Ge),
        _ => return None,
    };
    Some(d)
}

fn make(method: &str, statistic: f64, p_value: Option<f64>) -> Result<DriftResult, DriftError> {
    let (name, kind, thr, rule) = defaults(method).ok_or_else(|| unknown(method))?;
    let score = match kind {
        ScoreKind::PValue => p_value.unwrap_or(f64::NAN),
        ScoreKind::Distance => statistic,
    };
    let drifted = match rule {
        Rule::Lt => score < thr,
        Rule::Le => score <= thr,
        Rule::Gt => score > thr,
        Rule::Ge => score >= thr,
    };
    Ok(DriftResult {
        method: name,
        statistic,
        p_value: if kind == ScoreKind::PValue {
            p_value
        } else {
            None
        },
        threshold: thr,
        drifted,
    })
}

impl DriftResult {
    /// The same result judged against another threshold, with the method's own rule
    /// (p-value below it, or distance at or above it, as Evidently compares).
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        if let Some((_, kind, _, rule)) = defaults(self.method) {
            let score = match kind {
                ScoreKind::PValue => self.p_value.unwrap_or(f64::NAN),
                ScoreKind::Distance => self.statistic,
            };
            self.drifted = match rule {
                Rule::Lt => score < threshold,
                Rule::Le => score <= threshold,
                Rule::Gt => score > threshold,
                Rule::Ge => score >= threshold,
            };
            self.threshold = threshold;
        }
        self
    }
}

fn unknown(name: &str) -> DriftError {
    DriftError::UnknownMethod {
        name: name.to_string(),
        valid: METHODS.join(", "),
    }
}

/// Drops NaN/±inf; returns (kept, dropped count).
pub fn clean_numeric(x: &[f64]) -> (Vec<f64>, usize) {
    let kept: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let dropped = x.len() - kept.len();
    (kept, dropped)
}

/// Drops empty (after trim) and "nan" (any case) labels, as the oracle/pandas do.
pub fn clean_categorical<S: AsRef<str>>(x: &[S]) -> (Vec<String>, usize) {
    let kept: Vec<String> = x
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| !s.trim().is_empty() && !s.eq_ignore_ascii_case("nan"))
        .map(str::to_string)
        .collect();
    let dropped = x.len() - kept.len();
    (kept, dropped)
}

fn check_nonempty(nr: usize, nc: usize, dr: usize, dc: usize) -> Result<(), DriftError> {
    if nr == 0 {
        return Err(DriftError::EmptySample {
            which: "reference",
            dropped: dr,
        });
    }
    if nc == 0 {
        return Err(DriftError::EmptySample {
            which: "current",
            dropped: dc,
        });
    }
    Ok(())
}

/// Runs `method` (Evidently name, or "auto") on numeric samples.
pub fn numeric_drift(
    method: &str,
    reference: &[f64],
    current: &[f64],
) -> Result<DriftReport, DriftError> {
    numeric_drift_many(&[method], reference, current)
        .pop()
        .unwrap_or_else(|| Err(unknown(method)))
}

/// Several methods on the same numeric samples: each window is cleaned and sorted once, and
/// every method runs on the sorted values (the statistics do not depend on the order). One
/// result per method, in order; an error of one method does not stop the others.
pub fn numeric_drift_many(
    methods: &[&str],
    reference: &[f64],
    current: &[f64],
) -> Vec<Result<DriftReport, DriftError>> {
    let (mut r, dr) = clean_numeric(reference);
    let (mut c, dc) = clean_numeric(current);
    if let Err(e) = check_nonempty(r.len(), c.len(), dr, dc) {
        return methods.iter().map(|_| Err(e.clone())).collect();
    }
    numeric::sort_f64(&mut r);
    numeric::sort_f64(&mut c);
    methods
        .iter()
        .map(|&method| {
            let method = if method == "auto" {
                auto_numeric(&r, &c)
            } else {
                method
            };
            Ok(DriftReport {
                result: numeric_on_clean(method, &r, &c)?,
                n_reference: r.len(),
                n_current: c.len(),
                dropped_reference: dr,
                dropped_current: dc,
            })
        })
        .collect()
}

/// Runs `method` on categorical samples. Numeric-only methods give `MethodNotForType`.
pub fn categorical_drift<S: AsRef<str>>(
    method: &str,
    reference: &[S],
    current: &[S],
) -> Result<DriftReport, DriftError> {
    let (r, dr) = clean_categorical(reference);
    let (c, dc) = clean_categorical(current);
    check_nonempty(r.len(), c.len(), dr, dc)?;
    let method = if method == "auto" {
        auto_categorical(&r, &c)
    } else {
        method
    };
    if defaults(method).is_none() {
        return Err(unknown(method));
    }
    if NUMERIC_ONLY.contains(&method) {
        return Err(DriftError::MethodNotForType {
            method: method.to_string(),
        });
    }
    let result = match method {
        "psi" => {
            let (a, b) = binning::binned_categorical(&r, &c, true);
            make(method, binning::psi(&a, &b), None)
        }
        "kl_div" => {
            let (a, b) = binning::binned_categorical(&r, &c, true);
            make(method, binning::kl_div(&a, &b), None)
        }
        "jensenshannon" => {
            let (a, b) = binning::binned_categorical(&r, &c, false);
            make(method, binning::jensenshannon(&a, &b), None)
        }
        "hellinger" => make(method, categorical::hellinger(&r, &c), None),
        _ => keyed_method(method, &r, &c),
    }?;
    Ok(DriftReport {
        result,
        n_reference: r.len(),
        n_current: c.len(),
        dropped_reference: dr,
        dropped_current: dc,
    })
}

/// Methods defined on category counts, shared by categorical and (distinct-value) numeric data.
fn keyed_method<K: Ord + Clone>(method: &str, r: &[K], c: &[K]) -> Result<DriftResult, DriftError> {
    match method {
        "chisquare" => {
            let (s, p) = categorical::chisquare(r, c);
            make(method, s, Some(p))
        }
        "z" => {
            let (s, p) = categorical::z_test(r, c)?;
            make(method, s, Some(p))
        }
        "g_test" => {
            let (s, p) = categorical::g_test(r, c)?;
            make(method, s, Some(p))
        }
        "fisher_exact" => {
            let (s, p) = categorical::fisher_exact(r, c)?;
            make(method, s, Some(p))
        }
        "TVD" => make(method, categorical::tvd(r, c), None),
        _ => Err(unknown(method)),
    }
}

fn numeric_on_clean(method: &str, r: &[f64], c: &[f64]) -> Result<DriftResult, DriftError> {
    match method {
        "ks" => {
            let (d, p) = numeric::ks_2samp(r, c);
            make(method, d, Some(p))
        }
        "wasserstein" => make(method, numeric::wasserstein_normed(r, c), None),
        "ed" => make(method, numeric::energy_distance(r, c), None),
        "t_test" => {
            let (t, p) = numeric::t_test(r, c);
            make(method, t, Some(p))
        }
        "mannw" => {
            let (u, _, p_less) = numeric::mann_whitney(r, c);
            make(method, u, Some(p_less))
        }
        "anderson" => {
            let (t, p) = numeric::anderson_ksamp(&[r, c]).ok_or(DriftError::NotApplicable {
                method: "anderson",
                reason: "needs more than one distinct observation",
            })?;
            make(method, t, Some(p))
        }
        "cramer_von_mises" => {
            let (t, p) = cvm::cramervonmises_2samp(r, c);
            make(method, t, Some(p))
        }
        "es" => match epps::epps_singleton_2samp(r, c) {
            epps::Es::Value(w, p) => make(method, w, Some(p)),
            epps::Es::TooSmall => make(method, f64::NAN, Some(f64::NAN)),
            epps::Es::ZeroIqr => Err(DriftError::NotApplicable {
                method: "es",
                reason: "the pooled interquartile range is 0",
            }),
        },
        "psi" => {
            let (a, b) = binning::binned_numeric(r, c, true);
            make(method, binning::psi(&a, &b), None)
        }
        "kl_div" => {
            let (a, b) = binning::binned_numeric(r, c, true);
            make(method, binning::kl_div(&a, &b), None)
        }
        "jensenshannon" => {
            let (a, b) = binning::binned_numeric(r, c, false);
            make(method, binning::jensenshannon(&a, &b), None)
        }
        "hellinger" => make(method, numeric::hellinger_numeric(r, c), None),
        _ => keyed_method(method, &binning::fkeys(r), &binning::fkeys(c)),
    }
}

fn n_union<K: Ord + Clone>(r: &[K], c: &[K]) -> usize {
    binning::category_counts(r, c).0.len()
}

/// Evidently `_get_default_stattest` for a numeric column: len(ref) <= 1000 -> ks (or
/// chisquare / z when <= 5 distinct values, z if <= 2); otherwise wasserstein (jensenshannon
/// when <= 5 distinct values).
pub fn auto_numeric(r: &[f64], c: &[f64]) -> &'static str {
    // Only "at most 5 distinct values" matters: count the pooled distinct values up to 6.
    let nv = if r.is_sorted_by(|a, b| a <= b) && c.is_sorted_by(|a, b| a <= b) {
        let few = |s: &[f64]| !binning::distinct_more_than(s, 5);
        if few(r) && few(c) {
            n_union(&binning::fkeys(r), &binning::fkeys(c))
        } else {
            6
        }
    } else {
        n_union(&binning::fkeys(r), &binning::fkeys(c))
    };
    if r.len() <= 1000 {
        if nv <= 5 {
            if nv > 2 {
                "chisquare"
            } else {
                "z"
            }
        } else {
            "ks"
        }
    } else if nv <= 5 {
        "jensenshannon"
    } else {
        "wasserstein"
    }
}

/// Evidently `_get_default_stattest` for a categorical column: len(ref) <= 1000 -> chisquare
/// (z when binary); otherwise jensenshannon.
pub fn auto_categorical<S: AsRef<str> + Ord + Clone>(r: &[S], c: &[S]) -> &'static str {
    if r.len() <= 1000 {
        if n_union(r, c) > 2 {
            "chisquare"
        } else {
            "z"
        }
    } else {
        "jensenshannon"
    }
}

/// Raw scipy values not exposed through Evidently names (for tests and diagnostics).
pub mod raw {
    /// scipy `ks_2samp` (two-sided, auto): (D, p).
    pub fn ks_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
        crate::numeric::ks_2samp(a, b)
    }
    /// scipy `wasserstein_distance`.
    pub fn wasserstein_distance(a: &[f64], b: &[f64]) -> f64 {
        crate::numeric::wasserstein(a, b)
    }
    /// scipy `mannwhitneyu`: (U1, p two-sided, p less).
    pub fn mannwhitneyu(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
        crate::numeric::mann_whitney(a, b)
    }
    /// scipy `ttest_ind` (Student): (t, p).
    pub fn ttest_ind(a: &[f64], b: &[f64]) -> (f64, f64) {
        crate::numeric::t_test(a, b)
    }
    /// scipy `cramervonmises_2samp` (method='auto'): (T, p); (NaN, NaN) with < 2 values.
    pub fn cramervonmises_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
        crate::cvm::cramervonmises_2samp(a, b)
    }
    /// scipy `epps_singleton_2samp` (t = (0.4, 0.8)): (W, p); (NaN, NaN) with < 5 values;
    /// None when the pooled IQR is 0 (scipy raises `LinAlgError`).
    pub fn epps_singleton_2samp(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
        match crate::epps::epps_singleton_2samp(a, b) {
            crate::epps::Es::Value(w, p) => Some((w, p)),
            crate::epps::Es::TooSmall => Some((f64::NAN, f64::NAN)),
            crate::epps::Es::ZeroIqr => None,
        }
    }
    /// scipy `anderson_ksamp` midrank: (statistic, p) or None with < 2 distinct values.
    pub fn anderson_ksamp(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
        crate::numeric::anderson_ksamp(&[a, b])
    }
}
