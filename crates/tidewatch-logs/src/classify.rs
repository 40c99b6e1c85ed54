//! Rule-based classification of error messages (ordered rules, first match wins; Rust
//! `regex` runs in time linear in the input), and a small multinomial naive Bayes fallback
//! trained on labelled (message, label) pairs.

use crate::mask::{template_of, WILDCARD};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Connection,
    Timeout,
    Authentication,
    Resource,
    DataQuality,
    Schema,
    Upstream,
    Configuration,
    Syntax,
    Lock,
    Unknown,
}

impl Category {
    /// Every category, in the order of the default rules' documentation.
    pub const ALL: [Category; 11] = [
        Category::Connection,
        Category::Timeout,
        Category::Authentication,
        Category::Resource,
        Category::DataQuality,
        Category::Schema,
        Category::Upstream,
        Category::Configuration,
        Category::Syntax,
        Category::Lock,
        Category::Unknown,
    ];

    /// The category named `name` (as [`Category::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Connection => "connection",
            Category::Timeout => "timeout",
            Category::Authentication => "authentication",
            Category::Resource => "resource",
            Category::DataQuality => "data_quality",
            Category::Schema => "schema",
            Category::Upstream => "upstream",
            Category::Configuration => "configuration",
            Category::Syntax => "syntax",
            Category::Lock => "lock",
            Category::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// The severity named `name` (info, warning, error, critical).
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One rule: case-insensitive regex, category, severity and the confidence it earns.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub pattern: Regex,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub category: Category,
    pub severity: Severity,
    /// The rule that fired (`None` for unknown or a naive Bayes answer).
    pub rule_id: Option<String>,
    pub confidence: f64,
}

impl Classification {
    fn unknown() -> Self {
        Classification {
            category: Category::Unknown,
            severity: Severity::Info,
            rule_id: None,
            confidence: 0.0,
        }
    }
}

/// Ordered rules: the first match wins, so more specific rules come first.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Built on first use, dropped when a rule is added.
    prefilter: OnceLock<Prefilter>,
}

