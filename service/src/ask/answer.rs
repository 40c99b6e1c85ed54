//! From a parsed question to the reply: the reads (parameterised; table names come quoted from
//! the catalog) and the English text. Times are written `YYYY-MM-DD HH:MM` in the question's zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use utoipa::ToSchema;

use super::parse::{self, Catalog, Intent, Matched, Question};
use super::time::offset_name;
use crate::db::row::{get, time, time_or_null};
use crate::error::ApiResult;
use crate::query::anomalies::{anomaly, Anomaly, Reason, COLUMNS};

/// Tables the answers read (schema-qualified and quoted), when they exist.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub metrics: Option<String>,
    pub logs: Option<String>,
}

/// Most episodes listed in a reply (counts are always complete).
pub const MAX_EPISODES: i64 = 100;
/// Most episodes explained by a "why" question.
pub const MAX_EXPLAINED: i64 = 50;
/// Lines of episodes in the answer text.
const TEXT_LINES: usize = 25;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AskRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The words of the question it came from, or "all time".
    pub said: String,
}

/// An episode with, for "why" questions, its ranked reasons.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AskEpisode {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    /// Going on now (not closed yet).
    pub ongoing: bool,
    /// `tidewatch.explain_anomaly`'s reasons (why questions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
}

/// A value of the "which" key with its episode counts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AskGroup {
    pub value: String,
    pub episodes: i64,
    pub by_severity: BTreeMap<String, i64>,
}

/// A drift monitor's verdict in the range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AskDrift {
    pub run_at: DateTime<Utc>,
    pub monitor: String,
    pub column_name: String,
    pub method: Option<String>,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    /// Null when the bound is a time JSON cannot carry (`infinity`, `-infinity`).
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
}

/// Error lines of one source, label set and error class in the range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AskLogErrors {
    pub source: String,
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    pub category: String,
    pub lines: i64,
    /// Null when the time is one JSON cannot carry (`infinity`, `-infinity`, from rows written
    /// by SQL).
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

/// A matched series value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AskMatch {
    pub value: String,
    pub keys: Vec<String>,
    pub said: String,
    pub fuzzy: bool,
}

/// The reply.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AskAnswer {
    pub question: String,
    /// The answer in plain English.
    pub answer: String,
    /// when, why, how_many, which, now, drift, logs, or help (not understood).
    pub intent: String,
    pub understood: bool,
    /// The zone of the answer's times (UTC, UTC+02:00, ...).
    pub timezone: String,
    /// The range asked about (null: all time).
    pub time_range: Option<AskRange>,
    /// Series values the question named, as matched in the catalog.
    pub matched: Vec<AskMatch>,
    /// Words that look like series names but match nothing.
    pub unknown: Vec<String>,
    pub severity: Vec<String>,
    pub kind: Vec<String>,
    /// Matching episodes in all (also when more than those listed).
    pub total: i64,
    /// Matching episodes by severity and by kind.
    pub by_severity: BTreeMap<String, i64>,
    pub by_kind: BTreeMap<String, i64>,
    /// The episodes used: in time order, or most severe first for "why".
    pub episodes: Vec<AskEpisode>,
    /// Fewer episodes listed than `total`.
    pub truncated: bool,
    /// "which": the key grouped by and its values.
    pub group_by: Option<String>,
    pub groups: Vec<AskGroup>,
    pub drift: Vec<AskDrift>,
    pub logs: Vec<AskLogErrors>,
    /// Questions this catalog can answer (for questions not understood).
    pub examples: Vec<String>,
}

/// The zone: given (`tz`), else configured, else UTC.
pub fn resolve_offset(
    given: Option<&str>,
    configured: &Option<String>,
) -> Result<FixedOffset, String> {
    let spec = given.or(configured.as_deref());
    match spec {
        None => FixedOffset::east_opt(0).ok_or_else(|| "UTC".to_string()),
        // A named zone (Europe/Paris) answers with its offset of now.
        Some(s) => crate::zone::Zone::parse(s)
            .map(|z| z.offset_at(&Utc::now()))
            .ok_or_else(|| {
            format!(
                "time zone \"{}\" is not one I know: use UTC, an offset such as UTC+2 or UTC-05:30, or an IANA name such as Europe/Paris",
                crate::ingest::point::clip(s)
            )
        }),
    }
}

pub fn fmt_time(t: DateTime<Utc>, off: FixedOffset) -> String {
    t.with_timezone(&off).format("%Y-%m-%d %H:%M").to_string()
}

