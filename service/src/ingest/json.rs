//! JSON points: `[{"metric": "SCH.M1", "labels": {"satellite": "SAT2"}, "ts": "2026-03-02T10:00:05Z",
//! "value": 1.5}]`. `ts` is RFC 3339 text or an epoch number in `precision`; absent, the server's
//! time. The same objects, one per line, are the JSON-lines import format.

use serde::Deserialize;
use utoipa::ToSchema;

use super::point::{
    check_metric, check_value, json_kind, labels_from_json, time_from_json, Precision,
};
use crate::db::write::Point;

/// One point as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonPoint {
    /// Metric name, non-empty, at most 1024 bytes.
    #[schema(example = "SCH.M1")]
    pub metric: String,
    /// Flat map of string labels: at most 64, names up to 256 bytes, values up to 4 KiB.
    #[schema(value_type = Option<Object>, example = json!({"satellite": "SAT2"}))]
    #[serde(default)]
    pub labels: Option<serde_json::Value>,
    /// RFC 3339 time, or epoch number in `precision` (seconds by default); the server's time when absent.
    #[schema(value_type = Option<String>, example = "2026-03-02T10:00:05Z")]
    #[serde(default)]
    pub ts: Option<serde_json::Value>,
    /// A finite number.
    #[schema(value_type = f64, example = 1.5)]
    pub value: serde_json::Value,
}

impl JsonPoint {
    /// Validate into a [`Point`]; the error names what is wrong.
    pub fn into_point(self, precision: Precision, now: i64) -> Result<Point, String> {
        check_metric(&self.metric)?;
        let value = match &self.value {
            serde_json::Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| format!("value {n} is not a finite number"))?,
            serde_json::Value::Null => return Err("the value is missing (null)".into()),
            other => {
                return Err(format!(
                    "value must be a number, not {} ({})",
                    json_kind(other),
                    super::point::clip(&other.to_string())
                ))
            }
        };
        check_value(value)?;
        let labels = labels_from_json(self.labels.as_ref())?;
        let time_us = time_from_json(self.ts.as_ref(), precision, now)?;
        Ok(Point {
            time_us,
            metric: self.metric,
            labels,
            value,
        })
    }
}

/// Why a JSON body was refused: the error code and the message.
pub fn classify_serde_error(e: &serde_json::Error) -> (&'static str, String) {
    let msg = e.to_string();
    if msg.contains("number out of range") {
        (
            "invalid_value",
            format!("a number is out of range (values must be finite): {msg}"),
        )
    } else if msg.contains("missing field") {
        ("missing_field", msg)
    } else if msg.contains("unknown field") {
        ("unknown_field", msg)
    } else if msg.contains("invalid type") {
        ("invalid_type", msg)
    } else {
        ("invalid_json", msg)
    }
}

/// A whole JSON body: an array of points (a single object is taken as a batch of one).
pub fn parse(
    body: &[u8],
    precision: Precision,
    now: i64,
) -> Result<Vec<Point>, (&'static str, String)> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ("invalid_utf8", format!("the body is not valid UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    let raw: Vec<JsonPoint> = if trimmed.starts_with('{') {
        vec![serde_json::from_str(text).map_err(|e| classify_serde_error(&e))?]
    } else {
        serde_json::from_str(text).map_err(|e| {
            let (code, msg) = classify_serde_error(&e);
            (
                code,
                if trimmed.starts_with('[') {
                    msg
                } else {
                    format!("expected a JSON array of points: {msg}")
                },
            )
        })?
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.into_point(precision, now)
                .map_err(|m| (error_code(&m), format!("point {i}: {m}")))
        })
        .collect()
}

/// The code of a validation message (what kind of value was wrong).
pub fn error_code(message: &str) -> &'static str {
    if message.contains("label") {
        "invalid_labels"
    } else if message.contains("metric name") {
        "invalid_metric"
    } else if message.contains("ts must")
        || message.contains("RFC 3339")
        || message.contains("timestamp")
        || message.contains("out of range (years")
    {
        "invalid_timestamp"
    } else {
        "invalid_value"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(s: &str) -> Vec<Point> {
        match parse(s.as_bytes(), Precision::S, 42) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn parse_err(s: &str) -> &'static str {
        match parse(s.as_bytes(), Precision::S, 42) {
            Ok(p) => panic!("accepted {p:?}"),
            Err((code, _)) => code,
        }
    }

    #[test]
    fn accepts_points() {
        let p = parse_ok(
            r#"[{"metric": "m", "labels": {"b": "2", "a": "1"}, "ts": "1970-01-01T00:00:02Z", "value": 1.5},
                            {"metric": "m", "ts": 3, "value": -2}, {"metric": "m", "value": 0}]"#,
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].labels, r#"{"a":"1","b":"2"}"#);
        assert_eq!(p[0].time_us, 2_000_000);
        assert_eq!(p[1].time_us, 3_000_000);
        assert_eq!(p[1].value, -2.0);
        assert_eq!(p[2].time_us, 42);
        assert_eq!(p[2].labels, "{}");
    }

    #[test]
    fn refuses_bad_points() {
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": "1.5"}]"#),
            "invalid_value"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": true}]"#),
            "invalid_value"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": null}]"#),
            "invalid_value"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": 1e999}]"#),
            "invalid_value"
        );
        assert_eq!(parse_err(r#"[{"metric": "m"}]"#), "missing_field");
        assert_eq!(
            parse_err(r#"[{"metric": "", "value": 1}]"#),
            "invalid_metric"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": 1, "labels": {"a": 1}}]"#),
            "invalid_labels"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": 1, "ts": "soon"}]"#),
            "invalid_timestamp"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": 1, "ts": 1e15}]"#),
            "invalid_timestamp"
        );
        assert_eq!(
            parse_err(r#"[{"metric": "m", "value": 1, "extra": 1}]"#),
            "unknown_field"
        );
        assert_eq!(parse_err(r#"[{"metric": "m", "value": 1}"#), "invalid_json");
        assert_eq!(parse_err(r#""m""#), "invalid_type");
    }
}
