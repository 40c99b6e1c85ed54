//! The detector enum the extension stores as rows, and batch detection.

use serde::{Deserialize, Serialize};

use crate::auto::{Auto, AutoConfig};
use crate::detectors::{verdict, Cusum, Ewma, Robust, Seasonal};
use crate::iforest::{IForestParams, IsolationForest};
use crate::{AnomalyError, Kind, Scored, METHODS};

/// Parameters common to all methods, parsed from a JSON object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Score at or above which a point is an anomaly, in (0, 1].
    pub threshold: f64,
    /// Number of past points the robust window holds (bounded state).
    pub window: usize,
    /// Points needed before scoring.
    pub warmup: usize,
    /// EWMA smoothing factor in (0, 1).
    pub alpha: f64,
    /// Seasonal period in samples (0 = find it).
    pub period: usize,
    /// Isolation forest: number of trees, subsample size and seed.
    pub trees: usize,
    pub sample_size: usize,
    pub seed: u64,
    /// `auto`: points of the gating window (one alarm per event).
    pub refractory: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            threshold: 0.5,
            window: 128,
            warmup: 16,
            alpha: 0.05,
            period: 0,
            trees: 100,
            sample_size: 256,
            seed: 42,
            refractory: AutoConfig::default().refractory,
        }
    }
}

/// Inclusive ranges of the integer params, shared by [`Params::from_json`] and [`Params::check`].
const WINDOW: (usize, usize) = (4, 100_000);
const WARMUP: (usize, usize) = (2, 100_000);
const TREES: (usize, usize) = (1, 10_000);
const SAMPLE_SIZE: (usize, usize) = (2, 100_000);

impl Params {
    pub const KEYS: &'static [&'static str] = &[
        "threshold",
        "window",
        "warmup",
        "alpha",
        "period",
        "trees",
        "sample_size",
        "seed",
        "refractory",
    ];

    /// Parse `params` for `method`; unknown keys and out-of-range values are errors.
    pub fn from_json(method: &str, v: &serde_json::Value) -> Result<Self, AnomalyError> {
        let mut p = Params::default();
        let obj = match v {
            serde_json::Value::Null => return Ok(p),
            serde_json::Value::Object(o) => o,
            other => {
                return Err(AnomalyError::ParamsNotObject {
                    got: other.to_string(),
                })
            }
        };
        for (k, val) in obj {
            let num = || {
                val.as_f64().ok_or_else(|| AnomalyError::InvalidParam {
                    key: k.clone(),
                    reason: format!("expected a number, got {val}"),
                })
            };
            match k.as_str() {
                "threshold" => {
                    let x = num()?;
                    if !(x > 0.0 && x <= 1.0) {
                        return Err(invalid(k, "must be in (0, 1]"));
                    }
                    p.threshold = x;
                }
                "window" => p.window = int_in(k, num()?, WINDOW.0, WINDOW.1)?,
                "warmup" => p.warmup = int_in(k, num()?, WARMUP.0, WARMUP.1)?,
                "alpha" => {
                    let x = num()?;
                    if !(x > 0.0 && x < 1.0) {
                        return Err(invalid(k, "must be in (0, 1)"));
                    }
                    p.alpha = x;
                }
                "period" => p.period = int_in(k, num()?, 0, crate::detectors::MAX_PERIOD)?,
                "trees" => p.trees = int_in(k, num()?, TREES.0, TREES.1)?,
                "sample_size" => p.sample_size = int_in(k, num()?, SAMPLE_SIZE.0, SAMPLE_SIZE.1)?,
                "seed" => p.seed = int_in(k, num()?, 0, 1 << 52)? as u64,
                "refractory" => p.refractory = int_in(k, num()?, 1, 100_000)?,
                _ => {
                    return Err(AnomalyError::UnknownParam {
                        key: k.clone(),
                        method: method.to_string(),
                    })
                }
            }
        }
        Ok(p)
    }

    /// Check a decoded state's params against the ranges [`Params::from_json`] enforces, for the
    /// ones the non-`auto` detectors use (`seed` and `refractory` are free): the window sizes the
    /// bounded buffers, `trees` the forest's allocation, α keeps the EW variance non-negative,
    /// `period` bounds the seasonal profile. `what` names the method in the error.
    pub(crate) fn check(&self, what: &str) -> Result<(), String> {
        let within = |x: usize, (lo, hi): (usize, usize)| (lo..=hi).contains(&x);
        let ok = self.threshold > 0.0
            && self.threshold <= 1.0
            && within(self.window, WINDOW)
            && within(self.warmup, WARMUP)
            && self.alpha > 0.0
            && self.alpha < 1.0
            && self.period <= crate::detectors::MAX_PERIOD
            && within(self.trees, TREES)
            && within(self.sample_size, SAMPLE_SIZE);
        if ok {
            Ok(())
        } else {
            Err(format!("{what} state: params out of range ({self:?})"))
        }
    }
}

