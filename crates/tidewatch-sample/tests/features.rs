//! Feature batches: sizes, determinism and each kind of drift.

use std::collections::HashMap;

use tidewatch_sample::csv::parse_record;
use tidewatch_sample::features::{
    feature_rows, write_features_csv, Batch, Drift, FeatureRow, FeaturesConfig, HEADER,
};

struct Stats {
    mean1: f64,
    sd1: f64,
    cats: HashMap<&'static str, f64>,
    bool_rate: f64,
}

fn stats(rows: &[FeatureRow]) -> Stats {
    let n = rows.len() as f64;
    let mean1 = rows.iter().map(|r| r.f_num1).sum::<f64>() / n;
    let sd1 = (rows.iter().map(|r| (r.f_num1 - mean1).powi(2)).sum::<f64>() / n).sqrt();
    let mut cats = HashMap::new();
    for r in rows {
        *cats.entry(r.f_cat).or_insert(0.0) += 1.0 / n;
    }
    let bool_rate = rows.iter().filter(|r| r.f_bool).count() as f64 / n;
    Stats {
        mean1,
        sd1,
        cats,
        bool_rate,
    }
}

fn batches(drift: Drift) -> (Stats, Stats) {
    let cfg = FeaturesConfig {
        drift,
        ..FeaturesConfig::default()
    };
    let rows: Vec<FeatureRow> = feature_rows(&cfg).expect("valid").collect();
    assert_eq!(rows.len(), 10_000);
    let (r, c): (Vec<FeatureRow>, Vec<FeatureRow>) =
        rows.into_iter().partition(|r| r.batch == Batch::Reference);
    assert_eq!(r.len(), 5000);
    assert_eq!(c.len(), 5000);
    assert!(c.iter().all(|x| x.f_num2 > 0.0) && r.iter().all(|x| x.f_num2 > 0.0));
    (stats(&r), stats(&c))
}

#[test]
fn no_drift_batches_match() {
    let (r, c) = batches(Drift::None);
    assert!((r.mean1 - 50.0).abs() < 0.5 && (c.mean1 - 50.0).abs() < 0.5);
    assert!((r.sd1 - 10.0).abs() < 0.5 && (c.sd1 - 10.0).abs() < 0.5);
    assert!((r.cats["A"] - c.cats["A"]).abs() < 0.04);
    assert!((r.bool_rate - c.bool_rate).abs() < 0.04);
    assert!(!c.cats.contains_key("E"));
}

#[test]
fn shift_moves_the_mean() {
    let (r, c) = batches(Drift::Shift);
    assert!(
        (c.mean1 - r.mean1 - 8.0).abs() < 1.0,
        "{} vs {}",
        c.mean1,
        r.mean1
    );
    assert!((c.sd1 / r.sd1 - 1.0).abs() < 0.1);
}

#[test]
fn scale_doubles_the_spread() {
    let (r, c) = batches(Drift::Scale);
    assert!((c.sd1 / r.sd1 - 2.0).abs() < 0.15, "{} vs {}", c.sd1, r.sd1);
    assert!((c.mean1 - r.mean1).abs() < 1.0);
}

#[test]
fn category_drift_changes_the_mix() {
    let (r, c) = batches(Drift::Category);
    assert!(r.cats["A"] > 0.35 && c.cats["A"] < 0.15);
    assert!(!r.cats.contains_key("E"));
    assert!(c.cats["E"] > 0.07);
    assert!((c.mean1 - r.mean1).abs() < 1.0);
}

#[test]
fn csv_is_deterministic_and_parses() {
    let cfg = FeaturesConfig {
        rows: 100,
        ..FeaturesConfig::default()
    };
    let mut a = Vec::new();
    let mut b = Vec::new();
    write_features_csv(&cfg, &mut a).expect("write");
    write_features_csv(&cfg, &mut b).expect("write");
    assert_eq!(a, b);
    let mut c = Vec::new();
    write_features_csv(
        &FeaturesConfig {
            seed: 9,
            ..cfg.clone()
        },
        &mut c,
    )
    .expect("write");
    assert_ne!(a, c);
    let text = String::from_utf8(a).expect("utf8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let rows: Vec<FeatureRow> = feature_rows(&cfg).expect("valid").collect();
    for (line, row) in lines.zip(&rows) {
        let f = parse_record(line).expect("record");
        assert_eq!(f[0], row.batch.as_str());
        assert_eq!(f[1].parse::<f64>().ok(), Some(row.f_num1));
        assert_eq!(f[2].parse::<f64>().ok(), Some(row.f_num2));
        assert_eq!(f[3], row.f_cat);
        assert_eq!(f[4], if row.f_bool { "true" } else { "false" });
    }
    assert!("bogus".parse::<Drift>().is_err());
    assert_eq!("scale".parse::<Drift>().ok(), Some(Drift::Scale));
}
