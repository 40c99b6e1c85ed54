//! Mine templates for Loghub structured CSVs and write predictions for loghub_eval.py.
//!
//! `cargo run --release -p tidewatch-logs --example loghub -- DATA_DIR OUT_DIR [System...]`
//! reads DATA_DIR/<System>/<System>_2k.log_structured_corrected.csv (Content column) and writes
//! OUT_DIR/<System>.csv with LineId,EventId,EventTemplate. One configuration for all systems.

use std::path::PathBuf;
use tidewatch_logs::{Config, Miner};

const SYSTEMS: &[&str] = &[
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "BGL",
    "HPC",
    "Thunderbird",
    "Windows",
    "Linux",
    "Android",
    "HealthApp",
    "Apache",
    "Proxifier",
    "OpenSSH",
    "OpenStack",
    "Mac",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: loghub DATA_DIR OUT_DIR [System...]");
        std::process::exit(2);
    }
    let data = PathBuf::from(&args[0]);
    let out = PathBuf::from(&args[1]);
    std::fs::create_dir_all(&out)?;
    let systems: Vec<String> = if args.len() > 2 {
        args[2..].to_vec()
    } else {
        SYSTEMS.iter().map(|s| s.to_string()).collect()
    };
    for s in systems {
        let path = data
            .join(&s)
            .join(format!("{s}_2k.log_structured_corrected.csv"));
        if !path.exists() {
            continue;
        }
        let mut rdr = csv::Reader::from_path(&path)?;
        let headers = rdr.headers()?.clone();
        let li = headers
            .iter()
            .position(|h| h == "LineId")
            .ok_or("no LineId")?;
        let ci = headers
            .iter()
            .position(|h| h == "Content")
            .ok_or("no Content")?;
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec?;
            rows.push((
                rec.get(li).unwrap_or("").to_string(),
                rec.get(ci).unwrap_or("").to_string(),
            ));
        }
        let t0 = std::time::Instant::now();
        let labels = tidewatch_logs::drain::mine_batch(
            &mut Miner::new(Config::default()),
            rows.iter().map(|r| r.1.as_str()),
        );
        let dt = t0.elapsed();
        let mut w = csv::Writer::from_path(out.join(format!("{s}.csv")))?;
        w.write_record(["LineId", "EventId", "EventTemplate"])?;
        let mut groups = std::collections::HashSet::new();
        for ((line, _), (gid, tpl)) in rows.iter().zip(&labels) {
            groups.insert(*gid);
            w.write_record([line.as_str(), &format!("E{gid}"), tpl.as_str()])?;
        }
        w.flush()?;
        eprintln!(
            "{s:<10} lines={} groups={} {:.1} ms",
            rows.len(),
            groups.len(),
            dt.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
