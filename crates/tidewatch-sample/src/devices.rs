//! Correlated machine metrics: `ts,device,temperature,power,load,voltage,fan,clock`.
//!
//! Per device and step `Δ`:
//!
//! ```text
//! load_t  = clamp(l₀ + l₁·p(t)·w(t) + job(t) + u_t, 0.5, 100)   u_t AR(1), φ = e^{−Δ/600 s}
//! power_t = P₀ + k·load_t + N(0, 2²)                            W
//! T*_t    = ambient(t) + θ·power_t                              steady-state temperature
//! T_t     = T_{t−1} + α·(T*_t − T_{t−1}) + N(0, 0.1²),  α = 1 − e^{−Δ/τ}
//! fan_t   = f_min + (f_max − f_min)·clamp((T_t − 40)/(T_thr − 40), 0, 1) + N(0, 30²)
//! clock_t = f_nom · max(0.5, 1 − κ·(T_t − T_thr)⁺)              rounded to 25 MHz
//! volt_t  = V₀ − r·power_t + N(0, 0.004²)
//! ```
//!
//! `p(t)` is a business-hours bump peaking in the afternoon, `w(t)` damps
//! weekends, `job(t)` is a nightly batch job. `θ` is chosen so that full load
//! heats the device above its throttle temperature `T_thr`.
//!
//! Injected anomalies (one per slot after the 15 % warm-up):
//! `stress` (load pinned at 95–100 % for 30–120 min: power, temperature and
//! fan rise, clock throttles), and single-column sensor faults on
//! temperature/power/voltage/fan: `stuck_sensor` (constant, 1–3 h),
//! `sensor_spike` (1–2 points, ±6–10 column σ), `sensor_dropout` (empty
//! field, 10–60 min) and `sensor_drift` (linear bias ramp to ±4–8 σ over
//! 2–6 h). Column σ: temperature 2 °C, power 8 W, voltage 0.02 V, fan 100 rpm.

use std::f64::consts::TAU;
use std::io::Write;

use chrono::{DateTime, Utc};

use crate::csv::{quantize, write_fixed};
use crate::labels::{Label, LabelFile, SeriesRef};
use crate::rng::Xoshiro256pp;
use crate::slots::{deck, points, Slots};
use crate::telemetry::default_start;
use crate::time::{rfc3339, write_pg_ts, DAY};
use crate::{Error, Result};

const STREAM_PARAMS: u64 = 11;
const STREAM_PLAN: u64 = 12;
const STREAM_NOISE: u64 = 13;
const STREAM_SHAPE: u64 = 14;

/// CSV header of the devices data set.
pub const HEADER: &str = "ts,device,temperature,power,load,voltage,fan,clock";

/// Configuration of the devices generator.
#[derive(Debug, Clone, PartialEq)]
pub struct DevicesConfig {
    /// Timestamp of the first row.
    pub start: DateTime<Utc>,
    /// Length in days.
    pub days: f64,
    /// Sampling step in seconds.
    pub step_secs: u32,
    /// Number of devices (`dev-01`…).
    pub devices: u32,
    /// Master seed.
    pub seed: u64,
    /// Anomalies per device.
    pub anomalies_per_device: u32,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            start: default_start(),
            days: 7.0,
            step_secs: 60,
            devices: 20,
            seed: 42,
            anomalies_per_device: 2,
        }
    }
}

impl DevicesConfig {
    /// Number of time steps.
    pub fn ticks(&self) -> u64 {
        if self.step_secs == 0 || !self.days.is_finite() || self.days <= 0.0 {
            return 0;
        }
        (self.days * DAY as f64 / f64::from(self.step_secs)).floor() as u64
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.step_secs == 0 || !self.days.is_finite() || self.days <= 0.0 {
            return Err(Error::Config(
                "days must be positive and step_secs at least 1".into(),
            ));
        }
        if self.ticks() == 0 || self.ticks() > 1 << 32 {
            return Err(Error::Config(format!(
                "{} time steps is out of range",
                self.ticks()
            )));
        }
        if !(1..=100_000).contains(&self.devices) {
            return Err(Error::Config("devices must be between 1 and 100000".into()));
        }
        if self.anomalies_per_device > 10_000 {
            return Err(Error::Config("too many anomalies per device".into()));
        }
        Ok(())
    }
}

/// A data column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// °C.
    Temperature,
    /// W.
    Power,
    /// %.
    Load,
    /// V.
    Voltage,
    /// rpm.
    Fan,
    /// MHz.
    Clock,
}

