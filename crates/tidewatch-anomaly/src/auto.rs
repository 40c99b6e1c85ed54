//! `auto`: an untuned, causal, bounded-state detector for one series ([`Auto`]) or one device of
//! several series ([`MultiAuto`]), with event gating.
//!
//! A value column is judged by a [`Channel`]: five robust deviation features, each in robust
//! sigmas, against robust exponentially weighted estimates ([`EwRobust`], O(1) per point):
//! 1. level: |x − location| / scale (spikes, dips, fast level shifts);
//! 2. jump: the change from the last value (or from the one before, whichever is smaller, so
//!    that returning from a one-point spike is not a second jump) against the robust scale of
//!    the changes (sudden jumps, variance bursts);
//! 3. short mean: |mean of the last few points − location| / scale (sustained moderate shifts);
//! 4. range: how far beyond the highest or lowest value seen (a long memory drawn slowly back
//!    towards the level) the value is, in the level's scale (a value new to the series);
//! 5. drift: the short mean against a slow robust level (a ramp or a shift the fast level
//!    follows);
//!
//! and the same five on the seasonal residual when the sampling implies a day (x − x̃ one day
//! earlier, x̃ the cleaned history in at most 1,440 slots a day, each the mean of its points,
//! divided by the typical |residual| of its hour of the day); the seasonal model replaces the
//! plain one when its recent mean evidence is below `select_ratio` times the plain model's. A
//! flatline rule adds evidence for a run of identical values far longer than any seen.
//!
//! Each feature's tail probability comes from its own history (see [`crate::tail`]): the share
//! of past points at least as deviant (a long, decayed memory, so a deviation the series makes
//! regularly is not rare), and beyond anything seen a Generalized Pareto tail learned with
//! winsorised values (SPOT, Siffer et al. 2017), so past anomalies cannot desensitise it without
//! bound and normal history never does. The range feature has no rarity memory (an exceedance
//! moves the range, so it recurs only where the range has decayed between repeats, and its size
//! is counted in a scale that collapses between the moves of a piecewise-constant series): its
//! tail is the parametric one alone. The evidence of a point is S = −log10(min_i p_i · m)
//! (Bonferroni over the m features).
//!
//! Emission ([`Emitter`]): the HTM anomaly likelihood (Ahmad, Lavin, Purdy & Agha 2017, "Unsupervised
//! real-time anomaly detection for streaming data"): the raw surprise r = S / (S + `lik_k`) is
//! averaged over the last `lik_short` points and compared with the exponentially weighted mean
//! and spread of that average (half-life `lik_half_life`); the emitted evidence is
//! L = −log10 of its Gaussian tail probability and the score L / (L + 5), so that a score means
//! the same on every series: a series that is often surprising needs a larger surprise. A point
//! emits its score only if L ≥ 1 and L beats the largest L of the last `refractory` points by
//! `gate_margin` (log10 units); after an alarm (L ≥ `s_hold`) the next `holdoff` points emit 0
//! (one alarm per event). `outside` (from S) stays true while a point is abnormal, so that
//! callers can extend an episode.
//!
//! A device ([`MultiAuto`]) keeps one channel per sensor; its evidence is the rarity, in the
//! device's own history, of the most surprised sensor and of the summed excess surprise of all
//! sensors (several sensors mildly surprised at once), and the same emission follows. Which
//! sensors contributed is the share of each in that surprise.
//!
//! Cost: O(1) time per point and per sensor, no allocation once the period is known; the state
//! is a few kB plus at most 1,440 seasonal slots per channel.

use serde::{Deserialize, Serialize};

use crate::tail::{GpdTails, TAILS};
use crate::{Kind, Scored};

/// Tunables of `auto` (the defaults are the product; see `benches/RESULTS.md` for how each was
/// chosen, leave one group out).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AutoConfig {
    /// Robust EW location and scale ([`EwRobust`]) of the values and of the changes: smoothing
    /// of the location (`alpha`) and of the scale (`alpha_dev`), and their Huber clips in σ.
    pub alpha: f64,
    pub alpha_dev: f64,
    pub clip: f64,
    pub clip_dev: f64,
    /// Points of seasonal residual the seasonal features learn before they may be used (at most
    /// one period).
    pub seas_warmup: usize,
    /// Points of the short mean (at most 8).
    pub short: usize,
    pub warmup: usize,
    /// Seasonal period in samples (0 = one day from the sampling step).
    pub period: usize,
    pub seasonal: bool,
    /// Tail threshold (robust sigmas), tail memory (half-life in points) and the winsorising
    /// level of the parametric tails (10^−`tail_clip_s`).
    pub tail_u: f64,
    pub tail_half_life: f64,
    pub tail_clip_s: f64,
    /// Evidence (−log10 p) above which a point is `outside`.
    pub s_outside: f64,
    /// Gating window: a point emits only if its evidence beats every point of the last
    /// `refractory` points by `gate_margin` (log10 units).
    pub refractory: usize,
    pub gate_margin: f64,
    /// Hold-off: after an emitted point with evidence ≥ `s_hold`, the next `holdoff` points emit 0.
    pub holdoff: usize,
    pub s_hold: f64,
    /// Anomaly likelihood (see the module documentation); `lik_short` = 0 emits S directly.
    pub lik_short: usize,
    pub lik_half_life: f64,
    pub lik_min_std: f64,
    pub lik_warmup: u64,
    pub lik_k: f64,
    /// Model selection: the seasonal model is used when its recent mean evidence (this half-life
    /// in points) is below `select_ratio` times the plain model's.
    pub select_half_life: f64,
    pub select_ratio: f64,
    /// Phase scaling of the seasonal residual: buckets per day and their smoothing.
    pub phase_buckets: usize,
    pub phase_alpha: f64,
    /// Range memory: the highest and lowest values seen are drawn back towards the level by this
    /// factor per point.
    pub range_alpha: f64,
    /// Smoothing of the slow level the drift feature compares the short mean with (0 = off).
    pub drift_alpha: f64,
    /// The jump is measured from the last value or from the one before, whichever is smaller.
    pub jump_two: bool,
    /// A point's own evidence, normalised by the series' recent surprise, passes the likelihood
    /// layer less this offset (the layer averages a point with the one before it: a lone spike
    /// needs its own say).
    pub pass_offset: f64,
    /// Score threshold for `is_anomaly`.
    pub threshold: f64,
    /// Devices: a sensor adds to the summed surprise what its evidence exceeds this by.
    pub mv_excess: f64,
}

