//! Properties and contract tests of the public API.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tidewatch_anomaly::{
    detect, peer_outliers, AnomalyError, IForestParams, IsolationForest, Model, Params, METHODS,
};

const MIN: i64 = 60_000_000;

fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| 100.0 + rng.gen_range(-1.0..1.0) + rng.gen_range(-1.0..1.0))
        .collect()
}

#[test]
fn unknown_method_and_params_are_errors_with_hints() {
    let e = Model::new("nope", &json!({})).expect_err("unknown method");
    assert!(matches!(e, AnomalyError::UnknownMethod { .. }));
    for m in METHODS {
        assert!(e.hint().contains(m), "{}", e.hint());
    }
    let e = Model::new("robust", &json!({"windw": 3})).expect_err("unknown param");
    assert!(matches!(e, AnomalyError::UnknownParam { .. }));
    for k in Params::KEYS {
        assert!(e.hint().contains(k), "{}", e.hint());
    }
    assert!(matches!(
        Model::new("ewma", &json!({"alpha": 2})),
        Err(AnomalyError::InvalidParam { .. })
    ));
    assert!(matches!(
        Model::new("ewma", &json!([1])),
        Err(AnomalyError::ParamsNotObject { .. })
    ));
    assert!(Model::from_bytes(&[]).is_err());
    assert!(Model::from_bytes(&[99, 1, 2]).is_err());
    for m in METHODS {
        assert!(Model::new(m, &json!({})).is_ok(), "{m}");
    }
}

#[test]
fn injected_spike_is_found_at_its_index_with_exactly_one_alarm() {
    for method in ["auto", "robust"] {
        let mut x = noise(3000, 11);
        x[2000] += 40.0;
        let mut m = Model::new(method, &json!({})).expect("model");
        let alarms: Vec<usize> = x
            .iter()
            .enumerate()
            .filter(|(i, v)| m.update(*i as i64 * MIN, **v).is_anomaly)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(alarms, vec![2000], "{method}");
    }
}

#[test]
fn level_shift_gives_one_auto_alarm_near_the_shift() {
    let mut x = noise(3000, 5);
    for v in x.iter_mut().skip(2000) {
        *v += 15.0;
    }
    let mut m = Model::new("auto", &json!({})).expect("model");
    let alarms: Vec<usize> = (0..x.len())
        .filter(|&i| m.update(i as i64 * MIN, x[i]).is_anomaly)
        .collect();
    assert!(!alarms.is_empty() && alarms.len() <= 2, "{alarms:?}");
    assert!((2000..2010).contains(&alarms[0]), "{alarms:?}");
}

#[test]
fn changepoint_batch_finds_the_shift() {
    let mut x = noise(600, 9);
    for v in x.iter_mut().skip(300) {
        *v += 10.0;
    }
    let pts: Vec<(i64, f64)> = x
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 * MIN, *v))
        .collect();
    let r = detect("changepoint", &json!({}), pts).expect("detect");
    let first = r
        .points
        .iter()
        .position(|p| p.2.is_anomaly)
        .expect("an alarm");
    assert!((295..320).contains(&first), "first alarm at {first}");
}

#[test]
fn seasonal_batch_and_stream_follow_the_cycle() {
    let x: Vec<f64> = (0..2000)
        .map(|i| {
            10.0 * (i as f64 * std::f64::consts::TAU / 50.0).sin()
                + if i == 1500 { 8.0 } else { 0.0 }
        })
        .zip(noise(2000, 3))
        .map(|(s, n)| s + (n - 100.0) * 0.3)
        .collect();
    let pts: Vec<(i64, f64)> = x
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 * MIN, *v))
        .collect();
    let r = detect("seasonal", &json!({}), pts).expect("detect");
    let alarms: Vec<usize> = (0..r.points.len())
        .filter(|&i| r.points[i].2.is_anomaly)
        .collect();
    assert_eq!(alarms, vec![1500]);
    let mut m = Model::new("seasonal", &json!({})).expect("model");
    let alarms: Vec<usize> = (0..x.len())
        .filter(|&i| m.update(i as i64 * MIN, x[i]).is_anomaly)
        .collect();
    assert!(alarms.contains(&1500), "{alarms:?}");
    assert!(alarms.len() <= 3, "{alarms:?}");
    if let Model::Seasonal(s) = &m {
        assert_eq!(s.period(), 50);
    }
}

