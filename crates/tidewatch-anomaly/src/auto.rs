//! `auto`: an untuned, causal, bounded-state combination of detectors with event gating.
//!
//! Per point it computes several robust deviation features, each in robust sigmas:
//! 1. level: |x − median| / scale over a long sliding window (spikes, dips, fast level shifts);
//! 2. change: the same on first differences (sudden jumps, variance bursts);
//! 3. short mean: |mean of the last few points − median| / scale (sustained moderate shifts);
//! 4. seasonal: the lag-P difference x_t − x̃_{t−P} against its own robust scale, where P is one
//!    day in samples (from the sampling step) or `period`, and x̃ is the cleaned history (anomalous
//!    points are replaced by their expected value so that an event does not echo one period later),
//!    divided by the typical |residual| of its phase of the day (`phase_buckets`: a quiet night and
//!    a noisy day are judged on one scale); the seasonal model replaces the plain one when its
//!    recent mean evidence is below `select_ratio` times the plain model's (`select_half_life`);
//! 5. flatline: a run of identical values much longer than any run seen before.
//!
//! Each feature's tail is calibrated per series by a Generalized Pareto fit over a threshold
//! (SPOT, Siffer et al. 2017, see [`crate::tail`]), so a score means the same tail probability on
//! every series. The combined evidence is S = −log10(min_i p_i · m) (Bonferroni over m features)
//! and the raw score is S / (S + 4) (0.5 at p = 1e-4).
//!
//! Anomaly likelihood (HTM-style, Ahmad et al. 2017): the raw surprise r = S / (S + 4) is
//! averaged over the last `lik_short` points and compared with the exponentially weighted mean
//! and spread of that average (half-life `lik_half_life`, spread floored at `lik_min_std`); the
//! emitted evidence is L = −log10 of the Gaussian tail probability and the score L / (L + 5)
//! (0.5 at a tail probability of 1e-5). This makes a score mean the same on every series: a
//! series that is often surprising needs a larger surprise to score high. Set `lik_short` = 0
//! for the previous behaviour (score S / (S + 4)).
//!
//! Event gating (on L): a point emits its score only if L ≥ 1 and L beats the largest L of the
//! last `refractory` points by `gate_margin` (log10 units); otherwise the emitted score is 0.
//! After an alarm (L ≥ `s_hold`) the next `holdoff` points emit 0. `outside` (from S) stays true
//! while the point is abnormal so the caller can extend the episode.

use serde::{Deserialize, Serialize};

use crate::tail::GpdTail;
use crate::window::SortedWindow;
use crate::{Kind, Scored};