impl Default for AutoConfig {
    fn default() -> Self {
        AutoConfig {
            alpha: 0.007,
            alpha_dev: 0.0193,
            clip: 4.66,
            clip_dev: 1.72,
            seas_warmup: 64,
            short: 6,
            warmup: 24,
            period: 0,
            seasonal: true,
            tail_u: 2.94,
            tail_half_life: 50_000.0,
            tail_clip_s: 4.0,
            s_outside: 3.0,
            refractory: 15,
            gate_margin: 1.0,
            holdoff: 40,
            s_hold: 5.03,
            lik_short: 2,
            lik_half_life: 348.5,
            lik_min_std: 0.091,
            lik_warmup: 100,
            lik_k: 4.0,
            select_half_life: 1000.0,
            select_ratio: 0.2816,
            phase_buckets: 24,
            phase_alpha: 0.0385,
            range_alpha: 1e-4,
            drift_alpha: 1e-3,
            jump_two: true,
            pass_offset: 0.0,
            threshold: 0.5,
            mv_excess: 1.0,
        }
    }
}

/// Smoothing factor of an exponential average with this half-life in points: 1 − 2^(−1/h).
fn ew_factor(half_life: f64) -> f64 {
    1.0 - (-std::f64::consts::LN_2 / half_life).exp()
}

/// max/min as one compare (no NaN handling; the hot path keeps its operands NaN-free, and
/// `f64::max`/`min` cost several instructions each).
#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn fmin(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// √(π/2): E|X − μ| = σ·√(2/π) for a Gaussian.
const MEAN_ABS_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// Points of plain running mean / mean absolute deviation before clipping starts.
const EW_WARM: u32 = 8;
/// Rate of [`EwRobust`]'s slow deviation (half-life ≈ 700 points) and the fraction of it that
/// floors the scale.
const SLOW_ALPHA: f64 = 1e-3;
const FLOOR_FRAC: f64 = 0.05;

/// Robust exponentially weighted location and scale of a stream: O(1) time, four numbers.
///
/// The location is a Huber M-estimate in recursive (stochastic-approximation) form,
/// μ ← μ + a·clip(x − μ, ±c·σ) (Huber 1964; Robbins & Monro 1951); the scale is the EW mean
/// absolute deviation with its own clip, σ = √(π/2)·E|x − μ| (exact for Gaussian data). A lone
/// outlier moves μ by at most a·c·σ; a persistent shift grows σ geometrically until μ follows.
/// Both are running means (a = 1/n) while n < 1/a. The scale is floored by a fraction of a slow,
/// unclipped mean absolute deviation, so that a mostly constant series with rare pulses keeps one
/// stable scale (the clipped one decays towards zero between pulses, which made each pulse look
/// larger than the last), and by a relative epsilon on a constant history (any change is then far
/// out).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EwRobust {
    loc: f64,
    dev: f64,
    n: u32,
    slow: f64,
}

/// Smoothing factors and clips of [`EwRobust`].
#[derive(Clone, Copy, Debug)]
pub struct EwParams {
    pub alpha: f64,
    pub alpha_dev: f64,
    pub clip: f64,
    pub clip_dev: f64,
}

impl EwRobust {
    pub fn len(&self) -> u32 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The location (0 when empty).
    pub fn loc(&self) -> f64 {
        self.loc
    }

    #[inline(always)]
    fn floor(&self) -> f64 {
        fmax(1e-9 * fmax(self.loc.abs(), 1e-3), FLOOR_FRAC * self.slow)
    }

    /// σ-equivalent scale, never zero.
    #[inline(always)]
    pub fn sigma(&self) -> f64 {
        fmax(MEAN_ABS_TO_SIGMA * self.dev, self.floor())
    }

    /// Learn a finite `x`.
    #[inline(always)]
    pub fn push(&mut self, x: f64, p: &EwParams) {
        let d = x - self.loc;
        if self.n < EW_WARM {
            // Running mean and mean absolute deviation.
            self.n += 1;
            let a = 1.0 / self.n as f64;
            self.loc += a * d;
            self.dev += a * (d.abs() - self.dev);
            if self.n == 1 {
                self.dev = 0.0;
            }
            self.slow = self.dev;
            return;
        }
        if !d.is_finite() {
            // Overflow (values near f64::MAX): start again from this point. Only here can the
            // state become non-finite: with d finite, each update below moves a finite value
            // towards another (rates ≤ 1).
            *self = EwRobust::default();
            self.push(x, p);
            return;
        }
        let s = MEAN_ABS_TO_SIGMA * self.dev;
        let (ll, ld) = if s > self.floor() {
            (p.clip * s, p.clip_dev * s)
        } else {
            (f64::INFINITY, f64::INFINITY)
        };
        // Running means (a = 1/n) until 1/n falls below the smoothing factors; once it is below
        // the smallest, every rate is its factor (α·n ≥ min α·n ≥ 1), with no division.
        let n1 = self.n as f64 + 1.0;
        let (ra, rd, rs) = if n1 * fmin(fmin(p.alpha, p.alpha_dev), SLOW_ALPHA) >= 1.0 {
            (p.alpha, p.alpha_dev, SLOW_ALPHA)
        } else {
            let rate = |alpha: f64| if alpha * n1 < 1.0 { 1.0 / n1 } else { alpha };
            (rate(p.alpha), rate(p.alpha_dev), rate(SLOW_ALPHA))
        };
        let ad = d.abs();
        self.loc += ra * fmin(fmax(d, -ll), ll);
        self.dev += rd * (fmin(ad, ld) - self.dev);
        self.slow += rs * (ad - self.slow);
        self.n = self.n.saturating_add(1);
    }
}

/// log10(5): the Bonferroni factor of the five features.
const LOG10_M: f64 = 0.698_970_004_336_018_8;

/// Index of the range feature among the five (see the module documentation).
const RANGE: usize = 3;

/// Longest short mean (`AutoConfig::short` and `lik_short` are clamped to it).
const SHORT_MAX: usize = 8;

/// Push `x` at the front of a newest-first array.
#[inline]
fn shift_in(a: &mut [f64; SHORT_MAX], x: f64) {
    a.copy_within(0..SHORT_MAX - 1, 1);
    a[0] = x;
}

