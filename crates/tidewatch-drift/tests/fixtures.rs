//! Every method against every committed oracle fixture (fixtures/*.csv + *.expected.json,
//! produced by drift_oracle.py with scipy 1.17.1 / numpy 2.4.6).
//! Tolerances: statistic relative error <= 1e-9, p-value absolute error <= 1e-6.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tidewatch_drift::{categorical_drift, numeric_drift, raw, DriftError};

const STAT_REL: f64 = 1e-9;
const P_ABS: f64 = 1e-6;

/// The committed fixtures, or `DRIFT_FIXTURES_DIR` (say, oracle cases too large to commit, such
/// as 10^6 vs 10^6 rows made with `drift_oracle.py gen`).
fn fixtures_dir() -> PathBuf {
    std::env::var_os("DRIFT_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("fixtures"))
}

/// CSV `group,value`; reference/current labels as in drift_oracle.py.
fn read_csv(path: &Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (g, v) = line.split_once(',').expect("group,value");
        let (g, v) = (g.trim(), v.trim());
        if i == 0 && g.eq_ignore_ascii_case("group") {
            continue;
        }
        match groups.iter_mut().find(|(k, _)| k == g) {
            Some((_, vals)) => vals.push(v.to_string()),
            None => groups.push((g.to_string(), vec![v.to_string()])),
        }
    }
    assert_eq!(groups.len(), 2, "{path:?}: expected two groups");
    let refl = ["reference", "ref", "r", "0", "baseline"];
    let (a, b) = (groups.remove(0), groups.remove(0));
    if refl.contains(&b.0.to_lowercase().as_str()) {
        (b.1, a.1)
    } else {
        (a.1, b.1)
    }
}

fn to_f64(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// Python's json writes Infinity / NaN; map them to strings first.
fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read json");
    let text = text
        .replace("-Infinity", "\"-inf\"")
        .replace("Infinity", "\"inf\"")
        .replace("NaN", "\"nan\"");
    serde_json::from_str(&text).expect("parse json")
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == "inf" => Some(f64::INFINITY),
        Value::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
        Value::String(s) if s == "nan" => Some(f64::NAN),
        _ => None,
    }
}

#[derive(Default)]
struct Tally {
    max_err: BTreeMap<String, f64>,
    checks: usize,
    failures: Vec<String>,
}

impl Tally {
    fn stat(&mut self, case: &str, what: &str, got: f64, want: f64) {
        self.checks += 1;
        let ok = if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() {
            got == want
        } else {
            let err = (got - want).abs() / want.abs().max(1e-300);
            let e = self
                .max_err
                .entry(format!("{what} stat rel"))
                .or_insert(0.0);
            let err_eff = if (got - want).abs() <= 1e-15 {
                0.0
            } else {
                err
            };
            *e = e.max(err_eff);
            err_eff <= STAT_REL
        };
        if !ok {
            self.failures.push(format!(
                "{case}: {what} statistic got {got:e} want {want:e}"
            ));
        }
    }
    fn p(&mut self, case: &str, what: &str, got: f64, want: f64) {
        self.checks += 1;
        let err = (got - want).abs();
        let e = self.max_err.entry(format!("{what} p abs")).or_insert(0.0);
        *e = e.max(err);
        if !(err <= P_ABS || (got.is_nan() && want.is_nan())) {
            self.failures
                .push(format!("{case}: {what} p-value got {got:e} want {want:e}"));
        }
    }
    fn flag(&mut self, case: &str, what: &str, got: bool, want: bool) {
        self.checks += 1;
        if got != want {
            self.failures
                .push(format!("{case}: {what} drifted got {got} want {want}"));
        }
    }
}

fn cases() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            out.push((
                stem.to_string(),
                fixtures_dir().join(format!("{stem}.csv")),
                p,
            ));
        }
    }
    out.sort();
    let min = if std::env::var_os("DRIFT_FIXTURES_DIR").is_some() {
        1
    } else {
        20
    };
    assert!(
        out.len() >= min,
        "expected the committed fixtures, found {}",
        out.len()
    );
    out
}

