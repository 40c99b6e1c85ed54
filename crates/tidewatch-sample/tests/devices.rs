//! Devices generator: determinism, physical correlations, injected faults.

use std::collections::{BTreeSet, HashMap};

use tidewatch_sample::csv::parse_record;
use tidewatch_sample::devices::{
    device_rows, devices_labels, write_devices_csv, Column, DeviceAnomalyKind, DeviceRow,
    DevicesConfig, DevicesPlan, HEADER,
};
use tidewatch_sample::time::parse_timestamp;
use tidewatch_sample::Label;

fn unix(s: &str) -> i64 {
    parse_timestamp(s).expect("timestamp").timestamp()
}

fn csv(cfg: &DevicesConfig) -> Vec<u8> {
    let mut out = Vec::new();
    write_devices_csv(cfg, &mut out).expect("generation succeeds");
    out
}

fn rows(cfg: &DevicesConfig) -> Vec<DeviceRow> {
    device_rows(cfg).expect("valid").collect()
}

fn device_index(plan: &DevicesPlan, l: &Label) -> usize {
    plan.devices
        .iter()
        .position(|d| Some(&d.name) == l.series.device.as_ref())
        .expect("known device")
}

fn inside(labels: &[(usize, i64, i64)], device: usize, ts: i64) -> bool {
    labels
        .iter()
        .any(|(d, s, e)| *d == device && ts >= *s && ts <= *e)
}

fn corr(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn deterministic_per_seed() {
    let cfg = DevicesConfig {
        devices: 5,
        ..DevicesConfig::default()
    };
    assert_eq!(csv(&cfg), csv(&cfg));
    let other = DevicesConfig {
        seed: 7,
        ..cfg.clone()
    };
    assert_ne!(csv(&cfg), csv(&other));
    assert_ne!(
        devices_labels(&cfg).expect("labels"),
        devices_labels(&other).expect("labels")
    );
}

#[test]
fn row_count_and_csv_shape() {
    let cfg = DevicesConfig::default();
    let out = String::from_utf8(csv(&cfg)).expect("utf8");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let records: Vec<Vec<String>> = lines.map(|l| parse_record(l).expect("record")).collect();
    assert_eq!(records.len(), 7 * 1440 * 20);
    assert_eq!(records[0][0], "2026-01-01 00:00:00+00");
    assert_eq!(records[0][1], "dev-01");
    assert_eq!(records[19][1], "dev-20");
    assert_eq!(records[20][0], "2026-01-01 00:01:00+00");
    for r in records.iter().take(2000) {
        assert_eq!(r.len(), 8);
        for v in &r[2..] {
            if !v.is_empty() {
                v.parse::<f64>().expect("numeric field");
            }
        }
    }
}

#[test]
fn every_kind_appears_after_the_warmup() {
    let cfg = DevicesConfig::default();
    let labels = devices_labels(&cfg).expect("labels");
    assert_eq!(labels.len(), 40);
    let kinds: BTreeSet<&str> = labels.iter().map(|l| l.kind.as_str()).collect();
    let all: BTreeSet<&str> = DeviceAnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, all);
    let start = cfg.start.timestamp();
    for l in &labels {
        assert!(unix(&l.start) as f64 >= start as f64 + 0.15 * 7.0 * 86_400.0);
        assert!(!l.columns.is_empty());
        if l.kind == "stress" {
            assert!(l.columns.len() >= 4);
        } else {
            assert_eq!(l.columns.len(), 1);
        }
    }
}

#[test]
fn columns_are_physically_correlated() {
    let cfg = DevicesConfig {
        devices: 4,
        ..DevicesConfig::default()
    };
    let plan = DevicesPlan::new(&cfg).expect("plan");
    let spans: Vec<(usize, i64, i64)> = plan
        .labels()
        .iter()
        .map(|l| (device_index(&plan, l), unix(&l.start), unix(&l.end) + 3600))
        .collect();
    let all = rows(&cfg);
    for d in 0..4 {
        let clean: Vec<&DeviceRow> = all
            .iter()
            .filter(|r| r.device == d && !inside(&spans, d, r.ts))
            .collect();
        let col = |c: Column| -> Vec<f64> {
            clean
                .iter()
                .map(|r| r.get(c).expect("no dropout here"))
                .collect()
        };
        let (load, power, temp, fan, volt) = (
            col(Column::Load),
            col(Column::Power),
            col(Column::Temperature),
            col(Column::Fan),
            col(Column::Voltage),
        );
        assert!(corr(&load, &power) > 0.95, "load/power");
        assert!(corr(&load, &temp) > 0.6, "load/temperature");
        assert!(corr(&temp, &fan) > 0.8, "temperature/fan");
        assert!(corr(&power, &volt) < -0.5, "power/voltage droop");
        assert!(load.iter().all(|l| (0.0..=100.0).contains(l)));
    }
}

