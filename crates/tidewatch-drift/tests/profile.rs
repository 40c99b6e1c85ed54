//! Reference profiles: exact profiles reproduce `numeric_drift` / `categorical_drift`, sketches
//! stay within the bounds documented in `src/profile.rs` on seeded 10^6-value samples.
#![allow(clippy::unwrap_used)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_drift::profile::{NumericValues, MAX_CATEGORIES, OTHER_LABEL, SKETCH_K, TAIL};
use tidewatch_drift::{
    categorical_drift, categorical_drift_against_profile, numeric_drift,
    numeric_drift_against_profile, DriftError, Profile, METHODS, NUMERIC_ONLY,
};

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Equality that treats NaN as equal to NaN (reports of too-small samples hold NaN): the Debug
/// form prints every f64 in shortest round-trip form, so equal strings mean equal bits.
macro_rules! assert_same {
    ($a:expr, $b:expr $(, $($msg:tt)+)?) => {
        assert_eq!(format!("{:?}", $a), format!("{:?}", $b) $(, $($msg)+)?)
    };
}

fn round_trip(p: &Profile) -> Profile {
    let back = Profile::from_bytes(&p.to_bytes()).unwrap();
    assert_same!(&back, p);
    back
}

#[test]
fn exact_numeric_profile_gives_identical_reports() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut r: Vec<f64> = (0..3000).map(|_| normal(&mut rng) * 2.0 + 1.0).collect();
    r[17] = f64::NAN;
    r[99] = f64::INFINITY;
    let c: Vec<f64> = (0..800).map(|_| normal(&mut rng) * 2.2 + 1.3).collect();
    let p = round_trip(&Profile::from_numeric(&r));
    assert!(p.is_exact());
    for m in METHODS.iter().copied().chain(["auto"]) {
        let want = numeric_drift(m, &r, &c);
        let got = numeric_drift_against_profile(&p, &c, m, None);
        assert_same!(got, want, "{m}");
        let want = want.map(|mut w| {
            w.result = w.result.with_threshold(0.3);
            w
        });
        assert_same!(
            numeric_drift_against_profile(&p, &c, m, Some(0.3)),
            want,
            "{m}"
        );
    }
    // small windows, ties, n = 1..20, as the fixtures
    for n in 1..=20 {
        let r: Vec<f64> = (0..n).map(|i| f64::from(i % 4)).collect();
        let c: Vec<f64> = (0..n + 3).map(|i| f64::from(i % 5) * 0.5).collect();
        let p = Profile::from_numeric(&r);
        for m in METHODS.iter().copied().chain(["auto"]) {
            assert_same!(
                numeric_drift_against_profile(&p, &c, m, None),
                numeric_drift(m, &r, &c),
                "n={n} {m}"
            );
        }
    }
}

#[test]
fn counts_profile_is_exact_beyond_the_exact_size() {
    let mut rng = StdRng::seed_from_u64(2);
    // 200,000 integers with ~60 distinct values: kept as a (value, count) table
    let r: Vec<f64> = (0..200_000)
        .map(|_| (normal(&mut rng) * 8.0).round())
        .collect();
    let c: Vec<f64> = (0..5000)
        .map(|_| (normal(&mut rng) * 8.0 + 1.0).round())
        .collect();
    let p = round_trip(&Profile::from_numeric(&r));
    let Profile::Numeric(np) = &p else { panic!() };
    assert!(matches!(np.values, NumericValues::Counts(_)));
    assert!(p.is_exact());
    for m in [
        "ks",
        "wasserstein",
        "psi",
        "kl_div",
        "jensenshannon",
        "t_test",
        "ed",
        "chisquare",
        "cramer_von_mises",
        "auto",
    ] {
        let want = numeric_drift(m, &r, &c).unwrap().result;
        let got = numeric_drift_against_profile(&p, &c, m, None)
            .unwrap()
            .result;
        assert_eq!(got.method, want.method);
        assert_eq!(got.drifted, want.drifted, "{m}");
        // same values, other summation order: within the fixture tolerance
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-300) || a == b;
        assert!(
            close(got.statistic, want.statistic),
            "{m}: {got:?} {want:?}"
        );
        assert!(
            close(got.drift_score(), want.drift_score()),
            "{m}: {got:?} {want:?}"
        );
    }
}

