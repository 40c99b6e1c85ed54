//! Telemetry generator: determinism, counts, anomaly placement and shape.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use tidewatch_sample::csv::parse_record;
use tidewatch_sample::telemetry::{
    telemetry_labels, telemetry_rows, write_telemetry_csv, AnomalyKind, TelemetryConfig,
    TelemetryPlan, TelemetryRow, WARMUP_FRACTION,
};
use tidewatch_sample::time::parse_timestamp;
use tidewatch_sample::Label;

/// A week at 1-minute resolution, 2 satellites × 4 metrics (80 640 slots).
fn small() -> TelemetryConfig {
    TelemetryConfig {
        days: 7.0,
        step_secs: 60,
        satellites: 2,
        metrics: 4,
        ..TelemetryConfig::default()
    }
}

fn csv_bytes(cfg: &TelemetryConfig) -> Vec<u8> {
    let mut out = Vec::new();
    write_telemetry_csv(cfg, &mut out).expect("generation succeeds");
    out
}

fn unix(s: &str) -> i64 {
    parse_timestamp(s)
        .expect("label timestamp parses")
        .timestamp()
}

/// Rows keyed by (series index, ts).
fn rows_by_key(cfg: &TelemetryConfig) -> HashMap<(usize, i64), TelemetryRow> {
    telemetry_rows(cfg)
        .expect("valid config")
        .map(|r| ((r.series, r.ts), r))
        .collect()
}

/// Series index of a label, given the plan's naming.
fn series_of(plan: &TelemetryPlan, label: &Label) -> usize {
    plan.series
        .iter()
        .position(|s| {
            Some(s.satellite_name()) == label.series.satellite
                && Some(s.metric_name()) == label.series.metric
        })
        .expect("label names an existing series")
}

/// Timestamps covered by a label (inclusive).
fn label_times(label: &Label, step: i64) -> impl Iterator<Item = i64> {
    (unix(&label.start)..=unix(&label.end)).step_by(step as usize)
}

#[test]
fn same_seed_gives_identical_output() {
    let cfg = small();
    let a = csv_bytes(&cfg);
    let b = csv_bytes(&cfg);
    assert!(a.len() > 1_000_000);
    assert_eq!(a, b);
    assert_eq!(
        telemetry_labels(&cfg).expect("labels"),
        telemetry_labels(&cfg).expect("labels")
    );
}

#[test]
fn different_seed_gives_different_output() {
    let cfg = small();
    let other = TelemetryConfig {
        seed: cfg.seed + 1,
        ..cfg.clone()
    };
    let a = csv_bytes(&cfg);
    let b = csv_bytes(&other);
    assert_ne!(a, b);
    // Not just a few bytes: most value lines differ.
    let differing = String::from_utf8_lossy(&a)
        .lines()
        .zip(String::from_utf8_lossy(&b).lines())
        .filter(|(x, y)| x != y)
        .count();
    assert!(differing > 70_000, "only {differing} lines differ");
    assert_ne!(
        telemetry_labels(&cfg).expect("labels"),
        telemetry_labels(&other).expect("labels")
    );
}

#[test]
fn row_count_is_grid_minus_missing_gaps() {
    let cfg = small();
    let labels = telemetry_labels(&cfg).expect("labels");
    let missing: i64 = labels
        .iter()
        .filter(|l| l.kind == "missing_data")
        .map(|l| (unix(&l.end) - unix(&l.start)) / 60 + 1)
        .sum();
    assert!(missing > 0, "the small config has missing_data gaps");
    let grid = 7 * 1440 * 8;
    let rows = telemetry_rows(&cfg).expect("valid").count() as i64;
    assert_eq!(rows, grid - missing);
    // The CSV has exactly those rows plus the header.
    let csv = csv_bytes(&cfg);
    let lines = csv.iter().filter(|b| **b == b'\n').count() as i64;
    assert_eq!(lines, rows + 1);
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    assert_eq!(plan.expected_rows() as i64, rows);
}

