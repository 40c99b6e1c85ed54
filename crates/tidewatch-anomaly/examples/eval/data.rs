//! Loaders for the shared evaluation sets (read by path, never copied) and the labelled stress
//! generator of `tidewatch-sample`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::score::NabLayout;

/// One series (or one device: several columns) with its labels.
#[derive(Clone, Debug)]
pub struct Series {
    /// `category/file.csv`, channel id or machine.
    pub name: String,
    /// Leave-one-group-out fold: NAB category, MSL channel letter, SMD machine, stress group.
    pub group: String,
    /// µs since the Unix epoch.
    pub ts: Vec<i64>,
    /// `cols[c][t]`: one column for univariate sets.
    pub cols: Vec<Vec<f64>>,
    /// First index of the scored (test) part.
    pub test_from: usize,
    /// Labelled ranges relative to `test_from`, ends inclusive.
    pub ranges: Vec<(usize, usize)>,
    /// NAB only.
    pub nab: Option<NabLayout>,
}

/// Where `../shared` is: `TIDEWATCH_SHARED`, else beside the repository.
pub fn shared() -> PathBuf {
    std::env::var_os("TIDEWATCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../../../shared"))
}

/// "YYYY-MM-DD HH:MM:SS[.ffffff]" → µs since the epoch (UTC).
pub fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |a: usize, b: usize| s.get(a..b).and_then(|t| t.parse::<i64>().ok());
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + h * 3600 + mi * 60 + se) * 1_000_000)
}

