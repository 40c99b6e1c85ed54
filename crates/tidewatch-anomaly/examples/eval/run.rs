//! Running `auto` (defaults, or fields of its configuration overridden by a JSON object) over
//! the evaluation sets, and scoring the outputs per group.

use std::collections::BTreeMap;

use tidewatch_anomaly::auto::{Auto, AutoConfig, MultiAuto};
use tidewatch_anomaly::Model;

use crate::data::Series;
use crate::score::{events, nab_score, Events, NabLayout, NabScore, PROFILES};

/// The detector for a configuration: `{}` = the product's defaults.
pub fn model(over: &serde_json::Value) -> Result<Model, String> {
    let empty = over.as_object().is_none_or(|o| o.is_empty());
    if empty {
        return Model::new("auto", &serde_json::json!({})).map_err(|e| e.to_string());
    }
    let mut cfg = serde_json::to_value(AutoConfig::default()).map_err(|e| e.to_string())?;
    if let (Some(c), Some(o)) = (cfg.as_object_mut(), over.as_object()) {
        for (k, v) in o {
            if !c.contains_key(k) {
                return Err(format!("unknown AutoConfig field {k}"));
            }
            c.insert(k.clone(), v.clone());
        }
    }
    let cfg: AutoConfig = serde_json::from_value(cfg).map_err(|e| e.to_string())?;
    Ok(Model::Auto(Box::new(Auto::new(cfg))))
}

/// What one series produced: the score and the flag of every point.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub score: Vec<f64>,
    pub flag: Vec<bool>,
}

/// Score every point of a series (a device: one model per column, the device's score the
/// largest, flagged when any column is).
pub fn run(s: &Series, over: &serde_json::Value) -> Result<Output, String> {
    let n = s.ts.len();
    let mut out = Output {
        score: vec![0.0; n],
        flag: vec![false; n],
    };
    if s.cols.len() > 1 && std::env::var_os("EVAL_DEVICE").is_some() {
        // EVAL_DEVICE: a device is judged as a whole by `MultiAuto` (its own calibration of
        // the most surprised sensor and of the summed excess surprise).
        // The product's device defaults (its own threshold) unless a setting is given.
        let cfg = if over.as_object().is_none_or(|o| o.is_empty()) {
            tidewatch_anomaly::device::device_config(&serde_json::json!({}))
                .map_err(|e| e.to_string())?
        } else {
            match model(over)? {
                Model::Auto(a) => a.config().clone(),
                _ => AutoConfig::default(),
            }
        };
        let mut m = MultiAuto::new(cfg, s.cols.len());
        let mut row = vec![f64::NAN; s.cols.len()];
        for i in 0..n {
            for (c, col) in s.cols.iter().enumerate() {
                row[c] = col.get(i).copied().unwrap_or(f64::NAN);
            }
            let d = m.update(s.ts[i], &row);
            out.score[i] = d.score;
            out.flag[i] = d.is_anomaly;
        }
        return Ok(out);
    }
    for col in &s.cols {
        let mut m = model(over)?;
        for (i, &v) in col.iter().enumerate().take(n) {
            if !v.is_finite() {
                continue;
            }
            let sc = m.update(s.ts[i], v);
            if sc.score > out.score[i] {
                out.score[i] = sc.score;
            }
            out.flag[i] |= sc.is_anomaly;
        }
    }
    if s.cols.len() > 1 && std::env::var_os("EVAL_BONFERRONI").is_some() {
        // EVAL_BONFERRONI (experiment): the OR of N per-sensor detectors, with the largest
        // sensor's evidence e = 5·s/(1 − s) less log10 N (Bonferroni over the sensors), scored
        // back as e/(e + 5), so that one threshold means about one series' false-alarm rate.
        let thr = match model(over)? {
            Model::Auto(a) => a.config().threshold,
            _ => AutoConfig::default().threshold,
        };
        let bonf = (s.cols.len() as f64).log10();
        for (sc, fl) in out.score.iter_mut().zip(out.flag.iter_mut()) {
            let e = if *sc < 1.0 {
                5.0 * *sc / (1.0 - *sc)
            } else {
                f64::INFINITY
            };
            let e = (e - bonf).max(0.0);
            *sc = if e.is_finite() { e / (e + 5.0) } else { 1.0 };
            *fl = *sc >= thr;
        }
    }
    Ok(out)
}

/// NAB scores (one per profile) of the files whose group is in `groups` (all when None).
pub fn nab_of(
    set: &[Series],
    outs: &[Output],
    keep: &dyn Fn(&Series) -> bool,
    fixed: Option<f64>,
) -> Vec<NabScore> {
    let (mut lays, mut scs): (Vec<&NabLayout>, Vec<&[f64]>) = (Vec::new(), Vec::new());
    for (s, o) in set.iter().zip(outs) {
        if let (true, Some(l)) = (keep(s), &s.nab) {
            lays.push(l);
            scs.push(&o.score);
        }
    }
    PROFILES
        .iter()
        .map(|&p| nab_score(&lays, &scs, p, fixed))
        .collect()
}

/// Event counts per group and overall ("all") on the test splits.
pub fn events_of(set: &[Series], outs: &[Output]) -> BTreeMap<String, Events> {
    let mut m: BTreeMap<String, Events> = BTreeMap::new();
    for (s, o) in set.iter().zip(outs) {
        let e = events(&o.flag[s.test_from..], &s.ranges);
        m.entry(s.group.clone()).or_default().add(&e);
        m.entry("all".into()).or_default().add(&e);
    }
    m
}