#[test]
fn missing_data_rows_are_absent_and_neighbours_present() {
    let cfg = small();
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    let rows = rows_by_key(&cfg);
    let labels = plan.labels();
    let mut checked = 0;
    for l in labels.iter().filter(|l| l.kind == "missing_data") {
        let s = series_of(&plan, l);
        for t in label_times(l, 60) {
            assert!(!rows.contains_key(&(s, t)), "row present inside gap at {t}");
        }
        assert!(rows.contains_key(&(s, unix(&l.start) - 60)));
        assert!(rows.contains_key(&(s, unix(&l.end) + 60)));
        checked += 1;
    }
    assert!(checked >= 3);
}

#[test]
fn default_config_has_every_kind_and_respects_warmup() {
    let cfg = TelemetryConfig::default();
    let labels = telemetry_labels(&cfg).expect("labels");
    assert_eq!(labels.len(), 4 * 15 * 3);
    let kinds: BTreeSet<&str> = labels.iter().map(|l| l.kind.as_str()).collect();
    let all: BTreeSet<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, all);

    let start = cfg.start.timestamp();
    let range = 21 * 86_400;
    let warmup_end = start as f64 + WARMUP_FRACTION * range as f64;
    for l in &labels {
        let (s, e) = (unix(&l.start), unix(&l.end));
        assert!(s as f64 >= warmup_end, "{l:?} starts in the warm-up");
        assert!(e >= s && e < start + range, "{l:?} outside the range");
        assert_eq!((s - start) % 5, 0, "label not on the sampling grid");
    }
}

#[test]
fn anomalies_of_a_series_do_not_overlap_and_have_sensible_durations() {
    let cfg = TelemetryConfig::default();
    let labels = telemetry_labels(&cfg).expect("labels");
    let mut by_series: HashMap<_, Vec<(i64, i64)>> = HashMap::new();
    for l in &labels {
        let (s, e) = (unix(&l.start), unix(&l.end));
        let dur = e - s + 5;
        let ok = match l.kind.as_str() {
            "spike" | "dip" => (5..=15).contains(&dur),
            "level_shift" => (2 * 3600..=8 * 3600).contains(&dur),
            "variance_burst" => (20 * 60..=40 * 60).contains(&dur),
            "flatline" => (45 * 60..=75 * 60).contains(&dur),
            "missing_data" => (15 * 60..=25 * 60).contains(&dur),
            "seasonal_break" => dur == 86_400,
            other => panic!("unexpected kind {other}"),
        };
        assert!(ok, "{} lasts {dur}s", l.kind);
        by_series.entry(l.series.clone()).or_default().push((s, e));
    }
    for (series, mut spans) in by_series {
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 < w[1].0, "overlap in {series:?}: {w:?}");
        }
    }
}

#[test]
fn spikes_and_dips_deviate_more_than_five_sigma() {
    let cfg = small();
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    let rows = rows_by_key(&cfg);
    let mut points = 0;
    for l in plan.labels() {
        let sign = match l.kind.as_str() {
            "spike" => 1.0,
            "dip" => -1.0,
            _ => continue,
        };
        let s = series_of(&plan, &l);
        let sigma = plan.series[s].sigma;
        let m = l.magnitude_sigma.expect("spikes have a magnitude");
        assert!((6.0..=10.0).contains(&m.abs()), "magnitude {m}");
        assert_eq!(m.signum(), sign);
        for t in label_times(&l, 60) {
            let r = rows.get(&(s, t)).expect("spike row present");
            let z = (r.value - r.clean) / sigma;
            assert!(sign * z > 5.0, "{} at {t}: z = {z}", l.kind);
            points += 1;
        }
        // The points just outside the window are ordinary noise.
        for t in [unix(&l.start) - 60, unix(&l.end) + 60] {
            let r = rows.get(&(s, t)).expect("neighbour present");
            assert!(((r.value - r.clean) / sigma).abs() < 5.0);
        }
    }
    assert!(points >= 6, "too few spike points checked: {points}");
}

