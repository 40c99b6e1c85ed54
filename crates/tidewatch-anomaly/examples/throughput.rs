//! Quick throughput check without criterion: `cargo run --release -p tidewatch-anomaly --example
//! throughput [methods...]`. Best of `REPS` runs, timed by the thread's own CPU time where Linux
//! reports it (`/proc/thread-self/schedstat`), so other jobs on a shared machine disturb it less
//! than wall-clock time would; elsewhere by wall-clock time. `REPS=20` for more runs.
//!
//! Prints points/s for one 100k-point series and for the SQL-like interleaved scan (1,000 series
//! × 10,000 points through a `HashMap` of models); the workloads are those of
//! `benches/detectors.rs`.

use std::time::Instant;

#[path = "../benches/common/mod.rs"]
mod common;
use common::{interleaved, scan_interleaved, scan_series, series};

/// Runs per measurement unless `REPS` is set.
const REPS: usize = 5;

/// Nanoseconds this thread has run on a CPU, if the kernel says.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn best_rate(points: usize, mut f: impl FnMut() -> f64) -> f64 {
    let reps = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(REPS);
    // At least ~2M points per measurement: the kernel updates the CPU time at scheduler ticks.
    let inner = (2_000_000 / points.max(1)).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let (t, c) = (Instant::now(), cpu_ns());
        for _ in 0..inner {
            std::hint::black_box(f());
        }
        let secs = match (c, cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 * 1e-9,
            _ => t.elapsed().as_secs_f64(),
        };
        best = best.min(secs);
    }
    (points * inner) as f64 / best
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let methods: Vec<&str> = if args.is_empty() {
        vec!["auto", "ewma", "robust"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let x = series(100_000);
    let (n_series, ticks) = (1_000usize, 10_000usize);
    let rows = interleaved(n_series, ticks);
    println!("method      single series (M points/s)   1,000 interleaved (M points/s)");
    for m in methods {
        let one = best_rate(x.len(), || scan_series(&x, m));
        let many = best_rate(rows.len(), || scan_interleaved(&rows, n_series, m));
        println!("{m:<11} {:>10.2} {:>32.2}", one / 1e6, many / 1e6);
    }
}