impl RuleSet {
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Append a rule (matched case-insensitively).
    pub fn push(
        &mut self,
        id: &str,
        pattern: &str,
        category: Category,
        severity: Severity,
        confidence: f64,
    ) -> Result<(), crate::Error> {
        let re = RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|source| crate::Error::Rule {
                id: id.to_string(),
                source,
            })?;
        self.prefilter = OnceLock::new();
        self.rules.push(Rule {
            id: id.to_string(),
            pattern: re,
            category,
            severity,
            confidence: confidence.clamp(0.0, 1.0),
        });
        Ok(())
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The shipped ruleset for ETL / application errors. Order encodes precedence:
    /// lock before timeout (`lock wait timeout`); explicit configuration errors (exception
    /// names, unset environment variables, missing drivers/modules) before data quality
    /// (`invalid value for parameter`); data quality before syntax (`invalid input syntax for
    /// type integer` is a cast error); rate limits before resource (`rate limit exceeded`);
    /// resource before authentication (`403 Quota exceeded`); authentication before
    /// connection; an explicit refused/reset connection before timeout
    /// (`ServerSelectionTimeoutError: ... Connection refused`).
    /// Scored on `tests/data/etl_errors_*.csv` by `tests/etl_labelled.rs`.
    pub fn default_rules() -> Result<Self, crate::Error> {
        use Category::*;
        use Severity::*;
        let rules: &[(&str, &str, Category, Severity, f64)] = &[
            ("lock.deadlock", r"\bdeadlock", Lock, Error, 0.95),
            (
                "lock.wait",
                r"lock wait timeout|could not obtain lock|lock (?:request )?time ?out|unable to acquire (?:a )?lock|could not serialize access|serialization failure|lock not available|(?:acquire|acquiring|obtain|obtaining|take|taking|get|getting|create|creating) (?:an? |the )?(?:\S+ ){0,2}?lock\b|waiting for (?:an? |the )?\w*lock\b|(?:table|database|row|relation|file|resource|record|object)\b(?: \S+){0,3}? (?:is|are) (?:currently |already )?locked\b|lock\b(?: \S+)? (?:is )?already (?:held|taken|acquired)|already holds? (?:the |a )?lock|lock has not (?:yet )?been released|\w*lock ?exception|concurrent ?(?:update|append|commit|modification|transaction|write)|write ?conflict|updated or deleted by another transaction|\.lock\b.{0,4}file exists",
                Lock,
                Error,
                0.9,
            ),
            (
                "config.specific",
                r"\w*config\w*(?:exception|error)\b|keyerror: ['\x22](?-i:[A-Z][A-Z0-9]*_[A-Z0-9_]+)['\x22]|\bconn(?:ection)?_id\b|env(?:ironment)? ?var(?:iable)?s?\b.{0,40}?(?:not (?:set|provided|defined|found)|required|missing)|(?:missing|required|undefined|unset) (?:required )?(?:config|configuration|setting|environment variable|env var|option|parameter|property)|(?:unrecognized|unknown|invalid|unsupported) (?:configuration |config )?(?:parameter|option|setting|property|executor|profile|dialect)\b|invalid value for (?:configuration|config|parameter|option|setting|'-)|for configuration \S+:|could not find (?:a |the )?(?:profile|package|config\w*|settings)|profile named|\bdbt deps\b|master url|no suitable driver|driver (?:class )?not found|classnotfoundexception|no module named|modulenotfounderror|cannot import name|can't load plugin|nosuchmoduleerror|no filesystem for scheme|wrong fs\b|(?:url|uri|dsn|connection string)\b.{0,20}(?:malformed|invalid|not supported)|(?:could not parse|invalid|malformed) (?:\S+ )?(?:url|uri|dsn|connection string)\b|scheme \S+ is not supported|must specify (?:a |an |the )?\w+|noregionerror|\bis not set\b|must be (?:set|specified|provided|configured)\b|variable \S+ does not exist|secret \S+ not found|key \S+ in secret|failed to pull image|imagepullbackoff|errimagepull|is not one of\b|not a (?:known|valid|supported) (?:executor|option|value|setting|parameter|choice)|no such option|must be an? (?:list|string|dict|mapping|integer|number|boolean|bool)\b|no such file or directory: \S*\.(?:toml|ya?ml|ini|conf|cfg|env|properties)\b|not configured|misconfigur",
                Configuration,
                Error,
                0.8,
            ),
            (
                "dq.not_null",
                r"null value in column|violates not-null constraint|cannot be null|must not be null|null constraint|unexpected null|\bnull (?:primary )?keys?\b|\bnan values?\b",
                DataQuality,
                Error,
                0.9,
            ),
            (
                "dq.duplicate",
                r"duplicate (?:key|entry|entries|rows?|records?|values?)|unique constraint|uniqueness violation|already exists in (?:the )?(?:target|index)",
                DataQuality,
                Error,
                0.9,
            ),
            (
                "dq.constraint",
                r"violates (?:foreign key|check|exclusion) constraint|constraint violation|integrity constraint|foreign key",
                DataQuality,
                Error,
                0.85,
            ),
            (
                "dq.cast",
                r"invalid input (?:syntax for|value for)|cannot (?:cast|convert|coerce)|cannot be (?:cast|converted|parsed)|could not (?:convert|parse)|invalid literal for|numberformatexception|failed to parse|parse ?error:? (?:value|date|number|field)|invalid (?:date|timestamp|number|numeric|datetime|value)|incorrect \w+ value|does not match (?:the )?(?:format|pattern)|value too long|(?:value|int|integer|smallint|bigint|numeric|number|timestamp|date|float|double|decimal) out of range|field overflow|numeric overflow|data truncat|division by zero|malformed|schema mismatch in row|unexpected value|codec can't (?:decode|encode)|unicode(?:de|en)codeerror|invalid byte sequence|invalid continuation byte|error tokenizing data|expected \d+ fields|missing data for column|extra data after|jsondecodeerror|json ?parse ?exception|invalid json",
                DataQuality,
                Error,
                0.8,
            ),
            (
                "dq.check",
                r"\b(?:data|quality|dq|freshness|row count|count|validation|expectation|uniqueness)\b(?: check)?(?: \S+){0,2}? failed|failure in test|(?:rows?|records?|lines?) (?:\S+ )?(?:was |were )?rejected|rejected (?:rows?|records?)|quarantin",
                DataQuality,
                Error,
                0.75,
            ),
            (
                "syntax.sql",
                r"syntax error|unexpected token|unexpected end of (?:input|statement|file)|unexpected (?:eof|indent)|\bsyntaxerror\b|parse error at|mismatched input|incorrect syntax|error in your sql syntax|unterminated (?:quoted|string|dollar|comment|subpattern)|zero-length delimited identifier|cannot recognize input|indentationerror|taberror|templatesyntaxerror|expected token|sql command not properly ended|missing (?:expression|right parenthesis|left parenthesis|keyword)|parseexception|parsingexception|parsererror|scannererror|parseerror",
                Syntax,
                Error,
                0.9,
            ),
            (
                "schema.missing",
                r"(?:relation|table|view|column|schema|field|attribute|index|database|type|function|operator|object|sequence|source|model)\b(?: \S+){0,3}? (?:does not exist|doesn't exist|not found|was not found|could not be found|cannot be resolved)|no such (?:table|column|field|struct field)|unknown (?:column|table|field)|undefined (?:column|table)|(?:table|column) not found|missing (?:column|table|field)|has no (?:column|field)|tablenotfound|nosuchtable|analysisexception: (?:table|path)|cannot resolve|unresolved[ _](?:column|attribute|reference|routine)|invalid identifier|keyerror: ['\x22](?-i:[a-z_])|not in index",
                Schema,
                Error,
                0.9,
            ),
            (
                "schema.mismatch",
                r"schema (?:mismatch|does not match|is incompatible)|incompatible with an? (?:earlier|previous|existing) schema|(?:more|fewer) (?:expressions|columns|values) than (?:target )?columns|column count doesn't match|is of type \S+ but expression|has changed type|specified more than once|(?:relation|table|view|column|schema|index|type|function)\b(?: \S+){0,3}? already exists|length mismatch|avrotypeexception|found \w+, expecting \w+",
                Schema,
                Error,
                0.85,
            ),
            (
                "upstream.throttle",
                r"too many requests|\b429\b|rate ?limit|throttl|reduce (?:your |the )?request rate|request_limit_exceeded|calls per second",
                Upstream,
                Warning,
                0.8,
            ),
            (
                "resource.memory",
                r"out of memory|outofmemory|\boom\b|oomkill|memory limit|cannot allocate memory|unable to allocate|java heap space|gc overhead limit|killed process|memoryerror|container killed .* memory|memory ?pressure|native thread",
                Resource,
                Critical,
                0.9,
            ),
            (
                "resource.disk",
                r"no space left|enospc|disk (?:is )?full|disk quota|quota exceeded|exceeded (?:its |the |your )?quota|\w*quotaexceeded|too many open files|too many (?:clients|connections)|connection slots|insufficient (?:disk|storage|memory|resources|cpu|ephemeral)|low on (?:resource|memory|disk|space)|resources? (?:exhausted|exceeded)|resources? (?:temporarily )?unavailable|(?:memory|disk|storage|space|file|size|cpu|thread) limit exceeded|out of (?:disk|space)|is full\b|temp_file_limit|(?:pool|slots?) (?:is |are )?exhausted|disk usage|\bevicted\b",
                Resource,
                Critical,
                0.85,
            ),
            (
                "auth.failed",
                r"authentication failed|auth(?:entication)? fail|failed to authenticate|unable to authenticate|invalid (?:credentials|password|api key|token|jwt|signature|grant|client)|invalid_(?:grant|client|token)|password authentication|unauthori[sz]ed|\b401\b|login failed|incorrect (?:username|user name|password)|bad credentials|access token (?:expired|invalid)|expired ?(?:token|credentials|signature)|(?:token|credentials|signature|password)\b(?: \S+){0,4}? (?:has |have |is |are )?(?:expired|invalid|revoked)\b|credentials?error|no credentials|(?:locate|find|load|determine) credentials|signaturedoesnotmatch|signature (?:\S+ ){0,2}does not match|invalid ?access ?key|pg_hba\.conf|not permitted to log ?in|certificate verify failed",
                Authentication,
                Error,
                0.9,
            ),
            (
                "auth.permission",
                r"permission denied|access denied|forbidden|\b403\b|not authori[sz]ed|insufficient privilege|must be owner|not permitted|accessdenied|does not have (?:\S+ ){0,2}(?:permission|access)",
                Authentication,
                Error,
                0.85,
            ),
            (
                "connection.refused",
                r"connection (?:\S+ ){0,2}?(?:refused|reset)|econnrefused|econnreset|connectexception|network (?:is )?unreachable|no route to host",
                Connection,
                Error,
                0.85,
            ),
            (
                "upstream.gateway",
                r"bad gateway|gateway time-?out|no healthy upstream|upstream connect error",
                Upstream,
                Error,
                0.8,
            ),
            (
                "timeout.generic",
                r"timed? ?out|timeout|deadline exceeded|took too long|statement_timeout|read timeout|exceeded (?:its |the )?(?:\w+ ){0,2}?(?:runtime|run time|execution time|time limit|duration)|time limit|did not (?:finish|complete|respond) (?:with)?in|running longer than|took longer than",
                Timeout,
                Error,
                0.8,
            ),
            (
                "upstream.http",
                r"\b50[0234]\b|\b52\d\b|internal ?server ?error|internal ?error|service (?:is )?(?:currently |temporarily )?(?:unavailable|down)|server unavailable|overloaded|upstream|api ?(?:error|returned|call failed)|(?:api|service|server|endpoint|host|sftp) returned|returned an? (?:empty|incomplete|invalid|bad|error)|remote (?:service|server|host) (?:returned|error)|dependency (?:failed|unavailable)|external (?:service|task|job|dag)|has not arrived|not (?:yet )?arrived|outage|\bsync\b(?: \S+){0,4}? failed",
                Upstream,
                Error,
                0.75,
            ),
            (
                "connection.network",
                r"connection (?:refused|reset|closed|aborted|lost|failed|error)|could not connect|unable to connect|failed to connect|cannot connect|couldn't connect|connect to \S+ failed|network (?:is )?unreachable|no route to host|host (?:not found|unreachable)|name or service not known|unknown ?host|no such host|broken pipe|ssl (?:error|handshake|syscall)|sslerror|wrong version number|socket (?:error|closed|exception)|socketexception|eof (?:detected|occurred)|eofexception|end of stream|server closed the connection|could not translate host name|name resolution|lost connection|communications link|could not be established|\bdisconnected\b|terminating connection|connection (?:attempt|already) (?:failed|closed)|i/o error|\bio exception|connection ?error|netexception|brokers? (?:is |are )?(?:down|not available|unavailable)",
                Connection,
                Error,
                0.85,
            ),
            (
                "config.missing",
                r"(?:missing|undefined|unset|required) (?:config|configuration|setting|environment variable|env var|option|parameter|property)|(?:config|configuration) (?:error|file not found|is invalid|invalid)|invalid (?:config|configuration|setting|option|parameter)|unknown (?:option|setting|parameter|configuration)|no such (?:option|setting)|environment variable \S+ (?:is )?not set|not configured|misconfigur",
                Configuration,
                Error,
                0.8,
            ),
        ];
        let mut set = RuleSet::new();
        for (id, re, cat, sev, conf) in rules {
            set.push(id, re, *cat, *sev, *conf)?;
        }
        Ok(set)
    }

