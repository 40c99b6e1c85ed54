//! Log lines: JSON lines `{"ts": ..., "source": "etl", "labels": {...}, "message": "..."}` (or a
//! JSON array of such objects), or plain text with one message a line. The request's `source`
//! and `labels` (query parameters) apply to plain-text lines and to objects without their own.

use serde::Deserialize;
use utoipa::ToSchema;

use super::json::classify_serde_error;
use super::point::{clip, labels_from_json, time_from_json, Precision};
use crate::db::write::LogLine;

pub const MAX_SOURCE_BYTES: usize = 256;
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonLogLine {
    /// RFC 3339 time, or an epoch number in `precision`; the server's time when absent.
    #[schema(value_type = Option<String>, example = "2026-03-02T10:00:05Z")]
    #[serde(default)]
    pub ts: Option<serde_json::Value>,
    /// Where the line comes from (a job, a host); the request's `source` when absent.
    #[serde(default)]
    pub source: Option<String>,
    /// Flat map of string labels; the request's `labels` when absent.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub labels: Option<serde_json::Value>,
    /// The line, non-empty, at most 1 MiB.
    #[schema(example = "ERROR: deadlock detected")]
    pub message: String,
}

/// Defaults from the request.
pub struct Defaults<'a> {
    pub source: &'a str,
    /// Canonical JSON text.
    pub labels: &'a str,
    pub precision: Precision,
    pub now: i64,
}

fn check_source(s: &str) -> Result<(), String> {
    if s.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "the source \"{}\" is longer than {MAX_SOURCE_BYTES} bytes",
            clip(s)
        ));
    }
    if s.contains('\0') {
        return Err("the source contains a NUL character".into());
    }
    Ok(())
}

fn check_message(m: &str) -> Result<(), String> {
    if m.is_empty() {
        return Err("the message is empty".into());
    }
    if m.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message is {} bytes, more than {MAX_MESSAGE_BYTES}",
            m.len()
        ));
    }
    if m.contains('\0') {
        return Err(format!(
            "the message \"{}\" contains a NUL character",
            clip(&m.replace('\0', "\\0"))
        ));
    }
    Ok(())
}

impl JsonLogLine {
    fn into_line(self, d: &Defaults) -> Result<LogLine, String> {
        check_message(&self.message)?;
        let source = self.source.unwrap_or_else(|| d.source.to_string());
        check_source(&source)?;
        let labels = match &self.labels {
            None => d.labels.to_string(),
            Some(v) => labels_from_json(Some(v))?,
        };
        let time_us = time_from_json(self.ts.as_ref(), d.precision, d.now)?;
        Ok(LogLine {
            time_us,
            source,
            labels,
            message: self.message,
        })
    }
}

/// JSON lines (or a JSON array of line objects).
pub fn parse_json(body: &[u8], d: &Defaults) -> Result<Vec<LogLine>, (&'static str, String)> {
    check_source(d.source).map_err(|m| ("invalid_parameter", m))?;
    let text = std::str::from_utf8(body)
        .map_err(|e| ("invalid_utf8", format!("the body is not valid UTF-8: {e}")))?;
    let located = |n: usize, (code, m): (&'static str, String)| (code, format!("line {n}: {m}"));
    if text.trim_start().starts_with('[') {
        let raw: Vec<JsonLogLine> =
            serde_json::from_str(text).map_err(|e| classify_serde_error(&e))?;
        return raw
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                l.into_line(d)
                    .map_err(|m| located(i + 1, (super::json::error_code(&m), m)))
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let raw: JsonLogLine =
            serde_json::from_str(line).map_err(|e| located(i + 1, classify_serde_error(&e)))?;
        out.push(
            raw.into_line(d)
                .map_err(|m| located(i + 1, (super::json::error_code(&m), m)))?,
        );
    }
    Ok(out)
}

/// Plain text: one message a line (blank lines skipped), all with the request's time, source and labels.
pub fn parse_text(body: &[u8], d: &Defaults) -> Result<Vec<LogLine>, (&'static str, String)> {
    check_source(d.source).map_err(|m| ("invalid_parameter", m))?;
    let text = std::str::from_utf8(body)
        .map_err(|e| ("invalid_utf8", format!("the body is not valid UTF-8: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        check_message(line).map_err(|m| ("invalid_value", format!("line {}: {m}", i + 1)))?;
        out.push(LogLine {
            time_us: d.now,
            source: d.source.to_string(),
            labels: d.labels.to_string(),
            message: line.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults<'static> {
        Defaults {
            source: "etl",
            labels: r#"{"env":"prod"}"#,
            precision: Precision::S,
            now: 5,
        }
    }

    #[test]
    fn json_lines_take_defaults() {
        let body = br#"{"message": "a", "ts": 1}
{"message": "b", "source": "web", "labels": {"x": "y"}}

"#;
        let lines = match parse_json(body, &defaults()) {
            Ok(l) => l,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].source, "etl");
        assert_eq!(lines[0].labels, r#"{"env":"prod"}"#);
        assert_eq!(lines[0].time_us, 1_000_000);
        assert_eq!(lines[1].source, "web");
        assert_eq!(lines[1].labels, r#"{"x":"y"}"#);
        assert_eq!(lines[1].time_us, 5);
    }

    #[test]
    fn text_lines() {
        let lines = match parse_text(b"one\r\n\ntwo\n", &defaults()) {
            Ok(l) => l,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(
            lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
            vec!["one", "two"]
        );
    }

    #[test]
    fn refuses_bad_lines() {
        assert!(parse_json(b"{\"message\": \"\"}", &defaults()).is_err());
        assert!(parse_json(b"{\"msg\": \"x\"}", &defaults()).is_err());
        assert!(parse_json(b"{\"message\": \"x\", \"labels\": {\"a\": 1}}", &defaults()).is_err());
        assert!(parse_json(b"not json", &defaults()).is_err());
        assert!(parse_text(b"\xff\xfe", &defaults()).is_err());
        let e = parse_json(b"{\"message\": \"ok\"}\n{\"message\": 3}\n", &defaults()).err();
        assert!(e.is_some_and(|(_, m)| m.starts_with("line 2:")));
    }
}