fn invalid(k: &str, reason: &str) -> AnomalyError {
    AnomalyError::InvalidParam {
        key: k.to_string(),
        reason: reason.to_string(),
    }
}

fn int_in(k: &str, x: f64, lo: usize, hi: usize) -> Result<usize, AnomalyError> {
    if x.fract() != 0.0 || x < lo as f64 || x > hi as f64 {
        return Err(invalid(k, &format!("must be an integer in [{lo}, {hi}]")));
    }
    Ok(x as usize)
}

/// Streaming isolation forest on (value, first difference): trained on the first
/// `max(window, 64)` points, then fixed (bounded state).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StreamForest {
    p: Params,
    last: f64,
    train: Vec<Vec<f64>>,
    forest: Option<IsolationForest>,
}

impl StreamForest {
    /// Training points before the fit: the fit happens once `train` reaches this many.
    fn train_len(&self) -> usize {
        self.p.window.max(64)
    }

    /// Check the invariants the update relies on (a decoded state may come from anywhere):
    /// `Err` names the first one broken. Before the fit, `train` holds fewer than
    /// `StreamForest::train_len` rows of (value, difference); after it, none, and the forest
    /// is a valid one on those 2 dimensions.
    pub fn check(&self) -> Result<(), String> {
        self.p.check("iforest")?;
        let train_ok = match &self.forest {
            None => self.train.len() < self.train_len(),
            Some(_) => self.train.is_empty(),
        } && self.train.iter().all(|r| r.len() == 2);
        if !train_ok {
            return Err(format!(
                "iforest state: inconsistent training buffer ({} rows)",
                self.train.len()
            ));
        }
        match &self.forest {
            Some(f) if f.dims() != 2 => Err(format!(
                "iforest state: a forest on {} dimensions, not 2",
                f.dims()
            )),
            Some(f) => f.check(),
            None => Ok(()),
        }
    }

    fn row(&self, value: f64) -> Option<Vec<f64>> {
        self.last
            .is_finite()
            .then(|| vec![value, value - self.last])
    }

    fn score(&self, value: f64) -> Scored {
        let (Some(f), Some(row)) = (&self.forest, self.row(value)) else {
            return Scored::warming_up();
        };
        let s = f.score(&row);
        let score = ((s - 0.5) * 2.0).clamp(0.0, 1.0);
        let outside = score >= self.p.threshold;
        Scored {
            expected: self.last,
            lower: f64::NAN,
            upper: f64::NAN,
            score,
            sigma: 0.0,
            is_anomaly: outside,
            outside,
            kind: outside.then_some(if value >= self.last {
                Kind::Spike
            } else {
                Kind::Dip
            }),
        }
    }

    fn learn(&mut self, value: f64) {
        if self.forest.is_none() {
            if let Some(r) = self.row(value) {
                self.train.push(r);
            }
            if self.train.len() >= self.train_len() {
                let fp = IForestParams {
                    trees: self.p.trees,
                    sample_size: self.p.sample_size,
                    seed: self.p.seed,
                };
                self.forest = IsolationForest::fit(&self.train, &fp).ok();
                self.train = Vec::new();
            }
        }
        self.last = value;
    }
}

/// A per-series detector, stored as a row by the extension.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Model {
    Auto(Box<Auto>),
    Robust(Robust),
    Ewma(Ewma),
    Seasonal(Seasonal),
    Changepoint(Cusum),
    IForest(StreamForest),
}

/// Version byte leading [`Model::to_bytes`] (3 since `auto` moved to streaming estimates; 4
/// since its rarity memory, range and drift features and seasonal slots).
pub const STATE_VERSION: u8 = 4;

