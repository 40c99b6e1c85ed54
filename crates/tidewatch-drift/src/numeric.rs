//! Numerical two-sample statistics (scipy 1.17 semantics). Inputs are finite, non-empty.

use crate::kolmogorov::{kstwo_sf, outer_prob_inside, prob_outside_square};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use std::borrow::Cow;

/// `x` in ascending order: borrowed when it already is (the callers of [`crate::numeric_drift`]
/// sort each window once), else a sorted copy.
pub(crate) fn sorted(x: &[f64]) -> Cow<'_, [f64]> {
    if x.is_sorted_by(|a, b| a.total_cmp(b).is_le()) {
        return Cow::Borrowed(x);
    }
    let mut v = x.to_vec();
    sort_f64(&mut v);
    Cow::Owned(v)
}

/// Sort in `f64::total_cmp` order with an LSD radix sort (radsort maps each float to the
/// integer key of its total order), 3-5x faster than a comparison sort on 10^5+ values; the
/// result is the same sequence, as the total order is strict over bit patterns.
pub(crate) fn sort_f64(v: &mut [f64]) {
    radsort::sort(v);
}

/// Number of elements of sorted `s` that are <= v (numpy searchsorted side='right').
fn count_le(s: &[f64], v: f64) -> usize {
    s.partition_point(|&e| e <= v)
}

/// Number of elements of sorted `s` that are < v (searchsorted side='left').
fn count_lt(s: &[f64], v: f64) -> usize {
    s.partition_point(|&e| e < v)
}

/// KS two-sample: D = max |F1 - F2| over pooled points; p-value as scipy `ks_2samp`
/// (two-sided, method='auto'): exact lattice-path count when max(n1,n2) <= 10000
/// (D rounded to h/lcm), else `kstwo.sf(D, round(n1*n2/(n1+n2)))`.
pub(crate) fn ks_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d = ks_statistic(a, b);
    ks_pvalue(d, a.len() as i64, b.len() as i64)
}

/// D = max |F1 - F2| over the pooled points (scipy's max(cdf1 - cdf2) vs -min).
pub(crate) fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let s1 = sorted(a);
    let s2 = sorted(b);
    let (n1, n2) = (s1.len() as f64, s2.len() as f64);
    let mut max_s = f64::NEG_INFINITY;
    let mut min_s = f64::INFINITY;
    // The ECDF difference only changes at pooled values: walk both sorted samples once, taking
    // every copy of the next value from both sides, so (i, j) = (count_le(s1, v), count_le(s2, v)).
    let (mut i, mut j) = (0, 0);
    while i < s1.len() || j < s2.len() {
        let v = match (s1.get(i), s2.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < s1.len() && s1[i] <= v {
            i += 1;
        }
        while j < s2.len() && s2[j] <= v {
            j += 1;
        }
        let d = i as f64 / n1 - j as f64 / n2;
        max_s = max_s.max(d);
        min_s = min_s.min(d);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s {
        min_s
    } else {
        max_s
    }
}

/// The p-value step of scipy `ks_2samp` for a statistic `d` between samples of sizes n1, n2:
/// returns (d, possibly rounded to h/lcm on the exact path, p).
pub(crate) fn ks_pvalue(mut d: f64, n1: i64, n2: i64) -> (f64, f64) {
    let g = gcd(n1, n2);
    let mut prob = f64::NAN;
    let mut exact_ok = false;
    if n1.max(n2) <= 10_000 {
        let lcm = (n1 / g) * n2;
        let h = (d * lcm as f64).round_ties_even() as i64;
        d = h as f64 / lcm as f64;
        if h == 0 {
            return (d, 1.0);
        }
        let p = if n1 == n2 {
            prob_outside_square(n1, h)
        } else {
            outer_prob_inside(n1, n2, g, h)
        };
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            prob = p;
            exact_ok = true;
        }
    }
    if !exact_ok {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = m * n / (m + n);
        prob = kstwo_sf(en.round_ties_even() as i64, d);
    }
    (d, prob.clamp(0.0, 1.0))
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// The values of two sorted slices in ascending (total) order.
struct MergeIter<'a> {
    a: &'a [f64],
    b: &'a [f64],
    i: usize,
    j: usize,
}

impl Iterator for MergeIter<'_> {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        let take_a = match (self.a.get(self.i), self.b.get(self.j)) {
            (Some(x), Some(y)) => x.total_cmp(y).is_le(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_a {
            self.i += 1;
            Some(self.a[self.i - 1])
        } else {
            self.j += 1;
            Some(self.b[self.j - 1])
        }
    }
}