struct Measured {
    ks_stat: f64,
    ks_p: f64,
    w_normed: f64,
    psi: f64,
    kl: f64,
    js: f64,
}

/// Sketch vs exact on a 10^6-value reference; asserts the documented bounds.
fn sketch_case(name: &str, r: &[f64], c: &[f64]) -> Measured {
    let p = round_trip(&Profile::from_numeric(r));
    let Profile::Numeric(np) = &p else { panic!() };
    let NumericValues::Sketch(sk) = &np.values else {
        panic!("{name}: expected a sketch")
    };
    assert!(sk.knots.len() <= SKETCH_K + 2 * TAIL);
    assert!(!p.is_exact());
    let run = |m: &str| {
        let e = numeric_drift(m, r, c).unwrap();
        let s = numeric_drift_against_profile(&p, c, m, None).unwrap();
        assert_eq!(
            (s.n_reference, s.n_current, s.result.method),
            (e.n_reference, e.n_current, e.result.method)
        );
        (s.result, e.result)
    };
    let k = SKETCH_K as f64;
    let (s, e) = run("ks");
    let ks_stat = (s.statistic - e.statistic).abs();
    let ks_p = (s.drift_score() - e.drift_score()).abs();
    assert!(ks_stat <= 1.0 / k, "{name}: ks D error {ks_stat}");
    // no a-priori bound on the p-value: measured, see src/profile.rs
    assert!(ks_p <= 5e-3, "{name}: ks p error {ks_p}");
    let (s, e) = run("wasserstein");
    let w_normed = (s.statistic - e.statistic).abs();
    let bound = np.wasserstein_error_bound() / np.std.max(0.001);
    assert!(
        w_normed <= bound * (1.0 + 1e-9) + 1e-12,
        "{name}: W {w_normed} > {bound}"
    );
    assert!(bound <= (np.max - np.min) / k / np.std.max(0.001));
    let (s, e) = run("psi");
    let psi = (s.statistic - e.statistic).abs();
    assert!(psi <= 1e-4, "{name}: psi error {psi}");
    let (s, e) = run("kl_div");
    let kl = (s.statistic - e.statistic).abs();
    assert!(kl <= 1e-4, "{name}: kl error {kl}");
    let (s, e) = run("jensenshannon");
    let js = (s.statistic - e.statistic).abs();
    assert!(js <= 1e-4, "{name}: js error {js}");
    let (s, e) = run("auto");
    assert_eq!(s.method, "wasserstein");
    assert_eq!(s.method, e.method);
    eprintln!(
        "{name}: |dD| {ks_stat:.2e} |dp| {ks_p:.2e} |dW/std| {w_normed:.2e} (bound {bound:.2e}) \
         |dPSI| {psi:.2e} |dKL| {kl:.2e} |dJS| {js:.2e}"
    );
    Measured {
        ks_stat,
        ks_p,
        w_normed,
        psi,
        kl,
        js,
    }
}

