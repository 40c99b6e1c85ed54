//! Grouping accuracy on the shared Loghub-2k samples (corrected labels), ONE configuration for
//! every system, labelled as `tidewatch.log_parse` labels (line by line, the cluster id
//! returned), and with the logpai benchmark's two passes (`mine_batch`). Skips (with a
//! message) when ../shared/data/loghub-2k is absent. GA as in loghub_eval.py: a line is
//! correct iff its predicted group equals its truth group. The held-out (leave one system
//! out) numbers come from examples/loghub.rs and benches/logs_accuracy.sh.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use tidewatch_logs::{drain::mine_batch, Miner};

const SYSTEMS: &[&str] = &[
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "BGL",
    "HPC",
    "Apache",
    "OpenSSH",
];

fn data_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var("LOGHUB_DATA").ok().map(PathBuf::from),
        Some(manifest_dir().join("../../../shared/data/loghub-2k")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

fn grouping_accuracy(truth: &[String], pred: &[u64]) -> f64 {
    let mut t: HashMap<&str, HashSet<usize>> = HashMap::new();
    let mut p: HashMap<u64, HashSet<usize>> = HashMap::new();
    for (i, (a, b)) in truth.iter().zip(pred).enumerate() {
        t.entry(a.as_str()).or_default().insert(i);
        p.entry(*b).or_default().insert(i);
    }
    let correct: usize = p
        .values()
        .filter(|members| {
            let keys: HashSet<&str> = members.iter().map(|&i| truth[i].as_str()).collect();
            keys.len() == 1 && keys.iter().all(|k| t.get(k) == Some(*members))
        })
        .map(|m| m.len())
        .sum();
    correct as f64 / truth.len() as f64
}

#[test]
fn loghub_grouping_accuracy() {
    let Some(dir) = data_dir() else {
        println!(
            "SKIP loghub_grouping_accuracy: shared Loghub-2k data not found (set LOGHUB_DATA)"
        );
        return;
    };
    let mut scores = Vec::new();
    for s in SYSTEMS {
        let path = dir
            .join(s)
            .join(format!("{s}_2k.log_structured_corrected.csv"));
        let Ok(mut rdr) = csv::Reader::from_path(&path) else {
            println!("SKIP {s}: {} unreadable", path.display());
            continue;
        };
        let headers = rdr.headers().expect("header row").clone();
        let ci = headers
            .iter()
            .position(|h| h == "Content")
            .expect("Content column");
        let ti = headers
            .iter()
            .position(|h| h == "EventTemplate")
            .expect("EventTemplate column");
        let mut contents = Vec::new();
        let mut truth = Vec::new();
        for rec in rdr.records() {
            let rec = rec.expect("csv record");
            let tpl = rec.get(ti).unwrap_or("").trim().to_string();
            if tpl.is_empty() {
                continue;
            }
            contents.push(rec.get(ci).unwrap_or("").to_string());
            truth.push(tpl);
        }
        let mut miner = Miner::default();
        let online: Vec<u64> = contents.iter().map(|c| miner.add(c).cluster_id).collect();
        let ga = grouping_accuracy(&truth, &online);
        let mut miner = Miner::default();
        let labels = mine_batch(&mut miner, contents.iter().map(|c| c.as_str()));
        let pred: Vec<u64> = labels.iter().map(|l| l.0).collect();
        let ga_batch = grouping_accuracy(&truth, &pred);
        println!("{s:<10} GA {ga:.4} (two passes: {ga_batch:.4})");
        assert!(ga_batch >= 0.9, "{s}: two-pass GA {ga_batch:.4} < 0.90");
        scores.push((s, ga));
    }
    if scores.is_empty() {
        println!("SKIP: no system readable");
        return;
    }
    let avg = scores.iter().map(|s| s.1).sum::<f64>() / scores.len() as f64;
    println!("average GA {avg:.4}");
    assert!(avg >= 0.95, "average GA {avg:.4} < 0.95");
    for (s, ga) in &scores {
        assert!(*ga >= 0.90, "{s}: GA {ga:.4} < 0.90");
    }
}

#[test]
fn ga_metric_sanity() {
    let truth: Vec<String> = ["a", "a", "b", "c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(grouping_accuracy(&truth, &[1, 1, 2, 3]), 1.0);
    assert_eq!(grouping_accuracy(&truth, &[1, 1, 2, 2]), 0.5);
    assert_eq!(grouping_accuracy(&truth, &[1, 2, 3, 4]), 0.5);
}

/// This crate's directory: cargo's `CARGO_MANIFEST_DIR` at run time, else the one it was built in
/// (a target dir shared by several clones keeps binaries built in another, perhaps deleted, clone).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
