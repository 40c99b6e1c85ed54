//! Masking and tokenising of the variable parts of a log message.
//!
//! Convention: every variable becomes the wildcard `<*>` (the same placeholder the Loghub
//! ground truth and Drain3 use), so a template is directly comparable with theirs. The kind
//! of each masked variable is still known to the caller through [`MaskKind`] on each
//! [`Token`], but it is not printed in the template: typed placeholders would make
//! `took <NUM> ms` and `took <DURATION>` two templates for one event.
//!
//! Pipeline (see [`tokenize`]):
//! 1. sanitise: control characters become spaces; the line is cut at `max_len` bytes;
//! 2. whole-message patterns, in order (URL, e-mail, UUID, timestamps, IPv6, IPv4[:port],
//!    paths, block/job ids, hex, durations/sizes, quoted strings with spaces or digits,
//!    `key=value` values). Each match becomes ONE variable even when it spans several
//!    whitespace tokens (`3.5 GB`, `2024-01-01 12:00:00`), so multi-token variables do not
//!    change the token count and cannot split a template;
//! 3. whitespace split, then per token: digit runs and mixed letter+digit segments that
//!    look like identifiers are masked inside the token (`node-12` -> `node-<*>`), and a
//!    token left with nothing but placeholders and punctuation becomes a single `<*>`;
//! 4. runs of adjacent fully-masked tokens collapse into one `<*>` (variable-length lists).

use regex::{Captures, Regex};
use std::sync::OnceLock;

/// The wildcard printed for every variable.
pub const WILDCARD: &str = "<*>";

/// Default cut-off for very long lines (bytes); longer input is truncated at a char boundary.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

/// What a masked variable looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MaskKind {
    Url,
    Email,
    Uuid,
    Timestamp,
    Ip,
    Path,
    BlockId,
    JobId,
    Hex,
    Duration,
    Quoted,
    KeyValue,
    Number,
    /// A token made of several masked pieces (`R02-M1-N0`), or a run of adjacent variables.
    Mixed,
}

/// One token of a masked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text used for clustering: `<*>` for a fully masked token, otherwise the token with
    /// any inner variables replaced by `<*>` (`node-<*>`).
    pub text: String,
    /// The original text this token stands for (several original tokens after collapsing).
    pub original: String,
    /// `Some` iff the whole token is a variable.
    pub kind: Option<MaskKind>,
}

impl Token {
    pub fn is_masked(&self) -> bool {
        self.kind.is_some()
    }
}

struct Pattern {
    re: Regex,
    kind: MaskKind,
    /// Number of leading capture groups kept verbatim (a prefix that is not the variable).
    keep_prefix: bool,
    /// Only mask when the match contains a digit.
    need_digit: bool,
    /// Only mask when the match contains whitespace or a digit (quoted strings).
    need_space_or_digit: bool,
    /// Characters (see [`features`]) every match must contain: a line lacking one of them
    /// skips the pattern without running it.
    need: u16,
}

const F_DIGIT: u16 = 1;
const F_COLON: u16 = 1 << 1;
const F_DOT: u16 = 1 << 2;
const F_DASH: u16 = 1 << 3;
const F_AT: u16 = 1 << 4;
const F_SLASH: u16 = 1 << 5;
const F_DQUOTE: u16 = 1 << 6;
const F_SQUOTE: u16 = 1 << 7;
const F_EQ: u16 = 1 << 8;
const F_BRACKET: u16 = 1 << 9;
const F_UNDERSCORE: u16 = 1 << 10;
/// `:` or `-` (MAC addresses)
const F_SEP: u16 = 1 << 11;

