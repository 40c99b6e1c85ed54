//! Epps–Singleton two-sample test, ported from scipy 1.17 `epps_singleton_2samp`
//! (`scipy/stats/_hypotests.py`) with its default t = (0.4, 0.8), as Evidently calls it.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Outcome of [`epps_singleton_2samp`].
pub(crate) enum Es {
    /// (W, p)
    Value(f64, f64),
    /// scipy's too-small result (fewer than 5 values in a sample): (NaN, NaN).
    TooSmall,
    /// The pooled interquartile range is 0: scipy divides by it and its SVD fails
    /// (`LinAlgError`), so Evidently raises.
    ZeroIqr,
}

/// Epps & Singleton (1986), "An omnibus test for the two-sample problem using the empirical
/// characteristic function", J. Statist. Comput. Simul. 26, eq. 2.8–2.10, as in scipy: with
/// t_j = (0.4, 0.8) / (IQR(pooled)/2), g(x) = (cos t_1 x, cos t_2 x, sin t_1 x, sin t_2 x),
/// Σ = (N/n_x) Cov_x(g) + (N/n_y) Cov_y(g) (biased covariances), d = mean_x g − mean_y g:
/// W = N dᵀ Σ⁺ d ~ χ²(rank Σ⁺); when max(n_x, n_y) < 25, W is multiplied by the small-sample
/// correction 1 / (1 + N^-0.45 + 10.1 (n_x^-1.7 + n_y^-1.7)). p = χ²_r.sf(W).
pub(crate) fn epps_singleton_2samp(x: &[f64], y: &[f64]) -> Es {
    let (nx, ny) = (x.len(), y.len());
    if nx < 5 || ny < 5 {
        return Es::TooSmall;
    }
    let n = (nx + ny) as f64;
    let mut pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    pooled.sort_unstable_by(f64::total_cmp);
    let sigma = (quantile_linear(&pooled, 0.75) - quantile_linear(&pooled, 0.25)) / 2.0;
    if sigma == 0.0 || !sigma.is_finite() {
        return Es::ZeroIqr;
    }
    let ts = [0.4 / sigma, 0.8 / sigma];
    let (mx, cx) = moments(x, ts);
    let (my, cy) = moments(y, ts);
    let (fx, fy) = (nx as f64, ny as f64);
    let mut cov = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            let bx = cx[i][j] * (fx - 1.0) / fx;
            let by = cy[i][j] * (fy - 1.0) / fy;
            cov[i][j] = (n / fx) * bx + (n / fy) * by;
        }
    }
    let (eig, vecs) = jacobi_eigen(cov);
    // numpy pinv with rtol = max(M, N) * eps relative to the largest singular value.
    let smax = eig.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let cutoff = 4.0 * f64::EPSILON * smax;
    let inv: Vec<f64> = eig
        .iter()
        .map(|&l| if l.abs() > cutoff { 1.0 / l } else { 0.0 })
        .collect();
    // rank of the pseudo-inverse, by the same rule on its singular values 1/|l|.
    let imax = inv.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let rank = inv
        .iter()
        .filter(|v| v.abs() > imax * 4.0 * f64::EPSILON)
        .count();
    let d: Vec<f64> = (0..4).map(|i| mx[i] - my[i]).collect();
    let mut pinv_d = [0.0; 4];
    for (i, pd) in pinv_d.iter_mut().enumerate() {
        for (j, dj) in d.iter().enumerate() {
            let mut s = 0.0;
            for k in 0..4 {
                s += vecs[i][k] * inv[k] * vecs[j][k];
            }
            *pd += s * dj;
        }
    }
    let mut w = n * d.iter().zip(&pinv_d).map(|(a, b)| a * b).sum::<f64>();
    if nx.max(ny) < 25 {
        let corr = 1.0 / (1.0 + n.powf(-0.45) + 10.1 * (fx.powf(-1.7) + fy.powf(-1.7)));
        w *= corr;
    }
    let p = match ChiSquared::new(rank as f64) {
        Ok(c) if w.is_finite() => c.sf(w),
        _ => f64::NAN,
    };
    Es::Value(w, p)
}

/// scipy.stats.quantile(method='linear') on sorted `y` (Hyndman & Fan type 7):
/// j + g = p n + (1 − p), value = (1 − g) y[j−1] + g y[j] (0-based, clipped).
pub(crate) fn quantile_linear(y: &[f64], p: f64) -> f64 {
    let n = y.len() as f64;
    let jg = p * n + (1.0 - p);
    let jp1 = jg.floor();
    let j = jp1 - 1.0;
    let mut g = jg % 1.0;
    if j < 0.0 {
        g = 0.0;
    }
    let last = n - 1.0;
    let j = j.clamp(0.0, last) as usize;
    let jp1 = jp1.clamp(0.0, last) as usize;
    (1.0 - g) * y[j] + g * y[jp1]
}

/// Means and unbiased covariance (ddof = 1) of the 4 rows cos(t1 x), cos(t2 x), sin(t1 x),
/// sin(t2 x).
fn moments(x: &[f64], ts: [f64; 2]) -> ([f64; 4], [[f64; 4]; 4]) {
    let rows: Vec<[f64; 4]> = x
        .iter()
        .map(|&v| {
            let (a, b) = (ts[0] * v, ts[1] * v);
            [a.cos(), b.cos(), a.sin(), b.sin()]
        })
        .collect();
    let n = x.len() as f64;
    let mut mean = [0.0; 4];
    for r in &rows {
        for k in 0..4 {
            mean[k] += r[k];
        }
    }
    for m in &mut mean {
        *m /= n;
    }
    let mut c = [[0.0; 4]; 4];
    for r in &rows {
        let d: Vec<f64> = (0..4).map(|k| r[k] - mean[k]).collect();
        for i in 0..4 {
            for j in 0..4 {
                c[i][j] += d[i] * d[j];
            }
        }
    }
    for row in &mut c {
        for v in row.iter_mut() {
            *v /= n - 1.0;
        }
    }
    (mean, c)
}

/// Cyclic Jacobi eigen-decomposition of a symmetric 4×4 matrix: (eigenvalues, eigenvectors as
/// columns of the returned matrix).
fn jacobi_eigen(mut a: [[f64; 4]; 4]) -> ([f64; 4], [[f64; 4]; 4]) {
    let mut v = [[0.0; 4]; 4];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..4)
            .flat_map(|i| (0..4).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off == 0.0 {
            break;
        }
        for p in 0..3 {
            for q in p + 1..4 {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (rp, rq) = (a[p], a[q]);
                for (k, (apk, aqk)) in rp.iter().zip(rq.iter()).enumerate() {
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in &mut v {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2], a[3][3]], v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_reconstructs_the_matrix() {
        let m = [
            [4.0, 1.0, 0.5, 0.0],
            [1.0, 3.0, 0.2, 0.1],
            [0.5, 0.2, 2.0, 0.3],
            [0.0, 0.1, 0.3, 1.0],
        ];
        let (e, v) = jacobi_eigen(m);
        for i in 0..4 {
            for j in 0..4 {
                let r: f64 = (0..4).map(|k| v[i][k] * e[k] * v[j][k]).sum();
                assert!((r - m[i][j]).abs() < 1e-13, "{i},{j}");
            }
        }
    }

    #[test]
    fn quantile_is_type_7() {
        let y: Vec<f64> = (0..7).map(f64::from).collect();
        assert_eq!(quantile_linear(&y, 0.25), 1.5);
        assert_eq!(quantile_linear(&y, 0.75), 4.5);
        assert_eq!(quantile_linear(&[2.0], 0.25), 2.0);
    }
}
