//! # tidewatch-sample
//!
//! Deterministic, seeded generators of realistic sample data for Tidewatch,
//! together with ground-truth labels of the anomalies that were injected.
//! Every generator is a streaming iterator: nothing is buffered beyond one
//! time step (telemetry, devices) or one job cycle (ETL logs), so tens of
//! millions of rows can be written with constant memory.
//!
//! ## Determinism
//!
//! All randomness comes from [`rng::Xoshiro256pp`] (xoshiro256++), a small
//! portable PRNG whose output does not depend on the `rand` version or the
//! platform. Independent streams are derived from the user seed with
//! SplitMix64 (`seed_k = splitmix64(seed ⊕ golden·k)`), one per series and
//! purpose (parameters, noise, anomaly shapes), so the *plan* (series
//! parameters and anomaly labels) is decided up front and can be computed
//! without generating a single row ([`telemetry::telemetry_labels`]).
//!
//! ## Telemetry model ([`telemetry`])
//!
//! For series `s` at time `t` (seconds, `τ = t mod 86400` the UTC time of
//! day, `ω = 2π / 86400`):
//!
//! ```text
//! clean_s(t) = b_s + m_s·d(t) + w_s(t)                      level + linear trend + random walk
//!            + A_s·sin(ωτ + φ_s) + B_s·sin(2ωτ + ψ_s)        daily seasonality + 12 h harmonic
//! x_s(t)     = clean_s(t) + e_s(t)                            observed value
//! e_t        = φ·e_{t-1} + ε_t,  ε_t ~ N(0, σ²(1 − φ²))       AR(1) noise, marginal std σ
//! w_t        = w_{t-1} + η_t,    η_t ~ N(0, σ²·Δ/86400)       random walk, ≈ 1σ of drift per day
//! ```
//!
//! `d(t)` is the elapsed time in days and `Δ` the step. About half of the
//! series are white noise (`φ = 0`), the rest have `φ ∈ [0.3, 0.8]`.
//! `σ` is the per-series noise scale, and anomaly magnitudes are expressed in
//! units of `σ` (`magnitude_sigma` in the labels):
//!
//! | kind             | effect                                                          | duration        |
//! |------------------|-----------------------------------------------------------------|-----------------|
//! | `spike` / `dip`  | `x = clean ± k·σ`, `k ∈ [0.9M, M]`, `M ∈ [6, 10]`                | 1–3 points      |
//! | `level_shift`    | `x = clean + e + M·σ`, `|M| ∈ [4, 8]`                           | 2–8 h           |
//! | `variance_burst` | `x = clean + M·e`, `M ∈ [4, 7]`                                  | 20–40 min       |
//! | `flatline`       | `x` stuck at the last value before the window                   | 45–75 min       |
//! | `missing_data`   | rows omitted                                                    | 15–25 min       |
//! | `seasonal_break` | seasonal term multiplied by `−1` (phase flip) or `0` (removed)  | 24 h            |
//!
//! Anomalies never start in the first 15 % of the time range (so detectors
//! have a clean training window). The remaining range of each series is cut
//! into `anomalies_per_series` equal slots with one anomaly placed randomly in
//! each, so anomalies of one series never overlap. Kinds are dealt from a
//! shuffled deck containing every kind equally often, so every kind occurs as
//! soon as there are at least seven anomalies in total.
//!
//! ## Other data sets
//!
//! * [`devices`]: correlated machine metrics. Load is an AR(1) around a
//!   business-hours profile; `power = P₀ + k·load`; temperature follows a
//!   first-order lag `T_t = T_{t-1} + α(T* − T_{t-1})` with
//!   `T* = ambient + θ·power` and `α = 1 − e^{−Δ/τ}`; the fan follows
//!   temperature; the clock throttles linearly above a threshold temperature;
//!   voltage droops with power (`V = V₀ − r·power`). Injected: multi-column
//!   `stress` episodes and single-column sensor faults.
//! * [`etl_logs`]: ETL/application log lines of scheduled pipelines with
//!   error bursts (timeouts, connection errors, duplicate keys, …).
//! * [`features`]: a tabular reference/current batch pair with optional
//!   drift (mean shift, scale change, category mix change).
//!
//! All CSV timestamps are written as `YYYY-MM-DD HH:MM:SS+00` (UTC), which
//! PostgreSQL parses directly as `timestamptz`; label timestamps are RFC 3339.

pub mod csv;
pub mod devices;
pub mod etl_logs;
pub mod features;
pub mod labels;
pub mod rng;
mod slots;
pub mod stress;
pub mod telemetry;
pub mod time;

pub use labels::{Label, LabelFile, SeriesRef};
pub use telemetry::{telemetry_labels, telemetry_rows, TelemetryConfig, TelemetryRow};

/// Errors returned by the generators and writers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A timestamp could not be parsed.
    #[error("invalid timestamp {0:?}: expected RFC 3339 (2026-01-01T00:00:00Z), `2026-01-01 00:00:00+00` or `2026-01-01`")]
    Timestamp(String),
    /// Writing output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Serialising labels failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Convenience result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