    /// Classify one message: the first matching rule, else `unknown` with confidence 0.
    pub fn classify(&self, message: &str) -> Classification {
        // Rules in order; on ASCII text a rule is tried only when the message holds one of
        // the literals every match of that rule contains (see `Prefilter`), which is exact.
        let pf = self.prefilter.get_or_init(|| Prefilter::build(&self.rules));
        let candidates = pf.candidates(message);
        for (k, r) in self.rules.iter().enumerate() {
            let maybe = match candidates {
                Some(bits) => k >= 128 || pf.always[k] || bits >> k & 1 == 1,
                None => true,
            };
            if maybe && r.pattern.is_match(message) {
                return Classification {
                    category: r.category,
                    severity: r.severity,
                    rule_id: Some(r.id.clone()),
                    confidence: r.confidence,
                };
            }
        }
        Classification::unknown()
    }

    /// Rules first; when no rule fires, the naive Bayes model (its category must be one of
    /// the [`Category`] names, otherwise `unknown`).
    pub fn classify_with_fallback(&self, message: &str, nb: &NaiveBayes) -> Classification {
        let c = self.classify(message);
        if c.category != Category::Unknown {
            return c;
        }
        match nb.predict(message) {
            Some((label, conf)) => {
                let cat: Category = serde_json::from_value(serde_json::Value::String(label))
                    .unwrap_or(Category::Unknown);
                Classification {
                    category: cat,
                    severity: Severity::Error,
                    rule_id: None,
                    confidence: if cat == Category::Unknown { 0.0 } else { conf },
                }
            }
            None => c,
        }
    }
}

