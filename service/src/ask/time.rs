//! Time expressions of a question: "today", "yesterday", "this morning", "last 3 hours", "last
//! week", "since Monday", "between 2026-03-01 and 2026-03-03", "on 2026-03-02", "at 2026-03-02
//! 10:00", each in the question's time zone ("in UTC+2", "UTC-05:00"), else the configured one,
//! else UTC. Pure functions of (text, now, offset): no database, unit-tested below.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::sync::OnceLock;

/// A half-open range [from, to) in UTC, with the words it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// How the question said it ("yesterday", "the last 3 hours", ...).
    pub said: String,
}

/// What the time parser found: the range (if any), the zone given in the question (if any), and
/// the byte spans of the text it used (so that they are not matched as series names).
#[derive(Debug, Clone, Default)]
pub struct TimeFound {
    pub range: Option<TimeRange>,
    pub offset: Option<FixedOffset>,
    pub spans: Vec<(usize, usize)>,
    /// "right now", "currently": the question is about the present.
    pub now: bool,
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| {
        Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}"))
    })
}

/// Parse a zone written as "utc", "gmt", "z", "utc+2", "utc-05:00", "+02:00".
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r"^(?:utc|gmt|z)?\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?$",
    );
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    let c = r.captures(&t)?;
    let Some(sign) = c.get(1) else {
        return FixedOffset::east_opt(0);
    };
    let h: i32 = c.get(2)?.as_str().parse().ok()?;
    let m: i32 = c
        .get(3)
        .map(|m| m.as_str().parse().unwrap_or(0))
        .unwrap_or(0);
    if h > 14 || m > 59 {
        return None;
    }
    let secs = (h * 3600 + m * 60) * if sign.as_str() == "-" { -1 } else { 1 };
    FixedOffset::east_opt(secs)
}

