//! Online template mining: a Drain-style miner (P. He, J. Zhu, Z. Zheng, M. R. Lyu, "Drain:
//! An Online Log Parsing Approach with Fixed Depth Tree", IEEE ICWS 2017) whose merge test
//! weighs the evidence of constant words, chosen and measured out of sample.
//!
//! What is adopted, and from where:
//! * Drain: messages are grouped by token count (after masking, see [`crate::mask`]); a
//!   message joins the most similar cluster of its group if the similarity reaches
//!   `sim_threshold`, else opens a new cluster; joining turns the template's disagreeing
//!   positions into `<*>`. Drain's fixed-depth prefix tree (routing by the first tokens) is
//!   kept as an option (`depth` >= 3, routing by plain words only) but off by default: a
//!   first token that is a variable (a host, a user, a program name) then splits every
//!   template; the leading-words rule below keeps what the tree was for.
//! * Spell (M. Du, F. Li, "Spell: Streaming Parsing of System Event Logs", ICDM 2016): a
//!   template is identified by its constant tokens, and similarity is measured on them.
//!   Per position: a variable or a token without letters (`<*>)`, `-`) is neutral; an equal
//!   plain word counts 1, an equal compound token (identifier, path, name with digits or
//!   inner punctuation) `compound_weight`; a differing compound token is presumed a
//!   variable (it adds `compound_weight` to the total only); a plain word under a template
//!   `<*>` counts `wildcard_word_weight` of 1. Similarity = agreement / (total +
//!   `disagreement_prior`) when anything disagrees, else 1: additive (Laplace/Lidstone)
//!   smoothing, so that a line with two words does not join on one. Drain's simSeq counts
//!   every position, so a line with many variables joins any template of its length, and a
//!   short line is swamped by one variable.
//! * Frequency of a word at a position within a group (Brain: S. Yu, P. He, N. Chen, Y. Wu,
//!   "Brain: Log Parsing With Bidirectional Parallel Tree", IEEE TSC 2023: constants are
//!   the words as frequent as their group; and Good's estimate of unseen mass, I. J. Good,
//!   Biometrika 1953: after n lines that all repeated one word at a position, the estimated
//!   chance of a new word there is (words seen once) / n = 0 for n >= 2). Once a cluster has
//!   two lines, its plain words are supported: a message may turn at most
//!   `max_word_changes` of them into parameters, none among the first `lead_positions`
//!   (Drain's premise that events are told apart by their first words, applied once the
//!   data backs it), and each changed word weighs 1 + `support_weight` * ln(lines). A
//!   cluster of one line may generalise freely: a variable that looks like a word (a user
//!   name) is recognised by taking a second value.
//! * Two plain words that both carry a capital (`Started`/`Paused`, `RUNNING`/`FAILED`),
//!   or two forms of one word (`failure`/`failures`), never merge (`split_keywords`).
//! * The Loghub-2.0 comparison (Z. Jiang et al., "A Large-Scale Evaluation for Log Parsing
//!   Techniques: How Far Are We?", ISSTA 2024) finds that parsers tuned per dataset lose
//!   much of their accuracy on other logs: hence ONE configuration, no rule for one log
//!   format, and every setting chosen by leave-one-system-out on the Loghub samples and on
//!   stress variants of them (`examples/loghub.rs`, benches/RESULTS.md).
//!
//! Engineering: the number of clusters is bounded (least recently used evicted); a group with
//! more than [`LEAF_SCAN`] clusters is searched through an inverted index (position, word) ->
//! clusters, which finds every cluster that can reach the threshold (a cluster sharing no
//! constant with the message scores at most `wildcard_word_weight`); the whole state is
//! serde-serializable, can be rebuilt from its clusters alone (one database row per cluster,
//! see [`Miner::from_clusters`] and [`Miner::take_changes`]), and two miners can be merged.

use crate::mask::{is_opening, with_masked, MaskOptions, Masked, WILDCARD};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Groups with more clusters than this are searched through their inverted index.
pub const LEAF_SCAN: usize = 32;

/// Posting lists longer than this are not searched (see `best_match`).
pub const POSTING_SCAN: usize = 256;

/// FxHash, the multiply-rotate hash of Firefox and rustc (`rustc-hash`): fast on short keys,
/// not collision resistant; keys here are tokens of one process, and every hit is verified.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// Miner settings. The defaults are the single configuration used for every log, chosen by
/// leave-one-system-out on the Loghub samples (benches/RESULTS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// 2: group by token count only. 3 or more: Drain's prefix tree, routing by the first
    /// `depth - 2` tokens when they are plain words (anything else goes to `<*>`).
    pub depth: usize,
    /// Minimum similarity (see the module docs) to join a cluster.
    pub sim_threshold: f64,
    /// Weight of a plain word falling under a template `<*>`.
    pub wildcard_word_weight: f64,
    /// Weight of a compound token (identifier, path, dotted name) against a plain word's 1.
    #[serde(default = "default_compound_weight")]
    pub compound_weight: f64,
    /// Children per tree node before further tokens are routed to the `<*>` child.
    pub max_children: usize,
    /// Upper bound on live clusters (least recently used evicted first).
    pub max_clusters: usize,
    /// Longer lines are cut (bytes) before masking.
    pub max_line_len: usize,
    /// Keep distinct capitalised words (`Started` vs `Paused`) and word forms
    /// (`failure`/`failures`) in distinct clusters.
    pub split_keywords: bool,
    /// Most plain words of a template of two or more lines that one message may turn into
    /// parameters.
    pub max_word_changes: usize,
    /// A parameter position that has held at most this many distinct plain words is an
    /// enumerated field and is kept in the reported template (0 disables).
    pub max_enum_values: usize,
    /// Pseudo-count of disagreement added to the similarity's total weight when anything
    /// disagrees (additive smoothing): a line with few constant words needs more agreement.
    #[serde(default = "default_disagreement_prior")]
    pub disagreement_prior: f64,
    /// A plain word of the template that the message changes weighs 1 + this * ln(lines in
    /// the cluster): the evidence that it is a constant grows with its repetitions.
    #[serde(default = "default_support_weight")]
    pub support_weight: f64,
    /// A plain word that a cluster's lines have repeated at one of its first this many
    /// positions is part of its identity (see the module docs; 0 disables).
    #[serde(default = "default_lead_positions")]
    pub lead_positions: usize,
    /// Mask quoted strings with a space or a digit as one variable.
    #[serde(default)]
    pub mask_quoted: bool,
    /// Mask the values of `key=value` pairs.
    #[serde(default = "default_true")]
    pub mask_key_values: bool,
}

