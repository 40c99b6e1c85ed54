//! Online template mining after Drain: P. He, J. Zhu, Z. Zheng, M. R. Lyu, "Drain: An Online
//! Log Parsing Approach with Fixed Depth Tree", IEEE ICWS 2017.
//!
//! As in Drain, a message is routed through a fixed-depth prefix tree (level 1: token count,
//! then the first `depth - 2` tokens, masked tokens sharing a `<*>` child), and joins the most
//! similar cluster of the leaf if the similarity reaches `sim_threshold`; otherwise it opens a
//! new cluster. The template of a cluster is updated by turning disagreeing positions into
//! `<*>`. Changes against Drain/Drain3 (each has a unit test):
//! * a masked message token under a template `<*>` counts as a match (Drain3 counts every
//!   template wildcard as a mismatch, so a mostly-masked line never reaches the threshold
//!   against its own template and opens a new cluster each time);
//! * masking (see [`crate::mask`]) turns a multi-token variable into one token before the
//!   token count is taken, and runs of variables collapse, so they cannot split templates;
//! * two different "keywords" (capitalised or upper-case words, e.g. `Started`/`Paused`,
//!   `RUNNING`/`FAILED`) at a constant position never merge, however similar the rest is;
//! * the number of clusters is bounded: the least recently used cluster is evicted;
//! * the whole state is serde-serializable and two miners can be merged.

use crate::mask::{tokenize, Token, DEFAULT_MAX_LEN, WILDCARD};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Miner settings. The defaults are the single configuration used for every Loghub system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Drain depth: token-count level + `depth - 2` leading-token levels (Drain uses 4).
    pub depth: usize,
    /// Minimum similarity (matched positions / positions) to join a cluster.
    pub sim_threshold: f64,
    /// Weight of an unmasked message word falling under a template `<*>`.
    pub wildcard_word_weight: f64,
    /// Children per tree node before further tokens are routed to the `<*>` child.
    pub max_children: usize,
    /// Upper bound on live clusters (least recently used evicted first).
    pub max_clusters: usize,
    /// Longer lines are cut (bytes) before masking.
    pub max_line_len: usize,
    /// Keep distinct keywords (`Started` vs `Paused`) in distinct clusters.
    pub split_keywords: bool,
    /// Most constant words of a template that one message may turn into parameters.
    pub max_word_changes: usize,
    /// A parameter position that has held at most this many distinct plain words is an
    /// enumerated field and is kept in the reported template (0 disables).
    pub max_enum_values: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            depth: 4,
            sim_threshold: 0.5,
            wildcard_word_weight: 0.5,
            max_children: 100,
            max_clusters: 10_000,
            max_line_len: DEFAULT_MAX_LEN,
            split_keywords: true,
            max_word_changes: 1,
            max_enum_values: 4,
        }
    }
}

/// One template cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: u64,
    /// Template tokens, `<*>` for a parameter position.
    pub tokens: Vec<String>,
    /// Number of messages that joined this cluster.
    pub size: u64,
    /// LRU clock value of the last use.
    pub last_used: u64,
    /// Parameter positions that have only ever held a few plain words (at most
    /// `Config::max_enum_values`), with their counts. Such a position is reported as that
    /// word (an enumerated field such as `bytes`/`values`), not as `<*>`; once it holds more
    /// distinct words, or any masked variable, it becomes an ordinary parameter.
    #[serde(default)]
    pub enums: BTreeMap<usize, Vec<(String, u64)>>,
    /// Tree path (keys below the token-count level) the cluster was filed under.
    #[serde(default)]
    path: Vec<String>,
}

impl Cluster {
    /// The generic template (`<*>` at every parameter position).
    pub fn template(&self) -> String {
        self.tokens.join(" ")
    }

    /// The template for one message: enumerated positions carry the message's word.
    fn template_for(&self, toks: &[Token]) -> String {
        if self.enums.is_empty() {
            return self.template();
        }
        let mut out: Vec<&str> = Vec::with_capacity(self.tokens.len());
        for (i, t) in self.tokens.iter().enumerate() {
            let word = match (self.enums.get(&i), toks.get(i)) {
                (Some(vals), Some(m)) if vals.iter().any(|(v, _)| *v == m.text) => m.text.as_str(),
                _ => t.as_str(),
            };
            out.push(word);
        }
        out.join(" ")
    }
}