/// Which of the characters the patterns require occur in `s` (one pass over the bytes).
/// Masking only removes text, so this stays an upper bound while patterns are applied.
fn features(s: &str) -> u16 {
    let mut f = 0;
    for &b in s.as_bytes() {
        f |= match b {
            b'0'..=b'9' => F_DIGIT,
            b':' => F_COLON | F_SEP,
            b'.' => F_DOT,
            b'-' => F_DASH | F_SEP,
            b'@' => F_AT,
            b'/' | b'\\' => F_SLASH,
            b'"' => F_DQUOTE,
            b'\'' => F_SQUOTE,
            b'=' => F_EQ,
            b'[' => F_BRACKET,
            b'_' => F_UNDERSCORE,
            _ => 0,
        };
    }
    f
}

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let mk = |re: &str, kind: MaskKind| Pattern {
            // The patterns are literals checked by the unit tests; a typo would fail every test.
            re: Regex::new(re).unwrap_or_else(|e| panic!("bad built-in pattern {re}: {e}")),
            kind,
            keep_prefix: false,
            need_digit: false,
            need_space_or_digit: false,
            need: 0,
        };
        let mut v = vec![
            mk(r#"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s"'<>\]\)]+"#, MaskKind::Url),
            mk(r"\b[\w.+\-]+@[a-zA-Z0-9\-]+(?:\.[a-zA-Z0-9\-]+)*\.[a-zA-Z]{2,}\b", MaskKind::Email),
            mk(
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                MaskKind::Uuid,
            ),
            // ISO-8601 / log4j date-times, then bare dates, month-name dates and clock times.
            mk(
                r"\b\d{4}[-/]\d{1,2}[-/]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
                MaskKind::Timestamp,
            ),
            mk(
                r"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\s+\d{1,2}(?:,?\s+\d{4})?\s+\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s+(?:UTC|GMT|[A-Z][SD]T))?(?:\s+\d{4})?\b",
                MaskKind::Timestamp,
            ),
            // MAC addresses / colon-separated hex byte strings (before IPv6 and times)
            mk(r"\b(?:[0-9A-Fa-f]{2}[:\-]){5,}[0-9A-Fa-f]{2}\b", MaskKind::Hex),
            mk(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", MaskKind::Timestamp),
            // fully qualified host names under a common top-level domain
            mk(
                r"\b(?:[A-Za-z0-9\-]+\.)+(?:com|net|org|edu|gov|mil|io|local|localdomain|lan|internal|intranet|corp|cn|de|uk|jp|ru|fr|nl|in|br|au|us|eu)\b",
                MaskKind::Url,
            ),
            // IPv6 (bracketed `[::1]:5432`, full, or `::`-compressed, optional [..]:port)
            mk(r"\[[0-9a-fA-F]*:[0-9a-fA-F:.]*\](?::\d+)?", MaskKind::Ip),
            mk(
                r"\[?\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b(?:\]:\d+)?",
                MaskKind::Ip,
            ),
            mk(
                r"\[?\b(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?(?:\]:\d+)?",
                MaskKind::Ip,
            ),
            // IPv4 with optional leading '/', host-name prefix `host/` and :port
            mk(r"/?\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", MaskKind::Ip),
            mk(r"\bblk_-?\d+\b", MaskKind::BlockId),
            mk(
                r"\b(?:job|application|appattempt|container|attempt|task|jvm|app|stage|executor|session)_[0-9A-Za-z_]*\d[0-9A-Za-z_]*\b",
                MaskKind::JobId,
            ),
            mk(r"\b0[xX][0-9a-fA-F]+\b", MaskKind::Hex),
            // durations and sizes, the unit may follow a space: `12ms`, `3.5 GB`, `10 s`
            mk(
                r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|msec|s|secs?|mins?|h|hrs?|(?:[KMGTP]i?)?B|[kKMGT]b|bytes)\b",
                MaskKind::Duration,
            ),
        ];
        let mut long_hex = mk(r"\b[0-9a-fA-F]{8,}\b", MaskKind::Hex);
        long_hex.need_digit = true;
        v.push(long_hex);
        // Paths: a '/' that starts a token (or follows `=`, `:`, `(`, quote), two+ characters.
        let mut path = mk(
            r#"(^|[\s=:(\['"])((?:[A-Za-z]:)?/[\w.@%+~,\-]+(?:/[\w.@%+~,\-]*)*|[A-Za-z]:\\[^\s]+)"#,
            MaskKind::Path,
        );
        path.keep_prefix = true;
        v.push(path);
        let mut dq = mk(r#""[^"\n]*""#, MaskKind::Quoted);
        dq.need_space_or_digit = true;
        v.push(dq);
        // not across a double quote: interleaved quotes would mask differently on a second pass
        let mut sq = mk(r#"'[^'"\n]*'"#, MaskKind::Quoted);
        sq.need_space_or_digit = true;
        v.push(sq);
        // key=value: keep `key=`, mask the value (quoted value may contain spaces). Text glued
        // to a closing quote belongs to the value (`k=''*` -> `k=<*>`), so that masking a
        // template again changes nothing (template_of is idempotent; see tests/fuzz.rs).
        let mut kv = mk(
            r#"(\b[A-Za-z_][\w.\-]*=)((?:"[^"]*"|'[^']*')?[^\s,;)\]\}"']*)"#,
            MaskKind::KeyValue,
        );
        kv.keep_prefix = true;
        v.push(kv);
        // Required characters, in the order of the patterns above.
        let needs = [
            F_COLON | F_SLASH,          // URL
            F_AT | F_DOT,               // e-mail
            F_DASH,                     // UUID
            F_DIGIT,                    // ISO date-time
            F_DIGIT | F_COLON,          // month-name date-time
            F_SEP,                      // MAC
            F_DIGIT | F_COLON,          // clock time
            F_DOT,                      // host name
            F_BRACKET | F_COLON,        // bracketed IPv6
            F_COLON,                    // IPv6
            F_COLON,                    // compressed IPv6
            F_DIGIT | F_DOT,            // IPv4
            F_DIGIT | F_UNDERSCORE,     // block id
            F_DIGIT | F_UNDERSCORE,     // job id
            F_DIGIT,                    // 0x hex
            F_DIGIT,                    // duration / size
            F_DIGIT,                    // long hex (digit required)
            F_SLASH,                    // path
            F_DQUOTE,                   // "quoted"
            F_SQUOTE,                   // 'quoted'
            F_EQ,                       // key=value
        ];
        assert_eq!(needs.len(), v.len(), "one requirement per pattern");
        for (p, n) in v.iter_mut().zip(needs) {
            p.need = n;
        }
        v
    })
}

