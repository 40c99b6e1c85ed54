//! Calibrated tail probabilities for non-negative deviation features (robust |z|).
//!
//! Two estimates of P(F > f), and the larger one is used:
//! - **rarity memory**: exponentially decayed counts of the feature's past values above `u`, in
//!   logarithmic bins (ratio √2); P(F > f) is the decayed share of past points at or above f
//!   (log-linear within a bin). A deviation seen before at some rate keeps that rate (a regular
//!   spike, a pulse train, a heavy tail), whatever the parametric fit says; a deviation larger
//!   than any seen has no count and falls to the parametric tail. The counts come from every
//!   point, so normal history never makes a given deviation less rare. A caller may leave the
//!   memory out for a feature that seldom recurs ([`GpdTails::log10_sf_with`]).
//! - **parametric tail**: peaks over threshold with a Generalized Pareto tail, as in SPOT
//!   (Siffer, Fouque, Termier & Largouët, "Anomaly Detection in Streams with Extreme Value
//!   Theory", KDD 2017): above `u` the excess `f - u` is modelled as GPD(γ, σ), fitted by the
//!   method of moments (γ = ½(1 − m²/v), σ = ½·m·(m²/v + 1), Hosking & Wallis 1987) on
//!   exponentially decayed sums; `P(F > f) = (n_u / n) · (1 + γ (f − u) / σ)^(−1/γ)`. What it
//!   learns is winsorised at its own 10^`clip_l` quantile, so one extreme value moves the fit by
//!   one bounded value: past anomalies cannot fatten the tail without bound (an unclipped fit
//!   did: a variance burst in the history raised γ of the first-difference tail from 0.1 to
//!   0.36 and the 10^−6 quantile from 6.9 to 18.6 robust σ, and a 9σ spike went unflagged after
//!   two weeks). A weak exponential prior (γ = 0) keeps the estimate sane while few peaks have
//!   been seen.
//!
//! [`GpdTails`] holds the tails of [`TAILS`] features learned from the same points, so they share
//! the decayed count of observations. Cost: decay is applied by weighting each new observation by
//! 1/decay^t instead of shrinking every sum each time (the ratios are the same; the sums are
//! rescaled once the weight passes 1e100), and a fitted (γ, σ) changes only when an excess is
//! learned, so it is cached: a point below `u` costs a compare per feature.

use serde::{Deserialize, Serialize};

/// Number of features in a [`GpdTails`].
pub const TAILS: usize = 5;

/// Rescale the sums when the observation weight passes this.
const W_MAX: f64 = 1e100;

/// Rarity bins: ratio √2 between edges, at most this many (u · 2^40 ≈ 10^12 · u: a scale that
/// collapsed to its floor on a constant history still lands in a bin).
const MAX_BINS: usize = 80;
/// 1 / ln √2.
const INV_LN_BIN: f64 = 2.0 / std::f64::consts::LN_2;

/// Decayed statistics of one feature's excesses over `u`, in units of the current weight.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
struct Excess {
    /// Count, sum and sum of squares of the excesses.
    k: f64,
    s1: f64,
    s2: f64,
    /// The fitted shape and scale.
    gamma: f64,
    sigma: f64,
    /// The value whose tail probability is 10^`clip_l` (see [`GpdTails::learn`]).
    clip_at: f64,
}

impl Excess {
    fn fit(&mut self) {
        let m = self.s1 / self.k;
        let v = (self.s2 / self.k - m * m).max(1e-12 * m * m + 1e-300);
        let r = m * m / v;
        self.gamma = (0.5 * (1.0 - r)).clamp(-0.45, 0.5);
        self.sigma = (0.5 * m * (r + 1.0)).max(1e-12);
    }
}