#[test]
fn normal_points_are_within_noise() {
    // Outside anomalies the deviation from the clean signal is N(0, σ²):
    // |z| > 5 should essentially never happen, and the std should be ≈ 1.
    let cfg = small();
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    let labels = plan.labels();
    let mut windows: HashMap<usize, Vec<(i64, i64)>> = HashMap::new();
    for l in &labels {
        windows
            .entry(series_of(&plan, l))
            .or_default()
            .push((unix(&l.start), unix(&l.end)));
    }
    let (mut n, mut sum2, mut big) = (0.0, 0.0, 0);
    for r in telemetry_rows(&cfg).expect("valid") {
        let inside = windows
            .get(&r.series)
            .is_some_and(|w| w.iter().any(|(s, e)| r.ts >= *s && r.ts <= *e));
        if inside {
            continue;
        }
        let z = (r.value - r.clean) / plan.series[r.series].sigma;
        n += 1.0;
        sum2 += z * z;
        if z.abs() > 5.0 {
            big += 1;
        }
    }
    let sd = (sum2 / n).sqrt();
    assert!((0.95..1.05).contains(&sd), "noise sd {sd}");
    assert_eq!(big, 0);
}

#[test]
fn flatline_rows_are_constant_during_the_window() {
    let cfg = small();
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    let rows = rows_by_key(&cfg);
    let mut checked = 0;
    for l in plan.labels().iter().filter(|l| l.kind == "flatline") {
        let s = series_of(&plan, l);
        let values: Vec<f64> = label_times(l, 60)
            .map(|t| rows.get(&(s, t)).expect("flatline row present").value)
            .collect();
        assert!(values.len() >= 45);
        assert!(
            values.iter().all(|v| *v == values[0]),
            "flatline values vary: {values:?}"
        );
        // The stuck value is the last reading before the window...
        let before = rows.get(&(s, unix(&l.start) - 60)).expect("row before");
        assert_eq!(before.value, values[0]);
        // ...and the sensor is live again afterwards.
        let after = rows.get(&(s, unix(&l.end) + 60)).expect("row after");
        assert_ne!(after.value, values[0]);
        checked += 1;
    }
    assert!(checked >= 3);
}

