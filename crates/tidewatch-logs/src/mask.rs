//! Masking and tokenising of the variable parts of a log message.
//!
//! Convention: every variable becomes the wildcard `<*>` (the same placeholder the Loghub
//! ground truth and Drain3 use), so a template is directly comparable with theirs. The kind
//! of each masked variable is still known to the caller through [`MaskKind`] on each
//! [`Token`], but it is not printed in the template: typed placeholders would make
//! `took <NUM> ms` and `took <DURATION>` two templates for one event.
//!
//! Pipeline (one pass over the bytes per step, no regular expressions):
//! 1. sanitise: control characters and Unicode white space become one ASCII space; the
//!    line is cut at `max_len` bytes;
//! 2. one left-to-right scan that tries, at each word start (and at `/`, `[`), hand-written
//!    recognisers of shapes that are variables in any log, in this order: URL, e-mail, UUID,
//!    ISO date-time, month-name date-time, MAC, clock time, host name (`name.name:port`, a
//!    dotted name under a common top-level domain or a country's second level such as
//!    `cuhk.edu.hk`), IPv6, IPv4[:port], `0x` hex, duration/size, hex of six or more digits
//!    with a decimal digit, path. A match is ONE variable even when it spans several
//!    whitespace tokens (`3.5 GB`, `2024-01-01 12:00:00`), so multi-token variables do not
//!    change the token count. No recogniser is written for one system's identifiers
//!    (`blk_-42`, `job_1445_0020` are masked by the generic rules of step 4);
//! 3. optional ([`MaskOptions`]): `key=value` values (the key is kept; on by default), and
//!    quoted strings with a space or a digit as one variable (off by default: a quoted HTTP
//!    request line holds its method, `"GET /x HTTP/1.1"`, which tells events apart);
//! 4. whitespace split, then per token: digit runs and mixed letter+digit segments that
//!    look like identifiers are masked inside the token (`node-12` -> `node-<*>`), a `-`
//!    before a masked number after a separator is its sign (`blk_-42` -> `blk_<*>`), and a
//!    token left with nothing but placeholders and punctuation (or a snake_case identifier
//!    with numeric parts) becomes a single `<*>`;
//! 5. runs of adjacent fully-masked tokens collapse into one `<*>` (variable-length lists).

use std::cell::RefCell;

/// The wildcard printed for every variable.
pub const WILDCARD: &str = "<*>";

/// Default cut-off for very long lines (bytes); longer input is truncated at a char boundary.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

/// The optional recognisers (step 3 of the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaskOptions {
    /// Mask a quoted string holding a space or a digit as one variable.
    pub quoted: bool,
    /// Mask the value of `key=value` (the key is kept).
    pub key_values: bool,
}

impl Default for MaskOptions {
    fn default() -> Self {
        MaskOptions {
            quoted: false,
            key_values: true,
        }
    }
}

/// What a masked variable looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MaskKind {
    Url,
    Email,
    Uuid,
    Timestamp,
    Ip,
    Path,
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

/// A variable found by the scanner: a byte range of the sanitised line.
#[derive(Debug, Clone, Copy)]
struct Var {
    start: usize,
    end: usize,
    kind: MaskKind,
}

/// One token of [`Masked`]: byte ranges into its buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    /// Range of the clustering text in `Masked::texts`, or in `Masked::line` if `in_line`.
    text: (u32, u32),
    in_line: bool,
    /// Range of the original text in `Masked::line`.
    orig: (u32, u32),
    /// Range in `Masked::parts` when several tokens were collapsed into this one.
    parts: (u32, u32),
    pub(crate) kind: Option<MaskKind>,
}

/// Reusable buffers holding one masked message (no allocation per token).
#[derive(Debug, Clone, Default)]
pub(crate) struct Masked {
    line: String,
    texts: String,
    toks: Vec<Tok>,
    parts: Vec<(u32, u32)>,
    vars: Vec<Var>,
    tmp: Vec<Var>,
    /// Starts of the words (outside variables) holding an ASCII digit.
    digit_words: Vec<u32>,
}

impl Masked {
    pub(crate) fn len(&self) -> usize {
        self.toks.len()
    }

    pub(crate) fn text(&self, i: usize) -> &str {
        self.toks
            .get(i)
            .and_then(|t| {
                let src = if t.in_line { &self.line } else { &self.texts };
                src.get(t.text.0 as usize..t.text.1 as usize)
            })
            .unwrap_or("")
    }

    /// [`Masked::text`] as bytes (no character-boundary checks; for comparisons).
    #[inline]
    pub(crate) fn text_bytes(&self, i: usize) -> &[u8] {
        self.toks
            .get(i)
            .and_then(|t| {
                let src = if t.in_line { &self.line } else { &self.texts };
                src.as_bytes().get(t.text.0 as usize..t.text.1 as usize)
            })
            .unwrap_or(b"")
    }

    pub(crate) fn is_masked(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.kind.is_some())
    }

    /// The original text of token `i`; collapsed tokens are joined by one space.
    pub(crate) fn original(&self, i: usize) -> String {
        let Some(t) = self.toks.get(i) else {
            return String::new();
        };
        let slice = |(a, b): (u32, u32)| self.line.get(a as usize..b as usize).unwrap_or("");
        if t.parts.0 == t.parts.1 {
            return slice(t.orig).to_string();
        }
        let mut s = String::with_capacity((t.orig.1 - t.orig.0) as usize);
        for (k, p) in self.parts[t.parts.0 as usize..t.parts.1 as usize]
            .iter()
            .enumerate()
        {
            if k > 0 {
                s.push(' ');
            }
            s.push_str(slice(*p));
        }
        s
    }

    /// Replace the content by the given tokens (text, original, masked), used to feed
    /// templates back into a miner.
    pub(crate) fn set_tokens<'a>(&mut self, toks: impl IntoIterator<Item = &'a str>) {
        self.clear();
        for t in toks {
            let a = self.texts.len() as u32;
            self.texts.push_str(t);
            let b = self.texts.len() as u32;
            let o = self.line.len() as u32;
            self.line.push_str(t);
            self.line.push(' ');
            self.toks.push(Tok {
                text: (a, b),
                in_line: false,
                orig: (o, o + (b - a)),
                parts: (0, 0),
                kind: (t == WILDCARD).then_some(MaskKind::Mixed),
            });
        }
    }

    fn clear(&mut self) {
        self.line.clear();
        self.texts.clear();
        self.toks.clear();
        self.parts.clear();
        self.vars.clear();
        self.tmp.clear();
        self.digit_words.clear();
    }

    /// Mask `message` into these buffers (see the module docs for the steps).
    pub(crate) fn mask(&mut self, message: &str, max_len: usize, opts: MaskOptions) {
        self.clear();
        let found = sanitise(message, max_len, &mut self.line);
        let line = self.line.as_str();
        let s = line.as_bytes();
        let seen = scan(line, found, &mut self.vars, &mut self.digit_words);
        if opts.quoted && seen & SEEN_DQUOTE != 0 {
            quotes(s, b'"', &mut self.vars, &mut self.tmp);
        }
        if opts.quoted && seen & SEEN_SQUOTE != 0 {
            quotes(s, b'\'', &mut self.vars, &mut self.tmp);
        }
        if opts.key_values && seen & SEEN_EQ != 0 {
            key_values(line, &mut self.vars, &mut self.tmp);
        }
        split_tokens(
            line,
            &self.vars,
            &self.digit_words,
            &mut self.texts,
            &mut self.toks,
            &mut self.parts,
        );
    }

    pub(crate) fn to_tokens(&self) -> Vec<Token> {
        (0..self.len())
            .map(|i| Token {
                text: self.text(i).to_string(),
                original: self.original(i),
                kind: self.toks[i].kind,
            })
            .collect()
    }

    /// The token texts joined by one space.
    pub(crate) fn template_into(&self, out: &mut String) {
        for i in 0..self.len() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.text(i));
        }
    }
}

