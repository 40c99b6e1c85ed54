//! Bounded memory: feed N distinct lines (default 1,000,000) to a miner with the default
//! configuration (cluster cap 10,000, least recently used evicted) and report the cluster
//! count and the peak resident set size (VmHWM from /proc/self/status, Linux only).
//!
//! `cargo run --release -p tidewatch-logs --example miner_memory -- [N]`
//!
//! Each line starts with a distinct capitalised word, which the miner treats as a keyword
//! that never merges, so every line opens a new cluster: the worst case for memory.

use std::time::Instant;
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

/// A distinct capitalised word for i (base-26 letters).
fn word(mut i: u64) -> String {
    let mut w = String::from("K");
    loop {
        w.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            break w;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 1_000_000,
    };
    let before = vm_hwm_kib();
    let mut miner = Miner::default();
    let cap = miner.config().max_clusters;
    let t = Instant::now();
    let mut max_len = 0;
    for i in 0..n {
        let line = format!(
            "{} request from user {} on node-{} took {} ms status {}",
            word(i),
            word(i.wrapping_mul(2_654_435_761) % 1_000_003),
            i % 977,
            i % 1000,
            ["ok", "failed", "retry"][(i % 3) as usize]
        );
        miner.add(&line);
        max_len = max_len.max(miner.len());
    }
    let secs = t.elapsed().as_secs_f64();
    let state = miner.to_json()?.len();
    match (before, vm_hwm_kib()) {
        (Some(b), Some(a)) => println!(
            "lines={n} cluster_cap={cap} clusters={} max_clusters_seen={max_len} seconds={secs:.1} \
             state_json_bytes={state} peak_rss_mib={:.1} (at start {:.1})",
            miner.len(),
            a as f64 / 1024.0,
            b as f64 / 1024.0
        ),
        _ => println!(
            "lines={n} cluster_cap={cap} clusters={} seconds={secs:.1} (VmHWM unavailable)",
            miner.len()
        ),
    }
    assert!(miner.len() <= cap);
    Ok(())
}
