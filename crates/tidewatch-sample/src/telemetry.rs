//! Satellite-style telemetry: `satellites × metrics` regularly sampled
//! series with seasonality, trend, AR(1) noise and injected anomalies.
//! See the crate documentation for the model.
//!
//! ```
//! use tidewatch_sample::telemetry::{telemetry_labels, telemetry_rows, TelemetryConfig};
//! let cfg = TelemetryConfig { days: 1.0, step_secs: 60, satellites: 1, metrics: 2, ..Default::default() };
//! let labels = telemetry_labels(&cfg)?;            // known without generating rows
//! let rows: Vec<_> = telemetry_rows(&cfg)?.take(10).collect();
//! assert_eq!(rows[0].metric, 1);
//! assert_eq!(rows[1].metric, 2);
//! assert_eq!(labels.len(), 6);
//! # Ok::<(), tidewatch_sample::Error>(())
//! ```

use std::f64::consts::TAU;
use std::io::Write;

use chrono::{DateTime, TimeZone, Utc};

use crate::csv::{decimals_for, quantize, write_fixed};
use crate::labels::{Label, LabelFile, SeriesRef};
use crate::rng::Xoshiro256pp;
pub use crate::slots::WARMUP_FRACTION;
use crate::slots::{deck, points, warmup_ticks, Slots};
use crate::time::{rfc3339, write_pg_ts, DAY};
use crate::{Error, Result};

const STREAM_PARAMS: u64 = 1;
const STREAM_PLAN: u64 = 2;
const STREAM_NOISE: u64 = 3;
const STREAM_SHAPE: u64 = 4;

/// Upper bound on the number of time steps, to catch typos such as
/// `--step-secs 0.001`.
const MAX_TICKS: u64 = 1 << 32;

/// Default start: 2026-01-01T00:00:00Z.
pub fn default_start() -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Configuration of the telemetry generator.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Timestamp of the first row.
    pub start: DateTime<Utc>,
    /// Length of the range in days (fractions allowed).
    pub days: f64,
    /// Sampling step in seconds.
    pub step_secs: u32,
    /// Number of satellites (`SAT1..SATn`).
    pub satellites: u32,
    /// Metrics per satellite (`SCH.M1..SCH.Mm`).
    pub metrics: u32,
    /// Master seed.
    pub seed: u64,
    /// Anomalies injected into every series.
    pub anomalies_per_series: u32,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            start: default_start(),
            days: 21.0,
            step_secs: 5,
            satellites: 4,
            metrics: 15,
            seed: 42,
            anomalies_per_series: 3,
        }
    }
}

impl TelemetryConfig {
    /// Number of time steps (`⌊days · 86400 / step⌋`).
    pub fn ticks(&self) -> u64 {
        if self.step_secs == 0 || !self.days.is_finite() || self.days <= 0.0 {
            return 0;
        }
        (self.days * DAY as f64 / f64::from(self.step_secs)).floor() as u64
    }

    /// Number of series (`satellites × metrics`).
    pub fn series_count(&self) -> usize {
        self.satellites as usize * self.metrics as usize
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.step_secs == 0 {
            return Err(Error::Config("step_secs must be at least 1".into()));
        }
        if !self.days.is_finite() || self.days <= 0.0 {
            return Err(Error::Config("days must be a positive number".into()));
        }
        let ticks = self.ticks();
        if ticks == 0 {
            return Err(Error::Config(
                "the time range is shorter than one step".into(),
            ));
        }
        if ticks > MAX_TICKS {
            return Err(Error::Config(format!(
                "{ticks} time steps is too many (max {MAX_TICKS})"
            )));
        }
        if !(1..=10_000).contains(&self.satellites) || !(1..=10_000).contains(&self.metrics) {
            return Err(Error::Config(
                "satellites and metrics must be between 1 and 10000".into(),
            ));
        }
        if self.anomalies_per_series > 10_000 {
            return Err(Error::Config(
                "anomalies_per_series must be at most 10000".into(),
            ));
        }
        Ok(())
    }
}