impl Column {
    /// Column name in the CSV header.
    pub fn as_str(self) -> &'static str {
        match self {
            Column::Temperature => "temperature",
            Column::Power => "power",
            Column::Load => "load",
            Column::Voltage => "voltage",
            Column::Fan => "fan",
            Column::Clock => "clock",
        }
    }

    /// Typical variability used as σ for fault magnitudes.
    pub fn sigma(self) -> f64 {
        match self {
            Column::Temperature => 2.0,
            Column::Power => 8.0,
            Column::Load => 5.0,
            Column::Voltage => 0.02,
            Column::Fan => 100.0,
            Column::Clock => 50.0,
        }
    }

    fn index(self) -> usize {
        match self {
            Column::Temperature => 0,
            Column::Power => 1,
            Column::Load => 2,
            Column::Voltage => 3,
            Column::Fan => 4,
            Column::Clock => 5,
        }
    }

    fn decimals(self) -> u32 {
        match self {
            Column::Temperature | Column::Power | Column::Load => 1,
            Column::Voltage => 3,
            Column::Fan | Column::Clock => 0,
        }
    }

    /// Columns in CSV order.
    pub const ALL: [Column; 6] = [
        Column::Temperature,
        Column::Power,
        Column::Load,
        Column::Voltage,
        Column::Fan,
        Column::Clock,
    ];
}

/// Columns that sensor faults can hit.
const SENSOR_COLUMNS: [Column; 4] = [
    Column::Temperature,
    Column::Power,
    Column::Voltage,
    Column::Fan,
];

/// Device anomaly kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceAnomalyKind {
    /// Multi-column overload episode.
    Stress,
    /// One column constant.
    StuckSensor,
    /// One column, 1–2 outlier points.
    SensorSpike,
    /// One column empty.
    SensorDropout,
    /// One column drifts away, then recovers.
    SensorDrift,
}

impl DeviceAnomalyKind {
    /// All kinds.
    pub const ALL: [DeviceAnomalyKind; 5] = [
        DeviceAnomalyKind::Stress,
        DeviceAnomalyKind::StuckSensor,
        DeviceAnomalyKind::SensorSpike,
        DeviceAnomalyKind::SensorDropout,
        DeviceAnomalyKind::SensorDrift,
    ];

    /// Label name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceAnomalyKind::Stress => "stress",
            DeviceAnomalyKind::StuckSensor => "stuck_sensor",
            DeviceAnomalyKind::SensorSpike => "sensor_spike",
            DeviceAnomalyKind::SensorDropout => "sensor_dropout",
            DeviceAnomalyKind::SensorDrift => "sensor_drift",
        }
    }
}

/// A planned device anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceAnomaly {
    /// Device index (0-based).
    pub device: usize,
    /// Kind.
    pub kind: DeviceAnomalyKind,
    /// Column hit by a sensor fault (`None` for stress).
    pub column: Option<Column>,
    /// First step index.
    pub start_idx: u64,
    /// Number of steps.
    pub len: u64,
    /// Signed magnitude in column σ (spike, drift) or the stress load level.
    pub param: f64,
}

impl DeviceAnomaly {
    /// Last affected step (inclusive).
    pub fn end_idx(&self) -> u64 {
        self.start_idx + self.len - 1
    }
}

/// Per-device physical parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceModel {
    /// Device name.
    pub name: String,
    idle_power: f64,
    watts_per_load: f64,
    ambient: f64,
    theta: f64,
    tau_secs: f64,
    throttle_temp: f64,
    throttle_slope: f64,
    nominal_clock: f64,
    fan_min: f64,
    fan_max: f64,
    v_nominal: f64,
    v_droop: f64,
    load_base: f64,
    load_peak: f64,
    peak_hour: f64,
    load_sigma: f64,
    job_hour: f64,
    job_minutes: f64,
    job_load: f64,
}

impl DeviceModel {
    fn generate(seed: u64, idx: usize, width: usize) -> Self {
        let mut r = Xoshiro256pp::stream(seed, &[STREAM_PARAMS, idx as u64]);
        let idle_power = r.uniform(60.0, 120.0);
        let watts_per_load = r.uniform(1.5, 3.0);
        let ambient = r.uniform(20.0, 25.0);
        let full_temp = r.uniform(92.0, 100.0);
        let p_max = idle_power + 100.0 * watts_per_load;
        let clocks = [2400.0, 2800.0, 3000.0, 3200.0, 3600.0];
        Self {
            name: format!("dev-{:0width$}", idx + 1),
            idle_power,
            watts_per_load,
            ambient,
            theta: (full_temp - ambient) / p_max,
            tau_secs: r.uniform(180.0, 420.0),
            throttle_temp: r.uniform(82.0, 88.0),
            throttle_slope: r.uniform(0.03, 0.05),
            nominal_clock: clocks[r.index(clocks.len())],
            fan_min: r.uniform(800.0, 1200.0),
            fan_max: r.uniform(4000.0, 6000.0),
            v_nominal: 12.0 + r.uniform(-0.05, 0.05),
            v_droop: r.uniform(0.1, 0.25) / p_max,
            load_base: r.uniform(10.0, 25.0),
            load_peak: r.uniform(25.0, 45.0),
            peak_hour: r.uniform(13.0, 16.0),
            load_sigma: r.uniform(3.0, 6.0),
            job_hour: r.int_in(0, 5) as f64,
            job_minutes: r.uniform(20.0, 40.0),
            job_load: r.uniform(20.0, 35.0),
        }
    }

