//! `auto`: an untuned, causal, bounded-state combination of detectors with event gating.
//!
//! Per point it computes several robust deviation features, each in robust sigmas, against a
//! robust exponentially weighted location and scale ([`EwRobust`]: O(1) per point; it replaced
//! sliding median/MAD windows of 255 points, which took ~60% of the time):
//! 1. level: |x − location| / scale (spikes, dips, fast level shifts);
//! 2. change: the same on first differences (sudden jumps, variance bursts);
//! 3. short mean: |mean of the last few points − location| / scale (sustained moderate shifts);
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
//! every series. The tails learn from every point, winsorised at a tail probability of
//! 10^−`tail_clip_s` (a regular pattern of large values is learned instead of locked out; a
//! lone extreme moves the fit by one bounded value). The combined evidence is S = −log10(min_i p_i · m) (Bonferroni over m features)
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
//!
//! Cost: O(1) time per point and no allocation once the period is known (the gating deque
//! grows to its working size once); the state is about 1.2 kB plus one day of cleaned history
//! (`period` values) for the seasonal lag. The defaults were chosen on the 31 NAB files of
//! `examples/nab.rs` (a local search over the smoothing, clip, tail and likelihood settings).

use serde::{Deserialize, Serialize};

use crate::tail::{GpdTails, TAILS};
use crate::{Kind, Scored};

/// Tunables of `auto` (the defaults are the product; the NAB example uses nothing else).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoConfig {
    /// Robust EW location and scale ([`EwRobust`]) of the values and of the first differences:
    /// smoothing of the location (`alpha`) and of the scale (`alpha_dev`), and their Huber clips
    /// in σ.
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
    /// last `lik_short` points (at most 8) is compared with the exponentially weighted mean and
    /// spread of that short mean (half-life `lik_half_life` points, spread at least
    /// `lik_min_std`); the emitted evidence is −log10 of its Gaussian tail probability. 0 disables
    /// the layer.
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
    pub phase_buckets: usize,
    pub phase_alpha: f64,
    /// Model selection by evidence (see `select_half_life`): the seasonal model is chosen when
    /// its mean evidence is below this fraction of the plain model's.
    pub select_ratio: f64,
    /// false = the scale criterion (`seasonal_ratio`) also selects the seasonal model; true =
    /// only the evidence criterion does (when `select_half_life` > 0).
    pub select_only_evidence: bool,
    /// Range memory: the highest and lowest values seen are drawn back towards the level by
    /// this factor per point (0 = never forget the range).
    #[serde(default)]
    pub range_alpha: f64,
    /// Evidence S above this offset passes the likelihood layer as S − offset (the layer bounds
    /// what it emits; a value far beyond anything seen must not be squashed).
    #[serde(default)]
    pub pass_offset: f64,
    /// The jump is measured from the last value or from the one before, whichever is smaller
    /// (false: from the last value only, so returning from a spike is a second jump).
    #[serde(default)]
    pub jump_two: bool,
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
            seasonal_ratio: 0.5,
            tail_u: 2.94,
            tail_half_life: 50_000.0,
            s_outside: 3.0,
            refractory: 15,
            gate_margin: 1.0,
            gate_emitted: false,
            holdoff: 40,
            s_hold: 5.03,
            lik_short: 2,
            lik_half_life: 348.5,
            lik_min_std: 0.091,
            lik_warmup: 100,
            lik_k: 4.0,
            lik_mix: 0.0,
            tail_learn_s: 3.0,
            select_half_life: 1000.0,
            tail_clip_s: 30.0,
            threshold: 0.5,
            phase_buckets: 24,
            phase_alpha: 0.0385,
            select_ratio: 0.2816,
            select_only_evidence: true,
            range_alpha: 1e-4,
            pass_offset: 1e9,
            jump_two: true,
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