/// Robust deviation features of one stream (the values, or the seasonal residuals).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Features {
    lvl: EwRobust,
    dif: EwRobust,
    /// A slow robust level (the drift feature's reference).
    slow: EwRobust,
    last: f64,
    last2: f64,
    /// The last values, newest first (for the short mean).
    recent: [f64; SHORT_MAX],
    /// Range memory: the highest and lowest values seen, drawn back towards the level.
    hi: f64,
    lo: f64,
    tails: GpdTails,
}

/// The features of a point, their evidence and the winning feature.
#[derive(Clone, Copy, Debug)]
pub struct FeatEval {
    fs: [f64; TAILS],
    /// Evidence −log10 p (Bonferroni over the features) and the winning feature.
    s: f64,
    arg: usize,
    z: f64,
    med: f64,
    scale: f64,
}

impl Features {
    fn new(cfg: &AutoConfig) -> Self {
        Features {
            lvl: EwRobust::default(),
            dif: EwRobust::default(),
            slow: EwRobust::default(),
            last: f64::NAN,
            last2: f64::NAN,
            recent: [0.0; SHORT_MAX],
            hi: f64::NAN,
            lo: f64::NAN,
            tails: GpdTails::new(
                cfg.tail_u,
                200.0,
                0.02,
                0.6,
                cfg.tail_half_life,
                -cfg.tail_clip_s,
            ),
        }
    }

    fn len(&self) -> usize {
        self.lvl.len() as usize
    }

    fn ready(&self) -> bool {
        self.lvl.len() >= 8 && self.dif.len() >= 4
    }

    #[inline(always)]
    fn eval(&self, x: f64, cfg: &AutoConfig) -> FeatEval {
        let med = self.lvl.loc();
        let sc = self.lvl.sigma();
        let inv = 1.0 / sc;
        let z = (x - med) * inv;
        let mut fs = [z.abs(), 0.0, 0.0, 0.0, 0.0];
        // The jump from the last value or from the one before, whichever is smaller (NaN-safe:
        // the first comparison wins).
        let md = self.dif.loc();
        let (d1, d2) = (
            (x - self.last - md).abs(),
            (x - self.last2 - 2.0 * md).abs(),
        );
        fs[1] = if cfg.jump_two && d2 < d1 { d2 } else { d1 } / self.dif.sigma();
        let k = cfg.short.min(self.len());
        if k > 1 {
            let mean = (self.recent[..k - 1].iter().sum::<f64>() + x) / k as f64;
            fs[2] = ((mean - med) * inv).abs();
            if !self.slow.is_empty() {
                fs[4] = (mean - self.slow.loc()).abs() / self.slow.sigma();
            }
        }
        // Beyond the range seen so far (false while the range is unknown: NaN compares false).
        if x > self.hi {
            fs[3] = (x - self.hi) * inv;
        } else if x < self.lo {
            fs[3] = (self.lo - x) * inv;
        }
        let mut best = 0.0f64;
        let mut arg = 0;
        for (i, f) in fs.iter().enumerate() {
            // The range feature's tail is the parametric one alone: an exceedance moves the
            // range, so it seldom recurs, and in the rarity memory the first moves of a series
            // that had been constant (a scale near zero: an enormous z) capped every later
            // exceedance's evidence at log10 of the points seen (MSL M-6: a jump to 130 times
            // the range ever seen scored 0.48). Spike trains whose range decays between spikes
            // lose a little (benches/RESULTS.md).
            let l = -self.tails.log10_sf_with(i, *f, i != RANGE);
            if l > best {
                best = l;
                arg = i;
            }
        }
        FeatEval {
            fs,
            s: fmax(best - LOG10_M, 0.0),
            arg,
            z,
            med,
            scale: sc,
        }
    }

    #[inline(always)]
    fn learn(&mut self, x: f64, fs: Option<&[f64; TAILS]>, cfg: &AutoConfig) {
        if let Some(fs) = fs {
            self.tails.learn(fs);
        }
        let st = EwParams {
            alpha: cfg.alpha,
            alpha_dev: cfg.alpha_dev,
            clip: cfg.clip,
            clip_dev: cfg.clip_dev,
        };
        if self.last.is_finite() {
            self.dif.push(x - self.last, &st);
        }
        self.lvl.push(x, &st);
        if cfg.drift_alpha > 0.0 {
            let sp = EwParams {
                alpha: cfg.drift_alpha,
                alpha_dev: cfg.drift_alpha,
                ..st
            };
            self.slow.push(x, &sp);
        }
        if self.hi.is_nan() {
            (self.hi, self.lo) = (x, x);
        } else {
            let (loc, a) = (self.lvl.loc(), cfg.range_alpha);
            self.hi = fmax(x, self.hi - a * (self.hi - loc));
            self.lo = fmin(x, self.lo + a * (loc - self.lo));
        }
        shift_in(&mut self.recent, x);
        self.last2 = self.last;
        self.last = x;
    }
}

/// At most this many seasonal slots a day: a faster sampling averages its points per slot.
const MAX_SLOTS: usize = 1440;
/// Longest day in points that still gets a seasonal model (one point a second).
const MAX_DAY_POINTS: f64 = 86_400.0;
/// Updates before a phase bucket's scale is trusted.
const PHASE_MIN: u64 = 4;

/// One value column judged against its own history: features, seasonal model, flatline rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    n: u64,
    base: Features,
    seas: Features,
    last_x: f64,
    last_ts: i64,
    /// The first sampling steps (µs), to find the daily period; emptied once it is known.
    steps: Vec<f64>,
    /// Seasonal period in points once known (0 = not yet, usize::MAX = none).
    period: usize,
    /// Points per seasonal slot.
    block: usize,
    /// Phase of the current point (0..period), its phase bucket and where the next one starts.
    pos: usize,
    bucket: usize,
    next_edge: usize,
    /// Cleaned history: per slot, the mean of its points one period ago; slots written so far
    /// (the lag is ready after a full period); the slot being accumulated.
    season: Vec<f64>,
    filled: usize,
    acc: f64,
    acc_n: u32,
    /// Flatline: current run of identical values, the longest seen, and changes seen.
    run: u64,
    max_run: f64,
    changes: u64,
    /// Exponentially weighted mean evidence of the plain and the seasonal model.
    ew_s: [f64; 2],
    /// Per phase bucket: typical |seasonal residual| and its number of updates; the sum of the
    /// scales of the buckets with at least `PHASE_MIN` updates, and how many there are.
    phase: Vec<(f64, u64)>,
    phase_sum: f64,
    phase_known: u32,
}

