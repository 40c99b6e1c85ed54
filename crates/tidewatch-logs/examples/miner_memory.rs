//! Bounded memory: feed N distinct lines (default 1,000,000) to a miner with the default
//! configuration (cluster cap 10,000, least recently used evicted) and report the cluster
//! count and the peak resident set size (VmHWM from /proc/self/status, Linux only).
//!
//! `cargo run --release -p tidewatch-logs --example miner_memory -- [N]`
//! (`Miner::add_id`; with `MINER_ADD=add` in the environment, `Miner::add`). Prints wall
//! and CPU time (getrusage user + system) and the load average.
//!
//! Each line starts with a distinct capitalised word, which the miner treats as a keyword
//! that never merges, so every line opens a new cluster: the worst case for memory.

#[path = "common/mod.rs"]
mod common;

use common::{keyword_line, load_average, Timer};
use tidewatch_logs::Miner;

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 1_000_000,
    };
    let before = vm_hwm_kib();
    let mut line = String::with_capacity(128);
    // the lines are made inside the timed loop (keeping them would weigh on the peak
    // RSS); their cost alone is measured first and printed
    let t = Timer::start();
    let mut bytes = 0;
    for i in 0..n {
        keyword_line(&mut line, i, i)?;
        bytes += line.len();
    }
    let gen = t.stop();
    let load = load_average();
    let mut miner = Miner::default();
    let cap = miner.config().max_clusters;
    let use_id = std::env::var("MINER_ADD").map_or(true, |v| v != "add");
    let t = Timer::start();
    let mut max_len = 0;
    for i in 0..n {
        keyword_line(&mut line, i, i)?;
        if use_id {
            miner.add_id(&line);
        } else {
            miner.add(&line);
        }
        max_len = max_len.max(miner.len());
    }
    let e = t.stop();
    let state = miner.to_json()?.len();
    let api = if use_id { "add_id" } else { "add" };
    println!(
        "lines={n} api={api} cluster_cap={cap} clusters={} max_clusters_seen={max_len} {} \
         (line generation alone: wall_s={:.3}, {bytes} bytes) load={load} state_json_bytes={state}",
        miner.len(),
        e.rates(n as usize),
        gen.wall,
    );
    match (before, vm_hwm_kib()) {
        (Some(b), Some(a)) => println!(
            "peak_rss_mib={:.1} (at start {:.1})",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        ),
        _ => println!("peak RSS unavailable (no /proc/self/status VmHWM)"),
    }
    assert!(miner.len() <= cap);
    Ok(())
}