impl Model {
    /// Build the detector for `method` (see [`METHODS`]) with JSON `params`.
    pub fn new(method: &str, params: &serde_json::Value) -> Result<Model, AnomalyError> {
        if !METHODS.contains(&method) {
            return Err(AnomalyError::UnknownMethod {
                name: method.to_string(),
            });
        }
        let p = Params::from_json(method, params)?;
        Ok(match method {
            // `auto`'s own default threshold (chosen by leave-one-group-out, benches/RESULTS.md)
            // unless `params` sets one: AutoConfig is its one source of truth.
            "auto" => Model::Auto(Box::new(Auto::new(AutoConfig {
                threshold: if params.get("threshold").is_some() {
                    p.threshold
                } else {
                    AutoConfig::default().threshold
                },
                period: p.period,
                refractory: p.refractory,
                ..AutoConfig::default()
            }))),
            "robust" => Model::Robust(Robust::new(p)),
            "ewma" => Model::Ewma(Ewma::new(p)),
            "seasonal" => Model::Seasonal(Seasonal::new(p)),
            "changepoint" => Model::Changepoint(Cusum::new(p)),
            _ => Model::IForest(StreamForest {
                p,
                last: f64::NAN,
                train: Vec::new(),
                forest: None,
            }),
        })
    }

    /// The method name of this model.
    pub fn method(&self) -> &'static str {
        match self {
            Model::Auto(_) => "auto",
            Model::Robust(_) => "robust",
            Model::Ewma(_) => "ewma",
            Model::Seasonal(_) => "seasonal",
            Model::Changepoint(_) => "changepoint",
            Model::IForest(_) => "iforest",
        }
    }

    /// Score `value` at `ts` (µs since the epoch) against the past, without learning from it:
    /// exactly the verdict [`Model::update`] would give the point after the same history (for
    /// `auto`, gating and hold-off included), so that `predict`/`score` mean what the batch and
    /// streaming forms mean.
    pub fn score(&self, ts: i64, value: f64) -> Scored {
        if !value.is_finite() {
            return Scored::warming_up();
        }
        match self {
            Model::Auto(d) => d.as_ref().clone().update(ts, value),
            Model::Robust(d) => d.score(value),
            Model::Ewma(d) => d.score(value),
            Model::Seasonal(d) => d.score(value),
            Model::Changepoint(d) => d.score(value),
            Model::IForest(d) => d.score(value),
        }
    }

    /// Score then learn from the point. Non-finite values are neither scored nor learned.
    #[inline]
    pub fn update(&mut self, ts: i64, value: f64) -> Scored {
        if !value.is_finite() {
            return Scored::warming_up();
        }
        match self {
            Model::Auto(d) => d.update(ts, value),
            Model::Robust(d) => {
                let s = d.score(value);
                d.learn(value);
                s
            }
            Model::Ewma(d) => {
                let s = d.score(value);
                d.learn(value);
                s
            }
            Model::Seasonal(d) => {
                let s = d.score(value);
                d.learn(ts, value);
                s
            }
            Model::Changepoint(d) => {
                let s = d.score(value);
                d.learn(value);
                s
            }
            Model::IForest(d) => {
                let s = d.score(value);
                d.learn(value);
                s
            }
        }
    }

    /// Invariants of a decoded state that the update relies on (no panics, no endless loop on a
    /// crafted state): every method checks its own. Every decoding path ([`Model::from_bytes`],
    /// `MonitorState::from_bytes`) calls this before the state is used.
    pub(crate) fn check(&self) -> Result<(), AnomalyError> {
        match self {
            Model::Auto(a) => a.check(),
            Model::Robust(d) => d.check(),
            Model::Ewma(d) => d.check(),
            Model::Seasonal(d) => d.check(),
            Model::Changepoint(d) => d.check(),
            Model::IForest(d) => d.check(),
        }
        .map_err(AnomalyError::CorruptState)
    }

    /// Compact, versioned state: one version byte then postcard (varint) encoding. Version 3:
    /// `auto` keeps streaming (EW) estimates instead of sliding windows; versions 1–2 are
    /// refused with [`AnomalyError::CorruptState`] (retrain).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![STATE_VERSION];
        match postcard::to_allocvec(self) {
            Ok(b) => out.extend_from_slice(&b),
            Err(_) => out.clear(),
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Model, AnomalyError> {
        let rest = state_payload(b)?;
        let m: Model =
            postcard::from_bytes(rest).map_err(|e| AnomalyError::CorruptState(e.to_string()))?;
        m.check()?;
        Ok(m)
    }
}