/// Private-use characters the earlier regex masker used as placeholders; still treated as
/// separators so templates stay as they were.
fn is_sentinel(c: char) -> bool {
    ('\u{F0000}'..='\u{FFFFD}').contains(&c)
}

/// What [`scan_bytes`] found in a line.
const B_CLEAN: u8 = 1;
const B_AT: u8 = 2;
const B_COLON: u8 = 4;

/// One pass, 8 bytes at a time: whether any byte is a control character, DEL or non-ASCII
/// (`B_CLEAN`: needs cleaning), an `@` or a `:`. Uses the "has byte less than n" and "has
/// zero byte" tests of S. E. Anderson's Bit Twiddling Hacks (exact as any-tests, n <= 128).
fn scan_bytes(bytes: &[u8]) -> u8 {
    const L: u64 = 0x0101_0101_0101_0101;
    const H: u64 = 0x8080_8080_8080_8080;
    let has_zero = |y: u64| y.wrapping_sub(L) & !y & H != 0;
    let mut found = 0;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let below_space = x.wrapping_sub(0x20 * L) & !x & H != 0;
        if below_space || has_zero(x ^ (0x7f * L)) || x & H != 0 {
            found |= B_CLEAN;
        }
        if has_zero(x ^ (u64::from(b'@') * L)) {
            found |= B_AT;
        }
        if has_zero(x ^ (u64::from(b':') * L)) {
            found |= B_COLON;
        }
    }
    for &b in chunks.remainder() {
        found |= match b {
            0..=0x1f | 0x7f..=0xff => B_CLEAN,
            b'@' => B_AT,
            b':' => B_COLON,
            _ => 0,
        };
    }
    found
}

/// Copy `message` (cut at `max_len` bytes) into `out`, with control characters, white space
/// and sentinels as one ASCII space each. Returns what [`scan_bytes`] found.
fn sanitise(message: &str, max_len: usize, out: &mut String) -> u8 {
    let mut end = message.len().min(max_len);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let src = &message[..end];
    let bytes = src.as_bytes();
    let found = scan_bytes(bytes);
    out.push_str(src);
    if found & B_CLEAN == 0 {
        return found;
    }
    out.clear();
    out.reserve(src.len());
    let mut ascii_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if b < 0x20 || b == 0x7f {
                out.push_str(&src[ascii_from..i]);
                out.push(' ');
                ascii_from = i + 1;
            }
            i += 1;
            continue;
        }
        let Some(c) = src[i..].chars().next() else {
            break;
        };
        let w = c.len_utf8();
        if c.is_control() || c.is_whitespace() || is_sentinel(c) {
            out.push_str(&src[ascii_from..i]);
            out.push(' ');
            ascii_from = i + w;
        }
        i += w;
    }
    out.push_str(&src[ascii_from..]);
    found
}

#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

#[inline]
fn run(s: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < s.len() && f(s[i]) {
        i += 1;
    }
    i
}

#[inline]
fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

#[inline]
fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

#[inline]
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// End of the run from `i` (before `limit`) of ASCII bytes accepted by `ascii` and of
/// alphanumeric non-ASCII characters (`\w`-like classes).
fn run_word(line: &str, mut i: usize, limit: usize, ascii: impl Fn(u8) -> bool) -> usize {
    let s = line.as_bytes();
    while i < limit.min(s.len()) {
        let b = s[i];
        if b < 0x80 {
            if !ascii(b) {
                break;
            }
            i += 1;
        } else {
            match char_at(line, i) {
                Some(c) if c.is_alphanumeric() => i += c.len_utf8(),
                _ => break,
            }
        }
    }
    i
}

fn char_at(line: &str, i: usize) -> Option<char> {
    line.get(i..)?.chars().next()
}

fn char_before(line: &str, i: usize) -> Option<char> {
    line.get(..i)?.chars().next_back()
}

/// `\w` at byte `i` (ASCII letters, digits, `_`, and any alphanumeric character).
fn word_at(line: &str, i: usize) -> bool {
    match line.as_bytes().get(i) {
        None => false,
        Some(&b) if b < 0x80 => is_word_byte(b),
        Some(_) => char_at(line, i).is_some_and(char::is_alphanumeric),
    }
}

fn word_before(line: &str, i: usize) -> bool {
    match i.checked_sub(1).and_then(|j| line.as_bytes().get(j)) {
        None => false,
        Some(&b) if b < 0x80 => is_word_byte(b),
        Some(_) => char_before(line, i).is_some_and(char::is_alphanumeric),
    }
}

/// Step 2: one left-to-right scan trying the recognisers at each possible start.
const SEEN_DQUOTE: u8 = 1;
const SEEN_SQUOTE: u8 = 2;
const SEEN_EQ: u8 = 4;