/// scipy `_cdf_distance`: p=1 -> sum |U(x)-V(x)| dx (Wasserstein-1);
/// p=2 -> sqrt(sum (U(x)-V(x))^2 dx), energy distance = sqrt(2) * that.
fn cdf_distance(a: &[f64], b: &[f64], p: u8) -> f64 {
    let s1 = sorted(a);
    let s2 = sorted(b);
    // Walk the merge of the two sorted samples (O(n), no copy of it): for consecutive pooled
    // values w0 <= w1, (i, j) = (count_le(s1, w0), count_le(s2, w0)) by two monotone pointers.
    let merged = MergeIter {
        a: &s1,
        b: &s2,
        i: 0,
        j: 0,
    };
    let (mut i, mut j) = (0, 0);
    let mut acc = 0.0;
    let mut prev: Option<f64> = None;
    for w1 in merged {
        if let Some(w0) = prev {
            let delta = w1 - w0;
            while i < s1.len() && s1[i] <= w0 {
                i += 1;
            }
            while j < s2.len() && s2[j] <= w0 {
                j += 1;
            }
            let u = i as f64 / s1.len() as f64;
            let v = j as f64 / s2.len() as f64;
            acc += if p == 1 {
                (u - v).abs() * delta
            } else {
                (u - v) * (u - v) * delta
            };
        }
        prev = Some(w1);
    }
    if p == 1 {
        acc
    } else {
        acc.sqrt()
    }
}

/// scipy `wasserstein_distance(u, v)`.
pub(crate) fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    cdf_distance(a, b, 1)
}

/// Evidently `wasserstein`: wasserstein_distance(ref, cur) / max(std_ddof0(ref), 0.001).
pub(crate) fn wasserstein_normed(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let mean = a.iter().sum::<f64>() / n;
    let var = a.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    wasserstein(a, b) / var.sqrt().max(0.001)
}

/// scipy `energy_distance(u, v)` = sqrt(2) * sqrt(integral (U - V)^2); Evidently uses it raw.
pub(crate) fn energy_distance(a: &[f64], b: &[f64]) -> f64 {
    std::f64::consts::SQRT_2 * cdf_distance(a, b, 2)
}

/// scipy `ttest_ind(a, b)` (Student, pooled variance): t = (m1-m2)/sqrt(sp2 (1/n1+1/n2)),
/// df = n1+n2-2, p = 2 * T_df.sf(|t|).
pub(crate) fn t_test(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let m1 = a.iter().sum::<f64>() / n1;
    let m2 = b.iter().sum::<f64>() / n2;
    // Pooled variance from the sums of squares, so that a one-value sample contributes 0
    // instead of 0 * NaN (scipy 1.17 gives a finite t for n1 = 1, n2 >= 2).
    let ss1 = a.iter().map(|x| (x - m1) * (x - m1)).sum::<f64>();
    let ss2 = b.iter().map(|x| (x - m2) * (x - m2)).sum::<f64>();
    let df = n1 + n2 - 2.0;
    let sp2 = (ss1 + ss2) / df;
    let t = (m1 - m2) / (sp2 * (1.0 / n1 + 1.0 / n2)).sqrt();
    if !t.is_finite() || df <= 0.0 {
        return (t, f64::NAN);
    }
    let p = match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => 2.0 * d.sf(t.abs()),
        Err(_) => f64::NAN,
    };
    (t, p.clamp(0.0, 1.0))
}

/// Average ranks (1-based) of the pooled sample and tie-group sizes.
fn average_ranks(pooled: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut idx: Vec<usize> = (0..pooled.len()).collect();
    idx.sort_by(|&i, &j| pooled[i].total_cmp(&pooled[j]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && pooled[idx[j + 1]] == pooled[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        ties.push((j - i + 1) as f64);
        i = j + 1;
    }
    (ranks, ties)
}

/// Mann–Whitney U (scipy `mannwhitneyu`, use_continuity=True, method='auto': exact when
/// min(n1,n2) <= 8 and no ties, else normal approximation with tie correction).
/// U1 = R1 - n1(n1+1)/2. Returns (U1, p_two_sided, p_less); Evidently's drift score is p_less.
pub(crate) fn mann_whitney(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let n1 = a.len();
    let n2 = b.len();
    let pooled: Vec<f64> = a.iter().chain(b.iter()).copied().collect();
    let (ranks, t) = average_ranks(&pooled);
    let r1: f64 = ranks[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = (n1 * n2) as f64 - u1;
    let has_ties = t.iter().any(|&x| x > 1.0);
    let exact = (n1 <= 8 || n2 <= 8) && !has_ties;
    let sf = |u: f64| -> f64 {
        if exact {
            mwu_exact_sf(n1, n2, u)
        } else {
            let (nf1, nf2) = (n1 as f64, n2 as f64);
            let n = nf1 + nf2;
            let mu = nf1 * nf2 / 2.0;
            let tie: f64 = t.iter().map(|x| x * x * x - x).sum();
            let s = (nf1 * nf2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)))).sqrt();
            let z = (u - mu - 0.5) / s;
            normal_cdf(-z)
        }
    };
    let two = (2.0 * sf(u1.max(u2))).clamp(0.0, 1.0);
    let less = sf(u2).clamp(0.0, 1.0);
    (u1, two, less)
}