#[test]
fn clock_throttles_only_when_hot_and_stress_heats_up() {
    let cfg = DevicesConfig::default();
    let plan = DevicesPlan::new(&cfg).expect("plan");
    let labels = plan.labels();
    let temp_faults: Vec<(usize, i64, i64)> = labels
        .iter()
        .filter(|l| l.columns == ["temperature"])
        .map(|l| (device_index(&plan, l), unix(&l.start), unix(&l.end)))
        .collect();
    let all = rows(&cfg);
    let mut nominal: HashMap<usize, f64> = HashMap::new();
    for r in &all {
        let c = r.get(Column::Clock).expect("clock present");
        let e = nominal.entry(r.device).or_insert(c);
        *e = e.max(c);
    }
    let mut throttled = 0;
    for r in &all {
        let clock = r.get(Column::Clock).expect("clock present");
        if clock < nominal[&r.device] && !inside(&temp_faults, r.device, r.ts) {
            let t = r.get(Column::Temperature).expect("temperature present");
            assert!(t > 80.0, "throttled at {t} °C");
            throttled += 1;
        }
    }
    assert!(throttled > 0, "no throttling at all");

    // During every stress episode the load is pinned high and the device
    // ends hotter than it started, with the fan spun up.
    let mut stress = 0;
    for l in labels.iter().filter(|l| l.kind == "stress") {
        let d = device_index(&plan, l);
        let (s, e) = (unix(&l.start), unix(&l.end));
        let window: Vec<&DeviceRow> = all
            .iter()
            .filter(|r| r.device == d && r.ts >= s && r.ts <= e)
            .collect();
        let load: f64 = window
            .iter()
            .map(|r| r.get(Column::Load).unwrap_or(0.0))
            .sum::<f64>()
            / window.len() as f64;
        assert!(load > 90.0, "stress load {load}");
        let before = all
            .iter()
            .find(|r| r.device == d && r.ts == s - 60)
            .expect("row before");
        let last = window.last().expect("window not empty");
        if let (Some(t0), Some(t1)) = (
            before.get(Column::Temperature),
            last.get(Column::Temperature),
        ) {
            assert!(t1 > t0 + 5.0, "stress did not heat: {t0} -> {t1}");
        }
        stress += 1;
    }
    assert!(stress >= 5);
}

#[test]
fn sensor_faults_have_their_shape() {
    let cfg = DevicesConfig::default();
    let plan = DevicesPlan::new(&cfg).expect("plan");
    let all = rows(&cfg);
    let at = |d: usize, t: i64| -> &DeviceRow {
        all.iter()
            .find(|r| r.device == d && r.ts == t)
            .expect("row exists")
    };
    let column = |name: &str| {
        Column::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .expect("known column")
    };
    let mut seen = BTreeSet::new();
    for l in plan.labels() {
        if l.kind == "stress" {
            continue;
        }
        let d = device_index(&plan, &l);
        let c = column(&l.columns[0]);
        let (s, e) = (unix(&l.start), unix(&l.end));
        let window: Vec<Option<f64>> = (s..=e).step_by(60).map(|t| at(d, t).get(c)).collect();
        match l.kind.as_str() {
            "sensor_dropout" => {
                assert!(window.iter().all(Option::is_none));
                assert!(at(d, s - 60).get(c).is_some());
                assert!(at(d, e + 60).get(c).is_some());
            }
            "stuck_sensor" => {
                let first = window[0].expect("value");
                assert!(window.iter().all(|v| *v == Some(first)));
                assert_eq!(at(d, s - 60).get(c), Some(first));
            }
            "sensor_spike" => {
                let m = l.magnitude_sigma.expect("magnitude");
                let before = at(d, s - 60).get(c).expect("value");
                for v in &window {
                    let jump = (v.expect("value") - before) / c.sigma();
                    assert!(jump * m.signum() > 3.0, "spike jump {jump}σ vs {m}");
                }
            }
            "sensor_drift" => {
                let m = l.magnitude_sigma.expect("magnitude");
                let last = window.last().and_then(|v| *v).expect("value");
                let after = at(d, e + 60).get(c).expect("value");
                // The bias disappears when the drift ends (recalibration).
                let drop = (last - after) / c.sigma();
                assert!(drop * m.signum() > 2.0, "drift drop {drop}σ vs {m}");
            }
            other => panic!("unexpected kind {other}"),
        }
        seen.insert(l.kind.clone());
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}