/// Tunables of `auto` (the defaults are the product; the NAB example uses nothing else).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoConfig {
    /// Sliding windows of the values and of the first differences (odd sizes: the MAD is then
    /// one order statistic instead of the mean of two, about half the selection work).
    pub level_window: usize,
    pub diff_window: usize,
    pub short: usize,
    pub warmup: usize,
    /// Seasonal period in samples (0 = one day from the sampling step when 8 ≤ P ≤ 2048).
    pub period: usize,
    pub seasonal: bool,
    /// The seasonal residual replaces the values when its scale is below this fraction of theirs.
    pub seasonal_ratio: f64,
    /// Tail threshold (robust sigmas) and tail memory (half-life in points).
    pub tail_u: f64,
    pub tail_half_life: f64,
    /// Evidence (−log10 p) above which a point is `outside`.
    pub s_outside: f64,
    /// Gating window: a point emits only if its evidence beats every point of the last
    /// `refractory` points by `gate_margin` (log10 units).
    pub refractory: usize,
    pub gate_margin: f64,
    /// The gating window remembers only emitted points (not the evidence of suppressed ones).
    pub gate_emitted: bool,
    /// Hold-off: after an emitted point with evidence ≥ `s_hold`, the next `holdoff` points emit 0
    /// (one alarm per event; NAB-style windows are long compared with the gating window).
    pub holdoff: usize,
    pub s_hold: f64,
    /// Anomaly likelihood (HTM-style, Ahmad et al. 2017): the mean of the raw surprise over the
    /// last `lik_short` points is compared with the exponentially weighted mean and spread of that
    /// short mean (half-life `lik_half_life` points, spread at least `lik_min_std`); the emitted
    /// evidence is −log10 of its Gaussian tail probability. 0 disables the layer.
    pub lik_short: usize,
    pub lik_half_life: f64,
    pub lik_min_std: f64,
    pub lik_warmup: u64,
    /// Raw surprise fed to the likelihood: S / (S + `lik_k`) for evidence S = −log10 p.
    pub lik_k: f64,
    /// Weight of the point's own evidence added to the likelihood evidence.
    pub lik_mix: f64,
    /// The tails learn from points whose evidence is below this (SPOT learns from normal points
    /// only; a higher bound lets a tail that is too light catch up instead of locking in).
    pub tail_learn_s: f64,
    /// Model selection: the seasonal residual is also used when its recent mean evidence
    /// (exponentially weighted, this half-life in points) is lower than the plain model's.
    /// 0 disables.
    pub select_half_life: f64,
    /// Winsorised tail learning: when > 0 the tails learn from every point, each feature clipped
    /// at the value whose tail probability is 10^−`tail_clip_s` (a lone anomaly moves the fit
    /// by one bounded value; a persistent heavier regime is learned instead of locked out).
    /// 0 = learn from normal points only.
    pub tail_clip_s: f64,
    /// Score threshold for `is_anomaly`.
    pub threshold: f64,
    /// Heteroscedastic seasonal residuals: when > 0, the day is cut into this many phase buckets
    /// and the seasonal residual is divided by the typical |residual| of its phase bucket
    /// (exponentially weighted, at least `phase_alpha` per update), so that a quiet night and a
    /// noisy day are judged on the same scale.
    #[serde(default)]
    pub phase_buckets: usize,
    #[serde(default = "default_phase_alpha")]
    pub phase_alpha: f64,
    /// Model selection by evidence (see `select_half_life`): the seasonal model is chosen when
    /// its mean evidence is below this fraction of the plain model's.
    #[serde(default = "default_select_ratio")]
    pub select_ratio: f64,
    /// 0 = the scale criterion (`seasonal_ratio`) also selects the seasonal model; 1 = only the
    /// evidence criterion does (when `select_half_life` > 0).
    #[serde(default)]
    pub select_only_evidence: bool,
}

fn default_select_ratio() -> f64 {
    1.0
}

fn default_phase_alpha() -> f64 {
    0.05
}

impl Default for AutoConfig {
    fn default() -> Self {
        AutoConfig {
            level_window: 255,
            diff_window: 255,
            short: 6,
            warmup: 24,
            period: 0,
            seasonal: true,
            seasonal_ratio: 0.5,
            tail_u: 2.5,
            tail_half_life: 20_000.0,
            s_outside: 3.0,
            refractory: 20,
            gate_margin: 1.0,
            gate_emitted: false,
            holdoff: 20,
            s_hold: 5.0,
            lik_short: 2,
            lik_half_life: 350.0,
            lik_min_std: 0.1,
            lik_warmup: 100,
            lik_k: 4.0,
            lik_mix: 0.0,
            tail_learn_s: 3.0,
            select_half_life: 1000.0,
            tail_clip_s: 0.0,
            threshold: 0.5,
            phase_buckets: 24,
            phase_alpha: 0.05,
            select_ratio: 0.2,
            select_only_evidence: true,
        }
    }
}

/// Robust deviation features of one series (the values, or the seasonal residuals).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Features {
    lvl: SortedWindow,
    dif: SortedWindow,
    last: f64,
    tails: [GpdTail; 3],
}

/// One evaluation of [`Features`].
#[derive(Clone, Copy, Debug)]
struct FeatEval {
    fs: [f64; 3],
    /// Evidence −log10 p (Bonferroni over the features) and the winning feature.
    s: f64,
    arg: usize,
    z: f64,
    med: f64,
    scale: f64,
}