/// Kinds of injected telemetry anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// 1–3 points far above the signal.
    Spike,
    /// 1–3 points far below the signal.
    Dip,
    /// The level moves by several σ for hours.
    LevelShift,
    /// The noise becomes several times larger for ~30 min.
    VarianceBurst,
    /// Stuck sensor: a constant value for ~1 h.
    Flatline,
    /// Rows omitted for ~20 min.
    MissingData,
    /// The daily pattern is phase-flipped or removed for a day.
    SeasonalBreak,
}

impl AnomalyKind {
    /// All kinds, in label-name order of the docs.
    pub const ALL: [AnomalyKind; 7] = [
        AnomalyKind::Spike,
        AnomalyKind::Dip,
        AnomalyKind::LevelShift,
        AnomalyKind::VarianceBurst,
        AnomalyKind::Flatline,
        AnomalyKind::MissingData,
        AnomalyKind::SeasonalBreak,
    ];

    /// Label name (`spike`, `level_shift`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Spike => "spike",
            AnomalyKind::Dip => "dip",
            AnomalyKind::LevelShift => "level_shift",
            AnomalyKind::VarianceBurst => "variance_burst",
            AnomalyKind::Flatline => "flatline",
            AnomalyKind::MissingData => "missing_data",
            AnomalyKind::SeasonalBreak => "seasonal_break",
        }
    }
}

/// Parameters of one series (decided from the seed, see the crate docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesModel {
    /// Satellite number, 1-based.
    pub satellite: u32,
    /// Metric number, 1-based.
    pub metric: u32,
    /// Base level `b`.
    pub base: f64,
    /// Marginal noise standard deviation `σ`.
    pub sigma: f64,
    /// Daily amplitude `A`.
    pub daily_amp: f64,
    /// 12-hour harmonic amplitude `B`.
    pub harmonic_amp: f64,
    /// Daily phase `φ` (radians).
    pub daily_phase: f64,
    /// Harmonic phase `ψ` (radians).
    pub harmonic_phase: f64,
    /// Linear trend per day.
    pub slope_per_day: f64,
    /// Random-walk increment std per step.
    pub walk_step_sigma: f64,
    /// AR(1) coefficient (0 = white noise).
    pub phi: f64,
    /// Decimals written to CSV (≈ 6 significant digits).
    pub decimals: u32,
}

impl SeriesModel {
    /// Satellite name, e.g. `SAT2`.
    pub fn satellite_name(&self) -> String {
        satellite_name(self.satellite)
    }

    /// Metric name, e.g. `SCH.M1`.
    pub fn metric_name(&self) -> String {
        metric_name(self.metric)
    }

    fn generate(seed: u64, satellite: u32, metric: u32, step_secs: u32) -> Self {
        let mut r = Xoshiro256pp::stream(
            seed,
            &[STREAM_PARAMS, u64::from(satellite), u64::from(metric)],
        );
        let zero_centred = r.chance(0.15);
        let magnitude = 10f64.powf(r.uniform(-0.5, 3.7));
        let base = if zero_centred { 0.0 } else { magnitude };
        let sigma = magnitude * r.uniform(0.004, 0.02);
        let daily_amp = sigma * r.uniform(3.0, 12.0);
        let harmonic_amp = daily_amp * r.uniform(0.1, 0.4);
        let daily_phase = r.uniform(0.0, TAU);
        let harmonic_phase = r.uniform(0.0, TAU);
        let slope_per_day = sigma * r.uniform(-0.3, 0.3);
        // Random walk: ≈ 0.5 σ of drift per day whatever the step.
        let walk_step_sigma = 0.5 * sigma * (f64::from(step_secs) / DAY as f64).sqrt();
        let phi = if r.chance(0.5) {
            0.0
        } else {
            r.uniform(0.3, 0.8)
        };
        // Sensor resolution: ~6 significant digits of the typical value
        // (the level, or the daily swing for zero-centred series).
        let typical = if zero_centred {
            daily_amp + harmonic_amp
        } else {
            magnitude
        };
        let decimals = decimals_for(typical, 6);
        Self {
            satellite,
            metric,
            base,
            sigma,
            daily_amp,
            harmonic_amp,
            daily_phase,
            harmonic_phase,
            slope_per_day,
            walk_step_sigma,
            phi,
            decimals,
        }
    }
}

