//! Single-method streaming detectors: robust (rolling median/MAD), EWMA, seasonal profile and
//! CUSUM changepoint.

use serde::{Deserialize, Serialize};

use crate::model::Params;
use crate::window::SortedWindow;
use crate::{Kind, Scored};

/// Map a deviation in robust sigmas to [0, 1]: 0 below 3σ, 0.5 at 5σ, → 1 far out.
pub fn calibrate(z: f64) -> f64 {
    let a = z.abs();
    if a.is_nan() || a <= 3.0 {
        0.0
    } else {
        1.0 - (-(a - 3.0) * std::f64::consts::LN_2 / 2.0).exp()
    }
}

/// A verdict from an expected value, a σ-equivalent scale and a threshold.
pub fn verdict(value: f64, expected: f64, scale: f64, threshold: f64) -> Scored {
    let z = (value - expected) / scale;
    let score = calibrate(z);
    let outside = z.abs() > 3.0;
    Scored {
        expected,
        lower: expected - 3.0 * scale,
        upper: expected + 3.0 * scale,
        score,
        sigma: z,
        is_anomaly: score >= threshold,
        outside,
        kind: outside.then_some(if z > 0.0 { Kind::Spike } else { Kind::Dip }),
    }
}

/// Check a decoded [`SortedWindow`] of `window` values (a detector's `p.window`): its capacity is
/// the one the detector made it with, it holds at most that many values (else it would never
/// evict and grow without bound), the same number in arrival order and sorted, all finite (as
/// pushed), the sorted copy in order.
fn check_window(w: &SortedWindow, window: usize, what: &str) -> Result<(), String> {
    let sorted = w.sorted();
    let ok = w.capacity() == window.max(1)
        && sorted.len() <= w.capacity()
        && w.iter().count() == sorted.len()
        && w.iter().all(f64::is_finite)
        && sorted.iter().all(|v| v.is_finite())
        && sorted.windows(2).all(|p| p[0].total_cmp(&p[1]).is_le());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} state: inconsistent window ({} of {} values, window {window})",
            sorted.len(),
            w.capacity()
        ))
    }
}

/// Robust rolling median / MAD z-score (Hampel filter; Hampel 1974, MAD scaled by 1.4826) over an
/// indexable sorted window ([`SortedWindow`]: O(log w) search, O(1) median, O(log w) MAD).
/// MAD = 0 falls back to the 10–90% range, then the full range, then a relative epsilon.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Robust {
    pub(crate) p: Params,
    pub(crate) win: SortedWindow,
}

impl Robust {
    pub fn new(p: Params) -> Self {
        Robust {
            win: SortedWindow::new(p.window),
            p,
        }
    }

    pub fn score(&self, value: f64) -> Scored {
        if self.win.len() < self.p.warmup {
            return Scored::warming_up();
        }
        let med = self.win.median();
        verdict(value, med, self.win.scale_around(med), self.p.threshold)
    }

    pub fn learn(&mut self, value: f64) {
        self.win.push(value);
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere):
    /// `Err` names the first one broken.
    pub fn check(&self) -> Result<(), String> {
        self.p.check("robust")?;
        check_window(&self.win, self.p.window, "robust")
    }
}

/// Exponentially weighted mean and variance (West 1979 / Finch 2009 incremental form).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ewma {
    pub(crate) p: Params,
    pub(crate) n: u64,
    pub(crate) mean: f64,
    pub(crate) var: f64,
}