/// For each rule, a set of literals one of which (ASCII case-insensitively) occurs in
/// every ASCII text the rule matches; one Aho-Corasick scan (A. V. Aho, M. J. Corasick,
/// "Efficient string matching", CACM 1975) finds the rules worth running. The sets come
/// from the parsed pattern as in the "necessary factors" analysis of trigram indexes
/// (R. Cox, "Regular Expression Matching with a Trigram Index", 2012): a literal is its own
/// set, a concatenation takes the best set of a run of exact parts or of any part, an
/// alternation the union of its branches, a repetition with at least one copy its part's.
#[derive(Debug, Clone)]
struct Prefilter {
    ac: Option<aho_corasick::AhoCorasick>,
    /// Pattern -> rules (indexes below 128) it stands for.
    pattern_rules: Vec<Vec<u32>>,
    /// Rules with no usable literal set: always run.
    always: Vec<bool>,
}

/// Literal sets kept exact up to this many strings.
const MAX_LITERALS: usize = 256;
/// Shortest literal worth a prefilter; a rule with a shorter necessary literal always runs.
const MIN_LITERAL: usize = 3;

type Lits = Vec<Vec<u8>>;

/// What a sub-pattern can match: every string (`exact`, if few) and a set one of which
/// every match contains (`need`).
struct Factors {
    exact: Option<Lits>,
    need: Option<Lits>,
}