/// What [`Channel::evaluate`] computes for a point (before learning).
#[derive(Clone, Copy, Debug)]
pub struct ChannelEval {
    /// The verdict (its `score` is S / (S + 4), ungated).
    pub scored: Scored,
    /// Evidence −log10 p.
    pub s: f64,
    expected: f64,
    base: FeatEval,
    /// Seasonal residual (normalised by its phase scale), the raw one, and its features.
    sres: f64,
    sraw: f64,
    seas: Option<FeatEval>,
}

impl Channel {
    pub fn new(cfg: &AutoConfig) -> Self {
        let mut c = Channel {
            n: 0,
            base: Features::new(cfg),
            seas: Features::new(cfg),
            last_x: f64::NAN,
            last_ts: i64::MIN,
            steps: Vec::new(),
            period: 0,
            block: 1,
            pos: 0,
            bucket: 0,
            next_edge: 0,
            season: Vec::new(),
            filled: 0,
            acc: 0.0,
            acc_n: 0,
            run: 0,
            max_run: 0.0,
            changes: 0,
            ew_s: [0.0; 2],
            phase: Vec::new(),
            phase_sum: 0.0,
            phase_known: 0,
        };
        if cfg.period > 0 {
            c.set_period(cfg, cfg.period, 0);
        }
        c
    }

    /// Invariants the update relies on (a decoded state may come from anywhere).
    fn check(&self, cfg: &AutoConfig) -> Result<(), String> {
        let slots = self.slots();
        let ring = !self.has_period()
            || (self.block >= 1
                && self.pos < self.period
                && self.season.len() == slots
                && slots <= MAX_SLOTS
                && (self.phase.is_empty() || self.phase.len() == cfg.phase_buckets)
                && (cfg.phase_buckets == 0 || self.bucket < cfg.phase_buckets));
        let sizes = cfg.phase_buckets <= 1 << 16
            && self.steps.len() <= 64
            && (self.period == usize::MAX || self.period <= 1 << 24);
        if !(ring && sizes) {
            return Err("auto state: inconsistent seasonal ring".into());
        }
        self.base.tails.check()?;
        self.seas.tails.check()
    }

    /// The seasonal period in use (0 = none yet).
    pub fn period(&self) -> usize {
        if self.period == usize::MAX {
            0
        } else {
            self.period
        }
    }

    fn has_period(&self) -> bool {
        self.period > 0 && self.period != usize::MAX
    }

    fn slots(&self) -> usize {
        if self.has_period() {
            self.period.div_ceil(self.block.max(1))
        } else {
            0
        }
    }

    fn set_period(&mut self, cfg: &AutoConfig, period: usize, pos: usize) {
        self.period = period;
        self.block = period.div_ceil(MAX_SLOTS).max(1);
        self.season = vec![0.0; self.slots()];
        self.filled = 0;
        self.acc = 0.0;
        self.acc_n = 0;
        self.set_phase(cfg, pos % period);
    }

    /// Phase bucket of the current point (None when phase scaling is off or no period).
    #[inline]
    fn phase_bucket(&self, cfg: &AutoConfig) -> Option<usize> {
        (cfg.phase_buckets > 0 && self.has_period()).then_some(self.bucket)
    }

    /// Set the phase to `pos`: bucket ⌊pos·B/P⌋, which ends where ⌈(b+1)·P/B⌉ starts.
    fn set_phase(&mut self, cfg: &AutoConfig, pos: usize) {
        let (p, b) = (self.period.max(1), cfg.phase_buckets.max(1));
        self.pos = pos;
        self.bucket = pos * b / p;
        self.next_edge = ((self.bucket + 1) * p).div_ceil(b);
    }

    /// (scale of the current phase bucket, mean scale over the known buckets); (1, 1) if off.
    #[inline]
    fn phase_scale(&self, cfg: &AutoConfig) -> (f64, f64) {
        let Some(b) = self.phase_bucket(cfg) else {
            return (1.0, 1.0);
        };
        let sum = self.phase_sum;
        if self.phase_known == 0 || !sum.is_finite() || sum <= 0.0 {
            return (1.0, 1.0);
        }
        let m = sum / self.phase_known as f64;
        let s = match self.phase.get(b) {
            Some(&(sc, c)) if c >= PHASE_MIN => sc,
            _ => m,
        };
        (fmax(s, 0.1 * m), m)
    }

    fn learn_phase(&mut self, cfg: &AutoConfig, sraw: f64) {
        let Some(b) = self.phase_bucket(cfg) else {
            return;
        };
        if self.phase.len() != cfg.phase_buckets {
            self.phase = vec![(0.0, 0); cfg.phase_buckets];
            self.phase_sum = 0.0;
            self.phase_known = 0;
        }
        let Some(&(sc, c)) = self.phase.get(b) else {
            return;
        };
        let c1 = c as f64 + 1.0;
        let a = if cfg.phase_alpha * c1 < 1.0 {
            1.0 / c1
        } else {
            cfg.phase_alpha
        };
        let v = if c >= PHASE_MIN && sc > 0.0 {
            fmin(sraw.abs(), 4.0 * sc)
        } else {
            sraw.abs()
        };
        let nsc = sc + a * (v - sc);
        self.phase[b] = (nsc, c + 1);
        if self.pos == 0 {
            // Once a period, recompute the sum exactly (no drift of the running sum).
            let known = self.phase.iter().filter(|p| p.1 >= PHASE_MIN);
            self.phase_sum = known.clone().map(|p| p.0).sum();
            self.phase_known = known.count() as u32;
        } else if c >= PHASE_MIN {
            self.phase_sum += nsc - sc;
        } else if c + 1 >= PHASE_MIN {
            self.phase_sum += nsc;
            self.phase_known += 1;
        }
    }

    /// The seasonal lag: the cleaned mean of this slot one period ago, once a period is stored.
    #[inline]
    fn lag(&self, cfg: &AutoConfig) -> Option<f64> {
        if cfg.seasonal && self.has_period() && self.filled >= self.season.len() {
            self.season.get(self.pos / self.block).copied()
        } else {
            None
        }
    }

