//! update() throughput per method: `cargo bench -p tidewatch-anomaly --bench detectors`.
//!
//! - `update/<method>`: one 100k-point series through one model;
//! - `interleaved/<method>`: the SQL workload in small, 1,000 series × 10,000 points scanned in time
//!   order (series interleaved), each point looked up in a `HashMap` of per-series models.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "common/mod.rs"]
mod common;
use common::{interleaved, scan_interleaved, scan_series, series};

fn bench(c: &mut Criterion) {
    let x = series(100_000);
    let mut g = c.benchmark_group("update");
    g.throughput(Throughput::Elements(x.len() as u64));
    g.sample_size(10);
    for method in tidewatch_anomaly::METHODS {
        g.bench_function(*method, |b| b.iter(|| scan_series(&x, method)));
    }
    g.finish();

    let (n_series, ticks) = (1_000usize, 10_000usize);
    let rows = interleaved(n_series, ticks);
    let mut g = c.benchmark_group("interleaved");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.sample_size(10);
    for method in ["auto", "ewma"] {
        g.bench_function(method, |b| {
            b.iter(|| scan_interleaved(&rows, n_series, method))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
