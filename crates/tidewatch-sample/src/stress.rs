//! A labelled stress set for anomaly detectors: series whose noise is heavy-tailed, discrete or
//! seasonal, with five kinds of injected anomalies whose sizes are set against each series' own
//! noise (its 1-in-10,000 deviation, so that an anomaly is separable from the noise in
//! principle, and its robust σ for sustained anomalies).
//!
//! Series shapes (dealt in turn, then shuffled by the seed):
//!
//! | shape       | signal                                                                       |
//! |-------------|------------------------------------------------------------------------------|
//! | `seasonal`  | daily sine and 12 h harmonic + AR(1) noise with Student-t innovations          |
//! | `drifting`  | slow random walk + Student-t noise                                             |
//! | `modes`     | a mode signal: 3–4 levels, dwelling 1–4 h, switching abruptly, + small noise   |
//! | `counts`    | Poisson counts with a daily rate                                               |
//! | `quantised` | seasonal + Gaussian noise, rounded to half a σ                                 |
//! | `bursty`    | Student-t noise with 2% harmless bursts of up to 6 σ                           |
//!
//! Anomaly kinds: `spike` (1–3 points, up or down, 1.5–3 × the 1e-4 deviation), `level_shift`
//! (1–6 h, 4–8 robust σ), `variance_burst` (20–60 min, noise × 5–8), `flatline` (1–3 h stuck at
//! the last value; not on `modes`, where a stuck value is normal), `ramp` (1–4 h, rising to
//! 6–12 robust σ and back). The first 15% of the range is free of anomalies. This set is a
//! check of generalisation: detectors are not tuned on it.

use crate::rng::Xoshiro256pp;
use crate::slots::{points, Slots};
use crate::{Error, Result};

/// Shapes of series in the stress set.
pub const SHAPES: [&str; 6] = [
    "seasonal",
    "drifting",
    "modes",
    "counts",
    "quantised",
    "bursty",
];
/// Kinds of injected anomalies.
pub const KINDS: [&str; 5] = ["spike", "level_shift", "variance_burst", "flatline", "ramp"];

/// Configuration of the stress set.
#[derive(Debug, Clone, PartialEq)]
pub struct StressConfig {
    /// Unix seconds of the first point.
    pub start_unix: i64,
    pub days: f64,
    pub step_secs: u32,
    pub series: u32,
    pub seed: u64,
    pub anomalies_per_series: u32,
}

impl Default for StressConfig {
    fn default() -> Self {
        StressConfig {
            start_unix: 1_767_225_600, // 2026-01-01
            days: 8.0,
            step_secs: 60,
            series: 24,
            seed: 7,
            anomalies_per_series: 3,
        }
    }
}

/// One injected anomaly: points `start..=end` of its series.
#[derive(Debug, Clone, PartialEq)]
pub struct StressAnomaly {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
    /// Size in the series' robust σ (spikes: signed).
    pub magnitude: f64,
}

/// One generated series with its labels.
#[derive(Debug, Clone)]
pub struct StressSeries {
    pub name: String,
    pub shape: &'static str,
    /// Degrees of freedom of the Student-t noise (∞ = Gaussian).
    pub nu: f64,
    /// Unix seconds of each point.
    pub ts: Vec<i64>,
    pub values: Vec<f64>,
    /// Robust σ of the noise (1.4826 × its median absolute value).
    pub robust_sigma: f64,
    pub anomalies: Vec<StressAnomaly>,
}

/// Student-t noise with `nu` degrees of freedom (Gaussian when infinite), unit robust σ.
struct Noise {
    nu: f64,
    /// Divide by this to get a unit robust σ.
    mad: f64,
}

impl Noise {
    fn new(nu: f64, r: &mut Xoshiro256pp) -> Self {
        let mut n = Noise { nu, mad: 1.0 };
        let mut xs: Vec<f64> = (0..20_001).map(|_| n.raw(r).abs()).collect();
        xs.sort_by(f64::total_cmp);
        n.mad = 1.4826 * xs[10_000];
        n
    }

    fn raw(&self, r: &mut Xoshiro256pp) -> f64 {
        let z = r.normal();
        if !self.nu.is_finite() {
            return z;
        }
        // t = Z / sqrt(χ²_ν / ν), χ²_ν as a sum of squares for integer ν.
        let k = self.nu.round().max(1.0) as usize;
        let chi: f64 = (0..k).map(|_| r.normal().powi(2)).sum();
        z / (chi / self.nu).sqrt()
    }

    fn sample(&self, r: &mut Xoshiro256pp) -> f64 {
        self.raw(r) / self.mad
    }

    /// The deviation exceeded once in 10,000 points, in robust σ (by simulation).
    fn q4(&self, r: &mut Xoshiro256pp) -> f64 {
        let mut xs: Vec<f64> = (0..100_000).map(|_| self.sample(r).abs()).collect();
        xs.sort_by(f64::total_cmp);
        xs[99_990]
    }
}