/// GPD tails of [`TAILS`] features observed together.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GpdTails {
    /// Threshold above which excesses are modelled.
    u: f64,
    /// 1 / per-observation decay factor (1 = no forgetting), and the weight of the next
    /// observation.
    grow: f64,
    w: f64,
    /// Decayed count of all observations (same units as the excess sums).
    n: f64,
    /// Winsorising level: features are learned clipped at tail probability 10^`clip_l` (0 = not
    /// clipped).
    clip_l: f64,
    t: [Excess; TAILS],
    /// Rarity memory: per feature, decayed counts of the values above `u` by logarithmic bin.
    #[serde(default)]
    hist: [Vec<f64>; TAILS],
}

impl GpdTails {
    /// `u`: threshold; `prior_n` pseudo-observations of which a fraction `prior_rate` exceed `u`
    /// with mean excess `prior_mean` (exponential tail); `half_life` in observations (0 = no
    /// forgetting); `clip_l` < 0 winsorises what is learned at that log10 tail probability (a
    /// lone extreme then moves the fit by one bounded value), 0 learns values as they are.
    pub fn new(
        u: f64,
        prior_n: f64,
        prior_rate: f64,
        prior_mean: f64,
        half_life: f64,
        clip_l: f64,
    ) -> Self {
        let k = prior_n * prior_rate;
        let mut e = Excess {
            k,
            s1: k * prior_mean,
            s2: k * 2.0 * prior_mean * prior_mean,
            gamma: 0.0,
            sigma: 1.0,
            clip_at: f64::INFINITY,
        };
        e.fit();
        let mut tails = GpdTails {
            u,
            grow: if half_life > 0.0 {
                (std::f64::consts::LN_2 / half_life).exp()
            } else {
                1.0
            },
            w: 1.0,
            n: prior_n,
            clip_l: clip_l.min(0.0),
            t: [e; TAILS],
            hist: Default::default(),
        };
        for i in 0..TAILS {
            tails.refit(i);
        }
        tails
    }

    /// Learn one observation of every feature. A feature that is NaN or infinite after
    /// winsorising counts as observed below `u` (it could not be computed; it must not poison
    /// the sums).
    #[inline(always)]
    pub fn learn(&mut self, fs: &[f64; TAILS]) {
        self.w *= self.grow;
        if self.w > W_MAX {
            let r = 1.0 / self.w;
            self.n *= r;
            for e in &mut self.t {
                e.k *= r;
                e.s1 *= r;
                e.s2 *= r;
            }
            for h in &mut self.hist {
                h.iter_mut().for_each(|c| *c *= r);
            }
            self.w = 1.0;
        }
        let w = self.w;
        self.n += w;
        for (i, &f) in fs.iter().enumerate() {
            if f <= self.u {
                // Most points: below the threshold before winsorising, so after it too.
                continue;
            }
            if f < f64::INFINITY {
                let k = bin(f / self.u);
                if let Some(h) = self.hist.get_mut(i) {
                    if h.len() <= k {
                        h.resize(k + 1, 0.0);
                    }
                    h[k] += w;
                }
            }
            let Some(e) = self.t.get_mut(i) else { break };
            let f = if f < e.clip_at { f } else { e.clip_at };
            if f > self.u && f < f64::INFINITY {
                let x = f - self.u;
                e.k += w;
                e.s1 += w * x;
                e.s2 += w * x * x;
                self.refit(i);
            }
        }
    }

    fn refit(&mut self, i: usize) {
        if let Some(e) = self.t.get_mut(i) {
            e.fit();
        }
        if self.clip_l < 0.0 {
            let at = self.value_at_log10(i, self.clip_l);
            if let Some(e) = self.t.get_mut(i) {
                e.clip_at = at;
            }
        }
    }

    /// Invariants a decoded state must hold (bounded rarity memory).
    pub fn check(&self) -> Result<(), String> {
        if self.hist.iter().all(|h| h.len() <= MAX_BINS) {
            Ok(())
        } else {
            Err("tail state: too many rarity bins".into())
        }
    }

    /// The threshold `u`.
    pub fn threshold(&self) -> f64 {
        self.u
    }

    /// GPD shape and scale of feature `i` (cached, refitted on each excess).
    pub fn params(&self, i: usize) -> (f64, f64) {
        self.t.get(i).map_or((0.0, 1.0), |e| (e.gamma, e.sigma))
    }

