//! Kolmogorov–Smirnov distributions, ported from scipy 1.17
//! (`scipy/stats/_stats_py.py`, `_stats_pythran.py`, `_ksstats.py`, xsf `kolmogorov.h`).

use statrs::function::factorial::ln_binomial;

const E128: i32 = 128;
const EP128: f64 = 3.402_823_669_209_385e38; // 2^128
const EM128: f64 = 2.938_735_877_055_719e-39; // 2^-128

/// Pr(D_{n,n} >= h/n), two-sided: scipy `_compute_prob_outside_square` (Horner form of
/// 2 * sum_k (-1)^(k+1) C(2n, n-kh) / C(2n, n)).
pub(crate) fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0_f64;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0_f64;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Proportion of lattice paths leaving |x/m - y/n| < h/lcm: scipy
/// `_compute_outer_prob_inside_method` (Hodges' inside method, Viehmann's 1-p recursion).
pub(crate) fn outer_prob_inside(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64) / (mg as f64)).ceil().min((n + 1) as f64) as i64;
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0_f64; len_a];
    for v in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = ((((ng * i - h) as f64) / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            val = (a[(jj + minj - lastminj) as usize] * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let s = (maxj - minj) as usize;
            let e = (maxj - minj + (lastlen - curlen)) as usize;
            for v in a.iter_mut().take(e).skip(s) {
                *v = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

fn clip01(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

fn ldexp(x: f64, e: i32) -> f64 {
    x * 2f64.powi(e)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// Pr(D_n <= d) by Durbin's matrix (Marsaglia–Tsang–Wang): scipy `_kolmogn_DMTW`.
fn kolmogn_dmtw_cdf(n: i64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut hm = vec![0.0; m * m];
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powi(j as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut hp = vec![0.0; m * m];
    for i in 0..m {
        hp[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i32 = 0;
    let mut hexp: i32 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hp = matmul(&hp, &hm, m);
            expnt += hexp;
        }
        hm = matmul(&hm, &hm, m);
        hexp *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > EP128 {
            for x in hm.iter_mut() {
                *x /= EP128;
            }
            hexp += E128;
        }
        nn /= 2;
    }
    let mut p = hp[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = i as f64 * p / n as f64;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip01(p)
}

/// Pelz–Good asymptotic series for Pr(D_n <= x): scipy `_kolmogn_PelzGood`.
fn kolmogn_pelz_good_cdf(n: i64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = (n as f64).sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut kk = [0.0_f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qp = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for i in 0..4 {
            kk[i] = kk[i] * qp + coeffs[i];
        }
    }
    let den = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for i in 0..4 {
        kk[i] = kk[i] * q * sqrt2pi / den[i];
    }
    let q2 = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let ksq = kf * kf;
        let qp = q2.powf(ksq);
        k2extra += ksq * qp;
        let kspi = PI * kf;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    kk[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let nf = n as f64;
    for (i, v) in kk.iter_mut().enumerate() {
        *v /= nf.powf(i as f64 / 2.0);
    }
    kk.iter().sum()
}

/// One-sided Smirnov survival function Pr(D_n^+ >= x): Birnbaum–Tingey sum
/// x * sum_j C(n,j) (1-x-j/n)^(n-j) (x+j/n)^(j-1), evaluated term by term in log space
/// (xsf `_smirnov` evaluates the same sum in double-double; agreement ~1e-12).
pub(crate) fn smirnov_sf(n: i64, x: f64) -> f64 {
    if n == 1 {
        return 1.0 - x.clamp(0.0, 1.0);
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    if -2.0 * nf * x * x < -708.396_418_532_264_1 {
        return 0.0;
    }
    if n > 1_000_000 {
        // xsf: n too big to sum, p ~ exp(-(6nx+1)^2 / 18n)
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return logp.exp();
    }
    let nxfl = (nf * x).floor() as i64;
    if nxfl >= n - 1 {
        return (1.0 - x).powf(nf);
    }
    let jmax = (nf * (1.0 - x)).floor() as i64;
    let mut sum = 0.0;
    for j in 0..=jmax {
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        if a <= 0.0 {
            continue;
        }
        let b = x + jf / nf;
        let l = ln_binomial(n as u64, j as u64) + (nf - jf) * a.ln() + (jf - 1.0) * b.ln();
        sum += l.exp();
    }
    clip01(x * sum)
}

/// Survival function of the two-sided one-sample KS statistic D_n (scipy `kstwo.sf`,
/// `_kolmogn(n, x, cdf=False)`, Simard & L'Ecuyer 2011 selection of algorithms).
pub(crate) fn kstwo_sf(n: i64, x: f64) -> f64 {
    if n <= 0 {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| {
                acc * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0))
            })
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip01(1.0 - prob);
    }
    if t >= nf - 1.0 {
        return clip01(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let nxsq = t * x;
    if n <= 140 {
        if nxsq <= 4.0 {
            // scipy uses DMTW below 0.754693 and Pomeranz up to 4; both are exact
            // algorithms for Pr(D_n <= x), so DMTW is used for the whole range here.
            return clip01(1.0 - kolmogn_dmtw_cdf(n, x));
        }
        return clip01(2.0 * smirnov_sf(n, x));
    }
    if nxsq >= 370.0 {
        return 0.0;
    }
    if nxsq >= 2.2 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsq >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x)
    } else {
        kolmogn_pelz_good_cdf(n, x)
    };
    clip01(1.0 - clip01(cdf))
}

fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    const C: [f64; 8] = [
        -2.955_065_359_477_124e-2,
        6.410_256_410_256_41e-3,
        -1.917_526_917_526_917_5e-3,
        8.417_508_417_508_417e-4,
        -5.952_380_952_380_952e-4,
        7.936_507_936_507_937e-4,
        -2.777_777_777_777_778e-3,
        8.333_333_333_333_333e-2,
    ];
    let rn = 1.0 / n;
    let y = rn / n;
    let poly = C.iter().fold(0.0, |acc, c| acc * y + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * poly
}