fn default_compound_weight() -> f64 {
    0.5
}

fn default_disagreement_prior() -> f64 {
    0.5
}

fn default_support_weight() -> f64 {
    1.0
}

fn default_lead_positions() -> usize {
    3
}

fn default_true() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            depth: 2,
            sim_threshold: 0.5,
            wildcard_word_weight: 0.5,
            compound_weight: default_compound_weight(),
            max_children: 100,
            max_clusters: 10_000,
            max_line_len: crate::mask::DEFAULT_MAX_LEN,
            split_keywords: true,
            max_word_changes: 1,
            max_enum_values: 4,
            disagreement_prior: default_disagreement_prior(),
            support_weight: default_support_weight(),
            lead_positions: default_lead_positions(),
            mask_quoted: false,
            mask_key_values: true,
        }
    }
}

impl Config {
    /// The masker's options.
    pub fn mask_options(&self) -> MaskOptions {
        MaskOptions {
            quoted: self.mask_quoted,
            key_values: self.mask_key_values,
        }
    }
}

/// One template cluster. Serialized (serde) it carries everything [`Miner::from_clusters`]
/// needs, including its place in the prefix tree.
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
    fn template_for(&self, m: &Masked) -> String {
        if self.enums.is_empty() {
            return self.template();
        }
        let mut out = String::with_capacity(self.tokens.iter().map(|t| t.len() + 1).sum());
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let word = m.text(i);
            let enumerated = i < m.len() && self.is_enum_value(i, word);
            out.push_str(if enumerated { word } else { t });
        }
        out
    }

    fn is_enum_value(&self, pos: usize, word: &str) -> bool {
        !self.enums.is_empty()
            && self
                .enums
                .get(&pos)
                .is_some_and(|vals| vals.iter().any(|(v, _)| v == word))
    }
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

/// What changed since the previous [`Miner::take_changes`]: enough to keep one database row
/// per cluster in step with the miner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Clusters created, or whose template tokens or set of enumerated words changed
    /// (ascending ids): store the whole [`Cluster`] again. Counts of enumerated words are
    /// refreshed only then.
    pub changed: Vec<u64>,
    /// Clusters evicted that existed at the previous call (ascending ids). A cluster
    /// created and evicted between two calls appears nowhere.
    pub evicted: Vec<u64>,
    /// (cluster id, messages added) for every cluster that received messages (ascending
    /// ids); `size` grew by that much and `last_used` moved (read it from
    /// [`Miner::cluster`]).
    pub counts: Vec<(u64, u64)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.evicted.is_empty() && self.counts.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
struct ChangeLog {
    changed: FxSet<u64>,
    created: FxSet<u64>,
    evicted: Vec<u64>,
    counts: FxMap<u64, u64>,
}

const NIL: u32 = u32::MAX;
/// Token flags. A template position: `<*>`.
const WILD: u8 = 1;
/// A plain word with a capital letter (see [`word_flags`]).
const KEYWORD: u8 = 2;
/// A plain word: letters only, with optional brackets or quotes before and punctuation after.
const WORD: u8 = 4;
/// No letter outside `<*>` (punctuation, `<*>)`, `-`).
const NOLETTER: u8 = 8;
/// In a message's lazily filled flags ([`WordFlags`]): the flags of this token are known.
const KNOWN: u8 = 16;
/// In [`WordFlags`]: the hash of this token is known.
const HASHED: u8 = 32;
/// A template position that holds a `<*>` (alone or inside, `node-<*>`): a parameter.
const PARAM: u8 = 64;

/// Letters only (any script), then optional closing punctuation.
fn plain_word(t: &[u8]) -> bool {
    let mut end = t.len();
    while end > 0
        && matches!(
            t[end - 1],
            b':' | b',' | b'.' | b';' | b'!' | b'?' | b')' | b']'
        )
    {
        end -= 1;
    }
    if end == 0 {
        return false;
    }
    let core = &t[..end];
    if core.is_ascii() {
        return core.iter().all(u8::is_ascii_alphabetic);
    }
    std::str::from_utf8(core).is_ok_and(|s| s.chars().all(char::is_alphabetic))
}

/// Whether a token has a letter outside its `<*>` placeholders.
fn has_letter(t: &[u8]) -> bool {
    let mut i = 0;
    while i < t.len() {
        if t[i..].starts_with(WILDCARD.as_bytes()) {
            i += WILDCARD.len();
            continue;
        }
        if t[i].is_ascii_alphabetic() || t[i] >= 0x80 {
            return true;
        }
        i += 1;
    }
    false
}