/// Generate the stress set.
pub fn stress_series(cfg: &StressConfig) -> Result<Vec<StressSeries>> {
    if cfg.step_secs == 0 || cfg.days.is_nan() || cfg.days <= 0.0 || cfg.series == 0 {
        return Err(Error::Config(
            "stress: step_secs, days and series must be positive".into(),
        ));
    }
    let n = (cfg.days * 86_400.0 / f64::from(cfg.step_secs)).floor() as usize;
    if !(100..=10_000_000).contains(&n) {
        return Err(Error::Config(format!(
            "stress: {n} points per series (100 to 10M)"
        )));
    }
    let mut deal = Xoshiro256pp::stream(cfg.seed, &[0x5757]);
    let mut shapes: Vec<usize> = (0..cfg.series as usize).map(|i| i % SHAPES.len()).collect();
    deal.shuffle(&mut shapes);
    let mut kinds: Vec<usize> = (0..(cfg.series * cfg.anomalies_per_series) as usize)
        .map(|i| i % KINDS.len())
        .collect();
    deal.shuffle(&mut kinds);
    let slots = Slots::new(n as u64, u64::from(cfg.anomalies_per_series));
    let step = f64::from(cfg.step_secs);
    let mut out = Vec::new();
    for (si, &shape) in shapes.iter().enumerate() {
        let mut r = Xoshiro256pp::stream(cfg.seed, &[0x5758, si as u64]);
        let nu = [3.0, 3.0, 4.0, 6.0, 10.0, f64::INFINITY][r.index(6)];
        let nu = if SHAPES[shape] == "quantised" {
            f64::INFINITY
        } else {
            nu
        };
        let noise = Noise::new(nu, &mut r);
        let q4 = noise.q4(&mut r);
        let scale = 10f64.powf(r.uniform(-2.0, 3.0));
        let base = scale * r.uniform(-50.0, 50.0);
        let (a1, a2) = (r.uniform(2.0, 8.0), r.uniform(0.0, 3.0));
        let (p1, p2) = (r.uniform(0.0, 6.3), r.uniform(0.0, 6.3));
        let phi = if r.chance(0.5) {
            0.0
        } else {
            r.uniform(0.3, 0.8)
        };
        let levels: Vec<f64> = (0..3 + r.index(2))
            .map(|_| r.uniform(-12.0, 12.0).round())
            .collect();
        let lambda = r.uniform(3.0, 60.0);
        // The clean signal and the noise, point by point.
        let mut clean = vec![0.0; n];
        let mut noisev = vec![0.0; n];
        let (mut e, mut walk, mut mode, mut dwell) = (0.0f64, 0.0f64, 0usize, 0usize);
        for i in 0..n {
            let day = std::f64::consts::TAU * (i as f64 * step) / 86_400.0;
            let seas = a1 * (day + p1).sin() + a2 * (2.0 * day + p2).sin();
            e = phi * e + (1.0 - phi * phi).sqrt() * noise.sample(&mut r);
            match SHAPES[shape] {
                "seasonal" => (clean[i], noisev[i]) = (seas, e),
                "drifting" => {
                    walk += 0.05 * r.normal();
                    (clean[i], noisev[i]) = (walk, e);
                }
                "modes" => {
                    if dwell == 0 {
                        mode = r.index(levels.len());
                        dwell = points(r.uniform(3600.0, 4.0 * 3600.0), cfg.step_secs, 1) as usize;
                    }
                    dwell -= 1;
                    (clean[i], noisev[i]) = (levels[mode], 0.3 * e);
                }
                "counts" => {
                    let rate = lambda * (1.0 + 0.6 * (day + p1).sin());
                    let c = poisson(rate, &mut r);
                    // In robust σ of a Poisson(λ): √λ.
                    (clean[i], noisev[i]) = (rate / lambda.sqrt(), (c - rate) / lambda.sqrt());
                }
                "quantised" => (clean[i], noisev[i]) = (seas, e),
                _ => {
                    let burst = if r.chance(0.02) {
                        r.uniform(2.0, 6.0) * r.sign()
                    } else {
                        0.0
                    };
                    (clean[i], noisev[i]) = (0.5 * seas, e + burst);
                }
            }
        }
        // Anomalies, one per slot; a flatline on a mode signal becomes a level shift.
        let mut anomalies = Vec::new();
        for slot in 0..slots.count {
            let mut k = KINDS
                [kinds[(si * cfg.anomalies_per_series as usize + slot as usize) % kinds.len()]];
            if k == "flatline" && (SHAPES[shape] == "modes" || SHAPES[shape] == "quantised") {
                k = "level_shift";
            }
            let (want, mag) = match k {
                "spike" => (r.int_in(1, 3), r.sign() * r.uniform(1.5, 3.0) * q4),
                "level_shift" => (
                    points(r.uniform(1.0, 6.0) * 3600.0, cfg.step_secs, 2),
                    r.sign() * r.uniform(4.0, 8.0),
                ),
                "variance_burst" => (
                    points(r.uniform(20.0, 60.0) * 60.0, cfg.step_secs, 3),
                    r.uniform(5.0, 8.0),
                ),
                "flatline" => (points(r.uniform(1.0, 3.0) * 3600.0, cfg.step_secs, 3), 0.0),
                _ => (
                    points(r.uniform(1.0, 4.0) * 3600.0, cfg.step_secs, 4),
                    r.sign() * r.uniform(6.0, 12.0),
                ),
            };
            let (start, len) = slots.place(slot, want, &mut r);
            let (start, end) = (start as usize, (start + len - 1) as usize);
            for i in start..=end.min(n - 1) {
                match k {
                    "spike" => noisev[i] = mag * r.uniform(0.9, 1.0),
                    "level_shift" => clean[i] += mag,
                    "variance_burst" => noisev[i] *= mag,
                    "ramp" => {
                        let x = (i - start) as f64 / (end - start).max(1) as f64;
                        clean[i] += mag * (1.0 - (2.0 * x - 1.0).abs());
                    }
                    _ => {}
                }
            }
            anomalies.push(StressAnomaly {
                kind: k,
                start,
                end,
                magnitude: mag,
            });
        }
        let mut values: Vec<f64> = match SHAPES[shape] {
            // Back to whole counts.
            "counts" => (0..n)
                .map(|i| ((clean[i] + noisev[i]) * lambda.sqrt()).round().max(0.0))
                .collect(),
            "quantised" => (0..n)
                .map(|i| base + scale * ((clean[i] + noisev[i]) / 0.5).round() * 0.5)
                .collect(),
            _ => (0..n)
                .map(|i| base + scale * (clean[i] + noisev[i]))
                .collect(),
        };
        for a in anomalies.iter().filter(|a| a.kind == "flatline") {
            let stuck = values[a.start.saturating_sub(1)];
            values[a.start..=a.end].iter_mut().for_each(|v| *v = stuck);
        }
        out.push(StressSeries {
            name: format!("S{:02}.{}", si + 1, SHAPES[shape]),
            shape: SHAPES[shape],
            nu,
            ts: (0..n as i64)
                .map(|i| cfg.start_unix + i * i64::from(cfg.step_secs))
                .collect(),
            values,
            robust_sigma: if SHAPES[shape] == "counts" {
                lambda.sqrt()
            } else {
                scale
            },
            anomalies,
        });
    }
    Ok(out)
}