/// Earlier state versions that encode every method but `auto` exactly as this one does: version
/// 4 changed only `auto`'s state (Tidewatch 0.1.0 wrote version 3).
const SAME_BUT_AUTO: &[u8] = &[3];

/// The postcard payload of a versioned state ([`Model`] or a monitor state, whose first field is
/// its model): this version's, or an earlier one whose encoding is the same for its method.
/// postcard writes an enum's variant index first, as a varint: 0 is [`Model::Auto`].
pub(crate) fn state_payload(b: &[u8]) -> Result<&[u8], AnomalyError> {
    match b.split_first() {
        Some((&STATE_VERSION, rest)) => Ok(rest),
        Some((v, rest)) if SAME_BUT_AUTO.contains(v) => match rest.first() {
            Some(0) => Err(AnomalyError::OldState {
                version: *v,
                method: "auto",
            }),
            _ => Ok(rest),
        },
        Some((v, _)) => Err(AnomalyError::CorruptState(format!(
            "state version {v}, this build reads version {STATE_VERSION}"
        ))),
        None => Err(AnomalyError::CorruptState("empty state".to_string())),
    }
}

/// The result of [`detect`]: scored points in time order, and how many were skipped.
#[derive(Clone, Debug, Default)]
pub struct BatchResult {
    pub points: Vec<(i64, f64, Scored)>,
    /// NULL-free but non-finite values (NaN, ±inf) skipped.
    pub skipped: usize,
}

/// Score a whole series causally: sort by time (stable, so duplicates keep input order), skip and
/// count non-finite values.
pub fn detect(
    method: &str,
    params: &serde_json::Value,
    mut points: Vec<(i64, f64)>,
) -> Result<BatchResult, AnomalyError> {
    let mut m = Model::new(method, params)?;
    points.sort_by_key(|p| p.0);
    let mut out = BatchResult {
        points: Vec::with_capacity(points.len()),
        skipped: 0,
    };
    for (ts, v) in points {
        if !v.is_finite() {
            out.skipped += 1;
            continue;
        }
        out.points.push((ts, v, m.update(ts, v)));
    }
    match method {
        "seasonal" => batch_seasonal(&m, &mut out),
        "changepoint" => batch_changepoints(&m, &mut out),
        _ => {}
    }
    Ok(out)
}

/// Batch `seasonal`: MSTL decomposition (`augurs-mstl`; Bandara, Hyndman & Bergmeir 2021) with the
/// periods found by `augurs-seasons` (or `period`), scored by the robust z of the remainder. This
/// is a two-sided (non-causal) fit of the whole series; when no period fits (fewer than two full
/// periods) the streaming scores are kept.
fn batch_seasonal(m: &Model, out: &mut BatchResult) {
    use augurs_core::Fit as _;
    use augurs_seasons::Detector as _;
    let Model::Seasonal(sd) = m else { return };
    let y: Vec<f64> = out.points.iter().map(|p| p.1).collect();
    // No period p >= 2 fits twice in fewer than 5 points (see the retain below), and the
    // periodogram's Welch estimate panics on a one-point series (found by a property test).
    if y.len() < 5 {
        return;
    }
    let periods: Vec<usize> = if sd.p.period > 0 {
        vec![sd.p.period]
    } else {
        augurs_seasons::PeriodogramDetector::builder()
            .min_period(2)
            .build()
            .detect(&y)
            .into_iter()
            .map(|p| p as usize)
            .take(2)
            .collect()
    };
    let mut periods: Vec<usize> = periods
        .into_iter()
        .map(|p| crate::detectors::refine_period(&y, p))
        .collect();
    periods.dedup();
    periods.retain(|&p| p >= 2 && p * 2 < y.len());
    if periods.is_empty() {
        return;
    }
    // Robust STL inner loops (Cleveland et al. 1990) so the anomalies do not leak into the profile.
    let mut stl = augurs_mstl::stlrs::StlParams::new();
    stl.robust(true);
    let mut mp = augurs_mstl::stlrs::MstlParams::new();
    mp.stl_params(stl);
    let model = augurs_mstl::MSTLModel::naive(periods).mstl_params(mp);
    let Ok(fit) = model.fit(&y) else { return };
    let res = fit.fit();
    let rem: Vec<f64> = res.remainder().iter().map(|&v| v as f64).collect();
    let mut w = crate::window::SortedWindow::new(rem.len().max(1));
    rem.iter().for_each(|&r| w.push(r));
    let med = w.median();
    let scale = w.scale_around(med);
    for (i, pt) in out.points.iter_mut().enumerate() {
        let expected = pt.1 - rem[i] + med;
        let mut s = verdict(pt.1, expected, scale, sd.p.threshold);
        if s.outside && s.score < 0.9 {
            s.kind = Some(Kind::SeasonalBreak);
        }
        pt.2 = s;
    }
}

