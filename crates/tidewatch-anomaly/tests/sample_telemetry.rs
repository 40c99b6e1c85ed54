//! Precision / recall of `auto` per anomaly kind on the labelled telemetry of `tidewatch-sample`.

use serde_json::json;
use tidewatch_anomaly::Model;
use tidewatch_sample::telemetry::{telemetry_rows, TelemetryConfig};

#[test]
fn auto_precision_recall_per_kind_on_sample_telemetry() {
    let cfg = TelemetryConfig {
        days: 7.0,
        step_secs: 60,
        satellites: 2,
        metrics: 5,
        ..Default::default()
    };
    let rows = telemetry_rows(&cfg).expect("rows");
    let plan = rows.plan().clone();
    let warm = plan.warmup_ticks();
    let slack = 30u64; // ticks after an anomaly's end still credited to it
    let n_series = plan.series.len();
    let mut models: Vec<Model> = (0..n_series)
        .map(|_| Model::new("auto", &json!({})).expect("model"))
        .collect();
    let mut alarms: Vec<Vec<u64>> = vec![Vec::new(); n_series];
    for r in rows {
        if models[r.series]
            .update(r.ts * 1_000_000, r.value)
            .is_anomaly
            && r.tick >= warm
        {
            alarms[r.series].push(r.tick);
        }
    }
    let mut kinds: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let (mut tp_alarms, mut all_alarms) = (0usize, 0usize);
    for (s, list) in plan.anomalies.iter().enumerate() {
        for a in list.iter().filter(|a| a.start_idx >= warm) {
            let e = kinds.entry(a.kind.as_str()).or_default();
            e.0 += 1;
            if alarms[s]
                .iter()
                .any(|&t| t >= a.start_idx && t <= a.end_idx() + slack)
            {
                e.1 += 1;
            }
        }
        for &t in &alarms[s] {
            all_alarms += 1;
            if list
                .iter()
                .any(|a| t >= a.start_idx && t <= a.end_idx() + slack)
            {
                tp_alarms += 1;
            }
        }
    }
    println!("kind             labelled  detected  recall");
    let (mut lab, mut det) = (0, 0);
    for (k, (n, d)) in &kinds {
        println!(
            "{k:<16} {n:>8} {d:>9} {:>7.2}",
            *d as f64 / (*n).max(1) as f64
        );
        lab += n;
        det += d;
    }
    let precision = tp_alarms as f64 / all_alarms.max(1) as f64;
    println!(
        "all              {lab:>8} {det:>9} {:>7.2}",
        det as f64 / lab.max(1) as f64
    );
    println!("alarms {all_alarms}, inside an anomaly (+{slack} ticks) {tp_alarms}: precision {precision:.2}");
    assert!(det as f64 >= 0.3 * lab as f64, "recall floor");
    assert!(precision >= 0.2, "precision floor");
}
