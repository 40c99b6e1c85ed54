//! Tabular feature batches for drift detection: `batch,f_num1,f_num2,f_cat,f_bool`.
//!
//! The `reference` batch is drawn from
//!
//! ```text
//! f_num1 ~ N(50, 10²)
//! f_num2 = exp(N(3 + 0.01·(f_num1 − 50), 0.4²))     log-normal, correlated with f_num1
//! f_cat  ~ Categorical(A .40, B .30, C .20, D .10)
//! f_bool ~ Bernoulli(p_cat),  p = (A .15, B .25, C .35, D .50)
//! ```
//!
//! and the `current` batch from the same distribution (`none`) or with drift:
//! `shift` (f_num1 mean +8 = 0.8 σ, f_num2 log-mean +0.3), `scale` (f_num1
//! σ ×2, f_num2 log-σ ×2) or `category` (mix A .10, B .20, C .30, D .30 plus
//! an unseen category E .10).

use std::io::Write;
use std::str::FromStr;

use crate::csv::{quantize, write_fixed};
use crate::rng::Xoshiro256pp;
use crate::{Error, Result};

const STREAM_REFERENCE: u64 = 31;
const STREAM_CURRENT: u64 = 32;

/// CSV header of the features data set.
pub const HEADER: &str = "batch,f_num1,f_num2,f_cat,f_bool";

/// Kind of drift in the current batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Drift {
    /// Same distribution.
    #[default]
    None,
    /// Mean shift of the numeric features.
    Shift,
    /// Scale (variance) change of the numeric features.
    Scale,
    /// Category mix change with a new category.
    Category,
}

impl Drift {
    /// Name as accepted on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Drift::None => "none",
            Drift::Shift => "shift",
            Drift::Scale => "scale",
            Drift::Category => "category",
        }
    }
}

impl FromStr for Drift {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Drift::None),
            "shift" => Ok(Drift::Shift),
            "scale" => Ok(Drift::Scale),
            "category" => Ok(Drift::Category),
            other => Err(Error::Config(format!(
                "unknown drift {other:?} (expected none, shift, scale or category)"
            ))),
        }
    }
}

/// Which batch a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Batch {
    /// The reference (training) batch.
    Reference,
    /// The current (serving) batch.
    Current,
}

impl Batch {
    /// `reference` or `current`.
    pub fn as_str(self) -> &'static str {
        match self {
            Batch::Reference => "reference",
            Batch::Current => "current",
        }
    }
}

/// Configuration of the features generator.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturesConfig {
    /// Rows per batch.
    pub rows: u64,
    /// Master seed.
    pub seed: u64,
    /// Drift of the current batch.
    pub drift: Drift,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            rows: 5000,
            seed: 42,
            drift: Drift::None,
        }
    }
}

/// One feature row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureRow {
    /// Batch.
    pub batch: Batch,
    /// Normal feature (2 decimals).
    pub f_num1: f64,
    /// Log-normal feature (3 decimals).
    pub f_num2: f64,
    /// Category `A`..`E`.
    pub f_cat: &'static str,
    /// Boolean feature.
    pub f_bool: bool,
}

struct Dist {
    mean1: f64,
    sd1: f64,
    log_mean2: f64,
    log_sd2: f64,
    cat_weights: [f64; 5],
}

const CATS: [&str; 5] = ["A", "B", "C", "D", "E"];
const BOOL_P: [f64; 5] = [0.15, 0.25, 0.35, 0.5, 0.6];

fn dist(batch: Batch, drift: Drift) -> Dist {
    let mut d = Dist {
        mean1: 50.0,
        sd1: 10.0,
        log_mean2: 3.0,
        log_sd2: 0.4,
        cat_weights: [0.4, 0.3, 0.2, 0.1, 0.0],
    };
    if batch == Batch::Current {
        match drift {
            Drift::None => {}
            Drift::Shift => {
                d.mean1 += 8.0;
                d.log_mean2 += 0.3;
            }
            Drift::Scale => {
                d.sd1 *= 2.0;
                d.log_sd2 *= 2.0;
            }
            Drift::Category => d.cat_weights = [0.1, 0.2, 0.3, 0.3, 0.1],
        }
    }
    d
}

/// Streaming iterator over the reference rows, then the current rows.
pub struct FeatureRows {
    cfg: FeaturesConfig,
    i: u64,
    rng: Xoshiro256pp,
    dist: Dist,
    batch: Batch,
}

/// Rows for `cfg`: `rows` reference rows followed by `rows` current rows.
pub fn feature_rows(cfg: &FeaturesConfig) -> Result<FeatureRows> {
    if cfg.rows == 0 || cfg.rows > 1_000_000_000 {
        return Err(Error::Config("rows must be between 1 and 10^9".into()));
    }
    Ok(FeatureRows {
        cfg: cfg.clone(),
        i: 0,
        rng: Xoshiro256pp::stream(cfg.seed, &[STREAM_REFERENCE]),
        dist: dist(Batch::Reference, cfg.drift),
        batch: Batch::Reference,
    })
}

impl Iterator for FeatureRows {
    type Item = FeatureRow;

    fn next(&mut self) -> Option<FeatureRow> {
        if self.i == self.cfg.rows {
            if self.batch == Batch::Current {
                return None;
            }
            self.batch = Batch::Current;
            self.i = 0;
            self.rng = Xoshiro256pp::stream(self.cfg.seed, &[STREAM_CURRENT]);
            self.dist = dist(Batch::Current, self.cfg.drift);
        }
        self.i += 1;
        let d = &self.dist;
        let r = &mut self.rng;
        let f_num1 = d.mean1 + d.sd1 * r.normal();
        let f_num2 = (d.log_mean2 + 0.01 * (f_num1 - 50.0) + d.log_sd2 * r.normal()).exp();
        let cat = r.weighted(&d.cat_weights);
        let f_bool = r.chance(BOOL_P[cat]);
        Some(FeatureRow {
            batch: self.batch,
            f_num1: quantize(f_num1, 2),
            f_num2: quantize(f_num2, 3),
            f_cat: CATS[cat],
            f_bool,
        })
    }
}

/// Streams the features CSV for `cfg`; returns the number of data rows.
pub fn write_features_csv<W: Write>(cfg: &FeaturesConfig, out: &mut W) -> Result<u64> {
    let mut buf = Vec::with_capacity(1 << 17);
    buf.extend_from_slice(HEADER.as_bytes());
    buf.push(b'\n');
    let mut count = 0;
    for row in feature_rows(cfg)? {
        buf.extend_from_slice(row.batch.as_str().as_bytes());
        buf.push(b',');
        write_fixed(&mut buf, row.f_num1, 2);
        buf.push(b',');
        write_fixed(&mut buf, row.f_num2, 3);
        buf.push(b',');
        buf.extend_from_slice(row.f_cat.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(if row.f_bool { b"true" } else { b"false" });
        buf.push(b'\n');
        count += 1;
        crate::csv::flush_if_full(out, &mut buf)?;
    }
    crate::csv::finish(out, &buf)?;
    Ok(count)
}