/// "UTC" or "UTC+02:00".
pub fn offset_name(off: FixedOffset) -> String {
    let s = off.local_minus_utc();
    if s == 0 {
        return "UTC".into();
    }
    let sign = if s < 0 { '-' } else { '+' };
    let a = s.abs();
    format!("UTC{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// Local midnight of the day `days` after the local date of `now`, in UTC.
fn midnight(now: DateTime<Utc>, off: FixedOffset, days: i64) -> DateTime<Utc> {
    let date = now.with_timezone(&off).date_naive() + Duration::days(days);
    local(date, NaiveTime::MIN, off)
}

fn local(date: NaiveDate, time: NaiveTime, off: FixedOffset) -> DateTime<Utc> {
    // A fixed offset has exactly one mapping for every local time.
    match off.from_local_datetime(&date.and_time(time)) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        _ => Utc.from_utc_datetime(&date.and_time(time)),
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_hm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// A date with an optional time ("2026-03-02", "2026-03-02 10:00", "2026-03-02t10:00:00z").
fn date_time(date: &str, time: Option<&str>) -> Option<(NaiveDate, Option<NaiveTime>)> {
    let d = parse_date(date)?;
    match time {
        Some(t) => Some((d, Some(parse_hm(t)?))),
        None => Some((d, None)),
    }
}

const DT: &str = r"(\d{4}-\d{2}-\d{2})(?:[t ](\d{1,2}:\d{2}(?::\d{2})?)z?)?";

/// Find the time expression of `text` (already lower case).
pub fn parse(
    text: &str,
    now: DateTime<Utc>,
    default_offset: FixedOffset,
) -> Result<TimeFound, String> {
    let mut found = TimeFound::default();
    // The zone first: it changes what "today" means.
    static TZ: OnceLock<Regex> = OnceLock::new();
    let tz = re(
        &TZ,
        r"\b(?:in\s+|time\s*zone\s+)?(utc|gmt)(?:\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?)?\b(?:\s+time)?",
    );
    if let Some(c) = tz.captures(text) {
        let m = c.get(0).map(|m| (m.start(), m.end())).unwrap_or((0, 0));
        let spec = format!(
            "{}{}{}{}",
            c.get(1).map(|m| m.as_str()).unwrap_or("utc"),
            c.get(2).map(|m| m.as_str()).unwrap_or(""),
            c.get(3).map(|m| m.as_str()).unwrap_or(""),
            c.get(4)
                .map(|m| format!(":{}", m.as_str()))
                .unwrap_or_default()
        );
        let off = parse_offset(&spec).ok_or_else(|| {
            format!(
                "\"{}\" is not a time zone I know (use UTC, UTC+2 or UTC-05:30)",
                &text[m.0..m.1]
            )
        })?;
        found.offset = Some(off);
        found.spans.push(m);
    }
    // Named zones are not supported (fixed offsets only): say so rather than answer in UTC.
    static NAMED: OnceLock<Regex> = OnceLock::new();
    let named = re(
        &NAMED,
        r"\b((?:africa|america|antarctica|asia|atlantic|australia|europe|indian|pacific)/[a-z_]+|in\s+(?:cet|cest|eet|eest|wet|west|bst|est|edt|cst|cdt|mst|mdt|pst|pdt|ist|jst|msk|aest|aedt))\b",
    );
    if let Some(m) = named.find(text) {
        return Err(format!(
            "\"{}\" is a named time zone; I know fixed offsets only: say UTC, UTC+2 or UTC-05:30",
            m.as_str()
        ));
    }
    let off = found.offset.unwrap_or(default_offset);
    let set = |found: &mut TimeFound,
               from: DateTime<Utc>,
               to: DateTime<Utc>,
               said: String,
               span: (usize, usize)| {
        if found.range.is_none() {
            found.range = Some(TimeRange { from, to, said });
        }
        found.spans.push(span);
    };
    let span = |m: regex::Match| (m.start(), m.end());

    // between A and B / from A to B (dates, optional times; a date alone as B includes that day).
    static BETWEEN: OnceLock<Regex> = OnceLock::new();
    let between = re(
        &BETWEEN,
        &format!(r"\b(?:between|from)\s+{DT}\s+(?:and|to|until|till|-)\s+{DT}"),
    );
    if let Some(c) = between.captures(text) {
        let a = date_time(&c[1], c.get(2).map(|m| m.as_str()));
        let b = date_time(&c[3], c.get(4).map(|m| m.as_str()));
        let (Some((da, ta)), Some((db, tb))) = (a, b) else {
            return Err(format!(
                "\"{}\" has a date or time that does not exist",
                &c[0]
            ));
        };
        let from = local(da, ta.unwrap_or(NaiveTime::MIN), off);
        let to = match tb {
            Some(t) => local(db, t, off),
            None => local(db + Duration::days(1), NaiveTime::MIN, off),
        };
        if to <= from {
            return Err(format!("\"{}\": the end is not after the start", &c[0]));
        }
        set(
            &mut found,
            from,
            to,
            c[0].to_string(),
            c.get(0).map(span).unwrap_or((0, 0)),
        );
    }

    // since / after <date[ time]>, since <weekday>, since yesterday/today
    static SINCE: OnceLock<Regex> = OnceLock::new();
    let since = re(
        &SINCE,
        &format!(
            r"\b(?:since|after)\s+(?:last\s+)?(?:{DT}|(monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|this morning))"
        ),
    );
    if let Some(c) = since.captures(text) {
        let from = if let Some(d) = c.get(1) {
            let Some((d, t)) = date_time(d.as_str(), c.get(2).map(|m| m.as_str())) else {
                return Err(format!(
                    "\"{}\" has a date or time that does not exist",
                    &c[0]
                ));
            };
            local(d, t.unwrap_or(NaiveTime::MIN), off)
        } else {
            let w = c.get(3).map(|m| m.as_str()).unwrap_or("today");
            match w {
                "yesterday" => midnight(now, off, -1),
                "today" | "this morning" => midnight(now, off, 0),
                day => midnight(now, off, -days_since(now, off, day)),
            }
        };
        let m = c.get(0).map(span).unwrap_or((0, 0));
        set(
            &mut found,
            from,
            now.max(from + Duration::seconds(1)),
            c[0].to_string(),
            m,
        );
    }

    // last/past N minutes|hours|days|weeks
    static LASTN: OnceLock<Regex> = OnceLock::new();
    let lastn = re(
        &LASTN,
        r"\b(?:in\s+the\s+|over\s+the\s+|during\s+the\s+|for\s+the\s+)?(?:last|past|previous)\s+(\d{1,4})\s*(minutes?|mins?|hours?|hrs?|h|days?|d|weeks?|w)\b",
    );
    if let Some(c) = lastn.captures(text) {
        let n: i64 = c[1]
            .parse()
            .map_err(|_| format!("\"{}\" is not a number", &c[1]))?;
        let unit = &c[2];
        let secs = match unit.chars().next() {
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => 7 * 86_400,
        };
        if n == 0 || n * secs > 3660 * 86_400 {
            return Err(format!("\"{}\" is out of range (at most 10 years)", &c[0]));
        }
        let m = c.get(0).map(span).unwrap_or((0, 0));
        set(
            &mut found,
            now - Duration::seconds(n * secs),
            now,
            c[0].trim().to_string(),
            m,
        );
    }

    // last/past hour|day|week|month (a rolling window ending now)
    static LAST1: OnceLock<Regex> = OnceLock::new();
    let last1 = re(
        &LAST1,
        r"\b(?:in\s+the\s+|over\s+the\s+|during\s+the\s+)?(?:last|past|previous)\s+(hour|day|week|month)\b",
    );
    if let Some(c) = last1.captures(text) {
        let secs = match &c[1] {
            "hour" => 3600,
            "day" => 86_400,
            "week" => 7 * 86_400,
            _ => 30 * 86_400,
        };
        let m = c.get(0).map(span).unwrap_or((0, 0));
        set(
            &mut found,
            now - Duration::seconds(secs),
            now,
            c[0].trim().to_string(),
            m,
        );
    }

    // this morning / afternoon / evening, last night, today, yesterday, this week
    static DAYS: OnceLock<Regex> = OnceLock::new();
    let days = re(
        &DAYS,
        r"\b(this morning|this afternoon|this evening|tonight|last night|yesterday morning|yesterday afternoon|yesterday evening|the day before yesterday|yesterday|today|this week)\b",
    );
    for c in days.captures_iter(text) {
        let w = &c[1];
        let m = c.get(0).map(span).unwrap_or((0, 0));
        let day0 = midnight(now, off, 0);
        let h = |d: DateTime<Utc>, hours: i64| d + Duration::hours(hours);
        let (from, to) = match w {
            "this morning" => (day0, h(day0, 12)),
            "this afternoon" => (h(day0, 12), h(day0, 18)),
            "this evening" | "tonight" => (h(day0, 18), h(day0, 24)),
            "last night" => (h(day0, -6), h(day0, 6)),
            "yesterday morning" => (h(day0, -24), h(day0, -12)),
            "yesterday afternoon" => (h(day0, -12), h(day0, -6)),
            "yesterday evening" => (h(day0, -6), day0),
            "the day before yesterday" => (h(day0, -48), h(day0, -24)),
            "yesterday" => (h(day0, -24), day0),
            "today" => (day0, h(day0, 24)),
            _ => {
                let monday = midnight(
                    now,
                    off,
                    -(now.with_timezone(&off).weekday().num_days_from_monday() as i64),
                );
                (monday, h(monday, 7 * 24))
            }
        };
        // "yesterday at 10:00": a time of that day.
        set(&mut found, from, to, w.to_string(), m);
    }

    // on <weekday>
    static WEEKDAY: OnceLock<Regex> = OnceLock::new();
    let weekday = re(
        &WEEKDAY,
        r"\b(?:on\s+|last\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    );
    if let Some(c) = weekday.captures(text) {
        let back = days_since(now, off, &c[1]);
        let from = midnight(now, off, -back);
        let m = c.get(0).map(span).unwrap_or((0, 0));
        set(
            &mut found,
            from,
            from + Duration::days(1),
            c[0].trim().to_string(),
            m,
        );
    }

    // an ISO date (the day) or date and time (the half hour either side)
    static DATE: OnceLock<Regex> = OnceLock::new();
    let date = re(&DATE, &format!(r"\b(?:on\s+|at\s+|around\s+)?{DT}"));
    if let Some(c) = date.captures(text) {
        let Some((d, t)) = date_time(&c[1], c.get(2).map(|m| m.as_str())) else {
            return Err(format!(
                "\"{}\" is not a date (use YYYY-MM-DD, and HH:MM for a time)",
                c[0].trim()
            ));
        };
        let m = c.get(0).map(span).unwrap_or((0, 0));
        match t {
            None => {
                let from = local(d, NaiveTime::MIN, off);
                set(
                    &mut found,
                    from,
                    from + Duration::days(1),
                    c[0].trim().to_string(),
                    m,
                );
            }
            Some(t) => {
                let at = local(d, t, off);
                set(
                    &mut found,
                    at - Duration::minutes(30),
                    at + Duration::minutes(30),
                    c[0].trim().to_string(),
                    m,
                );
            }
        }
    }

    // times of day: "between 10:00 and 12:30" (today, or the day said)
    static HMHM: OnceLock<Regex> = OnceLock::new();
    let hmhm = re(
        &HMHM,
        r"\b(?:between|from)\s+(\d{1,2}:\d{2})\s+(?:and|to|until|-)\s+(\d{1,2}:\d{2})\b",
    );
    if let Some(c) = hmhm.captures(text) {
        let (Some(a), Some(b)) = (parse_hm(&c[1]), parse_hm(&c[2])) else {
            return Err(format!("\"{}\" has a time that does not exist", &c[0]));
        };
        let m = c.get(0).map(span).unwrap_or((0, 0));
        let (day, said) = match &found.range {
            Some(r) if r.to - r.from <= Duration::days(1) => {
                (r.from, format!("{} {}", r.said, c[0].trim()))
            }
            _ => (midnight(now, off, 0), c[0].trim().to_string()),
        };
        let local_day = day.with_timezone(&off).date_naive();
        let (from, to) = (local(local_day, a, off), local(local_day, b, off));
        if to <= from {
            return Err(format!("\"{}\": the end is not after the start", &c[0]));
        }
        found.range = Some(TimeRange { from, to, said });
        found.spans.push(m);
    }

    // a time of day: "at 10:00" (today, or the day said) → the half hour either side
    static HM: OnceLock<Regex> = OnceLock::new();
    let hm = re(&HM, r"\b(?:at|around)\s+(\d{1,2}:\d{2})\b");
    if let Some(c) = hm.captures(text) {
        if let Some(t) = parse_hm(&c[1]) {
            let m = c.get(0).map(span).unwrap_or((0, 0));
            let day = match &found.range {
                Some(r) if r.to - r.from <= Duration::days(1) => r.from,
                _ => midnight(now, off, 0),
            };
            let local_day = day.with_timezone(&off).date_naive();
            let at = local(local_day, t, off);
            let said = match &found.range {
                Some(r) if r.to - r.from <= Duration::days(1) => {
                    format!("{} {}", r.said, c[0].trim())
                }
                _ => c[0].trim().to_string(),
            };
            found.range = Some(TimeRange {
                from: at - Duration::minutes(30),
                to: at + Duration::minutes(30),
                said,
            });
            found.spans.push(m);
        }
    }

    static NOW: OnceLock<Regex> = OnceLock::new();
    let nowre = re(
        &NOW,
        r"\b(right now|now|currently|at the moment|at present|ongoing|going on)\b",
    );
    if let Some(m) = nowre.find(text) {
        found.now = true;
        found.spans.push((m.start(), m.end()));
    }
    Ok(found)
}

/// Days back from today to the most recent `weekday` (0 when today is that day).
fn days_since(now: DateTime<Utc>, off: FixedOffset, weekday: &str) -> i64 {
    let today = now.with_timezone(&off).weekday().num_days_from_monday() as i64;
    let target = WEEKDAYS.iter().position(|w| *w == weekday).unwrap_or(0) as i64;
    (today - target).rem_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    // Friday 2026-12-04 15:30 UTC
    const NOW: &str = "2026-12-04T15:30:00Z";

    fn range(q: &str) -> (String, String) {
        let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!());
        let f = parse(&q.to_lowercase(), t(NOW), utc).unwrap_or_else(|e| panic!("{q}: {e}"));
        let r = f.range.unwrap_or_else(|| panic!("{q}: no range"));
        (r.from.to_rfc3339(), r.to.to_rfc3339())
    }

    #[test]
    fn relative_days() {
        assert_eq!(
            range("how many anomalies yesterday?"),
            (
                "2026-12-03T00:00:00+00:00".into(),
                "2026-12-04T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("today"),
            (
                "2026-12-04T00:00:00+00:00".into(),
                "2026-12-05T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("errors this morning"),
            (
                "2026-12-04T00:00:00+00:00".into(),
                "2026-12-04T12:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("in the last 3 hours"),
            (
                "2026-12-04T12:30:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("past 2 days"),
            (
                "2026-12-02T15:30:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("last 24h"),
            (
                "2026-12-03T15:30:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("last week"),
            (
                "2026-11-27T15:30:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("last hour"),
            (
                "2026-12-04T14:30:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
    }

    #[test]
    fn weekdays_and_since() {
        // 2026-12-04 is a Friday: the last Monday is 2026-11-30.
        assert_eq!(
            range("what changed since monday?"),
            (
                "2026-11-30T00:00:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("since friday"),
            (
                "2026-12-04T00:00:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("on wednesday"),
            (
                "2026-12-02T00:00:00+00:00".into(),
                "2026-12-03T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("since 2026-12-01 06:00"),
            (
                "2026-12-01T06:00:00+00:00".into(),
                "2026-12-04T15:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("this week"),
            (
                "2026-11-30T00:00:00+00:00".into(),
                "2026-12-07T00:00:00+00:00".into()
            )
        );
    }

    #[test]
    fn dates_times_and_zones() {
        assert_eq!(
            range("why on 2026-03-02?"),
            (
                "2026-03-02T00:00:00+00:00".into(),
                "2026-03-03T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("between 2026-03-01 and 2026-03-03"),
            (
                "2026-03-01T00:00:00+00:00".into(),
                "2026-03-04T00:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("from 2026-03-01 10:00 to 2026-03-01 12:30"),
            (
                "2026-03-01T10:00:00+00:00".into(),
                "2026-03-01T12:30:00+00:00".into()
            )
        );
        assert_eq!(
            range("at 2026-03-02T07:20"),
            (
                "2026-03-02T06:50:00+00:00".into(),
                "2026-03-02T07:50:00+00:00".into()
            )
        );
        assert_eq!(
            range("yesterday at 10:00"),
            (
                "2026-12-03T09:30:00+00:00".into(),
                "2026-12-03T10:30:00+00:00".into()
            )
        );
        // In UTC+2 "today" starts at 22:00 UTC the day before.
        assert_eq!(
            range("today in utc+2"),
            (
                "2026-12-03T22:00:00+00:00".into(),
                "2026-12-04T22:00:00+00:00".into()
            )
        );
        assert_eq!(
            range("yesterday utc-05:30"),
            (
                "2026-12-03T05:30:00+00:00".into(),
                "2026-12-04T05:30:00+00:00".into()
            )
        );
        let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!());
        assert!(parse("on 2026-02-30", t(NOW), utc).is_err());
        assert!(parse("between 2026-03-03 and 2026-03-01", t(NOW), utc).is_err());
        assert!(parse("utc+20", t(NOW), utc).is_err());
        assert!(parse("today in europe/paris", t(NOW), utc).is_err());
        assert!(parse("yesterday in pst", t(NOW), utc).is_err());
        assert!(parse("the rest of it", t(NOW), utc).is_ok());
        assert!(parse("hello", t(NOW), utc)
            .unwrap_or_default()
            .range
            .is_none());
        assert!(
            parse("what is wrong right now", t(NOW), utc)
                .unwrap_or_default()
                .now
        );
    }

    #[test]
    fn configured_offset_moves_days() {
        let plus9 = FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!());
        // 15:30 UTC is 00:30 on Saturday in UTC+9: today is 2026-12-05 there.
        let f = parse("today", t(NOW), plus9).unwrap_or_default();
        let r = f.range.unwrap_or_else(|| unreachable!());
        assert_eq!(r.from.to_rfc3339(), "2026-12-04T15:00:00+00:00");
        assert_eq!(offset_name(plus9), "UTC+09:00");
        assert_eq!(
            parse_offset("UTC-05:30").map(|o| o.local_minus_utc()),
            Some(-19800)
        );
        assert_eq!(parse_offset("+2").map(|o| o.local_minus_utc()), Some(7200));
        assert_eq!(parse_offset("paris"), None);
    }
}