    fn rate(&self, e: &Excess) -> f64 {
        (e.k / self.n).clamp(1e-12, 1.0)
    }

    /// The value f of feature `i` with log10 P(F > f) = `l` (l < 0); `u` when the tail rate is
    /// below 10^l.
    pub fn value_at_log10(&self, i: usize, l: f64) -> f64 {
        let Some(e) = self.t.get(i) else {
            return self.u;
        };
        let ln_tail = l * std::f64::consts::LN_10 - self.rate(e).ln();
        if ln_tail >= 0.0 {
            return self.u;
        }
        let (g, s) = (e.gamma, e.sigma);
        let x = if g.abs() < 1e-6 {
            -s * ln_tail
        } else {
            s * ((-g * ln_tail).exp() - 1.0) / g
        };
        self.u + x.max(0.0)
    }

    /// log10 of P(F > f) for feature `i`; 0 for f <= u.
    #[inline(always)]
    pub fn log10_sf(&self, i: usize, f: f64) -> f64 {
        self.log10_sf_with(i, f, true)
    }

    /// [`GpdTails::log10_sf`], reading the rarity memory only when `rarity` is true: for a
    /// feature that seldom recurs (how far a value goes beyond the range seen, which then moves
    /// the range) a few past occurrences in the memory cap the evidence of every later one,
    /// however large, at log10 of the count of points.
    #[inline(always)]
    pub fn log10_sf_with(&self, i: usize, f: f64, rarity: bool) -> f64 {
        if f.is_nan() || f <= self.u {
            return 0.0;
        }
        let Some(e) = self.t.get(i) else {
            return 0.0;
        };
        let (g, s) = (e.gamma, e.sigma);
        let x = f - self.u;
        let ln_tail = if g.abs() < 1e-6 {
            -x / s
        } else {
            let t = 1.0 + g * x / s;
            if t <= 0.0 {
                // Beyond the finite end point of a short-tailed fit: as unlikely as we can say.
                -50.0 * std::f64::consts::LN_10
            } else {
                -t.ln() / g
            }
        };
        let gpd = (self.rate(e).ln() + ln_tail) / std::f64::consts::LN_10;
        if !rarity {
            return gpd.clamp(-50.0, 0.0);
        }
        fmax(gpd, self.log10_rarity(i, f)).clamp(-50.0, 0.0)
    }

    /// The parametric part of [`GpdTails::log10_sf`] alone.
    #[cfg(test)]
    fn log10_sf_gpd(&self, i: usize, f: f64) -> f64 {
        self.log10_sf_with(i, f, false)
    }

    /// log10 of the decayed share of past points of feature `i` at or above `f` (> u); −∞ when
    /// none was.
    #[inline]
    fn log10_rarity(&self, i: usize, f: f64) -> f64 {
        let Some(h) = self.hist.get(i) else {
            return f64::NEG_INFINITY;
        };
        let x = (f / self.u).ln() * INV_LN_BIN;
        let (k, frac) = if x < (MAX_BINS - 1) as f64 {
            (x as usize, x - x.floor())
        } else {
            (MAX_BINS - 1, 0.0)
        };
        if k >= h.len() || self.n <= 0.0 {
            return f64::NEG_INFINITY;
        }
        // The share at or above the bin's lower and upper edges, interpolated geometrically (in
        // log f) in between; linearly in the highest bin, whose upper edge has no count.
        let above: f64 = h[k + 1..].iter().sum();
        let c = if above > 0.0 {
            (above + h[k]).powf(1.0 - frac) * above.powf(frac)
        } else {
            h[k] * (1.0 - frac)
        };
        if c > 0.0 {
            (c / self.n).log10()
        } else {
            f64::NEG_INFINITY
        }
    }
}

/// The rarity bin of a ratio f / u > 1.
#[inline]
fn bin(ratio: f64) -> usize {
    ((ratio.ln() * INV_LN_BIN) as usize).min(MAX_BINS - 1)
}