/// Step 2. Returns which of `"`, `'`, `=` occur outside the variables found (steps 3 need
/// them).
fn scan(line: &str, found: u8, vars: &mut Vec<Var>, digit_words: &mut Vec<u32>) -> u8 {
    let s = line.as_bytes();
    let mut seen = 0;
    let facts = LineFacts {
        at: found & B_AT != 0,
        colon: found & B_COLON != 0,
    };
    let mut p = 0;
    // The end of the last variable: the character before it counts as a non-word
    // placeholder, as it did when variables were replaced one pattern at a time.
    let mut last_end = usize::MAX;
    while p < s.len() {
        let b = s[p];
        let mut next = p + 1;
        let found = if WORD[b as usize] & W_WORD != 0 {
            let w = Shape::of(s, p);
            next = w.end;
            if w.digits > 0 {
                digit_words.push(p as u32);
            }
            // words are skipped whole, so only a non-ASCII character can precede one
            let nb = at(s, w.end);
            // only these word shapes can start a variable
            let may_start = w.digits > 0
                || w.underscore
                || matches!(nb, b':' | b'+' | b'.' | b'-' | b'@')
                || (b.is_ascii_uppercase()
                    && matches!(nb, b' ' | b',')
                    && (name_at(s, p, is_month).is_some() || name_at(s, p, is_weekday).is_some()));
            if !may_start || (p != last_end && p > 0 && s[p - 1] >= 0x80 && word_before(line, p)) {
                None
            } else {
                at_word(line, s, p, p == last_end, &w, &facts)
            }
        } else if b == b'/' {
            at_slash(s, p, p == last_end, line)
        } else if b == b'[' {
            bracket_ipv6(s, p)
                .map(|e| (e, MaskKind::Ip))
                .or_else(|| ipv6(line, s, p).map(|e| (e, MaskKind::Ip)))
        } else {
            seen |= match b {
                b'"' => SEEN_DQUOTE,
                b'\'' => SEEN_SQUOTE,
                b'=' => SEEN_EQ,
                _ => 0,
            };
            None
        };
        match found {
            Some((end, kind)) if end > p => {
                vars.push(Var {
                    start: p,
                    end,
                    kind,
                });
                p = end;
                last_end = end;
            }
            // no recogniser starts inside a word
            _ => p = next,
        }
    }
    seen
}

const W_WORD: u8 = 1;
const W_DIGIT: u8 = 2;
const W_HEX: u8 = 4;
const W_UNDERSCORE: u8 = 8;

/// Word-character classes of each byte value (ASCII only).
static WORD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            W_WORD | W_DIGIT | W_HEX
        } else if c.is_ascii_hexdigit() {
            W_WORD | W_HEX
        } else if c.is_ascii_alphabetic() {
            W_WORD
        } else if c == b'_' {
            W_WORD | W_UNDERSCORE
        } else {
            0
        };
        b += 1;
    }
    t
};

/// The ASCII word (`[A-Za-z0-9_]+`) starting at a position, measured in one pass.
struct Shape {
    end: usize,
    digits: usize,
    all_hex: bool,
    underscore: bool,
}

impl Shape {
    fn of(s: &[u8], p: usize) -> Shape {
        let mut i = p;
        let mut digits = 0;
        let mut and = W_HEX;
        let mut or = 0;
        while let Some(&c) = s.get(i) {
            let k = WORD[c as usize];
            if k & W_WORD == 0 {
                break;
            }
            digits += usize::from(k & W_DIGIT != 0);
            and &= k;
            or |= k;
            i += 1;
        }
        Shape {
            end: i,
            digits,
            all_hex: and & W_HEX != 0,
            underscore: or & W_UNDERSCORE != 0,
        }
    }
}

/// Facts about the whole line that some recognisers need.
struct LineFacts {
    at: bool,
    colon: bool,
}

/// Recognisers that start at a word start (`\b` then a letter, digit or `_`). The shape of
/// the word (length, digits, hex) and the byte after it decide which can match at all.
fn at_word(
    line: &str,
    s: &[u8],
    p: usize,
    after_var: bool,
    w: &Shape,
    facts: &LineFacts,
) -> Option<(usize, MaskKind)> {
    use MaskKind::*;
    let b = s[p];
    let len = w.end - p;
    let nb = at(s, w.end);
    let n_digit = w.digits;
    let all_digit = n_digit == len;
    let all_hex = w.all_hex;
    let underscore = w.underscore;
    let alpha = b.is_ascii_alphabetic();
    if facts.colon && alpha && !underscore && matches!(nb, b':' | b'+' | b'.' | b'-') {
        if let Some(e) = url(s, p) {
            return Some((e, Url));
        }
    }
    if facts.at && matches!(nb, b'@' | b'.' | b'+' | b'-') {
        if let Some(e) = email(line, s, p) {
            return Some((e, Email));
        }
    }
    if all_hex && len == 8 && nb == b'-' {
        if let Some(e) = uuid(line, s, p) {
            return Some((e, Uuid));
        }
    }
    if all_digit && len == 4 && matches!(nb, b'-' | b'/') {
        if let Some(e) = iso_datetime(line, s, p) {
            return Some((e, Timestamp));
        }
    }
    if b.is_ascii_uppercase() && len >= 3 && matches!(nb, b' ' | b',') {
        if let Some(e) = month_datetime(line, s, p) {
            return Some((e, Timestamp));
        }
    }
    if all_hex && len == 2 && matches!(nb, b':' | b'-') {
        if let Some(e) = mac(line, s, p) {
            return Some((e, Hex));
        }
    }
    if all_digit && len <= 2 && nb == b':' {
        if let Some(e) = clock(line, s, p) {
            return Some((e, Timestamp));
        }
    }
    if matches!(nb, b'.' | b'-') {
        if let Some(e) = host(line, s, p) {
            return Some((e, Url));
        }
    }
    if all_hex && len <= 4 && nb == b':' {
        if let Some(e) = ipv6(line, s, p) {
            return Some((e, Ip));
        }
    }
    if all_digit && len <= 3 && nb == b'.' {
        if let Some(e) = ipv4(line, s, p) {
            return Some((e, Ip));
        }
    }
    if b == b'0' && len >= 3 {
        if let Some(e) = hex0x(line, s, p) {
            return Some((e, Hex));
        }
    }
    if is_digit(b) && (!all_digit || matches!(nb, b'.' | b' ' | 0xC2)) {
        if let Some(e) = duration(line, s, p) {
            return Some((e, Duration));
        }
    }
    if all_hex && len >= 6 && n_digit > 0 {
        if let Some(e) = long_hex(line, s, p) {
            return Some((e, Hex));
        }
    }
    // a drive-letter path (`C:\x`, `C:/x`) after a path prefix character
    if alpha && len == 1 && nb == b':' && path_prefix_ok(s, p, after_var) {
        if let Some(e) = path(line, s, p) {
            return Some((e, Path));
        }
    }
    None
}

fn at_slash(s: &[u8], p: usize, after_var: bool, line: &str) -> Option<(usize, MaskKind)> {
    // IPv4 may carry a leading '/' (`/10.0.0.1:50010`)
    if is_digit(at(s, p + 1)) {
        if let Some(e) = ipv4(line, s, p + 1) {
            return Some((e, MaskKind::Ip));
        }
    }
    if path_prefix_ok(s, p, after_var) {
        return path(line, s, p).map(|e| (e, MaskKind::Path));
    }
    None
}

