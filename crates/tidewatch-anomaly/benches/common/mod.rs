//! Synthetic workloads shared by `benches/detectors.rs` and `examples/throughput.rs`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use tidewatch_anomaly::Model;

/// One point a minute.
pub const STEP_US: i64 = 60_000_000;

/// xorshift64 (Marsaglia 2003) uniform in [0, 1).
pub fn uniform(s: &mut u64) -> f64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s >> 11) as f64 / (1u64 << 53) as f64
}

pub fn series(n: usize) -> Vec<f64> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|i| {
            10.0 * (i as f64 * std::f64::consts::TAU / 1440.0).sin()
                + uniform(&mut s)
                + if i % 5000 == 0 { 20.0 } else { 0.0 }
        })
        .collect()
}

/// Values in scan order: tick-major, `series` values per tick. Each series has its own level,
/// amplitude, phase and noise, and a spike every 5,000 ticks at its own offset.
pub fn interleaved(series: usize, ticks: usize) -> Vec<f64> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let shape: Vec<(f64, f64, f64, f64)> = (0..series)
        .map(|_| {
            (
                100.0 * uniform(&mut s),
                10.0 * uniform(&mut s),
                std::f64::consts::TAU * uniform(&mut s),
                0.1 + 2.0 * uniform(&mut s),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(series * ticks);
    for t in 0..ticks {
        for (k, &(lvl, amp, ph, noise)) in shape.iter().enumerate() {
            let spike = if (t + 37 * k) % 5000 == 0 { 20.0 } else { 0.0 };
            out.push(
                lvl + amp * (t as f64 * std::f64::consts::TAU / 1440.0 + ph).sin()
                    + noise * uniform(&mut s)
                    + spike,
            );
        }
    }
    out
}

/// One series through one model; returns the sum of the scores (so nothing is optimised away).
pub fn scan_series(x: &[f64], method: &str) -> f64 {
    let Ok(mut m) = Model::new(method, &serde_json::Value::Null) else {
        return f64::NAN;
    };
    let mut acc = 0.0;
    for (i, v) in x.iter().enumerate() {
        acc += m.update(i as i64 * STEP_US, *v).score;
    }
    acc
}

/// The SQL workload's inner loop: rows in time order (`n_series` per tick, see [`interleaved`]),
/// each looked up in a `HashMap` of per-series models, created on first sight.
pub fn scan_interleaved(rows: &[f64], n_series: usize, method: &str) -> f64 {
    let mut states: HashMap<u32, Model> = HashMap::new();
    let mut acc = 0.0;
    for (i, chunk) in rows.chunks_exact(n_series).enumerate() {
        let ts = i as i64 * STEP_US;
        for (k, v) in chunk.iter().enumerate() {
            let m = match states.entry(k as u32) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => match Model::new(method, &serde_json::Value::Null) {
                    Ok(m) => e.insert(m),
                    Err(_) => return f64::NAN,
                },
            };
            acc += m.update(ts, *v).score;
        }
    }
    acc
}