#[test]
fn level_shifts_variance_bursts_and_seasonal_breaks_have_their_shape() {
    let cfg = small();
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    let rows = rows_by_key(&cfg);
    let mut kinds_checked = BTreeSet::new();
    for l in plan.labels() {
        if !["level_shift", "variance_burst", "seasonal_break"].contains(&l.kind.as_str()) {
            continue;
        }
        let s = series_of(&plan, &l);
        let m = &plan.series[s];
        let z: Vec<f64> = label_times(&l, 60)
            .map(|t| {
                let r = rows.get(&(s, t)).expect("row present");
                (r.value - r.clean) / m.sigma
            })
            .collect();
        let n = z.len() as f64;
        let mean = z.iter().sum::<f64>() / n;
        let sd = (z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        match l.kind.as_str() {
            "level_shift" => {
                let want = l.magnitude_sigma.expect("magnitude");
                assert!((mean - want).abs() < 1.0, "shift mean {mean} vs {want}");
            }
            "variance_burst" => {
                let k = l.magnitude_sigma.expect("magnitude");
                assert!(sd > 2.0 && sd < 2.0 * k, "burst sd {sd} for ×{k}");
            }
            "seasonal_break" => {
                // Compare with the clean seasonal term: flipped or removed.
                let dev_max = z.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let expected = l.magnitude_sigma.expect("magnitude");
                assert!(dev_max > 0.6 * expected, "{dev_max} vs {expected}");
                assert!(sd > 1.5, "seasonal break barely visible: sd {sd}");
            }
            _ => unreachable!(),
        }
        kinds_checked.insert(l.kind.clone());
    }
    assert_eq!(kinds_checked.len(), 3, "{kinds_checked:?}");
}

#[test]
fn csv_round_trips() {
    let cfg = TelemetryConfig {
        days: 0.5,
        ..small()
    };
    let csv = String::from_utf8(csv_bytes(&cfg)).expect("utf8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("ts,satellite,metric,value"));
    let rows: Vec<TelemetryRow> = telemetry_rows(&cfg).expect("valid").collect();
    let plan = TelemetryPlan::new(&cfg).expect("plan");
    let parsed: Vec<Vec<String>> = lines
        .map(|l| parse_record(l).expect("well-formed record"))
        .collect();
    assert_eq!(parsed.len(), rows.len());
    for (i, (p, r)) in parsed.iter().zip(&rows).enumerate() {
        assert_eq!(p.len(), 4);
        let ts = parse_timestamp(&p[0]).expect("ts parses").timestamp();
        assert_eq!(ts, r.ts);
        assert_eq!(p[1], format!("SAT{}", r.satellite));
        assert_eq!(p[2], format!("SCH.M{}", r.metric));
        let v: f64 = p[3].parse().expect("value parses");
        assert_eq!(v, r.value, "row {i}");
        // Fixed decimals per series; ~6 significant digits for series with
        // a non-zero base level.
        let model = &plan.series[r.series];
        let decimals = p[3].split('.').nth(1).map_or(0, str::len);
        assert_eq!(decimals as u32, model.decimals, "{}", p[3]);
        if model.base != 0.0 {
            let digits = p[3].bytes().filter(u8::is_ascii_digit).count();
            let leading = p[3]
                .trim_start_matches('-')
                .bytes()
                .take_while(|b| *b == b'0' || *b == b'.')
                .count();
            assert!((5..=7).contains(&(digits - leading)), "{}", p[3]);
        }
    }
    assert_eq!(parsed[0][0], "2026-01-01 00:00:00+00");
    assert_eq!(parsed[8][0], "2026-01-01 00:01:00+00");
}

#[test]
fn invalid_configs_are_rejected() {
    for cfg in [
        TelemetryConfig {
            step_secs: 0,
            ..small()
        },
        TelemetryConfig {
            days: -1.0,
            ..small()
        },
        TelemetryConfig {
            satellites: 0,
            ..small()
        },
        TelemetryConfig {
            days: 1.0,
            step_secs: 200_000,
            ..small()
        },
    ] {
        assert!(telemetry_rows(&cfg).is_err(), "{cfg:?} accepted");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// For any seed and step: rows are ordered by (ts, series), timestamps of
    /// each series strictly increase on the grid, the count matches the plan,
    /// and anomalies stay after the warm-up without overlapping.
    #[test]
    fn ordering_and_plan_invariants(
        seed in any::<u64>(),
        step in 1u32..=900,
        sats in 1u32..=3,
        metrics in 1u32..=3,
        per_series in 0u32..=8,
    ) {
        // Keep each case around 3 000 grid points.
        let days = f64::from(step) * 3000.0 / 86_400.0 / f64::from(sats * metrics);
        let cfg = TelemetryConfig {
            days,
            step_secs: step,
            satellites: sats,
            metrics,
            seed,
            anomalies_per_series: per_series,
            ..TelemetryConfig::default()
        };
        let plan = TelemetryPlan::new(&cfg).expect("valid");
        let mut last: HashMap<usize, i64> = HashMap::new();
        let mut prev_key = None;
        let mut count = 0u64;
        for r in telemetry_rows(&cfg).expect("valid") {
            prop_assert!(r.value.is_finite());
            if let Some(p) = last.get(&r.series) {
                prop_assert!(r.ts > *p);
                prop_assert_eq!((r.ts - p) % i64::from(step), 0);
            }
            last.insert(r.series, r.ts);
            let key = (r.ts, r.series);
            if let Some(pk) = prev_key {
                prop_assert!(key > pk);
            }
            prev_key = Some(key);
            count += 1;
        }
        prop_assert_eq!(count, plan.expected_rows());
        let warm = plan.warmup_ticks();
        for list in &plan.anomalies {
            for a in list {
                prop_assert!(a.start_idx >= warm);
                prop_assert!(a.end_idx() < plan.ticks);
            }
            for w in list.windows(2) {
                prop_assert!(w[0].end_idx() < w[1].start_idx);
            }
        }
    }
}