/// A path starts the line or follows white space, `=`, `:`, `(`, `[` or a quote.
fn path_prefix_ok(s: &[u8], p: usize, after_var: bool) -> bool {
    p == 0 || (!after_var && matches!(s[p - 1], b' ' | b'=' | b':' | b'(' | b'[' | b'\'' | b'"'))
}

/// `scheme://rest`: a letter, then letters, digits, `+.-`, then `://` and one or more
/// characters up to white space, a quote, `<`, `>`, `]` or `)`.
fn url(s: &[u8], p: usize) -> Option<usize> {
    let q = run(s, p + 1, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')
    });
    if !s.get(q..)?.starts_with(b"://") {
        return None;
    }
    let r = run(s, q + 3, |b| {
        !matches!(b, b' ' | b'"' | b'\'' | b'<' | b'>' | b']' | b')')
    });
    (r > q + 3).then_some(r)
}

/// `local@label(.label)*.tld`: the last dot-label whose letters (2 or more) end a word.
fn email(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let q = run(s, p, |b| is_word_byte(b) || matches!(b, b'.' | b'+' | b'-'));
    if at(s, q) != b'@' {
        return None;
    }
    last_label_match(s, q + 1, |ls| {
        let letters = run(s, ls, |b| b.is_ascii_alphabetic());
        (letters - ls >= 2 && !word_at(line, letters)).then_some(letters)
    })
}

/// Dot-separated labels (`[A-Za-z0-9-]+`) from `p`: the end given by `tail` for the last
/// label after the first for which it gives one (the longest match, as a greedy
/// `(label\.)+tail` would find).
fn last_label_match(s: &[u8], p: usize, tail: impl Fn(usize) -> Option<usize>) -> Option<usize> {
    let label = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    let mut i = run(s, p, label);
    if i == p {
        return None;
    }
    let mut best = None;
    while at(s, i) == b'.' {
        let ls = i + 1;
        let le = run(s, ls, label);
        if le == ls {
            break;
        }
        best = tail(ls).or(best);
        i = le;
    }
    best
}

/// Exactly `n` hex digits at `i`.
fn hex_n(s: &[u8], i: usize, n: usize) -> bool {
    s.get(i..i + n)
        .is_some_and(|w| w.iter().all(|&b| is_hex(b)))
}

/// 8-4-4-4-12 hex digits.
fn uuid(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let mut i = p;
    for (k, n) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if !hex_n(s, i, n) {
            return None;
        }
        i += n;
        if k < 4 {
            if at(s, i) != b'-' {
                return None;
            }
            i += 1;
        }
    }
    (!word_at(line, i)).then_some(i)
}

/// A run of 1..=max digits at `i` followed by a non-digit: its end.
fn digits_upto(s: &[u8], i: usize, max: usize) -> Option<usize> {
    let e = run(s, i, is_digit);
    (e > i && e - i <= max).then_some(e)
}

/// Exactly `n` digits at `i` not followed by another digit.
fn digits_exact(s: &[u8], i: usize, n: usize) -> Option<usize> {
    let e = run(s, i, is_digit);
    (e - i == n).then_some(e)
}

/// `[.,]\d+` at `i`: its end.
fn fraction(s: &[u8], i: usize) -> Option<usize> {
    (matches!(at(s, i), b'.' | b',') && is_digit(at(s, i + 1))).then(|| run(s, i + 1, is_digit))
}

/// ISO-8601 / log4j date, optionally with a time: `\d{4}[-/]\d{1,2}[-/]\d{1,2}` then
/// `[T ]H:MM[:SS][.frac][Z|+HH[:]MM]`, ending at a word boundary (the longest such form).
fn iso_datetime(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let mut i = digits_exact(s, p, 4)?;
    for _ in 0..2 {
        if !matches!(at(s, i), b'-' | b'/') {
            return None;
        }
        i = digits_upto(s, i + 1, 2)?;
    }
    let date_end = i;
    if matches!(at(s, i), b'T' | b' ') {
        if let Some(e) = iso_time(line, s, i + 1) {
            return Some(e);
        }
    }
    (!word_at(line, date_end)).then_some(date_end)
}

/// The time part of [`iso_datetime`], trying optional parts longest first.
fn iso_time(line: &str, s: &[u8], i: usize) -> Option<usize> {
    let h = digits_upto(s, i, 2)?;
    if at(s, h) != b':' {
        return None;
    }
    let m = digits_exact(s, h + 1, 2)?;
    let sec = (at(s, m) == b':')
        .then(|| digits_exact(s, m + 1, 2))
        .flatten();
    for a in [sec, Some(m)].into_iter().flatten() {
        for b in [fraction(s, a), Some(a)].into_iter().flatten() {
            let mut ends = [None; 3];
            match at(s, b) {
                b'Z' => ends[0] = Some(b + 1),
                b'+' | b'-' => {
                    if let Some(hh) = digits_exact(s, b + 1, 2).or_else(|| {
                        // `+0100`: \d{2} then \d{2} without a colon
                        (run(s, b + 1, is_digit) - (b + 1) == 4).then_some(b + 3)
                    }) {
                        if at(s, hh) == b':' {
                            ends[0] = digits_exact(s, hh + 1, 2);
                        }
                        if ends[0].is_none() {
                            ends[1] = digits_exact(s, hh, 2);
                        }
                    }
                }
                _ => {}
            }
            ends[2] = Some(b);
            if let Some(e) = ends.into_iter().flatten().find(|&e| !word_at(line, e)) {
                return Some(e);
            }
        }
    }
    None
}

fn is_weekday(w: [u8; 3]) -> bool {
    matches!(
        &w,
        b"Mon" | b"Tue" | b"Wed" | b"Thu" | b"Fri" | b"Sat" | b"Sun"
    )
}

fn is_month(w: [u8; 3]) -> bool {
    matches!(
        &w,
        b"Jan"
            | b"Feb"
            | b"Mar"
            | b"Apr"
            | b"May"
            | b"Jun"
            | b"Jul"
            | b"Aug"
            | b"Sep"
            | b"Oct"
            | b"Nov"
            | b"Dec"
    )
}

/// A name of three letters accepted by `is` at `i`, then lower-case letters: the end.
fn name_at(s: &[u8], i: usize, is: fn([u8; 3]) -> bool) -> Option<usize> {
    let w = s.get(i..i + 3)?;
    is([w[0], w[1], w[2]]).then(|| run(s, i + 3, |b| b.is_ascii_lowercase()))
}

fn spaces(s: &[u8], i: usize) -> Option<usize> {
    let e = run(s, i, |b| b == b' ');
    (e > i).then_some(e)
}