/// Exact null distribution of U: coefficients of the Gaussian binomial [n1+n2 choose n1]_q
/// (prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i)), normalised; returns P(U >= u).
fn mwu_exact_sf(n1: usize, n2: usize, u: f64) -> f64 {
    let (m, n) = if n1 <= n2 { (n1, n2) } else { (n2, n1) };
    let len = m * n + 1;
    let mut c = vec![0.0_f64; len];
    c[0] = 1.0;
    for i in 1..=m {
        // multiply by (1 - q^(n+i)) then divide by (1 - q^i)
        let s = n + i;
        for k in (s..len).rev() {
            c[k] -= c[k - s];
        }
        for k in i..len {
            c[k] += c[k - i];
        }
    }
    let total: f64 = c.iter().sum();
    let k0 = u.ceil().max(0.0) as usize;
    if k0 >= len {
        return 0.0;
    }
    c[k0..].iter().sum::<f64>() / total
}

pub(crate) fn normal_cdf(x: f64) -> f64 {
    // statrs Normal(0,1) cannot fail to construct.
    Normal::standard().cdf(x)
}

/// k-sample Anderson–Darling (Scholz & Stephens 1987, eq. 7 "midrank" A2akN), standardised
/// T = (A2akN - (k-1)) / sigma_N; p-value as scipy: exp(quadratic fit of log(sig) on the
/// critical values) clipped to [0.001, 0.25].
pub(crate) fn anderson_ksamp(samples: &[&[f64]]) -> Option<(f64, f64)> {
    let k = samples.len() as f64;
    let mut z: Vec<f64> = samples.iter().flat_map(|s| s.iter().copied()).collect();
    z.sort_unstable_by(f64::total_cmp);
    let nn = z.len();
    let mut zstar = z.clone();
    zstar.dedup();
    // scipy needs >= 2 distinct values, and N >= 4 for its variance formula (IndexError below).
    if zstar.len() < 2 || nn < 4 {
        return None;
    }
    let nf = nn as f64;
    let mut a2 = 0.0;
    let lj: Vec<f64> = zstar
        .iter()
        .map(|&v| (count_le(&z, v) - count_lt(&z, v)) as f64)
        .collect();
    let bj: Vec<f64> = zstar
        .iter()
        .zip(&lj)
        .map(|(&v, l)| count_lt(&z, v) as f64 + l / 2.0)
        .collect();
    for s in samples {
        let ss = sorted(s);
        let ni = ss.len() as f64;
        let mut inner = 0.0;
        for (j, &v) in zstar.iter().enumerate() {
            let right = count_le(&ss, v) as f64;
            let fij = right - count_lt(&ss, v) as f64;
            let mij = right - fij / 2.0;
            inner += lj[j] / nf * (nf * mij - bj[j] * ni).powi(2)
                / (bj[j] * (nf - bj[j]) - nf * lj[j] / 4.0);
        }
        a2 += inner / ni;
    }
    a2 *= (nf - 1.0) / nf;

    let hh: f64 = samples.iter().map(|s| 1.0 / s.len() as f64).sum();
    // hs_cs = cumsum(1 / arange(N-1, 1, -1)); h = hs_cs[-1] + 1; g = sum(hs_cs / arange(2, N))
    let mut cs = 0.0;
    let mut g = 0.0;
    let mut idx = 2.0;
    let mut d = nf - 1.0;
    while d > 1.0 {
        cs += 1.0 / d;
        g += cs / idx;
        idx += 1.0;
        d -= 1.0;
    }
    let h = cs + 1.0;
    let a = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * hh;
    let b = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * hh - 8.0 * h
        + 4.0 * g
        - 6.0;
    let c = (6.0 * h + 2.0 * g - 2.0) * k * k
        + (4.0 * h - 4.0 * g + 6.0) * k
        + (2.0 * h - 6.0) * hh
        + 4.0 * h;
    let dd = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let sigmasq =
        (a * nf.powi(3) + b * nf * nf + c * nf + dd) / ((nf - 1.0) * (nf - 2.0) * (nf - 3.0));
    let m = k - 1.0;
    let t = (a2 - m) / sigmasq.sqrt();
    let b0 = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
    let b1 = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
    let b2 = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
    let sig = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
    let crit: Vec<f64> = (0..7)
        .map(|i| b0[i] + b1[i] / m.sqrt() + b2[i] / m)
        .collect();
    let cmin = crit.iter().copied().fold(f64::INFINITY, f64::min);
    let cmax = crit.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let p = if t < cmin {
        0.25
    } else if t > cmax {
        0.001
    } else {
        let ys: Vec<f64> = sig.iter().map(|s: &f64| s.ln()).collect();
        let coef = polyfit2(&crit, &ys);
        (coef[0] * t * t + coef[1] * t + coef[2]).exp()
    };
    Some((t, p))
}

