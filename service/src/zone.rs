//! Time zones of alert messages and the assistant's answers: `UTC`, a fixed offset (`UTC+2`,
//! `UTC-05:30`) or an IANA name (`Europe/Paris`, from chrono-tz's copy of the tz database), whose
//! offset and abbreviation follow daylight saving time.

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};

use crate::config::Config;

/// A time zone of messages and answers: `ask_timezone`, an offset (`UTC+2`) or an IANA name (`Europe/Paris`,
/// whose offset and abbreviation follow daylight saving time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `UTC+2`, `UTC-05:30`, or an IANA name (`Europe/Paris`, case-insensitive).
    pub fn parse(s: &str) -> Option<Zone> {
        if let Some(off) = crate::ask::time::parse_offset(s) {
            return Some(Zone::Fixed(off));
        }
        let name = s.trim();
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(name))
            .map(|z| Zone::Named(*z))
    }

    /// The configured zone; UTC when there is none (it was validated at start).
    pub fn of(config: &Config) -> Zone {
        config
            .ask_timezone
            .as_deref()
            .and_then(Zone::parse)
            .unwrap_or(Zone::Named(chrono_tz::UTC))
    }

    /// `2026-03-02 08:21 CET`, `2026-03-02 09:21 UTC+02:00`.
    pub fn format(&self, t: &DateTime<Utc>) -> String {
        match self {
            Zone::Fixed(off) => format!(
                "{} {}",
                t.with_timezone(off).format("%Y-%m-%d %H:%M"),
                crate::ask::time::offset_name(*off)
            ),
            Zone::Named(tz) => t.with_timezone(tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        }
    }
}

impl Zone {
    /// The offset in force at `t` (a named zone's changes with daylight saving time).
    pub fn offset_at(&self, t: &DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Fixed(off) => *off,
            Zone::Named(tz) => tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        let paris = Zone::parse("europe/paris");
        assert_eq!(paris, Some(Zone::Named(chrono_tz::Europe::Paris)));
        let paris = paris.unwrap_or(Zone::Named(chrono_tz::UTC));
        // CET is UTC+1 in winter, CEST UTC+2 in summer (EU rule: last Sunday of March/October).
        assert_eq!(
            paris.format(&t("2026-01-15T07:21:00Z")),
            "2026-01-15 08:21 CET"
        );
        assert_eq!(
            paris.format(&t("2026-07-15T07:21:00Z")),
            "2026-07-15 09:21 CEST"
        );
        assert_eq!(
            paris
                .offset_at(&t("2026-07-15T07:21:00Z"))
                .local_minus_utc(),
            7200
        );
        let ny = Zone::parse("America/New_York").unwrap_or(Zone::Named(chrono_tz::UTC));
        assert_eq!(
            ny.format(&t("2026-01-15T07:21:00Z")),
            "2026-01-15 02:21 EST"
        );
    }

    #[test]
    fn offsets_and_utc() {
        let z = Zone::parse("UTC+2").unwrap_or(Zone::Named(chrono_tz::UTC));
        assert_eq!(
            z.format(&t("2026-01-15T07:21:00Z")),
            "2026-01-15 09:21 UTC+02:00"
        );
        let utc = Zone::parse("UTC").unwrap_or(Zone::Named(chrono_tz::Asia::Tokyo));
        assert_eq!(
            utc.format(&t("2026-01-15T07:21:00Z")),
            "2026-01-15 07:21 UTC"
        );
        assert_eq!(Zone::parse("Mars/Olympus"), None);
        assert_eq!(Zone::parse(""), None);
    }
}