/// `fmt_time`, or "out of range" for a time the database holds but JSON cannot carry.
fn fmt_opt_time(t: Option<DateTime<Utc>>, off: FixedOffset) -> String {
    t.map(|t| fmt_time(t, off))
        .unwrap_or_else(|| "out of range".to_string())
}

fn fmt_span(a: &Anomaly, off: FixedOffset, ongoing: bool) -> String {
    let start = fmt_time(a.started_at, off);
    match a.ended_at {
        _ if ongoing => format!("{start} until now (still going on)"),
        None => format!("{start} until now (still going on)"),
        Some(end) => {
            let e = fmt_time(end, off);
            if e == start {
                start
            } else if e[..10] == start[..10] {
                format!("{start} to {}", &e[11..])
            } else {
                format!("{start} to {e}")
            }
        }
    }
}

fn fmt_range(r: &AskRange, off: FixedOffset) -> String {
    if r.said == "all time" {
        return "so far".into();
    }
    format!(
        "{} ({} to {} {})",
        r.said,
        fmt_time(r.from, off),
        fmt_time(r.to, off),
        offset_name(off)
    )
}

/// "SCH.M1 satellite=SAT2" (nested labels as dotted paths).
pub fn series_name(series: &serde_json::Value) -> String {
    fn flat(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flat(&p, v, out);
                }
            }
            serde_json::Value::String(s) => out.push(format!("{prefix}={s}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut parts = Vec::new();
    let metric = series.get("metric").and_then(|m| m.as_str());
    let rest = match (metric, series.get("labels")) {
        (Some(_), Some(l)) if l.is_object() => l.clone(),
        _ => {
            let mut s = series.clone();
            if let Some(o) = s.as_object_mut() {
                o.remove("metric");
            }
            s
        }
    };
    flat("", &rest, &mut parts);
    match metric {
        Some(m) if parts.is_empty() => m.to_string(),
        Some(m) => format!("{m} {}", parts.join(" ")),
        None => parts.join(" "),
    }
}

/// Values of `key` anywhere in a series.
fn values_of(series: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match series {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == key {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_string());
                    }
                }
                values_of(v, key, out);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                values_of(v, key, out);
            }
        }
        _ => {}
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "satellites", "categories".
fn plural_of(word: &str) -> String {
    if word.ends_with('s') {
        word.to_string()
    } else if let Some(stem) = word.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{word}s")
    }
}

fn join_and(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// "SAT2 SCH.M1", "SAT1 or SAT2".
fn subject(groups: &[Vec<Matched>]) -> String {
    groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|m| m.value.clone())
                .collect::<Vec<_>>()
                .join(" or ")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "critical spike episodes", "anomaly episodes".
fn what(q: &Question) -> String {
    let mut w = Vec::new();
    if !q.severity.is_empty() {
        w.push(q.severity.join(" or "));
    }
    if !q.kind.is_empty() {
        w.push(format!(
            "{} episodes",
            q.kind
                .iter()
                .map(|k| k.replace('_', " "))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    } else {
        w.push("anomaly episodes".into());
    }
    w.join(" ")
}

/// The filters of a question, as query parameters.
struct Filter {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    severity: Option<Vec<String>>,
    kind: Option<Vec<String>>,
    groups: serde_json::Value,
}

const WHERE: &str = "($1::timestamptz IS NULL OR coalesce(a.ended_at, 'infinity') >= $1) \
     AND ($2::timestamptz IS NULL OR a.started_at < $2) \
     AND ($3::text[] IS NULL OR a.severity = ANY ($3)) \
     AND ($4::text[] IS NULL OR a.kind = ANY ($4)) \
     AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements($5::jsonb) g WHERE NOT EXISTS ( \
           SELECT 1 FROM jsonb_array_elements(g) v \
           WHERE jsonb_path_exists(a.series, '$.** ? (@ == $v)', jsonb_build_object('v', v))))";

impl Filter {
    fn new(q: &Question, range: Option<&AskRange>, kinds: Option<Vec<String>>) -> Filter {
        let groups: Vec<Vec<String>> = q
            .groups
            .iter()
            .map(|g| g.iter().map(|m| m.value.clone()).collect())
            .collect();
        Filter {
            from: range.map(|r| r.from),
            to: range.map(|r| r.to),
            severity: (!q.severity.is_empty())
                .then(|| q.severity.iter().map(|s| s.to_string()).collect()),
            kind: kinds.or_else(|| {
                (!q.kind.is_empty()).then(|| q.kind.iter().map(|s| s.to_string()).collect())
            }),
            groups: serde_json::json!(groups),
        }
    }

    async fn episodes(&self, client: &Client, order: &str, limit: i64) -> ApiResult<Vec<Anomaly>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tidewatch.anomalies a WHERE {WHERE} ORDER BY {order} LIMIT $6"
        );
        let rows = client
            .query(
                &sql,
                &[
                    &self.from,
                    &self.to,
                    &self.severity,
                    &self.kind,
                    &self.groups,
                    &limit,
                ],
            )
            .await?;
        rows.iter().map(anomaly).collect()
    }

    /// (severity, kind, series, episodes) of every matching episode.
    async fn counts(
        &self,
        client: &Client,
    ) -> ApiResult<Vec<(String, String, serde_json::Value, i64)>> {
        let sql = format!(
            "SELECT a.severity, a.kind, a.series, count(*)::bigint FROM tidewatch.anomalies a WHERE {WHERE} \
             GROUP BY 1, 2, 3 ORDER BY 3::text, 1, 2"
        );
        let rows = client
            .query(
                &sql,
                &[
                    &self.from,
                    &self.to,
                    &self.severity,
                    &self.kind,
                    &self.groups,
                ],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?)))
            .collect()
    }
}