/// Least-squares quadratic fit (numpy.polyfit deg=2), returns [c2, c1, c0]; solved on
/// centred abscissae with the normal equations in f64.
fn polyfit2(x: &[f64], y: &[f64]) -> [f64; 3] {
    let n = x.len() as f64;
    let xm = x.iter().sum::<f64>() / n;
    let mut s = [0.0_f64; 5];
    let mut t = [0.0_f64; 3];
    for (&xi, &yi) in x.iter().zip(y) {
        let u = xi - xm;
        let mut p = 1.0;
        for (e, se) in s.iter_mut().enumerate() {
            *se += p;
            if e < 3 {
                t[e] += p * yi;
            }
            p *= u;
        }
    }
    // Solve [[s0 s1 s2],[s1 s2 s3],[s2 s3 s4]] [a0 a1 a2]^T = t (a0 + a1 u + a2 u^2)
    let mut m = [
        [s[0], s[1], s[2], t[0]],
        [s[1], s[2], s[3], t[1]],
        [s[2], s[3], s[4], t[2]],
    ];
    for col in 0..3 {
        let piv = (col..3)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .unwrap_or(col);
        m.swap(col, piv);
        for r in 0..3 {
            if r != col {
                let f = m[r][col] / m[col][col];
                let pivot_row = m[col];
                for (dst, src) in m[r].iter_mut().zip(pivot_row.iter()).skip(col) {
                    *dst -= f * src;
                }
            }
        }
    }
    let a0 = m[0][3] / m[0][0];
    let a1 = m[1][3] / m[1][1];
    let a2 = m[2][3] / m[2][2];
    // expand a0 + a1 (x - xm) + a2 (x - xm)^2
    [a2, a1 - 2.0 * a2 * xm, a0 - a1 * xm + a2 * xm * xm]
}

/// Evidently numeric `hellinger`: Sturges edges on the UNIQUE pooled values, density
/// histograms h1, h2; s = sum sqrt(h1 h2) * bin_width clipped to [0,1]; H = sqrt(1 - s).
pub(crate) fn hellinger_numeric(a: &[f64], b: &[f64]) -> f64 {
    let mut keys: Vec<f64> = a.iter().chain(b.iter()).copied().collect();
    keys.sort_unstable_by(f64::total_cmp);
    keys.dedup();
    let edges = crate::binning::sturges_edges(&keys);
    let h1 = crate::binning::density(a, &edges);
    let h2 = crate::binning::density(b, &edges);
    let emax = edges.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let emin = edges.iter().copied().fold(f64::INFINITY, f64::min);
    let bw = (emax - emin) / (edges.len() - 1) as f64;
    let mut s = 0.0;
    for (x, y) in h1.iter().zip(&h2) {
        s += (x * y).sqrt() * bw;
    }
    (1.0 - s.clamp(0.0, 1.0)).sqrt()
}

#[cfg(test)]
mod sort_tests {
    use super::sort_f64;
    use proptest::prelude::*;

    fn special() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |x| x.is_finite()),
            Just(0.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE / 2.0),
            Just(-f64::MIN_POSITIVE / 2.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (-5i32..5).prop_map(f64::from),
        ]
    }

    proptest! {
        /// The radix sort gives the same sequence (bit for bit) as a total_cmp comparison sort.
        #[test]
        fn radix_sort_matches_total_cmp(mut v in proptest::collection::vec(special(), 0..3000)) {
            let mut w = v.clone();
            w.sort_unstable_by(f64::total_cmp);
            sort_f64(&mut v);
            prop_assert_eq!(
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                w.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
