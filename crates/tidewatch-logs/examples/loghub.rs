//! Template-mining accuracy on the Loghub-2k samples: in sample, leave one system out (LOSO)
//! and on stress variants, with predictions written for `../shared/tools/loghub_eval.py`.
//!
//! `cargo run --release -p tidewatch-logs --example loghub -- [--mode sql|batch] [--no-loso]
//!  [--no-stress] [--stress-kinds] [--config JSON] [--explain SET] DATA_DIR OUT_DIR [System...]`
//!
//! Input: DATA_DIR/<System>/<System>_2k.log_structured_corrected.csv: the `Content` column
//! goes to the miner, `EventTemplate` is the truth (lines without one are left out, as the
//! scorer does).
//!
//! `--mode sql` (default) labels every line as `tidewatch.log_parse(content, miner)` does on
//! a new miner, line by line in LineId order: the group is the template id returned, the
//! template the one returned then. `--mode batch` adds every line first and labels each
//! with the final template of its cluster (the logpai benchmark's two passes).
//!
//! Written under OUT_DIR:
//! * `insample/<System>.csv`: the default configuration (or `--config`, a JSON object of
//!   [`Config`] fields over the default) on every system;
//! * `loso/<System>.csv`: each system labelled with the configuration selected on the OTHER
//!   systems: every setting of [`space`] (thresholds, weights, rules, mask families) by
//!   coordinate ascent from the simplest values; `loso.tsv` says which, with the held-out
//!   scores computed here (the bench script checks them against the scorer). Two selection
//!   objectives are reported: the average GA of the training systems (`plain`), and the
//!   average over the training systems of (GA + the mean GA of their three stress variants)
//!   / 2 (`robust`, the one written to `loso/`): a configuration that only wins on the
//!   shapes of the training logs loses there. The same selection on all systems is printed
//!   last: it is what the default should be;
//! * `stress/<variant>/data/<System>/..._structured_corrected.csv` and
//!   `stress/<variant>/pred/<System>.csv`: the stress variants (see [`Variant`]), labelled by
//!   the default configuration.
//!
//! GA and PA here follow loghub_eval.py (truth key EventTemplate; a line is grouped
//! correctly iff its predicted group holds exactly the lines of its truth group).
//! `--explain SET` (`insample` or a variant name) prints the truth groups not recovered.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tidewatch_logs::{drain::mine_batch, Config, Miner};

const SYSTEMS: &[&str] = &[
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "BGL",
    "HPC",
    "Thunderbird",
    "Windows",
    "Linux",
    "Android",
    "HealthApp",
    "Apache",
    "Proxifier",
    "OpenSSH",
    "OpenStack",
    "Mac",
];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One system's labelled lines.
struct System {
    name: String,
    line_ids: Vec<String>,
    contents: Vec<String>,
    truth: Vec<String>,
}

fn read_system(data: &Path, s: &str) -> Res<Option<System>> {
    let path = data
        .join(s)
        .join(format!("{s}_2k.log_structured_corrected.csv"));
    if !path.exists() {
        return Ok(None);
    }
    let mut rdr = csv::Reader::from_path(&path)?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(format!("{}: no {name} column", path.display()))
    };
    let (li, ci, ti) = (col("LineId")?, col("Content")?, col("EventTemplate")?);
    let mut sys = System {
        name: s.to_string(),
        line_ids: Vec::new(),
        contents: Vec::new(),
        truth: Vec::new(),
    };
    for rec in rdr.records() {
        let rec = rec?;
        let tpl = rec.get(ti).unwrap_or("").trim();
        if tpl.is_empty() {
            continue;
        }
        sys.line_ids.push(rec.get(li).unwrap_or("").to_string());
        sys.contents.push(rec.get(ci).unwrap_or("").to_string());
        sys.truth.push(tpl.to_string());
    }
    Ok(Some(sys))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Sql,
    Batch,
}

/// (group, template) per line.
fn label(config: &Config, lines: &[String], mode: Mode) -> Vec<(u64, String)> {
    let mut miner = Miner::new(config.clone());
    match mode {
        Mode::Sql => lines
            .iter()
            .map(|l| {
                let m = miner.add(l);
                (m.cluster_id, m.template)
            })
            .collect(),
        Mode::Batch => mine_batch(&mut miner, lines.iter().map(String::as_str)),
    }
}