pub fn nab() -> Result<Vec<Series>, String> {
    let root = shared().join("data/nab");
    let text = fs::read_to_string(root.join("labels/combined_windows.json"))
        .map_err(|e| format!("NAB: {e}"))?;
    let labels: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut files: Vec<&String> = labels.keys().collect();
    files.sort();
    let mut out = Vec::new();
    let mut next_id = 0i64;
    for rel in files {
        let text =
            fs::read_to_string(root.join("data").join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        for line in text.lines().skip(1) {
            let mut it = line.splitn(2, ',');
            let (Some(t), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            ts.push(parse_ts(t).ok_or(format!("{rel}: bad time {t}"))?);
            vals.push(v.trim().parse::<f64>().unwrap_or(f64::NAN));
        }
        let mut spans = Vec::new();
        for w in labels[rel].as_array().into_iter().flatten() {
            let a = w.get(0).and_then(|x| x.as_str()).and_then(parse_ts);
            let b = w.get(1).and_then(|x| x.as_str()).and_then(parse_ts);
            let (Some(a), Some(b)) = (a, b) else {
                return Err(format!("{rel}: bad window"));
            };
            let lo = ts
                .iter()
                .position(|&t| t == a)
                .ok_or(format!("{rel}: window start not in data"))?;
            let hi = ts
                .iter()
                .position(|&t| t == b)
                .ok_or(format!("{rel}: window end not in data"))?;
            spans.push((lo, hi));
        }
        let lay = NabLayout::new(ts.len(), &spans, next_id);
        next_id += spans.len() as i64;
        out.push(Series {
            name: rel.clone(),
            group: rel.split('/').next().unwrap_or("").to_string(),
            ts,
            cols: vec![vals],
            test_from: 0,
            ranges: spans,
            nab: Some(lay),
        });
    }
    Ok(out)
}

fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>), String> {
    let mut text = String::new();
    let f = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
    } else {
        std::io::BufReader::new(f)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
    }
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(|c| c.trim().parse::<f64>().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    Ok((header, rows))
}

/// Train split then test split as one series; time = index × `step_secs` from 2020-01-01.
/// `group`: the channel's letter prefix (C, D, F, M, P, S, T).
pub fn msl(step_secs: i64) -> Result<Vec<Series>, String> {
    let root = shared().join("data/msl");
    let (h, idx) = read_index(&root.join("index.csv"))?;
    let col = |n: &str| {
        h.iter()
            .position(|c| c == n)
            .ok_or(format!("index.csv: no {n}"))
    };
    let (ci, si) = (col("chan_id")?, col("anomaly_sequences")?);
    let mut out = Vec::new();
    for row in idx {
        let ch = &row[ci];
        let (_, tr) = read_csv(&root.join(format!("{ch}.train.csv")))?;
        let (_, te) = read_csv(&root.join(format!("{ch}.test.csv")))?;
        let mut vals: Vec<f64> = tr.iter().map(|r| r[1]).collect();
        let test_from = vals.len();
        vals.extend(te.iter().map(|r| r[1]));
        let ranges = row[si]
            .split(';')
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                let (a, b) = s.split_once('-')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect();
        out.push(Series {
            name: ch.clone(),
            group: ch.split('-').next().unwrap_or("").to_string(),
            ts: (0..vals.len() as i64)
                .map(|i| 1_577_836_800_000_000 + i * step_secs * 1_000_000)
                .collect(),
            cols: vec![vals],
            test_from,
            ranges,
            nab: None,
        });
    }
    Ok(out)
}

fn read_index(p: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let text = fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut lines = text.lines();
    let h = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(String::from)
        .collect();
    Ok((
        h,
        lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect(),
    ))
}

/// Server Machine Dataset: train then test as one multivariate series (1-minute steps); ranges
/// are the runs of label 1 in the test split.
pub fn smd() -> Result<Vec<Series>, String> {
    let root = shared().join("data/smd");
    let (h, idx) = read_index(&root.join("index.csv"))?;
    let mi = h
        .iter()
        .position(|c| c == "machine")
        .ok_or("smd index: no machine")?;
    let mut out = Vec::new();
    for row in idx {
        let m = &row[mi];
        let (hd, tr) = read_csv(&root.join(format!("{m}.train.csv.gz")))?;
        let (_, te) = read_csv(&root.join(format!("{m}.test.csv.gz")))?;
        let metrics: Vec<usize> = (0..hd.len()).filter(|&i| hd[i].starts_with('m')).collect();
        let li = hd.iter().position(|c| c == "label");
        let mut cols: Vec<Vec<f64>> = metrics
            .iter()
            .map(|&c| tr.iter().map(|r| r[c]).collect())
            .collect();
        for (k, &c) in metrics.iter().enumerate() {
            cols[k].extend(te.iter().map(|r| r[c]));
        }
        let test_from = tr.len();
        let labels: Vec<bool> = te.iter().map(|r| li.is_some_and(|l| r[l] == 1.0)).collect();
        let mut ranges = Vec::new();
        let mut start = None;
        for (t, &l) in labels.iter().enumerate() {
            match (l, start) {
                (true, None) => start = Some(t),
                (false, Some(s)) => {
                    ranges.push((s, t - 1));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            ranges.push((s, labels.len() - 1));
        }
        let n = test_from + te.len();
        out.push(Series {
            name: m.clone(),
            group: m.clone(),
            ts: (0..n as i64)
                .map(|i| 1_577_836_800_000_000 + i * 60_000_000)
                .collect(),
            cols,
            test_from,
            ranges,
            nab: None,
        });
    }
    Ok(out)
}

/// The labelled stress set of `tidewatch-sample` (24 series x 8 days, one point a minute): a
/// check of generalisation only, never used to choose a setting.
pub fn stress() -> Result<Vec<Series>, String> {
    let cfg = tidewatch_sample::stress::StressConfig::default();
    let set = tidewatch_sample::stress::stress_series(&cfg).map_err(|e| e.to_string())?;
    Ok(set
        .into_iter()
        .map(|s| Series {
            name: s.name.clone(),
            group: s.shape.to_string(),
            ts: s.ts.iter().map(|t| t * 1_000_000).collect(),
            cols: vec![s.values],
            test_from: 0,
            ranges: s.anomalies.iter().map(|a| (a.start, a.end)).collect(),
            nab: None,
        })
        .collect())
}

/// This crate's directory: cargo's `CARGO_MANIFEST_DIR` at run time, else the one it was built in
/// (a target dir shared by several clones keeps binaries built in another, perhaps deleted, clone).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
