//! Model quality of predictions against targets, as states that can be updated row by row,
//! merged (parallel workers, distributed nodes) and serialized, so SQL aggregates over them
//! are parallel-safe.
//!
//! * [`Regression`]: n, MAE, RMSE, MAPE, R² and mean error. The target's mean and sum of
//!   squared deviations are kept with Welford's update and merged with Chan et al.'s formula
//!   (Chan, Golub & LeVeque 1979), so R² stays accurate for large, offset targets.
//! * [`Classification`]: a confusion matrix; accuracy, macro-averaged precision, recall and F1
//!   (scikit-learn's definitions, with 0 where a class was never predicted or never seen).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Running state of regression quality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub n: u64,
    /// Σ (prediction − target)
    pub sum_error: f64,
    /// Σ |prediction − target|
    pub sum_abs_error: f64,
    /// Σ (prediction − target)²
    pub sum_sq_error: f64,
    /// Rows with a non-zero target, which MAPE averages over.
    pub n_pct: u64,
    /// Σ |prediction − target| / |target| over rows with target ≠ 0
    pub sum_abs_pct_error: f64,
    /// Mean of the targets.
    pub target_mean: f64,
    /// Σ (target − mean)²
    pub target_m2: f64,
}

/// Final regression metrics. `None` where the metric is undefined (no rows; MAPE without
/// non-zero targets; R² with constant targets).
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionMetrics {
    pub n: u64,
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    /// In percent, over rows whose target is not zero.
    pub mape: Option<f64>,
    pub r2: Option<f64>,
    /// Mean of prediction − target: positive means over-prediction.
    pub mean_error: Option<f64>,
}

impl Regression {
    /// Adds one row; rows with a non-finite prediction or target are skipped (returns false).
    pub fn add(&mut self, prediction: f64, target: f64) -> bool {
        if !prediction.is_finite() || !target.is_finite() {
            return false;
        }
        let e = prediction - target;
        self.n += 1;
        self.sum_error += e;
        self.sum_abs_error += e.abs();
        self.sum_sq_error += e * e;
        if target != 0.0 {
            self.n_pct += 1;
            self.sum_abs_pct_error += (e / target).abs();
        }
        // Welford's online update.
        let delta = target - self.target_mean;
        self.target_mean += delta / self.n as f64;
        self.target_m2 += delta * (target - self.target_mean);
        true
    }