/// Better sets have a longer shortest string, then fewer strings (an empty set, which no
/// ASCII text can satisfy, is best).
fn lits_quality(l: &Lits) -> (usize, std::cmp::Reverse<usize>) {
    let min = l.iter().map(Vec::len).min().unwrap_or(usize::MAX);
    (min, std::cmp::Reverse(l.len()))
}

fn best_of(a: Option<Lits>, b: Option<Lits>) -> Option<Lits> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if lits_quality(&y) > lits_quality(&x) {
            y
        } else {
            x
        }),
        (x, y) => x.or(y),
    }
}

fn best(f: &Factors) -> Option<Lits> {
    best_of(f.exact.clone(), f.need.clone())
}

fn cross(a: &Lits, b: &Lits) -> Option<Lits> {
    if a.len().saturating_mul(b.len()) > MAX_LITERALS {
        return None;
    }
    let mut out: Lits = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn union(sets: impl IntoIterator<Item = Lits>) -> Lits {
    let mut out: Lits = sets.into_iter().flatten().collect();
    out.sort();
    out.dedup();
    out
}

fn factors(h: &regex_syntax::hir::Hir) -> Factors {
    use regex_syntax::hir::{Class, HirKind};
    let exact = |l: Lits| Factors {
        exact: Some(l),
        need: None,
    };
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => exact(vec![Vec::new()]),
        HirKind::Literal(l) => exact(vec![l.0.to_ascii_lowercase()]),
        HirKind::Class(c) => {
            // only ASCII members matter on ASCII text
            let mut bytes: Vec<u8> = match c {
                Class::Unicode(u) => u
                    .ranges()
                    .iter()
                    .flat_map(|r| (r.start() as u32)..=(r.end() as u32).min(0x7f))
                    .filter_map(|b| u8::try_from(b).ok())
                    .collect(),
                Class::Bytes(b) => b
                    .ranges()
                    .iter()
                    .flat_map(|r| r.start()..=r.end().min(0x7f))
                    .collect(),
            };
            bytes.iter_mut().for_each(|b| *b = b.to_ascii_lowercase());
            bytes.sort_unstable();
            bytes.dedup();
            if bytes.len() <= 16 {
                exact(bytes.into_iter().map(|b| vec![b]).collect())
            } else {
                Factors {
                    exact: None,
                    need: None,
                }
            }
        }
        HirKind::Capture(c) => factors(&c.sub),
        HirKind::Repetition(r) => {
            let sub = factors(&r.sub);
            let need = if r.min >= 1 { best(&sub) } else { None };
            let exact = match (&sub.exact, r.max) {
                (Some(e), Some(max)) if max <= 2 => {
                    let mut acc: Option<Lits> = Some(vec![Vec::new()]);
                    let mut all: Vec<Lits> = Vec::new();
                    for k in 0..=max {
                        if k >= r.min {
                            if let Some(a) = &acc {
                                all.push(a.clone());
                            }
                        }
                        acc = acc.and_then(|a| cross(&a, e));
                    }
                    let complete = all.len() == (max - r.min + 1) as usize;
                    complete.then(|| union(all))
                }
                _ => None,
            };
            Factors { exact, need }
        }
        HirKind::Concat(subs) => {
            let mut cands: Vec<Lits> = Vec::new();
            let mut cur: Lits = vec![Vec::new()];
            let mut all_exact = true;
            for sub in subs {
                let f = factors(sub);
                match f.exact {
                    Some(e) => match cross(&cur, &e) {
                        Some(x) => cur = x,
                        None => {
                            all_exact = false;
                            cands.push(std::mem::replace(&mut cur, e));
                        }
                    },
                    None => {
                        all_exact = false;
                        cands.push(std::mem::replace(&mut cur, vec![Vec::new()]));
                        if let Some(n) = f.need {
                            cands.push(n);
                        }
                    }
                }
            }
            let exact = all_exact.then(|| cur.clone());
            cands.push(cur);
            let need = cands.into_iter().fold(None, |b, c| best_of(b, Some(c)));
            Factors { exact, need }
        }
        HirKind::Alternation(subs) => {
            let fs: Vec<Factors> = subs.iter().map(factors).collect();
            let exact = fs
                .iter()
                .map(|f| f.exact.clone())
                .collect::<Option<Vec<Lits>>>()
                .map(union)
                .filter(|u| u.len() <= MAX_LITERALS);
            let need = fs
                .iter()
                .map(best)
                .collect::<Option<Vec<Lits>>>()
                .map(union);
            Factors { exact, need }
        }
    }
}