/// Record one more value at an enumerated position; false when it stops being enumerable.
fn record_enum(vals: &mut Vec<(String, u64)>, m: &Token, weight: u64, max: usize) -> bool {
    if m.is_masked() {
        return false;
    }
    match vals.iter_mut().find(|(v, _)| *v == m.text) {
        Some(v) => v.1 += weight,
        None => vals.push((m.text.clone(), weight)),
    }
    vals.len() <= max
}

/// The result of [`Miner::add`] / [`Miner::match_only`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub cluster_id: u64,
    pub template: String,
    /// Original text under each `<*>` of the template, in order.
    pub parameters: Vec<String>,
    /// True if this message opened the cluster.
    pub is_new: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Node {
    children: HashMap<String, Node>,
    clusters: Vec<u64>,
}

/// A Drain-style template miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Miner {
    config: Config,
    root: HashMap<usize, Node>,
    clusters: HashMap<u64, Cluster>,
    /// last_used -> cluster id, oldest first (LRU order).
    lru: BTreeMap<u64, u64>,
    next_id: u64,
    clock: u64,
}

impl Default for Miner {
    fn default() -> Self {
        Miner::new(Config::default())
    }
}

/// A "keyword" is a constant token whose change changes the event: anything with a letter
/// that is not a plain lower-case word (`Started`, `RUNNING`, `alt0`, `z+`, `dcbf....<*>`).
/// Plain lower-case words (user names, hosts) may become parameters.
fn is_keyword(t: &str) -> bool {
    let core = t.trim_end_matches([':', ',', '.', ';', '!', '?']);
    core.chars().any(|c| c.is_alphabetic())
        && !core.chars().all(|c| c.is_lowercase() && c.is_alphabetic())
}

/// Two plain words where one extends the other (`failure`/`failures`): a different word form.
fn is_word_variant(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches([':', ',', '.', ';']);
    let b = b.trim_end_matches([':', ',', '.', ';']);
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 3 && long.starts_with(short)
}