    /// Merges another state into this one (Chan et al.'s pairwise formula for mean and M2).
    pub fn merge(&mut self, other: &Regression) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.target_mean - self.target_mean;
        self.target_mean += delta * nb / n;
        self.target_m2 += other.target_m2 + delta * delta * na * nb / n;
        self.n += other.n;
        self.sum_error += other.sum_error;
        self.sum_abs_error += other.sum_abs_error;
        self.sum_sq_error += other.sum_sq_error;
        self.n_pct += other.n_pct;
        self.sum_abs_pct_error += other.sum_abs_pct_error;
    }

    pub fn metrics(&self) -> RegressionMetrics {
        let n = self.n as f64;
        let some = |v: f64| if self.n > 0 { Some(v) } else { None };
        RegressionMetrics {
            n: self.n,
            mae: some(self.sum_abs_error / n),
            rmse: some((self.sum_sq_error / n).sqrt()),
            mape: (self.n_pct > 0).then(|| 100.0 * self.sum_abs_pct_error / self.n_pct as f64),
            // R² = 1 − SS_res / SS_tot
            r2: (self.n > 0 && self.target_m2 > 0.0)
                .then(|| 1.0 - self.sum_sq_error / self.target_m2),
            mean_error: some(self.sum_error / n),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Running state of classification quality: counts of (target, prediction) pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// confusion[target][prediction] = count
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Per-class precision, recall, F1 and support (rows whose target is the class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationMetrics {
    pub n: u64,
    pub accuracy: Option<f64>,
    pub precision_macro: Option<f64>,
    pub recall_macro: Option<f64>,
    pub f1_macro: Option<f64>,
    pub per_class: BTreeMap<String, ClassMetrics>,
}

impl Classification {
    pub fn add(&mut self, prediction: &str, target: &str) {
        *self
            .confusion
            .entry(target.to_owned())
            .or_default()
            .entry(prediction.to_owned())
            .or_default() += 1;
    }

    pub fn merge(&mut self, other: &Classification) {
        for (t, row) in &other.confusion {
            let mine = self.confusion.entry(t.clone()).or_default();
            for (p, c) in row {
                *mine.entry(p.clone()).or_default() += c;
            }
        }
    }

    pub fn metrics(&self) -> ClassificationMetrics {
        let mut classes: BTreeSet<&String> = self.confusion.keys().collect();
        for row in self.confusion.values() {
            classes.extend(row.keys());
        }
        let n: u64 = self.confusion.values().flat_map(|r| r.values()).sum();
        let correct: u64 = self
            .confusion
            .iter()
            .map(|(t, r)| r.get(t).copied().unwrap_or(0))
            .sum();
        let mut per_class = BTreeMap::new();
        for c in &classes {
            let tp = self
                .confusion
                .get(*c)
                .and_then(|r| r.get(*c))
                .copied()
                .unwrap_or(0) as f64;
            let support: u64 = self
                .confusion
                .get(*c)
                .map(|r| r.values().sum())
                .unwrap_or(0);
            let predicted: u64 = self
                .confusion
                .values()
                .map(|r| r.get(*c).copied().unwrap_or(0))
                .sum();
            // scikit-learn's zero_division = 0
            let precision = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            per_class.insert(
                (*c).clone(),
                ClassMetrics {
                    precision,
                    recall,
                    f1,
                    support,
                },
            );
        }
        let k = per_class.len() as f64;
        let mean = |f: fn(&ClassMetrics) -> f64| {
            (k > 0.0).then(|| per_class.values().map(f).sum::<f64>() / k)
        };
        ClassificationMetrics {
            n,
            accuracy: (n > 0).then(|| correct as f64 / n as f64),
            precision_macro: mean(|m| m.precision),
            recall_macro: mean(|m| m.recall),
            f1_macro: mean(|m| m.f1),
            per_class,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn regression_matches_hand_computed_values() {
        // predictions vs targets: errors 1, -1, 0.5, 0 ; targets 2, 4, 0, 6 (mean 3, SS_tot 20)
        let mut r = Regression::default();
        for (p, t) in [(3.0, 2.0), (3.0, 4.0), (0.5, 0.0), (6.0, 6.0)] {
            assert!(r.add(p, t));
        }
        let m = r.metrics();
        assert_eq!(m.n, 4);
        assert!(close(m.mae.unwrap(), 2.5 / 4.0));
        assert!(close(m.rmse.unwrap(), (2.25f64 / 4.0).sqrt()));
        // zero target skipped: |1/2| + |-1/4| + 0 over 3 rows, in percent
        assert!(close(m.mape.unwrap(), 100.0 * 0.75 / 3.0));
        assert!(close(m.r2.unwrap(), 1.0 - 2.25 / 20.0));
        assert!(close(m.mean_error.unwrap(), 0.5 / 4.0));
    }

    #[test]
    fn regression_edge_cases() {
        let empty = Regression::default().metrics();
        assert_eq!(
            (empty.n, empty.mae, empty.r2, empty.mape),
            (0, None, None, None)
        );
        let mut r = Regression::default();
        assert!(!r.add(f64::NAN, 1.0));
        assert!(!r.add(1.0, f64::INFINITY));
        r.add(1.0, 5.0);
        r.add(2.0, 5.0);
        let m = r.metrics();
        assert_eq!(m.n, 2);
        assert_eq!(m.r2, None, "constant targets have no R²");
    }

    #[test]
    fn classification_matches_scikit_learn_example() {
        // y_true = [cat, dog, cat, bird, dog, cat], y_pred = [cat, cat, cat, dog, dog, bird]
        let mut c = Classification::default();
        for (p, t) in [
            ("cat", "cat"),
            ("cat", "dog"),
            ("cat", "cat"),
            ("dog", "bird"),
            ("dog", "dog"),
            ("bird", "cat"),
        ] {
            c.add(p, t);
        }
        let m = c.metrics();
        assert_eq!(m.n, 6);
        assert!(close(m.accuracy.unwrap(), 3.0 / 6.0));
        // cat: P 2/3 R 2/3; dog: P 1/2 R 1/2; bird: P 0 R 0 -> macro P = (2/3 + 1/2)/3
        assert!(close(m.precision_macro.unwrap(), (2.0 / 3.0 + 0.5) / 3.0));
        assert!(close(m.recall_macro.unwrap(), (2.0 / 3.0 + 0.5) / 3.0));
        assert!(close(m.f1_macro.unwrap(), (2.0 / 3.0 + 0.5) / 3.0));
        assert_eq!(m.per_class["cat"].support, 3);
    }

    #[test]
    fn serialization_round_trips() {
        let mut r = Regression::default();
        r.add(1.5, 2.0);
        assert_eq!(Regression::from_bytes(&r.to_bytes()), Ok(r));
        let mut c = Classification::default();
        c.add("a", "b");
        assert_eq!(Classification::from_bytes(&c.to_bytes()), Ok(c));
        assert!(Regression::from_bytes(b"garbage").is_err());
    }

    proptest! {
        /// Merging the states of any split equals one pass over all rows.
        #[test]
        fn regression_merge_equals_single_pass(
            rows in proptest::collection::vec((-1e6f64..1e6, -1e6f64..1e6), 1..200), split in 0usize..200,
        ) {
            let split = split.min(rows.len());
            let (mut a, mut b, mut all) = (Regression::default(), Regression::default(), Regression::default());
            for (i, (p, t)) in rows.iter().enumerate() {
                all.add(*p, *t);
                if i < split { a.add(*p, *t); } else { b.add(*p, *t); }
            }
            a.merge(&b);
            let (x, y) = (a.metrics(), all.metrics());
            prop_assert_eq!(x.n, y.n);
            for (u, v) in [(x.mae, y.mae), (x.rmse, y.rmse), (x.r2, y.r2), (x.mean_error, y.mean_error), (x.mape, y.mape)] {
                match (u, v) {
                    (Some(u), Some(v)) => prop_assert!((u - v).abs() <= 1e-6 * (1.0 + v.abs()), "{} vs {}", u, v),
                    (u, v) => prop_assert_eq!(u, v),
                }
            }
        }

        #[test]
        fn classification_merge_equals_single_pass(
            rows in proptest::collection::vec((0u8..4, 0u8..4), 0..100), split in 0usize..100,
        ) {
            let split = split.min(rows.len());
            let (mut a, mut b, mut all) = (Classification::default(), Classification::default(), Classification::default());
            for (i, (p, t)) in rows.iter().enumerate() {
                let (p, t) = (p.to_string(), t.to_string());
                all.add(&p, &t);
                if i < split { a.add(&p, &t); } else { b.add(&p, &t); }
            }
            a.merge(&b);
            prop_assert_eq!(a, all);
        }
    }
}