/// `[Weekday[,] ]Month D[[,] YYYY] H:MM:SS[.frac][ UTC|GMT|[A-Z][SD]T][ YYYY]`.
fn month_datetime(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let mut i = p;
    if let Some(e) = name_at(s, p, is_weekday) {
        let e = if at(s, e) == b',' { e + 1 } else { e };
        i = spaces(s, e)?;
    }
    let m = name_at(s, i, is_month)?;
    let d = digits_upto(s, spaces(s, m)?, 2)?;
    // optional year after the day
    let with_year = {
        let c = if at(s, d) == b',' { d + 1 } else { d };
        spaces(s, c)
            .and_then(|y| digits_exact(s, y, 4))
            .and_then(|y| spaces(s, y))
    };
    for t in [with_year, spaces(s, d)].into_iter().flatten() {
        let Some(e) = clock_core(s, t) else {
            continue;
        };
        for e in [fraction(s, e), Some(e)].into_iter().flatten() {
            let tz = spaces(s, e).and_then(|z| {
                let w = s.get(z..z + 3)?;
                let ok = w == b"UTC"
                    || w == b"GMT"
                    || (w[0].is_ascii_uppercase() && matches!(w[1], b'S' | b'D') && w[2] == b'T');
                ok.then_some(z + 3)
            });
            for e in [tz, Some(e)].into_iter().flatten() {
                let year = spaces(s, e).and_then(|y| digits_exact(s, y, 4));
                if let Some(e) = [year, Some(e)]
                    .into_iter()
                    .flatten()
                    .find(|&e| !word_at(line, e))
                {
                    return Some(e);
                }
            }
        }
    }
    None
}

/// `H:MM:SS` (hour one or two digits): its end.
fn clock_core(s: &[u8], i: usize) -> Option<usize> {
    let h = digits_upto(s, i, 2)?;
    if at(s, h) != b':' {
        return None;
    }
    let m = digits_exact(s, h + 1, 2)?;
    if at(s, m) != b':' {
        return None;
    }
    digits_exact(s, m + 1, 2)
}

/// A clock time `H:MM:SS[.frac]` ending at a word boundary.
fn clock(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let e = clock_core(s, p)?;
    [fraction(s, e), Some(e)]
        .into_iter()
        .flatten()
        .find(|&e| !word_at(line, e))
}

/// MAC addresses and other colon/dash-separated hex byte strings (six or more bytes).
fn mac(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let mut groups = 0;
    let mut i = p;
    while hex_n(s, i, 2) && matches!(at(s, i + 2), b':' | b'-') {
        groups += 1;
        i += 3;
    }
    if groups >= 5 && hex_n(s, i, 2) && !word_at(line, i + 2) {
        return Some(i + 2);
    }
    // the last separator ends the match (a word boundary)
    (groups >= 6).then(|| i - 1)
}

/// Common top-level domains.
fn is_tld(w: &[u8]) -> bool {
    matches!(
        w,
        b"com"
            | b"net"
            | b"org"
            | b"edu"
            | b"gov"
            | b"mil"
            | b"io"
            | b"local"
            | b"localdomain"
            | b"lan"
            | b"internal"
            | b"intranet"
            | b"corp"
            | b"cn"
            | b"de"
            | b"uk"
            | b"jp"
            | b"ru"
            | b"fr"
            | b"nl"
            | b"in"
            | b"br"
            | b"au"
            | b"us"
            | b"eu"
    )
}

/// A host name: any dotted name followed by `:port` (`proxy.cse.cuhk.edu.hk:5070`,
/// `sinaimg.cn:80`); a dotted name ending in a country code under a generic second level
/// (`cuhk.edu.hk`, `bbc.co.uk`); else the longest dotted name whose last label (a word) is a
/// common top-level domain. Java-like names (`org.apache.Foo`) match none of these.
fn host(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let label = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    // label starts after the first, and the end of the name
    let mut starts = [0usize; 2];
    let mut dots = 0;
    let mut i = run(s, p, label);
    while at(s, i) == b'.' && label(at(s, i + 1)) {
        starts = [starts[1], i + 1];
        dots += 1;
        i = run(s, i + 1, label);
    }
    // a dotted quad is an IPv4 address (recognised next)
    let named = s[p..i].iter().any(u8::is_ascii_alphabetic);
    if named && dots > 0 && at(s, i) == b':' {
        if let Some(e) = digits_upto(s, i + 1, 5) {
            if !word_at(line, e) {
                return Some(e);
            }
        }
    }
    if dots >= 2 && !word_at(line, i) {
        let last = &s[starts[1]..i];
        let second = &s[starts[0]..starts[1] - 1];
        if last.len() == 2
            && last.iter().all(u8::is_ascii_lowercase)
            && matches!(
                second,
                b"com" | b"edu" | b"org" | b"net" | b"gov" | b"ac" | b"co"
            )
        {
            return Some(i);
        }
    }
    last_label_match(s, p, |ls| {
        if !s[ls].is_ascii_lowercase() {
            return None;
        }
        let we = run(s, ls, is_word_byte);
        (is_tld(&s[ls..we]) && !word_at(line, we)).then_some(we)
    })
}

/// `[`hex`:`hex...`]`, optionally `:port` (bracketed IPv6 such as `[::1]:5432`).
fn bracket_ipv6(s: &[u8], p: usize) -> Option<usize> {
    let i = run(s, p + 1, is_hex);
    if at(s, i) != b':' {
        return None;
    }
    let i = run(s, i + 1, |b| is_hex(b) || b == b':' || b == b'.');
    if at(s, i) != b']' {
        return None;
    }
    Some(port_after(s, i + 1))
}

/// `:\d+` at `i` if present: its end, else `i`.
fn port_after(s: &[u8], i: usize) -> usize {
    if at(s, i) == b':' && is_digit(at(s, i + 1)) {
        run(s, i + 1, is_digit)
    } else {
        i
    }
}

/// A hex group of one to four digits followed by `:`: the position after the colon.
fn hex_group_colon(s: &[u8], i: usize) -> Option<usize> {
    let e = run(s, i, is_hex);
    (e > i && e - i <= 4 && at(s, e) == b':').then_some(e + 1)
}