/// Poisson sample: Knuth's product method for small rates, a rounded normal for large ones.
fn poisson(rate: f64, r: &mut Xoshiro256pp) -> f64 {
    if rate > 30.0 {
        return (rate + rate.sqrt() * r.normal()).round().max(0.0);
    }
    let l = (-rate).exp();
    let (mut k, mut p) = (0.0, 1.0);
    loop {
        p *= r.unit();
        if p <= l {
            return k;
        }
        k += 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_labelled_and_anomalies_inside() {
        let cfg = StressConfig {
            days: 2.0,
            series: 12,
            ..StressConfig::default()
        };
        let a = stress_series(&cfg).unwrap_or_default();
        let b = stress_series(&cfg).unwrap_or_default();
        assert_eq!(a.len(), 12);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.values, y.values);
            assert_eq!(x.anomalies, y.anomalies);
            assert_eq!(x.anomalies.len(), 3);
            for an in &x.anomalies {
                assert!(an.start >= x.values.len() * 15 / 100 && an.end < x.values.len());
            }
            assert!(x.values.iter().all(|v| v.is_finite()));
        }
        // Every shape and every kind occurs.
        for s in SHAPES {
            assert!(a.iter().any(|x| x.shape == s), "{s}");
        }
        for k in ["spike", "level_shift", "variance_burst", "ramp"] {
            assert!(
                a.iter().flat_map(|x| &x.anomalies).any(|an| an.kind == k),
                "{k}"
            );
        }
    }

    #[test]
    fn noise_has_unit_robust_sigma() {
        let mut r = Xoshiro256pp::from_u64(1);
        for nu in [3.0, f64::INFINITY] {
            let n = Noise::new(nu, &mut r);
            let mut xs: Vec<f64> = (0..20_001).map(|_| n.sample(&mut r).abs()).collect();
            xs.sort_by(f64::total_cmp);
            let mad = 1.4826 * xs[10_000];
            assert!((mad - 1.0).abs() < 0.05, "nu {nu}: {mad}");
        }
    }
}