impl Miner {
    pub fn new(config: Config) -> Self {
        Miner {
            config,
            root: HashMap::new(),
            clusters: HashMap::new(),
            lru: BTreeMap::new(),
            next_id: 1,
            clock: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    pub fn cluster(&self, id: u64) -> Option<&Cluster> {
        self.clusters.get(&id)
    }

    /// All live clusters, by id.
    pub fn clusters(&self) -> Vec<&Cluster> {
        let mut v: Vec<&Cluster> = self.clusters.values().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    fn tokens(&self, message: &str) -> Vec<Token> {
        tokenize(message, self.config.max_line_len)
    }

    /// Add a message: join the best cluster (updating its template) or open a new one.
    pub fn add(&mut self, message: &str) -> Match {
        let toks = self.tokens(message);
        self.add_tokens(&toks, 1)
    }

    /// Find the cluster a message would join, without changing anything.
    pub fn match_only(&self, message: &str) -> Option<Match> {
        let toks = self.tokens(message);
        let id = self.search(&toks)?;
        let c = self.clusters.get(&id)?;
        // Only a full match (every constant equal) counts when the template is not updated.
        let ok = c
            .tokens
            .iter()
            .zip(&toks)
            .all(|(t, m)| t == WILDCARD || *t == m.text);
        ok.then(|| Match {
            cluster_id: id,
            template: c.template_for(&toks),
            parameters: parameters(&c.tokens, &toks),
            is_new: false,
        })
    }

    fn add_tokens(&mut self, toks: &[Token], weight: u64) -> Match {
        self.clock += 1;
        let clock = self.clock;
        if let Some(id) = self.search(toks) {
            let max_enum = self.config.max_enum_values;
            if let Some(c) = self.clusters.get_mut(&id) {
                let size_before = c.size;
                for (i, (t, m)) in c.tokens.iter_mut().zip(toks).enumerate() {
                    if t == WILDCARD {
                        if let Some(vals) = c.enums.get_mut(&i) {
                            if !record_enum(vals, m, weight, max_enum) {
                                c.enums.remove(&i);
                            }
                        }
                    } else if *t != m.text {
                        if max_enum >= 2 && !m.is_masked() {
                            let vals = vec![(t.clone(), size_before), (m.text.clone(), weight)];
                            c.enums.insert(i, vals);
                        }
                        *t = WILDCARD.to_string();
                    }
                }
                c.size += weight;
                self.lru.remove(&c.last_used);
                c.last_used = clock;
                self.lru.insert(clock, id);
                return Match {
                    cluster_id: id,
                    template: c.template_for(toks),
                    parameters: parameters(&c.tokens, toks),
                    is_new: false,
                };
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let tokens: Vec<String> = toks.iter().map(|t| t.text.clone()).collect();
        let c = Cluster {
            id,
            tokens,
            size: weight,
            last_used: clock,
            enums: BTreeMap::new(),
            path: Vec::new(),
        };
        let m = Match {
            cluster_id: id,
            template: c.template(),
            parameters: parameters(&c.tokens, toks),
            is_new: true,
        };
        let mut c = c;
        c.path = self.insert_path(toks, id);
        self.clusters.insert(id, c);
        self.lru.insert(clock, id);
        while self.clusters.len() > self.config.max_clusters.max(1) {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            self.remove_cluster(old);
        }
        m
    }

    fn path_keys(&self, toks: &[Token]) -> Vec<String> {
        let levels = self.config.depth.saturating_sub(2).max(1);
        toks.iter()
            .take(levels)
            .map(|t| {
                if t.is_masked() {
                    WILDCARD.to_string()
                } else {
                    t.text.clone()
                }
            })
            .collect()
    }

    fn leaf(&self, toks: &[Token]) -> Option<&Node> {
        let mut node = self.root.get(&toks.len())?;
        for key in self.path_keys(toks) {
            node = match node.children.get(&key) {
                Some(n) => n,
                None => node.children.get(WILDCARD)?,
            };
        }
        Some(node)
    }

    fn insert_path(&mut self, toks: &[Token], id: u64) -> Vec<String> {
        let keys = self.path_keys(toks);
        let max_children = self.config.max_children.max(1);
        let mut node = self.root.entry(toks.len()).or_default();
        let mut path = Vec::with_capacity(keys.len());
        for key in keys {
            let k = if node.children.contains_key(&key) || node.children.len() < max_children {
                key
            } else {
                WILDCARD.to_string()
            };
            path.push(k.clone());
            node = node.children.entry(k).or_default();
        }
        node.clusters.push(id);
        path
    }

    fn remove_cluster(&mut self, id: u64) {
        let Some(c) = self.clusters.remove(&id) else {
            return;
        };
        self.lru.remove(&c.last_used);
        // Walk only the cluster's own path; drop nodes left empty.
        fn prune(node: &mut Node, path: &[String], id: u64) -> bool {
            match path.split_first() {
                None => node.clusters.retain(|&x| x != id),
                Some((k, rest)) => {
                    if node
                        .children
                        .get_mut(k)
                        .is_some_and(|ch| prune(ch, rest, id))
                    {
                        node.children.remove(k);
                    }
                }
            }
            node.children.is_empty() && node.clusters.is_empty()
        }
        if let Some(n) = self.root.get_mut(&c.tokens.len()) {
            if prune(n, &c.path, id) {
                self.root.remove(&c.tokens.len());
            }
        }
    }

    /// Drain's similarity (He et al. 2017, "simSeq"), with the masked-token and keyword rules.
    /// Returns None when the keyword rule forbids the merge.
    fn is_enum_value(&self, c: &Cluster, pos: usize, word: &str) -> bool {
        c.enums
            .get(&pos)
            .is_some_and(|vals| vals.iter().any(|(v, _)| v == word))
    }

    fn similarity(&self, c: &Cluster, toks: &[Token]) -> Option<(f64, usize)> {
        let tpl = &c.tokens;
        if tpl.len() != toks.len() {
            return None;
        }
        if tpl.is_empty() {
            return Some((1.0, 0));
        }
        let mut sim = 0.0;
        let mut wild = 0;
        let mut word_diffs = 0;
        let n = tpl.len() as f64;
        let mut lost = 0.0;
        for (i, (t, m)) in tpl.iter().zip(toks).enumerate() {
            // give up as soon as the threshold is out of reach
            if (n - lost) / n + 1e-9 < self.config.sim_threshold {
                return None;
            }
            if t == WILDCARD {
                wild += 1;
                let w = if m.is_masked() || self.is_enum_value(c, i, &m.text) {
                    1.0
                } else {
                    self.config.wildcard_word_weight
                };
                sim += w;
                lost += 1.0 - w;
            } else if *t == m.text {
                sim += 1.0;
            } else if m.is_masked() {
                lost += 1.0;
            } else {
                lost += 1.0;
                word_diffs += 1;
                if self.config.split_keywords
                    && ((is_keyword(t) && is_keyword(&m.text)) || is_word_variant(t, &m.text))
                {
                    return None;
                }
            }
        }
        if word_diffs > self.config.max_word_changes {
            return None;
        }
        Some((sim / tpl.len() as f64, wild))
    }

    fn search(&self, toks: &[Token]) -> Option<u64> {
        let leaf = self.leaf(toks)?;
        let mut best: Option<(f64, usize, u64)> = None;
        for id in &leaf.clusters {
            let Some(c) = self.clusters.get(id) else {
                continue;
            };
            let Some((sim, wild)) = self.similarity(c, toks) else {
                continue;
            };
            if sim + 1e-9 < self.config.sim_threshold {
                continue;
            }
            let better = match best {
                None => true,
                Some((bs, bw, _)) => sim > bs + 1e-9 || ((sim - bs).abs() <= 1e-9 && wild < bw),
            };
            if better {
                best = Some((sim, wild, *id));
            }
        }
        best.map(|b| b.2)
    }

    /// Merge another miner's clusters into this one (e.g. states built on parallel workers).
    /// Each foreign cluster joins the most similar local cluster (templates are generalised as
    /// for a message) or is added as a new cluster. Returns foreign id -> local id.
    pub fn merge(&mut self, other: &Miner) -> HashMap<u64, u64> {
        let mut map = HashMap::new();
        let mut theirs: Vec<&Cluster> = other.clusters.values().collect();
        theirs.sort_by_key(|c| c.last_used);
        for c in theirs {
            let toks: Vec<Token> = c
                .tokens
                .iter()
                .map(|t| Token {
                    text: t.clone(),
                    original: t.clone(),
                    kind: (t == WILDCARD).then_some(crate::mask::MaskKind::Mixed),
                })
                .collect();
            let m = self.add_tokens(&toks, c.size);
            map.insert(c.id, m.cluster_id);
        }
        map
    }

    /// The current template of `cluster_id` for `message` (enumerated positions filled in),
    /// used to label a batch with final templates.
    pub fn template_for(&self, cluster_id: u64, message: &str) -> Option<String> {
        let c = self.clusters.get(&cluster_id)?;
        Some(c.template_for(&self.tokens(message)))
    }

    /// Serialize the miner state as JSON.
    pub fn to_json(&self) -> Result<String, crate::Error> {
        Ok(serde_json::to_string(self)?)
    }

    /// Restore a miner state written by [`Miner::to_json`].
    pub fn from_json(s: &str) -> Result<Miner, crate::Error> {
        Ok(serde_json::from_str(s)?)
    }
}

fn parameters(tpl: &[String], toks: &[Token]) -> Vec<String> {
    let mut out = Vec::new();
    for (t, m) in tpl.iter().zip(toks) {
        if t == WILDCARD {
            out.push(m.original.clone());
        } else if t.contains(WILDCARD) {
            // inner variables of a partly masked token (`node-<*>`): report the whole token
            out.push(m.original.clone());
        }
    }
    out
}

/// Batch labelling as in the Loghub benchmark: add every message, then label each one with
/// the FINAL template of its cluster. Clusters whose final templates are identical are one
/// event (the lowest id is used), so late template evolution cannot split an event.
/// Returns (event id, template) per message. Clusters evicted meanwhile are labelled with
/// the template seen when the message was added.
pub fn mine_batch<'a>(
    miner: &mut Miner,
    messages: impl IntoIterator<Item = &'a str>,
) -> Vec<(u64, String)> {
    let messages: Vec<&str> = messages.into_iter().collect();
    let added: Vec<Match> = messages.iter().map(|m| miner.add(m)).collect();
    let mut by_template: HashMap<String, u64> = HashMap::new();
    let mut next = 0u64;
    added
        .into_iter()
        .zip(&messages)
        .map(|(m, msg)| {
            let t = miner.template_for(m.cluster_id, msg).unwrap_or(m.template);
            let id = *by_template.entry(t.clone()).or_insert_with(|| {
                next += 1;
                next
            });
            (id, t)
        })
        .collect()
}