/// Full (eight groups) or `::`-compressed IPv6, optionally `[...]:port`.
fn ipv6(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let start = if s[p] == b'[' { p + 1 } else { p };
    if !is_hex(at(s, start)) {
        return None;
    }
    let close = |e: usize| {
        if at(s, e) == b']' && at(s, e + 1) == b':' && is_digit(at(s, e + 2)) {
            run(s, e + 2, is_digit)
        } else {
            e
        }
    };
    // up to seven leading `h:` groups; after[k] is the position after k of them
    let mut after = [start; 8];
    let mut groups = 0;
    while groups < 7 {
        match hex_group_colon(s, after[groups]) {
            Some(e) => {
                groups += 1;
                after[groups] = e;
            }
            None => break,
        }
    }
    // full form: seven groups and a last group ending a word
    if groups == 7 {
        let i = after[7];
        let e = run(s, i, is_hex);
        if e > i && e - i <= 4 && !word_at(line, e) {
            return Some(close(e));
        }
    }
    // compressed: one to six groups, then `:`, then optional groups
    let groups = groups.min(6);
    let i = after[groups];
    if groups == 0 || at(s, i) != b':' {
        return None;
    }
    let mut i = i + 1;
    let upto4 = |i: usize| {
        let e = run(s, i, is_hex);
        i + (e - i).min(4)
    };
    let e = upto4(i);
    if e > i {
        i = e;
        while at(s, i) == b':' {
            let e = upto4(i + 1);
            if e == i + 1 {
                break;
            }
            i = e;
        }
    }
    Some(close(i))
}

/// Dotted quad with optional `:port` (one to five digits), ending at a word boundary.
fn ipv4(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let mut i = digits_upto(s, p, 3)?;
    for _ in 0..3 {
        if at(s, i) != b'.' {
            return None;
        }
        i = digits_upto(s, i + 1, 3)?;
    }
    if at(s, i) == b':' {
        if let Some(e) = digits_upto(s, i + 1, 5) {
            if !word_at(line, e) {
                return Some(e);
            }
        }
    }
    (!word_at(line, i)).then_some(i)
}

/// `0x` followed by hex digits, ending a word.
fn hex0x(line: &str, s: &[u8], p: usize) -> Option<usize> {
    if s[p] != b'0' || !matches!(at(s, p + 1), b'x' | b'X') {
        return None;
    }
    let e = run(s, p + 2, is_hex);
    (e > p + 2 && !word_at(line, e)).then_some(e)
}

/// Time and size units (`µs` included).
fn is_unit(w: &[u8]) -> bool {
    matches!(
        w,
        b"ns"
            | b"us"
            | b"ms"
            | b"msec"
            | b"s"
            | b"sec"
            | b"secs"
            | b"min"
            | b"mins"
            | b"h"
            | b"hr"
            | b"hrs"
            | b"B"
            | b"KB"
            | b"KiB"
            | b"MB"
            | b"MiB"
            | b"GB"
            | b"GiB"
            | b"TB"
            | b"TiB"
            | b"PB"
            | b"PiB"
            | b"kb"
            | b"Kb"
            | b"Mb"
            | b"Gb"
            | b"Tb"
            | b"bytes"
            | [0xC2, 0xB5, b's']
    )
}

/// A number with a time or size unit, the unit glued or after one space: `12ms`, `3.5 GB`.
fn duration(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let mut i = run(s, p, is_digit);
    if at(s, i) == b'.' && is_digit(at(s, i + 1)) {
        i = run(s, i + 1, is_digit);
    }
    let unit = |j: usize| {
        let e = if s.get(j..)?.starts_with("µs".as_bytes()) {
            j + 3
        } else {
            run(s, j, is_word_byte)
        };
        (e > j && is_unit(&s[j..e]) && !word_at(line, e)).then_some(e)
    };
    if at(s, i) == b' ' {
        if let Some(e) = unit(i + 1) {
            return Some(e);
        }
    }
    unit(i)
}

/// Six or more hex digits with at least one decimal digit, ending a word (hashes and ids:
/// `9f4ef63`, `d41d8cd98f00`; a word of hex letters alone, `facade`, is kept).
fn long_hex(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let e = run(s, p, is_hex);
    (e - p >= 6 && !word_at(line, e) && s[p..e].iter().any(|&b| is_digit(b))).then_some(e)
}

/// `[A-Za-z]:` then `/seg(/seg)*`, or `/seg(/seg)*`, or `[A-Za-z]:\` and anything up to white
/// space. Segment characters: word characters and `.@%+~,-`.
fn path(line: &str, s: &[u8], p: usize) -> Option<usize> {
    let seg = |i: usize| {
        run_word(line, i, s.len(), |b| {
            is_word_byte(b) || matches!(b, b'.' | b'@' | b'%' | b'+' | b'~' | b',' | b'-')
        })
    };
    let unix = |i: usize| {
        if at(s, i) != b'/' {
            return None;
        }
        let mut e = seg(i + 1);
        if e == i + 1 {
            return None;
        }
        while at(s, e) == b'/' {
            e = seg(e + 1);
        }
        Some(e)
    };
    let drive = s[p].is_ascii_alphabetic() && at(s, p + 1) == b':';
    if drive {
        if let Some(e) = unix(p + 2) {
            return Some(e);
        }
    }
    if let Some(e) = unix(p) {
        return Some(e);
    }
    if drive && at(s, p + 2) == b'\\' {
        let e = run(s, p + 3, |b| b != b' ');
        return (e > p + 3).then_some(e);
    }
    None
}

/// Merge a new variable `[start, end)` into `out`, dropping the variables it covers
/// (they are the last ones pushed, `out[from..]`).
fn push_merged(out: &mut Vec<Var>, from: usize, start: usize, end: usize, kind: MaskKind) {
    out.truncate(from);
    out.push(Var { start, end, kind });
}

/// Step 3: quoted strings (quotes inside variables do not count) whose text outside
/// variables holds a space or a digit become one variable: `q` pairs in order; with
/// `q == '\''` a `"` before the closing quote cancels the opening one (`'[^'"]*'`).
fn quotes(s: &[u8], q: u8, vars: &mut Vec<Var>, tmp: &mut Vec<Var>) {
    tmp.clear();
    let mut vi = 0;
    let mut i = 0;
    let mut open: Option<(usize, usize)> = None;
    let mut worth = false;
    while i < s.len() {
        if let Some(v) = vars.get(vi).filter(|v| v.start == i) {
            tmp.push(*v);
            i = v.end;
            vi += 1;
            continue;
        }
        let b = s[i];
        if b == q {
            match open.take() {
                None => {
                    open = Some((i, tmp.len()));
                    worth = false;
                }
                Some((a, k)) => {
                    if worth {
                        push_merged(tmp, k, a, i + 1, MaskKind::Quoted);
                    }
                }
            }
        } else if b == b'"' {
            open = None;
        } else if b == b' ' || is_digit(b) {
            worth = true;
        }
        i += 1;
    }
    std::mem::swap(vars, tmp);
}

