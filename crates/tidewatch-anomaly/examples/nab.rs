//! Run `auto` over the Numenta Anomaly Benchmark, causally, one configuration for every file.
//!
//! ```text
//! cargo run --release -p tidewatch-anomaly --example nab -- ../shared/data/nab target/nab-results/tidewatch
//! python3 ../shared/tools/nab_score.py --data ../shared/data/nab --results target/nab-results/tidewatch
//! ```
//!
//! Reads every file listed in `labels/combined_windows.json`, runs `Model::new("auto", {})` +
//! `update` over each series in file order and writes `OUT/<category>/<file>.csv` with
//! `timestamp,anomaly_score`. Skips cleanly (exit 0) when the data directory is absent.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use tidewatch_anomaly::auto::{Auto, AutoConfig};
use tidewatch_anomaly::Model;

/// "YYYY-MM-DD HH:MM:SS" → µs since the epoch (proleptic Gregorian, UTC).
fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |a: usize, b: usize| s.get(a..b).and_then(|t| t.parse::<i64>().ok());
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // Days from civil (H. Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + h * 3600 + mi * 60 + se) * 1_000_000)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let data = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("../shared/data/nab");
    let out = args
        .get(2)
        .map(String::as_str)
        .unwrap_or("target/nab-results/tidewatch");
    // Development only: a third argument overrides fields of `AutoConfig` (JSON object).
    let overrides: Option<serde_json::Value> = match args.get(3) {
        Some(p) => Some(serde_json::from_str(p)?),
        None => None,
    };
    let windows = Path::new(data).join("labels").join("combined_windows.json");
    if !windows.exists() {
        println!("NAB data not found at {data}; skipping");
        return Ok(());
    }
    let labels: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(&windows)?)?;
    let mut files: Vec<&String> = labels.keys().collect();
    files.sort();
    let t0 = Instant::now();
    let mut rows_total = 0usize;
    for rel in files {
        let text = fs::read_to_string(Path::new(data).join("data").join(rel))?;
        let mut model = match &overrides {
            None => Model::new("auto", &serde_json::json!({}))?,
            Some(o) => {
                let mut cfg = serde_json::to_value(AutoConfig::default())?;
                if let (Some(c), Some(o)) = (cfg.as_object_mut(), o.as_object()) {
                    for (k, v) in o {
                        c.insert(k.clone(), v.clone());
                    }
                }
                Model::Auto(Box::new(Auto::new(serde_json::from_value(cfg)?)))
            }
        };
        let mut buf = String::from("timestamp,anomaly_score\n");
        for line in text.lines().skip(1) {
            let mut it = line.splitn(2, ',');
            let (Some(ts), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let score = match (parse_ts(ts), v.trim().parse::<f64>()) {
                (Some(t), Ok(x)) => model.update(t, x).score,
                _ => 0.0,
            };
            buf.push_str(&format!("{ts},{score:.6}\n"));
            rows_total += 1;
        }
        let dst = Path::new(out).join(rel);
        if let Some(dir) = dst.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::File::create(&dst)?.write_all(buf.as_bytes())?;
    }
    println!(
        "wrote {} files ({rows_total} rows) to {out} in {:.2?}",
        labels.len(),
        t0.elapsed()
    );
    Ok(())
}