impl Features {
    fn new(cfg: &AutoConfig) -> Self {
        let tail = GpdTail::new(cfg.tail_u, 200.0, 0.02, 0.6, cfg.tail_half_life);
        Features {
            lvl: SortedWindow::new(cfg.level_window),
            dif: SortedWindow::new(cfg.diff_window),
            last: f64::NAN,
            tails: [tail.clone(), tail.clone(), tail],
        }
    }

    fn ready(&self) -> bool {
        self.lvl.len() >= 8 && self.dif.len() >= 4
    }

    fn eval(&self, x: f64, short: usize) -> FeatEval {
        let med = self.lvl.median();
        let sc = self.lvl.scale_around(med);
        let z = (x - med) / sc;
        let mut fs = [z.abs(), 0.0, 0.0];
        let dm = self.dif.median();
        fs[1] = ((x - self.last - dm) / self.dif.scale_around(dm)).abs();
        let k = short.min(self.lvl.len());
        if k > 1 {
            let recent: f64 = self.lvl.iter().skip(self.lvl.len() - (k - 1)).sum::<f64>() + x;
            fs[2] = ((recent / k as f64 - med) / sc).abs();
        }
        let mut best = 0.0f64;
        let mut arg = 0;
        for (i, (f, t)) in fs.iter().zip(&self.tails).enumerate() {
            let l = -t.log10_sf(*f);
            if l > best {
                best = l;
                arg = i;
            }
        }
        FeatEval {
            fs,
            s: (best - 3f64.log10()).max(0.0),
            arg,
            z,
            med,
            scale: sc,
        }
    }

    fn learn(&mut self, x: f64, fs: Option<&[f64; 3]>, clip: f64) {
        if let Some(fs) = fs {
            for (t, f) in self.tails.iter_mut().zip(fs) {
                let f = if clip > 0.0 {
                    f.min(t.value_at_log10(-clip))
                } else {
                    *f
                };
                t.learn(f);
            }
        }
        if self.last.is_finite() {
            self.dif.push(x - self.last);
        }
        self.lvl.push(x);
        self.last = x;
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Auto {
    cfg: AutoConfig,
    n: u64,
    base: Features,
    seas: Features,
    last_x: f64,
    last_ts: i64,
    /// Recent sampling steps (µs), to find the daily period.
    steps: SortedWindow,
    /// Seasonal period in samples once known (0 = not yet, usize::MAX = none).
    period: usize,
    /// Cleaned history for the seasonal lag (ring of `period` values).
    season: std::collections::VecDeque<f64>,
    /// Flatline: current run of identical values and the longest run seen.
    run: u64,
    max_run: f64,
    /// Number of value changes seen (a series that never changed cannot flatline).
    changes: u64,
    /// Gating: (index, evidence) of the sliding maximum over the last `refractory` points,
    /// decreasing (a monotone deque, O(1) amortised).
    gate: std::collections::VecDeque<(u64, f64)>,
    /// Hold-off: points before this index emit 0.
    hold_until: u64,
    lik: Likelihood,
    /// Exponentially weighted mean evidence of the plain and the seasonal model.
    ew_s: [f64; 2],
    /// Per phase bucket: typical |seasonal residual| and the number of updates.
    #[serde(default)]
    phase: Vec<(f64, u64)>,
}

/// −log10 of the standard normal upper tail Q(z), ≥ 0.
fn neg_log10_q(z: f64) -> f64 {
    if !z.is_finite() {
        return if z > 0.0 { 300.0 } else { 0.0 };
    }
    if z < 3.0 {
        // Q(z) = ½ erfc(z/√2), erfc by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
        let x = z.abs() / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erfc = poly * (-x * x).exp();
        let q = if z >= 0.0 {
            0.5 * erfc
        } else {
            1.0 - 0.5 * erfc
        };
        return -q.max(1e-300).log10();
    }
    // Asymptotic (Mills ratio) expansion.
    let z2 = z * z;
    let ln_q = -0.5 * z2 - (z * (std::f64::consts::TAU).sqrt()).ln()
        + (1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)).ln();
    -ln_q / std::f64::consts::LN_10
}

/// The anomaly-likelihood layer (see [`AutoConfig::lik_short`]); O(`lik_short`) per point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Likelihood {
    ring: std::collections::VecDeque<f64>,
    mean: f64,
    var: f64,
    seen: u64,
}

