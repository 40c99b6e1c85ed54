//! End-to-end tests of the `tidewatch-sample` binary.

use std::path::PathBuf;
use std::process::Command;

use tidewatch_sample::telemetry::{telemetry_labels, TelemetryConfig};
use tidewatch_sample::LabelFile;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidewatch-sample"))
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tidewatch-sample-{}-{name}", std::process::id()))
}

#[test]
fn telemetry_writes_csv_and_labels() {
    let labels = temp_path("labels.json");
    let out = bin()
        .args([
            "telemetry",
            "--days",
            "2",
            "--step-secs",
            "60",
            "--satellites",
            "2",
            "--metrics",
            "3",
            "--seed",
            "7",
            "--start",
            "2026-03-01 00:00:00+00",
        ])
        .arg("--labels")
        .arg(&labels)
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("ts,satellite,metric,value"));
    assert!(lines
        .next()
        .is_some_and(|l| l.starts_with("2026-03-01 00:00:00+00,SAT1,SCH.M1,")));

    let text = std::fs::read_to_string(&labels).expect("labels written");
    let _ = std::fs::remove_file(&labels);
    let file: LabelFile = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(file.generator, "tidewatch-sample");
    assert_eq!(file.seed, 7);
    assert_eq!(file.step_secs, Some(60));
    assert_eq!(file.start, "2026-03-01T00:00:00Z");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(value["anomalies"][0]["series"]["satellite"].is_string());
    assert!(
        value["anomalies"][0]["magnitude_sigma"].is_number()
            || value["anomalies"][0]["magnitude_sigma"].is_null()
    );

    let cfg = TelemetryConfig {
        start: file.start.parse().expect("rfc3339"),
        days: 2.0,
        step_secs: 60,
        satellites: 2,
        metrics: 3,
        seed: 7,
        anomalies_per_series: 3,
    };
    let mut expected = telemetry_labels(&cfg).expect("labels");
    let mut got = file.anomalies;
    let key = |l: &tidewatch_sample::Label| (l.start.clone(), format!("{:?}", l.series));
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected);
}

#[test]
fn every_subcommand_produces_its_header() {
    for (args, header) in [
        (
            vec!["devices", "--days", "1", "--devices", "2"],
            "ts,device,temperature,power,load,voltage,fan,clock",
        ),
        (vec!["etl-logs", "--days", "1"], "ts,pipeline,level,message"),
        (
            vec!["features", "--rows", "10", "--drift", "category"],
            "batch,f_num1,f_num2,f_cat,f_bool",
        ),
    ] {
        let out = bin().args(&args).output().expect("binary runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf8");
        assert_eq!(text.lines().next(), Some(header), "{args:?}");
        assert!(text.lines().count() > 10, "{args:?}");
    }
}

#[test]
fn bad_configuration_exits_with_code_1_and_a_message() {
    let out = bin()
        .args(["telemetry", "--step-secs", "0"])
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("step_secs"), "{err}");

    let out = bin()
        .args([
            "telemetry",
            "--days",
            "1",
            "--labels",
            "/nonexistent-dir/x/labels.json",
        ])
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("labels"));

    // Argument errors are reported by clap (exit code 2).
    let out = bin()
        .args(["telemetry", "--start", "yesterday"])
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid timestamp"));
}