/// Satellite name for a 1-based number.
pub fn satellite_name(n: u32) -> String {
    format!("SAT{n}")
}

/// Metric name for a 1-based number.
pub fn metric_name(n: u32) -> String {
    format!("SCH.M{n}")
}

/// One anomaly as planned, in step indices.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAnomaly {
    /// Index of the series (`(satellite-1)·metrics + (metric-1)`).
    pub series: usize,
    /// The kind.
    pub kind: AnomalyKind,
    /// First affected step index.
    pub start_idx: u64,
    /// Number of affected steps (≥ 1).
    pub len: u64,
    /// Signed magnitude in σ (spike/dip/level shift), noise multiplier
    /// (variance burst) or seasonal factor (seasonal break: −1 or 0).
    pub param: f64,
    /// Value reported as `magnitude_sigma`.
    pub magnitude_sigma: Option<f64>,
}

impl PlannedAnomaly {
    /// Last affected step index (inclusive).
    pub fn end_idx(&self) -> u64 {
        self.start_idx + self.len - 1
    }

    /// Whether step `i` is inside the anomaly.
    pub fn contains(&self, i: u64) -> bool {
        i >= self.start_idx && i <= self.end_idx()
    }
}

/// Everything decided up front: series parameters and anomalies.
#[derive(Debug, Clone)]
pub struct TelemetryPlan {
    /// The configuration the plan was made for.
    pub config: TelemetryConfig,
    /// Unix seconds of the first row.
    pub start_unix: i64,
    /// Number of time steps.
    pub ticks: u64,
    /// Series in output order (satellite-major).
    pub series: Vec<SeriesModel>,
    /// Anomalies per series, sorted by start.
    pub anomalies: Vec<Vec<PlannedAnomaly>>,
}

impl TelemetryPlan {
    /// Builds the plan for `cfg`.
    pub fn new(cfg: &TelemetryConfig) -> Result<Self> {
        cfg.validate()?;
        let ticks = cfg.ticks();
        let mut series = Vec::with_capacity(cfg.series_count());
        for sat in 1..=cfg.satellites {
            for metric in 1..=cfg.metrics {
                series.push(SeriesModel::generate(cfg.seed, sat, metric, cfg.step_secs));
            }
        }
        let anomalies = plan_anomalies(cfg, ticks, &series);
        Ok(Self {
            config: cfg.clone(),
            start_unix: cfg.start.timestamp(),
            ticks,
            series,
            anomalies,
        })
    }

    /// Unix seconds of step `i`.
    pub fn ts_of(&self, i: u64) -> i64 {
        self.start_unix + i as i64 * i64::from(self.config.step_secs)
    }

    /// First step index at which anomalies may start.
    pub fn warmup_ticks(&self) -> u64 {
        warmup_ticks(self.ticks)
    }

    /// Exact number of rows the generator emits.
    pub fn expected_rows(&self) -> u64 {
        let missing: u64 = self
            .anomalies
            .iter()
            .flatten()
            .filter(|a| a.kind == AnomalyKind::MissingData)
            .map(|a| a.len)
            .sum();
        self.ticks * self.series.len() as u64 - missing
    }

    /// The anomalies as labels.
    pub fn labels(&self) -> Vec<Label> {
        let mut out = Vec::new();
        for a in self.anomalies.iter().flatten() {
            let s = &self.series[a.series];
            let detail = match a.kind {
                AnomalyKind::SeasonalBreak if a.param < 0.0 => Some("phase_flip".to_string()),
                AnomalyKind::SeasonalBreak => Some("removed".to_string()),
                _ => None,
            };
            out.push(Label {
                series: SeriesRef::telemetry(s.satellite_name(), s.metric_name()),
                kind: a.kind.as_str().to_string(),
                start: rfc3339(self.ts_of(a.start_idx)),
                end: rfc3339(self.ts_of(a.end_idx())),
                magnitude_sigma: a.magnitude_sigma,
                columns: Vec::new(),
                detail,
            });
        }
        out
    }