/// Evidently-named methods compared on drift_score (+ statistic where the oracle gives it).
const EV_METHODS: &[&str] = &[
    "ks",
    "wasserstein",
    "psi",
    "kl_div",
    "jensenshannon",
    "hellinger",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "t_test",
    "ed",
    "es",
    "chisquare",
    "z",
    "g_test",
    "fisher_exact",
];

fn check_case(t: &mut Tally, case: &str, csv: &Path, json: &Path) {
    let exp = load_json(json);
    let (rr, cr) = read_csv(csv);
    let numeric = exp["type"] == "num";
    let run = |m: &str| {
        if numeric {
            let r: Vec<f64> = rr.iter().map(|s| to_f64(s)).collect();
            let c: Vec<f64> = cr.iter().map(|s| to_f64(s)).collect();
            numeric_drift(m, &r, &c)
        } else {
            categorical_drift(m, &rr, &cr)
        }
    };
    let ev = &exp["evidently"];
    for &m in EV_METHODS {
        let e = &ev[m];
        if e.is_null() {
            // numeric-only method on categorical data
            assert!(!numeric, "{case}: oracle lacks {m}");
            match run(m) {
                Err(DriftError::MethodNotForType { .. }) => {}
                other => t.failures.push(format!(
                    "{case}: {m} expected MethodNotForType, got {other:?}"
                )),
            }
            continue;
        }
        let got = run(m);
        let want_score = e.get("drift_score").and_then(num);
        match (got, want_score) {
            (Ok(rep), Some(ws)) => {
                let r = rep.result;
                t.checks += 1;
                if r.method != m {
                    t.failures
                        .push(format!("{case}: method name {} != {m}", r.method));
                }
                if r.p_value.is_some() {
                    t.p(case, m, r.drift_score(), ws);
                } else {
                    t.stat(case, m, r.drift_score(), ws);
                }
                if let Some(s) = e.get("statistic").and_then(num) {
                    t.stat(case, m, r.statistic, s);
                }
                if let Some(s) = e.get("z").and_then(num) {
                    t.stat(case, m, r.statistic, s);
                }
                if let Some(s) = e.get("odds_ratio").and_then(num) {
                    t.stat(case, m, r.statistic, s);
                }
                if let Some(d) = e.get("drift").and_then(Value::as_bool) {
                    t.flag(case, m, r.drifted, d);
                }
                assert_eq!(
                    rep.n_reference as u64,
                    exp["n_ref"].as_u64().unwrap_or(0),
                    "{case}"
                );
                assert_eq!(
                    rep.n_current as u64,
                    exp["n_cur"].as_u64().unwrap_or(0),
                    "{case}"
                );
            }
            (Err(_), None) => t.checks += 1, // oracle errors / None -> we error too
            (got, _) => t
                .failures
                .push(format!("{case}: {m} got {got:?}, oracle {e}")),
        }
    }
    // TVD statistic (the oracle's drift_score is a permutation p-value; see lib docs).
    if let Some(w) = ev["TVD"].get("tvd").and_then(num) {
        match run("TVD") {
            Ok(rep) => t.stat(case, "TVD", rep.result.statistic, w),
            Err(e) => t.failures.push(format!("{case}: TVD error {e}")),
        }
    }
    // auto selection
    let auto = &exp["evidently_auto"];
    match run("auto") {
        Ok(rep) => {
            t.checks += 1;
            if Some(rep.result.method) != auto["method"].as_str() {
                t.failures.push(format!(
                    "{case}: auto picked {} want {}",
                    rep.result.method, auto["method"]
                ));
            }
            if let Some(d) = auto["drift"].as_bool() {
                t.flag(case, "auto", rep.result.drifted, d);
            }
        }
        Err(e) => t.failures.push(format!("{case}: auto error {e}")),
    }
    // scipy raw numbers
    if numeric {
        let r: Vec<f64> = rr
            .iter()
            .map(|s| to_f64(s))
            .filter(|v| v.is_finite())
            .collect();
        let c: Vec<f64> = cr
            .iter()
            .map(|s| to_f64(s))
            .filter(|v| v.is_finite())
            .collect();
        let sc = &exp["scipy"];
        if let (Some(s), Some(p)) = (
            num(&sc["ks_2samp"]["statistic"]),
            num(&sc["ks_2samp"]["pvalue"]),
        ) {
            let (d, pv) = raw::ks_2samp(&r, &c);
            t.stat(case, "ks", d, s);
            t.p(case, "ks", pv, p);
        }
        if let Some(s) = num(&sc["wasserstein_distance"]["statistic"]) {
            t.stat(
                case,
                "wasserstein_distance",
                raw::wasserstein_distance(&r, &c),
                s,
            );
        }
        if let Some(u) = num(&sc["mannwhitneyu"]["statistic_U1"]) {
            let (u1, p2, pl) = raw::mannwhitneyu(&r, &c);
            t.stat(case, "mannw", u1, u);
            t.p(
                case,
                "mannw two-sided",
                p2,
                num(&sc["mannwhitneyu"]["pvalue_two_sided"]).unwrap_or(f64::NAN),
            );
            t.p(
                case,
                "mannw",
                pl,
                num(&sc["mannwhitneyu"]["pvalue_less"]).unwrap_or(f64::NAN),
            );
        }
        if let Some(s) = num(&sc["ttest_ind"]["statistic"]) {
            let (ts, tp) = raw::ttest_ind(&r, &c);
            t.stat(case, "t_test", ts, s);
            t.p(
                case,
                "t_test",
                tp,
                num(&sc["ttest_ind"]["pvalue"]).unwrap_or(f64::NAN),
            );
        }
        if let Some(s) = num(&sc["cramervonmises_2samp"]["statistic"]) {
            let (ts, tp) = raw::cramervonmises_2samp(&r, &c);
            t.stat(case, "cramervonmises", ts, s);
            t.p(
                case,
                "cramervonmises",
                tp,
                num(&sc["cramervonmises_2samp"]["pvalue"]).unwrap_or(f64::NAN),
            );
        }
        let es = &sc["epps_singleton_2samp"];
        match (num(&es["statistic"]), raw::epps_singleton_2samp(&r, &c)) {
            (Some(s), Some((w, p))) => {
                t.stat(case, "epps_singleton", w, s);
                t.p(
                    case,
                    "epps_singleton",
                    p,
                    num(&es["pvalue"]).unwrap_or(f64::NAN),
                );
            }
            (None, None) if es.get("error").is_some() => t.checks += 1,
            (want, got) => t.failures.push(format!(
                "{case}: epps_singleton got {got:?}, oracle {want:?} {es}"
            )),
        }
        if let Some(s) = num(&sc["anderson_ksamp"]["statistic"]) {
            match raw::anderson_ksamp(&r, &c) {
                Some((a, p)) => {
                    t.stat(case, "anderson", a, s);
                    t.p(
                        case,
                        "anderson",
                        p,
                        num(&sc["anderson_ksamp"]["pvalue"]).unwrap_or(f64::NAN),
                    );
                }
                None => t.failures.push(format!("{case}: anderson returned None")),
            }
        }
    }
}

#[test]
fn every_method_matches_every_fixture() {
    let mut t = Tally::default();
    for (case, csv, json) in cases() {
        check_case(&mut t, &case, &csv, &json);
    }
    for (k, v) in &t.max_err {
        eprintln!("max error {k:28} {v:.3e}");
    }
    eprintln!("{} checks", t.checks);
    assert!(
        t.failures.is_empty(),
        "{} failures:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
}

/// This crate's directory: cargo's `CARGO_MANIFEST_DIR` at run time, else the one it was built in
/// (a target dir shared by several clones keeps binaries built in another, perhaps deleted, clone).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
