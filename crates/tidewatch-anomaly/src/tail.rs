//! Calibrated tail probabilities for a non-negative deviation feature (robust |z|).
//!
//! Peaks-over-threshold with a Generalized Pareto tail, as in SPOT (Siffer, Fouque, Termier &
//! Largouët, "Anomaly Detection in Streams with Extreme Value Theory", KDD 2017): above a fixed
//! threshold `u` the excess `f - u` is modelled as GPD(γ, σ), fitted by the method of moments
//! (γ = ½(1 − m²/v), σ = ½·m·(m²/v + 1), Hosking & Wallis 1987) on exponentially decayed sums, so
//! the state is five numbers whatever the history length. The tail probability is
//! `P(F > f) = (n_u / n) · (1 + γ (f − u) / σ)^(−1/γ)`. A weak exponential prior (γ = 0) keeps the
//! estimate sane while few peaks have been seen.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GpdTail {
    /// Threshold above which excesses are modelled.
    pub u: f64,
    /// Decayed count of all observations.
    n: f64,
    /// Decayed count, sum and sum of squares of excesses over `u`.
    k: f64,
    s1: f64,
    s2: f64,
    /// Per-observation decay factor (1 = no forgetting).
    decay: f64,
}

impl GpdTail {
    /// `u`: threshold; `prior_n` pseudo-observations of which a fraction `prior_rate` exceed `u`
    /// with mean excess `prior_mean` (exponential tail); `half_life` in observations.
    pub fn new(u: f64, prior_n: f64, prior_rate: f64, prior_mean: f64, half_life: f64) -> Self {
        let k = prior_n * prior_rate;
        GpdTail {
            u,
            n: prior_n,
            k,
            s1: k * prior_mean,
            s2: k * 2.0 * prior_mean * prior_mean,
            decay: if half_life > 0.0 {
                (-std::f64::consts::LN_2 / half_life).exp()
            } else {
                1.0
            },
        }
    }

    /// Learn one observation.
    pub fn learn(&mut self, f: f64) {
        if !f.is_finite() {
            return;
        }
        self.n = self.n * self.decay + 1.0;
        self.k *= self.decay;
        self.s1 *= self.decay;
        self.s2 *= self.decay;
        if f > self.u {
            let e = f - self.u;
            self.k += 1.0;
            self.s1 += e;
            self.s2 += e * e;
        }
    }

    /// GPD shape and scale from the moments of the excesses.
    pub fn params(&self) -> (f64, f64) {
        let m = self.s1 / self.k;
        let v = (self.s2 / self.k - m * m).max(1e-12 * m * m + 1e-300);
        let r = m * m / v;
        let gamma = (0.5 * (1.0 - r)).clamp(-0.45, 0.5);
        let sigma = (0.5 * m * (r + 1.0)).max(1e-12);
        (gamma, sigma)
    }

    /// The value f with log10 P(F > f) = `l` (l < 0); `u` when the tail rate is below 10^l.
    pub fn value_at_log10(&self, l: f64) -> f64 {
        let rate = (self.k / self.n).clamp(1e-12, 1.0);
        let ln_tail = l * std::f64::consts::LN_10 - rate.ln();
        if ln_tail >= 0.0 {
            return self.u;
        }
        let (g, s) = self.params();
        let e = if g.abs() < 1e-6 {
            -s * ln_tail
        } else {
            s * ((-g * ln_tail).exp() - 1.0) / g
        };
        self.u + e.max(0.0)
    }

    /// log10 of P(F > f); 0 for f <= u.
    pub fn log10_sf(&self, f: f64) -> f64 {
        if f.is_nan() || f <= self.u {
            return 0.0;
        }
        let rate = (self.k / self.n).clamp(1e-12, 1.0);
        let (g, s) = self.params();
        let e = f - self.u;
        let ln_tail = if g.abs() < 1e-6 {
            -e / s
        } else {
            let t = 1.0 + g * e / s;
            if t <= 0.0 {
                // Beyond the finite end point of a short-tailed fit: as unlikely as we can say.
                -50.0 * std::f64::consts::LN_10
            } else {
                -t.ln() / g
            }
        };
        ((rate.ln() + ln_tail) / std::f64::consts::LN_10).clamp(-50.0, 0.0)
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
        let mut t = GpdTail::new(1.0, 10.0, 0.1, 1.0, 0.0);
        for _ in 0..200_000 {
            let x: f64 = -rng.gen_range(f64::EPSILON..1.0_f64).ln();
            t.learn(x);
        }
        let (g, s) = t.params();
        assert!(g.abs() < 0.05, "gamma {g}");
        assert!((s - 1.0).abs() < 0.05, "sigma {s}");
        let p = 10f64.powf(t.log10_sf(5.0));
        assert!((p / (-5.0f64).exp() - 1.0).abs() < 0.15, "p {p}");
        assert_eq!(t.log10_sf(0.5), 0.0);
        let f = t.value_at_log10(-3.0);
        assert!((t.log10_sf(f) + 3.0).abs() < 1e-9, "f {f}");
    }
}