    /// The label file (labels sorted by start).
    pub fn label_file(&self) -> LabelFile {
        LabelFile::new(
            "telemetry",
            self.config.seed,
            rfc3339(self.start_unix),
            rfc3339(self.ts_of(self.ticks)),
            Some(u64::from(self.config.step_secs)),
            self.labels(),
        )
    }
}

fn plan_anomalies(
    cfg: &TelemetryConfig,
    ticks: u64,
    series: &[SeriesModel],
) -> Vec<Vec<PlannedAnomaly>> {
    let mut out = vec![Vec::new(); series.len()];
    let slots = Slots::new(ticks, u64::from(cfg.anomalies_per_series));
    if slots.count == 0 {
        return out;
    }
    let per_series = slots.count as usize;
    // Every kind equally often, shuffled: each kind appears as soon as there
    // are at least 7 anomalies in total.
    let deck = deck(
        &AnomalyKind::ALL,
        series.len() * per_series,
        &mut Xoshiro256pp::stream(cfg.seed, &[STREAM_PLAN]),
    );
    let step = cfg.step_secs;
    for (si, s) in series.iter().enumerate() {
        for slot in 0..slots.count {
            let kind = deck[si * per_series + slot as usize];
            let mut r = Xoshiro256pp::stream(
                cfg.seed,
                &[
                    STREAM_PLAN,
                    u64::from(s.satellite),
                    u64::from(s.metric),
                    slot,
                ],
            );
            let (want, param, magnitude) = match kind {
                AnomalyKind::Spike => {
                    let m = r.uniform(6.0, 10.0);
                    (r.int_in(1, 3), m, Some(m))
                }
                AnomalyKind::Dip => {
                    let m = -r.uniform(6.0, 10.0);
                    (r.int_in(1, 3), m, Some(m))
                }
                AnomalyKind::LevelShift => {
                    let m = r.sign() * r.uniform(4.0, 8.0);
                    (points(r.uniform(2.0, 8.0) * 3600.0, step, 1), m, Some(m))
                }
                AnomalyKind::VarianceBurst => {
                    let m = r.uniform(4.0, 7.0);
                    (points(r.uniform(20.0, 40.0) * 60.0, step, 2), m, Some(m))
                }
                AnomalyKind::Flatline => (points(r.uniform(45.0, 75.0) * 60.0, step, 2), 0.0, None),
                AnomalyKind::MissingData => {
                    (points(r.uniform(15.0, 25.0) * 60.0, step, 1), 0.0, None)
                }
                AnomalyKind::SeasonalBreak => {
                    let factor = if r.chance(0.5) { -1.0 } else { 0.0 };
                    // Peak deviation |(factor − 1)| · (A + B), in σ.
                    let dev = (1.0 - factor) * (s.daily_amp + s.harmonic_amp) / s.sigma;
                    (points(DAY as f64, step, 1), factor, Some(dev))
                }
            };
            let (start_idx, len) = slots.place(slot, want, &mut r);
            out[si].push(PlannedAnomaly {
                series: si,
                kind,
                start_idx,
                len,
                param,
                magnitude_sigma: magnitude.map(|m| (m * 100.0).round() / 100.0),
            });
        }
    }
    out
}

/// The plan's labels for `cfg`, computed without generating rows.
pub fn telemetry_labels(cfg: &TelemetryConfig) -> Result<Vec<Label>> {
    Ok(TelemetryPlan::new(cfg)?.labels())
}

