//! Single-thread throughput of masking, the miner and the default classifier over the
//! Content column of the Loghub-2k samples (8 systems), repeated to at least N lines.
//!
//! `cargo run --release -p tidewatch-logs --example bench_miner -- [N] [DATA_DIR] [ONLY]`
//! (defaults: 1,000,000 lines; DATA_DIR from $LOGHUB_DATA, else ../shared/data/loghub-2k
//! beside the repository; ONLY a comma list of streams and steps to run, e.g.
//! `tenth,miner`, default all). Skips, saying so, when the data is absent.
//!
//! Streams (all N lines long, built before timing):
//! * `repeat`: the 16,000 lines repeated;
//! * `tenth`: as `repeat`, with the line number appended to every tenth line (as
//!   benches/logs_sql.sh feeds the extension), so the miner also sees variants;
//! * `distinct`: the line number appended to every line.
//!
//! Steps per stream: `mask` (the masker with reused buffers, as inside the miner),
//! `tokenize` (owned tokens), `miner` (`Miner::add`, full match with template and
//! parameters), `miner_id` (`Miner::add_id`, the cluster id only), `classify` (default
//! rules). One line per measurement with wall and CPU time (getrusage user + system) and
//! the load average at the start.

#[path = "common/mod.rs"]
mod common;

use common::{data_dir, load_average, read_contents, stream, Timer};
use tidewatch_logs::{classify, mask::DEFAULT_MAX_LEN, tokenize, Masker, Miner};

/// Run `f` over every line, timed; print one result line; return the checksum.
fn measure(stream: &str, step: &str, lines: &[String], mut f: impl FnMut(&str) -> usize) -> usize {
    let load = load_average();
    let t = Timer::start();
    let mut check = 0usize;
    for l in lines {
        check = check.wrapping_add(f(l));
    }
    let e = t.stop();
    println!(
        "{stream:<8} {step:<8} lines={} {} load={load}",
        lines.len(),
        e.rates(lines.len())
    );
    check
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
    let only: Vec<&str> = args
        .get(2)
        .map(|s| s.split(',').filter(|w| !w.is_empty()).collect())
        .unwrap_or_default();
    let streams_wanted: Vec<&str> = only
        .iter()
        .copied()
        .filter(|w| matches!(*w, "repeat" | "tenth" | "distinct"))
        .collect();
    let steps_wanted: Vec<&str> = only
        .iter()
        .copied()
        .filter(|w| !streams_wanted.contains(w))
        .collect();
    let run_stream = |s: &str| streams_wanted.is_empty() || streams_wanted.contains(&s);
    let run_step = |s: &str| steps_wanted.is_empty() || steps_wanted.contains(&s);

    let base = read_contents(&dir)?;
    if base.is_empty() {
        println!("SKIP bench_miner: no Content lines under {}", dir.display());
        return Ok(());
    }
    println!(
        "base: {} distinct lines from {}; {target} lines per stream",
        base.len(),
        dir.display()
    );
    for name in ["repeat", "tenth", "distinct"] {
        if !run_stream(name) {
            continue;
        }
        let Some(lines) = stream(&base, name, target) else {
            continue;
        };
        let mut checks = Vec::new();
        if run_step("mask") {
            let mut masker = Masker::new();
            let c = measure(name, "mask", &lines, |l| masker.mask(l, DEFAULT_MAX_LEN));
            checks.push(format!("tokens={c}"));
        }
        if run_step("tokenize") {
            let c = measure(name, "tokenize", &lines, |l| {
                tokenize(l, DEFAULT_MAX_LEN).len()
            });
            checks.push(format!("tokens={c}"));
        }
        if run_step("miner") {
            let mut miner = Miner::default();
            let c = measure(name, "miner", &lines, |l| usize::from(miner.add(l).is_new));
            checks.push(format!("opened={c} clusters={}", miner.len()));
        }
        if run_step("miner_id") {
            let mut miner = Miner::default();
            let c = measure(name, "miner_id", &lines, |l| miner.add_id(l) as usize);
            checks.push(format!("id_sum={c} clusters={}", miner.len()));
        }
        if run_step("classify") {
            let c = measure(name, "classify", &lines, |l| {
                usize::from(classify(l).category.as_str() != "unknown")
            });
            checks.push(format!("classified={c}"));
        }
        println!("{name:<8} checks: {}", checks.join(" "));
    }
    Ok(())
}