/// Grouping accuracy (loghub_eval.py's GA).
fn grouping_accuracy(truth: &[String], pred: &[u64]) -> f64 {
    let mut t: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut p: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (a, b)) in truth.iter().zip(pred).enumerate() {
        t.entry(a.as_str()).or_default().push(i);
        p.entry(*b).or_default().push(i);
    }
    let correct: usize = p
        .values()
        .filter(|members| {
            let first = truth[members[0]].as_str();
            members.iter().all(|&i| truth[i] == first) && t.get(first) == Some(*members)
        })
        .map(|m| m.len())
        .sum();
    correct as f64 / truth.len().max(1) as f64
}

/// Parsing accuracy: the template string equals the truth (both trimmed).
fn parsing_accuracy(truth: &[String], pred: &[(u64, String)]) -> f64 {
    let ok = truth
        .iter()
        .zip(pred)
        .filter(|(t, (_, p))| t.trim() == p.trim())
        .count();
    ok as f64 / truth.len().max(1) as f64
}

/// (GA, PA, number of groups).
fn score_labels(sys: &System, labels: &[(u64, String)]) -> (f64, f64, usize) {
    let groups: Vec<u64> = labels.iter().map(|l| l.0).collect();
    let n = groups.iter().collect::<HashSet<_>>().len();
    (
        grouping_accuracy(&sys.truth, &groups),
        parsing_accuracy(&sys.truth, labels),
        n,
    )
}

/// Print the truth groups that are not recovered, largest first, with the predicted groups
/// they are spread over or share.
fn explain(sys: &System, labels: &[(u64, String)]) {
    let truth = &sys.truth;
    let mut by_truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_pred: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (t, (g, _))) in truth.iter().zip(labels).enumerate() {
        by_truth.entry(t.as_str()).or_default().push(i);
        by_pred.entry(*g).or_default().push(i);
    }
    let mut wrong: Vec<(&str, &Vec<usize>)> = by_truth
        .iter()
        .filter(|(_, m)| by_pred.get(&labels[m[0]].0) != Some(*m))
        .map(|(t, m)| (*t, m))
        .collect();
    wrong.sort_by_key(|(t, m)| (std::cmp::Reverse(m.len()), *t));
    println!(
        "-- {}: {} truth groups not recovered",
        sys.name,
        wrong.len()
    );
    for (t, m) in wrong.iter().take(12) {
        println!("  TRUTH {} lines: {t}", m.len());
        let mut preds: Vec<u64> = m.iter().map(|&i| labels[i].0).collect();
        preds.sort_unstable();
        preds.dedup();
        for g in preds.iter().take(4) {
            let members = &by_pred[g];
            let inside: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| truth[i] == *t)
                .collect();
            let last = members.last().copied().unwrap_or(0);
            println!(
                "    pred {g}: {}/{} lines, template {:?}",
                inside.len(),
                members.len(),
                labels[last].1
            );
            println!("      e.g. {:?}", sys.contents[inside[0]]);
            if let Some(&o) = members.iter().find(|&&i| truth[i] != *t) {
                println!("      also {:?} ({})", sys.contents[o], truth[o]);
            }
        }
    }
}

fn write_pred(path: &Path, sys: &System, labels: &[(u64, String)]) -> Res<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["LineId", "EventId", "EventTemplate"])?;
    for (line, (gid, tpl)) in sys.line_ids.iter().zip(labels) {
        w.write_record([line.as_str(), &format!("E{gid}"), tpl.as_str()])?;
    }
    w.flush()?;
    Ok(())
}

/// The settings LOSO chooses, each with its candidate values from the simplest (fewest
/// special rules) on: a tie (e.g. a rule that changes nothing on the training systems) goes to
/// the simpler value.
fn space() -> Vec<(&'static str, Vec<serde_json::Value>)> {
    use serde_json::json;
    vec![
        ("depth", vec![json!(2), json!(3), json!(4)]),
        (
            "sim_threshold",
            vec![json!(0.3), json!(0.4), json!(0.5), json!(0.6), json!(0.7)],
        ),
        (
            "disagreement_prior",
            vec![json!(0.0), json!(0.5), json!(1.0), json!(2.0)],
        ),
        (
            "wildcard_word_weight",
            vec![json!(0.0), json!(0.5), json!(1.0)],
        ),
        ("compound_weight", vec![json!(1.0), json!(0.5), json!(0.25)]),
        ("split_keywords", vec![json!(false), json!(true)]),
        (
            "max_word_changes",
            vec![json!(usize::MAX), json!(3), json!(2), json!(1)],
        ),
        (
            "lead_positions",
            vec![json!(0), json!(1), json!(2), json!(3)],
        ),
        (
            "support_weight",
            vec![json!(0.0), json!(0.25), json!(0.5), json!(1.0)],
        ),
        ("max_enum_values", vec![json!(0), json!(4)]),
        ("mask_key_values", vec![json!(false), json!(true)]),
        ("mask_quoted", vec![json!(false), json!(true)]),
    ]
}

