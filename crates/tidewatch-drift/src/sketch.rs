//! Deterministic quantile sketch of a large numeric reference window (see `profile.rs` for the
//! documented bounds): knots (x_(r), r) at the exact tails r = 1..=T and n−T+1..=n and at the
//! equi-depth ranks r = ⌈i·n/K⌉, i = 1..=K.

use serde::Serialize;
use std::collections::BTreeSet;

/// Order statistics kept exactly at each end.
pub const TAIL: usize = 1_000;

/// Knots of the sketch and the exact Wasserstein-1 distance between the sketch's quantile
/// function and the reference it was built from (the bound of `wasserstein`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sketch {
    /// (value, 1-based rank) sorted by rank; the first is the minimum, the last (rank n) the
    /// maximum.
    pub knots: Vec<(f64, u64)>,
    /// ∫₀¹ |Q̂(u) − Q(u)| du between the sketch quantile function and the exact one.
    pub w1_bound: f64,
}

impl Sketch {
    /// From the sorted finite values (len > 2 TAIL) and the number of equi-depth knots `k`.
    pub(crate) fn build(sorted: &[f64], k: usize) -> Sketch {
        let n = sorted.len() as u64;
        let t = (TAIL as u64).min(n);
        let mut ranks: BTreeSet<u64> = (1..=t).chain(n - t + 1..=n).collect();
        let (nn, kk) = (u128::from(n), k as u128);
        ranks.extend((1..=kk).map(|i| (i * nn).div_ceil(kk) as u64));
        let knots: Vec<(f64, u64)> = ranks
            .into_iter()
            .map(|r| (sorted[r as usize - 1], r))
            .collect();
        let mut s = Sketch {
            knots,
            w1_bound: 0.0,
        };
        s.w1_bound = s.w1(sorted);
        s
    }

    fn n(&self) -> u64 {
        self.knots.last().map_or(0, |k| k.1)
    }