    /// Judge `value` against the history (no learning); None while warming up.
    #[inline]
    pub fn evaluate(&self, cfg: &AutoConfig, value: f64) -> Option<ChannelEval> {
        if (self.n as usize) < cfg.warmup || !self.base.ready() {
            return None;
        }
        let base = self.base.eval(value, cfg);
        let mut sres = f64::NAN;
        let mut sraw = f64::NAN;
        let mut seas = None;
        let (ps, _) = self.phase_scale(cfg);
        if let Some(lag) = self.lag(cfg) {
            sraw = value - lag;
            sres = sraw / ps;
            if self.seas.ready() && self.seas.len() >= self.period.min(cfg.seas_warmup) {
                seas = Some((lag, self.seas.eval(sres, cfg)));
            }
        }
        // Use the seasonal residual when the seasonal model has explained the series better.
        let better = cfg.select_half_life > 0.0 && self.ew_s[1] < cfg.select_ratio * self.ew_s[0];
        let use_seas = seas.filter(|_| better);
        let (fe, expected, scale) = match use_seas {
            Some((lag, e)) => (e, lag + e.med * ps, e.scale * ps),
            None => (base, base.med, base.scale),
        };
        let band = 3.0 * scale;
        let mut s = fe.s;
        let mut kind = match (fe.arg, use_seas.is_some()) {
            (_, true) if fe.arg == 0 && fe.s < 6.0 => Kind::SeasonalBreak,
            (0 | 3, _) if fe.z > 0.0 => Kind::Spike,
            (0 | 3, _) => Kind::Dip,
            // A jump that leaves the value outside the band is a spike or dip, not noise.
            (1, _) if fe.z > 3.0 => Kind::Spike,
            (1, _) if fe.z < -3.0 => Kind::Dip,
            (1, _) => Kind::VarianceChange,
            _ => Kind::LevelShift,
        };
        // Flatline: identical values for far longer than ever seen.
        let run = if value == self.last_x {
            self.run + 1
        } else {
            0
        };
        let lim = 3.0 * fmax(self.max_run, 4.0);
        if run as f64 > lim && self.n > 200 && self.changes >= 20 {
            let sf = ((run as f64) / lim).log2() + cfg.s_outside;
            if sf > s {
                s = sf;
                kind = Kind::Flatline;
            }
        }
        let outside = s >= cfg.s_outside;
        Some(ChannelEval {
            scored: Scored {
                expected,
                lower: expected - band,
                upper: expected + band,
                score: s / (s + 4.0),
                sigma: (value - expected) / scale,
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

    /// Learn `value` (with its evaluation, None while warming up).
    #[inline]
    pub fn learn(
        &mut self,
        cfg: &AutoConfig,
        a_sel: f64,
        ts: i64,
        value: f64,
        ev: Option<&ChannelEval>,
    ) {
        let mut clean = value;
        if let Some(e) = ev {
            if e.scored.outside {
                clean = e.expected;
            }
            if cfg.select_half_life > 0.0 {
                if let Some(se) = &e.seas {
                    self.ew_s[0] += a_sel * (fmin(e.base.s, 10.0) - self.ew_s[0]);
                    self.ew_s[1] += a_sel * (fmin(se.s, 10.0) - self.ew_s[1]);
                }
            }
            // The tails learn from every point (winsorised, see `crate::tail`).
            self.base.learn(value, Some(&e.base.fs), cfg);
            if e.sres.is_finite() {
                self.seas.learn(e.sres, e.seas.as_ref().map(|f| &f.fs), cfg);
                self.learn_phase(cfg, e.sraw);
            }
        } else {
            self.base.learn(value, None, cfg);
        }
        self.learn_windows(cfg, ts, value, clean);
    }

    fn learn_windows(&mut self, cfg: &AutoConfig, ts: i64, value: f64, clean: f64) {
        if self.last_x.is_finite() {
            if value == self.last_x {
                self.run += 1;
            } else {
                self.max_run = fmax(self.max_run, self.run as f64);
                self.changes += 1;
                self.run = 0;
            }
        }
        let find_period = cfg.seasonal && self.period == 0;
        if find_period && self.last_ts != i64::MIN && ts > self.last_ts {
            self.steps.push((ts - self.last_ts) as f64);
        }
        self.last_x = value;
        self.last_ts = ts;
        self.n += 1;
        if find_period && self.steps.len() >= 16 {
            // The period is one day in median sampling steps.
            self.steps.sort_by(f64::total_cmp);
            let step = 0.5 * (self.steps[7] + self.steps[8]);
            self.steps = Vec::new();
            let p = (86_400e6 / step).round();
            if (8.0..=MAX_DAY_POINTS).contains(&p) {
                self.set_period(cfg, p as usize, (self.n % p as u64) as usize);
            } else {
                self.period = usize::MAX;
            }
            return;
        }
        if !self.has_period() {
            return;
        }
        // Accumulate the slot; at its end, store its mean for the next period.
        self.acc += clean;
        self.acc_n += 1;
        let slot = self.pos / self.block;
        let mut pos = self.pos + 1;
        if pos >= self.period {
            pos = 0;
        }
        if pos / self.block != slot {
            if let Some(v) = self.season.get_mut(slot) {
                *v = self.acc / f64::from(self.acc_n.max(1));
            }
            self.filled = self.filled.saturating_add(1);
            self.acc = 0.0;
            self.acc_n = 0;
        }
        if pos == 0 || pos >= self.next_edge {
            self.set_phase(cfg, pos);
        } else {
            self.pos = pos;
        }
    }
}

/// Sliding maximum over a window of points: a monotone deque of (index, value) with decreasing
/// values (Lemire 2006, "Streaming maximum-minimum filter using no more than three comparisons
/// per element"), O(1) amortised, in a ring whose capacity is a power of two (grown when full).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct MaxWindow {
    buf: Vec<(u64, f64)>,
    head: usize,
    len: usize,
}

impl MaxWindow {
    #[inline(always)]
    fn mask(&self) -> usize {
        self.buf.len().wrapping_sub(1)
    }

    fn ok(&self) -> bool {
        (self.buf.is_empty() || self.buf.len().is_power_of_two())
            && self.len <= self.buf.len()
            && (self.buf.is_empty() || self.head < self.buf.len())
            && self.buf.len() <= 1 << 24
    }

    /// Drop the entries with an index below `first`.
    #[inline(always)]
    fn expire(&mut self, first: u64) {
        while self.len > 0 && self.buf[self.head].0 < first {
            self.head = (self.head + 1) & self.mask();
            self.len -= 1;
        }
    }

    /// The maximum over the window (0 when empty).
    #[inline(always)]
    fn max(&self) -> f64 {
        if self.len > 0 {
            self.buf[self.head].1
        } else {
            0.0
        }
    }

    #[inline(always)]
    fn push(&mut self, i: u64, v: f64) {
        while self.len > 0 && self.buf[(self.head + self.len - 1) & self.mask()].1 <= v {
            self.len -= 1;
        }
        if self.len == self.buf.len() {
            let mut grown = Vec::with_capacity((2 * self.buf.len()).max(8));
            grown.extend((0..self.len).map(|k| self.buf[(self.head + k) & self.mask()]));
            grown.resize(grown.capacity(), (0, 0.0));
            self.buf = grown;
            self.head = 0;
        }
        let at = (self.head + self.len) & self.mask();
        self.buf[at] = (i, v);
        self.len += 1;
    }
}

/// ½·poly(t)·e^(−x²) = Q(z) for z = x√2 ≥ 0 is erfc by Abramowitz & Stegun 7.1.26 (|error| <
/// 1.5e-7); this is poly, with t = 1 / (1 + p·x).
#[inline(always)]
fn erfc_poly(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    t * (0.254_829_592
        + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))))
}