/// The configuration at `point` (one value index per setting of [`space`]).
fn config_at(space: &[(&str, Vec<serde_json::Value>)], point: &[usize]) -> Res<Config> {
    let mut v = serde_json::to_value(Config::default())?;
    if let Some(o) = v.as_object_mut() {
        for ((name, vals), &k) in space.iter().zip(point) {
            o.insert(name.to_string(), vals[k].clone());
        }
    }
    Ok(serde_json::from_value(v)?)
}

/// The settings of `c` that differ from the default, as `name=value`.
fn describe(c: &Config) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (
        serde_json::to_value(c),
        serde_json::to_value(Config::default()),
    ) else {
        return String::new();
    };
    let d: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            if v.as_u64() == Some(usize::MAX as u64) {
                format!("{k}=any")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    if d.is_empty() {
        "the default".to_string()
    } else {
        d.join(" ")
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): deterministic draws for the stress variants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A pronounceable lower-case word of 2-4 syllables: a variable that looks like a word.
fn word(r: &mut Rng) -> String {
    const C: &[&str] = &[
        "b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "st",
    ];
    const V: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
    let n = 2 + r.below(3);
    (0..n)
        .map(|_| format!("{}{}", r.pick(C), r.pick(V)))
        .collect()
}

fn hex(r: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(r.below(16) as u32, 16).unwrap_or('0'))
        .collect()
}

/// Kinds of re-drawn variable values.
const KINDS: usize = 12;

/// A value of kind `k` (one token, no white space); `key` is the slot's fixed key for
/// `key=value` values.
fn value(r: &mut Rng, k: usize, key: &str) -> String {
    match k {
        0 => word(r),
        1 => format!("{}", r.below(100_000)),
        2 => {
            let n = 6 + r.below(10) as usize;
            hex(r, n)
        }
        3 => format!(
            "{}-{}-{}-{}-{}",
            hex(r, 8),
            hex(r, 4),
            hex(r, 4),
            hex(r, 4),
            hex(r, 12)
        ),
        4 => format!(
            "{}-{}.{}.example.net:{}",
            word(r),
            r.below(40),
            word(r),
            1024 + r.below(60_000)
        ),
        5 => format!(
            "https://{}.{}.org/{}/{}?id={}",
            word(r),
            word(r),
            word(r),
            word(r),
            r.below(1000)
        ),
        6 => format!(
            "/{}/{}/{}.{}",
            word(r),
            word(r),
            word(r),
            r.pick(&["log", "dat", "so"])
        ),
        7 => format!("{key}={}", word(r)),
        8 => format!(
            "{}{}",
            r.below(5000),
            r.pick(&["ms", "s", "KB", "MB", "GiB", "us", "%", "x", "k"])
        ),
        9 => format!("{}{}", word(r), r.below(1000)),
        10 => format!("{}_{}", word(r), r.below(100_000)),
        _ => format!("{}.{}", word(r), word(r)),
    }
}

/// Stress variants of the shared systems, labelled by their truth templates: lines the
/// masks and rules were not written for.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// Every variable of a truth template re-drawn from one kind per template slot (chosen
    /// once per slot), a new value per line: numbers become hex ids, host:port, URLs, paths,
    /// key=value, numbers glued to units or letters, snake_case ids, dotted names, words.
    Redrawn,
    /// Every variable re-drawn as a pronounceable word: variables that look like constants,
    /// which only their many distinct values tell apart.
    Words,
    /// ` - ` and a variable name (`<name>.exe`, `<name>-<n>`, a word, `<name>.<name>`) before
    /// every line: the first token is a variable.
    Prefix,
    /// Sibling events: for templates with three or more constant words and ten or more
    /// lines, some of their later lines (one in six) become a rarer event that differs in 1,
    /// 2 or 3 of those words (drawn per template): templates that differ in a few tokens.
    Siblings,
    /// Every variable re-drawn from one kind (diagnostics, `--stress-kinds`).
    Kind(usize),
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Redrawn => "redrawn".into(),
            Variant::Words => "words".into(),
            Variant::Prefix => "prefix".into(),
            Variant::Siblings => "siblings".into(),
            Variant::Kind(k) => format!("kind{k}"),
        }
    }
}