const SEVERITY_FIRST: &str =
    "CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, \
     abs(a.sigma) DESC NULLS LAST, a.score DESC NULLS LAST, a.started_at, a.id";

impl From<crate::ask::time::TimeRange> for AskRange {
    fn from(r: crate::ask::time::TimeRange) -> Self {
        AskRange {
            from: r.from,
            to: r.to,
            said: r.said,
        }
    }
}

/// The question's time range, or the last `span` before `now` (`said` says so).
fn range_or_last(q: &Question, now: DateTime<Utc>, span: Duration, said: &str) -> AskRange {
    q.range.clone().map(AskRange::from).unwrap_or(AskRange {
        from: now - span,
        to: now,
        said: said.into(),
    })
}

/// Episodes listed without their reasons.
fn plain_episodes(eps: Vec<Anomaly>) -> Vec<AskEpisode> {
    eps.into_iter()
        .map(|e| AskEpisode {
            ongoing: is_ongoing(&e),
            anomaly: e,
            reasons: None,
        })
        .collect()
}

fn is_ongoing(a: &Anomaly) -> bool {
    a.ended_at.is_none()
        || a.detail
            .get("open")
            .and_then(|o| o.as_bool())
            .unwrap_or(false)
}

fn episode_line(a: &Anomaly, off: FixedOffset) -> String {
    let ongoing = is_ongoing(a);
    let mut s = format!(
        "{}: {}, {} {}",
        fmt_span(a, off, ongoing),
        series_name(&a.series),
        a.severity,
        a.kind.replace('_', " ")
    );
    if let Some(p) = a.peak_value {
        s.push_str(&format!(", peak {}", round4(p)));
        if let Some(e) = a.expected {
            s.push_str(&format!(" (expected {})", round4(e)));
        }
    }
    s
}