#[test]
fn sketch_errors_stay_within_documented_bounds_on_a_million_values() {
    let mut rng = StdRng::seed_from_u64(20_261_123);
    let n = 1_000_000;
    let normal_ref: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    let shifted: Vec<f64> = (0..100_000).map(|_| normal(&mut rng) + 0.02).collect();
    let same: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
    let small: Vec<f64> = (0..500).map(|_| normal(&mut rng) * 1.3).collect();
    let lognormal_ref: Vec<f64> = (0..n).map(|_| (normal(&mut rng) * 1.5).exp()).collect();
    let lognormal_cur: Vec<f64> = (0..50_000)
        .map(|_| (normal(&mut rng) * 1.6 + 0.05).exp())
        .collect();
    // rounded to 2 decimals: many ties but > SKETCH_K distinct values
    let tied_ref: Vec<f64> = normal_ref
        .iter()
        .map(|v| (v * 3000.0).round() / 100.0)
        .collect();
    let tied_cur: Vec<f64> = shifted
        .iter()
        .map(|v| (v * 3000.0).round() / 100.0)
        .collect();
    let ms = [
        sketch_case("normal vs shifted 1e5", &normal_ref, &shifted),
        sketch_case("normal vs same 2e4", &normal_ref, &same),
        sketch_case("normal vs wider 500", &normal_ref, &small),
        sketch_case("lognormal skewed", &lognormal_ref, &lognormal_cur),
        sketch_case("tied (2 decimals)", &tied_ref, &tied_cur),
    ];
    let max = |f: fn(&Measured) -> f64| ms.iter().map(f).fold(0.0, f64::max);
    eprintln!(
        "max: |dD| {:.2e} |dp| {:.2e} |dW/std| {:.2e} |dPSI| {:.2e} |dKL| {:.2e} |dJS| {:.2e}",
        max(|m| m.ks_stat),
        max(|m| m.ks_p),
        max(|m| m.w_normed),
        max(|m| m.psi),
        max(|m| m.kl),
        max(|m| m.js)
    );
}

#[test]
fn sketch_rejects_methods_that_need_exact_values() {
    let r: Vec<f64> = (0..150_000).map(|i| f64::from(i).sqrt()).collect();
    let p = Profile::from_numeric(&r);
    assert!(!p.is_exact());
    for m in ["anderson", "mannw", "cramer_von_mises", "es", "chisquare"] {
        match numeric_drift_against_profile(&p, &[1.0, 2.0, 3.0], m, None) {
            Err(DriftError::NotApplicable { method, .. }) => assert_eq!(method, m),
            other => panic!("{m}: {other:?}"),
        }
    }
    assert!(matches!(
        numeric_drift_against_profile(&p, &[1.0], "nope", None),
        Err(DriftError::UnknownMethod { .. })
    ));
    assert!(matches!(
        numeric_drift_against_profile(&p, &[f64::NAN], "ks", None),
        Err(DriftError::EmptySample {
            which: "current",
            dropped: 1
        })
    ));
    let cat = Profile::from_categorical(&["a"]);
    assert!(matches!(
        numeric_drift_against_profile(&cat, &[1.0], "ks", None),
        Err(DriftError::NotApplicable { .. })
    ));
    assert!(matches!(
        categorical_drift_against_profile(&p, &["a"], "chisquare", None),
        Err(DriftError::NotApplicable { .. })
    ));
}

#[test]
fn exact_categorical_profile_gives_identical_reports() {
    let labels = ["eu", "us", "apac", "latam", "", "nan"];
    let mut rng = StdRng::seed_from_u64(3);
    let r: Vec<&str> = (0..1500).map(|_| labels[rng.gen_range(0..6)]).collect();
    let c: Vec<&str> = (0..900)
        .map(|_| labels[rng.gen_range(0..5)])
        .chain(["mars"])
        .collect();
    let p = round_trip(&Profile::from_categorical(&r));
    assert!(p.is_exact());
    for m in METHODS.iter().copied().chain(["auto"]) {
        assert_same!(
            categorical_drift_against_profile(&p, &c, m, None),
            categorical_drift(m, &r, &c),
            "{m}"
        );
    }
    let bin_r = ["x", "y", "y", "x"];
    let bin_c = ["y", "y", "y", "x"];
    let p = Profile::from_categorical(&bin_r);
    for m in ["z", "fisher_exact", "g_test", "auto"] {
        assert_same!(
            categorical_drift_against_profile(&p, &bin_c, m, Some(0.5)),
            categorical_drift(m, &bin_r, &bin_c).map(|mut w| {
                w.result = w.result.with_threshold(0.5);
                w
            })
        );
    }
    assert!(NUMERIC_ONLY.iter().all(|m| matches!(
        categorical_drift_against_profile(&p, &bin_c, m, None),
        Err(DriftError::MethodNotForType { .. })
    )));
}