/// The literal set of a rule pattern (parsed as `RuleSet::push` compiles it), if usable.
fn rule_literals(pattern: &str) -> Option<Lits> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(pattern)
        .ok()?;
    let lits = best(&factors(&hir))?;
    lits.iter().all(|l| l.len() >= MIN_LITERAL).then_some(lits)
}

impl Prefilter {
    fn build(rules: &[Rule]) -> Prefilter {
        let mut always = vec![true; rules.len()];
        let mut patterns: Lits = Vec::new();
        let mut pattern_rules: Vec<Vec<u32>> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for (k, r) in rules.iter().enumerate().take(128) {
            let Some(lits) = rule_literals(r.pattern.as_str()) else {
                continue;
            };
            always[k] = false;
            for l in lits {
                let i = *index.entry(l.clone()).or_insert_with(|| {
                    patterns.push(l);
                    pattern_rules.push(Vec::new());
                    pattern_rules.len() - 1
                });
                pattern_rules[i].push(k as u32);
            }
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::Standard)
            // A DFA: the fastest search, and the few hundred rule literals keep it small.
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&patterns)
            .ok();
        Prefilter {
            ac,
            pattern_rules,
            always,
        }
    }

    /// Bit k set: rule k (below 128) may match. None: run every rule (non-ASCII text).
    fn candidates(&self, message: &str) -> Option<u128> {
        let ac = self.ac.as_ref()?;
        if !message.is_ascii() {
            return None;
        }
        let mut bits = 0u128;
        for m in ac.find_overlapping_iter(message) {
            for &k in &self.pattern_rules[m.pattern().as_usize()] {
                bits |= 1u128 << k;
            }
        }
        Some(bits)
    }
}

