//! `auto`: an untuned, causal, bounded-state combination of detectors with event gating.
//!
//! Per point it computes several robust deviation features, each in robust sigmas:
//! 1. level: |x − median| / scale over a long sliding window (spikes, dips, fast level shifts);
//! 2. change: the same on first differences (sudden jumps, variance bursts);
//! 3. short mean: |mean of the last few points − median| / scale (sustained moderate shifts);
//! 4. seasonal: the lag-P difference x_t − x̃_{t−P} against its own robust scale, where P is one
//!    day in samples (from the sampling step) or `period`, and x̃ is the cleaned history (anomalous
//!    points are replaced by their expected value so that an event does not echo one period later);
//! 5. flatline: a run of identical values much longer than any run seen before.
//!
//! Each feature's tail is calibrated per series by a Generalized Pareto fit over a threshold
//! (SPOT, Siffer et al. 2017, see [`crate::tail`]), so a score means the same tail probability on
//! every series. The combined evidence is S = −log10(min_i p_i · m) (Bonferroni over m features)
//! and the raw score is S / (S + 4) (0.5 at p = 1e-4).
//!
//! Event gating: a point emits its score only if it opens an event, i.e. it is the first point
//! above the on-level after a quiet period, or it beats the strongest emission of the current
//! event by a factor of 10 in probability; otherwise the emitted score is 0. An event ends after
//! `refractory` points without an outside point. `outside` stays true while the point is abnormal
//! so the caller can extend the episode.

use serde::{Deserialize, Serialize};

use crate::tail::GpdTail;
use crate::window::SortedWindow;
use crate::{Kind, Scored};

/// Tunables of `auto` (the defaults are the product; the NAB example uses nothing else).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoConfig {
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
    /// Score threshold for `is_anomaly`.
    pub threshold: f64,
}

impl Default for AutoConfig {
    fn default() -> Self {
        AutoConfig {
            level_window: 256,
            diff_window: 256,
            short: 6,
            warmup: 24,
            period: 0,
            seasonal: true,
            seasonal_ratio: 0.5,
            tail_u: 2.5,
            tail_half_life: 20_000.0,
            s_outside: 3.0,
            refractory: 30,
            gate_margin: 1.0,
            threshold: 0.5,
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

    fn learn(&mut self, x: f64, fs: Option<&[f64; 3]>) {
        if let Some(fs) = fs {
            for (t, f) in self.tails.iter_mut().zip(fs) {
                t.learn(*f);
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
}

/// What [`Auto::evaluate`] computes for a point (before learning).
struct Eval {
    scored: Scored,
    s: f64,
    expected: f64,
    base: FeatEval,
    /// Seasonal residual and its features.
    sres: f64,
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

    fn evaluate(&self, value: f64) -> Option<Eval> {
        if (self.n as usize) < self.cfg.warmup || !self.base.ready() {
            return None;
        }
        let base = self.base.eval(value, self.cfg.short);
        let mut sres = f64::NAN;
        let mut seas = None;
        if self.period > 0 && self.season.len() == self.period {
            if let Some(&lag) = self.season.front() {
                sres = value - lag;
                if self.seas.ready()
                    && self.seas.lvl.len() >= self.period.min(self.cfg.level_window)
                {
                    seas = Some((lag, self.seas.eval(sres, self.cfg.short)));
                }
            }
        }
        // Use the seasonal residual when the seasonal model explains most of the spread.
        let use_seas = seas.filter(|(_, e)| e.scale < self.cfg.seasonal_ratio * base.scale);
        let (fe, expected, band) = match use_seas {
            Some((lag, e)) => (e, lag + e.med, 3.0 * e.scale),
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
            seas: seas.map(|(_, e)| e),
        })
    }

    /// Ungated score (no learning).
    pub fn score(&self, value: f64) -> Scored {
        match self.evaluate(value) {
            Some(e) => {
                let mut sc = e.scored;
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
            let prev = self.gate.front().map_or(0.0, |g| g.1);
            if !(e.s >= 1.0 && e.s > prev + self.cfg.gate_margin) {
                out.score = 0.0;
            }
            while self.gate.back().is_some_and(|g| g.1 <= e.s) {
                self.gate.pop_back();
            }
            self.gate.push_back((self.n, e.s));
            if e.scored.outside {
                clean = e.expected;
            }
            out.is_anomaly = out.score >= self.cfg.threshold;
            // Tails learn from normal points only (SPOT does the same).
            let normal = !e.scored.outside;
            self.base.learn(value, normal.then_some(&e.base.fs));
            if e.sres.is_finite() {
                let fs = e.seas.as_ref().map(|f| f.fs);
                self.seas.learn(e.sres, fs.as_ref().filter(|_| normal));
            }
        } else {
            self.base.learn(value, None);
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