    /// Estimate of F(x) = #{v ≤ x}/n (or #{v < x}/n when `strict`). With knot k the last one
    /// below x (in that sense) and k+1 the next, the count lies in [r_k, r_{k+1} − 1]; the
    /// estimate interpolates linearly in x inside that interval, so it is exact between
    /// consecutive ranks and off by at most (r_{k+1} − 1 − r_k)/n ≤ 1/K elsewhere.
    pub(crate) fn cdf(&self, x: f64, strict: bool) -> f64 {
        let n = self.n() as f64;
        let below = |v: f64| if strict { v < x } else { v <= x };
        let j = self.knots.partition_point(|k| below(k.0));
        if j == 0 {
            return 0.0;
        }
        if j == self.knots.len() {
            return 1.0;
        }
        let (a, ra) = self.knots[j - 1];
        let (b, rb) = self.knots[j];
        let width = (rb - 1 - ra) as f64;
        let frac = if b > a {
            ((x - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (ra as f64 + frac * width) / n
    }

    /// sup_t |F̂(t) − F_cur(t)| with F̂ the (continuous between knots) estimate above; `cur`
    /// sorted. Between consecutive candidate points F_cur is constant and F̂ monotone, so the
    /// supremum is reached at a candidate, from the left or from the right.
    pub(crate) fn ks_statistic(&self, cur: &[f64]) -> f64 {
        let m = cur.len() as f64;
        let mut d: f64 = 0.0;
        for x in self.knots.iter().map(|k| k.0).chain(cur.iter().copied()) {
            let c_le = cur.partition_point(|&v| v <= x) as f64 / m;
            let c_lt = cur.partition_point(|&v| v < x) as f64 / m;
            d = d
                .max((self.cdf(x, false) - c_le).abs())
                .max((self.cdf(x, true) - c_lt).abs());
        }
        d
    }

    /// W₁ between the sketch and a sorted sample `s`: ∫₀¹ |Q̂(u) − Q_s(u)| du, where Q̂ is
    /// linear through the points ((r_k − ½)/n, x_(r_k)) and flat beyond the first and last,
    /// and Q_s(u) = s[j] on (j/m, (j+1)/m].
    pub(crate) fn w1(&self, s: &[f64]) -> f64 {
        let n = self.n() as f64;
        let m = s.len();
        let kn = &self.knots;
        let uk = |k: usize| (kn[k].1 as f64 - 0.5) / n;
        let eval = |k: usize, u: f64| -> f64 {
            if k == 0 {
                kn[0].0
            } else if k == kn.len() {
                kn[kn.len() - 1].0
            } else {
                let (u0, u1) = (uk(k - 1), uk(k));
                let t = ((u - u0) / (u1 - u0)).clamp(0.0, 1.0);
                kn[k - 1].0 + t * (kn[k].0 - kn[k - 1].0)
            }
        };
        let (mut u, mut k, mut j) = (0.0_f64, 0usize, 0usize);
        let mut acc = 0.0;
        while j < m {
            let uc = (j + 1) as f64 / m as f64;
            let ukn = if k < kn.len() { uk(k) } else { f64::INFINITY };
            let ub = uc.min(ukn);
            if ub > u {
                let d0 = eval(k, u) - s[j];
                let d1 = eval(k, ub) - s[j];
                let w = ub - u;
                acc += if (d0 >= 0.0) == (d1 >= 0.0) {
                    (d0.abs() + d1.abs()) / 2.0 * w
                } else {
                    (d0 * d0 + d1 * d1) / (2.0 * (d0.abs() + d1.abs())) * w
                };
                u = ub;
            }
            if ukn <= uc {
                k += 1;
            }
            if uc <= ukn {
                j += 1;
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_exact_sketch_reproduces_the_sample() {
        // every rank is a knot when n <= 2 TAIL: the CDF estimate is exact
        let s: Vec<f64> = (0..50).map(|i| f64::from(i / 2)).collect();
        let sk = Sketch::build(&s, 10);
        assert_eq!(sk.knots.len(), 50);
        for x in [-1.0, 0.0, 3.0, 3.5, 24.0, 30.0] {
            let le = s.iter().filter(|&&v| v <= x).count() as f64 / 50.0;
            let lt = s.iter().filter(|&&v| v < x).count() as f64 / 50.0;
            assert_eq!(sk.cdf(x, false), le, "{x}");
            assert_eq!(sk.cdf(x, true), lt, "{x}");
        }
        // the linear quantile function differs from the step one by at most 1/4 per unit step
        assert!(sk.w1_bound <= 0.25 + 1e-12, "{}", sk.w1_bound);
        let c = [0.5, 7.0, 30.0];
        let exact_d = crate::numeric::ks_statistic(&s, &c);
        assert!((sk.ks_statistic(&c) - exact_d).abs() < 1e-12);
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    /// The documented share bound: the estimates of F(x) and F(< x) are within 1/K of the
    /// exact values on 10^6 seeded values (continuous and heavily tied), at many points.
    #[test]
    fn cdf_estimate_is_within_one_over_k() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 1_000_000;
        let k = 10_000;
        let cont: Vec<f64> = (0..n).map(|_| (next() * 4.0).exp()).collect();
        let tied: Vec<f64> = (0..n).map(|_| (next() * 20_000.0).floor()).collect();
        for mut s in [cont, tied] {
            s.sort_unstable_by(f64::total_cmp);
            let sk = Sketch::build(&s, k);
            let (lo, hi) = (s[0], s[n - 1]);
            let mut worst: f64 = 0.0;
            let points = (0..=4000)
                .map(|i| lo + (hi - lo) * f64::from(i) / 4000.0)
                .chain(sk.knots.iter().step_by(7).map(|k| k.0));
            for x in points {
                let le = s.partition_point(|&v| v <= x) as f64 / n as f64;
                let lt = s.partition_point(|&v| v < x) as f64 / n as f64;
                worst = worst
                    .max((sk.cdf(x, false) - le).abs())
                    .max((sk.cdf(x, true) - lt).abs());
            }
            assert!(worst <= 1.0 / k as f64, "{worst}");
            // the tails are exact
            for &x in &s[..TAIL - 1] {
                let lt = s.partition_point(|&v| v < x) as f64 / n as f64;
                assert_eq!(sk.cdf(x, true), lt);
            }
        }
    }
}
