//! Single-thread throughput of masking, the miner and the default classifier over the
//! Content column of the Loghub-2k samples (8 systems), repeated to at least N lines.
//!
//! `cargo run --release -p tidewatch-logs --example bench_miner -- [N] [DATA_DIR]`
//! (defaults: 1,000,000 lines; DATA_DIR from $LOGHUB_DATA, else ../shared/data/loghub-2k
//! beside the repository). Skips, saying so, when the data is absent. Prints one line per
//! workload: `<name> lines=<n> seconds=<s> lines_per_sec=<r>`.

use std::path::PathBuf;
use std::time::Instant;
use tidewatch_logs::{classify, mask::DEFAULT_MAX_LEN, tokenize, Miner};

const SYSTEMS: &[&str] = &[
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "BGL",
    "HPC",
    "Apache",
    "OpenSSH",
];

fn data_dir(arg: Option<&String>) -> Option<PathBuf> {
    let candidates = [
        arg.map(PathBuf::from),
        std::env::var("LOGHUB_DATA").ok().map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/loghub-2k")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

fn read_contents(dir: &std::path::Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for s in SYSTEMS {
        let path = dir.join(s).join(format!("{s}_2k.log_structured.csv"));
        let Ok(mut rdr) = csv::Reader::from_path(&path) else {
            eprintln!("skip {s}: {} unreadable", path.display());
            continue;
        };
        let ci = rdr
            .headers()?
            .iter()
            .position(|h| h == "Content")
            .ok_or("no Content column")?;
        for rec in rdr.records() {
            out.push(rec?.get(ci).unwrap_or("").to_string());
        }
    }
    Ok(out)
}

fn report(name: &str, n: usize, secs: f64) {
    println!(
        "{name:<9} lines={n} seconds={secs:.3} lines_per_sec={:.0}",
        n as f64 / secs
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target: usize = match args.first() {
        Some(a) => a.parse()?,
        None => 1_000_000,
    };
    let Some(dir) = data_dir(args.get(1)) else {
        println!("SKIP bench_miner: Loghub-2k data not found (pass DATA_DIR or set LOGHUB_DATA)");
        return Ok(());
    };
    let base = read_contents(&dir)?;
    if base.is_empty() {
        println!("SKIP bench_miner: no Content lines under {}", dir.display());
        return Ok(());
    }
    let reps = target.div_ceil(base.len());
    let stream: Vec<&str> = (0..reps)
        .flat_map(|_| base.iter().map(|s| s.as_str()))
        .collect();
    let n = stream.len();
    println!(
        "stream: {} distinct lines x {reps} = {n} lines from {}",
        base.len(),
        dir.display()
    );

    let t = Instant::now();
    let mut tokens = 0usize;
    for l in &stream {
        tokens += tokenize(l, DEFAULT_MAX_LEN).len();
    }
    report("mask", n, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let mut miner = Miner::default();
    let mut new = 0usize;
    for l in &stream {
        new += usize::from(miner.add(l).is_new);
    }
    report("miner", n, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let mut known = 0usize;
    for l in &stream {
        known += usize::from(classify(l).category.as_str() != "unknown");
    }
    report("classify", n, t.elapsed().as_secs_f64());
    println!(
        "checks: tokens={tokens} clusters={} opened={new} classified={known}",
        miner.len()
    );
    Ok(())
}
