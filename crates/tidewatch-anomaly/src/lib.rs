//! Streaming anomaly detectors for Tidewatch (plain Rust, no pgrx).
//!
//! Every detector is causal: the score of a point uses only points before it. Per-series state is
//! bounded whatever the history length and serializes with serde, so it can be stored as a row
//! (trained models, real-time monitors). Scores are calibrated to [0, 1] so that one threshold
//! works across a whole fleet of series.
//!
//! API contract used by the extension (keep stable):
//! - [`Model::new`] builds a detector from a method name and JSON params (errors list valid names);
//! - [`Model::update`] scores a point then learns from it; [`Model::score`] scores without learning;
//! - [`Model::to_bytes`] / [`Model::from_bytes`] persist the state;
//! - [`detect`] scores a whole series in batch (sorts by time, skips and counts non-finite values).

use serde::{Deserialize, Serialize};

pub mod auto;
pub mod detectors;
pub mod device;
pub mod formats;
pub mod iforest;
mod model;
pub mod monitor;
pub mod peer;
pub mod tail;
pub mod window;
pub use iforest::{IForestParams, IsolationForest};
pub use model::{detect, BatchResult, Model, Params, StreamForest, STATE_VERSION};
pub use peer::{peer_outliers, PeerResult, PEER_METHODS};

/// Method names accepted by [`Model::new`].
pub const METHODS: &[&str] = &[
    "auto",
    "robust",
    "ewma",
    "seasonal",
    "changepoint",
    "iforest",
];

/// What kind of anomaly a point or episode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Spike,
    Dip,
    LevelShift,
    VarianceChange,
    Flatline,
    MissingData,
    SeasonalBreak,
    PeerOutlier,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spike => "spike",
            Kind::Dip => "dip",
            Kind::LevelShift => "level_shift",
            Kind::VarianceChange => "variance_change",
            Kind::Flatline => "flatline",
            Kind::MissingData => "missing_data",
            Kind::SeasonalBreak => "seasonal_break",
            Kind::PeerOutlier => "peer_outlier",
        }
    }

    /// Every kind, in the order of [`Kind::code`].
    pub const ALL: [Kind; 8] = [
        Kind::Spike,
        Kind::Dip,
        Kind::LevelShift,
        Kind::VarianceChange,
        Kind::Flatline,
        Kind::MissingData,
        Kind::SeasonalBreak,
        Kind::PeerOutlier,
    ];

    /// The kind's code in byte formats: 1 to 8 (0 stands for no kind).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The kind of a code of [`Kind::code`]; None for 0 and unknown codes.
    pub fn from_code(code: u8) -> Option<Kind> {
        code.checked_sub(1)
            .and_then(|i| Kind::ALL.get(usize::from(i)))
            .copied()
    }
}

/// The verdict on one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// What the detector expected (NaN while warming up).
    pub expected: f64,
    /// Lower and upper bound of the normal band (NaN while warming up).
    pub lower: f64,
    pub upper: f64,
    /// Calibrated anomaly score in [0, 1]; the `auto` score is event-gated (one spike per event).
    pub score: f64,
    /// Signed deviation from `expected` in robust sigmas (0 while warming up).
    pub sigma: f64,
    /// `score >= threshold`: the point opens (or is) an alarm.
    pub is_anomaly: bool,
    /// The point is outside the normal band (used to extend an open episode).
    pub outside: bool,
    /// The kind of anomaly when `outside`.
    pub kind: Option<Kind>,
}

impl Scored {
    /// The verdict for a point seen while the detector has too little history.
    pub fn warming_up() -> Self {
        Scored {
            expected: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            score: 0.0,
            sigma: 0.0,
            is_anomaly: false,
            outside: false,
            kind: None,
        }
    }
}

/// Errors of the anomaly API; each says which input is wrong and what is valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnomalyError {
    #[error("unknown method \"{name}\"")]
    UnknownMethod { name: String },
    #[error("invalid parameter \"{key}\": {reason}")]
    InvalidParam { key: String, reason: String },
    #[error("unknown parameter \"{key}\" for method \"{method}\"")]
    UnknownParam { key: String, method: String },
    #[error("params must be a JSON object, got {got}")]
    ParamsNotObject { got: String },
    #[error("model state is corrupt: {0}")]
    CorruptState(String),
    #[error("the state of this {method} detector was saved by an earlier Tidewatch (state version {version}), whose {method} state this build cannot read")]
    OldState { version: u8, method: &'static str },
}

impl AnomalyError {
    /// A hint for the user: what is valid.
    pub fn hint(&self) -> String {
        match self {
            AnomalyError::UnknownMethod { .. } => format!("valid methods: {}", METHODS.join(", ")),
            AnomalyError::InvalidParam { key, .. } | AnomalyError::UnknownParam { key, .. } => {
                let _ = key;
                format!("valid params: {}", Params::KEYS.join(", "))
            }
            AnomalyError::ParamsNotObject { .. } => {
                "pass params as a jsonb object, e.g. '{\"threshold\": 0.6}'".to_string()
            }
            AnomalyError::CorruptState(_) => {
                "retrain the model or recreate the monitor".to_string()
            }
            AnomalyError::OldState { .. } => {
                "retrain the model with tidewatch.train_detector(); monitors' states of this kind are reset by ALTER EXTENSION tidewatch UPDATE (docs/upgrading.md)".to_string()
            }
        }
    }
}