/// Step 3c: `key=value`: the key (a letter or `_`, then word characters, `.` or `-`) is kept,
/// the value (an optional quoted part, then anything up to white space or `,;)]}"'`)
/// becomes one variable unless it is empty or already exactly one variable. Text glued to
/// a closing quote belongs to the value (`k=''*` -> `k=<*>`), so masking a template again
/// changes nothing.
fn key_values(line: &str, vars: &mut Vec<Var>, tmp: &mut Vec<Var>) {
    let s = line.as_bytes();
    tmp.clear();
    let mut vi = 0;
    let mut i = 0;
    let mut last_end = usize::MAX;
    while i < s.len() {
        if let Some(v) = vars.get(vi).filter(|v| v.start == i) {
            tmp.push(*v);
            i = v.end;
            last_end = v.end;
            vi += 1;
            continue;
        }
        let b = s[i];
        let starts =
            (b.is_ascii_alphabetic() || b == b'_') && (i == last_end || !word_before(line, i));
        if !starts {
            i += if b < 0x80 {
                1
            } else {
                char_at(line, i).map_or(1, char::len_utf8)
            };
            continue;
        }
        // the key: stops at a variable or a character outside [\w.-]
        let next_var = vars.get(vi).map_or(s.len(), |v| v.start);
        let j = run_word(line, i + 1, next_var, |c| {
            is_word_byte(c) || c == b'.' || c == b'-'
        });
        if j >= next_var || s[j] != b'=' {
            i = j;
            continue;
        }
        // the value, over literal text and whole variables
        let v0 = j + 1;
        let from = tmp.len();
        let mut k = v0;
        let mut vj = vi;
        let mut inner = 0;
        // optional quoted part (a quote that starts a variable is not literal)
        let var_at_k = vars.get(vj).is_some_and(|v| v.start == k);
        if let (false, q @ (b'"' | b'\'')) = (var_at_k, at(s, k)) {
            let (mut m, mut vm, mut n_in) = (k + 1, vj, 0);
            let mut closed = None;
            while m < s.len() {
                if let Some(v) = vars.get(vm).filter(|v| v.start == m) {
                    m = v.end;
                    vm += 1;
                    n_in += 1;
                    continue;
                }
                if s[m] == q {
                    closed = Some(m + 1);
                    break;
                }
                m += 1;
            }
            if let Some(c) = closed {
                k = c;
                vj = vm;
                inner += n_in;
            }
        }
        loop {
            if let Some(v) = vars.get(vj).filter(|v| v.start == k) {
                k = v.end;
                vj += 1;
                inner += 1;
                continue;
            }
            match s.get(k) {
                Some(b' ' | b',' | b';' | b')' | b']' | b'}' | b'"' | b'\'') | None => break,
                Some(_) => k += 1,
            }
        }
        let only_var = inner == 1 && vars.get(vi).is_some_and(|v| v.start == v0 && v.end == k);
        tmp.extend_from_slice(&vars[vi..vj]);
        let masked = k > v0 && !only_var;
        if masked {
            push_merged(tmp, from, v0, k, MaskKind::KeyValue);
        }
        if masked || tmp.last().is_some_and(|v| v.end == k) {
            last_end = k;
        }
        vi = vj;
        i = k.max(j + 1);
    }
    std::mem::swap(vars, tmp);
}

/// Step 4 and 5: split at spaces outside variables, mask each token, collapse runs of
/// fully masked tokens.
fn split_tokens(
    line: &str,
    vars: &[Var],
    digit_words: &[u32],
    texts: &mut String,
    toks: &mut Vec<Tok>,
    parts: &mut Vec<(u32, u32)>,
) {
    let s = line.as_bytes();
    let mut i = 0;
    let mut vi = 0;
    let mut dk = 0;
    let mut next_var = vars.first().map_or(usize::MAX, |v| v.start);
    while i < s.len() {
        if s[i] == b' ' && i != next_var {
            i += 1;
            continue;
        }
        let t0 = i;
        let v0 = vi;
        // the token ends at the first space outside a variable
        loop {
            let limit = next_var.min(s.len());
            match s[i..limit].iter().position(|&b| b == b' ') {
                Some(k) => {
                    i += k;
                    break;
                }
                None if limit < s.len() => {
                    i = vars[vi].end;
                    vi += 1;
                    next_var = vars.get(vi).map_or(usize::MAX, |v| v.start);
                }
                None => {
                    i = s.len();
                    break;
                }
            }
        }
        while digit_words.get(dk).is_some_and(|&d| (d as usize) < t0) {
            dk += 1;
        }
        let digits = digit_words.get(dk).is_some_and(|&d| (d as usize) < i);
        let a = texts.len() as u32;
        let kind = if vi == v0 && !digits {
            None
        } else {
            mask_token(line, t0, i, &vars[v0..vi], texts)
        };
        // an unchanged token is read from the line
        let in_line = texts.len() as u32 == a;
        let text = if in_line {
            (t0 as u32, i as u32)
        } else {
            (a, texts.len() as u32)
        };
        let orig = (t0 as u32, i as u32);
        if kind.is_some() {
            if let Some(prev) = toks.last_mut().filter(|p| p.kind.is_some()) {
                if prev.parts.0 == prev.parts.1 {
                    prev.parts = (parts.len() as u32, parts.len() as u32 + 1);
                    parts.push(prev.orig);
                }
                parts.push(orig);
                prev.parts.1 += 1;
                prev.orig.1 = orig.1;
                prev.kind = Some(MaskKind::Mixed);
                texts.truncate(a as usize);
                continue;
            }
        }
        toks.push(Tok {
            text,
            in_line,
            orig,
            parts: (0, 0),
            kind,
        });
    }
}

/// Brackets and quotes kept before a masked token core (`(<*>`).
#[inline]
pub(crate) fn is_opening(c: u8) -> bool {
    matches!(c, b'(' | b'[' | b'{' | b'"' | b'\'')
}

/// Brackets, quotes and punctuation kept after a masked token core (`<*>),`).
#[inline]
pub(crate) fn is_closing(c: u8) -> bool {
    matches!(
        c,
        b')' | b']' | b'}' | b'"' | b'\'' | b',' | b';' | b':' | b'.' | b'!' | b'?'
    )
}

/// A `-` just before a masked number is its sign when it starts the token or follows a
/// separator (`blk_-42`, `x=-3`, `(-1`): drop it from the clustering text, so that negative
/// and positive values give one template.
fn drop_sign(texts: &mut String, base: usize) {
    let b = texts.as_bytes();
    let n = b.len();
    if n > base
        && b[n - 1] == b'-'
        && (n - 1 == base || matches!(b[n - 2], b'_' | b'=' | b':' | b'(' | b'[' | b'{' | b','))
    {
        texts.pop();
    }
}

