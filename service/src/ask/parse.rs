//! The question parser: intent, severity and kind words, series names matched against the
//! catalog (case-insensitively, across spaces and dots, tolerant of small typos), the key to group
//! by ("which satellites"), and the time range (`time`). No database: the catalog is given.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::time::{self, TimeRange};

/// What the question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// When did ... have anomalies: the episodes with their start and end.
    When,
    /// Why ...: each matching episode's ranked explanation, most severe first.
    Why,
    /// How many ...: counts.
    HowMany,
    /// Which satellites/series ...: the values of a label among the matching episodes.
    Which,
    /// What is wrong right now: episodes going on or in the last hour.
    Now,
    /// Is ... drifting: drift results and level shifts, variance changes, seasonal breaks.
    Drift,
    /// Which jobs had errors: error lines of the logs table by source and labels.
    Logs,
    /// Not understood: what the assistant can answer, with examples.
    Help,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::When => "when",
            Intent::Why => "why",
            Intent::HowMany => "how_many",
            Intent::Which => "which",
            Intent::Now => "now",
            Intent::Drift => "drift",
            Intent::Logs => "logs",
            Intent::Help => "help",
        }
    }
}

/// One value of the catalog: a metric name or a label value, with the keys it appears under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub value: String,
    pub keys: Vec<String>,
    norm: String,
}

/// The distinct metric names and label values (at any depth) of the series the database knows.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    terms: Vec<Term>,
    /// Label keys (last element of each path), e.g. "metric", "satellite".
    pub keys: Vec<String>,
}

/// Lower case, letters and digits only: "SCH.M1", "sch m1" and "Sch-M1" are all "schm1".
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// Optimal string alignment distance (Levenshtein plus transpositions of neighbours).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

impl Catalog {
    /// Build from series (JSON objects, labels possibly nested): every string leaf is a term.
    pub fn from_series<'a>(series: impl IntoIterator<Item = &'a serde_json::Value>) -> Catalog {
        let mut by_value: BTreeMap<String, Vec<String>> = BTreeMap::new();
        fn walk(v: &serde_json::Value, key: &str, out: &mut BTreeMap<String, Vec<String>>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        walk(v, k, out);
                    }
                }
                serde_json::Value::Array(items) => {
                    for v in items {
                        walk(v, key, out);
                    }
                }
                serde_json::Value::String(s)
                    if !s.is_empty() && s.len() <= 200 && !key.is_empty() =>
                {
                    let keys = out.entry(s.clone()).or_default();
                    if !keys.iter().any(|k| k == key) {
                        keys.push(key.to_string());
                    }
                }
                _ => {}
            }
        }
        for s in series {
            walk(s, "", &mut by_value);
        }
        let mut keys: Vec<String> = by_value.values().flatten().cloned().collect();
        keys.sort();
        keys.dedup();
        let terms = by_value
            .into_iter()
            .filter_map(|(value, keys)| {
                let norm = normalize(&value);
                (!norm.is_empty()).then_some(Term { value, keys, norm })
            })
            .collect();
        Catalog { terms, keys }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Values under `key`, in order.
    pub fn values_of(&self, key: &str) -> Vec<&str> {
        self.terms
            .iter()
            .filter(|t| t.keys.iter().any(|k| k == key))
            .map(|t| t.value.as_str())
            .collect()
    }

    fn exact(&self, norm: &str) -> Vec<&Term> {
        self.terms.iter().filter(|t| t.norm == norm).collect()
    }

    /// Terms within the typo budget of `norm` (same digits, a few letters off), the closest.
    fn fuzzy(&self, norm: &str) -> Vec<&Term> {
        if norm.chars().count() < 3 {
            return vec![];
        }
        let budget = if norm.chars().count() <= 5 { 1 } else { 2 };
        let d = digits(norm);
        let mut best: Vec<(usize, &Term)> = self
            .terms
            .iter()
            .filter(|t| {
                let n = t.norm.chars().count();
                n >= 3 && n.abs_diff(norm.chars().count()) <= budget && digits(&t.norm) == d
            })
            .map(|t| (edit_distance(norm, &t.norm), t))
            .filter(|(dist, _)| *dist <= budget)
            .collect();
        let Some(min) = best.iter().map(|(d, _)| *d).min() else {
            return vec![];
        };
        best.retain(|(d, _)| *d == min);
        best.into_iter().map(|(_, t)| t).collect()
    }

    /// The label key a word names ("satellites" → "satellite"), if any.
    pub fn key_for(&self, word: &str) -> Option<String> {
        let w = normalize(word);
        if w.is_empty() {
            return None;
        }
        let singular: Vec<String> = [
            w.clone(),
            w.trim_end_matches('s').to_string(),
            w.strip_suffix("es").unwrap_or(&w).to_string(),
        ]
        .into_iter()
        .collect();
        for k in &self.keys {
            let nk = normalize(k);
            if singular.contains(&nk) {
                return Some(k.clone());
            }
        }
        if matches!(
            w.as_str(),
            "series" | "metric" | "metrics" | "sensor" | "sensors" | "signal" | "signals"
        ) {
            return Some("metric".into());
        }
        for k in &self.keys {
            let nk = normalize(k);
            if nk.len() >= 4 && singular.iter().any(|s| edit_distance(s, &nk) <= 1) {
                return Some(k.clone());
            }
        }
        None
    }
}