/// [`WORD`], [`KEYWORD`] or [`NOLETTER`] of a token; none of them: a compound token.
fn word_flags(t: &str) -> u8 {
    let b = t.as_bytes();
    let lead = b.iter().take_while(|&&c| is_opening(c)).count();
    if plain_word(&b[lead..]) {
        if t.chars().any(char::is_uppercase) {
            WORD | KEYWORD
        } else {
            WORD
        }
    } else if !has_letter(b) {
        NOLETTER
    } else {
        0
    }
}

/// Two plain words where one extends the other (`failure`/`failures`): a different word form.
fn is_word_variant(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches([':', ',', '.', ';']);
    let b = b.trim_end_matches([':', ',', '.', ';']);
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 3 && long.starts_with(short)
}

/// A 32-bit hash of one token.
fn word_hash(b: &[u8]) -> u32 {
    let mut h = FxHasher::default();
    h.write(b);
    (h.finish() >> 32) as u32
}

/// A hash of a token sequence (a template's, or a masked message's).
fn text_key<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut h = FxHasher::default();
    for t in tokens {
        h.write(t);
        h.write_u8(0xff);
    }
    h.finish()
}

/// The inverted index key of a word at a position.
fn post_key(pos: usize, hash: u32) -> u64 {
    ((pos as u64) << 32) | u64::from(hash)
}

/// The [`word_flags`] and hashes of a message's tokens, computed on first use: one message
/// is compared with many clusters, and most comparisons never look at these.
struct WordFlags {
    cache: [u8; 64],
    hash: [u32; 64],
}

impl WordFlags {
    fn new() -> WordFlags {
        WordFlags {
            cache: [0; 64],
            hash: [0; 64],
        }
    }

    #[inline]
    fn get(&mut self, m: &Masked, i: usize) -> u8 {
        match self.cache.get_mut(i) {
            Some(c) if *c & KNOWN != 0 => *c,
            Some(c) => {
                *c |= word_flags(m.text(i)) | KNOWN;
                *c
            }
            None => word_flags(m.text(i)),
        }
    }

    #[inline]
    fn hash(&mut self, m: &Masked, i: usize) -> u32 {
        match self.cache.get_mut(i) {
            Some(c) if *c & HASHED != 0 => self.hash[i],
            Some(c) => {
                *c |= HASHED;
                self.hash[i] = word_hash(m.text_bytes(i));
                self.hash[i]
            }
            None => word_hash(m.text_bytes(i)),
        }
    }
}

/// A live cluster with what the search needs precomputed.
#[derive(Debug, Clone)]
struct Entry {
    c: Cluster,
    /// Per template position: [`WILD`], or the [`word_flags`] of a constant; and [`PARAM`].
    flags: Vec<u8>,
    /// Number of `<*>` template tokens.
    wild: usize,
    /// `c.template()`, kept.
    template: String,
    /// [`text_key`] of the template tokens.
    text_key: u64,
    /// LRU neighbours (slots), oldest at the head.
    prev: u32,
    next: u32,
}

impl Entry {
    fn new(c: Cluster) -> Entry {
        let mut e = Entry {
            c,
            flags: Vec::new(),
            wild: 0,
            template: String::new(),
            text_key: 0,
            prev: NIL,
            next: NIL,
        };
        e.refresh();
        e
    }

    /// Recompute what depends on the template tokens.
    fn refresh(&mut self) {
        self.flags = self
            .c
            .tokens
            .iter()
            .map(|t| {
                if t == WILDCARD {
                    WILD | PARAM
                } else if t.contains(WILDCARD) {
                    word_flags(t) | PARAM
                } else {
                    word_flags(t)
                }
            })
            .collect();
        self.wild = self.flags.iter().filter(|&&f| f & WILD != 0).count();
        self.template = self.c.template();
        self.text_key = text_key(self.c.tokens.iter().map(String::as_bytes));
    }

    /// Whether template position `i` is in the inverted index: a constant with a letter.
    fn posted(&self, i: usize) -> bool {
        self.flags[i] & (WILD | NOLETTER) == 0
    }

    /// The inverted index keys of the template.
    fn post_keys(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.flags.len())
            .filter(|&i| self.posted(i))
            .map(|i| post_key(i, word_hash(self.c.tokens[i].as_bytes())))
    }
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: FxMap<Box<str>, Node>,
    leaf: Leaf,
}

/// The clusters of one group (token count and, with `depth` >= 3, leading words).
#[derive(Debug, Clone, Default)]
struct Leaf {
    /// (id, slot), ascending ids.
    members: Vec<(u64, u32)>,
    /// (position, word hash) of a template constant -> slots.
    /// A set per key: a cluster is unlisted in O(1) when evicted (a `Vec` made every eviction
    /// scan lists as long as the leaf).
    postings: FxMap<u64, FxSet<u32>>,
    /// Slots whose template has no constant with a letter (never in `postings`).
    bare: Vec<u32>,
}

impl Leaf {
    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn insert(&mut self, e: &Entry, slot: u32) {
        let pos = self.members.partition_point(|&(x, _)| x < e.c.id);
        self.members.insert(pos, (e.c.id, slot));
        let mut any = false;
        for k in e.post_keys() {
            self.postings.entry(k).or_default().insert(slot);
            any = true;
        }
        if !any {
            self.bare.push(slot);
        }
    }