impl Likelihood {
    fn new() -> Self {
        Likelihood {
            ring: std::collections::VecDeque::new(),
            mean: 0.0,
            var: 0.0,
            seen: 0,
        }
    }

    /// The short mean after adding `r`.
    fn short_mean(&self, cfg: &AutoConfig, r: f64) -> f64 {
        let full = self.ring.len() >= cfg.lik_short;
        let skip = usize::from(full);
        let sum: f64 = self.ring.iter().skip(skip).sum::<f64>() + r;
        sum / (self.ring.len() - skip + 1) as f64
    }

    /// Evidence (−log10 tail probability) of raw surprise `r`.
    fn evidence(&self, cfg: &AutoConfig, r: f64) -> f64 {
        if self.seen < cfg.lik_warmup {
            return 0.0;
        }
        let m = self.short_mean(cfg, r);
        let sd = self.var.sqrt().max(cfg.lik_min_std);
        neg_log10_q((m - self.mean) / sd).min(50.0)
    }

    fn learn(&mut self, cfg: &AutoConfig, r: f64) {
        let m = self.short_mean(cfg, r);
        if self.ring.len() >= cfg.lik_short {
            self.ring.pop_front();
        }
        self.ring.push_back(r);
        let a = (1.0 - (-std::f64::consts::LN_2 / cfg.lik_half_life.max(1.0)).exp())
            .max(1.0 / (self.seen as f64 + 1.0));
        let d = m - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
        self.seen += 1;
    }
}

/// What [`Auto::evaluate`] computes for a point (before learning).
struct Eval {
    scored: Scored,
    s: f64,
    expected: f64,
    base: FeatEval,
    /// Seasonal residual (normalised by its phase scale), the raw one, and its features.
    sres: f64,
    sraw: f64,
    seas: Option<FeatEval>,
}