#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_tail_is_recovered() {
        // Excesses over u of an Exp(1) variable are Exp(1): P(F > u + e) = rate * exp(-e).
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut t = GpdTails::new(1.0, 10.0, 0.1, 1.0, 0.0, 0.0);
        let mut u = GpdTails::new(1.0, 10.0, 0.1, 1.0, 1e5, -3.0);
        for _ in 0..200_000 {
            let x: f64 = -rng.gen_range(f64::EPSILON..1.0_f64).ln();
            t.learn(&[x, 2.0 * x, 0.0, 0.0, 0.0]);
            u.learn(&[x, 2.0 * x, 0.0, 0.0, 0.0]);
        }
        let (g, s) = t.params(0);
        assert!(g.abs() < 0.05, "gamma {g}");
        assert!((s - 1.0).abs() < 0.05, "sigma {s}");
        // Both estimates agree with the truth, P(X > 5) = e^-5.
        let p = 10f64.powf(t.log10_sf_gpd(0, 5.0));
        assert!((p / (-5.0f64).exp() - 1.0).abs() < 0.15, "p {p}");
        let p = 10f64.powf(t.log10_sf(0, 5.0));
        assert!((p / (-5.0f64).exp() - 1.0).abs() < 0.15, "p {p}");
        assert_eq!(t.log10_sf(0, 0.5), 0.0);
        let f = t.value_at_log10(0, -3.0);
        assert!((t.log10_sf_gpd(0, f) + 3.0).abs() < 1e-9, "f {f}");
        // Twice the variable: same shape, twice the scale; never above u: no tail at all.
        let (g1, s1) = t.params(1);
        assert!(g1.abs() < 0.05 && (s1 - 2.0).abs() < 0.1, "{g1} {s1}");
        assert!(t.log10_sf(2, 5.0) < -6.0);
        t.learn(&[f64::NAN, f64::INFINITY, 1e300, 0.0, 0.0]);
        assert!(t.log10_sf(0, 5.0).is_finite() && t.log10_sf(1, 5.0).is_finite());
        // Forgetting and winsorising at 1e-3 keep the fit close for this light tail.
        let (gu, su) = u.params(0);
        assert!(gu.abs() < 0.1 && (su - 1.0).abs() < 0.1, "{gu} {su}");
    }

    #[test]
    fn a_regular_pulse_is_not_rare() {
        // Gaussian |z| with a pulse of 1000σ every 100 points: the pulse has the rate it has.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut t = GpdTails::new(2.94, 200.0, 0.02, 0.6, 50_000.0, -4.0);
        for i in 0..20_000 {
            let z: f64 = (0..12).map(|_| rng.gen_range(0.0..1.0)).sum::<f64>() - 6.0;
            let f = if i % 100 == 0 { 1000.0 } else { z.abs() };
            t.learn(&[f, 0.0, 0.0, 0.0, 0.0]);
        }
        let p = 10f64.powf(t.log10_sf(0, 1000.0));
        assert!((0.005..0.02).contains(&p), "pulse {p}");
    }

    #[test]
    fn normal_history_never_makes_a_deviation_less_rare() {
        // Gaussian |z|: P(|z| > 9) stays tiny after 1e3, 1e4 and 1e5 points (it only gets
        // smaller as the light tail is learned).
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let normal = rand_distr::StandardNormal;
        let mut t = GpdTails::new(2.94, 200.0, 0.02, 0.6, 50_000.0, -4.0);
        let mut last = 0.0;
        for n in 1..=100_000 {
            let z: f64 = normal.sample(&mut rng);
            t.learn(&[z.abs(), 0.0, 0.0, 0.0, 0.0]);
            if n == 1000 || n == 10_000 || n == 100_000 {
                let l = t.log10_sf(0, 9.0);
                assert!(l < -6.0, "after {n} points: {l}");
                assert!(l <= last + 0.5, "after {n} points: {l} (was {last})");
                last = l;
            }
        }
    }
}