/// Batch `changepoint`: Bayesian online changepoint detection (Adams & MacKay 2007, via
/// `augurs-changepoint`, Normal-Gamma prior on standardised values) marks level shifts on top of
/// the streaming CUSUM scores.
fn batch_changepoints(m: &Model, out: &mut BatchResult) {
    use augurs_changepoint::Detector as _;
    let Model::Changepoint(c) = m else { return };
    if out.points.len() < 8 {
        return;
    }
    let mut w = crate::window::SortedWindow::new(out.points.len());
    out.points.iter().for_each(|p| w.push(p.1));
    let med = w.median();
    let scale = w.scale_around(med);
    let y: Vec<f64> = out.points.iter().map(|p| (p.1 - med) / scale).collect();
    let mut det = augurs_changepoint::NormalGammaDetector::default();
    for i in det.detect_changepoints(&y) {
        if i == 0 || i >= out.points.len() {
            continue;
        }
        let s = &mut out.points[i].2;
        s.score = s.score.max(c.base.p.threshold.max(0.5));
        s.is_anomaly = true;
        s.outside = true;
        s.kind = Some(Kind::LevelShift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iforest::Corrupt;
    use crate::monitor::{MonitorState, Tracker};
    use crate::window::SortedWindow;
    use serde_json::json;

    const MIN: i64 = 60_000_000;

    /// A period-50 wave with deterministic noise and a spike at 700.
    fn points(n: usize) -> Vec<(i64, f64)> {
        (0..n as i64)
            .map(|i| {
                let noise = ((i * 7919) % 101) as f64 / 101.0 - 0.5;
                let spike = if i == 700 { 9.0 } else { 0.0 };
                let wave = (i as f64 * std::f64::consts::TAU / 50.0).sin();
                (i * MIN, wave + 0.2 * noise + spike)
            })
            .collect()
    }

    fn trained(method: &str, params: serde_json::Value, n: usize) -> Model {
        let mut m = Model::new(method, &params).expect("a detector");
        for (t, v) in points(n) {
            m.update(t, v);
        }
        m
    }

    /// The states of every method: fresh, and after enough points to warm up, find a seasonal
    /// period and fit the forest.
    fn valid_states() -> Vec<Model> {
        let mut out = Vec::new();
        for method in METHODS {
            out.push(Model::new(method, &json!({})).expect("a detector"));
            out.push(trained(method, json!({}), 1500));
        }
        out.push(trained(
            "seasonal",
            json!({"period": 50, "window": 16}),
            300,
        ));
        out.push(trained("robust", json!({"window": 4, "warmup": 2}), 300));
        out.push(trained("iforest", json!({"window": 4, "trees": 3}), 100));
        out
    }

    /// The bytes of a monitor state holding `m` (a monitor state is its model then its tracker).
    fn monitor_bytes(m: &Model) -> Vec<u8> {
        let mut b = m.to_bytes();
        b.extend(postcard::to_allocvec(&Tracker::default()).expect("encodes"));
        b
    }

    /// `m` is refused as corrupt by its check, and decoding it as a model or inside a monitor
    /// state (re-encoded with the crate's own encoder) gives the corrupt-state error.
    fn assert_refused(m: &Model, what: &str) {
        assert!(
            matches!(m.check(), Err(AnomalyError::CorruptState(_))),
            "{what}: check passed"
        );
        match Model::from_bytes(&m.to_bytes()) {
            Err(AnomalyError::CorruptState(e)) => assert!(!e.is_empty()),
            other => panic!("{what}: decoded as {other:?}"),
        }
        assert!(
            matches!(
                MonitorState::from_bytes(&monitor_bytes(m)),
                Err(AnomalyError::CorruptState(_))
            ),
            "{what}: the monitor state decoded"
        );
    }

    /// A window with the given fields, through postcard (its fields are private to `window`).
    fn raw_window(cap: usize, ring: &[f64], sorted: &[f64]) -> SortedWindow {
        #[derive(Serialize)]
        struct Raw<'a> {
            cap: usize,
            ring: &'a [f64],
            sorted: &'a [f64],
        }
        let b = postcard::to_allocvec(&Raw { cap, ring, sorted }).expect("encodes");
        postcard::from_bytes(&b).expect("decodes")
    }

    #[test]
    fn valid_states_of_every_method_pass_check_and_round_trip() {
        let states = valid_states();
        let seasonal_found = states
            .iter()
            .any(|m| matches!(m, Model::Seasonal(s) if s.p.period == 0 && s.period() == 50));
        let forest_fit = states
            .iter()
            .any(|m| matches!(m, Model::IForest(f) if f.forest.is_some()));
        assert!(
            seasonal_found && forest_fit,
            "the states cover the trained forms"
        );
        for m in &states {
            assert_eq!(m.check(), Ok(()), "{}", m.method());
            let bytes = m.to_bytes();
            let back = Model::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.to_bytes(), bytes, "{}", m.method());
            let st = MonitorState::from_bytes(&monitor_bytes(m)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(st.to_bytes(), monitor_bytes(m));
            // And the decoded state keeps working.
            let mut back = back;
            for (t, v) in points(200) {
                back.update(t + 2000 * MIN, v);
            }
            assert_eq!(back.check(), Ok(()), "{} after more points", m.method());
        }
        // Monitor states built by their own code decode too.
        for method in METHODS {
            let mut st = MonitorState::new(method, &json!({})).expect("a monitor");
            st.step(points(1500));
            assert!(MonitorState::from_bytes(&st.to_bytes()).is_ok(), "{method}");
        }
    }

    #[test]
    fn raw_windows_decode_as_pushed_ones() {
        let mut w = SortedWindow::new(4);
        w.push(3.0);
        w.push(1.0);
        assert_eq!(raw_window(4, &[3.0, 1.0], &[1.0, 3.0]), w);
    }

    #[test]
    fn crafted_params_are_refused() {
        type Edit = fn(&mut Params);
        let edits: [(&str, Edit); 9] = [
            ("window 2^40", |p| p.window = 1 << 40),
            ("window 0", |p| p.window = 0),
            ("trees usize::MAX", |p| p.trees = usize::MAX),
            ("trees 0", |p| p.trees = 0),
            ("sample_size 1", |p| p.sample_size = 1),
            ("alpha 1.5", |p| p.alpha = 1.5),
            ("alpha NaN", |p| p.alpha = f64::NAN),
            ("threshold 0", |p| p.threshold = 0.0),
            ("period > MAX_PERIOD", |p| {
                p.period = crate::detectors::MAX_PERIOD + 1
            }),
        ];
        for method in ["robust", "ewma", "seasonal", "changepoint", "iforest"] {
            for (what, edit) in edits {
                let mut m = trained(method, json!({}), 300);
                match &mut m {
                    Model::Robust(d) => edit(&mut d.p),
                    Model::Ewma(d) => edit(&mut d.p),
                    Model::Seasonal(d) => edit(&mut d.p),
                    Model::Changepoint(d) => edit(&mut d.base.p),
                    Model::IForest(d) => edit(&mut d.p),
                    Model::Auto(_) => unreachable!(),
                }
                assert_refused(&m, &format!("{method}: {what}"));
            }
        }
    }

    #[test]
    fn crafted_windows_are_refused() {
        let good = [1.0, 2.0, 3.0, 4.0];
        let cases: [(&str, SortedWindow); 7] = [
            ("another capacity", SortedWindow::new(7)),
            ("capacity 0", raw_window(0, &[], &[])),
            (
                "more values than capacity",
                raw_window(4, &[1.0; 5], &[1.0; 5]),
            ),
            ("ring longer than sorted", raw_window(4, &good, &good[..3])),
            ("sorted longer than ring", raw_window(4, &good[..3], &good)),
            ("unsorted", raw_window(4, &good, &[2.0, 1.0, 3.0, 4.0])),
            ("NaN", raw_window(4, &[1.0, f64::NAN], &[1.0, f64::NAN])),
        ];
        for (what, w) in cases {
            let mut m = trained("robust", json!({"window": 4, "warmup": 2}), 50);
            let Model::Robust(d) = &mut m else {
                unreachable!()
            };
            d.win = w.clone();
            assert_refused(&m, &format!("robust window: {what}"));
            let mut m = trained("seasonal", json!({"period": 5, "window": 4}), 50);
            let Model::Seasonal(d) = &mut m else {
                unreachable!()
            };
            d.resid = w;
            assert_refused(&m, &format!("seasonal window: {what}"));
        }
    }

    #[test]
    fn crafted_seasonal_states_are_refused() {
        type Edit = fn(&mut Seasonal);
        let edits: [(&str, Edit); 10] = [
            ("empty profile", |s| {
                // `n % profile.len()` divided by zero.
                s.profile.clear();
                s.seen.clear();
            }),
            ("seen shorter than the profile", |s| {
                // `seen[phase]` out of bounds.
                s.seen.truncate(1);
            }),
            ("profile shorter than the period", |s| {
                s.profile.truncate(10);
                s.seen.truncate(10);
            }),
            ("period not the profile's", |s| s.period = 60),
            ("no period but a profile", |s| s.period = 0),
            ("period > MAX_PERIOD", |s| {
                let n = crate::detectors::MAX_PERIOD + 1;
                s.period = n;
                s.profile = vec![0.0; n];
                s.seen = vec![false; n];
            }),
            ("NaN in the profile", |s| s.profile[3] = f64::NAN),
            ("inf in the profile", |s| s.profile[0] = f64::INFINITY),
            ("training points after the period is known", |s| {
                s.train = vec![1.0; 10]
            }),
            ("period not the params'", |s| s.p.period = 40),
        ];
        for (what, edit) in edits {
            // A found period (p.period = 0) but for the last edit, which needs a set one.
            let params = if what == "period not the params'" {
                json!({"period": 50})
            } else {
                json!({})
            };
            let mut m = trained("seasonal", params, 1500);
            let Model::Seasonal(s) = &mut m else {
                unreachable!()
            };
            assert_eq!(s.period(), 50);
            edit(s);
            assert_refused(&m, &format!("seasonal: {what}"));
        }
        // Before the period is known: the training buffer is bounded and finite.
        let fresh = || trained("seasonal", json!({}), 100);
        let mut m = fresh();
        if let Model::Seasonal(s) = &mut m {
            assert_eq!(s.period(), 0);
            s.train = vec![1.0; 4096];
        }
        assert_refused(&m, "seasonal: training buffer too long");
        let mut m = fresh();
        if let Model::Seasonal(s) = &mut m {
            s.train[5] = f64::NAN;
        }
        assert_refused(&m, "seasonal: NaN training point");
    }

    #[test]
    fn crafted_forests_are_refused() {
        let mut cases: Vec<Corrupt> = Corrupt::ALL.to_vec();
        cases.push(Corrupt::Dims(3));
        for c in cases {
            let mut m = trained("iforest", json!({}), 300);
            let Model::IForest(f) = &mut m else {
                unreachable!()
            };
            c.apply(f.forest.as_mut().expect("fitted"));
            assert_refused(&m, &format!("iforest: {c:?}"));
        }
        // Training rows next to a fitted forest, or of the wrong width, or too many.
        let mut m = trained("iforest", json!({}), 300);
        if let Model::IForest(f) = &mut m {
            f.train = vec![vec![1.0, 0.0]];
        }
        assert_refused(&m, "iforest: training rows after the fit");
        let mut m = trained("iforest", json!({}), 50);
        if let Model::IForest(f) = &mut m {
            assert!(f.forest.is_none());
            f.train[0] = vec![1.0, 0.0, 3.0];
        }
        assert_refused(&m, "iforest: a 3-wide training row");
        let mut m = trained("iforest", json!({}), 50);
        if let Model::IForest(f) = &mut m {
            f.train = vec![vec![1.0, 0.0]; 128];
        }
        assert_refused(&m, "iforest: a full training buffer");
    }
}