/// [`NEG_LOG10_Q`] covers z in [Z_LO, Z_HI] with `Q_TAB_N` intervals (below Z_LO the value is
/// under 5e-9).
const Q_TAB_N: usize = 4096;
const Z_LO: f64 = -4.0 * std::f64::consts::SQRT_2;
const Z_HI: f64 = 0.0;

/// −log10 Q(z) = −log10(1 − Q(|z|)) below the mean (z in [Z_LO, 0]) by the A&S 7.1.26 formula
/// ([`neg_log10_q_exact`]), tabulated at `Q_TAB_N` + 1 points (32 KB) and read by linear
/// interpolation: error < 7e-8 (a test checks it against the formula), below the formula's own.
/// The formula's exp and ln there took about a fifth of `auto`'s time per point (half the points
/// fall below the mean); above it, the formula itself (one ln) is kept.
static NEG_LOG10_Q: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
    (0..=Q_TAB_N + 1)
        .map(|i| neg_log10_q_exact(Z_LO + i as f64 * (Z_HI - Z_LO) / Q_TAB_N as f64))
        .collect()
});

/// −log10 Q(z) for z < 3 by the formula (the table's source).
fn neg_log10_q_exact(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    if z >= 0.0 {
        // −log10(½·poly·e^(−x²)) with one logarithm.
        return ((x * x - (0.5 * erfc_poly(x)).ln()) / std::f64::consts::LN_10).max(0.0);
    }
    if x > 4.0 {
        // Q(|z|) < 1e-8: −log10(1 − Q) < 5e-9.
        return 0.0;
    }
    -(1.0 - 0.5 * erfc_poly(x) * (-x * x).exp()).ln() / std::f64::consts::LN_10
}

/// −log10 of the standard normal upper tail Q(z), ≥ 0.
fn neg_log10_q(z: f64) -> f64 {
    if !z.is_finite() {
        return if z > 0.0 { 300.0 } else { 0.0 };
    }
    if z < Z_HI {
        let u = (z - Z_LO) * (Q_TAB_N as f64 / (Z_HI - Z_LO));
        if u < 0.0 {
            return 0.0;
        }
        let i = u as usize;
        let tab = &*NEG_LOG10_Q;
        return match (tab.get(i), tab.get(i + 1)) {
            (Some(&a), Some(&b)) => a + (b - a) * (u - i as f64),
            _ => neg_log10_q_exact(z),
        };
    }
    if z < 3.0 {
        return neg_log10_q_exact(z);
    }
    // Asymptotic (Mills ratio) expansion.
    let z2 = z * z;
    let ln_q = -0.5 * z2 - (z * (std::f64::consts::TAU).sqrt()).ln()
        + (1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)).ln();
    -ln_q / std::f64::consts::LN_10
}

/// The anomaly-likelihood layer (see the module documentation); O(`lik_short`) per point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Likelihood {
    /// The last raw surprises, newest first, and how many there are (≤ `SHORT_MAX`).
    recent: [f64; SHORT_MAX],
    len: usize,
    mean: f64,
    var: f64,
    seen: u64,
}

impl Likelihood {
    fn new() -> Self {
        Likelihood {
            recent: [0.0; SHORT_MAX],
            len: 0,
            mean: 0.0,
            var: 0.0,
            seen: 0,
        }
    }

    /// Evidence of raw surprise `r` (the mean of it and the `short − 1` before it), then learn.
    #[inline]
    fn update(&mut self, cfg: &AutoConfig, a_lik: f64, r: f64) -> f64 {
        let k = self.len.min(cfg.lik_short.saturating_sub(1));
        let m = (self.recent[..k].iter().sum::<f64>() + r) / (k + 1) as f64;
        let ev = if self.seen < cfg.lik_warmup {
            0.0
        } else {
            let sd = fmax(self.var.sqrt(), cfg.lik_min_std);
            fmin(neg_log10_q((m - self.mean) / sd), 50.0)
        };
        shift_in(&mut self.recent, r);
        self.len = (self.len + 1).min(SHORT_MAX);
        let n1 = self.seen as f64 + 1.0;
        let a = if a_lik * n1 < 1.0 { 1.0 / n1 } else { a_lik };
        let d = m - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
        self.seen += 1;
        ev
    }
}

/// Turns each point's evidence into its emitted score: likelihood, gating and hold-off.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Emitter {
    n: u64,
    /// Gating: the sliding maximum of the evidence over the last `refractory` points.
    gate: MaxWindow,
    /// Hold-off: points before this index emit 0.
    hold_until: u64,
    lik: Likelihood,
    /// Exponentially weighted mean evidence (each point's contribution capped at `s_hold`).
    s_mean: f64,
}

/// −log10 of a uniform p: the mean evidence of a point when the tails are calibrated.
const S_CALM: f64 = std::f64::consts::LOG10_E;

impl Emitter {
    fn new() -> Self {
        Emitter {
            n: 0,
            gate: MaxWindow::default(),
            hold_until: 0,
            lik: Likelihood::new(),
            s_mean: 0.0,
        }
    }