impl Ewma {
    pub fn new(p: Params) -> Self {
        Ewma {
            p,
            n: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    pub fn score(&self, value: f64) -> Scored {
        if (self.n as usize) < self.p.warmup {
            return Scored::warming_up();
        }
        let sd = self.var.sqrt();
        let scale = if sd > 0.0 {
            sd
        } else {
            1e-9 * self.mean.abs().max(1e-3)
        };
        verdict(value, self.mean, scale, self.p.threshold)
    }

    pub fn learn(&mut self, value: f64) {
        if self.n == 0 {
            self.mean = value;
            self.var = 0.0;
        } else {
            let a = self.p.alpha;
            let d = value - self.mean;
            self.mean += a * d;
            self.var = (1.0 - a) * (self.var + a * d * d);
        }
        self.n += 1;
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere): the
    /// params' ranges (α in (0, 1) keeps the variance non-negative).
    pub fn check(&self) -> Result<(), String> {
        self.p.check("ewma")
    }
}

/// Largest period the streaming seasonal profile keeps (bounded state).
pub const MAX_PERIOD: usize = 10_080;

/// Seasonal baseline with prediction bands: a per-phase profile (exponentially weighted mean of
/// each phase of the period, Holt-Winters-style seasonal update with no trend) plus a robust window
/// of residuals for the band. The period is `params.period`, else found at warmup by
/// `augurs-seasons` (Welch periodogram) on the first `window·4` points (capped at 4096), else one
/// day from the sampling step; without a period the profile has one phase (a level).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Seasonal {
    pub(crate) p: Params,
    pub(crate) n: u64,
    pub(crate) period: usize,
    pub(crate) train: Vec<f64>,
    pub(crate) first_ts: i64,
    pub(crate) last_ts: i64,
    pub(crate) profile: Vec<f64>,
    pub(crate) seen: Vec<bool>,
    pub(crate) resid: SortedWindow,
}

impl Seasonal {
    pub fn new(p: Params) -> Self {
        Seasonal {
            n: 0,
            period: p.period,
            train: Vec::new(),
            first_ts: i64::MIN,
            last_ts: i64::MIN,
            profile: vec![0.0; p.period.max(1)],
            seen: vec![false; p.period.max(1)],
            resid: SortedWindow::new(p.window),
            p,
        }
    }

    fn train_len(&self) -> usize {
        (self.p.window * 4).clamp(64, 4096)
    }

    fn phase(&self) -> usize {
        (self.n as usize) % self.profile.len()
    }

    pub fn period(&self) -> usize {
        self.period
    }

    pub fn score(&self, value: f64) -> Scored {
        let ph = self.phase();
        if self.period == 0 || !self.seen[ph] || self.resid.len() < self.p.warmup {
            return Scored::warming_up();
        }
        let med = self.resid.median();
        let mut s = verdict(
            value,
            self.profile[ph] + med,
            self.resid.scale_around(med),
            self.p.threshold,
        );
        if s.outside && s.score < 0.9 {
            s.kind = Some(Kind::SeasonalBreak);
        }
        s
    }

    pub fn learn(&mut self, ts: i64, value: f64) {
        if self.first_ts == i64::MIN {
            self.first_ts = ts;
        }
        self.last_ts = ts;
        if self.period == 0 {
            self.train.push(value);
            if self.train.len() >= self.train_len() {
                self.choose_period();
            }
            return;
        }
        let ph = self.phase();
        if self.seen[ph] {
            let r = value - self.profile[ph];
            self.resid.push(r);
            // Robust update: clip the innovation at 3 band-widths so outliers barely move it.
            let med = self.resid.median();
            let sc = 3.0 * self.resid.scale_around(med);
            self.profile[ph] += self.p.alpha.max(0.1) * r.clamp(-sc, sc);
        } else {
            self.profile[ph] = value;
            self.seen[ph] = true;
        }
        self.n += 1;
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere):
    /// `Err` names the first one broken. The phase is `n % profile.len()` and indexes `profile`
    /// and `seen`, so the profile is non-empty (one phase per period sample, one level without a
    /// period) and `seen` as long; the profile is finite (its residuals feed the window); the
    /// training buffer is bounded (it is only used before the period is known).
    pub fn check(&self) -> Result<(), String> {
        self.p.check("seasonal")?;
        let n = self.profile.len();
        if self.period > MAX_PERIOD
            || (self.p.period > 0 && self.period != self.p.period)
            || n != self.period.max(1)
            || self.seen.len() != n
        {
            return Err(format!(
                "seasonal state: inconsistent profile (period {}, {} phases, {} seen flags)",
                self.period,
                n,
                self.seen.len()
            ));
        }
        if !self.profile.iter().all(|v| v.is_finite()) {
            return Err("seasonal state: non-finite profile".into());
        }
        let train_ok = if self.period == 0 {
            self.train.len() < self.train_len() && self.train.iter().all(|v| v.is_finite())
        } else {
            self.train.is_empty()
        };
        if !train_ok {
            return Err(format!(
                "seasonal state: inconsistent training buffer ({} points, period {})",
                self.train.len(),
                self.period
            ));
        }
        check_window(&self.resid, self.p.window, "seasonal")
    }

