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
//! * `loso/<System>.csv`: each system labelled with the candidate configuration (see
//!   [`candidates`]) that scores best on the OTHER systems; `loso.tsv` says which, with
//!   the held-out scores computed here (the bench script checks them against the scorer).
//!   Every choice the candidates differ in is so made without the held-out system. Two
//!   selection objectives are reported: the average GA of the training systems (`plain`),
//!   and the average over the training systems of (GA + the mean GA of their three stress
//!   variants) / 2 (`robust`, the one written to `loso/`): a configuration that only wins
//!   on the shapes of the training logs loses there;
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

/// The candidate configurations LOSO chooses from, the default first, then each knob's
/// values from the simplest (fewest special rules) on: a tie, e.g. a rule that changes
/// nothing on the training systems, goes to the earlier, simpler candidate.
fn candidates() -> Vec<(String, Config)> {
    let d = Config::default();
    let mut out = vec![("default".to_string(), d.clone())];
    for st in [0.4, 0.5, 0.6, 0.7] {
        for ww in [0.0, 0.5, 1.0] {
            for depth in [3, 4, 5] {
                for kw in [false, true] {
                    for words in [usize::MAX, 2, 1] {
                        for enums in [0, 4] {
                            let c = Config {
                                sim_threshold: st,
                                wildcard_word_weight: ww,
                                depth,
                                split_keywords: kw,
                                max_word_changes: words,
                                max_enum_values: enums,
                                ..d.clone()
                            };
                            if c == d {
                                continue;
                            }
                            let words = if words == usize::MAX {
                                "any".to_string()
                            } else {
                                words.to_string()
                            };
                            out.push((
                                format!(
                                    "sim_threshold={st} wildcard_word_weight={ww} depth={depth} split_keywords={kw} max_word_changes={words} max_enum_values={enums}"
                                ),
                                c,
                            ));
                        }
                    }
                }
            }
        }
    }
    out
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
    /// Every variable re-drawn from one kind (diagnostics, `--stress-kinds`).
    Kind(usize),
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Redrawn => "redrawn".into(),
            Variant::Words => "words".into(),
            Variant::Prefix => "prefix".into(),
            Variant::Kind(k) => format!("kind{k}"),
        }
    }
}

const VARIANTS: [Variant; 3] = [Variant::Redrawn, Variant::Words, Variant::Prefix];

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
    let mut out = System {
        name: sys.name.clone(),
        line_ids: sys.line_ids.clone(),
        contents: Vec::with_capacity(sys.contents.len()),
        truth: Vec::with_capacity(sys.truth.len()),
    };
    for (content, tpl) in sys.contents.iter().zip(&sys.truth) {
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

/// Scores of one candidate on one system: GA, PA, and the mean GA of its stress variants.
#[derive(Clone, Copy)]
struct Cell {
    ga: f64,
    pa: f64,
    stress: f64,
}

/// Leave one system out: per held-out system the candidate with the best `objective` over
/// the others; writes its labels when `dir` is given. Returns the held-out cells.
fn loso(
    systems: &[System],
    cands: &[(String, Config)],
    table: &[Vec<Cell>],
    robust: bool,
    mode: Mode,
    dir: Option<&Path>,
    tsv: &mut String,
) -> Res<Vec<Cell>> {
    let objective = |row: &Vec<Cell>, k: usize| {
        let v: Vec<f64> = row
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, c)| {
                if robust {
                    (c.ga + c.stress) / 2.0
                } else {
                    c.ga
                }
            })
            .collect();
        mean(&v)
    };
    let name = if robust { "robust" } else { "plain" };
    let mut held = Vec::new();
    for (k, sys) in systems.iter().enumerate() {
        let mut best = 0;
        for i in 1..cands.len() {
            if objective(&table[i], k) > objective(&table[best], k) + 1e-12 {
                best = i;
            }
        }
        let c = table[best][k];
        if let Some(dir) = dir {
            let labels = label(&cands[best].1, &sys.contents, mode);
            write_pred(&dir.join(format!("{}.csv", sys.name)), sys, &labels)?;
        }
        println!(
            "  {name:<6} {:<10} held-out GA {:.4} PA {:.4} stress GA {:.4} (training objective {:.4}; {})",
            sys.name,
            c.ga,
            c.pa,
            c.stress,
            objective(&table[best], k),
            cands[best].0
        );
        writeln!(
            tsv,
            "{name}\t{}\t{}\t{:.4}\t{:.4}\t{:.4}\t{:.4}",
            sys.name,
            cands[best].0,
            objective(&table[best], k),
            c.ga,
            c.pa,
            c.stress
        )?;
        held.push(c);
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
    Ok(held)
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
        let cands = candidates();
        println!(
            "leave one system out over {} candidate configurations:",
            cands.len()
        );
        let table: Vec<Vec<Cell>> = cands
            .iter()
            .map(|(_, c)| {
                systems
                    .iter()
                    .zip(&stressed)
                    .map(|(s, st)| {
                        let (ga, pa, _) = score_labels(s, &label(c, &s.contents, mode));
                        let sg: Vec<f64> = st
                            .iter()
                            .map(|x| score_labels(x, &label(c, &x.contents, mode)).0)
                            .collect();
                        Cell {
                            ga,
                            pa,
                            stress: mean(&sg),
                        }
                    })
                    .collect()
            })
            .collect();
        std::fs::create_dir_all(out.join("loso"))?;
        let mut tsv = String::from(
            "objective\tsystem\tcandidate\ttraining_objective\theldout_ga\theldout_pa\theldout_stress_ga\n",
        );
        loso(&systems, &cands, &table, false, mode, None, &mut tsv)?;
        loso(
            &systems,
            &cands,
            &table,
            true,
            mode,
            Some(&out.join("loso")),
            &mut tsv,
        )?;
        std::fs::write(out.join("loso.tsv"), tsv)?;
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