    fn remove(&mut self, e: &Entry, slot: u32) {
        if let Ok(p) = self.members.binary_search_by_key(&e.c.id, |&(x, _)| x) {
            self.members.remove(p);
        }
        for k in e.post_keys() {
            self.unpost(k, slot);
        }
        self.bare.retain(|&s| s != slot);
    }

    fn unpost(&mut self, key: u64, slot: u32) {
        if let Some(v) = self.postings.get_mut(&key) {
            v.remove(&slot);
            if v.is_empty() {
                self.postings.remove(&key);
            }
        }
    }
}

/// A Drain-style template miner.
#[derive(Debug, Clone)]
pub struct Miner {
    config: Config,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: FxMap<u64, u32>,
    root: FxMap<usize, Node>,
    /// [`text_key`] of a template -> slots with that key: a message whose masked text is a
    /// template is found without a search (used when there is no prefix tree).
    by_text: FxMap<u64, Vec<u32>>,
    lru_head: u32,
    lru_tail: u32,
    next_id: u64,
    clock: u64,
    log: ChangeLog,
    scratch: Masked,
    /// Compare every message with every cluster of its group (tests: the oracle of the
    /// indexes).
    exhaustive: bool,
}

impl Default for Miner {
    fn default() -> Self {
        Miner::new(Config::default())
    }
}

impl PartialEq for Miner {
    /// Same configuration, clusters, clock and next id (indexes and change logs aside).
    fn eq(&self, other: &Miner) -> bool {
        self.config == other.config
            && self.next_id == other.next_id
            && self.clock == other.clock
            && self.len() == other.len()
            && self
                .entries()
                .all(|e| other.cluster(e.c.id).is_some_and(|c| *c == e.c))
    }
}

/// The tree key of message token `i` (with `depth` >= 3): the token if it is a plain
/// word, else `<*>`.
fn route_key(m: &Masked, i: usize) -> &str {
    let t = m.text(i);
    if !m.is_masked(i) && plain_word(t.as_bytes()) {
        t
    } else {
        WILDCARD
    }
}

/// The tree key of a stored template token.
fn template_route_key(t: &str) -> &str {
    if t != WILDCARD && plain_word(t.as_bytes()) {
        t
    } else {
        WILDCARD
    }
}

/// Record one more value at an enumerated position. Returns (still enumerable, new word).
fn record_enum(
    vals: &mut Vec<(String, u64)>,
    word: &str,
    enumerable: bool,
    weight: u64,
    max: usize,
) -> (bool, bool) {
    if !enumerable {
        return (false, false);
    }
    match vals.iter_mut().find(|(v, _)| v == word) {
        Some(v) => {
            v.1 += weight;
            (true, false)
        }
        None => {
            vals.push((word.to_string(), weight));
            (vals.len() <= max, true)
        }
    }
}

fn parameters(e: &Entry, m: &Masked) -> Vec<String> {
    let n = e.flags.iter().filter(|&&f| f & PARAM != 0).count();
    let mut v = Vec::with_capacity(n);
    for (i, &f) in e.flags.iter().enumerate() {
        if f & PARAM != 0 && i < m.len() {
            v.push(m.original(i));
        }
    }
    v
}

/// Walk to the leaf of `m` (read only).
fn find_leaf<'a>(root: &'a FxMap<usize, Node>, levels: usize, m: &Masked) -> Option<&'a Node> {
    let mut node = root.get(&m.len())?;
    for i in 0..levels.min(m.len()) {
        let key = route_key(m, i);
        node = match node.children.get(key) {
            Some(n) => Some(n),
            None => node.children.get(WILDCARD),
        }?;
    }
    Some(node)
}

impl Miner {
    pub fn new(config: Config) -> Self {
        Miner {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: FxMap::default(),
            root: FxMap::default(),
            by_text: FxMap::default(),
            lru_head: NIL,
            lru_tail: NIL,
            next_id: 1,
            clock: 0,
            log: ChangeLog::default(),
            scratch: Masked::default(),
            exhaustive: false,
        }
    }

    /// This miner with its search indexes bypassed: every message is compared with every
    /// cluster of its group. Same results, slower; the oracle the indexes are tested against.
    #[doc(hidden)]
    pub fn exhaustive(mut self) -> Miner {
        self.exhaustive = true;
        self
    }

    /// Rebuild a miner from stored clusters (e.g. one database row each): ids, sizes, LRU
    /// order (`last_used`) and tree places are kept; the next id is one more than the
    /// largest. A cluster without a usable stored path is filed by its template. Duplicate
    /// ids keep the first; clusters over `config.max_clusters` are evicted (least recently
    /// used first) and reported by [`Miner::take_changes`].
    pub fn from_clusters(config: Config, clusters: impl IntoIterator<Item = Cluster>) -> Miner {
        let mut all: Vec<Cluster> = clusters.into_iter().collect();
        all.sort_by_key(|c| c.id);
        all.dedup_by_key(|c| c.id);
        let next_id = all.last().map_or(1, |c| c.id.saturating_add(1));
        let clock = all.iter().map(|c| c.last_used).max().unwrap_or(0);
        Miner::restore(config, all, next_id, clock)
    }

