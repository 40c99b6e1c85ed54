//! Seeded/property tests and edge cases.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_drift::{categorical_drift, numeric_drift, DriftError, METHODS};

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[test]
fn ks_false_positive_rate_is_near_alpha_without_drift() {
    let mut rng = StdRng::seed_from_u64(20_240_601);
    let trials = 1000;
    let mut flagged = 0;
    for _ in 0..trials {
        let r: Vec<f64> = (0..200).map(|_| normal(&mut rng)).collect();
        let c: Vec<f64> = (0..150).map(|_| normal(&mut rng)).collect();
        let rep = numeric_drift("ks", &r, &c).expect("ks");
        if rep.result.drifted {
            flagged += 1;
        }
    }
    let rate = flagged as f64 / trials as f64;
    assert!(
        (0.03..=0.07).contains(&rate),
        "KS flagged {rate} of no-drift trials"
    );
}

#[test]
fn ks_flags_a_clear_shift() {
    let mut rng = StdRng::seed_from_u64(7);
    let r: Vec<f64> = (0..300).map(|_| normal(&mut rng)).collect();
    let c: Vec<f64> = (0..300).map(|_| normal(&mut rng) + 1.0).collect();
    let rep = numeric_drift("ks", &r, &c).expect("ks");
    assert!(rep.result.drifted);
    assert!(rep.result.p_value.unwrap_or(1.0) < 1e-10);
}

#[test]
fn empty_sample_is_an_error() {
    let e = numeric_drift("ks", &[], &[1.0, 2.0]).unwrap_err();
    assert_eq!(
        e,
        DriftError::EmptySample {
            which: "reference",
            dropped: 0
        }
    );
    let e = numeric_drift("psi", &[1.0], &[f64::NAN, f64::INFINITY]).unwrap_err();
    assert_eq!(
        e,
        DriftError::EmptySample {
            which: "current",
            dropped: 2
        }
    );
    let e = categorical_drift("chisquare", &["a"], &["", "nan"]).unwrap_err();
    assert_eq!(
        e,
        DriftError::EmptySample {
            which: "current",
            dropped: 2
        }
    );
}

#[test]
fn nan_and_inf_are_dropped_and_counted() {
    let r = [
        1.0,
        f64::NAN,
        2.0,
        3.0,
        f64::INFINITY,
        4.0,
        f64::NEG_INFINITY,
    ];
    let c = [2.0, 3.0, f64::NAN, 5.0];
    let rep = numeric_drift("ks", &r, &c).expect("ks");
    assert_eq!((rep.n_reference, rep.dropped_reference), (4, 3));
    assert_eq!((rep.n_current, rep.dropped_current), (3, 1));
    let clean = numeric_drift("ks", &[1.0, 2.0, 3.0, 4.0], &[2.0, 3.0, 5.0]).expect("ks");
    assert_eq!(rep.result, clean.result);
}

/// Reference with one distinct value: std = 0, Evidently divides by max(std, 0.001), so the
/// normed Wasserstein is W / 0.001. Here W = mean |cur - 3.5| = 0.125 -> 125.
#[test]
fn constant_reference_wasserstein_uses_floor() {
    let r = vec![3.5; 20];
    let c = vec![3.25, 3.75, 3.5, 3.5];
    let rep = numeric_drift("wasserstein", &r, &c).expect("wasserstein");
    assert!(
        (rep.result.statistic - 125.0).abs() < 1e-9,
        "{}",
        rep.result.statistic
    );
    assert!(rep.result.drifted);
    assert_eq!(rep.result.p_value, None);
    // identical constant windows: distance 0, no drift; KS D = 0, p = 1
    let rep = numeric_drift("wasserstein", &r, &r).expect("wasserstein");
    assert_eq!(rep.result.statistic, 0.0);
    assert!(!rep.result.drifted);
    let ks = numeric_drift("ks", &r, &r).expect("ks");
    assert_eq!((ks.result.statistic, ks.result.p_value), (0.0, Some(1.0)));
}

#[test]
fn unknown_method_lists_valid_names() {
    match numeric_drift("madd", &[1.0, 2.0], &[1.0]) {
        Err(DriftError::UnknownMethod { name, valid }) => {
            assert_eq!(name, "madd");
            for m in METHODS {
                assert!(valid.contains(m), "{valid}");
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn numeric_only_method_on_categories_is_rejected() {
    let e = categorical_drift("ks", &["a", "b"], &["a"]).unwrap_err();
    assert_eq!(
        e,
        DriftError::MethodNotForType {
            method: "ks".into()
        }
    );
}

#[test]
fn categories_seen_in_one_window_only() {
    let r = ["a", "a", "b", "b"];
    let c = ["a", "c", "c", "c"];
    // chisquare: category c absent from reference -> infinite statistic, p = 0
    let rep = categorical_drift("chisquare", &r, &c).expect("chisquare");
    assert!(rep.result.statistic.is_infinite());
    assert_eq!(rep.result.p_value, Some(0.0));
    // TVD = 0.5 * (|0.5-0.25| + |0.5-0| + |0-0.75|) = 0.75
    let rep = categorical_drift("TVD", &r, &c).expect("TVD");
    assert!((rep.result.statistic - 0.75).abs() < 1e-15);
    // PSI with smoothing 0.0001 stays finite
    let rep = categorical_drift("psi", &r, &c).expect("psi");
    assert!(rep.result.statistic.is_finite() && rep.result.drifted);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn ks_is_a_probability_and_symmetric(
        a in prop::collection::vec(-1e6f64..1e6, 1..60),
        b in prop::collection::vec(-1e6f64..1e6, 1..60),
    ) {
        let x = numeric_drift("ks", &a, &b).expect("ks").result;
        let y = numeric_drift("ks", &b, &a).expect("ks").result;
        let p = x.p_value.expect("p");
        prop_assert!((0.0..=1.0).contains(&x.statistic));
        prop_assert!((0.0..=1.0).contains(&p));
        prop_assert!((x.statistic - y.statistic).abs() < 1e-12);
        prop_assert!((p - y.p_value.expect("p")).abs() < 1e-9);
    }

    #[test]
    fn distances_vanish_on_identical_windows(a in prop::collection::vec(-1e3f64..1e3, 2..80)) {
        for m in ["wasserstein", "psi", "kl_div", "jensenshannon", "hellinger", "ed", "TVD"] {
            let r = numeric_drift(m, &a, &a).expect("distance").result;
            prop_assert!(r.statistic.abs() < 1e-7, "{} gave {}", m, r.statistic);
            prop_assert!(!r.drifted);
        }
    }
}

#[test]
fn custom_threshold_keeps_the_methods_rule() {
    let reference: Vec<f64> = (0..200).map(|i| f64::from(i) / 10.0).collect();
    let current: Vec<f64> = (0..200).map(|i| f64::from(i) / 10.0 + 0.8).collect();
    let ks = tidewatch_drift::numeric_drift("ks", &reference, &current)
        .unwrap()
        .result;
    let p = ks.p_value.unwrap();
    assert!(
        ks.clone().with_threshold(p).drifted,
        "ks drifts when p <= threshold"
    );
    assert!(!ks.clone().with_threshold(p / 2.0).drifted);
    let w = tidewatch_drift::numeric_drift("wasserstein", &reference, &current)
        .unwrap()
        .result;
    assert!(
        w.clone().with_threshold(w.statistic).drifted,
        "distance drifts at >= threshold"
    );
    assert!(!w.clone().with_threshold(w.statistic * 1.01).drifted);
    assert_eq!(w.with_threshold(0.5).threshold, 0.5);
}