/// A series value the question names, as matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matched {
    /// The value as in the database.
    pub value: String,
    /// The keys it is found under.
    pub keys: Vec<String>,
    /// The words of the question it was matched from.
    pub said: String,
    /// Matched despite a typo.
    pub fuzzy: bool,
}

/// The parsed question.
#[derive(Debug, Clone)]
pub struct Question {
    pub intent: Intent,
    pub range: Option<TimeRange>,
    pub offset: FixedOffset,
    /// Matched values, grouped: a series must carry one value of every group (values of the same
    /// key form one group: "SAT2 or SAT3").
    pub groups: Vec<Vec<Matched>>,
    pub severity: Vec<&'static str>,
    pub kind: Vec<&'static str>,
    /// The label key of "which <key>" questions.
    pub group_by: Option<String>,
    /// Words that look like series names but match nothing in the catalog.
    pub unknown: Vec<String>,
}

const SEVERITY_WORDS: &[(&str, &str)] = &[
    ("critical", "critical"),
    ("critically", "critical"),
    ("severe", "critical"),
    ("serious", "critical"),
    ("warning", "warning"),
    ("warnings", "warning"),
    ("info", "info"),
    ("informational", "info"),
    ("minor", "info"),
];

const KIND_WORDS: &[(&str, &str)] = &[
    ("spike", "spike"),
    ("spikes", "spike"),
    ("spiked", "spike"),
    ("dip", "dip"),
    ("dips", "dip"),
    ("drop", "dip"),
    ("drops", "dip"),
    ("shift", "level_shift"),
    ("shifts", "level_shift"),
    ("variance", "variance_change"),
    ("flatline", "flatline"),
    ("flatlines", "flatline"),
    ("flat", "flatline"),
    ("stuck", "flatline"),
    ("missing", "missing_data"),
    ("gap", "missing_data"),
    ("gaps", "missing_data"),
    ("silent", "missing_data"),
    ("seasonal", "seasonal_break"),
    ("peer", "peer_outlier"),
    ("burst", "log_burst"),
    ("bursts", "log_burst"),
];