    fn choose_period(&mut self) {
        use augurs_seasons::Detector as _;
        let y = std::mem::take(&mut self.train);
        let found = augurs_seasons::PeriodogramDetector::builder()
            .min_period(2)
            .build()
            .detect(&y);
        let step = if y.len() > 1 {
            self.last_ts.saturating_sub(self.first_ts) as f64 / (y.len() - 1) as f64
        } else {
            0.0
        };
        let daily = if step > 0.0 {
            (86_400e6 / step).round() as usize
        } else {
            0
        };
        let p = found
            .first()
            .map(|&p| refine_period(&y, p as usize))
            .filter(|&p| p >= 2 && p * 2 <= y.len())
            .or(Some(daily).filter(|&d| d >= 2 && d * 2 <= y.len()))
            .unwrap_or(1)
            .min(MAX_PERIOD);
        self.period = p;
        self.profile = vec![0.0; p];
        self.seen = vec![false; p];
        // Replay the training points (bounded) into the profile.
        for v in y {
            self.learn(self.last_ts, v);
        }
    }
}

/// The periodogram's frequency grid rounds periods (50 may come back as 51): pick the lag within
/// ±5% (at least ±1) of `p` with the highest sample autocorrelation.
pub fn refine_period(y: &[f64], p: usize) -> usize {
    let n = y.len();
    if p < 2 || n < 2 * p + 2 {
        return p;
    }
    let mean = y.iter().sum::<f64>() / n as f64;
    let acf = |lag: usize| -> f64 {
        let num: f64 = (lag..n).map(|i| (y[i] - mean) * (y[i - lag] - mean)).sum();
        num / (n - lag) as f64
    };
    let d = (p / 20).max(1);
    let mut best = (p, f64::NEG_INFINITY);
    for lag in p.saturating_sub(d).max(2)..=(p + d).min(n / 2) {
        let a = acf(lag);
        if a > best.1 {
            best = (lag, a);
        }
    }
    best.0
}

/// Two-sided CUSUM on values standardised by an EW mean/variance (Page 1954, "Continuous
/// inspection schemes"): g⁺ = max(0, g⁺ + z − k), g⁻ = max(0, g⁻ − z − k), k = 0.5σ; an alarm at
/// g ≥ h = 5 (score 0.5 at h), after which the statistics restart at the new level.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cusum {
    pub(crate) base: Ewma,
    pub(crate) gp: f64,
    pub(crate) gn: f64,
}

impl Cusum {
    pub const K: f64 = 0.5;
    pub const H: f64 = 5.0;

    pub fn new(p: Params) -> Self {
        Cusum {
            base: Ewma::new(p),
            gp: 0.0,
            gn: 0.0,
        }
    }

    fn step(&self, value: f64) -> Option<(f64, f64, f64, f64)> {
        if (self.base.n as usize) < self.base.p.warmup {
            return None;
        }
        let sd = self
            .base
            .var
            .sqrt()
            .max(1e-9 * self.base.mean.abs().max(1e-3));
        let z = (value - self.base.mean) / sd;
        let gp = (self.gp + z - Self::K).max(0.0);
        let gn = (self.gn - z - Self::K).max(0.0);
        Some((gp, gn, z, sd))
    }

    pub fn score(&self, value: f64) -> Scored {
        let Some((gp, gn, z, sd)) = self.step(value) else {
            return Scored::warming_up();
        };
        let g = gp.max(gn);
        let score = 1.0 - (-g / Self::H * std::f64::consts::LN_2).exp();
        let outside = g >= Self::H;
        let mean = self.base.mean;
        Scored {
            expected: mean,
            lower: mean - 3.0 * sd,
            upper: mean + 3.0 * sd,
            score,
            sigma: z,
            is_anomaly: score >= self.base.p.threshold,
            outside,
            kind: outside.then_some(Kind::LevelShift),
        }
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere).
    pub fn check(&self) -> Result<(), String> {
        self.base.p.check("changepoint")
    }

    pub fn learn(&mut self, value: f64) {
        if let Some((gp, gn, _, _)) = self.step(value) {
            if gp.max(gn) >= Self::H {
                // Restart at the new level.
                self.gp = 0.0;
                self.gn = 0.0;
                self.base.mean = value;
                return;
            }
            self.gp = gp;
            self.gn = gn;
        }
        self.base.learn(value);
    }
}