fn default_set() -> Option<&'static RuleSet> {
    static S: OnceLock<Option<RuleSet>> = OnceLock::new();
    S.get_or_init(|| RuleSet::default_rules().ok()).as_ref()
}

/// Classify with the shipped default rules: (category, severity, rule id, confidence).
pub fn classify(message: &str) -> Classification {
    match default_set() {
        Some(s) => s.classify(message),
        None => Classification::unknown(),
    }
}

/// Multinomial naive Bayes over the tokens of the masked template (lower-cased, `<*>` and
/// punctuation dropped), Laplace smoothing `alpha`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NaiveBayes {
    alpha: f64,
    /// label -> number of training messages
    docs: HashMap<String, u64>,
    /// label -> token -> count
    counts: HashMap<String, HashMap<String, u64>>,
    /// label -> total token count
    totals: HashMap<String, u64>,
    vocab: HashMap<String, u64>,
}

fn nb_tokens(message: &str) -> Vec<String> {
    template_of(message)
        .split_whitespace()
        .filter(|t| *t != WILDCARD)
        .flat_map(|t| {
            t.split(|c: char| !c.is_alphanumeric() && c != '_')
                .filter(|w| w.len() >= 2 && !w.chars().all(|c| c.is_ascii_digit()))
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

impl NaiveBayes {
    pub fn new(alpha: f64) -> Self {
        NaiveBayes {
            alpha: if alpha > 0.0 { alpha } else { 1.0 },
            ..Default::default()
        }
    }

    /// Train from (message, label) pairs with alpha = 1.
    pub fn train<'a>(examples: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut nb = NaiveBayes::new(1.0);
        for (m, l) in examples {
            nb.observe(m, l);
        }
        nb
    }

    /// Add one labelled example.
    pub fn observe(&mut self, message: &str, label: &str) {
        *self.docs.entry(label.to_string()).or_default() += 1;
        let counts = self.counts.entry(label.to_string()).or_default();
        let toks = nb_tokens(message);
        *self.totals.entry(label.to_string()).or_default() += toks.len() as u64;
        for t in toks {
            *self.vocab.entry(t.clone()).or_default() += 1;
            *counts.entry(t).or_default() += 1;
        }
    }

    /// Most probable label and its posterior probability.
    ///
    /// None when untrained, and None when no token of `message` was seen in training: the
    /// posterior would then be the label prior alone, a confident-looking answer about a
    /// line the model knows nothing of (`request handled in 12 ms` after training on
    /// errors). Callers such as [`RuleSet::classify_with_fallback`] then report `unknown`.
    pub fn predict(&self, message: &str) -> Option<(String, f64)> {
        let n_docs: u64 = self.docs.values().sum();
        if n_docs == 0 {
            return None;
        }
        let toks: Vec<String> = nb_tokens(message)
            .into_iter()
            .filter(|t| self.vocab.contains_key(t))
            .collect();
        if toks.is_empty() {
            return None;
        }
        let v = self.vocab.len().max(1) as f64;
        let mut scores: Vec<(String, f64)> = Vec::new();
        let mut labels: Vec<&String> = self.docs.keys().collect();
        labels.sort();
        for label in labels {
            let d = self.docs.get(label).copied().unwrap_or(0) as f64;
            let total = self.totals.get(label).copied().unwrap_or(0) as f64;
            let counts = self.counts.get(label);
            let mut lp = (d / n_docs as f64).ln();
            for t in &toks {
                let c = counts.and_then(|m| m.get(t)).copied().unwrap_or(0) as f64;
                lp += ((c + self.alpha) / (total + self.alpha * v)).ln();
            }
            scores.push((label.clone(), lp));
        }
        let max = scores.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = scores.iter().map(|s| (s.1 - max).exp()).sum();
        let best = scores
            .iter()
            .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))?;
        Some((best.0.clone(), (best.1 - max).exp() / z))
    }
}