const VARIANTS: [Variant; 4] = [
    Variant::Redrawn,
    Variant::Words,
    Variant::Prefix,
    Variant::Siblings,
];

/// A regular expression matching the lines of a truth template, one group per `<*>`.
fn template_regex(tpl: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    for (i, piece) in tpl.split("<*>").enumerate() {
        if i > 0 {
            re.push_str("(.*?)");
        }
        // white space in the template matches any run of it in the line
        let parts: Vec<String> = piece.split(' ').map(regex::escape).collect();
        re.push_str(&parts.join(r"\s+"));
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// The stress variant `v` of a system. Lines that do not follow their truth template are
/// kept as they are.
fn stress(sys: &System, v: Variant, seed: u64) -> System {
    let mut r = Rng(seed);
    let mut regexes: HashMap<&str, Option<regex::Regex>> = HashMap::new();
    let mut slots: HashMap<(&str, usize), (usize, String)> = HashMap::new();
    let programs: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("{}.exe", word(&mut r)),
            1 => format!("{}-{}", word(&mut r), r.below(9)),
            2 => word(&mut r),
            _ => format!("{}.{}", word(&mut r), word(&mut r)),
        })
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &sys.truth {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let mut siblings: HashMap<String, Option<Vec<Change>>> = HashMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = System {
        name: sys.name.clone(),
        line_ids: sys.line_ids.clone(),
        contents: Vec::with_capacity(sys.contents.len()),
        truth: Vec::with_capacity(sys.truth.len()),
    };
    for (content, tpl) in sys.contents.iter().zip(&sys.truth) {
        if v == Variant::Siblings {
            let (line, tpl) = sibling(content, tpl, &mut siblings, &mut seen, &mut r, &counts)
                .unwrap_or_else(|| (content.clone(), tpl.clone()));
            out.contents.push(line);
            out.truth.push(tpl);
            continue;
        }
        if v == Variant::Prefix {
            let p = &programs[r.below(programs.len() as u64) as usize];
            out.contents.push(format!("{p} - {content}"));
            out.truth.push(format!("<*> - {tpl}"));
            continue;
        }
        let re = regexes
            .entry(tpl.as_str())
            .or_insert_with(|| template_regex(tpl));
        let Some(caps) = re.as_ref().and_then(|re| re.captures(content)) else {
            out.contents.push(content.clone());
            out.truth.push(tpl.clone());
            continue;
        };
        let mut line = String::new();
        let mut last = 0;
        for (slot, m) in caps.iter().skip(1).enumerate() {
            let Some(m) = m else { continue };
            line.push_str(&content[last..m.start()]);
            let (kind, key) = slots
                .entry((tpl.as_str(), slot))
                .or_insert_with(|| {
                    let kind = match v {
                        Variant::Words => 0,
                        Variant::Kind(k) => k,
                        _ => r.below(KINDS as u64) as usize,
                    };
                    (kind, word(&mut r))
                })
                .clone();
            // an empty value stays empty (the template allows it)
            if !m.as_str().is_empty() {
                line.push_str(&value(&mut r, kind, &key));
            }
            last = m.end();
        }
        line.push_str(&content[last..]);
        out.contents.push(line);
        out.truth.push(tpl.clone());
    }
    out
}

/// A changed constant word of a sibling template: (piece, word in the piece, new word).
type Change = (usize, usize, String);

/// The constant pieces of a template (around its `<*>`), with `changes` applied.
fn pieces_with(tpl: &str, changes: &[Change]) -> Vec<String> {
    tpl.split("<*>")
        .enumerate()
        .map(|(p, piece)| {
            piece
                .split(' ')
                .enumerate()
                .map(|(w, word)| {
                    changes
                        .iter()
                        .find(|c| c.0 == p && c.1 == w)
                        .map_or(word, |c| c.2.as_str())
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The [`Variant::Siblings`] form of one line: Some((line, truth)) when it moves to its
/// template's sibling event.
fn sibling(
    content: &str,
    tpl: &str,
    siblings: &mut HashMap<String, Option<Vec<Change>>>,
    seen: &mut HashMap<String, usize>,
    r: &mut Rng,
    counts: &HashMap<&str, usize>,
) -> Option<(String, String)> {
    let changes = siblings
        .entry(tpl.to_string())
        .or_insert_with(|| {
            if counts.get(tpl).copied().unwrap_or(0) < 10 {
                return None;
            }
            // the template's plain constant words: (piece, word index)
            let words: Vec<(usize, usize)> = tpl
                .split("<*>")
                .enumerate()
                .flat_map(|(p, piece)| {
                    piece
                        .split(' ')
                        .enumerate()
                        .filter(|(_, w)| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_alphabetic()))
                        .map(move |(w, _)| (p, w))
                        .collect::<Vec<_>>()
                })
                .collect();
            if words.len() < 3 {
                return None;
            }
            let n = 1 + r.below(3) as usize;
            let mut chosen: Vec<Change> = Vec::new();
            while chosen.len() < n {
                let (p, w) = words[r.below(words.len() as u64) as usize];
                if !chosen.iter().any(|c| c.0 == p && c.1 == w) {
                    chosen.push((p, w, word(r)));
                }
            }
            Some(chosen)
        })
        .clone()?;
    let k = seen.entry(tpl.to_string()).or_default();
    *k += 1;
    // the first lines of a template stay; then one in six moves
    if *k <= 3 || r.below(6) != 0 {
        return None;
    }
    let re = template_regex(tpl)?;
    let caps = re.captures(content)?;
    let pieces = pieces_with(tpl, &changes);
    let mut line = pieces[0].clone();
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        line.push_str(caps.get(i).map_or("", |m| m.as_str()));
        line.push_str(piece);
    }
    Some((line, pieces.join("<*>")))
}

fn write_data(dir: &Path, sys: &System) -> Res<()> {
    let d = dir.join(&sys.name);
    std::fs::create_dir_all(&d)?;
    let mut w =
        csv::Writer::from_path(d.join(format!("{}_2k.log_structured_corrected.csv", sys.name)))?;
    w.write_record(["LineId", "Content", "EventTemplate"])?;
    for ((l, c), t) in sys.line_ids.iter().zip(&sys.contents).zip(&sys.truth) {
        w.write_record([l, c, t])?;
    }
    w.flush()?;
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// A JSON object of [`Config`] fields over the default.
fn patched(patch: Option<&str>) -> Res<Config> {
    let Some(p) = patch else {
        return Ok(Config::default());
    };
    let mut v = serde_json::to_value(Config::default())?;
    let p: serde_json::Value = serde_json::from_str(p)?;
    if let (Some(o), Some(q)) = (v.as_object_mut(), p.as_object()) {
        for (k, x) in q {
            o.insert(k.clone(), x.clone());
        }
    }
    Ok(serde_json::from_value(v)?)
}

/// Scores of one configuration on one system: GA, PA, and the mean GA of its stress variants.
#[derive(Clone, Copy)]
struct Cell {
    ga: f64,
    pa: f64,
    stress: f64,
}

/// Scores of configurations, computed once per (configuration, system).
struct Scores<'a> {
    systems: &'a [System],
    stressed: &'a [Vec<System>],
    mode: Mode,
    cache: HashMap<(String, usize), Cell>,
}

impl Scores<'_> {
    fn cell(&mut self, c: &Config, k: usize) -> Cell {
        let key = (serde_json::to_string(c).unwrap_or_default(), k);
        if let Some(x) = self.cache.get(&key) {
            return *x;
        }
        let s = &self.systems[k];
        let (ga, pa, _) = score_labels(s, &label(c, &s.contents, self.mode));
        let sg: Vec<f64> = self.stressed[k]
            .iter()
            .map(|x| score_labels(x, &label(c, &x.contents, self.mode)).0)
            .collect();
        let cell = Cell {
            ga,
            pa,
            stress: mean(&sg),
        };
        self.cache.insert(key, cell);
        cell
    }

    /// The mean objective over the systems `train`.
    fn objective(&mut self, c: &Config, train: &[usize], robust: bool) -> f64 {
        let v: Vec<f64> = train
            .iter()
            .map(|&k| {
                let x = self.cell(c, k);
                if robust {
                    (x.ga + x.stress) / 2.0
                } else {
                    x.ga
                }
            })
            .collect();
        mean(&v)
    }

    /// Coordinate ascent over [`space`] on the systems `train`: from the simplest point,
    /// each setting in turn takes its best value (the earliest on ties) given the others,
    /// until a sweep changes nothing.
    fn select(&mut self, train: &[usize], robust: bool) -> Res<Config> {
        let sp = space();
        let mut point = vec![0usize; sp.len()];
        for _sweep in 0..6 {
            let mut changed = false;
            for d in 0..sp.len() {
                let mut best = (f64::NEG_INFINITY, point[d]);
                for v in 0..sp[d].1.len() {
                    let mut p = point.clone();
                    p[d] = v;
                    let o = self.objective(&config_at(&sp, &p)?, train, robust);
                    if o > best.0 + 1e-12 {
                        best = (o, v);
                    }
                }
                if best.1 != point[d] {
                    point[d] = best.1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        config_at(&sp, &point)
    }
}

/// Leave one system out with one objective: per held-out system the configuration selected
/// on the others; writes its labels when `dir` is given. Also selects on all systems.
fn loso(scores: &mut Scores, robust: bool, dir: Option<&Path>, tsv: &mut String) -> Res<()> {
    let name = if robust { "robust" } else { "plain" };
    let n = scores.systems.len();
    let mut held = Vec::new();
    for k in 0..n {
        let train: Vec<usize> = (0..n).filter(|&j| j != k).collect();
        let c = scores.select(&train, robust)?;
        let x = scores.cell(&c, k);
        let o = scores.objective(&c, &train, robust);
        let sys = &scores.systems[k];
        if let Some(dir) = dir {
            let labels = label(&c, &sys.contents, scores.mode);
            write_pred(&dir.join(format!("{}.csv", sys.name)), sys, &labels)?;
        }
        println!(
            "  {name:<6} {:<10} held-out GA {:.4} PA {:.4} stress GA {:.4} (training objective {o:.4}; {})",
            sys.name,
            x.ga,
            x.pa,
            x.stress,
            describe(&c)
        );
        writeln!(
            tsv,
            "{name}\t{}\t{}\t{o:.4}\t{:.4}\t{:.4}\t{:.4}",
            sys.name,
            describe(&c),
            x.ga,
            x.pa,
            x.stress
        )?;
        held.push(x);
    }
    let ga: Vec<f64> = held.iter().map(|c| c.ga).collect();
    let pa: Vec<f64> = held.iter().map(|c| c.pa).collect();
    let sg: Vec<f64> = held.iter().map(|c| c.stress).collect();
    println!(
        "  {name:<6} average held-out GA {:.4} (min {:.4}), PA {:.4}, stress GA {:.4}",
        mean(&ga),
        min(&ga),
        mean(&pa),
        mean(&sg)
    );
    let all: Vec<usize> = (0..n).collect();
    let c = scores.select(&all, robust)?;
    println!(
        "  {name:<6} selected on all {n} systems: {} (objective {:.4})",
        describe(&c),
        scores.objective(&c, &all, robust)
    );
    Ok(())
}

fn main() -> Res<()> {
    let mut mode = Mode::Sql;
    let (mut run_loso, mut run_stress, mut kinds) = (true, true, false);
    let mut explain_set: Option<String> = None;
    let mut patch: Option<String> = None;
    let mut pos = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("sql") => Mode::Sql,
                    Some("batch") => Mode::Batch,
                    other => return Err(format!("--mode sql|batch, not {other:?}").into()),
                }
            }
            "--no-loso" => run_loso = false,
            "--no-stress" => run_stress = false,
            "--stress-kinds" => kinds = true,
            "--explain" => explain_set = args.next(),
            "--config" => patch = args.next(),
            _ => pos.push(a),
        }
    }
    if pos.len() < 2 {
        eprintln!(
            "usage: loghub [--mode sql|batch] [--no-loso] [--no-stress] [--stress-kinds] [--config JSON] [--explain SET] DATA_DIR OUT_DIR [System...]"
        );
        std::process::exit(2);
    }
    let data = PathBuf::from(&pos[0]);
    let out = PathBuf::from(&pos[1]);
    let names: Vec<String> = if pos.len() > 2 {
        pos[2..].to_vec()
    } else {
        SYSTEMS.iter().map(|s| s.to_string()).collect()
    };
    let mut systems = Vec::new();
    for s in &names {
        if let Some(sys) = read_system(&data, s)? {
            systems.push(sys);
        }
    }
    if systems.is_empty() {
        println!("SKIP loghub: no Loghub-2k system under {}", data.display());
        return Ok(());
    }
    let config = patched(patch.as_deref())?;

    // In sample: one configuration for every system.
    std::fs::create_dir_all(out.join("insample"))?;
    println!(
        "in sample ({}):",
        if patch.is_some() {
            "--config"
        } else {
            "default configuration"
        }
    );
    let mut ins = Vec::new();
    for sys in &systems {
        let t0 = std::time::Instant::now();
        let labels = label(&config, &sys.contents, mode);
        let dt = t0.elapsed();
        if explain_set.as_deref() == Some("insample") {
            explain(sys, &labels);
        }
        write_pred(
            &out.join("insample").join(format!("{}.csv", sys.name)),
            sys,
            &labels,
        )?;
        let (ga, pa, n) = score_labels(sys, &labels);
        println!(
            "  {:<10} GA {ga:.4} PA {pa:.4} groups {n} ({:.1} ms)",
            sys.name,
            dt.as_secs_f64() * 1e3
        );
        ins.push((ga, pa));
    }
    let ga: Vec<f64> = ins.iter().map(|x| x.0).collect();
    let pa: Vec<f64> = ins.iter().map(|x| x.1).collect();
    println!(
        "  average GA {:.4} (min {:.4}), PA {:.4}",
        mean(&ga),
        min(&ga),
        mean(&pa)
    );

    let stressed: Vec<Vec<System>> = systems
        .iter()
        .enumerate()
        .map(|(k, sys)| {
            VARIANTS
                .iter()
                .map(|v| stress(sys, *v, 0x5EED + k as u64))
                .collect()
        })
        .collect();

    if run_loso && systems.len() > 1 {
        println!(
            "leave one system out (coordinate ascent over {} settings):",
            space().len()
        );
        let mut scores = Scores {
            systems: &systems,
            stressed: &stressed,
            mode,
            cache: HashMap::new(),
        };
        std::fs::create_dir_all(out.join("loso"))?;
        let mut tsv = String::from(
            "objective\tsystem\tselected\ttraining_objective\theldout_ga\theldout_pa\theldout_stress_ga\n",
        );
        loso(&mut scores, false, None, &mut tsv)?;
        loso(&mut scores, true, Some(&out.join("loso")), &mut tsv)?;
        std::fs::write(out.join("loso.tsv"), tsv)?;
        println!(
            "  ({} configurations scored)",
            scores.cache.len() / systems.len().max(1)
        );
    }

    if run_stress {
        let mut variants = VARIANTS.to_vec();
        if kinds {
            variants.extend((0..KINDS).map(Variant::Kind));
        }
        for v in variants {
            let dir = out.join("stress").join(v.name());
            std::fs::create_dir_all(dir.join("pred"))?;
            let mut gas = Vec::new();
            let mut line = String::new();
            for (k, sys) in systems.iter().enumerate() {
                let own;
                let st = match VARIANTS.iter().position(|x| *x == v) {
                    Some(i) => &stressed[k][i],
                    None => {
                        own = stress(sys, v, 0x5EED + k as u64);
                        &own
                    }
                };
                write_data(&dir.join("data"), st)?;
                let labels = label(&config, &st.contents, mode);
                if explain_set.as_deref() == Some(v.name().as_str()) {
                    explain(st, &labels);
                }
                write_pred(
                    &dir.join("pred").join(format!("{}.csv", st.name)),
                    st,
                    &labels,
                )?;
                let ga = score_labels(st, &labels).0;
                write!(line, " {} {ga:.3}", st.name)?;
                gas.push(ga);
            }
            println!(
                "stress {:<8} average GA {:.4} (min {:.4}):{line}",
                v.name(),
                mean(&gas),
                min(&gas)
            );
        }
    }
    Ok(())
}
