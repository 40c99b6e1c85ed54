//! Leave-one-group-out choice of settings. The grid is a JSON object of lists (their cartesian
//! product; `"list": [configurations]` is one factor of whole configurations) or a list of
//! configurations; `threshold` is applied to the stored scores (it changes
//! no score, so the detector runs once per other setting). Every candidate is run once on every
//! set; for each held-out group (a NAB category, an MSL channel letter, an SMD machine) the
//! candidate is chosen on everything else by J = the mean of the three sets' metrics, and the
//! held-out group is scored with it. NAB's own threshold (swept, as NAB does) is chosen on the
//! other categories too when a category is held out. Printed: per fold the choice, its held-out
//! score and the in-sample score of the same setting; the pooled held-out scores (each group
//! scored by the candidate chosen without it) beside the in-sample ones, for the procedure, for
//! the candidate chosen on everything and for the product's defaults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tidewatch_anomaly::auto::AutoConfig;

use crate::data::Series;
use crate::run::{nab_of, Output};
use crate::score::{events, Events, NabScore};
use crate::{run_all, Sets};

/// Detector configurations (the grid without `threshold`) and the thresholds.
fn candidates(grid: &serde_json::Value) -> (Vec<serde_json::Value>, Vec<f64>) {
    let mut thr = vec![AutoConfig::default().threshold];
    if let Some(list) = grid.as_array() {
        return (list.clone(), thr);
    }
    let mut out = vec![serde_json::json!({})];
    if let Some(o) = grid.as_object() {
        for (k, vals) in o {
            if k == "list" {
                // An explicit list of configurations (crossed with the other keys).
                let list = vals.as_array().cloned().unwrap_or_default();
                out = out
                    .iter()
                    .flat_map(|c| {
                        list.iter().map(move |v| {
                            let mut c = c.clone();
                            for (a, b) in v.as_object().into_iter().flatten() {
                                c[a.as_str()] = b.clone();
                            }
                            c
                        })
                    })
                    .collect();
                continue;
            }
            let vals = vals
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![vals.clone()]);
            if k == "threshold" {
                thr = vals.iter().filter_map(serde_json::Value::as_f64).collect();
                continue;
            }
            out = out
                .iter()
                .flat_map(|c| {
                    vals.iter().map(move |v| {
                        let mut c = c.clone();
                        c[k.as_str()] = v.clone();
                        c
                    })
                })
                .collect();
        }
    }
    (out, thr)
}

/// Event metric used to choose: F0.5, minus a penalty when more than 1% of normal points are
/// flagged (the owner's bar).
fn event_objective(e: &Events) -> f64 {
    e.f05() - 10.0 * (e.far() - 0.01).max(0.0)
}

/// NAB results of one detector configuration.
#[derive(Clone, Debug, Default)]
struct NabRes {
    /// Standard score / 100, threshold swept: on all files ([0]) and without group g ([1 + g]).
    metric: Vec<f64>,
    /// Group g's parts at the threshold swept on the other groups, and at the all-file one.
    held: Vec<NabScore>,
    ins: Vec<NabScore>,
}

/// What one detector configuration produced: NAB results, and the events of every series of
/// the event sets at every threshold (`ev[set][series][threshold]`).
#[derive(Clone, Debug, Default)]
struct Res {
    nab: Option<NabRes>,
    ev: Vec<Vec<Vec<Events>>>,
}

fn groups_of(set: &[Series]) -> Vec<String> {
    let mut g: Vec<String> = set.iter().map(|s| s.group.clone()).collect();
    g.sort();
    g.dedup();
    g
}

fn nab_res(set: &[Series], outs: &[Output], groups: &[String]) -> NabRes {
    let all = nab_of(set, outs, &|_| true, None)[0];
    let mut r = NabRes {
        metric: vec![all.score / 100.0],
        ..Default::default()
    };
    for g in groups {
        let others = nab_of(set, outs, &|s| &s.group != g, None)[0];
        r.metric.push(others.score / 100.0);
        r.held
            .push(nab_of(set, outs, &|s| &s.group == g, Some(others.threshold))[0]);
        r.ins
            .push(nab_of(set, outs, &|s| &s.group == g, Some(all.threshold))[0]);
    }
    r
}

fn evaluate(
    sets: &[(&str, &[Series], Vec<String>)],
    cfg: &serde_json::Value,
    thr: &[f64],
) -> Result<Res, String> {
    let mut res = Res::default();
    // Devices (EVAL_DEVICE) are flagged at the product's device threshold: a candidate threshold
    // t is t for series and t less the product's offset between the two defaults for devices.
    let device_shift = if std::env::var_os("EVAL_DEVICE").is_some() {
        tidewatch_anomaly::auto::AutoConfig::default().threshold
            - tidewatch_anomaly::device::DEVICE_THRESHOLD
    } else {
        0.0
    };
    for (name, set, groups) in sets {
        let outs = run_all(set, cfg)?;
        if *name == "nab" {
            res.nab = Some(nab_res(set, &outs, groups));
            res.ev.push(Vec::new());
            continue;
        }
        let per: Vec<Vec<Events>> = set
            .iter()
            .zip(&outs)
            .map(|(s, o)| {
                thr.iter()
                    .map(|&t| {
                        let t = if *name == "smd" { t - device_shift } else { t };
                        let flags: Vec<bool> =
                            o.score[s.test_from..].iter().map(|&x| x >= t).collect();
                        events(&flags, &s.ranges)
                    })
                    .collect()
            })
            .collect();
        res.ev.push(per);
    }
    Ok(res)
}