/// Words that never name a series (so they are neither matched nor fuzzy-matched).
const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "do",
    "does",
    "did",
    "have",
    "has",
    "had",
    "of",
    "on",
    "in",
    "at",
    "to",
    "for",
    "from",
    "with",
    "and",
    "or",
    "any",
    "there",
    "what",
    "when",
    "why",
    "which",
    "who",
    "how",
    "many",
    "much",
    "me",
    "my",
    "our",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "show",
    "list",
    "tell",
    "give",
    "explain",
    "anomaly",
    "anomalies",
    "anomalous",
    "anomalie",
    "anomalys",
    "episode",
    "episodes",
    "problem",
    "problems",
    "issue",
    "issues",
    "incident",
    "incidents",
    "alert",
    "alerts",
    "wrong",
    "happened",
    "happen",
    "happening",
    "occur",
    "occurred",
    "go",
    "went",
    "going",
    "now",
    "right",
    "currently",
    "today",
    "yesterday",
    "morning",
    "afternoon",
    "evening",
    "night",
    "tonight",
    "last",
    "past",
    "previous",
    "since",
    "between",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "month",
    "count",
    "number",
    "drift",
    "drifting",
    "drifted",
    "log",
    "logs",
    "error",
    "errors",
    "job",
    "jobs",
    "etl",
    "pipeline",
    "pipelines",
    "changed",
    "change",
    "changes",
    "behave",
    "behaving",
    "abnormal",
    "odd",
    "strange",
    "weird",
    "reason",
    "reasons",
    "cause",
    "caused",
    "causes",
    "please",
    "about",
    "all",
    "every",
    "each",
    "so",
    "far",
    "satellite",
    "satellites",
    "series",
    "metric",
    "metrics",
    "sensor",
    "sensors",
    "level",
    "utc",
    "gmt",
    "by",
    "than",
    "more",
    "most",
    "time",
    "times",
    "status",
    "state",
    "ok",
    "fine",
    "healthy",
    "up",
    "down",
    "can",
    "you",
    "i",
    "we",
    "should",
    "would",
    "could",
    "will",
    "not",
    "no",
    "yes",
    "only",
    "also",
    "get",
    "see",
    "find",
    "check",
    "did",
    "doing",
    "does",
    "look",
    "looks",
    "like",
    "seem",
    "seems",
    "during",
    "around",
    "after",
    "before",
    "until",
    "till",
    "over",
    "ago",
    "moment",
    "present",
    "ongoing",
    "still",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn is_stop(w: &str) -> bool {
    STOP.contains(&w)
        || SEVERITY_WORDS.iter().any(|(s, _)| *s == w)
        || KIND_WORDS.iter().any(|(s, _)| *s == w)
}

/// Words of the question (lower case) with their byte spans; dots, dashes, underscores and
/// slashes inside a word are kept ("sch.m1"), other punctuation splits.
fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        let inner = matches!(c, '.' | '-' | '_' | '/' | ':')
            && start.is_some()
            && chars.get(i + 1).is_some_and(|(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || inner {
            if start.is_none() {
                start = Some(pos);
            }
        } else if let Some(s) = start.take() {
            out.push((s, pos, text[s..pos].to_string()));
        }
    }
    if let Some(s) = start {
        out.push((s, text.len(), text[s..].to_string()));
    }
    out
}

fn has_word(ws: &[(usize, usize, String)], options: &[&str]) -> bool {
    ws.iter().any(|(_, _, w)| options.contains(&w.as_str()))
}

