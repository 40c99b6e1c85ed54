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
//! * a letter-prefixed number the masker keeps (`u5`: one digit; `u13` is masked) is routed
//!   under `<*>`, and another number after the same letters (`u6`) is a parameter change, so
//!   `u5`, `u6`, `u13` share one template in any order;
//! * the number of clusters is bounded: the least recently used cluster is evicted;
//! * a leaf holding more than [`LEAF_SCAN`] clusters is not scanned whole: a message is
//!   compared with the clusters whose constant tokens it repeats exactly (a hash index per
//!   set of wildcard positions) and with the [`LEAF_SCAN`] newest clusters of the leaf, so
//!   a stream of distinct lines costs O(1) comparisons per line instead of O(clusters);
//! * the whole state is serde-serializable, can be rebuilt from its clusters alone (one
//!   database row per cluster, see [`Miner::from_clusters`] and [`Miner::take_changes`]),
//!   and two miners can be merged.

use crate::mask::{is_closing, is_opening, with_masked, Masked, WILDCARD};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Leaves with more clusters than this are searched through their index plus this many of
/// their newest clusters (see the module docs).
pub const LEAF_SCAN: usize = 32;

/// Most wildcard-position groups of one large leaf probed per message.
const MAX_GROUPS_PROBED: usize = 16;

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
            max_line_len: crate::mask::DEFAULT_MAX_LEN,
            split_keywords: true,
            max_word_changes: 1,
            max_enum_values: 4,
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
/// Template position flags: a `<*>`; a constant keyword.
const WILD: u8 = 1;
const KEYWORD: u8 = 2;
/// A letter-prefixed number (see [`id_shape`]); also a keyword.
const ID: u8 = 4;
/// In a message's lazily filled flags ([`WordFlags`]): the flags of this token are known.
const KNOWN: u8 = 8;
/// A template position that holds a `<*>` (alone or inside, `node-<*>`): a parameter.
const PARAM: u8 = 32;

/// Flags ([`KEYWORD`], [`ID`]) of a plain word.
fn word_flags(t: &str) -> u8 {
    let mut f = 0;
    if is_keyword(t) {
        f |= KEYWORD;
    }
    if id_shape(t.as_bytes()).is_some() {
        f |= ID;
    }
    f
}

/// The [`word_flags`] of a message's tokens, computed on first use: one message is compared
/// with many clusters, and most comparisons never look at these.
struct WordFlags {
    cache: [u8; 64],
    /// [`word_hash`] of the token, valid when [`HASHED`] is set in `cache`.
    hash: [u32; 64],
}

/// In [`WordFlags`]: the hash of this token is known.
const HASHED: u8 = 16;

impl WordFlags {
    fn new() -> WordFlags {
        WordFlags {
            cache: [0; 64],
            hash: [0; 64],
        }
    }

    /// Whether the keyword rule forbids `m` to join a cluster with this guard: the message
    /// holds another keyword (plain, not masked) at the guard's position.
    #[inline]
    fn conflicts(&mut self, m: &Masked, g: Guard) -> bool {
        let p = g.pos as usize;
        if g.pos == u8::MAX || p >= m.len() || m.is_masked(p) || self.get(m, p) & KEYWORD == 0 {
            return false;
        }
        let h = match self.cache.get_mut(p) {
            Some(c) if *c & HASHED != 0 => self.hash[p],
            Some(c) => {
                *c |= HASHED;
                self.hash[p] = word_hash(m.text_bytes(p));
                self.hash[p]
            }
            None => word_hash(m.text_bytes(p)),
        };
        h != g.hash
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
}

/// A live cluster with what the search needs precomputed.
#[derive(Debug, Clone)]
struct Entry {
    c: Cluster,
    /// Per template position: [`WILD`], or [`word_flags`] of a constant; and [`PARAM`].
    flags: Vec<u8>,
    /// Number of `<*>` template tokens.
    wild: usize,
    /// `c.template()`, kept.
    template: String,
    /// LRU neighbours (slots), oldest at the head.
    prev: u32,
    next: u32,
    /// Key in the leaf index (large leaves only).
    key: Option<IndexKey>,
}

impl Entry {
    fn new(c: Cluster) -> Entry {
        let mut e = Entry {
            c,
            flags: Vec::new(),
            wild: 0,
            template: String::new(),
            prev: NIL,
            next: NIL,
            key: None,
        };
        e.refresh();
        e
    }