    /// The score emitted for a point of evidence `s`.
    #[inline]
    fn emit(&mut self, cfg: &AutoConfig, a_lik: f64, s: f64) -> f64 {
        self.gate
            .expire((self.n + 1).saturating_sub(cfg.refractory as u64));
        // The point's own evidence, judged against the series' recent surprise: S · min(1,
        // S_calm / mean S) (a calm series takes S at face value, a turbulent one needs
        // proportionally more).
        let norm = if self.s_mean > S_CALM {
            S_CALM / self.s_mean
        } else {
            1.0
        };
        // On the likelihood's scale (score L / (L + 5)): the point alone scores S′ / (S′ + 4).
        let own = 1.25 * (s * norm - cfg.pass_offset);
        let n1 = self.n as f64 + 1.0;
        let a = fmax(1.0 / n1, a_lik);
        self.s_mean += a * (fmin(s, cfg.s_hold) - self.s_mean);
        let (e, mut score) = if cfg.lik_short > 0 {
            let l = self.lik.update(cfg, a_lik, s / (s + cfg.lik_k));
            let e = fmax(l, own);
            (e, e / (e + 5.0))
        } else {
            (s, s / (s + 4.0))
        };
        let emit = e >= 1.0 && e > self.gate.max() + cfg.gate_margin && self.n >= self.hold_until;
        if !emit {
            score = 0.0;
        } else if e >= cfg.s_hold {
            self.hold_until = self.n + 1 + cfg.holdoff as u64;
        }
        self.gate.push(self.n, e);
        self.n += 1;
        if score.is_nan() {
            // Only a corrupted state gets here; never emit NaN.
            return 0.0;
        }
        score
    }

    /// A point that could not be judged (warming up).
    fn skip(&mut self) {
        self.n += 1;
    }
}

/// The `auto` detector of one series.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Auto {
    cfg: AutoConfig,
    /// Smoothing factors of the likelihood and of the model selection (from their half-lives).
    a_lik: f64,
    a_sel: f64,
    chan: Channel,
    emit: Emitter,
}

impl Auto {
    pub fn new(mut cfg: AutoConfig) -> Self {
        cfg.short = cfg.short.min(SHORT_MAX);
        cfg.lik_short = cfg.lik_short.min(SHORT_MAX);
        Auto {
            a_lik: ew_factor(cfg.lik_half_life.max(1.0)),
            a_sel: ew_factor(cfg.select_half_life.max(1.0)),
            chan: Channel::new(&cfg),
            emit: Emitter::new(),
            cfg,
        }
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere):
    /// `Err` names the first one broken.
    pub fn check(&self) -> Result<(), String> {
        check_cfg(&self.cfg)?;
        if !self.emit.gate.ok() {
            return Err("auto state: inconsistent gating window".into());
        }
        self.chan.check(&self.cfg)
    }

    pub fn config(&self) -> &AutoConfig {
        &self.cfg
    }

    /// The seasonal period in use (0 = none yet).
    pub fn period(&self) -> usize {
        self.chan.period()
    }

    /// Development aid: the evidence behind a point's verdict (features, tails, emission state).
    #[doc(hidden)]
    pub fn debug(&self, value: f64) -> String {
        let Some(e) = self.chan.evaluate(&self.cfg, value) else {
            return "warming up".into();
        };
        let ls: Vec<String> = (0..TAILS)
            .map(|i| format!("{:.1}", -self.chan.base.tails.log10_sf(i, e.base.fs[i])))
            .collect();
        format!(
            "S={:.2} base fs={:.1?} l={:?} seas={:?} sel={:.2?} lik(mean={:.3} var={:.4} seen={}) gate={:.2} hold={}",
            e.s,
            e.base.fs,
            ls,
            e.seas.map(|f| (f.fs, f.s)),
            self.chan.ew_s,
            self.emit.lik.mean,
            self.emit.lik.var,
            self.emit.lik.seen,
            self.emit.gate.max(),
            self.emit.hold_until.saturating_sub(self.emit.n)
        )
    }

    /// Score (gated) then learn.
    #[inline]
    pub fn update(&mut self, ts: i64, value: f64) -> Scored {
        let ev = self.chan.evaluate(&self.cfg, value);
        let out = match &ev {
            Some(e) => {
                let mut out = e.scored;
                out.score = self.emit.emit(&self.cfg, self.a_lik, e.s);
                out.is_anomaly = out.score >= self.cfg.threshold;
                out
            }
            None => {
                self.emit.skip();
                Scored::warming_up()
            }
        };
        self.chan
            .learn(&self.cfg, self.a_sel, ts, value, ev.as_ref());
        out
    }
}

fn check_cfg(c: &AutoConfig) -> Result<(), String> {
    if c.short <= SHORT_MAX && c.lik_short <= SHORT_MAX && c.phase_buckets <= 1 << 16 {
        Ok(())
    } else {
        Err("auto state: inconsistent settings".into())
    }
}

/// One sensor's part in a device's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorVerdict {
    /// The sensor's own verdict (its `score` is its evidence as S / (S + 4), ungated).
    pub scored: Scored,
    /// Its evidence −log10 p (0 when the value is missing or the sensor is warming up).
    pub evidence: f64,
    /// Its share of the device's surprise (the shares of all sensors add up to 1 when any
    /// sensor is surprised).
    pub share: f64,
}

/// A device's verdict on one row of sensor values.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceScored {
    /// Emitted (gated) score in [0, 1], `score >= threshold`, and the device's evidence.
    pub score: f64,
    pub is_anomaly: bool,
    pub evidence: f64,
    /// The device is abnormal at this point (extends an episode).
    pub outside: bool,
    /// The kind of the most surprised sensor when `outside`.
    pub kind: Option<Kind>,
    /// The index of the most surprised sensor.
    pub top: Option<usize>,
    pub sensors: Vec<SensorVerdict>,
}

/// The `auto` detector of a device: one [`Channel`] per sensor, judged together.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MultiAuto {
    cfg: AutoConfig,
    a_lik: f64,
    a_sel: f64,
    chans: Vec<Channel>,
    /// The device's own tails of [the largest sensor evidence, the summed excess evidence].
    dev: GpdTails,
    emit: Emitter,
}

/// log10(2): the Bonferroni factor of the device's two statistics.
const LOG10_2: f64 = std::f64::consts::LOG10_2;

