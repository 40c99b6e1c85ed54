//! update() throughput per method: `cargo bench -p tidewatch-anomaly --bench detectors`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use tidewatch_anomaly::Model;

fn series(n: usize) -> Vec<f64> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            10.0 * (i as f64 * std::f64::consts::TAU / 1440.0).sin()
                + u
                + if i % 5000 == 0 { 20.0 } else { 0.0 }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let x = series(100_000);
    let mut g = c.benchmark_group("update");
    g.throughput(Throughput::Elements(x.len() as u64));
    g.sample_size(10);
    for method in tidewatch_anomaly::METHODS {
        g.bench_function(*method, |b| {
            b.iter_batched(
                || Model::new(method, &json!({})).expect("model"),
                |mut m| {
                    let mut acc = 0.0;
                    for (i, v) in x.iter().enumerate() {
                        acc += m.update(i as i64 * 60_000_000, *v).score;
                    }
                    acc
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