    /// Recompute what depends on the template tokens.
    fn refresh(&mut self) {
        let toks = &self.c.tokens;
        self.flags = toks
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
    }

    fn index_key(&self) -> IndexKey {
        let wild: Vec<u32> = (0..self.flags.len())
            .filter(|&i| self.flags[i] & WILD != 0)
            .map(|i| i as u32)
            .collect();
        let consts = consts_hash(self.c.tokens.len(), &wild, |i| &self.c.tokens[i]);
        let guard = Guard::of(&self.c.tokens, &self.flags);
        IndexKey {
            wild,
            consts,
            guard,
        }
    }
}

/// Where a cluster sits in a large leaf's index: its wildcard positions and a hash of its
/// constant tokens, and its [`Guard`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexKey {
    wild: Vec<u32>,
    consts: u64,
    guard: Guard,
}

/// The first keyword of a template that the keyword rule applies to (not a letter-prefixed
/// number), kept beside the cluster's slot in a large leaf: a message holding a different
/// keyword there cannot join (see [`Miner::similarity`]), which is decided without reading
/// the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Guard {
    /// Position, or `u8::MAX` for none.
    pos: u8,
    hash: u32,
}

impl Guard {
    const NONE: Guard = Guard {
        pos: u8::MAX,
        hash: 0,
    };

    fn of(tokens: &[String], flags: &[u8]) -> Guard {
        flags
            .iter()
            .take(u8::MAX as usize)
            .position(|&f| f & (KEYWORD | ID) == KEYWORD)
            .map_or(Guard::NONE, |i| Guard {
                pos: i as u8,
                hash: word_hash(tokens[i].as_bytes()),
            })
    }
}

/// A 32-bit hash of one token.
fn word_hash(b: &[u8]) -> u32 {
    let mut h = FxHasher::default();
    h.write(b);
    (h.finish() >> 32) as u32
}

/// Hash of the tokens at the positions not in `wild` (sorted).
fn consts_hash<'a>(n: usize, wild: &[u32], tok: impl Fn(usize) -> &'a str) -> u64 {
    let mut h = FxHasher::default();
    let mut w = wild.iter().peekable();
    for i in 0..n {
        if w.peek().is_some_and(|&&x| x as usize == i) {
            w.next();
            continue;
        }
        tok(i).hash(&mut h);
    }
    h.finish()
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: FxMap<Box<str>, Node>,
    leaf: Leaf,
}

#[derive(Debug, Clone, Default)]
struct Leaf {
    /// (id, slot), ascending ids; used while the leaf is small.
    small: Vec<(u64, u32)>,
    big: Option<Box<BigLeaf>>,
}

#[derive(Debug, Clone, Default)]
struct BigLeaf {
    /// id -> (slot, guard)
    members: BTreeMap<u64, (u32, Guard)>,
    /// wildcard positions -> constants hash -> slots
    groups: BTreeMap<Vec<u32>, FxMap<u64, Vec<u32>>>,
}