fn round4(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Questions built from the catalog's own names.
pub fn examples(catalog: &Catalog) -> Vec<String> {
    let metric = catalog.values_of("metric").first().map(|s| s.to_string());
    // The label with the most values (satellite, say) makes the most natural examples.
    let other_key = catalog
        .keys
        .iter()
        .filter(|k| {
            k.as_str() != "metric" && k.as_str() != "log_monitor" && k.as_str() != "category"
        })
        .max_by_key(|k| (catalog.values_of(k).len(), std::cmp::Reverse(k.as_str())))
        .cloned();
    let label = other_key
        .as_ref()
        .and_then(|k| catalog.values_of(k).first().map(|s| s.to_string()));
    let m = metric.clone().unwrap_or_else(|| "SCH.M1".into());
    let l = label.clone().unwrap_or_else(|| "SAT2".into());
    let key_plural = other_key
        .map(|k| plural_of(&k))
        .unwrap_or_else(|| "series".into());
    vec![
        format!("when did {l} {m} have anomalies last week?"),
        format!("why was {m} anomalous yesterday?"),
        "how many anomalies yesterday?".to_string(),
        format!("which {key_plural} had critical anomalies today?"),
        format!("what is wrong with {l} right now?"),
        format!("is {m} drifting?"),
        "which ETL jobs had errors this morning?".to_string(),
        "what changed since Monday?".to_string(),
    ]
}

fn empty_answer(question: &str, q: &Question, off: FixedOffset) -> AskAnswer {
    AskAnswer {
        question: question.to_string(),
        answer: String::new(),
        intent: q.intent.as_str().to_string(),
        understood: q.intent != Intent::Help,
        timezone: offset_name(off),
        time_range: None,
        matched: q
            .groups
            .iter()
            .flatten()
            .map(|m| AskMatch {
                value: m.value.clone(),
                keys: m.keys.clone(),
                said: m.said.clone(),
                fuzzy: m.fuzzy,
            })
            .collect(),
        unknown: q.unknown.clone(),
        severity: q.severity.iter().map(|s| s.to_string()).collect(),
        kind: q.kind.iter().map(|s| s.to_string()).collect(),
        total: 0,
        by_severity: BTreeMap::new(),
        by_kind: BTreeMap::new(),
        episodes: vec![],
        truncated: false,
        group_by: None,
        groups: vec![],
        drift: vec![],
        logs: vec![],
        examples: vec![],
    }
}

fn help_text(catalog: &Catalog, prefix: &str) -> (String, Vec<String>) {
    let ex = examples(catalog);
    let mut s = format!(
        "{prefix}I answer questions about anomaly episodes: when (\"when did ... have anomalies\"), why (each episode's \
         ranked explanation), how many, which (series or labels), what is wrong right now, drift (\"is ... drifting?\") \
         and log errors (\"which jobs had errors\"), for today, yesterday, this morning, the last N hours or days, last \
         week, since Monday, between two dates (YYYY-MM-DD) or at a date and time (YYYY-MM-DD HH:MM), in UTC unless you \
         say \"UTC+2\". For example:"
    );
    for e in &ex {
        s.push_str(&format!("\n- {e}"));
    }
    if catalog.is_empty() {
        s.push_str("\nThere is no data yet: push metrics to /v1/metrics first.");
    }
    (s, ex)
}

fn matched_list(groups: &[Vec<Matched>]) -> String {
    let fuzzy: Vec<String> = groups
        .iter()
        .flatten()
        .filter(|m| m.fuzzy)
        .map(|m| format!("\"{}\" as {}", m.said, m.value))
        .collect();
    if fuzzy.is_empty() {
        String::new()
    } else {
        format!(" (I read {})", join_and(&fuzzy))
    }
}

/// Answer a question.
pub async fn answer(
    client: &Client,
    tables: &Tables,
    catalog: &Catalog,
    question: &str,
    now: DateTime<Utc>,
    default_offset: FixedOffset,
) -> Result<AskAnswer, crate::error::ApiError> {
    let q = match parse::parse(question, catalog, now, default_offset) {
        Ok(q) => q,
        Err(m) => {
            let utc = default_offset;
            let q = parse::parse("", catalog, now, utc)
                .map_err(|e| crate::error::ApiError::internal("internal_error", e))?;
            let mut a = empty_answer(question, &q, utc);
            let (text, ex) = help_text(
                catalog,
                &format!("I could not read the time in your question: {m}. "),
            );
            a.answer = text;
            a.examples = ex;
            a.understood = false;
            return Ok(a);
        }
    };
    let off = q.offset;
    let mut a = empty_answer(question, &q, off);
    if q.intent == Intent::Help {
        let (text, ex) = help_text(catalog, "I did not understand the question. ");
        a.answer = text;
        a.examples = ex;
        return Ok(a);
    }
    if !q.unknown.is_empty() {
        let mut near: Vec<String> = Vec::new();
        for u in &q.unknown {
            let nu = parse::normalize(u);
            let letters: String = nu.chars().filter(|c| c.is_alphabetic()).collect();
            for t in catalog.terms() {
                let nt = parse::normalize(&t.value);
                let tl: String = nt.chars().filter(|c| c.is_alphabetic()).collect();
                if !letters.is_empty() && tl == letters && !near.contains(&t.value) {
                    near.push(t.value.clone());
                }
            }
        }
        near.truncate(20);
        let names = q
            .unknown
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>();
        a.answer = format!(
            "I know no series named {}: no metric or label value matches.{}",
            join_and(&names),
            if near.is_empty() {
                String::new()
            } else {
                format!(" Known names like it: {}.", near.join(", "))
            }
        );
        a.examples = examples(catalog);
        return Ok(a);
    }
    let who = subject(&q.groups);
    let typo_note = matched_list(&q.groups);
    match q.intent {
        Intent::Now => {
            let range = AskRange {
                from: now - Duration::hours(1),
                to: now + Duration::minutes(1),
                said: "right now".into(),
            };
            let f = Filter::new(&q, Some(&range), None);
            let eps = f
                .episodes(client, "a.started_at, a.id", MAX_EPISODES)
                .await?;
            a.time_range = Some(range.clone());
            fill_counts(&mut a, &f.counts(client).await?);
            let ongoing: Vec<&Anomaly> = eps.iter().filter(|e| is_ongoing(e)).collect();
            let target = if who.is_empty() {
                "anything".to_string()
            } else {
                who.clone()
            };
            if eps.is_empty() {
                let last_f = Filter {
                    from: None,
                    to: None,
                    ..Filter::new(&q, None, None)
                };
                let last = last_f
                    .episodes(client, "a.started_at DESC, a.id DESC", 1)
                    .await?;
                a.answer = format!(
                    "Nothing looks wrong with {target} right now{typo_note}: no {} going on or in the last hour (since {} {}).{}",
                    what(&q),
                    fmt_time(range.from, off),
                    offset_name(off),
                    match last.first() {
                        Some(l) => format!(" The last one: {}.", episode_line(l, off)),
                        None => " There has been none so far.".into(),
                    }
                );
            } else {
                let mut s = format!(
                    "{}{typo_note}: {} in the last hour (since {} {}), {} still going on:",
                    if who.is_empty() {
                        "Right now".to_string()
                    } else {
                        format!("{who} right now")
                    },
                    plural(a.total, &what(&q).replace("episodes", "episode"), &what(&q)),
                    fmt_time(range.from, off),
                    offset_name(off),
                    ongoing.len()
                );
                for e in eps.iter().take(TEXT_LINES) {
                    s.push_str(&format!("\n- {}", episode_line(e, off)));
                }
                a.answer = s;
            }
            a.truncated = (eps.len() as i64) < a.total;
            a.episodes = plain_episodes(eps);
        }
        Intent::Drift => {
            let range = range_or_last(&q, now, Duration::days(7), "in the last 7 days");
            let drift_kinds = vec![
                "level_shift".to_string(),
                "variance_change".to_string(),
                "seasonal_break".to_string(),
            ];
            let f = Filter::new(&q, Some(&range), Some(drift_kinds));
            let eps = f
                .episodes(client, "a.started_at, a.id", MAX_EPISODES)
                .await?;
            fill_counts(&mut a, &f.counts(client).await?);
            let rows = client
                .query(
                    "SELECT run_at, monitor, column_name::text, method, statistic, p_value, window_start, window_end \
                     FROM tidewatch.drift_results WHERE run_at >= $1 AND run_at < $2 AND drifted \
                     AND ($3 OR monitor ILIKE '%' || $4 || '%' OR column_name::text ILIKE '%' || $4 || '%') \
                     ORDER BY run_at DESC, monitor, column_name LIMIT 50",
                    &[&range.from, &range.to, &q.groups.is_empty(), &who],
                )
                .await?;
            a.drift = rows
                .iter()
                .map(|r| {
                    Ok(AskDrift {
                        run_at: time(r, 0)?,
                        monitor: get(r, 1)?,
                        column_name: get(r, 2)?,
                        method: get(r, 3)?,
                        statistic: get(r, 4)?,
                        p_value: get(r, 5)?,
                        window_start: time_or_null(r, 6)?,
                        window_end: time_or_null(r, 7)?,
                    })
                })
                .collect::<ApiResult<_>>()?;
            let target = if who.is_empty() {
                "the data".to_string()
            } else {
                who.clone()
            };
            if eps.is_empty() && a.drift.is_empty() {
                a.answer = format!(
                    "No sign of drift in {target} {}{typo_note}: no level shift, variance change or seasonal break episode, and no drift monitor found drift.",
                    fmt_range(&range, off)
                );
            } else {
                let mut s = format!(
                    "Yes, {target} shows drift {}{typo_note}:",
                    fmt_range(&range, off)
                );
                if !eps.is_empty() {
                    s.push_str(&format!(
                        " {}",
                        plural(
                            a.total,
                            "level shift, variance change or seasonal break episode",
                            "level shift, variance change or seasonal break episodes"
                        )
                    ));
                    for e in eps.iter().take(TEXT_LINES) {
                        s.push_str(&format!("\n- {}", episode_line(e, off)));
                    }
                }
                if !a.drift.is_empty() {
                    s.push_str(&format!(
                        "\n{} of drift monitors found drift:",
                        plural(a.drift.len() as i64, "result", "results")
                    ));
                    for d in a.drift.iter().take(TEXT_LINES) {
                        s.push_str(&format!(
                            "\n- {} {}.{}: {} {} (window {} to {})",
                            fmt_time(d.run_at, off),
                            d.monitor,
                            d.column_name,
                            d.method.clone().unwrap_or_default(),
                            d.statistic.map(round4).unwrap_or_default(),
                            fmt_opt_time(d.window_start, off),
                            fmt_opt_time(d.window_end, off)
                        ));
                    }
                }
                a.answer = s;
            }
            a.time_range = Some(range);
            a.truncated = (eps.len() as i64) < a.total;
            a.episodes = plain_episodes(eps);
        }
        Intent::Logs => {
            let range = range_or_last(&q, now, Duration::hours(24), "in the last 24 hours");
            if let Some(logs) = &tables.logs {
                let rows = client
                    .query(
                        &format!(
                            "SELECT l.source::text, l.labels, c.category, count(*)::bigint, min(l.time), max(l.time) \
                             FROM {logs} l, LATERAL tidewatch.classify_log(l.message) c \
                             WHERE l.time >= $1 AND l.time < $2 AND c.severity <> 'info' \
                             GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2::text, 3 LIMIT 200"
                        ),
                        &[&range.from, &range.to],
                    )
                    .await?;
                a.logs = rows
                    .iter()
                    .map(|r| {
                        Ok(AskLogErrors {
                            source: get(r, 0)?,
                            labels: get(r, 1)?,
                            category: get(r, 2)?,
                            lines: get(r, 3)?,
                            first: time_or_null(r, 4)?,
                            last: time_or_null(r, 5)?,
                        })
                    })
                    .collect::<ApiResult<_>>()?;
            }
            let f = Filter::new(&q, Some(&range), Some(vec!["log_burst".into()]));
            let eps = f
                .episodes(client, "a.started_at, a.id", MAX_EPISODES)
                .await?;
            fill_counts(&mut a, &f.counts(client).await?);
            // Sources (with their labels) that had errors.
            let mut by_source: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
            for l in &a.logs {
                let name = if l.labels.as_object().is_some_and(|o| !o.is_empty()) {
                    format!("{} {}", l.source, series_name(&l.labels))
                } else {
                    l.source.clone()
                };
                let e = by_source.entry(name).or_default();
                e.0 += l.lines;
                if !e.1.contains(&l.category) {
                    e.1.push(l.category.clone());
                }
            }
            if by_source.is_empty() {
                a.answer = format!("No error lines in the logs {}.", fmt_range(&range, off));
            } else {
                let total: i64 = by_source.values().map(|v| v.0).sum();
                let mut s = format!(
                    "{} had errors {}: {} in all.",
                    plural(
                        by_source.len() as i64,
                        "job (source and labels)",
                        "jobs (sources and labels)"
                    ),
                    fmt_range(&range, off),
                    plural(total, "error line", "error lines")
                );
                let mut list: Vec<(&String, &(i64, Vec<String>))> = by_source.iter().collect();
                list.sort_by(|x, y| y.1 .0.cmp(&x.1 .0).then(x.0.cmp(y.0)));
                for (name, (n, cats)) in list.iter().take(TEXT_LINES) {
                    s.push_str(&format!(
                        "\n- {name}: {} ({})",
                        plural(*n, "error line", "error lines"),
                        cats.join(", ")
                    ));
                }
                if !eps.is_empty() {
                    s.push_str(&format!(
                        "\n{}:",
                        plural(a.total, "error burst", "error bursts")
                    ));
                    for e in eps.iter().take(TEXT_LINES) {
                        s.push_str(&format!("\n- {}", episode_line(e, off)));
                    }
                }
                a.answer = s;
            }
            a.time_range = Some(range);
            a.truncated = (eps.len() as i64) < a.total;
            a.episodes = plain_episodes(eps);
        }
        Intent::When | Intent::Why | Intent::HowMany | Intent::Which | Intent::Help => {
            let range = q.range.clone().map(AskRange::from);
            let f = Filter::new(&q, range.as_ref(), None);
            let counts = f.counts(client).await?;
            fill_counts(&mut a, &counts);
            let when_text = range
                .as_ref()
                .map(|r| fmt_range(r, off))
                .unwrap_or_else(|| "so far".into());
            let of_who = if who.is_empty() {
                String::new()
            } else {
                format!(" of {who}")
            };
            match q.intent {
                Intent::HowMany => {
                    let mut s = format!(
                        "There {} {}{of_who} {when_text}{typo_note}.",
                        if a.total == 1 { "was" } else { "were" },
                        plural(a.total, &what(&q).replace("episodes", "episode"), &what(&q))
                    );
                    if a.total > 0 {
                        let sev: Vec<String> = ["critical", "warning", "info"]
                            .iter()
                            .filter_map(|k| a.by_severity.get(*k).map(|n| format!("{n} {k}")))
                            .collect();
                        let kinds: Vec<String> = a
                            .by_kind
                            .iter()
                            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
                            .collect();
                        s.push_str(&format!(
                            " By severity: {}; by kind: {}.",
                            sev.join(", "),
                            kinds.join(", ")
                        ));
                    }
                    if let Some(key) = &q.group_by {
                        let list = group(&counts, key);
                        if !list.is_empty() {
                            let items: Vec<String> = list
                                .iter()
                                .map(|g| format!("{} ({})", g.value, g.episodes))
                                .collect();
                            s.push_str(&format!(" Per {key}: {}.", items.join(", ")));
                        }
                        a.group_by = Some(key.clone());
                        a.groups = list;
                    }
                    a.answer = s;
                    let eps = f
                        .episodes(client, "a.started_at, a.id", MAX_EPISODES)
                        .await?;
                    a.truncated = (eps.len() as i64) < a.total;
                    a.episodes = plain_episodes(eps);
                }
                Intent::Which => {
                    let key = q.group_by.clone().unwrap_or_else(|| "series".into());
                    let list = group(&counts, &key);
                    let noun = if key == "series" {
                        "series".to_string()
                    } else {
                        plural_of(&key)
                    };
                    if list.is_empty() {
                        a.answer =
                            format!("No {noun} had {}{of_who} {when_text}{typo_note}.", what(&q));
                    } else {
                        let items: Vec<String> = list
                            .iter()
                            .map(|g| format!("{} ({})", g.value, g.episodes))
                            .collect();
                        let head = if key == "series" {
                            plural(list.len() as i64, "series", "series")
                        } else {
                            plural(list.len() as i64, &key, &plural_of(&key))
                        };
                        a.answer = format!(
                            "{head} had {}{of_who} {when_text}{typo_note}: {}.",
                            what(&q),
                            items.join(", ")
                        );
                    }
                    a.group_by = Some(key);
                    a.groups = list;
                    let eps = f
                        .episodes(client, "a.started_at, a.id", MAX_EPISODES)
                        .await?;
                    a.truncated = (eps.len() as i64) < a.total;
                    a.episodes = plain_episodes(eps);
                }
                Intent::Why => {
                    let eps = f.episodes(client, SEVERITY_FIRST, MAX_EXPLAINED).await?;
                    let ids: Vec<i64> = eps.iter().map(|e| e.id).collect();
                    let rows = client
                        .query(
                            "SELECT x.id, e.rank, e.reason, e.evidence FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, ord), \
                             LATERAL tidewatch.explain_anomaly(x.id) e ORDER BY x.ord, e.rank",
                            &[&ids],
                        )
                        .await?;
                    let mut reasons: BTreeMap<i64, Vec<Reason>> = BTreeMap::new();
                    for r in &rows {
                        let id: i64 = get(r, 0)?;
                        reasons.entry(id).or_default().push(Reason {
                            rank: get(r, 1)?,
                            reason: get(r, 2)?,
                            evidence: get(r, 3)?,
                        });
                    }
                    if eps.is_empty() {
                        a.answer = format!(
                            "I found no {}{of_who} {when_text}{typo_note} to explain.",
                            what(&q)
                        );
                    } else {
                        let mut s = format!(
                            "{} {}{of_who} {when_text}{typo_note}, most severe first{}:",
                            if a.total == 1 {
                                "Why: there was"
                            } else {
                                "Why: there were"
                            },
                            plural(a.total, &what(&q).replace("episodes", "episode"), &what(&q)),
                            if (eps.len() as i64) < a.total {
                                format!(" (the {} most severe explained)", eps.len())
                            } else {
                                String::new()
                            }
                        );
                        for (k, e) in eps.iter().enumerate() {
                            s.push_str(&format!("\n{}. {}", k + 1, episode_line(e, off)));
                            for r in reasons
                                .get(&e.id)
                                .map(|v| v.as_slice())
                                .unwrap_or(&[])
                                .iter()
                                .take(5)
                            {
                                s.push_str(&format!("\n   {}. {}", r.rank, r.reason));
                            }
                        }
                        a.answer = s;
                    }
                    a.truncated = (eps.len() as i64) < a.total;
                    a.episodes = eps
                        .into_iter()
                        .map(|e| AskEpisode {
                            ongoing: is_ongoing(&e),
                            reasons: Some(reasons.remove(&e.id).unwrap_or_default()),
                            anomaly: e,
                        })
                        .collect();
                }
                _ => {
                    let eps = f
                        .episodes(client, "a.started_at, a.id", MAX_EPISODES)
                        .await?;
                    if eps.is_empty() {
                        a.answer = format!("No {}{of_who} {when_text}{typo_note}.", what(&q));
                    } else {
                        let head = match (who.is_empty(), a.total == 1) {
                            (true, true) => "There was".to_string(),
                            (true, false) => "There were".to_string(),
                            (false, _) => format!("{who} had"),
                        };
                        let mut s = format!(
                            "{head} {} {when_text}{typo_note}:",
                            plural(a.total, &what(&q).replace("episodes", "episode"), &what(&q))
                        );
                        for e in eps.iter().take(TEXT_LINES) {
                            s.push_str(&format!("\n- {}", episode_line(e, off)));
                        }
                        if eps.len() > TEXT_LINES {
                            s.push_str(&format!(
                                "\n... and {} more (see episodes).",
                                a.total - TEXT_LINES as i64
                            ));
                        }
                        a.answer = s;
                    }
                    a.truncated = (eps.len() as i64) < a.total;
                    a.episodes = plain_episodes(eps);
                }
            }
            a.time_range = range.or(Some(AskRange {
                from: DateTime::<Utc>::MIN_UTC,
                to: now,
                said: "all time".into(),
            }));
            if a.time_range.as_ref().is_some_and(|r| r.said == "all time") {
                a.time_range = None;
            }
        }
    }
    Ok(a)
}

/// Episode counts per value of `key` (at any depth of the series; "series": the whole series),
/// most episodes first.
fn group(counts: &[(String, String, serde_json::Value, i64)], key: &str) -> Vec<AskGroup> {
    let mut groups: BTreeMap<String, (i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for (sev, _, series, n) in counts {
        let mut vals = Vec::new();
        if key == "series" {
            vals.push(series_name(series));
        } else {
            values_of(series, key, &mut vals);
            vals.sort();
            vals.dedup();
        }
        for v in vals {
            let g = groups.entry(v).or_default();
            g.0 += n;
            *g.1.entry(sev.clone()).or_default() += n;
        }
    }
    let mut list: Vec<AskGroup> = groups
        .into_iter()
        .map(|(value, (episodes, by_severity))| AskGroup {
            value,
            episodes,
            by_severity,
        })
        .collect();
    list.sort_by(|x, y| y.episodes.cmp(&x.episodes).then(x.value.cmp(&y.value)));
    list
}

fn fill_counts(a: &mut AskAnswer, counts: &[(String, String, serde_json::Value, i64)]) {
    a.total = counts.iter().map(|c| c.3).sum();
    for (sev, kind, _, n) in counts {
        *a.by_severity.entry(sev.clone()).or_default() += n;
        *a.by_kind.entry(kind.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn series_names_flatten_nested_labels() {
        assert_eq!(
            series_name(&json!({"metric": "SCH.M1", "labels": {"satellite": "SAT2"}})),
            "SCH.M1 satellite=SAT2"
        );
        assert_eq!(
            series_name(&json!({"metric": "t", "labels": {"site": {"rack": "R1"}}})),
            "t site.rack=R1"
        );
        assert_eq!(
            series_name(&json!({"log_monitor": "public.logs", "category": "timeout"})),
            "category=timeout log_monitor=public.logs"
        );
    }

    #[test]
    fn offsets_and_formats() {
        assert_eq!(
            resolve_offset(None, &None).map(offset_name),
            Ok("UTC".to_string())
        );
        assert_eq!(
            resolve_offset(None, &Some("UTC+2".into())).map(offset_name),
            Ok("UTC+02:00".to_string())
        );
        assert_eq!(
            resolve_offset(Some("utc-05:30"), &Some("UTC+2".into())).map(offset_name),
            Ok("UTC-05:30".to_string())
        );
        assert!(resolve_offset(Some("Mars/Olympus"), &None).is_err());
        assert_eq!(round4(30.382), "30.382");
        assert_eq!(round4(2.0), "2");
        let mut v = Vec::new();
        values_of(
            &json!({"metric": "m", "labels": {"a": {"satellite": "SAT1"}}}),
            "satellite",
            &mut v,
        );
        assert_eq!(v, vec!["SAT1"]);
    }
}
