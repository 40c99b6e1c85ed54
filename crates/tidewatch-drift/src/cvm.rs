//! Two-sample Cramér–von Mises test, ported from scipy 1.17 `cramervonmises_2samp`
//! (`scipy/stats/_hypotests.py`).

use statrs::function::gamma::ln_gamma;

/// scipy `cramervonmises_2samp(x, y, method='auto')`: (T, p), or (NaN, NaN) when a sample has
/// fewer than 2 values (scipy's too-small result).
///
/// Formula (Anderson 1962, "On the distribution of the two-sample Cramér–von Mises criterion",
/// eq. 9–10 as cited by scipy): with midranks r_i of the sorted x and s_j of the sorted y in the
/// pooled sample, U = n_x Σ (r_i − i)² + n_y Σ (s_j − j)², T = U/(n_x n_y N) − (4 n_x n_y − 1)/(6N).
/// p-value: exact (Xiao, Gordon & Gifford 2006 frequency-table recursion, scipy
/// `_pval_cvm_2samp_exact`) when max(n_x, n_y) <= 20, else the standardised statistic
/// T_n = 1/6 + (T − E T)/sqrt(45 Var T) (eq. 11, 14, 15) against the limiting one-sample law
/// (Csörgő & Faraway 1996, eq. 1.3, scipy `_cdf_cvm_inf`).
pub(crate) fn cramervonmises_2samp(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (nx, ny) = (x.len(), y.len());
    if nx <= 1 || ny <= 1 {
        return (f64::NAN, f64::NAN);
    }
    let mut pooled = x.to_vec();
    pooled.sort_unstable_by(f64::total_cmp);
    let mut ys = y.to_vec();
    ys.sort_unstable_by(f64::total_cmp);
    pooled.extend_from_slice(&ys);
    let twice_ranks = twice_midranks(&pooled);
    // 4 U exactly, in integers: (2 r - 2 i)^2 is an integer because 2 r is.
    let sq_sum = |ranks: &[i128]| -> i128 {
        ranks
            .iter()
            .enumerate()
            .map(|(i, &r2)| {
                let d = r2 - 2 * (i as i128 + 1);
                d * d
            })
            .sum()
    };
    let u4 = nx as i128 * sq_sum(&twice_ranks[..nx]) + ny as i128 * sq_sum(&twice_ranks[nx..]);
    let u = u4 as f64 / 4.0;
    let k = (nx * ny) as f64;
    let nn = (nx + ny) as f64;
    let t = u / (k * nn) - (4.0 * k - 1.0) / (6.0 * nn);
    let p = if nx.max(ny) > 20 {
        pval_asymptotic(t, nn, nx as f64, ny as f64, k)
    } else {
        pval_exact(u4, nx as u64, ny as u64)
    };
    (t, p)
}

/// 2 × average rank (1-based) of every element of `pooled`, as integers.
fn twice_midranks(pooled: &[f64]) -> Vec<i128> {
    let mut idx: Vec<usize> = (0..pooled.len()).collect();
    idx.sort_by(|&i, &j| pooled[i].total_cmp(&pooled[j]));
    let mut out = vec![0i128; pooled.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && pooled[idx[j + 1]] == pooled[idx[i]] {
            j += 1;
        }
        // ranks i+1 ..= j+1 averaged, times 2
        let r2 = (i + j + 2) as i128;
        for &k in &idx[i..=j] {
            out[k] = r2;
        }
        i = j + 1;
    }
    out
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

fn binomial(n: u64, k: u64) -> u128 {
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        c = c * u128::from(n - i) / u128::from(i + 1);
    }
    c
}

/// scipy `_pval_cvm_2samp_exact(U, m, n)`: P(U' >= U) over all C(m+n, m) splits, by the
/// frequency-table recursion g_{u,v} of Xiao, Gordon & Gifford (2006), Algorithm 1.
fn pval_exact(u4: i128, m: u64, n: u64) -> f64 {
    let lcm = m / gcd(m, n) * n;
    let a = (lcm / m) as i128;
    let b = (lcm / n) as i128;
    let mn = (m * n) as i128;
    let l = lcm as i128;
    // zeta = L^2 (m+n) (6U - mn(4mn-1)) // (6 mn^2), with 6U = 3 U4 / 2 (floor division).
    let num = l * l * (m + n) as i128 * (3 * u4 - 2 * mn * (4 * mn - 1));
    let zeta = num.div_euclid(12 * mn * mn);
    // gs[v]: sorted (value, frequency) pairs of paths ending at (u, v).
    let mut gs: Vec<Vec<(i128, u128)>> = vec![Vec::new(); m as usize + 1];
    gs[0].push((0, 1));
    for u in 0..=n as i128 {
        let mut next = Vec::with_capacity(gs.len());
        let mut tmp: Vec<(i128, u128)> = Vec::new();
        for (v, g) in gs.iter().enumerate() {
            tmp = merge(&tmp, g);
            let res = (a * v as i128 - b * u).pow(2);
            for e in &mut tmp {
                e.0 += res;
            }
            next.push(tmp.clone());
        }
        gs = next;
    }
    let hits: u128 = gs[m as usize]
        .iter()
        .filter(|e| e.0 >= zeta)
        .map(|e| e.1)
        .sum();
    hits as f64 / binomial(m + n, m) as f64
}