impl Auto {
    pub fn new(cfg: AutoConfig) -> Self {
        Auto {
            n: 0,
            base: Features::new(&cfg),
            seas: Features::new(&cfg),
            last_x: f64::NAN,
            last_ts: i64::MIN,
            steps: SortedWindow::new(31),
            period: cfg.period,
            season: std::collections::VecDeque::new(),
            run: 0,
            max_run: 0.0,
            changes: 0,
            gate: std::collections::VecDeque::new(),
            hold_until: 0,
            lik: Likelihood::new(),
            ew_s: [0.0; 2],
            phase: Vec::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &AutoConfig {
        &self.cfg
    }

    /// The seasonal period in use (0 = none yet).
    pub fn period(&self) -> usize {
        if self.period == usize::MAX {
            0
        } else {
            self.period
        }
    }

    /// Phase bucket of the current point (None when phase scaling is off or no period).
    fn phase_bucket(&self) -> Option<usize> {
        let p = self.period;
        (self.cfg.phase_buckets > 0 && p > 0 && p != usize::MAX)
            .then(|| (self.n as usize % p) * self.cfg.phase_buckets / p)
    }

    /// (scale of the current phase bucket, mean scale over the known buckets); (1, 1) if off.
    fn phase_scale(&self) -> (f64, f64) {
        let Some(b) = self.phase_bucket() else {
            return (1.0, 1.0);
        };
        const MIN: u64 = 4;
        let (mut sum, mut k) = (0.0, 0usize);
        for &(sc, c) in &self.phase {
            if c >= MIN {
                sum += sc;
                k += 1;
            }
        }
        if k == 0 || !sum.is_finite() || sum <= 0.0 {
            return (1.0, 1.0);
        }
        let m = sum / k as f64;
        let s = match self.phase.get(b) {
            Some(&(sc, c)) if c >= MIN => sc,
            _ => m,
        };
        (s.max(0.1 * m), m)
    }

    fn learn_phase(&mut self, sraw: f64) {
        let Some(b) = self.phase_bucket() else {
            return;
        };
        if self.phase.len() != self.cfg.phase_buckets {
            self.phase = vec![(0.0, 0); self.cfg.phase_buckets];
        }
        let (sc, c) = self.phase[b];
        let a = (1.0 / (c as f64 + 1.0)).max(self.cfg.phase_alpha);
        let v = if c >= 4 && sc > 0.0 {
            sraw.abs().min(4.0 * sc)
        } else {
            sraw.abs()
        };
        self.phase[b] = (sc + a * (v - sc), c + 1);
    }

    fn evaluate(&self, value: f64) -> Option<Eval> {
        if (self.n as usize) < self.cfg.warmup || !self.base.ready() {
            return None;
        }
        let base = self.base.eval(value, self.cfg.short);
        let mut sres = f64::NAN;
        let mut sraw = f64::NAN;
        let mut seas = None;
        let (ps, pm) = self.phase_scale();
        if self.period > 0 && self.season.len() == self.period {
            if let Some(&lag) = self.season.front() {
                sraw = value - lag;
                sres = sraw / ps;
                if self.seas.ready()
                    && self.seas.lvl.len() >= self.period.min(self.cfg.level_window)
                {
                    seas = Some((lag, self.seas.eval(sres, self.cfg.short)));
                }
            }
        }
        // Use the seasonal residual when the seasonal model explains most of the spread.
        let better =
            self.cfg.select_half_life > 0.0 && self.ew_s[1] < self.cfg.select_ratio * self.ew_s[0];
        let by_scale = !(self.cfg.select_only_evidence && self.cfg.select_half_life > 0.0);
        let use_seas = seas.filter(|(_, e)| {
            better || (by_scale && e.scale * pm < self.cfg.seasonal_ratio * base.scale)
        });
        let (fe, expected, band) = match use_seas {
            Some((lag, e)) => (e, lag + e.med * ps, 3.0 * e.scale * ps),
            None => (base, base.med, 3.0 * base.scale),
        };
        let mut s = fe.s;
        let mut kind = match (fe.arg, use_seas.is_some()) {
            (0, false) if fe.z > 0.0 => Kind::Spike,
            (0, false) => Kind::Dip,
            (_, true) if fe.arg == 0 && fe.s < 6.0 => Kind::SeasonalBreak,
            (0, true) if fe.z > 0.0 => Kind::Spike,
            (0, true) => Kind::Dip,
            (1, _) => Kind::VarianceChange,
            _ => Kind::LevelShift,
        };
        // Flatline: identical values for far longer than ever seen.
        let run = if value == self.last_x {
            self.run + 1
        } else {
            0
        };
        let lim = 3.0 * self.max_run.max(4.0);
        if run as f64 > lim && self.n > 200 && self.changes >= 20 {
            let sf = ((run as f64) / lim).log2() + self.cfg.s_outside;
            if sf > s {
                s = sf;
                kind = Kind::Flatline;
            }
        }
        let score = s / (s + 4.0);
        let outside = s >= self.cfg.s_outside;
        Some(Eval {
            scored: Scored {
                expected,
                lower: expected - band,
                upper: expected + band,
                score,
                sigma: (value - expected) / (band / 3.0),
                is_anomaly: false,
                outside,
                kind: outside.then_some(kind),
            },
            s,
            expected,
            base,
            sres,
            sraw,
            seas: seas.map(|(_, e)| e),
        })
    }

    /// Ungated score (no learning).
    pub fn score(&self, value: f64) -> Scored {
        match self.evaluate(value) {
            Some(e) => {
                let mut sc = e.scored;
                if self.cfg.lik_short > 0 {
                    let l = self.lik.evidence(&self.cfg, e.s / (e.s + self.cfg.lik_k))
                        + self.cfg.lik_mix * e.s;
                    sc.score = l / (l + 5.0);
                }
                sc.is_anomaly = sc.score >= self.cfg.threshold;
                sc
            }
            None => Scored::warming_up(),
        }
    }

    /// Score (gated) then learn.
    pub fn update(&mut self, ts: i64, value: f64) -> Scored {
        let ev = self.evaluate(value);
        let mut out = Scored::warming_up();
        let mut clean = value;
        if let Some(e) = &ev {
            out = e.scored;
            // Gating: emit only a new maximum of the evidence over the last `refractory` points.
            let r = self.cfg.refractory as u64;
            while self.gate.front().is_some_and(|g| g.0 + r <= self.n) {
                self.gate.pop_front();
            }
            let s = if self.cfg.lik_short > 0 {
                let raw = e.s / (e.s + self.cfg.lik_k);
                let s = self.lik.evidence(&self.cfg, raw) + self.cfg.lik_mix * e.s;
                self.lik.learn(&self.cfg, raw);
                out.score = s / (s + 5.0);
                s
            } else {
                e.s
            };
            let prev = self.gate.front().map_or(0.0, |g| g.1);
            let emit = s >= 1.0 && s > prev + self.cfg.gate_margin && self.n >= self.hold_until;
            if !emit {
                out.score = 0.0;
            } else if s >= self.cfg.s_hold {
                self.hold_until = self.n + 1 + self.cfg.holdoff as u64;
            }
            let s = if emit || !self.cfg.gate_emitted {
                s
            } else {
                0.0
            };
            while self.gate.back().is_some_and(|g| g.1 <= s) {
                self.gate.pop_back();
            }
            self.gate.push_back((self.n, s));
            if e.scored.outside {
                clean = e.expected;
            }
            out.is_anomaly = out.score >= self.cfg.threshold;
            if self.cfg.select_half_life > 0.0 {
                if let Some(se) = &e.seas {
                    let a = 1.0 - (-std::f64::consts::LN_2 / self.cfg.select_half_life).exp();
                    self.ew_s[0] += a * (e.base.s.min(10.0) - self.ew_s[0]);
                    self.ew_s[1] += a * (se.s.min(10.0) - self.ew_s[1]);
                }
            }
            // Tails learn from normal points only (SPOT does the same).
            let clip = self.cfg.tail_clip_s;
            let normal = clip > 0.0 || e.s < self.cfg.tail_learn_s;
            self.base.learn(value, normal.then_some(&e.base.fs), clip);
            if e.sres.is_finite() {
                let fs = e.seas.as_ref().map(|f| f.fs);
                self.seas
                    .learn(e.sres, fs.as_ref().filter(|_| normal), clip);
                self.learn_phase(e.sraw);
            }
        } else {
            self.base.learn(value, None, 0.0);
        }
        self.learn_windows(ts, value, clean);
        out
    }

    fn learn_windows(&mut self, ts: i64, value: f64, clean: f64) {
        if self.last_x.is_finite() {
            if value == self.last_x {
                self.run += 1;
            } else {
                self.max_run = self.max_run.max(self.run as f64);
                self.changes += 1;
                self.run = 0;
            }
        }
        if self.last_ts != i64::MIN && ts > self.last_ts {
            self.steps.push((ts - self.last_ts) as f64);
        }
        self.last_x = value;
        self.last_ts = ts;
        self.n += 1;
        if self.cfg.seasonal && self.period == 0 && self.steps.len() >= 16 {
            let step = self.steps.median();
            if step > 0.0 {
                let p = (86_400e6 / step).round();
                self.period = if (8.0..=2048.0).contains(&p) {
                    p as usize
                } else {
                    usize::MAX
                };
            }
        }
        if self.period > 0 && self.period != usize::MAX && self.cfg.seasonal {
            if self.season.len() == self.period {
                self.season.pop_front();
            }
            self.season.push_back(clean);
        }
    }
}