    /// Expected load (without noise) at Unix time `t`.
    fn load_profile(&self, t: i64) -> f64 {
        let hour = t.rem_euclid(DAY) as f64 / 3600.0;
        let mut d = (hour - self.peak_hour).abs();
        if d > 12.0 {
            d = 24.0 - d;
        }
        let bump = (-(d * d) / (2.0 * 3.0 * 3.0)).exp();
        // 1970-01-01 was a Thursday; Monday = 0.
        let weekday = (t.div_euclid(DAY) + 3).rem_euclid(7);
        let week = if weekday >= 5 { 0.45 } else { 1.0 };
        let since_job = (hour - self.job_hour) * 60.0;
        let job = if (0.0..self.job_minutes).contains(&since_job) {
            self.job_load
        } else {
            0.0
        };
        self.load_base + self.load_peak * bump * week + job
    }

    fn ambient_at(&self, t: i64) -> f64 {
        let tod = t.rem_euclid(DAY) as f64 / DAY as f64;
        self.ambient + 1.5 * (TAU * (tod - 0.375)).sin()
    }
}

/// Everything decided up front.
#[derive(Debug, Clone)]
pub struct DevicesPlan {
    /// The configuration.
    pub config: DevicesConfig,
    /// Unix seconds of the first row.
    pub start_unix: i64,
    /// Number of steps.
    pub ticks: u64,
    /// Devices in output order.
    pub devices: Vec<DeviceModel>,
    /// Anomalies per device, sorted by start.
    pub anomalies: Vec<Vec<DeviceAnomaly>>,
}

impl DevicesPlan {
    /// Builds the plan.
    pub fn new(cfg: &DevicesConfig) -> Result<Self> {
        cfg.validate()?;
        let ticks = cfg.ticks();
        let width = cfg.devices.to_string().len().max(2);
        let devices: Vec<DeviceModel> = (0..cfg.devices as usize)
            .map(|i| DeviceModel::generate(cfg.seed, i, width))
            .collect();
        let mut anomalies = vec![Vec::new(); devices.len()];
        let slots = Slots::new(ticks, u64::from(cfg.anomalies_per_device));
        let per = slots.count as usize;
        let kinds = deck(
            &DeviceAnomalyKind::ALL,
            devices.len() * per,
            &mut Xoshiro256pp::stream(cfg.seed, &[STREAM_PLAN]),
        );
        let step = cfg.step_secs;
        for (di, list) in anomalies.iter_mut().enumerate() {
            for slot in 0..slots.count {
                let kind = kinds[di * per + slot as usize];
                let mut r = Xoshiro256pp::stream(cfg.seed, &[STREAM_PLAN, di as u64, slot]);
                let column = match kind {
                    DeviceAnomalyKind::Stress => None,
                    _ => Some(SENSOR_COLUMNS[r.index(SENSOR_COLUMNS.len())]),
                };
                let (want, param) = match kind {
                    DeviceAnomalyKind::Stress => (
                        points(r.uniform(30.0, 120.0) * 60.0, step, 2),
                        r.uniform(95.0, 99.0),
                    ),
                    DeviceAnomalyKind::StuckSensor => {
                        (points(r.uniform(1.0, 3.0) * 3600.0, step, 2), 0.0)
                    }
                    DeviceAnomalyKind::SensorSpike => {
                        (r.int_in(1, 2), r.sign() * r.uniform(6.0, 10.0))
                    }
                    DeviceAnomalyKind::SensorDropout => {
                        (points(r.uniform(10.0, 60.0) * 60.0, step, 1), 0.0)
                    }
                    DeviceAnomalyKind::SensorDrift => (
                        points(r.uniform(2.0, 6.0) * 3600.0, step, 2),
                        r.sign() * r.uniform(4.0, 8.0),
                    ),
                };
                let (start_idx, len) = slots.place(slot, want, &mut r);
                list.push(DeviceAnomaly {
                    device: di,
                    kind,
                    column,
                    start_idx,
                    len,
                    param: (param * 100.0).round() / 100.0,
                });
            }
        }
        Ok(Self {
            config: cfg.clone(),
            start_unix: cfg.start.timestamp(),
            ticks,
            devices,
            anomalies,
        })
    }