/// Robust exponentially weighted location and scale of a stream: O(1) time, three numbers.
///
/// The location is a Huber M-estimate in recursive (stochastic-approximation) form,
/// μ ← μ + a·clip(x − μ, ±c·σ) (Huber 1964; Robbins & Monro 1951); the scale is the EW mean
/// absolute deviation with its own clip, σ = √(π/2)·E|x − μ| (exact for Gaussian data). A lone
/// outlier moves μ by at most a·c·σ; a persistent shift grows σ geometrically until μ follows.
/// Both are running means (a = 1/n) while n < 1/a. From a constant history (σ = 0) a change is
/// taken unclipped, as the range fallback of a MAD window would.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EwRobust {
    loc: f64,
    dev: f64,
    n: u32,
    /// Slow, unclipped EW mean absolute deviation: a fraction of it floors the scale, so that a
    /// mostly constant series with rare pulses keeps one stable scale (the clipped `dev` decays
    /// towards zero between pulses and would make each pulse look larger than the last).
    #[serde(default)]
    slow: f64,
}

/// Rate of [`EwRobust`]'s slow deviation (half-life ≈ 700 points) and the fraction of it that
/// floors the scale.
const SLOW_ALPHA: f64 = 1e-3;
const FLOOR_FRAC: f64 = 0.05;

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

    /// σ-equivalent scale, never zero (a relative epsilon on a constant history).
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
        let s = MEAN_ABS_TO_SIGMA * self.dev;
        let (ll, ld) = if s > self.floor() {
            (p.clip * s, p.clip_dev * s)
        } else {
            (f64::INFINITY, f64::INFINITY)
        };
        // Running means (a = 1/n) until 1/n falls below the smoothing factors.
        let n1 = self.n as f64 + 1.0;
        let a = if p.alpha * n1 < 1.0 {
            1.0 / n1
        } else {
            p.alpha
        };
        let ad = if p.alpha_dev * n1 < 1.0 {
            1.0 / n1
        } else {
            p.alpha_dev
        };
        self.loc += a * fmin(fmax(d, -ll), ll);
        self.dev += ad * (fmin(d.abs(), ld) - self.dev);
        let a_slow = if SLOW_ALPHA * n1 < 1.0 { 1.0 / n1 } else { SLOW_ALPHA };
        self.slow += a_slow * (d.abs() - self.slow);
        self.n = self.n.saturating_add(1);
        if !(self.loc.is_finite() && self.dev.is_finite()) {
            // Overflow (values near f64::MAX): start again from this point.
            *self = EwRobust::default();
            self.push(x, p);
        }
    }
}

/// log10(4): the Bonferroni factor of the four features.
const LOG10_M: f64 = 0.602_059_991_327_962_4;

/// Longest short mean (`AutoConfig::short` and `lik_short` are clamped to it).
const SHORT_MAX: usize = 8;

/// Push `x` at the front of a newest-first array.
#[inline]
fn shift_in(a: &mut [f64; SHORT_MAX], x: f64) {
    a.copy_within(0..SHORT_MAX - 1, 1);
    a[0] = x;
}

/// Robust deviation features of one series (the values, or the seasonal residuals).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Features {
    lvl: EwRobust,
    dif: EwRobust,
    last: f64,
    /// The value before the last: the jump is measured from the last value or from this one,
    /// whichever is smaller, so that returning from a one-point spike is not a jump.
    #[serde(default)]
    last2: f64,
    /// The last values, newest first (for the short mean).
    recent: [f64; SHORT_MAX],
    /// Range memory: the highest and lowest values seen, each drawn back towards the level
    /// with a long half-life (a value beyond both is new to the series).
    #[serde(default)]
    hi: f64,
    #[serde(default)]
    lo: f64,
    tails: GpdTails,
}