#[test]
fn categories_beyond_the_limit_share_an_other_bucket() {
    let extra = 50;
    let mut r: Vec<String> = Vec::new();
    for i in 0..MAX_CATEGORIES + extra {
        // the first MAX_CATEGORIES labels twice, the extra ones once
        let times = if i < MAX_CATEGORIES { 2 } else { 1 };
        for _ in 0..times {
            r.push(format!("c{i:06}"));
        }
    }
    let p = round_trip(&Profile::from_categorical(&r));
    let Profile::Categorical(cp) = &p else {
        panic!()
    };
    assert!(!p.is_exact());
    assert_eq!(cp.categories.len(), MAX_CATEGORIES);
    assert_eq!(
        (cp.other_count, cp.other_categories),
        (extra as u64, extra as u64)
    );
    assert!(cp.categories.iter().all(|(_, c)| *c == 2));
    // current: same distribution, plus labels never seen -> pooled into the other bucket
    let c: Vec<String> = r.iter().cloned().chain(["new".to_string()]).collect();
    let got = categorical_drift_against_profile(&p, &c, "jensenshannon", None).unwrap();
    let pooled = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| {
                if cp.categories.binary_search_by(|(l, _)| l.cmp(s)).is_ok() {
                    s.clone()
                } else {
                    OTHER_LABEL.to_string()
                }
            })
            .collect()
    };
    let want = categorical_drift("jensenshannon", &pooled(&r), &pooled(&c)).unwrap();
    assert_same!(got.result, want.result);
    assert!(got.result.statistic < 1e-3 && !got.result.drifted);
    assert_eq!(got.n_reference, r.len());
}

#[test]
fn profile_bytes_are_versioned_and_checked() {
    let profiles = [
        Profile::from_numeric(&[1.0, 2.5, f64::NAN]),
        Profile::from_numeric(&(0..120_000).map(f64::from).collect::<Vec<_>>()),
        Profile::from_numeric(&(0..120_000).map(|i| f64::from(i % 7)).collect::<Vec<_>>()),
        Profile::from_categorical(&["a", "b", "b", "ü"]),
        Profile::from_numeric(&[]),
    ];
    for p in &profiles {
        let b = p.to_bytes();
        assert_eq!(&b[..4], b"TWPF");
        assert_eq!(b[4], tidewatch_drift::profile::PROFILE_VERSION);
        assert_same!(&Profile::from_bytes(&b).unwrap(), p);
        let step = (b.len() / 200).max(1);
        for cut in (0..b.len()).step_by(step) {
            assert!(Profile::from_bytes(&b[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(Profile::from_bytes(&longer).is_err());
        let mut other_version = b.clone();
        other_version[4] = 99;
        let e = Profile::from_bytes(&other_version).unwrap_err();
        assert!(e.contains("version 99"), "{e}");
    }
    // a huge length from the wire is an error, not an allocation
    let mut huge = b"TWPF".to_vec();
    huge.extend_from_slice(&[1, 2]);
    huge.extend_from_slice(&[0; 32]);
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(Profile::from_bytes(&huge).is_err());
    // empty reference profile: EmptySample, with its dropped count
    let p = Profile::from_numeric(&[f64::NAN, f64::NAN]);
    assert_eq!(
        numeric_drift_against_profile(&p, &[1.0], "ks", None),
        Err(DriftError::EmptySample {
            which: "reference",
            dropped: 2
        })
    );
}