    /// Unix seconds of step `i`.
    pub fn ts_of(&self, i: u64) -> i64 {
        self.start_unix + i as i64 * i64::from(self.config.step_secs)
    }

    /// Labels of the plan.
    pub fn labels(&self) -> Vec<Label> {
        self.anomalies
            .iter()
            .flatten()
            .map(|a| {
                let columns = match a.column {
                    Some(c) => vec![c.as_str().to_string()],
                    None => ["load", "power", "temperature", "fan", "clock"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                };
                let magnitude_sigma = match a.kind {
                    DeviceAnomalyKind::SensorSpike | DeviceAnomalyKind::SensorDrift => {
                        Some(a.param)
                    }
                    _ => None,
                };
                let detail = match a.kind {
                    DeviceAnomalyKind::Stress => Some(format!("load pinned at ~{:.0}%", a.param)),
                    _ => None,
                };
                Label {
                    series: SeriesRef::device(self.devices[a.device].name.clone()),
                    kind: a.kind.as_str().to_string(),
                    start: rfc3339(self.ts_of(a.start_idx)),
                    end: rfc3339(self.ts_of(a.end_idx())),
                    magnitude_sigma,
                    columns,
                    detail,
                }
            })
            .collect()
    }

    /// The label file.
    pub fn label_file(&self) -> LabelFile {
        LabelFile::new(
            "devices",
            self.config.seed,
            rfc3339(self.start_unix),
            rfc3339(self.ts_of(self.ticks)),
            Some(u64::from(self.config.step_secs)),
            self.labels(),
        )
    }
}

/// Labels for `cfg`, without generating rows.
pub fn devices_labels(cfg: &DevicesConfig) -> Result<Vec<Label>> {
    Ok(DevicesPlan::new(cfg)?.labels())
}

/// One devices row. `None` = empty field (sensor dropout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceRow {
    /// Unix seconds.
    pub ts: i64,
    /// Step index.
    pub tick: u64,
    /// Device index (0-based).
    pub device: usize,
    /// Values in [`Column::ALL`] order, rounded as written.
    pub values: [Option<f64>; 6],
}

impl DeviceRow {
    /// Value of `column`.
    pub fn get(&self, column: Column) -> Option<f64> {
        self.values[column.index()]
    }
}

struct DeviceState {
    noise: Xoshiro256pp,
    shape: Xoshiro256pp,
    load_ar: f64,
    temp: f64,
    last: [f64; 6],
    stuck: f64,
    next: usize,
}

/// Streaming iterator over device rows, ordered by time then device.
pub struct DeviceRows {
    plan: DevicesPlan,
    states: Vec<DeviceState>,
    tick: u64,
    device: usize,
    step_secs: f64,
    /// AR(1) coefficient of the load noise (10 min correlation time).
    load_phi: f64,
}

/// Rows for `cfg`, generated lazily.
pub fn device_rows(cfg: &DevicesConfig) -> Result<DeviceRows> {
    let plan = DevicesPlan::new(cfg)?;
    let step = f64::from(cfg.step_secs);
    let states = plan
        .devices
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut noise = Xoshiro256pp::stream(cfg.seed, &[STREAM_NOISE, i as u64]);
            let t0 = plan.start_unix;
            let load = m.load_profile(t0).clamp(0.5, 100.0);
            let temp = m.ambient_at(t0) + m.theta * (m.idle_power + m.watts_per_load * load);
            DeviceState {
                load_ar: m.load_sigma * noise.normal(),
                noise,
                shape: Xoshiro256pp::stream(cfg.seed, &[STREAM_SHAPE, i as u64]),
                temp,
                last: [0.0; 6],
                stuck: 0.0,
                next: 0,
            }
        })
        .collect();
    Ok(DeviceRows {
        states,
        tick: 0,
        device: 0,
        step_secs: step,
        load_phi: (-step / 600.0).exp(),
        plan,
    })
}

impl DeviceRows {
    /// The plan being generated.
    pub fn plan(&self) -> &DevicesPlan {
        &self.plan
    }

