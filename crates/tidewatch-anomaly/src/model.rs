//! The detector enum the extension stores as rows, and batch detection.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

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
}

impl Default for Params {
    fn default() -> Self {
        Params {
            threshold: 0.5,
            window: 128,
            warmup: 16,
            alpha: 0.05,
        }
    }
}

impl Params {
    pub const KEYS: &'static [&'static str] = &["threshold", "window", "warmup", "alpha"];

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
                "window" => p.window = int_in(k, num()?, 4, 100_000)?,
                "warmup" => p.warmup = int_in(k, num()?, 2, 100_000)?,
                "alpha" => {
                    let x = num()?;
                    if !(x > 0.0 && x < 1.0) {
                        return Err(invalid(k, "must be in (0, 1)"));
                    }
                    p.alpha = x;
                }
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

/// Map a deviation in robust sigmas to [0, 1]: 0 below 3σ, 0.5 at 5σ, → 1 far out.
fn calibrate(z: f64) -> f64 {
    let a = z.abs();
    if a <= 3.0 {
        0.0
    } else {
        1.0 - (-(a - 3.0) * std::f64::consts::LN_2 / 2.0).exp()
    }
}

/// Robust rolling median / MAD z-score (Hampel filter; Hampel 1974, MAD scaled by 1.4826).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Robust {
    p: Params,
    buf: VecDeque<f64>,
}

impl Robust {
    fn new(p: Params) -> Self {
        Robust {
            buf: VecDeque::with_capacity(p.window),
            p,
        }
    }

    fn score(&self, value: f64) -> Scored {
        if self.buf.len() < self.p.warmup {
            return Scored::warming_up();
        }
        let mut v: Vec<f64> = self.buf.iter().copied().collect();
        let med = median(&mut v);
        for x in v.iter_mut() {
            *x = (*x - med).abs();
        }
        let mad = median(&mut v) * 1.4826;
        // MAD = 0 (a mostly constant window): fall back to a scale relative to the level.
        let scale = if mad > 0.0 {
            mad
        } else {
            1e-9 * med.abs().max(1.0)
        };
        let z = (value - med) / scale;
        let score = calibrate(z);
        let outside = z.abs() > 3.0;
        Scored {
            expected: med,
            lower: med - 3.0 * scale,
            upper: med + 3.0 * scale,
            score,
            sigma: z,
            is_anomaly: score >= self.p.threshold,
            outside,
            kind: outside.then(|| if z > 0.0 { Kind::Spike } else { Kind::Dip }),
        }
    }

    fn learn(&mut self, value: f64) {
        if self.buf.len() == self.p.window {
            self.buf.pop_front();
        }
        self.buf.push_back(value);
    }
}

fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lo = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + m) / 2.0
    }
}

/// Exponentially weighted mean and variance (West 1979 / Finch 2009 incremental form).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ewma {
    p: Params,
    n: u64,
    mean: f64,
    var: f64,
}

impl Ewma {
    fn score(&self, value: f64) -> Scored {
        if (self.n as usize) < self.p.warmup {
            return Scored::warming_up();
        }
        let sd = self.var.sqrt();
        let scale = if sd > 0.0 {
            sd
        } else {
            1e-9 * self.mean.abs().max(1.0)
        };
        let z = (value - self.mean) / scale;
        let score = calibrate(z);
        let outside = z.abs() > 3.0;
        Scored {
            expected: self.mean,
            lower: self.mean - 3.0 * scale,
            upper: self.mean + 3.0 * scale,
            score,
            sigma: z,
            is_anomaly: score >= self.p.threshold,
            outside,
            kind: outside.then(|| if z > 0.0 { Kind::Spike } else { Kind::Dip }),
        }
    }

    fn learn(&mut self, value: f64) {
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
}

/// A per-series detector, stored as a row by the extension.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Model {
    Robust(Robust),
    Ewma(Ewma),
}

impl Model {
    /// Build the detector for `method` (see [`METHODS`]) with JSON `params`.
    pub fn new(method: &str, params: &serde_json::Value) -> Result<Model, AnomalyError> {
        let p = Params::from_json(method, params)?;
        match method {
            "auto" | "robust" => Ok(Model::Robust(Robust::new(p))),
            "ewma" => Ok(Model::Ewma(Ewma {
                p,
                n: 0,
                mean: 0.0,
                var: 0.0,
            })),
            _ => {
                debug_assert!(!METHODS.contains(&method));
                Err(AnomalyError::UnknownMethod {
                    name: method.to_string(),
                })
            }
        }
    }

    /// Score `value` at `ts` (µs since the epoch) against the past, without learning from it.
    pub fn score(&self, _ts: i64, value: f64) -> Scored {
        if !value.is_finite() {
            return Scored::warming_up();
        }
        match self {
            Model::Robust(d) => d.score(value),
            Model::Ewma(d) => d.score(value),
        }
    }

    /// Score then learn from the point. Non-finite values are neither scored nor learned.
    pub fn update(&mut self, ts: i64, value: f64) -> Scored {
        if !value.is_finite() {
            return Scored::warming_up();
        }
        let s = self.score(ts, value);
        match self {
            Model::Robust(d) => d.learn(value),
            Model::Ewma(d) => d.learn(value),
        }
        s
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Model, AnomalyError> {
        serde_json::from_slice(b).map_err(|e| AnomalyError::CorruptState(e.to_string()))
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
    Ok(out)
}