/// One telemetry row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TelemetryRow {
    /// Unix seconds.
    pub ts: i64,
    /// Step index.
    pub tick: u64,
    /// Series index (`(satellite-1)·metrics + (metric-1)`).
    pub series: usize,
    /// Satellite number, 1-based.
    pub satellite: u32,
    /// Metric number, 1-based.
    pub metric: u32,
    /// Observed value, rounded to the series' decimals (exactly what the CSV
    /// holds).
    pub value: f64,
    /// The clean signal (level + trend + walk + seasonality), without noise
    /// or anomalies.
    pub clean: f64,
}

impl TelemetryRow {
    /// Timestamp as a `DateTime`.
    pub fn datetime(&self) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(self.ts, 0).single()
    }
}

struct SeriesState {
    noise: Xoshiro256pp,
    shape: Xoshiro256pp,
    /// AR(1) noise `e_t`.
    e: f64,
    /// Random walk `w_t`.
    walk: f64,
    last_value: f64,
    stuck: f64,
    /// Index of the next anomaly that is not yet finished.
    next: usize,
    /// Precomputed `A cos φ, A sin φ, B cos ψ, B sin ψ`.
    seas: [f64; 4],
    innovation_sigma: f64,
}

/// Streaming iterator over telemetry rows, ordered by time then series.
pub struct TelemetryRows {
    plan: TelemetryPlan,
    states: Vec<SeriesState>,
    tick: u64,
    series: usize,
    ts: i64,
    trig: [f64; 4],
    days: f64,
}

/// Rows for `cfg`, generated lazily.
pub fn telemetry_rows(cfg: &TelemetryConfig) -> Result<TelemetryRows> {
    Ok(TelemetryRows::new(TelemetryPlan::new(cfg)?))
}

impl TelemetryRows {
    /// Iterator over the rows of `plan`.
    pub fn new(plan: TelemetryPlan) -> Self {
        let seed = plan.config.seed;
        let states = plan
            .series
            .iter()
            .map(|s| {
                let path = [u64::from(s.satellite), u64::from(s.metric)];
                let mut noise = Xoshiro256pp::stream(seed, &[STREAM_NOISE, path[0], path[1]]);
                let e = s.sigma * noise.normal();
                SeriesState {
                    noise,
                    shape: Xoshiro256pp::stream(seed, &[STREAM_SHAPE, path[0], path[1]]),
                    e,
                    walk: 0.0,
                    last_value: s.base,
                    stuck: s.base,
                    next: 0,
                    seas: [
                        s.daily_amp * s.daily_phase.cos(),
                        s.daily_amp * s.daily_phase.sin(),
                        s.harmonic_amp * s.harmonic_phase.cos(),
                        s.harmonic_amp * s.harmonic_phase.sin(),
                    ],
                    innovation_sigma: s.sigma * (1.0 - s.phi * s.phi).sqrt(),
                }
            })
            .collect();
        let mut it = Self {
            plan,
            states,
            tick: 0,
            series: 0,
            ts: 0,
            trig: [0.0; 4],
            days: 0.0,
        };
        it.enter_tick();
        it
    }

    /// The plan being generated.
    pub fn plan(&self) -> &TelemetryPlan {
        &self.plan
    }

    fn enter_tick(&mut self) {
        self.ts = self.plan.ts_of(self.tick);
        let tod = self.ts.rem_euclid(DAY) as f64 / DAY as f64;
        let (s1, c1) = (TAU * tod).sin_cos();
        let (s2, c2) = (2.0 * TAU * tod).sin_cos();
        self.trig = [s1, c1, s2, c2];
        self.days = (self.tick * u64::from(self.plan.config.step_secs)) as f64 / DAY as f64;
    }

