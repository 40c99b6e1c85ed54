//! ETL log generator: determinism, ordering, CSV quoting, bursts vs labels.

use std::collections::{BTreeSet, HashMap};

use tidewatch_sample::csv::parse_record;
use tidewatch_sample::etl_logs::{
    etl_labels, log_rows, write_logs_csv, ErrorCategory, EtlConfig, Level, LogRow, HEADER,
};
use tidewatch_sample::time::parse_timestamp;

fn unix(s: &str) -> i64 {
    parse_timestamp(s).expect("timestamp").timestamp()
}

fn csv(cfg: &EtlConfig) -> String {
    let mut out = Vec::new();
    write_logs_csv(cfg, &mut out).expect("generation succeeds");
    String::from_utf8(out).expect("utf8")
}

#[test]
fn deterministic_per_seed() {
    let cfg = EtlConfig::default();
    let a = csv(&cfg);
    assert_eq!(a, csv(&cfg));
    let other = EtlConfig { seed: 1, ..cfg };
    assert_ne!(a, csv(&other));
}

#[test]
fn lines_are_time_ordered_realistic_and_parse_back() {
    let cfg = EtlConfig::default();
    let out = csv(&cfg);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let rows: Vec<LogRow> = log_rows(&cfg).expect("valid").collect();
    let records: Vec<Vec<String>> = lines.map(|l| parse_record(l).expect("record")).collect();
    assert_eq!(records.len(), rows.len());
    assert!(rows.len() > 10_000, "only {} lines", rows.len());
    let start_ms = cfg.start.timestamp() * 1000;
    let end_ms = start_ms + 7 * 86_400_000;
    let mut quoted = 0;
    for (w, (rec, row)) in rows.windows(2).zip(records.iter().zip(&rows)) {
        assert!(w[0].ts_ms <= w[1].ts_ms, "out of order");
        assert_eq!(rec.len(), 4);
        let ts = parse_timestamp(&rec[0]).expect("ts parses");
        assert_eq!(ts.timestamp_millis(), row.ts_ms);
        assert_eq!(rec[1], row.pipeline_name());
        assert_eq!(rec[2], row.level.as_str());
        assert_eq!(rec[3], row.message);
        if row.message.contains(',') || row.message.contains('"') {
            quoted += 1;
        }
    }
    assert!(rows.iter().all(|r| r.ts_ms >= start_ms && r.ts_ms < end_ms));
    assert!(quoted > 1000, "too few messages needing quotes: {quoted}");

    let text = |needle: &str| rows.iter().any(|r| r.message.contains(needle));
    for needle in [
        "Job started",
        "Job finished",
        "rows into",
        "Extracted",
        "duration=",
        "retrying",
    ] {
        assert!(text(needle), "no line containing {needle:?}");
    }
}

#[test]
fn every_category_is_labelled_and_errors_only_occur_in_bursts() {
    let cfg = EtlConfig::default();
    let labels = etl_labels(&cfg).expect("labels");
    assert_eq!(labels.len(), 10);
    let kinds: BTreeSet<&str> = labels.iter().map(|l| l.kind.as_str()).collect();
    let all: BTreeSet<&str> = ErrorCategory::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(kinds, all);

    let start = cfg.start.timestamp();
    let windows: Vec<(String, i64, i64)> = labels
        .iter()
        .map(|l| {
            let (s, e) = (unix(&l.start), unix(&l.end));
            assert!(s as f64 >= start as f64 + 0.15 * 7.0 * 86_400.0);
            let dur = e - s + 1;
            assert!((300..=1800).contains(&dur), "burst lasts {dur}s");
            (
                l.series.pipeline.clone().expect("pipeline label"),
                s * 1000,
                e * 1000,
            )
        })
        .collect();

    let mut per_window: HashMap<usize, usize> = HashMap::new();
    for r in log_rows(&cfg).expect("valid") {
        if r.level < Level::Error {
            continue;
        }
        let hit = windows
            .iter()
            .position(|(p, s, e)| p == r.pipeline_name() && r.ts_ms >= *s && r.ts_ms <= *e);
        match hit {
            Some(i) => *per_window.entry(i).or_default() += 1,
            None => panic!("unlabelled error line: {r:?}"),
        }
    }
    for (i, (p, s, e)) in windows.iter().enumerate() {
        let n = per_window.get(&i).copied().unwrap_or(0);
        let minutes = (e - s) as f64 / 60_000.0;
        // ~3 lines per minute (20 s mean gap), at least both ends.
        assert!(
            n >= 2 && n as f64 >= minutes,
            "{p}: {n} errors in {minutes:.0} min"
        );
    }
}