impl Leaf {
    fn len(&self) -> usize {
        match &self.big {
            Some(b) => b.members.len(),
            None => self.small.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BigLeaf {
    /// File (or re-file) member `id` in `slot` under `key`.
    fn index(&mut self, id: u64, slot: u32, key: &IndexKey) {
        self.members.insert(id, (slot, key.guard));
        let group = match self.groups.get_mut(&key.wild) {
            Some(g) => g,
            None => self.groups.entry(key.wild.clone()).or_default(),
        };
        group.entry(key.consts).or_default().push(slot);
    }

    fn unindex(&mut self, slot: u32, key: &IndexKey) {
        let Some(g) = self.groups.get_mut(&key.wild) else {
            return;
        };
        if let Some(v) = g.get_mut(&key.consts) {
            v.retain(|&s| s != slot);
            if v.is_empty() {
                g.remove(&key.consts);
            }
        }
        if g.is_empty() {
            self.groups.remove(&key.wild);
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
    lru_head: u32,
    lru_tail: u32,
    next_id: u64,
    clock: u64,
    log: ChangeLog,
    scratch: Masked,
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

/// A "keyword" is a constant token whose change changes the event: anything with a letter
/// that is not a plain lower-case word (`Started`, `RUNNING`, `alt0`, `z+`, `dcbf....<*>`).
/// Plain lower-case words (user names, hosts) may become parameters.
fn is_keyword(t: &str) -> bool {
    let b = t.as_bytes();
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b':' | b',' | b'.' | b';' | b'!' | b'?') {
        end -= 1;
    }
    // the same test in one pass over bytes on ASCII
    let (mut any, mut all) = (0u8, C_LOWER);
    for &c in &b[..end] {
        let k = BYTE_CLASS[c as usize];
        any |= k;
        all &= k;
    }
    if any & C_NON_ASCII == 0 {
        return any & C_ALPHA != 0 && all & C_LOWER == 0;
    }
    // only ASCII bytes were cut, so `end` is a character boundary
    let core = t.get(..end).unwrap_or(t);
    core.chars().any(|c| c.is_alphabetic())
        && !core.chars().all(|c| c.is_lowercase() && c.is_alphabetic())
}

const C_ALPHA: u8 = 1;
const C_LOWER: u8 = 2;
const C_NON_ASCII: u8 = 4;

/// [`is_keyword`]'s byte classes.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c >= 0x80 {
            C_NON_ASCII
        } else if c.is_ascii_lowercase() {
            C_ALPHA | C_LOWER
        } else if c.is_ascii_alphabetic() {
            C_ALPHA
        } else {
            0
        };
        b += 1;
    }
    t
};

/// A letter-prefixed number (`u5`, `n7`, `(alt0),`): optional opening brackets/quotes,
/// ASCII letters, ASCII digits, optional closing punctuation. Returns (brackets + letters,
/// closing punctuation). The masker masks such a token from two digits on (`u13`) but keeps
/// one digit (`ssh2`, `alt0` are often names), so the miner treats the single-digit form as
/// a possible variable: it is routed under `<*>` and a different number after the same
/// letters is a parameter change, not a keyword change. Same family: equal results.
fn id_shape(t: &[u8]) -> Option<(&[u8], &[u8])> {
    // most words fail here: no digit or closing punctuation at the end
    let last = *t.last()?;
    if !(last.is_ascii_digit() || is_closing(last)) {
        return None;
    }
    let lead = t.iter().take_while(|&&c| is_opening(c)).count();
    let letters = t[lead..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let digits = t[lead + letters..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let rest = &t[lead + letters + digits..];
    (letters > 0 && digits > 0 && rest.iter().all(|&c| is_closing(c)))
        .then(|| (&t[..lead + letters], rest))
}

/// Both tokens are letter-prefixed numbers with the same letters (see [`id_shape`]).
fn same_id_family(a: &[u8], b: &[u8]) -> bool {
    matches!((id_shape(a), id_shape(b)), (Some(x), Some(y)) if x == y)
}

/// The tree key of message token `i`: `<*>` for a variable or a letter-prefixed number.
fn route_key(m: &Masked, i: usize) -> &str {
    if m.is_masked(i) || id_shape(m.text_bytes(i)).is_some() {
        WILDCARD
    } else {
        m.text(i)
    }
}

/// Two plain words where one extends the other (`failure`/`failures`): a different word form.
fn is_word_variant(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches([':', ',', '.', ';']);
    let b = b.trim_end_matches([':', ',', '.', ';']);
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 3 && long.starts_with(short)
}

/// Record one more value at an enumerated position. Returns (still enumerable, new word).
fn record_enum(
    vals: &mut Vec<(String, u64)>,
    word: &str,
    masked: bool,
    weight: u64,
    max: usize,
) -> (bool, bool) {
    if masked {
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
            lru_head: NIL,
            lru_tail: NIL,
            next_id: 1,
            clock: 0,
            log: ChangeLog::default(),
            scratch: Masked::default(),
        }
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
            fn key(t: &String) -> &str {
                if id_shape(t.as_bytes()).is_some() {
                    WILDCARD
                } else {
                    t
                }
            }
            if c.path.len() != levels {
                c.path = m.tree_path(c.tokens[..levels].iter().map(key), c.tokens.len());
            } else if c.path.iter().any(|k| id_shape(k.as_bytes()).is_some()) {
                // filed before letter-prefixed numbers were routed under `<*>`
                c.path = c.path.iter().map(|k| key(k).to_string()).collect();
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
        m.mask(message, self.config.max_line_len);
        let r = self.add_masked(&m, 1);
        self.scratch = m;
        r
    }

    /// Add a message exactly like [`Miner::add`] (same clusters, templates and changes)
    /// and return only its cluster id: no template or parameter strings are built, for
    /// callers that need the id alone (a log monitor counting lines per template).
    pub fn add_id(&mut self, message: &str) -> u64 {
        let mut m = std::mem::take(&mut self.scratch);
        m.mask(message, self.config.max_line_len);
        let (_, id, _) = self.insert(&m, 1);
        self.scratch = m;
        id
    }

    /// Find the cluster a message would join, without changing anything.
    pub fn match_only(&self, message: &str) -> Option<Match> {
        with_masked(message, self.config.max_line_len, |m| {
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

    fn levels(&self) -> usize {
        self.config.depth.saturating_sub(2).max(1)
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
        let mut tpl_changed = false;
        let mut enum_changed = false;
        let skip_all = exact && c.enums.is_empty();
        for (i, t) in c.tokens.iter_mut().enumerate() {
            let wild = e.flags[i] & WILD != 0;
            if skip_all || (exact && !wild) {
                continue;
            }
            let word = m.text(i);
            let masked = m.is_masked(i);
            if wild {
                if c.enums.is_empty() {
                    continue;
                }
                if let Some(vals) = c.enums.get_mut(&i) {
                    let (keep, grew) = record_enum(vals, word, masked, weight, max_enum);
                    enum_changed |= grew || !keep;
                    if !keep {
                        c.enums.remove(&i);
                    }
                }
            } else if t.as_bytes() != m.text_bytes(i) {
                if max_enum >= 2 && !masked && !same_id_family(t.as_bytes(), m.text_bytes(i)) {
                    let vals = vec![(std::mem::take(t), size_before), (word.to_string(), weight)];
                    c.enums.insert(i, vals);
                    enum_changed = true;
                }
                *t = WILDCARD.to_string();
                tpl_changed = true;
            }
        }
        c.size += weight;
        c.last_used = clock;
        let id = c.id;
        if tpl_changed {
            let old_key = e.key.take();
            e.refresh();
            if let Some(old) = old_key {
                self.reindex(slot, &old);
            }
        }
        if tpl_changed || enum_changed {
            self.log.changed.insert(id);
        }
        *self.log.counts.entry(id).or_default() += weight;
        self.lru_unlink(slot);
        self.lru_push(slot);
        Some(id)
    }

    /// Drain's similarity (He et al. 2017, "simSeq"), with the masked-token and keyword rules.
    /// Returns None when the keyword rule forbids the merge.
    /// Returns (similarity, template wildcards, every constant equal).
    fn similarity(&self, e: &Entry, m: &Masked, wf: &mut WordFlags) -> Option<(f64, usize, bool)> {
        let tpl = &e.c.tokens;
        if tpl.len() != m.len() {
            return None;
        }
        if tpl.is_empty() {
            return Some((1.0, 0, true));
        }
        let cfg = &self.config;
        let n = tpl.len() as f64;
        let mut sim = 0.0;
        let mut lost = 0.0;
        let mut word_diffs = 0;
        let mut const_diffs = 0;
        for (i, t) in tpl.iter().enumerate() {
            // give up as soon as the threshold is out of reach
            if (n - lost) / n + 1e-9 < cfg.sim_threshold {
                return None;
            }
            let word = m.text_bytes(i);
            if e.flags[i] & WILD != 0 {
                let w = if m.is_masked(i) || e.c.is_enum_value(i, m.text(i)) {
                    1.0
                } else {
                    cfg.wildcard_word_weight
                };
                sim += w;
                lost += 1.0 - w;
            } else if t.as_bytes() == word {
                sim += 1.0;
            } else if m.is_masked(i)
                || (e.flags[i] & ID != 0
                    && wf.get(m, i) & ID != 0
                    && same_id_family(t.as_bytes(), word))
            {
                lost += 1.0;
                const_diffs += 1;
            } else {
                lost += 1.0;
                word_diffs += 1;
                const_diffs += 1;
                let word = m.text(i);
                if cfg.split_keywords
                    && ((e.flags[i] & KEYWORD != 0 && wf.get(m, i) & KEYWORD != 0)
                        || is_word_variant(t, word))
                {
                    return None;
                }
                if word_diffs > cfg.max_word_changes {
                    return None;
                }
            }
        }
        Some((sim / n, e.wild, const_diffs == 0))
    }

    /// The best cluster for `m`: highest similarity, then fewest wildcards, then lowest id.
    /// Returns its slot and whether `m` repeats all its constants.
    fn search(&self, m: &Masked) -> Option<(u32, bool)> {
        let leaf = &find_leaf(&self.root, self.levels(), m)?.leaf;
        let mut best: Option<(f64, usize, u64, u32, bool)> = None;
        let mut wf = WordFlags::new();
        let mut consider = |slot: u32, wf: &mut WordFlags| {
            let Some(e) = self.entry(slot) else {
                return;
            };
            let Some((sim, wild, exact)) = self.similarity(e, m, wf) else {
                return;
            };
            if sim + 1e-9 < self.config.sim_threshold {
                return;
            }
            let id = e.c.id;
            let better = match best {
                None => true,
                Some((bs, bw, bid, _, _)) => {
                    sim > bs + 1e-9
                        || ((sim - bs).abs() <= 1e-9 && (wild < bw || (wild == bw && id < bid)))
                }
            };
            if better {
                best = Some((sim, wild, id, slot, exact));
            }
        };
        match &leaf.big {
            None => leaf
                .small
                .iter()
                .for_each(|&(_, slot)| consider(slot, &mut wf)),
            Some(big) => {
                // clusters whose constants the message repeats exactly
                for (wild, by_consts) in big.groups.iter().take(MAX_GROUPS_PROBED) {
                    let h = consts_hash(m.len(), wild, |i| m.text(i));
                    if let Some(slots) = by_consts.get(&h) {
                        slots.iter().for_each(|&s| consider(s, &mut wf));
                    }
                }
                let split = self.config.split_keywords;
                for &(slot, guard) in big.members.values().rev().take(LEAF_SCAN) {
                    if !(split && wf.conflicts(m, guard)) {
                        consider(slot, &mut wf);
                    }
                }
            }
        }
        best.map(|b| (b.3, b.4))
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
        let (id, n) = (e.c.id, e.c.tokens.len());
        let mut node = self.root.entry(n).or_default();
        for k in &e.c.path {
            node = node.children.entry(k.as_str().into()).or_default();
        }
        let leaf = &mut node.leaf;
        match &mut leaf.big {
            Some(big) => {
                let key = e.index_key();
                big.index(id, slot, &key);
                if let Some(e) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
                    e.key = Some(key);
                }
            }
            None => {
                let pos = leaf.small.partition_point(|&(x, _)| x < id);
                leaf.small.insert(pos, (id, slot));
                if leaf.small.len() > LEAF_SCAN {
                    // grow into an indexed leaf
                    let mut big = BigLeaf::default();
                    for &(cid, s) in &leaf.small {
                        if let Some(e) = self.slots.get_mut(s as usize).and_then(Option::as_mut) {
                            let key = e.index_key();
                            big.index(cid, s, &key);
                            e.key = Some(key);
                        }
                    }
                    leaf.small = Vec::new();
                    leaf.big = Some(Box::new(big));
                }
            }
        }
    }

    /// Move the cluster in `slot` to the index entry of its new template.
    fn reindex(&mut self, slot: u32, old: &IndexKey) {
        let Some(e) = self.entry(slot) else {
            return;
        };
        let key = e.index_key();
        let (id, n, path) = (e.c.id, e.c.tokens.len(), e.c.path.clone());
        if let Some(big) = self.leaf_mut(n, &path).and_then(|l| l.big.as_mut()) {
            big.unindex(slot, old);
            big.index(id, slot, &key);
        }
        if let Some(e) = self.entry_mut(slot) {
            e.key = Some(key);
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
        // Walk only the cluster's own path; drop nodes left empty.
        fn prune(
            node: &mut Node,
            path: &[String],
            id: u64,
            slot: u32,
            key: Option<&IndexKey>,
        ) -> bool {
            match path.split_first() {
                None => {
                    let leaf = &mut node.leaf;
                    match &mut leaf.big {
                        Some(big) => {
                            big.members.remove(&id);
                            if let Some(k) = key {
                                big.unindex(slot, k);
                            }
                        }
                        None => {
                            if let Ok(p) = leaf.small.binary_search_by_key(&id, |&(x, _)| x) {
                                leaf.small.remove(p);
                            }
                        }
                    }
                    if leaf.is_empty() {
                        leaf.big = None;
                    }
                }
                Some((k, rest)) => {
                    if node
                        .children
                        .get_mut(k.as_str())
                        .is_some_and(|ch| prune(ch, rest, id, slot, key))
                    {
                        node.children.remove(k.as_str());
                    }
                }
            }
            node.children.is_empty() && node.leaf.is_empty()
        }
        let n = e.c.tokens.len();
        if let Some(root) = self.root.get_mut(&n) {
            if prune(root, &e.c.path, id, slot, e.key.as_ref()) {
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
        Some(with_masked(message, self.config.max_line_len, |m| {
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