    /// Advances series `si` by one step; returns `(value, clean)` or `None`
    /// if the point is missing.
    #[inline]
    fn step_series(&mut self, si: usize) -> Option<(f64, f64)> {
        let i = self.tick;
        let m = &self.plan.series[si];
        let st = &mut self.states[si];
        if i > 0 {
            st.walk += m.walk_step_sigma * st.noise.normal();
            st.e = m.phi * st.e + st.innovation_sigma * st.noise.normal();
        }
        let [s1, c1, s2, c2] = self.trig;
        // A sin(θ+φ) + B sin(2θ+ψ) expanded with the angle-sum identity.
        let seasonal = st.seas[0] * s1 + st.seas[1] * c1 + st.seas[2] * s2 + st.seas[3] * c2;
        let level = m.base + m.slope_per_day * self.days + st.walk;
        let clean = level + seasonal;

        let anomalies = &self.plan.anomalies[si];
        while st.next < anomalies.len() && anomalies[st.next].end_idx() < i {
            st.next += 1;
        }
        let active = anomalies.get(st.next).filter(|a| a.contains(i));
        let raw = match active {
            None => clean + st.e,
            Some(a) => match a.kind {
                AnomalyKind::Spike | AnomalyKind::Dip => {
                    clean + a.param * st.shape.uniform(0.9, 1.0) * m.sigma
                }
                AnomalyKind::LevelShift => clean + st.e + a.param * m.sigma,
                AnomalyKind::VarianceBurst => clean + a.param * st.e,
                AnomalyKind::Flatline => {
                    if i == a.start_idx {
                        st.stuck = st.last_value;
                    }
                    st.stuck
                }
                AnomalyKind::MissingData => return None,
                AnomalyKind::SeasonalBreak => level + a.param * seasonal + st.e,
            },
        };
        let value = quantize(raw, m.decimals);
        st.last_value = value;
        Some((value, clean))
    }
}

impl Iterator for TelemetryRows {
    type Item = TelemetryRow;

    fn next(&mut self) -> Option<TelemetryRow> {
        let n_series = self.plan.series.len();
        loop {
            if self.tick >= self.plan.ticks {
                return None;
            }
            if self.series == n_series {
                self.series = 0;
                self.tick += 1;
                if self.tick >= self.plan.ticks {
                    return None;
                }
                self.enter_tick();
            }
            let si = self.series;
            self.series += 1;
            if let Some((value, clean)) = self.step_series(si) {
                let m = &self.plan.series[si];
                return Some(TelemetryRow {
                    ts: self.ts,
                    tick: self.tick,
                    series: si,
                    satellite: m.satellite,
                    metric: m.metric,
                    value,
                    clean,
                });
            }
        }
    }
}

/// CSV header of the telemetry data set.
pub const HEADER: &str = "ts,satellite,metric,value";

/// Streams the CSV for `cfg` into `out`; returns the number of data rows.
pub fn write_telemetry_csv<W: Write>(cfg: &TelemetryConfig, out: &mut W) -> Result<u64> {
    write_rows_csv(telemetry_rows(cfg)?, out)
}

/// Streams `rows` (of one plan) as CSV into `out`; returns the row count.
pub fn write_rows_csv<W: Write>(rows: TelemetryRows, out: &mut W) -> Result<u64> {
    let prefixes: Vec<Vec<u8>> = rows
        .plan()
        .series
        .iter()
        .map(|s| format!(",{},{},", s.satellite_name(), s.metric_name()).into_bytes())
        .collect();
    let decimals: Vec<u32> = rows.plan().series.iter().map(|s| s.decimals).collect();
    let mut buf = Vec::with_capacity(1 << 17);
    buf.extend_from_slice(HEADER.as_bytes());
    buf.push(b'\n');
    let mut ts_bytes = Vec::with_capacity(32);
    let mut cur_ts = None;
    let mut count = 0u64;
    for row in rows {
        if cur_ts != Some(row.ts) {
            ts_bytes.clear();
            write_pg_ts(&mut ts_bytes, row.ts);
            cur_ts = Some(row.ts);
        }
        buf.extend_from_slice(&ts_bytes);
        buf.extend_from_slice(&prefixes[row.series]);
        write_fixed(&mut buf, row.value, decimals[row.series]);
        buf.push(b'\n');
        count += 1;
        crate::csv::flush_if_full(out, &mut buf)?;
    }
    crate::csv::finish(out, &buf)?;
    Ok(count)
}