/// Mask identifier-like alphanumeric segments inside one token `line[t0..t1]` whose
/// variables are `vars`; append the clustering text to `texts`. Returns the kind when the
/// whole token is a variable.
fn mask_token(
    line: &str,
    t0: usize,
    t1: usize,
    vars: &[Var],
    texts: &mut String,
) -> Option<MaskKind> {
    let base = texts.len();
    let s = line.as_bytes();
    // the common whole-token cases: one variable, or a number
    if let [v] = vars {
        if v.start == t0 && v.end == t1 {
            texts.push_str(WILDCARD);
            return Some(v.kind);
        }
    }
    if vars.is_empty() && s[t0..t1].iter().all(|&b| is_digit(b)) {
        texts.push_str(WILDCARD);
        return Some(MaskKind::Number);
    }
    let mut n_kinds = 0;
    let mut first_kind = MaskKind::Mixed;
    let mut note = |k: MaskKind| {
        if n_kinds == 0 {
            first_kind = k;
        }
        n_kinds += 1;
    };
    let mut i = t0;
    let mut vi = 0;
    let mut next_var = vars.first().map_or(usize::MAX, |v| v.start);
    while i < t1 {
        if i == next_var {
            drop_sign(texts, base);
            texts.push_str(WILDCARD);
            note(vars[vi].kind);
            i = vars[vi].end;
            vi += 1;
            next_var = vars.get(vi).map_or(usize::MAX, |v| v.start);
            continue;
        }
        let b = s[i];
        let alnum_start = if b < 0x80 {
            b.is_ascii_alphanumeric()
        } else {
            char_at(line, i).is_some_and(char::is_alphanumeric)
        };
        if !alnum_start {
            let w = if b < 0x80 {
                1
            } else {
                char_at(line, i).map_or(1, char::len_utf8)
            };
            texts.push_str(line.get(i..i + w).unwrap_or(""));
            i += w;
            continue;
        }
        // an alphanumeric segment: masked when it holds digits and looks like a number or an id
        let start = i;
        let mut digits = 0;
        let mut chars = 0;
        while i < t1 && i != next_var {
            let b = s[i];
            if b < 0x80 {
                if !b.is_ascii_alphanumeric() {
                    break;
                }
                digits += usize::from(is_digit(b));
                chars += 1;
                i += 1;
            } else {
                match char_at(line, i) {
                    Some(c) if c.is_alphanumeric() => {
                        chars += 1;
                        i += c.len_utf8();
                    }
                    _ => break,
                }
            }
        }
        let after_delim = start > t0;
        if digits > 0 && (digits == chars || after_delim || digits >= 2) {
            drop_sign(texts, base);
            texts.push_str(WILDCARD);
            note(MaskKind::Number);
        } else {
            texts.push_str(&line[start..i]);
        }
    }
    if n_kinds == 0 {
        // unchanged: the caller reads the token from the line
        texts.truncate(base);
        return None;
    }
    // A token whose core holds only placeholders and punctuation is one variable; keep
    // surrounding brackets/trailing punctuation so `(<*>),` stays distinguishable.
    let out = &texts.as_bytes()[base..];
    let lead = out.iter().take_while(|&&c| is_opening(c)).count();
    let trail = out[lead..]
        .iter()
        .rev()
        .take_while(|&&c| is_closing(c))
        .count();
    let core = &texts[base + lead..texts.len() - trail];
    // characters of the core outside `<*>` (as `core.replace(WILDCARD, "")` would leave)
    let (mut has_alnum, mut only_id_chars, mut underscore, mut wild) = (false, true, false, false);
    let cb = core.as_bytes();
    let mut k = 0;
    while k < cb.len() {
        if cb[k..].starts_with(WILDCARD.as_bytes()) {
            wild = true;
            k += WILDCARD.len();
            continue;
        }
        let (alnum, w) = if cb[k] < 0x80 {
            (cb[k].is_ascii_alphanumeric(), 1)
        } else {
            match core.get(k..).and_then(|r| r.chars().next()) {
                Some(c) => (c.is_alphanumeric(), c.len_utf8()),
                None => (false, 1),
            }
        };
        has_alnum |= alnum;
        underscore |= cb[k] == b'_';
        only_id_chars &= alnum || cb[k] == b'_';
        k += w;
    }
    // `broadcast_11_piece0`, `rdd_42_35`: an underscore identifier with numeric parts is an id.
    let underscore_id = underscore && wild && only_id_chars;
    if !core.is_empty() && (underscore_id || !has_alnum) {
        let kind = if n_kinds == 1 {
            first_kind
        } else {
            MaskKind::Mixed
        };
        if lead == 0 && trail == 0 {
            texts.truncate(base);
            texts.push_str(WILDCARD);
            return Some(kind);
        }
        let end = texts.len() - trail;
        texts.replace_range(base + lead..end, WILDCARD);
    }
    None
}

thread_local! {
    static SCRATCH: RefCell<Masked> = RefCell::new(Masked::default());
}

/// Run `f` on a thread-local [`Masked`] holding `message` masked.
pub(crate) fn with_masked<R>(
    message: &str,
    max_len: usize,
    opts: MaskOptions,
    f: impl FnOnce(&Masked) -> R,
) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut m) => {
            m.mask(message, max_len, opts);
            f(&m)
        }
        // re-entered (cannot happen today): use fresh buffers
        Err(_) => {
            let mut m = Masked::default();
            m.mask(message, max_len, opts);
            f(&m)
        }
    })
}

/// Tokenise and mask a message (see the module docs for the steps).
pub fn tokenize(message: &str, max_len: usize) -> Vec<Token> {
    with_masked(message, max_len, MaskOptions::default(), Masked::to_tokens)
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
    with_masked(message, DEFAULT_MAX_LEN, MaskOptions::default(), |m| {
        let mut out = String::with_capacity(message.len().min(DEFAULT_MAX_LEN));
        m.template_into(&mut out);
        out
    })
}

/// A reusable masker for streams: keeps its buffers between lines.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    m: Masked,
}

impl Masker {
    pub fn new() -> Self {
        Masker::default()
    }

    /// Mask `message` (cut at `max_len` bytes); returns the number of tokens.
    pub fn mask(&mut self, message: &str, max_len: usize) -> usize {
        self.m.mask(message, max_len, MaskOptions::default());
        self.m.len()
    }

    /// Clustering text of token `i` of the last masked message (`""` out of range).
    pub fn text(&self, i: usize) -> &str {
        self.m.text(i)
    }

    /// Kind of token `i` when the whole token is a variable.
    pub fn kind(&self, i: usize) -> Option<MaskKind> {
        self.m.toks.get(i).and_then(|t| t.kind)
    }

    /// Template of the last masked message, written into `out` (cleared first).
    pub fn template_into(&self, out: &mut String) {
        out.clear();
        self.m.template_into(out);
    }
}