/// Private-use sentinels: each masked variable is replaced by one char from plane 15 that
/// encodes its index into the side table of originals. No pattern matches these chars.
const SENTINEL_BASE: u32 = 0xF0000;
const SENTINEL_MAX: u32 = 0xFFFFD;

fn sentinel_index(c: char) -> Option<usize> {
    let u = c as u32;
    (SENTINEL_BASE..=SENTINEL_MAX)
        .contains(&u)
        .then(|| (u - SENTINEL_BASE) as usize)
}

fn is_sentinel(c: char) -> bool {
    sentinel_index(c).is_some()
}

/// Replace control characters and private-use sentinels, cut at `max_len` bytes.
fn sanitise(message: &str, max_len: usize) -> String {
    let mut end = message.len().min(max_len);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end]
        .chars()
        .map(|c| {
            if c.is_control() || is_sentinel(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Whole-message masking: returns the text with sentinels and the table of (original, kind).
fn mask_patterns(text: String) -> (String, Vec<(String, MaskKind)>) {
    let mut table: Vec<(String, MaskKind)> = Vec::new();
    let mut s = text;
    let feats = features(&s);
    for p in patterns() {
        if p.need & feats != p.need || !p.re.is_match(&s) {
            continue;
        }
        let replaced = p.re.replace_all(&s, |c: &Captures| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let (prefix, var) = if p.keep_prefix {
                (
                    c.get(1).map_or("", |m| m.as_str()),
                    c.get(2).map_or("", |m| m.as_str()),
                )
            } else {
                ("", whole)
            };
            let has_digit = var.chars().any(|ch| ch.is_ascii_digit());
            let skip = (p.need_digit && !has_digit)
                || (p.need_space_or_digit && !has_digit && !var.chars().any(char::is_whitespace))
                || var.is_empty()
                || var.chars().any(is_sentinel) && var.chars().count() == 1;
            let idx = SENTINEL_BASE as usize + table.len();
            match (skip, u32::try_from(idx).ok().and_then(char::from_u32)) {
                (false, Some(ch)) if idx as u32 <= SENTINEL_MAX => {
                    table.push((restore(var, &table), p.kind));
                    format!("{prefix}{ch}")
                }
                _ => whole.to_string(),
            }
        });
        s = replaced.into_owned();
    }
    (s, table)
}

/// Expand sentinels nested inside an outer match back to their original text.
fn restore(s: &str, table: &[(String, MaskKind)]) -> String {
    if !s.chars().any(is_sentinel) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match sentinel_index(c).and_then(|i| table.get(i)) {
            Some((orig, _)) => orig.clone(),
            None => c.to_string(),
        })
        .collect()
}

fn is_open(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '"' | '\'' | '<')
}
fn is_close(c: char) -> bool {
    matches!(
        c,
        ')' | ']' | '}' | '"' | '\'' | ',' | ';' | ':' | '.' | '>' | '!' | '?'
    )
}

