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
    /// lock before timeout (`lock wait timeout`), data quality before syntax (`invalid input
    /// syntax for type integer` is a cast error), authentication before connection.
    pub fn default_rules() -> Result<Self, crate::Error> {
        use Category::*;
        use Severity::*;
        let rules: &[(&str, &str, Category, Severity, f64)] = &[
            ("lock.deadlock", r"\bdeadlock", Lock, Error, 0.95),
            (
                "lock.wait",
                r"lock wait timeout|could not obtain lock|lock (?:request )?time ?out|unable to acquire (?:a )?lock|could not serialize access|serialization failure|lock not available",
                Lock,
                Error,
                0.9,
            ),
            (
                "dq.not_null",
                r"null value in column|violates not-null constraint|cannot be null|must not be null|null constraint|unexpected null",
                DataQuality,
                Error,
                0.9,
            ),
            (
                "dq.duplicate",
                r"duplicate key|duplicate entry|unique constraint|uniqueness violation|already exists in (?:the )?(?:target|index)",
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
                r"invalid input syntax for (?:type|integer|numeric)|cannot (?:cast|convert|coerce)|could not (?:convert|parse)|numberformatexception|failed to parse|parse ?error:? (?:value|date|number|field)|invalid (?:date|timestamp|number|numeric|datetime|value)|value too long|out of range|division by zero|malformed (?:record|row|csv|json)|schema mismatch in row|unexpected value",
                DataQuality,
                Error,
                0.8,
            ),
            (
                "syntax.sql",
                r"syntax error|unexpected token|unexpected end of (?:input|statement)|\bsyntaxerror\b|parse error at|mismatched input",
                Syntax,
                Error,
                0.9,
            ),
            (
                "schema.missing",
                r"(?:relation|table|view|column|schema|field|attribute|index|database) \S+ (?:does not exist|not found|doesn't exist)|no such (?:table|column|field)|unknown (?:column|table|field)|undefined (?:column|table)|(?:table|column) not found|missing (?:column|table|field)|has no (?:column|attribute|field)|tablenotfound|analysisexception: (?:table|path)",
                Schema,
                Error,
                0.9,
            ),
            (
                "auth.failed",
                r"authentication failed|auth(?:entication)? fail|invalid (?:credentials|password|api key|token)|password authentication|unauthori[sz]ed|\b401\b|login failed|access token (?:expired|invalid)|expired (?:token|credentials)|certificate verify failed",
                Authentication,
                Error,
                0.9,
            ),
            (
                "auth.permission",
                r"permission denied|access denied|forbidden|\b403\b|not authori[sz]ed|insufficient privilege|must be owner|not permitted|accessdenied",
                Authentication,
                Error,
                0.85,
            ),
            (
                "resource.memory",
                r"out of memory|outofmemory|\boom\b|memory limit|cannot allocate memory|java heap space|gc overhead limit|killed process|memoryerror|container killed .* memory",
                Resource,
                Critical,
                0.9,
            ),
            (
                "resource.disk",
                r"no space left|disk (?:is )?full|disk quota|quota exceeded|too many open files|insufficient (?:disk|storage|memory|resources)|resource exhausted|resources? (?:temporarily )?unavailable|limit exceeded|out of (?:disk|space)",
                Resource,
                Critical,
                0.85,
            ),
            (
                "timeout.generic",
                r"timed? ?out|timeout|deadline exceeded|took too long|statement_timeout|read timeout",
                Timeout,
                Error,
                0.8,
            ),
            (
                "upstream.http",
                r"\b50[234]\b|bad gateway|service unavailable|gateway time|upstream|too many requests|\b429\b|rate limit|throttl|api (?:error|returned|call failed)|remote (?:service|server|host) (?:returned|error)|dependency (?:failed|unavailable)|external service",
                Upstream,
                Error,
                0.75,
            ),
            (
                "connection.network",
                r"connection (?:refused|reset|closed|aborted|lost|failed|error)|could not connect|unable to connect|failed to connect|cannot connect|network (?:is )?unreachable|no route to host|host (?:not found|unreachable)|name or service not known|unknown host|broken pipe|econnrefused|econnreset|ssl (?:error|handshake)|socket (?:error|closed|exception)|connectexception|eof (?:detected|occurred)|server closed the connection|could not translate host name|temporary failure in name resolution",
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
        for r in &self.rules {
            if r.pattern.is_match(message) {
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

    /// Most probable label and its posterior probability; None when untrained.
    pub fn predict(&self, message: &str) -> Option<(String, f64)> {
        let n_docs: u64 = self.docs.values().sum();
        if n_docs == 0 {
            return None;
        }
        let toks: Vec<String> = nb_tokens(message)
            .into_iter()
            .filter(|t| self.vocab.contains_key(t))
            .collect();
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