/// One evaluation of [`Features`].
#[derive(Clone, Copy, Debug)]
struct FeatEval {
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
        let tails = GpdTails::new(
            cfg.tail_u,
            200.0,
            0.02,
            0.6,
            cfg.tail_half_life,
            -cfg.tail_clip_s,
        );
        Features {
            lvl: EwRobust::default(),
            dif: EwRobust::default(),
            last: f64::NAN,
            last2: f64::NAN,
            recent: [0.0; SHORT_MAX],
            hi: f64::NAN,
            lo: f64::NAN,
            tails,
        }
    }

    fn len(&self) -> usize {
        self.lvl.len() as usize
    }

    fn ready(&self) -> bool {
        self.lvl.len() >= 8 && self.dif.len() >= 4
    }

    #[inline(always)]
    fn eval(&self, x: f64, short: usize, jump_two: bool) -> FeatEval {
        let med = self.lvl.loc();
        let sc = self.lvl.sigma();
        let inv = 1.0 / sc;
        let z = (x - med) * inv;
        let mut fs = [z.abs(), 0.0, 0.0, 0.0];
        // Beyond the range seen so far (NaN-safe: false until the range is known).
        if x > self.hi {
            fs[3] = (x - self.hi) * inv;
        } else if x < self.lo {
            fs[3] = (self.lo - x) * inv;
        }
        // The jump from the last value or from the one before, whichever is smaller (returning
        // from a one-point spike is not a jump; NaN-safe: the first comparison wins).
        let md = self.dif.loc();
        let (d1, d2) = ((x - self.last - md).abs(), (x - self.last2 - 2.0 * md).abs());
        fs[1] = if jump_two && d2 < d1 { d2 } else { d1 } / self.dif.sigma();
        let k = short.min(self.len());
        if k > 1 {
            let recent: f64 = self.recent[..k - 1].iter().sum::<f64>() + x;
            fs[2] = ((recent / k as f64 - med) * inv).abs();
        }
        let mut best = 0.0f64;
        let mut arg = 0;
        for (i, f) in fs.iter().enumerate() {
            let l = -self.tails.log10_sf(i, *f);
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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Auto {
    cfg: AutoConfig,
    /// Smoothing factors of the likelihood and of the model selection (from their half-lives).
    a_lik: f64,
    a_sel: f64,
    n: u64,
    base: Features,
    seas: Features,
    last_x: f64,
    last_ts: i64,
    /// The first sampling steps (µs), to find the daily period; emptied once it is known.
    steps: Vec<f64>,
    /// Seasonal period in samples once known (0 = not yet, usize::MAX = none).
    period: usize,
    /// `n` modulo the period: the phase of the current point; its phase bucket and the phase
    /// where the next bucket starts.
    pos: usize,
    bucket: usize,
    next_edge: usize,
    /// Cleaned history for the seasonal lag: a ring of `period` values, oldest at `head` once
    /// full.
    season: Vec<f64>,
    head: usize,
    /// Flatline: current run of identical values and the longest run seen.
    run: u64,
    max_run: f64,
    /// Number of value changes seen (a series that never changed cannot flatline).
    changes: u64,
    /// Gating: the sliding maximum of the evidence over the last `refractory` points.
    gate: MaxWindow,
    /// Hold-off: points before this index emit 0.
    hold_until: u64,
    lik: Likelihood,
    /// Exponentially weighted mean evidence of the plain and the seasonal model.
    ew_s: [f64; 2],
    /// Per phase bucket: typical |seasonal residual| and the number of updates; the sum of the
    /// scales of the buckets with at least `PHASE_MIN` updates, and how many there are.
    phase: Vec<(f64, u64)>,
    phase_sum: f64,
    phase_known: u32,
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

/// Updates before a phase bucket's scale is trusted.
const PHASE_MIN: u64 = 4;

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
        if z >= 0.0 {
            // −log10(½·poly·e^(−x²)) with one logarithm.
            return ((x * x - (0.5 * poly).ln()) / std::f64::consts::LN_10).max(0.0);
        }
        if x > 4.0 {
            // Q(|z|) < 1e-8: −log10(1 − Q) < 5e-9.
            return 0.0;
        }
        return -(1.0 - 0.5 * poly * (-x * x).exp()).ln() / std::f64::consts::LN_10;
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

    /// The mean of `r` and the `short − 1` surprises before it.
    #[inline]
    fn short_mean(&self, short: usize, r: f64) -> f64 {
        let k = self.len.min(short.saturating_sub(1));
        (self.recent[..k].iter().sum::<f64>() + r) / (k + 1) as f64
    }

    /// Evidence (−log10 tail probability) of raw surprise `r`.
    #[inline]
    fn evidence(&self, cfg: &AutoConfig, r: f64) -> f64 {
        self.evidence_of_mean(cfg, self.short_mean(cfg.lik_short, r))
    }

    /// Evidence of a short mean `m` (see [`Likelihood::short_mean`]).
    #[inline]
    fn evidence_of_mean(&self, cfg: &AutoConfig, m: f64) -> f64 {
        if self.seen < cfg.lik_warmup {
            return 0.0;
        }
        let sd = fmax(self.var.sqrt(), cfg.lik_min_std);
        fmin(neg_log10_q((m - self.mean) / sd), 50.0)
    }

    /// Evidence of raw surprise `r`, then learn it.
    #[inline]
    fn update(&mut self, cfg: &AutoConfig, a_lik: f64, r: f64) -> f64 {
        let m = self.short_mean(cfg.lik_short, r);
        let ev = self.evidence_of_mean(cfg, m);
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
    pub fn new(mut cfg: AutoConfig) -> Self {
        cfg.short = cfg.short.min(SHORT_MAX);
        cfg.lik_short = cfg.lik_short.min(SHORT_MAX);
        let mut auto = Auto {
            a_lik: ew_factor(cfg.lik_half_life.max(1.0)),
            a_sel: ew_factor(cfg.select_half_life),
            n: 0,
            base: Features::new(&cfg),
            seas: Features::new(&cfg),
            last_x: f64::NAN,
            last_ts: i64::MIN,
            steps: Vec::new(),
            period: cfg.period,
            pos: 0,
            bucket: 0,
            next_edge: 0,
            season: Vec::new(),
            head: 0,
            run: 0,
            max_run: 0.0,
            changes: 0,
            gate: MaxWindow::default(),
            hold_until: 0,
            lik: Likelihood::new(),
            ew_s: [0.0; 2],
            phase: Vec::new(),
            phase_sum: 0.0,
            phase_known: 0,
            cfg,
        };
        if auto.has_period() {
            auto.set_phase(0);
        }
        auto
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere):
    /// `Err` names the first one broken.
    pub fn check(&self) -> Result<(), String> {
        let c = &self.cfg;
        let g = &self.gate;
        let ok_gate = (g.buf.is_empty() || g.buf.len().is_power_of_two())
            && g.len <= g.buf.len()
            && (g.buf.is_empty() || g.head < g.buf.len());
        let ring = !self.has_period()
            || (self.season.len() <= self.period
                && self.head < self.period
                && self.pos < self.period
                && (self.phase.is_empty() || self.phase.len() == c.phase_buckets)
                && (c.phase_buckets == 0 || self.bucket < c.phase_buckets));
        // Bounds on what a state may make us allocate.
        let sizes = c.phase_buckets <= 1 << 16
            && g.buf.len() <= 1 << 24
            && (self.period == usize::MAX || self.period <= 1 << 24);
        let checks = [
            (sizes, "sizes"),
            (
                c.short <= SHORT_MAX && c.lik_short <= SHORT_MAX,
                "short windows",
            ),
            (self.lik.len <= SHORT_MAX, "likelihood window"),
            (ok_gate, "gating window"),
            (ring, "seasonal ring"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(format!("auto state: inconsistent {what}")),
            None => Ok(()),
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

    fn has_period(&self) -> bool {
        self.period > 0 && self.period != usize::MAX
    }

    /// Phase bucket of the current point (None when phase scaling is off or no period).
    #[inline]
    fn phase_bucket(&self) -> Option<usize> {
        (self.cfg.phase_buckets > 0 && self.has_period()).then_some(self.bucket)
    }

    /// Set the phase to `pos`: bucket ⌊pos·B/P⌋, which ends where ⌈(b+1)·P/B⌉ starts.
    fn set_phase(&mut self, pos: usize) {
        let (p, b) = (self.period.max(1), self.cfg.phase_buckets.max(1));
        self.pos = pos;
        self.bucket = pos * b / p;
        self.next_edge = ((self.bucket + 1) * p).div_ceil(b);
    }

    /// (scale of the current phase bucket, mean scale over the known buckets); (1, 1) if off.
    #[inline]
    fn phase_scale(&self) -> (f64, f64) {
        let Some(b) = self.phase_bucket() else {
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

    fn learn_phase(&mut self, sraw: f64) {
        let Some(b) = self.phase_bucket() else {
            return;
        };
        if self.phase.len() != self.cfg.phase_buckets {
            self.phase = vec![(0.0, 0); self.cfg.phase_buckets];
            self.phase_sum = 0.0;
            self.phase_known = 0;
        }
        let Some(&(sc, c)) = self.phase.get(b) else {
            return;
        };
        let c1 = c as f64 + 1.0;
        let a = if self.cfg.phase_alpha * c1 < 1.0 {
            1.0 / c1
        } else {
            self.cfg.phase_alpha
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

    /// The seasonal lag: the cleaned value one period ago, once a full period is stored.
    #[inline]
    fn lag(&self) -> Option<f64> {
        if self.has_period() && self.season.len() == self.period {
            self.season.get(self.head).copied()
        } else {
            None
        }
    }

    #[inline]
    fn evaluate(&self, value: f64) -> Option<Eval> {
        if (self.n as usize) < self.cfg.warmup || !self.base.ready() {
            return None;
        }
        let base = self.base.eval(value, self.cfg.short, self.cfg.jump_two);
        let mut sres = f64::NAN;
        let mut sraw = f64::NAN;
        let mut seas = None;
        let (ps, pm) = self.phase_scale();
        if let Some(lag) = self.lag() {
            sraw = value - lag;
            sres = sraw / ps;
            if self.seas.ready() && self.seas.len() >= self.period.min(self.cfg.seas_warmup) {
                seas = Some((lag, self.seas.eval(sres, self.cfg.short, self.cfg.jump_two)));
            }
        }
        // Use the seasonal residual when the seasonal model explains most of the spread.
        let better =
            self.cfg.select_half_life > 0.0 && self.ew_s[1] < self.cfg.select_ratio * self.ew_s[0];
        let by_scale = !(self.cfg.select_only_evidence && self.cfg.select_half_life > 0.0);
        let use_seas = seas.filter(|(_, e)| {
            better || (by_scale && e.scale * pm < self.cfg.seasonal_ratio * base.scale)
        });
        let (fe, expected, scale) = match use_seas {
            Some((lag, e)) => (e, lag + e.med * ps, e.scale * ps),
            None => (base, base.med, base.scale),
        };
        let band = 3.0 * scale;
        let mut s = fe.s;
        let feature = fe.arg;
        let mut kind = match (feature, use_seas.is_some()) {
            (0 | 3, false) if fe.z > 0.0 => Kind::Spike,
            (0 | 3, false) => Kind::Dip,
            (_, true) if feature == 0 && fe.s < 6.0 => Kind::SeasonalBreak,
            (0 | 3, true) if fe.z > 0.0 => Kind::Spike,
            (0 | 3, true) => Kind::Dip,
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

    /// Development: the evidence behind a point's verdict (features, tails, likelihood).
    pub fn debug(&self, value: f64) -> String {
        let Some(e) = self.evaluate(value) else {
            return "warming up".into();
        };
        let raw = e.s / (e.s + self.cfg.lik_k);
        let ls: Vec<String> = (0..TAILS)
            .map(|i| format!("{:.1}", -self.base.tails.log10_sf(i, e.base.fs[i])))
            .collect();
        format!(
            "S={:.2} base fs={:.1?} l={:?} seas={:?} lik(m={:.3} sd={:.3} L={:.2}) gate={:.2} hold={}",
            e.s,
            e.base.fs,
            ls,
            e.seas.map(|f| (f.fs, f.s)),
            self.lik.mean,
            self.lik.var.sqrt(),
            self.lik.evidence(&self.cfg, raw),
            self.gate.max(),
            self.hold_until.saturating_sub(self.n)
        )
    }

    /// Ungated score (no learning).
    pub fn score(&self, value: f64) -> Scored {
        match self.evaluate(value) {
            Some(e) => {
                let mut sc = e.scored;
                if self.cfg.lik_short > 0 {
                    let l = self.lik.evidence(&self.cfg, e.s / (e.s + self.cfg.lik_k))
                        + self.cfg.lik_mix * e.s;
                    let l = fmax(l, e.s - self.cfg.pass_offset);
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
            self.gate
                .expire((self.n + 1).saturating_sub(self.cfg.refractory as u64));
            let s = if self.cfg.lik_short > 0 {
                let raw = e.s / (e.s + self.cfg.lik_k);
                let s = self.lik.update(&self.cfg, self.a_lik, raw) + self.cfg.lik_mix * e.s;
                let s = fmax(s, e.s - self.cfg.pass_offset);
                out.score = s / (s + 5.0);
                s
            } else {
                e.s
            };
            let prev = self.gate.max();
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
            self.gate.push(self.n, s);
            if e.scored.outside {
                clean = e.expected;
            }
            out.is_anomaly = out.score >= self.cfg.threshold;
            if self.cfg.select_half_life > 0.0 {
                if let Some(se) = &e.seas {
                    let a = self.a_sel;
                    self.ew_s[0] += a * (fmin(e.base.s, 10.0) - self.ew_s[0]);
                    self.ew_s[1] += a * (fmin(se.s, 10.0) - self.ew_s[1]);
                }
            }
            // Winsorised tails learn from every point; unclipped ones (tail_clip_s = 0) only from
            // normal points, as SPOT does.
            let normal = self.cfg.tail_clip_s > 0.0 || e.s < self.cfg.tail_learn_s;
            self.base
                .learn(value, normal.then_some(&e.base.fs), &self.cfg);
            if e.sres.is_finite() {
                let fs = e.seas.as_ref().map(|f| f.fs);
                self.seas
                    .learn(e.sres, fs.as_ref().filter(|_| normal), &self.cfg);
                self.learn_phase(e.sraw);
            }
        } else {
            self.base.learn(value, None, &self.cfg);
        }
        self.learn_windows(ts, value, clean);
        if out.score.is_nan() {
            // Only a corrupted state gets here; never emit NaN.
            out.score = 0.0;
            out.is_anomaly = false;
        }
        out
    }

    fn learn_windows(&mut self, ts: i64, value: f64, clean: f64) {
        if self.last_x.is_finite() {
            if value == self.last_x {
                self.run += 1;
            } else {
                self.max_run = fmax(self.max_run, self.run as f64);
                self.changes += 1;
                self.run = 0;
            }
        }
        let find_period = self.cfg.seasonal && self.period == 0;
        if find_period && self.last_ts != i64::MIN && ts > self.last_ts {
            self.steps.push((ts - self.last_ts) as f64);
        }
        self.last_x = value;
        self.last_ts = ts;
        self.n += 1;
        let mut advance = true;
        if find_period && self.steps.len() >= 16 {
            // The period is one day in median sampling steps.
            self.steps.sort_by(f64::total_cmp);
            let step = 0.5 * (self.steps[7] + self.steps[8]);
            self.steps = Vec::new();
            let p = (86_400e6 / step).round();
            self.period = if (8.0..=2048.0).contains(&p) {
                p as usize
            } else {
                usize::MAX
            };
            if self.has_period() {
                self.set_phase((self.n % self.period as u64) as usize);
                self.season.reserve_exact(self.period);
            }
            advance = false;
        }
        if self.has_period() {
            if advance {
                self.pos += 1;
                if self.pos >= self.period {
                    self.set_phase(0);
                } else if self.pos >= self.next_edge {
                    self.set_phase(self.pos);
                }
            }
            if self.cfg.seasonal {
                if self.season.len() < self.period {
                    self.season.push(clean);
                } else if let Some(slot) = self.season.get_mut(self.head) {
                    *slot = clean;
                    self.head += 1;
                    if self.head >= self.period {
                        self.head = 0;
                    }
                }
            }
        }
    }
}
