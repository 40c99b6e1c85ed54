//! An indexable sorted sliding window: rolling median and MAD without re-sorting.
//!
//! The window keeps its values twice: in arrival order (a ring, to know what leaves) and sorted
//! (a `Vec`, to read order statistics). A push is two binary searches (O(log w)) plus two
//! `memmove`s of at most `w` floats; for the window sizes used here (≤ a few thousand) that block
//! move is a handful of nanoseconds and beats pointer-based balanced trees by a wide margin.
//! The median is O(1) and the MAD is O(log w): it is the k-th smallest element of the union of two
//! sorted sequences (distances to the median going left and going right), found by binary search
//! on how many elements come from each side (the classic "k-th of two sorted arrays" selection).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Sliding window of the last `cap` values with order statistics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SortedWindow {
    cap: usize,
    ring: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl SortedWindow {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        SortedWindow {
            cap,
            ring: VecDeque::with_capacity(cap),
            sorted: Vec::with_capacity(cap),
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Add a finite value, evicting the oldest when full.
    pub fn push(&mut self, x: f64) {
        debug_assert!(x.is_finite());
        if self.ring.len() == self.cap {
            if let Some(old) = self.ring.pop_front() {
                let i = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
                if i < self.sorted.len() {
                    self.sorted.remove(i);
                }
            }
        }
        self.ring.push_back(x);
        let i = self.sorted.partition_point(|v| v.total_cmp(&x).is_le());
        self.sorted.insert(i, x);
    }

    /// The values in arrival order (oldest first).
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        self.ring.iter().copied()
    }

    /// The most recent value.
    pub fn last(&self) -> Option<f64> {
        self.ring.back().copied()
    }

    /// The values sorted ascending.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// The median (mean of the two middle values for an even count); NaN when empty.
    pub fn median(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            0.5 * (self.sorted[n / 2 - 1] + self.sorted[n / 2])
        }
    }

    /// The q-quantile by nearest rank on the sorted window (q in [0, 1]); NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        self.sorted[i.min(n - 1)]
    }

    /// Median absolute deviation from `med` (unscaled; mean of the two middle distances for an
    /// even count), in O(log w).
    pub fn mad_around(&self, med: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            self.kth_distance(med, n / 2)
        } else {
            0.5 * (self.kth_distance(med, n / 2 - 1) + self.kth_distance(med, n / 2))
        }
    }

    /// The MAD around the window median.
    pub fn mad(&self) -> f64 {
        self.mad_around(self.median())
    }

    /// A robust scale (σ-equivalent for Gaussian data) that is never zero on a non-constant window:
    /// 1.4826·MAD, else the 10–90% range / 2.563, else the full range / 4, else a relative epsilon
    /// (a constant window: any change is then far out).
    pub fn scale_around(&self, med: f64) -> f64 {
        let mad = 1.4826 * self.mad_around(med);
        if mad > 0.0 {
            return mad;
        }
        let r = (self.quantile(0.9) - self.quantile(0.1)) / 2.563;
        if r > 0.0 {
            return r;
        }
        let n = self.sorted.len();
        if n > 1 {
            let r = (self.sorted[n - 1] - self.sorted[0]) / 4.0;
            if r > 0.0 {
                return r;
            }
        }
        1e-9 * med.abs().max(1e-3)
    }

    /// k-th smallest (0-based) of |x_i - med| over the window.
    fn kth_distance(&self, med: f64, k: usize) -> f64 {
        let s = &self.sorted;
        let p = s.partition_point(|v| *v < med);
        // Left distances, ascending: med - s[p-1], med - s[p-2], ...; right: s[p] - med, ...
        let a_len = p;
        let b_len = s.len() - p;
        let a = |j: usize| med - s[p - 1 - j];
        let b = |j: usize| s[p + j] - med;
        // Take i elements from `a` and k+1-i from `b`; find the i where both splits are ordered.
        let need = k + 1;
        let mut lo = need.saturating_sub(b_len);
        let mut hi = need.min(a_len);
        while lo < hi {
            let i = (lo + hi) / 2;
            let j = need - i;
            // Too few from `a` if a[i] < b[j-1].
            if j > 0 && i < a_len && a(i) < b(j - 1) {
                lo = i + 1;
            } else {
                hi = i;
            }
        }
        let i = lo;
        let j = need - i;
        let x = if i > 0 { a(i - 1) } else { f64::NEG_INFINITY };
        let y = if j > 0 { b(j - 1) } else { f64::NEG_INFINITY };
        x.max(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_median(v: &mut [f64]) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    }

    #[test]
    fn median_and_mad_match_sort_based_recompute() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for cap in [1usize, 2, 3, 4, 5, 8, 17, 64] {
            let mut w = SortedWindow::new(cap);
            let mut hist: Vec<f64> = Vec::new();
            for _ in 0..600 {
                // Many ties (rounded values) to exercise MAD = 0 and duplicate handling.
                let x: f64 = if rng.gen_bool(0.5) {
                    (rng.gen_range(0.0..5.0_f64)).round()
                } else {
                    rng.gen_range(-100.0..100.0)
                };
                w.push(x);
                hist.push(x);
                let start = hist.len().saturating_sub(cap);
                let mut win: Vec<f64> = hist[start..].to_vec();
                let med = brute_median(&mut win.clone());
                let mut dev: Vec<f64> = win.iter().map(|v| (v - med).abs()).collect();
                let mad = brute_median(&mut dev);
                assert_eq!(w.median(), med, "median cap={cap}");
                assert!(
                    (w.mad() - mad).abs() <= 1e-12 * mad.abs().max(1.0),
                    "mad cap={cap}: {} vs {mad}",
                    w.mad()
                );
                win.sort_by(|a, b| a.total_cmp(b));
                assert_eq!(w.sorted(), &win[..]);
            }
        }
    }
}
