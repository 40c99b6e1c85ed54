//! Category-count tests (Evidently formulas, scipy distributions via statrs).

use crate::binning::category_counts;
use crate::DriftError;
use statrs::distribution::{ChiSquared, ContinuousCDF, Discrete, Hypergeometric};

fn chi2_sf(stat: f64, dof: f64) -> f64 {
    if stat.is_infinite() {
        return 0.0;
    }
    match ChiSquared::new(dof) {
        Ok(d) => d.sf(stat),
        Err(_) => f64::NAN,
    }
}

/// Evidently `chisquare`: scipy.stats.chisquare(f_obs = cur counts, f_exp = ref counts *
/// n_cur/n_ref); stat = sum (o-e)^2/e (inf when a category is absent from ref), dof = k-1.
pub(crate) fn chisquare<K: Ord + Clone>(r: &[K], c: &[K]) -> (f64, f64) {
    let (_, rc, cc) = category_counts(r, c);
    let scale = c.len() as f64 / r.len() as f64;
    let mut stat = 0.0;
    for (&a, &b) in rc.iter().zip(&cc) {
        let e = a as f64 * scale;
        let o = b as f64;
        stat += (o - e) * (o - e) / e;
    }
    (stat, chi2_sf(stat, (rc.len() - 1) as f64))
}

/// Evidently `g_test`: scipy power_divergence(cur, ref, 'log-likelihood'), f_exp NOT
/// rescaled: G = 2 sum o ln(o/e); requires n_ref == n_cur (scipy's sum check).
pub(crate) fn g_test<K: Ord + Clone>(r: &[K], c: &[K]) -> Result<(f64, f64), DriftError> {
    if r.len() != c.len() {
        return Err(DriftError::NotApplicable {
            method: "g_test",
            reason: "needs len(reference) == len(current)",
        });
    }
    let (_, rc, cc) = category_counts(r, c);
    let mut stat = 0.0;
    for (&e, &o) in rc.iter().zip(&cc) {
        if o == 0 {
            continue;
        }
        if e == 0 {
            stat = f64::INFINITY;
            break;
        }
        stat += o as f64 * (o as f64 / e as f64).ln();
    }
    let stat = 2.0 * stat;
    Ok((stat, chi2_sf(stat, (rc.len() - 1) as f64)))
}

/// Evidently `z`: two-proportion pooled Z test on (value != smallest key);
/// z = (p1-p2)/sqrt(P(1-P)(1/n1+1/n2)), p = 2(1 - Phi(|z|)); (NaN, 1.0) when both windows hold
/// the same single value.
pub(crate) fn z_test<K: Ord + Clone>(r: &[K], c: &[K]) -> Result<(f64, f64), DriftError> {
    let (keys, rc, cc) = category_counts(r, c);
    if keys.len() > 2 {
        return Err(DriftError::NotApplicable {
            method: "z",
            reason: "needs at most 2 distinct values",
        });
    }
    if keys.len() == 1 {
        return Ok((f64::NAN, 1.0));
    }
    let (n1, n2) = (r.len() as f64, c.len() as f64);
    let p1 = rc[1] as f64 / n1;
    let p2 = cc[1] as f64 / n2;
    let pp = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pp * (1.0 - pp) * (1.0 / n1 + 1.0 / n2)).sqrt();
    Ok((z, 2.0 * (1.0 - crate::numeric::normal_cdf(z.abs()))))
}

/// Evidently `fisher_exact`: scipy fisher_exact([[cur_one, cur_rest], [ref_one, ref_rest]]),
/// two-sided p = sum of hypergeometric pmf(k) <= pmf(observed) * (1 + 1e-7).
pub(crate) fn fisher_exact<K: Ord + Clone>(r: &[K], c: &[K]) -> Result<(f64, f64), DriftError> {
    if r.len() != c.len() {
        return Err(DriftError::NotApplicable {
            method: "fisher_exact",
            reason: "needs len(reference) == len(current)",
        });
    }
    let (keys, rc, cc) = category_counts(r, c);
    if keys.len() > 2 {
        return Err(DriftError::NotApplicable {
            method: "fisher_exact",
            reason: "needs binary data",
        });
    }
    let last = keys.len() - 1;
    let (oc, orf) = if keys.len() == 2 {
        (cc[last], rc[last])
    } else {
        (0, 0)
    };
    let t = [[oc, c.len() as u64 - oc], [orf, r.len() as u64 - orf]];
    let odds = (t[0][0] as f64 * t[1][1] as f64) / (t[1][0] as f64 * t[0][1] as f64);
    // scipy: any zero row or column sum -> (nan, 1)
    if t[0][0] + t[0][1] == 0
        || t[1][0] + t[1][1] == 0
        || t[0][0] + t[1][0] == 0
        || t[0][1] + t[1][1] == 0
    {
        return Ok((f64::NAN, 1.0));
    }
    let n1 = t[0][0] + t[0][1];
    let n2 = t[1][0] + t[1][1];
    let n = t[0][0] + t[1][0];
    let hg = match Hypergeometric::new(n1 + n2, n1, n) {
        Ok(h) => h,
        Err(_) => return Ok((odds, f64::NAN)),
    };
    let x = t[0][0];
    let lo = n.saturating_sub(n2);
    let hi = n.min(n1);
    let pexact = hg.pmf(x);
    let gamma = 1.0 + 1e-7;
    // Sum of all table probabilities not more likely than the observed one (scipy's
    // tolerance 1 + 1e-7 on the relative comparison).
    let mut p = 0.0;
    for k in lo..=hi {
        let pk = hg.pmf(k);
        if pk <= pexact * gamma {
            p += pk;
        }
    }
    Ok((odds, p.min(1.0)))
}

/// Total variation distance 0.5 * sum |r_k/n_r - c_k/n_c| over the union of categories.
pub(crate) fn tvd<K: Ord + Clone>(r: &[K], c: &[K]) -> f64 {
    let (_, rc, cc) = category_counts(r, c);
    let (nr, nc) = (r.len() as f64, c.len() as f64);
    0.5 * rc
        .iter()
        .zip(&cc)
        .map(|(&a, &b)| (a as f64 / nr - b as f64 / nc).abs())
        .sum::<f64>()
}

/// Evidently categorical `hellinger`: s = sum sqrt(r_k/n_r * c_k/n_c) clipped, H = sqrt(1-s).
pub(crate) fn hellinger<K: Ord + Clone>(r: &[K], c: &[K]) -> f64 {
    let (_, rc, cc) = category_counts(r, c);
    let (nr, nc) = (r.len() as f64, c.len() as f64);
    let s: f64 = rc
        .iter()
        .zip(&cc)
        .map(|(&a, &b)| ((a as f64 / nr) * (b as f64 / nc)).sqrt())
        .sum();
    (1.0 - s.clamp(0.0, 1.0)).sqrt()
}