    /// Build from clusters sorted by id without duplicates.
    fn restore(config: Config, clusters: Vec<Cluster>, next_id: u64, clock: u64) -> Miner {
        let mut m = Miner::new(config);
        m.next_id = next_id.max(clusters.last().map_or(1, |c| c.id.saturating_add(1)));
        m.clock = clock.max(clusters.iter().map(|c| c.last_used).max().unwrap_or(0));
        let mut order: Vec<(u64, u64, u32)> = Vec::with_capacity(clusters.len());
        for mut c in clusters {
            let levels = m.levels().min(c.tokens.len());
            // A stored path is kept when each key is the token's key or `<*>` (a full
            // node); a path of another depth, or from an older routing rule, is rebuilt.
            let valid = c.path.len() == levels
                && c.path
                    .iter()
                    .zip(&c.tokens)
                    .all(|(k, t)| k == WILDCARD || k == template_route_key(t));
            if !valid {
                c.path = m.tree_path(
                    c.tokens[..levels].iter().map(|t| template_route_key(t)),
                    c.tokens.len(),
                );
            }
            let (id, last_used) = (c.id, c.last_used);
            let slot = m.alloc(Entry::new(c));
            order.push((last_used, id, slot));
            m.file(slot);
        }
        order.sort_unstable();
        for (_, _, slot) in order {
            m.lru_push(slot);
        }
        m.evict_over_cap();
        m
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn cluster(&self, id: u64) -> Option<&Cluster> {
        let slot = *self.by_id.get(&id)?;
        self.entry(slot).map(|e| &e.c)
    }

    /// All live clusters, by id.
    pub fn clusters(&self) -> Vec<&Cluster> {
        let mut v: Vec<&Cluster> = self.entries().map(|e| &e.c).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The id the next new cluster will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Let new clusters be numbered from `id` on (e.g. a block reserved from a database
    /// sequence, so that several miners never hand out the same id). Never goes below one
    /// more than the largest live id; returns the value in force.
    pub fn set_next_id(&mut self, id: u64) -> u64 {
        let floor = self
            .entries()
            .map(|e| e.c.id.saturating_add(1))
            .max()
            .unwrap_or(1);
        self.next_id = id.max(floor);
        self.next_id
    }

    /// What changed since the previous call (or since the miner was created or rebuilt by
    /// [`Miner::from_clusters`] / [`Miner::from_json`]). Memory held for this is bounded by
    /// the number of live clusters.
    pub fn take_changes(&mut self) -> Changes {
        let log = std::mem::take(&mut self.log);
        let mut changed: Vec<u64> = log.changed.into_iter().collect();
        changed.sort_unstable();
        let mut evicted = log.evicted;
        evicted.sort_unstable();
        let mut counts: Vec<(u64, u64)> = log.counts.into_iter().collect();
        counts.sort_unstable();
        Changes {
            changed,
            evicted,
            counts,
        }
    }

    /// Add a message: join the best cluster (updating its template) or open a new one.
    pub fn add(&mut self, message: &str) -> Match {
        let mut m = std::mem::take(&mut self.scratch);
        m.mask(
            message,
            self.config.max_line_len,
            self.config.mask_options(),
        );
        let r = self.add_masked(&m, 1);
        self.scratch = m;
        r
    }

    /// Add a message exactly like [`Miner::add`] (same clusters, templates and changes)
    /// and return only its cluster id: no template or parameter strings are built, for
    /// callers that need the id alone (a log monitor counting lines per template).
    pub fn add_id(&mut self, message: &str) -> u64 {
        let mut m = std::mem::take(&mut self.scratch);
        m.mask(
            message,
            self.config.max_line_len,
            self.config.mask_options(),
        );
        let (_, id, _) = self.insert(&m, 1);
        self.scratch = m;
        id
    }

    /// Find the cluster a message would join, without changing anything.
    pub fn match_only(&self, message: &str) -> Option<Match> {
        let opts = self.config.mask_options();
        with_masked(message, self.config.max_line_len, opts, |m| {
            let (slot, _) = self.search(m)?;
            let e = self.entry(slot)?;
            // Only a full match (every constant equal) counts when the template is not updated.
            let ok =
                e.c.tokens
                    .iter()
                    .enumerate()
                    .all(|(i, t)| t == WILDCARD || t == m.text(i));
            ok.then(|| Match {
                cluster_id: e.c.id,
                template: e.c.template_for(m),
                parameters: parameters(e, m),
                is_new: false,
            })
        })
    }

    /// Prefix-tree levels below the token count (`depth - 2`).
    fn levels(&self) -> usize {
        self.config.depth.saturating_sub(2)
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, slot: u32) -> Option<&mut Entry> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    fn add_masked(&mut self, m: &Masked, weight: u64) -> Match {
        let (slot, id, is_new) = self.insert(m, weight);
        match self.entry(slot) {
            Some(e) => Match {
                cluster_id: id,
                template: if e.c.enums.is_empty() {
                    e.template.clone()
                } else {
                    e.c.template_for(m)
                },
                parameters: parameters(e, m),
                is_new,
            },
            None => Match {
                cluster_id: id,
                template: String::new(),
                parameters: Vec::new(),
                is_new,
            },
        }
    }

    /// Add `m`: join the best cluster (updating its template) or open a new one. Returns
    /// the cluster's slot, its id and whether it is new.
    fn insert(&mut self, m: &Masked, weight: u64) -> (u32, u64, bool) {
        self.clock += 1;
        let clock = self.clock;
        if let Some((slot, exact)) = self.search(m) {
            if let Some(id) = self.join(slot, m, weight, clock, exact) {
                return (slot, id, false);
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        let n = m.len();
        let tokens: Vec<String> = (0..n).map(|i| m.text(i).to_string()).collect();
        let levels = self.levels().min(n);
        let path = self.tree_path((0..levels).map(|i| route_key(m, i)), n);
        let c = Cluster {
            id,
            tokens,
            size: weight,
            last_used: clock,
            enums: BTreeMap::new(),
            path,
        };
        let slot = self.alloc(Entry::new(c));
        self.file(slot);
        self.lru_push(slot);
        self.log.created.insert(id);
        self.log.changed.insert(id);
        *self.log.counts.entry(id).or_default() += weight;
        // the new cluster is the most recently used: never the one evicted
        self.evict_over_cap();
        (slot, id, true)
    }

    /// Add `m` to the cluster in `slot`: generalise its template, count, touch. Returns
    /// the cluster id. `exact`: `m` repeats every constant of the template (only
    /// enumerations can change).
    fn join(&mut self, slot: u32, m: &Masked, weight: u64, clock: u64, exact: bool) -> Option<u64> {
        let max_enum = self.config.max_enum_values;
        let e = self.slots.get_mut(slot as usize)?.as_mut()?;
        let c = &mut e.c;
        let size_before = c.size;
        let mut turned: Vec<(usize, u32)> = Vec::new();
        let mut enum_changed = false;
        let skip_all = exact && c.enums.is_empty();
        for (i, t) in c.tokens.iter_mut().enumerate() {
            let wild = e.flags[i] & WILD != 0;
            if skip_all || (exact && !wild) {
                continue;
            }
            let word = m.text(i);
            let enumerable = !m.is_masked(i);
            if wild {
                if c.enums.is_empty() {
                    continue;
                }
                if let Some(vals) = c.enums.get_mut(&i) {
                    let (keep, grew) = record_enum(vals, word, enumerable, weight, max_enum);
                    enum_changed |= grew || !keep;
                    if !keep {
                        c.enums.remove(&i);
                    }
                }
            } else if t.as_bytes() != m.text_bytes(i) {
                if max_enum >= 2 && enumerable {
                    let vals = vec![(std::mem::take(t), size_before), (word.to_string(), weight)];
                    c.enums.insert(i, vals);
                    enum_changed = true;
                }
                if e.flags[i] & (WILD | NOLETTER) == 0 {
                    turned.push((i, word_hash(t.as_bytes())));
                }
                *t = WILDCARD.to_string();
            }
        }
        let tpl_changed = !turned.is_empty()
            || c.tokens
                .iter()
                .zip(&e.flags)
                .any(|(t, f)| f & WILD == 0 && t == WILDCARD);
        c.size += weight;
        c.last_used = clock;
        let id = c.id;
        if tpl_changed {
            let (n, path) = (c.tokens.len(), c.path.clone());
            let old_key = e.text_key;
            e.refresh();
            let new_key = e.text_key;
            let bare = (0..e.flags.len()).all(|i| !e.posted(i));
            if let Some(leaf) = self.leaf_mut(n, &path) {
                for (i, h) in turned {
                    leaf.unpost(post_key(i, h), slot);
                }
                if bare && !leaf.bare.contains(&slot) {
                    leaf.bare.push(slot);
                }
            }
            self.unlist_text(old_key, slot);
            self.by_text.entry(new_key).or_default().push(slot);
        }
        if tpl_changed || enum_changed {
            self.log.changed.insert(id);
        }
        *self.log.counts.entry(id).or_default() += weight;
        self.lru_unlink(slot);
        self.lru_push(slot);
        Some(id)
    }

    /// The similarity of `m` to the template of `e` (see the module docs), or None when it
    /// is below the threshold or a rule forbids the merge. Returns (similarity, template
    /// wildcards, every constant equal).
    fn similarity(&self, e: &Entry, m: &Masked, wf: &mut WordFlags) -> Option<(f64, usize, bool)> {
        let tpl = &e.c.tokens;
        if tpl.len() != m.len() {
            return None;
        }
        let cfg = &self.config;
        let cw = cfg.compound_weight;
        let (mut num, mut den) = (0.0f64, 0.0f64);
        let mut word_diffs = 0;
        let mut const_diffs = 0;
        let n = tpl.len();
        for (i, t) in tpl.iter().enumerate() {
            // give up as soon as the threshold is out of reach (each remaining position
            // can add at most 1 to both sides)
            let rem = (n - i) as f64;
            if den > num && (num + rem) / (den + rem) + 1e-9 < cfg.sim_threshold {
                return None;
            }
            let tf = e.flags[i];
            if tf & WILD != 0 {
                if m.is_masked(i) || e.c.is_enum_value(i, m.text(i)) {
                    continue;
                }
                let mf = wf.get(m, i);
                if mf & NOLETTER != 0 {
                    continue;
                }
                let w = if mf & WORD != 0 { 1.0 } else { cw };
                num += w * cfg.wildcard_word_weight;
                den += w;
                continue;
            }
            let word = m.text_bytes(i);
            if t.as_bytes() == word {
                if tf & NOLETTER == 0 {
                    let w = if tf & WORD != 0 { 1.0 } else { cw };
                    num += w;
                    den += w;
                }
                continue;
            }
            const_diffs += 1;
            if tf & NOLETTER != 0 {
                continue;
            }
            if m.is_masked(i) {
                // a constant of the template holds a variable here
                den += if tf & WORD != 0 { 1.0 } else { cw };
                continue;
            }
            let mf = wf.get(m, i);
            if tf & WORD == 0 || mf & WORD == 0 {
                // a compound token on either side: presumed a variable
                den += cw;
                continue;
            }
            // two different plain words: the more lines repeated the template's word, the
            // stronger the evidence that it is a constant
            den += 1.0 + cfg.support_weight * (e.c.size as f64).ln();
            word_diffs += 1;
            if e.c.size >= 2 && (word_diffs > cfg.max_word_changes || i < cfg.lead_positions) {
                return None;
            }
            if cfg.split_keywords
                && ((tf & KEYWORD != 0 && mf & KEYWORD != 0) || is_word_variant(t, m.text(i)))
            {
                return None;
            }
        }
        let sim = if den - num < 1e-12 {
            1.0
        } else {
            num / (den + cfg.disagreement_prior)
        };
        (sim + 1e-9 >= cfg.sim_threshold).then_some((sim, e.wild, const_diffs == 0))
    }

    /// The best cluster for `m`: highest similarity, then one whose constants `m` all
    /// repeats, then fewest wildcards, then lowest id. Returns its slot and whether `m`
    /// repeats all its constants.
    fn search(&self, m: &Masked) -> Option<(u32, bool)> {
        if self.levels() == 0 && !self.exhaustive {
            // A template equal to the masked message is the best cluster: similarity 1,
            // every constant repeated, and any other such template has more wildcards.
            let key = text_key((0..m.len()).map(|i| m.text_bytes(i)));
            if let Some(slots) = self.by_text.get(&key) {
                let hit = slots
                    .iter()
                    .filter_map(|&s| self.entry(s).map(|e| (e.c.id, s, e)))
                    .filter(|(_, _, e)| {
                        e.c.tokens.len() == m.len()
                            && (0..m.len()).all(|i| e.c.tokens[i].as_bytes() == m.text_bytes(i))
                    })
                    .min_by_key(|(id, _, _)| *id);
                if let Some((_, slot, _)) = hit {
                    return Some((slot, true));
                }
            }
        }
        let leaf = &find_leaf(&self.root, self.levels(), m)?.leaf;
        let mut best: Option<(f64, bool, usize, u64, u32)> = None;
        let mut wf = WordFlags::new();
        let mut consider = |slot: u32, wf: &mut WordFlags| {
            let Some(e) = self.entry(slot) else {
                return;
            };
            let Some((sim, wild, exact)) = self.similarity(e, m, wf) else {
                return;
            };
            let id = e.c.id;
            let better = match best {
                None => true,
                Some((bs, bx, bw, bid, _)) => {
                    sim > bs + 1e-9
                        || ((sim - bs).abs() <= 1e-9
                            && ((exact && !bx)
                                || (exact == bx && (wild < bw || (wild == bw && id < bid)))))
                }
            };
            if better {
                best = Some((sim, exact, wild, id, slot));
            }
        };
        // A cluster that shares no constant with `m` has each of its constants with a letter
        // disagree, so it scores below the weight of a word under a wildcard; one without
        // such constants is in `bare`. Only a weight above the threshold needs a full scan.
        if self.exhaustive
            || leaf.members.len() <= LEAF_SCAN
            || self.config.wildcard_word_weight > self.config.sim_threshold + 1e-9
        {
            for &(_, slot) in &leaf.members {
                consider(slot, &mut wf);
            }
        } else {
            let mut cands: Vec<u32> = leaf.bare.clone();
            let mut common = false;
            for i in 0..m.len() {
                if m.is_masked(i) || wf.get(m, i) & NOLETTER != 0 {
                    continue;
                }
                if let Some(v) = leaf.postings.get(&post_key(i, wf.hash(m, i))) {
                    // A word that more than POSTING_SCAN clusters of the leaf share at this
                    // position tells them apart no better than a stop word in retrieval: it
                    // is skipped, and the newest LEAF_SCAN clusters are searched instead, so a
                    // leaf of thousands of clusters that share their words (every line a new
                    // template) costs a bounded search per line, not a scan of the leaf.
                    if v.len() <= POSTING_SCAN {
                        cands.extend(v.iter().copied());
                    } else {
                        common = true;
                    }
                }
            }
            if common {
                cands.extend(
                    leaf.members
                        .iter()
                        .rev()
                        .take(LEAF_SCAN)
                        .map(|&(_, slot)| slot),
                );
            }
            cands.sort_unstable();
            cands.dedup();
            for slot in cands {
                consider(slot, &mut wf);
            }
        }
        best.map(|b| (b.4, b.1))
    }

    /// The tree path for a new cluster with leading keys `keys` and `n` tokens: a key that
    /// would exceed `max_children` at its node becomes `<*>` (Drain's rule).
    fn tree_path<'k>(&self, keys: impl Iterator<Item = &'k str>, n: usize) -> Vec<String> {
        let max_children = self.config.max_children.max(1);
        let mut node = self.root.get(&n);
        keys.map(|k| {
            let chosen = match node {
                Some(nd) if !nd.children.contains_key(k) && nd.children.len() >= max_children => {
                    WILDCARD.to_string()
                }
                _ => k.to_string(),
            };
            node = node.and_then(|nd| nd.children.get(chosen.as_str()));
            chosen
        })
        .collect()
    }

    fn alloc(&mut self, e: Entry) -> u32 {
        let id = e.c.id;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(e);
                s
            }
            None => {
                self.slots.push(Some(e));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Put the cluster in `slot` into the tree at its stored path.
    fn file(&mut self, slot: u32) {
        let Some(e) = self.slots.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let mut node = self.root.entry(e.c.tokens.len()).or_default();
        for k in &e.c.path {
            node = node.children.entry(k.as_str().into()).or_default();
        }
        node.leaf.insert(e, slot);
        self.by_text.entry(e.text_key).or_default().push(slot);
    }

    fn unlist_text(&mut self, key: u64, slot: u32) {
        if let Some(v) = self.by_text.get_mut(&key) {
            v.retain(|&s| s != slot);
            if v.is_empty() {
                self.by_text.remove(&key);
            }
        }
    }

    fn leaf_mut(&mut self, n: usize, path: &[String]) -> Option<&mut Leaf> {
        let mut node = self.root.get_mut(&n)?;
        for k in path {
            node = node.children.get_mut(k.as_str())?;
        }
        Some(&mut node.leaf)
    }

    fn lru_push(&mut self, slot: u32) {
        let tail = self.lru_tail;
        if let Some(e) = self.entry_mut(slot) {
            e.prev = tail;
            e.next = NIL;
        }
        match self.entry_mut(tail) {
            Some(t) => t.next = slot,
            None => self.lru_head = slot,
        }
        self.lru_tail = slot;
    }

    fn lru_unlink(&mut self, slot: u32) {
        let Some((prev, next)) = self.entry(slot).map(|e| (e.prev, e.next)) else {
            return;
        };
        match self.entry_mut(prev) {
            Some(p) => p.next = next,
            None => self.lru_head = next,
        }
        match self.entry_mut(next) {
            Some(nx) => nx.prev = prev,
            None => self.lru_tail = prev,
        }
    }

    fn evict_over_cap(&mut self) {
        while self.len() > self.config.max_clusters.max(1) {
            let head = self.lru_head;
            if self.entry(head).is_none() {
                break;
            }
            self.remove_slot(head);
        }
    }

    fn remove_slot(&mut self, slot: u32) {
        self.lru_unlink(slot);
        let Some(e) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(slot);
        let id = e.c.id;
        self.by_id.remove(&id);
        if self.log.created.remove(&id) {
            self.log.changed.remove(&id);
        } else {
            self.log.changed.remove(&id);
            self.log.evicted.push(id);
        }
        self.log.counts.remove(&id);
        self.unlist_text(e.text_key, slot);
        // Walk only the cluster's own path; drop nodes left empty.
        fn prune(node: &mut Node, path: &[String], e: &Entry, slot: u32) -> bool {
            match path.split_first() {
                None => node.leaf.remove(e, slot),
                Some((k, rest)) => {
                    if node
                        .children
                        .get_mut(k.as_str())
                        .is_some_and(|ch| prune(ch, rest, e, slot))
                    {
                        node.children.remove(k.as_str());
                    }
                }
            }
            node.children.is_empty() && node.leaf.is_empty()
        }
        let n = e.c.tokens.len();
        if let Some(root) = self.root.get_mut(&n) {
            if prune(root, &e.c.path, &e, slot) {
                self.root.remove(&n);
            }
        }
    }

    /// Merge another miner's clusters into this one (e.g. states built on parallel workers).
    /// Each foreign cluster joins the most similar local cluster (templates are generalised as
    /// for a message) or is added as a new cluster. Returns foreign id -> local id.
    pub fn merge(&mut self, other: &Miner) -> HashMap<u64, u64> {
        let mut map = HashMap::new();
        let mut theirs: Vec<&Cluster> = other.entries().map(|e| &e.c).collect();
        theirs.sort_by_key(|c| c.last_used);
        let mut m = Masked::default();
        for c in theirs {
            m.set_tokens(c.tokens.iter().map(String::as_str));
            let r = self.add_masked(&m, c.size);
            map.insert(c.id, r.cluster_id);
        }
        map
    }

    /// The current template of `cluster_id` for `message` (enumerated positions filled in),
    /// used to label a batch with final templates.
    pub fn template_for(&self, cluster_id: u64, message: &str) -> Option<String> {
        let c = self.cluster(cluster_id)?;
        let opts = self.config.mask_options();
        Some(with_masked(message, self.config.max_line_len, opts, |m| {
            c.template_for(m)
        }))
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

#[derive(Serialize)]
struct StateRef<'a> {
    config: &'a Config,
    clusters: Vec<&'a Cluster>,
    next_id: u64,
    clock: u64,
}

#[derive(Deserialize)]
struct StateOwned {
    config: Config,
    /// A list, or the id-keyed map of states written before version 0.2.
    #[serde(deserialize_with = "list_or_map")]
    clusters: Vec<Cluster>,
    next_id: u64,
    clock: u64,
}

fn list_or_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cluster>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<Cluster>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of clusters or a map of id to cluster")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(c) = a.next_element()? {
                v.push(c);
            }
            Ok(v)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some((_, c)) = a.next_entry::<serde::de::IgnoredAny, Cluster>()? {
                v.push(c);
            }
            Ok(v)
        }
    }
    d.deserialize_any(V)
}

impl Serialize for Miner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StateRef {
            config: &self.config,
            clusters: self.clusters(),
            next_id: self.next_id,
            clock: self.clock,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Miner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Miner, D::Error> {
        let st = StateOwned::deserialize(d)?;
        let mut clusters = st.clusters;
        clusters.sort_by_key(|c| c.id);
        clusters.dedup_by_key(|c| c.id);
        let mut m = Miner::restore(st.config, clusters, st.next_id, st.clock);
        m.log = ChangeLog::default();
        Ok(m)
    }
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