/// Mask identifier-like alphanumeric segments inside one whitespace token.
/// Returns (clustering text, kind if the whole token is a variable).
fn mask_token(tok: &str, table: &[(String, MaskKind)]) -> (String, Option<MaskKind>) {
    let chars: Vec<char> = tok.chars().collect();
    let mut out = String::with_capacity(tok.len());
    let mut kinds: Vec<MaskKind> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(k) = sentinel_index(c) {
            out.push_str(WILDCARD);
            kinds.push(table.get(k).map_or(MaskKind::Mixed, |t| t.1));
            i += 1;
            continue;
        }
        if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            let seg: String = chars[start..i].iter().collect();
            let digits = seg.chars().filter(|ch| ch.is_ascii_digit()).count();
            let after_delim = start > 0;
            let all_digits = digits == seg.chars().count();
            let masked = digits > 0 && (all_digits || after_delim || digits >= 2);
            if masked {
                out.push_str(WILDCARD);
                kinds.push(MaskKind::Number);
            } else {
                out.push_str(&seg);
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    if kinds.is_empty() {
        return (out, None);
    }
    // A token whose core holds only placeholders and punctuation is one variable; keep
    // surrounding brackets/trailing punctuation so `(<*>),` stays distinguishable.
    let lead: String = out
        .chars()
        .take_while(|&c| is_open(c) && c != '<')
        .collect();
    let rest = &out[lead.len()..];
    let trail_len: usize = rest
        .chars()
        .rev()
        .take_while(|&c| is_close(c) && c != '>')
        .map(char::len_utf8)
        .sum();
    let core = &rest[..rest.len() - trail_len];
    let trail = &rest[rest.len() - trail_len..];
    let core_wo = core.replace(WILDCARD, "");
    // `broadcast_11_piece0`, `rdd_42_35`: an underscore identifier with numeric parts is an id.
    let underscore_id = core.contains('_')
        && core.contains(WILDCARD)
        && core_wo.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !core.is_empty() && (underscore_id || core_wo.chars().all(|c| !c.is_alphanumeric())) {
        let kind = if kinds.len() == 1 {
            kinds[0]
        } else {
            MaskKind::Mixed
        };
        if lead.is_empty() && trail.is_empty() {
            return (WILDCARD.to_string(), Some(kind));
        }
        return (format!("{lead}{WILDCARD}{trail}"), None);
    }
    (out, None)
}

/// Tokenise and mask a message (see the module docs for the steps).
pub fn tokenize(message: &str, max_len: usize) -> Vec<Token> {
    let clean = sanitise(message, max_len);
    let (masked, table) = mask_patterns(clean);
    let mut out: Vec<Token> = Vec::new();
    for raw in masked.split_whitespace() {
        let (text, kind) = mask_token(raw, &table);
        let original = restore(raw, &table);
        if kind.is_some() {
            if let Some(prev) = out.last_mut() {
                if prev.is_masked() {
                    prev.original.push(' ');
                    prev.original.push_str(&original);
                    prev.kind = Some(MaskKind::Mixed);
                    continue;
                }
            }
        }
        out.push(Token {
            text,
            original,
            kind,
        });
    }
    out
}

/// The masked, normalised form of a message: variables become `<*>`, whitespace runs become
/// one space, adjacent variables collapse into one `<*>`.
///
/// ```
/// assert_eq!(
///     tidewatch_logs::template_of("Connection from 10.0.0.1:5432 took 12ms"),
///     "Connection from <*> took <*>"
/// );
/// ```
pub fn template_of(message: &str) -> String {
    tokenize(message, DEFAULT_MAX_LEN)
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
