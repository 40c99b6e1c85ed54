//! Sensitivity must not decay with the length of normal history: a fixed 9σ spike is flagged
//! after one hour, one day and thirty days of normal history alike (issue 16).
//!
//! The history is generated: a daily cycle, an AR(1) noise of marginal standard deviation σ and
//! a slow random walk, sampled every minute or every 30 seconds; the spike is the clean signal
//! plus 9σ. Several seeds and shapes; the oracle is the construction (the spike is the only
//! value 9σ from the clean signal).

use tidewatch_anomaly::Model;
use tidewatch_sample::rng::Xoshiro256pp;

/// One shape of normal history.
struct Shape {
    step_secs: i64,
    phi: f64,
    daily_amp: f64,
    walk: f64,
}

/// Feed `points` of normal history then the spike and two normal points; return whether the
/// spike (or the point after it, where a one-point event may be raised) was flagged, and the
/// spike's deviation in robust sigmas.
fn run(shape: &Shape, seed: u64, points: usize) -> (bool, f64) {
    let mut r = Xoshiro256pp::from_u64(seed);
    let mut m = Model::new("auto", &serde_json::json!({})).expect("auto");
    let (mut e, mut w) = (0.0f64, 0.0f64);
    let day = 86_400.0 / shape.step_secs as f64;
    let innovation = (1.0 - shape.phi * shape.phi).sqrt();
    let mut clean_at = |i: usize, r: &mut Xoshiro256pp| {
        w += shape.walk * r.normal();
        100.0 + w + shape.daily_amp * (i as f64 * std::f64::consts::TAU / day).sin()
    };
    let ts = |i: usize| 1_767_225_600_000_000 + i as i64 * shape.step_secs * 1_000_000;
    for i in 0..points {
        e = shape.phi * e + innovation * r.normal();
        let c = clean_at(i, &mut r);
        m.update(ts(i), c + e);
    }
    let sv = clean_at(points, &mut r) + 9.0;
    if std::env::var("DEBUG_HISTORY").is_ok() {
        if let Model::Auto(a) = &m {
            eprintln!("{points} points: {}", a.debug(sv));
        }
    }
    let spike = m.update(ts(points), sv);
    e = shape.phi * e + innovation * r.normal();
    let next = m.update(ts(points + 1), clean_at(points + 1, &mut r) + e);
    (spike.is_anomaly || next.is_anomaly, spike.sigma)
}

#[test]
fn a_9_sigma_spike_is_flagged_after_an_hour_a_day_and_thirty_days() {
    let shapes = [
        Shape {
            step_secs: 60,
            phi: 0.0,
            daily_amp: 0.0,
            walk: 0.0,
        },
        Shape {
            step_secs: 60,
            phi: 0.5,
            daily_amp: 5.0,
            walk: 0.02,
        },
        Shape {
            step_secs: 30,
            phi: 0.3,
            daily_amp: 3.0,
            walk: 0.01,
        },
    ];
    let mut missed = Vec::new();
    for (k, shape) in shapes.iter().enumerate() {
        let per_hour = 3600 / shape.step_secs as usize;
        for (label, points) in [
            ("1 hour", per_hour),
            ("1 day", 24 * per_hour),
            ("30 days", 720 * per_hour),
        ] {
            for seed in 0..3 {
                let (flagged, sigma) = run(shape, 100 * k as u64 + seed, points);
                if !flagged {
                    missed.push(format!(
                        "shape {k}, {label}, seed {seed}: {sigma:.1}σ not flagged"
                    ));
                }
            }
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}
