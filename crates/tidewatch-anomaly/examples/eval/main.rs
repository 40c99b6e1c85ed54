//! Evaluation harness of `auto` on data nobody tuned it for: NAB (5 categories), NASA MSL
//! telemetry (channel groups by letter), SMD (7 machines, multivariate) and the labelled stress
//! generator of `tidewatch-sample`, with leave-one-group-out selection of any setting.
//!
//! ```text
//! cargo run --release -p tidewatch-anomaly --example eval -- all [CONFIG_JSON]
//! cargo run --release -p tidewatch-anomaly --example eval -- select GRID_JSON
//! # EVAL_DEVICE=1: an SMD machine judged by MultiAuto (in `select`, flagged at a candidate's
//! # threshold less the product's offset between the series and the device defaults, 0.5 and
//! # 0.4); EVAL_BONFERRONI=1: its sensors OR-ed with
//! # the largest evidence less log10 N; EVAL_THREADS (2), EVAL_TOP (15): workers, lines printed
//! cargo run --release -p tidewatch-anomaly --example eval -- write nab|msl|smd OUT [CONFIG_JSON]
//! ```
//!
//! Reads `../shared` by path (or `TIDEWATCH_SHARED`); a set that is absent is skipped, saying so.

mod data;
mod run;
mod score;
mod select;

use data::Series;
use run::{events_of, nab_of, run, Output};

/// MSL time step: the index is the time; one minute per step.
const MSL_STEP: i64 = 60;

pub struct Sets {
    pub nab: Option<Vec<Series>>,
    pub msl: Option<Vec<Series>>,
    pub smd: Option<Vec<Series>>,
    pub gen: Option<Vec<Series>>,
}

fn load(which: &[&str]) -> Sets {
    let get = |name: &str, f: &dyn Fn() -> Result<Vec<Series>, String>| -> Option<Vec<Series>> {
        if !which.contains(&name) {
            return None;
        }
        match f() {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("skip {name}: {e}");
                None
            }
        }
    };
    Sets {
        nab: get("nab", &data::nab),
        msl: get("msl", &|| data::msl(MSL_STEP)),
        smd: get("smd", &data::smd),
        gen: get("gen", &data::stress),
    }
}

pub fn run_all(set: &[Series], cfg: &serde_json::Value) -> Result<Vec<Output>, String> {
    set.iter().map(|s| run(s, cfg)).collect()
}

fn report(sets: &Sets, cfg: &serde_json::Value) -> Result<(), String> {
    if let Some(nab) = &sets.nab {
        let outs = run_all(nab, cfg)?;
        let all = nab_of(nab, &outs, &|_| true, None);
        println!(
            "NAB (31 files): standard {:.2}  low_FP {:.2}  low_FN {:.2}  (threshold {:.4})",
            all[0].score, all[1].score, all[2].score, all[0].threshold
        );
        let mut groups: Vec<&str> = nab.iter().map(|s| s.group.as_str()).collect();
        groups.dedup();
        for g in groups {
            let r = nab_of(nab, &outs, &|s| s.group == g, None);
            let fixed = nab_of(nab, &outs, &|s| s.group == g, Some(all[0].threshold));
            println!(
                "  {g:<24} standard {:7.2} (swept)  {:7.2} (at the 31-file threshold)",
                r[0].score, fixed[0].score
            );
        }
    }
    for (name, set) in [
        ("MSL", &sets.msl),
        ("SMD", &sets.smd),
        ("GEN (stress, not tuned on)", &sets.gen),
    ] {
        if let Some(set) = set {
            let outs = run_all(set, cfg)?;
            println!("{name}:");
            for (g, e) in events_of(set, &outs) {
                println!("  {g:<12} {}", e.line());
            }
        }
    }
    Ok(())
}

/// Write the outputs for the official scorers: NAB results files, or `entity,t,flag` rows of the
/// test splits for `event_score.py`.
fn write(sets: &Sets, which: &str, out: &str, cfg: &serde_json::Value) -> Result<(), String> {
    use std::io::Write as _;
    let set = match which {
        "nab" => &sets.nab,
        "msl" => &sets.msl,
        "gen" => &sets.gen,
        _ => &sets.smd,
    };
    let Some(set) = set else { return Ok(()) };
    let outs = run_all(set, cfg)?;
    if which == "nab" {
        let root = data::shared().join("data/nab/data");
        for (s, o) in set.iter().zip(&outs) {
            let text = std::fs::read_to_string(root.join(&s.name)).map_err(|e| e.to_string())?;
            let mut buf = String::from("timestamp,anomaly_score\n");
            for (line, sc) in text.lines().skip(1).zip(&o.score) {
                let ts = line.split(',').next().unwrap_or("");
                buf.push_str(&format!("{ts},{sc:.6}\n"));
            }
            let dst = std::path::Path::new(out).join(&s.name);
            std::fs::create_dir_all(dst.parent().ok_or("bad path")?).map_err(|e| e.to_string())?;
            std::fs::write(&dst, buf).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| e.to_string())?);
    writeln!(f, "entity,t,flag").map_err(|e| e.to_string())?;
    for (s, o) in set.iter().zip(&outs) {
        for (t, &fl) in o.flag[s.test_from..].iter().enumerate() {
            if fl {
                writeln!(f, "{},{t},1", s.name).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn dump(sets: &Sets, out: &str, cfg: &serde_json::Value) -> Result<(), String> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| e.to_string())?);
    writeln!(f, "entity,i,test,value,label,flag,score").map_err(|e| e.to_string())?;
    for set in [&sets.nab, &sets.msl, &sets.smd, &sets.gen]
        .into_iter()
        .flatten()
    {
        let outs = run_all(set, cfg)?;
        for (s, o) in set.iter().zip(&outs) {
            for i in 0..s.ts.len() {
                let t = i as i64 - s.test_from as i64;
                let lab = t >= 0
                    && s.ranges
                        .iter()
                        .any(|&(a, b)| a as i64 <= t && t <= b as i64);
                writeln!(
                    f,
                    "{},{i},{},{},{},{},{:.4}",
                    s.name,
                    u8::from(t >= 0),
                    s.cols[0][i],
                    u8::from(lab),
                    u8::from(o.flag[i]),
                    o.score[i]
                )
                .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("all");
    let parse = |s: Option<&String>| -> serde_json::Value {
        s.map(|t| serde_json::from_str(t).unwrap_or_else(|e| panic!("config JSON: {e}")))
            .unwrap_or(serde_json::json!({}))
    };
    let res = match cmd {
        "all" => report(&load(&["nab", "msl", "smd", "gen"]), &parse(args.get(1))),
        "nab" | "msl" | "smd" | "gen" => report(&load(&[cmd]), &parse(args.get(1))),
        "select" => {
            let grid = args
                .get(1)
                .map(|p| std::fs::read_to_string(p).unwrap_or_else(|_| p.clone()));
            select::select(&load(&["nab", "msl", "smd"]), &parse(grid.as_ref()))
        }
        "dump" => {
            // Development: every point of a set with its label, flag and score (for plots).
            let which = args.get(1).map(String::as_str).unwrap_or("gen");
            let out = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "target/eval-dump.csv".into());
            dump(&load(&[which]), &out, &parse(args.get(3)))
        }
        "write" => {
            let which = args.get(1).map(String::as_str).unwrap_or("nab");
            let out = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "target/eval-out".into());
            write(&load(&[which]), which, &out, &parse(args.get(3)))
        }
        _ => Err(format!("unknown command {cmd}")),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