fn has_phrase(text: &str, options: &[&str]) -> bool {
    options.iter().any(|p| {
        text.match_indices(p).any(|(i, _)| {
            let before = text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after = text[i + p.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            before && after
        })
    })
}

/// Parse a question against the catalog at time `now` with the default zone.
pub fn parse(
    q: &str,
    catalog: &Catalog,
    now: DateTime<Utc>,
    default_offset: FixedOffset,
) -> Result<Question, String> {
    let text = q.to_lowercase();
    let found = time::parse(&text, now, default_offset)?;
    let offset = found.offset.unwrap_or(default_offset);
    let in_time = |s: usize, e: usize| found.spans.iter().any(|&(a, b)| s < b && a < e);
    let all_words = words(&text);
    let ws: Vec<(usize, usize, String)> = all_words
        .iter()
        .filter(|(s, e, _)| !in_time(*s, *e))
        .cloned()
        .collect();

    let mut severity: Vec<&'static str> = Vec::new();
    let mut kind: Vec<&'static str> = Vec::new();
    for (k, (_, _, w)) in ws.iter().enumerate() {
        // "info" is a severity only next to what it qualifies ("info anomalies", "severity
        // info"), not in "give me info about SAT2".
        if w == "info" {
            let next = ws.get(k + 1).map(|x| x.2.as_str()).unwrap_or("");
            let prev = if k > 0 { ws[k - 1].2.as_str() } else { "" };
            let qualifies = next.starts_with("anomal")
                || matches!(
                    next,
                    "episode"
                        | "episodes"
                        | "alert"
                        | "alerts"
                        | "severity"
                        | "level"
                        | "spikes"
                        | "dips"
                )
                || matches!(prev, "severity" | "level");
            if !qualifies {
                continue;
            }
        }
        if let Some((_, s)) = SEVERITY_WORDS.iter().find(|(x, _)| x == w) {
            if !severity.contains(s) {
                severity.push(s);
            }
        }
        if let Some((_, k)) = KIND_WORDS.iter().find(|(x, _)| x == w) {
            if !kind.contains(k) {
                kind.push(k);
            }
        }
    }
    if has_phrase(&text, &["no data", "stopped reporting", "went silent"])
        && !kind.contains(&"missing_data")
    {
        kind.push("missing_data");
    }

    // Series values: longest run of words first (up to 3), exact before fuzzy.
    let mut matched: Vec<Matched> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut used = vec![false; ws.len()];
    for fuzzy in [false, true] {
        for len in (1..=3).rev() {
            let mut i = 0;
            while i + len <= ws.len() {
                if used[i..i + len].iter().any(|u| *u) {
                    i += 1;
                    continue;
                }
                // Words must be neighbours in the question (no time expression between them).
                let contiguous = (i..i + len - 1).all(|k| {
                    let gap = &text[ws[k].1..ws[k + 1].0];
                    gap.chars().all(|c| !c.is_alphanumeric()) && gap.len() <= 3
                });
                let parts: Vec<&str> = ws[i..i + len].iter().map(|(_, _, w)| w.as_str()).collect();
                if !contiguous
                    || (len == 1 && is_stop(parts[0]))
                    || parts.iter().all(|p| is_stop(p))
                {
                    i += 1;
                    continue;
                }
                let norm = normalize(&parts.concat());
                let hits = if fuzzy {
                    if parts.iter().any(|p| is_stop(p)) {
                        vec![]
                    } else {
                        catalog.fuzzy(&norm)
                    }
                } else {
                    catalog.exact(&norm)
                };
                if hits.is_empty() {
                    i += 1;
                    continue;
                }
                for t in hits {
                    if !matched.iter().any(|m| m.value == t.value) {
                        matched.push(Matched {
                            value: t.value.clone(),
                            keys: t.keys.clone(),
                            said: q
                                .get(ws[i].0..ws[i + len - 1].1)
                                .unwrap_or(&norm)
                                .to_string(),
                            fuzzy,
                        });
                    }
                }
                for u in &mut used[i..i + len] {
                    *u = true;
                }
                i += len;
            }
        }
    }
    // What looks like a series name but matched nothing: letters with digits ("sat9"), or a word
    // and a number whose letters are those of a known value ("sat 9").
    let letters = |s: &str| s.chars().filter(|c| c.is_alphabetic()).collect::<String>();
    let known_letters: Vec<String> = catalog.terms.iter().map(|t| letters(&t.norm)).collect();
    let mut i = 0;
    while i < ws.len() {
        let w = &ws[i].2;
        if used[i] || is_stop(w) {
            i += 1;
            continue;
        }
        let has_digit = w.chars().any(|c| c.is_ascii_digit());
        let has_alpha = w.chars().any(|c| c.is_alphabetic());
        if has_digit && has_alpha {
            unknown.push(q.get(ws[i].0..ws[i].1).unwrap_or(w).to_string());
        } else if has_alpha && !has_digit {
            if let Some(next) = ws.get(i + 1) {
                if !used[i + 1]
                    && next.2.chars().all(|c| c.is_ascii_digit())
                    && known_letters
                        .iter()
                        .any(|k| !k.is_empty() && *k == normalize(w))
                {
                    unknown.push(q.get(ws[i].0..next.1).unwrap_or(w).to_string());
                    i += 2;
                    continue;
                }
            }
        }
        i += 1;
    }

    // Group values by key: values sharing a key are alternatives.
    let mut groups: Vec<Vec<Matched>> = Vec::new();
    for m in matched {
        match groups
            .iter_mut()
            .find(|g| g.iter().any(|x| x.keys.iter().any(|k| m.keys.contains(k))))
        {
            Some(g) => g.push(m),
            None => groups.push(vec![m]),
        }
    }

    // "which <key>": the word after which/what.
    let mut group_by = None;
    for (k, (_, _, w)) in all_words.iter().enumerate() {
        if matches!(w.as_str(), "which" | "what" | "per" | "by" | "each") {
            if let Some((_, _, next)) = all_words.get(k + 1) {
                if let Some(key) = catalog.key_for(next) {
                    group_by = Some(key);
                    break;
                }
            }
        }
    }

    let logs_words = has_word(
        &ws,
        &["log", "logs", "etl", "job", "jobs", "pipeline", "pipelines"],
    ) || (has_word(&ws, &["error", "errors"])
        && !has_word(&ws, &["anomaly", "anomalies", "anomalous"]));
    let intent = if has_word(
        &ws,
        &[
            "why", "explain", "reason", "reasons", "cause", "caused", "causes",
        ],
    ) || has_phrase(&text, &["what caused", "how come"])
    {
        Intent::Why
    } else if has_word(&ws, &["drift", "drifting", "drifted", "drifts"]) {
        Intent::Drift
    } else if logs_words {
        Intent::Logs
    } else if has_phrase(&text, &["how many", "number of", "how often"])
        || has_word(&ws, &["count"])
    {
        Intent::HowMany
    } else if has_word(&ws, &["which"]) || group_by.is_some() {
        Intent::Which
    } else if found.now && found.range.is_none()
        || has_phrase(
            &text,
            &[
                "what is wrong",
                "what's wrong",
                "whats wrong",
                "anything wrong",
                "status of",
            ],
        ) && found.range.is_none()
    {
        Intent::Now
    } else if has_word(
        &ws,
        &[
            "when",
            "list",
            "show",
            "happened",
            "changed",
            "anomalies",
            "anomaly",
            "anomalous",
            "episodes",
        ],
    ) || has_phrase(&text, &["what time"])
        || !groups.is_empty()
        || !unknown.is_empty()
        || found.range.is_some()
        || !severity.is_empty()
        || !kind.is_empty()
    {
        Intent::When
    } else {
        Intent::Help
    };
    // "how many anomalies right now?": the last hour.
    let range = match found.range {
        None if found.now => Some(TimeRange {
            from: now - chrono::Duration::hours(1),
            to: now + chrono::Duration::minutes(1),
            said: "right now".into(),
        }),
        r => r,
    };
    Ok(Question {
        intent,
        range,
        offset,
        groups,
        severity,
        kind,
        group_by,
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        let series = [
            json!({"metric": "SCH.M1", "labels": {"satellite": "SAT1"}}),
            json!({"metric": "SCH.M1", "labels": {"satellite": "SAT2"}}),
            json!({"metric": "SCH.M3", "labels": {"satellite": "SAT2"}}),
            json!({"metric": "SCH.M7", "labels": {"satellite": "SAT4"}}),
            json!({"metric": "battery_temp", "labels": {"site": {"region": "north", "rack": "R12"}}}),
            json!({"log_monitor": "public.logs", "category": "timeout"}),
        ];
        Catalog::from_series(series.iter())
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T15:30:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn p(q: &str) -> Question {
        let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!());
        parse(q, &catalog(), now(), utc).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn values(q: &Question) -> Vec<Vec<String>> {
        q.groups
            .iter()
            .map(|g| g.iter().map(|m| m.value.clone()).collect())
            .collect()
    }

    #[test]
    fn distances_and_normal_forms() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("schm1", "shcm1"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(normalize("SCH.M1"), "schm1");
        assert_eq!(normalize("sch m1"), "schm1");
    }

    #[test]
    fn intents() {
        assert_eq!(
            p("when did SAT2 SCH.M1 have anomalies last week?").intent,
            Intent::When
        );
        assert_eq!(
            p("why was SCH.M3 anomalous on 2026-03-02?").intent,
            Intent::Why
        );
        assert_eq!(
            p("which satellites had critical anomalies today?").intent,
            Intent::Which
        );
        assert_eq!(p("how many anomalies yesterday?").intent, Intent::HowMany);
        assert_eq!(p("what is wrong with SAT4 right now?").intent, Intent::Now);
        assert_eq!(p("is SCH.M7 drifting?").intent, Intent::Drift);
        assert_eq!(
            p("which ETL jobs had errors this morning?").intent,
            Intent::Logs
        );
        assert_eq!(p("what changed since Monday?").intent, Intent::When);
        assert_eq!(p("tell me a joke").intent, Intent::Help);
        assert_eq!(p("").intent, Intent::Help);
        assert_eq!(p("what's the weather like?").intent, Intent::Help);
    }

    #[test]
    fn series_names_with_typos_and_spaces() {
        assert_eq!(
            values(&p("when did sat 2 sch m1 have anomalies")),
            vec![vec!["SAT2"], vec!["SCH.M1"]]
        );
        assert_eq!(values(&p("why was sch.m3 odd")), vec![vec!["SCH.M3"]]);
        assert_eq!(
            values(&p("anomalies of SAT2 or SAT1")),
            vec![vec!["SAT2", "SAT1"]]
        );
        // a transposition and a dropped letter
        let q = p("when did shc.m1 have anomalies");
        assert_eq!(values(&q), vec![vec!["SCH.M1"]]);
        assert!(q.groups[0][0].fuzzy);
        assert_eq!(
            values(&p("anomalies of battery tmp")),
            vec![vec!["battery_temp"]]
        );
        // nested labels, at any depth
        assert_eq!(values(&p("anomalies in rack r12")), vec![vec!["R12"]]);
        assert_eq!(values(&p("anomalies in the north")), vec![vec!["north"]]);
        // digits must match: SAT9 is not SAT1
        let q = p("when did SAT9 have anomalies?");
        assert!(q.groups.is_empty());
        assert_eq!(q.unknown, vec!["SAT9"]);
        let q = p("when did sat 9 have anomalies?");
        assert_eq!(q.unknown, vec!["sat 9"]);
        // dates are not series names
        let q = p("why on 2026-03-02 at 10:00");
        assert!(
            q.groups.is_empty() && q.unknown.is_empty(),
            "{:?}",
            q.unknown
        );
    }

    #[test]
    fn severities_kinds_and_group_keys() {
        let q = p("which satellites had critical anomalies today?");
        assert_eq!(q.severity, vec!["critical"]);
        assert_eq!(q.group_by.as_deref(), Some("satellite"));
        assert!(p("give me info about SAT2").severity.is_empty());
        assert_eq!(p("how many info anomalies").severity, vec!["info"]);
        assert_eq!(p("anomalies of severity info").severity, vec!["info"]);
        let q = p("how many spikes and dips yesterday");
        assert_eq!(q.kind, vec!["spike", "dip"]);
        assert!(q.severity.is_empty());
        assert_eq!(
            p("which racks had anomalies").group_by.as_deref(),
            Some("rack")
        );
        assert_eq!(
            p("which series had warnings").group_by.as_deref(),
            Some("metric")
        );
        let q = p("how many anomalies per satellite yesterday?");
        assert_eq!(
            (q.intent, q.group_by.as_deref()),
            (Intent::HowMany, Some("satellite"))
        );
        let q = p("anomalies by satellite this week");
        assert_eq!(
            (q.intent, q.group_by.as_deref()),
            (Intent::Which, Some("satellite"))
        );
    }
}