impl MultiAuto {
    /// A device of `sensors` sensors (at least one).
    pub fn new(mut cfg: AutoConfig, sensors: usize) -> Self {
        cfg.short = cfg.short.min(SHORT_MAX);
        cfg.lik_short = cfg.lik_short.min(SHORT_MAX);
        MultiAuto {
            a_lik: ew_factor(cfg.lik_half_life.max(1.0)),
            a_sel: ew_factor(cfg.select_half_life.max(1.0)),
            chans: (0..sensors.max(1)).map(|_| Channel::new(&cfg)).collect(),
            dev: GpdTails::new(
                cfg.tail_u,
                200.0,
                0.02,
                0.6,
                cfg.tail_half_life,
                -cfg.tail_clip_s,
            ),
            emit: Emitter::new(),
            cfg,
        }
    }

    /// Number of sensors.
    pub fn sensors(&self) -> usize {
        self.chans.len()
    }

    pub fn config(&self) -> &AutoConfig {
        &self.cfg
    }

    pub fn check(&self) -> Result<(), String> {
        check_cfg(&self.cfg)?;
        if self.chans.is_empty() || self.chans.len() > 4096 || !self.emit.gate.ok() {
            return Err("auto state: inconsistent device".into());
        }
        self.dev.check()?;
        self.chans.iter().try_for_each(|c| c.check(&self.cfg))
    }

    /// Score (gated) one row of sensor values (NaN = missing; extra values are ignored, missing
    /// ones count as NaN), then learn it.
    pub fn update(&mut self, ts: i64, values: &[f64]) -> DeviceScored {
        let cfg = &self.cfg;
        let evs: Vec<Option<ChannelEval>> = self
            .chans
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = values.get(i).copied().unwrap_or(f64::NAN);
                if v.is_finite() {
                    c.evaluate(cfg, v)
                } else {
                    None
                }
            })
            .collect();
        let ss: Vec<f64> = evs.iter().map(|e| e.map_or(0.0, |e| e.s)).collect();
        let judged = evs.iter().any(Option::is_some);
        let (mut top, mut best) = (None, 0.0);
        for (i, &s) in ss.iter().enumerate() {
            if s > best {
                (top, best) = (Some(i), s);
            }
        }
        let excess: f64 = ss.iter().map(|&s| fmax(s - cfg.mv_excess, 0.0)).sum();
        let fs = [best, excess, 0.0, 0.0, 0.0];
        let l = fmax(-self.dev.log10_sf(0, fs[0]), -self.dev.log10_sf(1, fs[1]));
        let evidence = fmax(l - LOG10_2, 0.0);
        let total: f64 = ss.iter().sum();
        let sensors: Vec<SensorVerdict> = evs
            .iter()
            .zip(&ss)
            .map(|(e, &s)| SensorVerdict {
                scored: e.map_or_else(Scored::warming_up, |e| e.scored),
                evidence: s,
                share: if total > 0.0 { s / total } else { 0.0 },
            })
            .collect();
        let outside = evidence >= cfg.s_outside;
        let (score, is_anomaly) = if judged {
            let sc = self.emit.emit(cfg, self.a_lik, evidence);
            (sc, sc >= cfg.threshold)
        } else {
            self.emit.skip();
            (0.0, false)
        };
        let kind = if outside {
            top.and_then(|i| evs[i].and_then(|e| e.scored.kind))
                .or(Some(Kind::VarianceChange))
        } else {
            None
        };
        if judged {
            self.dev.learn(&fs);
        }
        for (i, c) in self.chans.iter_mut().enumerate() {
            let v = values.get(i).copied().unwrap_or(f64::NAN);
            if v.is_finite() {
                c.learn(&self.cfg, self.a_sel, ts, v, evs[i].as_ref());
            }
        }
        DeviceScored {
            score,
            is_anomaly,
            evidence,
            outside,
            kind,
            top,
            sensors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic standard normal noise (Box–Muller on an LCG).
    fn noise(seed: &mut u64) -> f64 {
        let mut u = || {
            *seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((*seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }

    #[test]
    fn the_tail_table_reads_as_the_formula() {
        // Oracle: the formula itself, on a grid 37 times finer than the table's (off its points).
        let mut worst = 0.0f64;
        let n = Q_TAB_N * 37;
        for k in 0..=n + 500 {
            let z = Z_LO - 0.1 + k as f64 * (Z_HI - Z_LO + 0.1) / n as f64;
            if z < Z_HI {
                worst = worst.max((neg_log10_q(z) - neg_log10_q_exact(z)).abs());
            }
        }
        assert!(worst < 7e-8, "{worst}");
        // At the mean both sides give log10(2); far below it, 0; monotone in between.
        assert!((neg_log10_q(-1e-300) - std::f64::consts::LOG10_2).abs() < 1e-7);
        assert!((neg_log10_q(0.0) - std::f64::consts::LOG10_2).abs() < 1e-7);
        assert_eq!(neg_log10_q(-6.0), 0.0);
        assert_eq!(neg_log10_q(f64::NEG_INFINITY), 0.0);
        let mut last = f64::INFINITY;
        for k in 0..2000 {
            let v = neg_log10_q(-(k as f64) * 0.003);
            assert!(v <= last + 1e-12, "not monotone at {k}");
            last = v;
        }
    }

    #[test]
    fn seasonal_slots_average_fast_sampling() {
        // 5-second sampling: 17,280 points a day in 1,440 slots of 12.
        let cfg = AutoConfig::default();
        let mut a = Auto::new(cfg);
        let mut seed = 9;
        for i in 0..40_000i64 {
            let v = (i as f64 * std::f64::consts::TAU / 17_280.0).sin() + 0.01 * noise(&mut seed);
            a.update(i * 5_000_000, v);
        }
        assert_eq!(a.period(), 17_280);
        assert_eq!(a.chan.block, 12);
        assert_eq!(a.chan.season.len(), 1440);
        assert!(a.check().is_ok());
    }

    #[test]
    fn device_blames_the_sensor_that_moved() {
        let mut d = MultiAuto::new(AutoConfig::default(), 3);
        let mut seed = 5;
        let mut blamed = None;
        for i in 0..3000i64 {
            let mut row = [
                noise(&mut seed),
                10.0 + noise(&mut seed),
                -3.0 + noise(&mut seed),
            ];
            if i == 2500 {
                row[1] += 12.0;
            }
            let v = d.update(i * 60_000_000, &row);
            if i == 2500 {
                assert!(v.outside, "{v:?}");
                blamed = v.top;
                assert!(v.sensors[1].share > 0.8, "{:?}", v.sensors);
            }
        }
        assert_eq!(blamed, Some(1));
        assert!(d.check().is_ok());
    }
}