fn merge(a: &[(i128, u128)], b: &[(i128, u128)]) -> Vec<(i128, u128)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// scipy `_pval_cvm_2samp_asymptotic`.
fn pval_asymptotic(t: f64, nn: f64, nx: f64, ny: f64, k: f64) -> f64 {
    let et = (1.0 + 1.0 / nn) / 6.0;
    let vt = (nn + 1.0) * (4.0 * k * nn - 3.0 * (nx * nx + ny * ny) - 2.0 * k);
    let vt = vt / (45.0 * nn * nn * 4.0 * k);
    let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
    if tn >= 0.003 {
        (1.0 - cdf_cvm_inf(tn)).max(0.0)
    } else {
        1.0
    }
}

/// Limiting CDF of the one-sample CvM statistic (Csörgő & Faraway 1996, eq. 1.3):
/// Σ_k Γ(k+1/2)/(Γ(k+1) π^{3/2} √x) √(4k+1) e^{−q} K_{1/4}(q), q = (4k+1)²/(16x); summed, as
/// scipy does, until a term is below 1e-7.
pub(crate) fn cdf_cvm_inf(x: f64) -> f64 {
    let mut tot = 0.0;
    let mut k = 0u32;
    loop {
        let kf = f64::from(k);
        let u = (ln_gamma(kf + 0.5) - ln_gamma(kf + 1.0)).exp()
            / (std::f64::consts::PI.powf(1.5) * x.sqrt());
        let y = 4.0 * kf + 1.0;
        let q = y * y / (16.0 * x);
        let z = u * y.sqrt() * (-q).exp() * bessel_k(0.25, q);
        tot += z;
        if z.abs() < 1e-7 || k > 100_000 {
            return tot;
        }
        k += 1;
    }
}

/// Modified Bessel function of the second kind K_ν(x), x > 0, from
/// K_ν(x) = ∫_0^∞ exp(−x cosh t) cosh(ν t) dt (DLMF 10.32.9) by the trapezoidal rule, which
/// converges geometrically for this entire, doubly-exponentially decaying integrand.
pub(crate) fn bessel_k(nu: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::INFINITY;
    }
    // Scale by e^x to keep large x representable: integrand exp(-x (cosh t - 1)) cosh(nu t).
    let h = 1.0 / 64.0;
    let mut sum = 0.5;
    let mut i = 1u32;
    loop {
        let t = f64::from(i) * h;
        let f = (-x * (t.cosh() - 1.0)).exp() * (nu * t).cosh();
        sum += f;
        if f < 1e-18 * sum || i > 1_000_000 {
            break;
        }
        i += 1;
    }
    sum * h * (-x).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_k_matches_closed_forms() {
        // K_{1/2}(x) = sqrt(pi / (2x)) e^{-x}
        for &x in &[1e-6, 1e-3, 0.1, 1.0, 7.5, 50.0, 400.0] {
            let want = (std::f64::consts::PI / (2.0 * x)).sqrt() * (-x).exp();
            let got = bessel_k(0.5, x);
            assert!(
                ((got - want) / want).abs() < 1e-13,
                "x={x} got {got} want {want}"
            );
        }
        // scipy.special.kv(0.25, x)
        for &(x, want) in &[
            (0.01, 6.165_741_264_139_234_f64),
            (1.0, 0.430_739_774_448_581_4),
            (20.0, 5.750_002_072_403_683e-10),
        ] {
            let got = bessel_k(0.25, x);
            assert!(((got - want) / want).abs() < 1e-12, "x={x} got {got}");
        }
    }

    #[test]
    fn exact_null_distribution_sums_to_one() {
        // U is smallest when the samples interleave perfectly; p(U >= min) = 1.
        let (_, p) = cramervonmises_2samp(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]);
        assert_eq!(p, 1.0);
        let (_, p) = cramervonmises_2samp(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!((p - 0.1).abs() < 1e-12, "{p}"); // 2 extreme splits of C(6,3) = 20
    }
}