/// A candidate: (detector configuration, threshold index).
type Cand = (usize, usize);

pub fn select(sets: &Sets, grid: &serde_json::Value) -> Result<(), String> {
    let (cfgs, thr) = candidates(grid);
    let nt = thr.len();
    let all_sets: Vec<(&str, &[Series], Vec<String>)> =
        [("nab", &sets.nab), ("msl", &sets.msl), ("smd", &sets.smd)]
            .into_iter()
            .filter_map(|(n, s)| s.as_ref().map(|s| (n, s.as_slice(), groups_of(s))))
            .collect();
    println!(
        "{} detector configurations x {} thresholds = {} candidates",
        cfgs.len(),
        nt,
        cfgs.len() * nt
    );
    // Run every detector configuration (two workers: the machine is shared).
    let slots: Mutex<Vec<Option<Result<Res, String>>>> = Mutex::new(vec![None; cfgs.len()]);
    let next = AtomicUsize::new(0);
    let workers = std::env::var("EVAL_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize);
    std::thread::scope(|sc| {
        for _ in 0..workers.max(1) {
            sc.spawn(|| loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= cfgs.len() {
                    break;
                }
                let r = evaluate(&all_sets, &cfgs[c], &thr);
                eprintln!("  ran {}/{}", c + 1, cfgs.len());
                if let Ok(mut s) = slots.lock() {
                    s[c] = Some(r);
                }
            });
        }
    });
    let res: Vec<Res> = slots
        .into_inner()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("a worker failed".into())))
        .collect::<Result<_, _>>()?;

    // The metric of set `si` for candidate k without group `skip`.
    let metric = |k: Cand, si: usize, skip: Option<usize>| -> f64 {
        let (name, set, groups) = &all_sets[si];
        if *name == "nab" {
            let m = &res[k.0]
                .nab
                .as_ref()
                .map(|n| n.metric.clone())
                .unwrap_or_default();
            return m
                .get(skip.map_or(0, |g| g + 1))
                .copied()
                .unwrap_or(f64::NAN);
        }
        let mut e = Events::default();
        for (i, s) in set.iter().enumerate() {
            if skip.is_none_or(|g| s.group != groups[g]) {
                e.add(&res[k.0].ev[si][i][k.1]);
            }
        }
        event_objective(&e)
    };
    let objective = |k: Cand, fold: Option<(usize, usize)>| -> f64 {
        let tot: f64 = (0..all_sets.len())
            .map(|si| metric(k, si, fold.filter(|f| f.0 == si).map(|f| f.1)))
            .sum();
        tot / all_sets.len().max(1) as f64
    };
    let cands: Vec<Cand> = (0..cfgs.len())
        .flat_map(|c| (0..nt).map(move |t| (c, t)))
        .collect();
    // Ties go to the earlier candidate (list the current default first).
    let best = |fold: Option<(usize, usize)>| -> Cand {
        let mut b = cands[0];
        let mut bv = f64::NEG_INFINITY;
        for &k in &cands {
            let v = objective(k, fold);
            if v > bv {
                (b, bv) = (k, v);
            }
        }
        b
    };
    let describe = |k: Cand| -> String {
        let mut c = cfgs[k.0].clone();
        if !c.is_object() {
            c = serde_json::json!({});
        }
        c["threshold"] = serde_json::json!(thr[k.1]);
        c.to_string()
    };
    // The product's defaults, if in the grid.
    let full = |k: Cand| -> Option<serde_json::Value> {
        let mut d = serde_json::to_value(AutoConfig::default()).ok()?;
        for (key, v) in cfgs[k.0].as_object()? {
            d[key.as_str()] = v.clone();
        }
        d["threshold"] = serde_json::json!(thr[k.1]);
        Some(d)
    };
    let default_json = serde_json::to_value(AutoConfig::default()).ok();
    let default = cands
        .iter()
        .copied()
        .find(|&k| full(k).is_some() && full(k) == default_json);

    // Candidates by in-sample J.
    let mut order = cands.clone();
    order.sort_by(|&a, &b| objective(b, None).total_cmp(&objective(a, None)));
    let top = std::env::var("EVAL_TOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15usize);
    println!("candidates by in-sample J (top {top}, and the defaults):");
    for (rank, &k) in order.iter().enumerate() {
        if rank < top || Some(k) == default {
            let parts: Vec<String> = all_sets
                .iter()
                .enumerate()
                .map(|(si, (n, ..))| format!("{n} {:.3}", metric(k, si, None)))
                .collect();
            let tag = if Some(k) == default {
                " (defaults)"
            } else {
                ""
            };
            println!(
                "  #{:<3} J={:.4} {} {}{tag}",
                rank + 1,
                objective(k, None),
                parts.join(" "),
                describe(k)
            );
        }
    }
    let chosen = best(None);
    println!("in-sample choice: {}", describe(chosen));
    if let Some(n) = &res[chosen.0].nab {
        // Self-check of the pooling: the categories' parts at the all-file threshold, pooled,
        // must give the all-file swept score.
        let pooled = NabScore::pool(&n.ins);
        let direct = 100.0 * n.metric[0];
        println!("check: NAB pooled over categories {pooled:.4} = swept on all files {direct:.4}");
        if (pooled - direct).abs() > 1e-9 {
            return Err(format!("NAB pooling mismatch: {pooled} vs {direct}"));
        }
    }

    // Per fold: the choice, the held-out group's score with it, and the in-sample J of the
    // same setting (and of the defaults on the same group).
    let group_score = |k: Cand, si: usize, g: usize, held: bool| -> (f64, String) {
        let (name, set, groups) = &all_sets[si];
        if *name == "nab" {
            let n = res[k.0].nab.as_ref();
            let p = n
                .and_then(|n| if held { n.held.get(g) } else { n.ins.get(g) })
                .copied()
                .unwrap_or_default();
            let v = NabScore::pool(&[p]);
            return (
                v,
                if v.is_finite() {
                    format!("standard {v:6.2}")
                } else {
                    format!("raw {:6.2}", p.raw)
                },
            );
        }
        let mut e = Events::default();
        for (i, s) in set.iter().enumerate() {
            if s.group == groups[g] {
                e.add(&res[k.0].ev[si][i][k.1]);
            }
        }
        (e.f05(), format!("F0.5 {:.3} far {:.4}", e.f05(), e.far()))
    };
    let mut picks: Vec<Vec<Cand>> = Vec::new();
    let mut tally: BTreeMap<Cand, usize> = BTreeMap::new();
    println!("folds (held-out group: choice | held-out score | defaults on it | in-sample J of the choice):");
    for (si, (name, _, groups)) in all_sets.iter().enumerate() {
        let mut p = Vec::new();
        for (g, gname) in groups.iter().enumerate() {
            let k = best(Some((si, g)));
            *tally.entry(k).or_default() += 1;
            let (_, h) = group_score(k, si, g, true);
            let d = default.map_or("-".into(), |d| group_score(d, si, g, true).1);
            println!(
                "  {name} {gname:<22} {} | {h} | {d} | J {:.4} (on the other folds {:.4})",
                describe(k),
                objective(k, None),
                objective(k, Some((si, g)))
            );
            p.push(k);
        }
        picks.push(p);
    }
    let mode = tally
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| *k)
        .unwrap_or(chosen);
    println!(
        "chosen most often: {} ({} of {} folds)",
        describe(mode),
        tally.get(&mode).copied().unwrap_or(0),
        picks.iter().map(Vec::len).sum::<usize>()
    );

    // Pooled: each group scored by the candidate `pick(si, g)`; NAB with its threshold from the
    // other categories. Returns the per-set lines and J.
    let pooled = |pick: &dyn Fn(usize, usize) -> Cand| -> (Vec<String>, f64) {
        let mut lines = Vec::new();
        let mut tot = 0.0;
        for (si, (name, set, groups)) in all_sets.iter().enumerate() {
            if *name == "nab" {
                let parts: Vec<NabScore> = (0..groups.len())
                    .filter_map(|g| {
                        res[pick(si, g).0]
                            .nab
                            .as_ref()
                            .and_then(|n| n.held.get(g).copied())
                    })
                    .collect();
                let v = NabScore::pool(&parts);
                tot += v / 100.0;
                lines.push(format!("NAB standard {v:.2}"));
                continue;
            }
            let mut e = Events::default();
            for (i, s) in set.iter().enumerate() {
                let g = groups.iter().position(|x| x == &s.group).unwrap_or(0);
                let k = pick(si, g);
                e.add(&res[k.0].ev[si][i][k.1]);
            }
            tot += event_objective(&e);
            lines.push(format!(
                "{} P {:.3} R {:.3} F0.5 {:.3} far {:.4}",
                name.to_uppercase(),
                e.precision(),
                e.recall(),
                e.f05(),
                e.far()
            ));
        }
        (lines, tot / all_sets.len().max(1) as f64)
    };
    let show = |label: &str, k: Option<Cand>| {
        let Some(k) = k else {
            println!("{label}: not in the grid");
            return;
        };
        let (l, j) = pooled(&|_, _| k);
        println!(
            "{label}: in-sample J {:.4} (NAB threshold swept on all 31 files: NAB {:.2}); with NAB's threshold held out J {:.4}: {}  [{}]",
            objective(k, None),
            100.0 * metric(k, 0, None),
            j,
            l.join("; "),
            describe(k)
        );
    };
    println!("pooled over the groups:");
    let (l, j) = pooled(&|si, g| picks[si][g]);
    println!(
        "held-out (each group scored by the candidate chosen without it): J {j:.4}: {}",
        l.join("; ")
    );
    show("in-sample choice", Some(chosen));
    show("chosen most often", Some(mode));
    show("defaults", default);
    Ok(())
}
