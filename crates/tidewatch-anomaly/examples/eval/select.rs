//! Leave-one-group-out choice of settings: every candidate configuration is run once on every
//! set; for each held-out group (a NAB category, an MSL channel letter, an SMD machine) the
//! configuration is chosen on everything else, and the held-out group is scored with it. The
//! pooled held-out scores (each series scored by the configuration chosen without its group)
//! are printed beside the in-sample ones (the configuration chosen on everything).

use std::collections::BTreeMap;

use crate::data::Series;
use crate::run::{events_of, nab_of, Output};
use crate::score::Events;
use crate::{run_all, Sets};

/// Candidates: a JSON list of configurations, or an object of lists (their cartesian product).
fn candidates(grid: &serde_json::Value) -> Vec<serde_json::Value> {
    if let Some(list) = grid.as_array() {
        return list.clone();
    }
    let mut out = vec![serde_json::json!({})];
    if let Some(o) = grid.as_object() {
        for (k, vals) in o {
            let vals = vals
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![vals.clone()]);
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
    out
}

/// Event metric used to choose: F0.5, minus a penalty when more than 1% of normal points are
/// flagged (the owner's bar).
fn event_objective(e: &Events) -> f64 {
    e.f05() - 10.0 * (e.far() - 0.01).max(0.0)
}

fn pooled_events(set: &[Series], outs: &[&Output]) -> Events {
    let owned: Vec<Output> = outs.iter().map(|o| (*o).clone()).collect();
    events_of(set, &owned).remove("all").unwrap_or_default()
}

struct Runs<'a> {
    set: &'a [Series],
    /// outs[c][series]
    outs: Vec<Vec<Output>>,
    groups: Vec<String>,
    /// Cached metric per (config, skipped group or none).
    cache: std::cell::RefCell<BTreeMap<(usize, Option<String>), f64>>,
    /// events[c][series]
    events: Vec<Vec<Events>>,
}

impl Runs<'_> {
    /// The dataset's metric for config `c` on the series not in group `skip`.
    fn metric(&self, c: usize, skip: Option<&str>, nab: bool) -> f64 {
        let key = (c, skip.map(String::from));
        if let Some(v) = self.cache.borrow().get(&key) {
            return *v;
        }
        let keep = |s: &Series| skip != Some(s.group.as_str());
        let v = if nab {
            nab_of(self.set, &self.outs[c], &keep, None)[0].score / 100.0
        } else {
            let mut e = Events::default();
            for (s, ev) in self.set.iter().zip(&self.events[c]) {
                if keep(s) {
                    e.add(ev);
                }
            }
            event_objective(&e)
        };
        self.cache.borrow_mut().insert(key, v);
        v
    }
}

pub fn select(sets: &Sets, grid: &serde_json::Value) -> Result<(), String> {
    let cands = candidates(grid);
    println!("{} candidate configurations", cands.len());
    let mut runs: Vec<(&str, Runs)> = Vec::new();
    for (name, set) in [("nab", &sets.nab), ("msl", &sets.msl), ("smd", &sets.smd)] {
        let Some(set) = set else { continue };
        let mut outs = Vec::new();
        for c in &cands {
            outs.push(run_all(set, c)?);
        }
        let mut groups: Vec<String> = set.iter().map(|s| s.group.clone()).collect();
        groups.sort();
        groups.dedup();
        let events = outs
            .iter()
            .map(|o: &Vec<Output>| {
                set.iter()
                    .zip(o)
                    .map(|(s, o)| crate::score::events(&o.flag[s.test_from..], &s.ranges))
                    .collect()
            })
            .collect();
        let cache = Default::default();
        runs.push((
            name,
            Runs {
                set,
                outs,
                groups,
                cache,
                events,
            },
        ));
    }
    // J(c, held-out fold) = mean over sets of each set's metric without that fold.
    let objective = |c: usize, fold: Option<(&str, &str)>| -> f64 {
        let mut tot = 0.0;
        for (name, r) in &runs {
            let skip = fold.filter(|f| f.0 == *name).map(|f| f.1);
            tot += r.metric(c, skip, *name == "nab");
        }
        tot / runs.len().max(1) as f64
    };
    let best = |fold: Option<(&str, &str)>| -> usize {
        (0..cands.len())
            .max_by(|&a, &b| objective(a, fold).total_cmp(&objective(b, fold)))
            .unwrap_or(0)
    };
    for (c, cfg) in cands.iter().enumerate() {
        let parts: Vec<String> = runs
            .iter()
            .map(|(n, r)| format!("{n} {:.3}", r.metric(c, None, *n == "nab")))
            .collect();
        println!(
            "  [{c:2}] J={:.4} {} {}",
            objective(c, None),
            parts.join(" "),
            cfg
        );
    }
    let chosen = best(None);
    println!("in-sample choice: [{chosen}] {}", cands[chosen]);
    for (name, r) in &runs {
        let mut pick: BTreeMap<&str, usize> = BTreeMap::new();
        for g in &r.groups {
            let c = best(Some((name, g)));
            pick.insert(g, c);
            println!("  {name} held out {g:<24} chose [{c}]");
        }
        // Pooled held-out outputs: each series from the configuration chosen without its group.
        let held: Vec<&Output> = r
            .set
            .iter()
            .enumerate()
            .map(|(i, s)| &r.outs[pick[s.group.as_str()]][i])
            .collect();
        let ins: Vec<&Output> = r.outs[chosen].iter().collect();
        if *name == "nab" {
            let h: Vec<Output> = held.iter().map(|o| (*o).clone()).collect();
            let hs = nab_of(r.set, &h, &|_| true, None);
            let is = nab_of(r.set, &r.outs[chosen], &|_| true, None);
            println!(
                "NAB standard: in-sample {:.2}, held-out {:.2} (low_FP {:.2}/{:.2}, low_FN {:.2}/{:.2})",
                is[0].score, hs[0].score, is[1].score, hs[1].score, is[2].score, hs[2].score
            );
            for g in &r.groups {
                let a = nab_of(r.set, &r.outs[chosen], &|s| &s.group == g, None)[0].score;
                let b = nab_of(r.set, &h, &|s| &s.group == g, None)[0].score;
                println!("    {g:<24} in-sample {a:7.2} held-out {b:7.2}");
            }
        } else {
            println!(
                "{}: in-sample  {}",
                name.to_uppercase(),
                pooled_events(r.set, &ins).line()
            );
            println!(
                "{}: held-out   {}",
                name.to_uppercase(),
                pooled_events(r.set, &held).line()
            );
        }
    }
    Ok(())
}