#[test]
fn iforest_and_peers_smoke() {
    let rows: Vec<Vec<f64>> = noise(400, 1).chunks(2).map(|c| c.to_vec()).collect();
    let f = IsolationForest::fit(&rows, &IForestParams::default()).expect("fit");
    assert!(f.score(&[200.0, 0.0]) > f.score(&[100.0, 100.0]));
    let bytes = postcard::to_allocvec(&f).expect("ser");
    let g: IsolationForest = postcard::from_bytes(&bytes).expect("de");
    assert_eq!(f, g);
    let series: Vec<Vec<f64>> = (0..5).map(|s| noise(50, s)).collect();
    let r = peer_outliers(&series, "mad", 0.5).expect("peers");
    assert_eq!(r.flags.len(), 5);
}

#[test]
fn detect_sorts_and_skips_non_finite() {
    let pts = vec![
        (3 * MIN, 1.0),
        (MIN, f64::NAN),
        (2 * MIN, 2.0),
        (2 * MIN, f64::INFINITY),
        (0, 3.0),
    ];
    let r = detect("robust", &json!({}), pts).expect("detect");
    assert_eq!(r.skipped, 2);
    let ts: Vec<i64> = r.points.iter().map(|p| p.0).collect();
    assert_eq!(ts, vec![0, 2 * MIN, 3 * MIN]);
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e6..1e6f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        2 => Just(0.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn scores_in_unit_interval_and_non_finite_never_poison(xs in prop::collection::vec(value(), 0..400), mi in 0usize..6) {
        let method = METHODS[mi];
        let mut a = Model::new(method, &json!({})).expect("model");
        let mut b = Model::new(method, &json!({})).expect("model");
        let finite: Vec<f64> = xs.iter().copied().filter(|v| v.is_finite()).collect();
        for (i, v) in xs.iter().enumerate() {
            let s = a.update(i as i64 * MIN, *v);
            prop_assert!((0.0..=1.0).contains(&s.score), "{method} {s:?}");
            prop_assert!(!s.sigma.is_nan());
        }
        // Same model fed only the finite values ends in the same state (timestamps aside for auto).
        for (i, v) in finite.iter().enumerate() {
            b.update(i as i64 * MIN, *v);
        }
        if method != "auto" && method != "seasonal" {
            prop_assert_eq!(a.to_bytes(), b.to_bytes());
        }
    }

    #[test]
    fn constant_series_has_no_anomalies(c in -1e6..1e6f64, n in 1usize..2000, mi in 0usize..6) {
        let method = METHODS[mi];
        let mut m = Model::new(method, &json!({})).expect("model");
        for i in 0..n {
            prop_assert!(!m.update(i as i64 * MIN, c).is_anomaly, "{method} at {i}");
        }
    }

    #[test]
    fn round_trip_gives_identical_scores(seed in 0u64..1000, cut in 50usize..1500, mi in 0usize..6) {
        let method = METHODS[mi];
        let x = noise(2000, seed);
        let mut a = Model::new(method, &json!({})).expect("model");
        for (i, v) in x[..cut].iter().enumerate() {
            a.update(i as i64 * MIN, *v);
        }
        let mut b = Model::from_bytes(&a.to_bytes()).expect("decode");
        for (i, v) in x.iter().enumerate().skip(cut) {
            let (sa, sb) = (a.update(i as i64 * MIN, *v), b.update(i as i64 * MIN, *v));
            prop_assert_eq!(format!("{sa:?}"), format!("{sb:?}"));
        }
    }

    #[test]
    fn detect_handles_unsorted_and_duplicate_timestamps(ts in prop::collection::vec(0i64..50, 0..200)) {
        let pts: Vec<(i64, f64)> = ts.iter().map(|t| (t * MIN, *t as f64)).collect();
        let r = detect("auto", &json!({}), pts).expect("detect");
        prop_assert_eq!(r.points.len(), ts.len());
        prop_assert!(r.points.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}

#[test]
fn states_of_older_versions_are_refused_with_a_clear_error() {
    use tidewatch_anomaly::monitor::MonitorState;
    let mut m = Model::new("auto", &json!({})).expect("model");
    for (i, v) in noise(500, 4).iter().enumerate() {
        m.update(i as i64 * MIN, *v);
    }
    let mut bytes = m.to_bytes();
    assert_eq!(bytes[0], tidewatch_anomaly::STATE_VERSION);
    bytes[0] = 2;
    let e = Model::from_bytes(&bytes).expect_err("version 2 is refused");
    assert!(
        matches!(&e, AnomalyError::CorruptState(msg) if msg.contains("version 2")),
        "{e}"
    );
    assert!(e.hint().contains("retrain"), "{}", e.hint());
    let st = MonitorState::new("auto", &json!({})).expect("monitor");
    let mut bytes = st.to_bytes();
    bytes[0] = 2;
    assert!(matches!(
        MonitorState::from_bytes(&bytes),
        Err(AnomalyError::CorruptState(msg)) if msg.contains("version 2")
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A damaged `auto` state decodes to an error or to a model that keeps scoring in [0, 1];
    /// it never panics.
    #[test]
    fn damaged_auto_state_never_panics(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let mut m = Model::new("auto", &json!({})).expect("model");
        let x = noise(3000, 6);
        for (i, v) in x.iter().enumerate() {
            m.update(i as i64 * MIN, *v);
        }
        let mut bytes = m.to_bytes();
        for (at, xor) in &flips {
            let i = 1 + at.index(bytes.len() - 1);
            bytes[i] ^= xor;
        }
        if let Ok(mut d) = Model::from_bytes(&bytes) {
            for (i, v) in x.iter().enumerate().take(300) {
                let s = d.update((3000 + i) as i64 * MIN, *v);
                prop_assert!((0.0..=1.0).contains(&s.score), "{s:?}");
            }
        }
    }
}

#[test]
fn state_size_is_bounded_whatever_the_history() {
    for method in METHODS {
        let mut m = Model::new(method, &json!({})).expect("model");
        let mut sizes = Vec::new();
        for (i, v) in noise(60_000, 2).iter().enumerate() {
            m.update(i as i64 * MIN, *v);
            if i == 20_000 || i == 59_999 {
                sizes.push(m.to_bytes().len());
            }
        }
        assert!(sizes[1] <= sizes[0] + 64, "{method}: {sizes:?}");
        assert!(sizes[1] < 200_000, "{method}: {sizes:?}");
        println!("{method}: state {} bytes", sizes[1]);
    }
}

/// `auto`'s threshold has one source of truth, `AutoConfig::default()` (what leave-one-group-out
/// chooses): the SQL path (`Model::new` with no `threshold` in params) must not substitute the
/// other methods' default. Fails as soon as the two defaults differ and the path does not follow.
#[test]
fn auto_threshold_defaults_to_auto_config_and_params_override_it() {
    use tidewatch_anomaly::auto::AutoConfig;
    let thr = |params: serde_json::Value| match Model::new("auto", &params).expect("auto") {
        Model::Auto(a) => a.config().threshold,
        _ => panic!("not auto"),
    };
    assert_eq!(thr(json!({})), AutoConfig::default().threshold);
    assert_eq!(
        thr(serde_json::Value::Null),
        AutoConfig::default().threshold
    );
    assert_eq!(thr(json!({"threshold": 0.73})), 0.73);
    assert_eq!(
        thr(json!({"refractory": 9})),
        AutoConfig::default().threshold
    );
}