    fn step_device(&mut self, di: usize) -> DeviceRow {
        let i = self.tick;
        let t = self.plan.ts_of(i);
        let m = &self.plan.devices[di];
        let st = &mut self.states[di];
        let step = self.step_secs;

        let anomalies = &self.plan.anomalies[di];
        while st.next < anomalies.len() && anomalies[st.next].end_idx() < i {
            st.next += 1;
        }
        let active = anomalies
            .get(st.next)
            .filter(|a| i >= a.start_idx && i <= a.end_idx());

        // Load: AR(1) around the profile, or pinned during stress.
        let phi = self.load_phi;
        if i > 0 {
            st.load_ar =
                phi * st.load_ar + m.load_sigma * (1.0 - phi * phi).sqrt() * st.noise.normal();
        }
        let mut load = m.load_profile(t) + st.load_ar;
        if let Some(a) = active.filter(|a| a.kind == DeviceAnomalyKind::Stress) {
            load = a.param + 1.5 * st.shape.normal();
        }
        let load = load.clamp(0.5, 100.0);

        let power = m.idle_power + m.watts_per_load * load + 2.0 * st.noise.normal();
        let target = m.ambient_at(t) + m.theta * power;
        let alpha = 1.0 - (-step / m.tau_secs).exp();
        st.temp += alpha * (target - st.temp) + 0.1 * st.noise.normal();
        let temp = st.temp;
        let fan_frac = ((temp - 40.0) / (m.throttle_temp - 40.0)).clamp(0.0, 1.0);
        let fan =
            (m.fan_min + (m.fan_max - m.fan_min) * fan_frac + 30.0 * st.noise.normal()).max(0.0);
        let throttle = (1.0 - m.throttle_slope * (temp - m.throttle_temp).max(0.0)).max(0.5);
        let clock = (m.nominal_clock * throttle / 25.0).round() * 25.0;
        let voltage = m.v_nominal - m.v_droop * power + 0.004 * st.noise.normal();
        let measured_temp = temp + 0.15 * st.noise.normal();

        let mut values = [
            Some(measured_temp),
            Some(power),
            Some(load),
            Some(voltage),
            Some(fan),
            Some(clock),
        ];
        if let Some(a) = active {
            if let Some(col) = a.column {
                let c = col.index();
                values[c] = match a.kind {
                    DeviceAnomalyKind::StuckSensor => {
                        if i == a.start_idx {
                            st.stuck = st.last[c];
                        }
                        Some(st.stuck)
                    }
                    DeviceAnomalyKind::SensorSpike => {
                        values[c].map(|v| v + a.param * st.shape.uniform(0.9, 1.0) * col.sigma())
                    }
                    DeviceAnomalyKind::SensorDropout => None,
                    DeviceAnomalyKind::SensorDrift => {
                        let frac = (i - a.start_idx + 1) as f64 / a.len as f64;
                        values[c].map(|v| v + a.param * col.sigma() * frac)
                    }
                    DeviceAnomalyKind::Stress => values[c],
                };
            }
        }
        for (k, col) in Column::ALL.iter().enumerate() {
            if let Some(v) = values[k] {
                let q = quantize(v, col.decimals());
                values[k] = Some(q);
                st.last[k] = q;
            }
        }
        DeviceRow {
            ts: t,
            tick: i,
            device: di,
            values,
        }
    }
}

impl Iterator for DeviceRows {
    type Item = DeviceRow;

    fn next(&mut self) -> Option<DeviceRow> {
        if self.device == self.plan.devices.len() {
            self.device = 0;
            self.tick += 1;
        }
        if self.tick >= self.plan.ticks {
            return None;
        }
        let di = self.device;
        self.device += 1;
        Some(self.step_device(di))
    }
}

/// Streams the devices CSV for `cfg`; returns the number of data rows.
pub fn write_devices_csv<W: Write>(cfg: &DevicesConfig, out: &mut W) -> Result<u64> {
    let rows = device_rows(cfg)?;
    let names: Vec<String> = rows.plan().devices.iter().map(|d| d.name.clone()).collect();
    let mut buf = Vec::with_capacity(1 << 17);
    buf.extend_from_slice(HEADER.as_bytes());
    buf.push(b'\n');
    let mut count = 0u64;
    for row in rows {
        write_pg_ts(&mut buf, row.ts);
        buf.push(b',');
        buf.extend_from_slice(names[row.device].as_bytes());
        for (k, col) in Column::ALL.iter().enumerate() {
            buf.push(b',');
            if let Some(v) = row.values[k] {
                write_fixed(&mut buf, v, col.decimals());
            }
        }
        buf.push(b'\n');
        count += 1;
        crate::csv::flush_if_full(out, &mut buf)?;
    }
    crate::csv::finish(out, &buf)?;
    Ok(count)
}
