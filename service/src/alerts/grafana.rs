//! Grafana's webhook contact-point payload, parsed strictly enough to store it safely and loosely
//! enough to keep every field: each alert is kept as received (unknown fields included), and the
//! payload's other fields are kept beside it. Also the HMAC-SHA256 signature check.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One alert of the payload, validated.
#[derive(Debug, Clone)]
pub struct Alert {
    pub fingerprint: String,
    pub status: String,
    pub starts_at: DateTime<Utc>,
    /// None for Grafana's "not resolved" zero time (0001-01-01T00:00:00Z) or when absent.
    pub ends_at: Option<DateTime<Utc>>,
    pub labels: Map<String, Value>,
    pub annotations: Map<String, Value>,
    /// The alert object exactly as received.
    pub raw: Value,
}

impl Alert {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).and_then(|v| v.as_str())
    }
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).and_then(|v| v.as_str())
    }
    pub fn field(&self, name: &str) -> Option<&str> {
        self.raw
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug)]
pub struct Payload {
    pub alerts: Vec<Alert>,
    /// Every field but `alerts`.
    pub rest: Value,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_payload", message)
}

fn string_map(v: Option<&Value>, what: &str, i: usize) -> Result<Map<String, Value>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(invalid(format!(
                    "alerts[{i}].{what}.{k} is not a string (Grafana sends {what} as strings)"
                )));
            }
            Ok(m.clone())
        }
        Some(_) => Err(invalid(format!("alerts[{i}].{what} is not an object"))),
    }
}

fn time(v: Option<&Value>, what: &str, i: usize) -> Result<Option<DateTime<Utc>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                invalid(format!(
                    "alerts[{i}].{what} \"{}\" is not an RFC 3339 time: {e}",
                    crate::ingest::point::clip(s)
                ))
            }),
        Some(_) => Err(invalid(format!("alerts[{i}].{what} is not a string"))),
    }
}

/// Alertmanager's "zero" time, which Grafana sends as endsAt of firing alerts.
fn is_zero_time(t: &DateTime<Utc>) -> bool {
    t.timestamp() <= -62_135_596_800
}

/// A fingerprint for alerts without one: a digest of their sorted labels.
fn labels_fingerprint(labels: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&String, &Value)> = labels.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (k, v) in pairs {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_str().unwrap_or("").as_bytes());
        h.update([0xfe]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Parse and validate the whole payload before anything is stored.
pub fn parse(body: &[u8]) -> Result<Payload, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not JSON (Grafana's webhook payload): {e}"),
        )
    })?;
    let Value::Object(mut obj) = v else {
        return Err(invalid(
            "the payload is not a JSON object with an \"alerts\" list",
        ));
    };
    let alerts = match obj.remove("alerts") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("\"alerts\" is not a list")),
        None => return Err(invalid("the payload has no \"alerts\" list")),
    };
    let mut out = Vec::with_capacity(alerts.len());
    for (i, raw) in alerts.into_iter().enumerate() {
        let Value::Object(a) = &raw else {
            return Err(invalid(format!("alerts[{i}] is not an object")));
        };
        let status = match a.get("status") {
            Some(Value::String(s)) if s == "firing" || s == "resolved" => s.clone(),
            Some(other) => {
                return Err(invalid(format!(
                    "alerts[{i}].status {other} is not \"firing\" or \"resolved\""
                )))
            }
            None => return Err(invalid(format!("alerts[{i}] has no status"))),
        };
        let starts_at = time(a.get("startsAt"), "startsAt", i)?
            .ok_or_else(|| invalid(format!("alerts[{i}] has no startsAt")))?;
        let ends_at = time(a.get("endsAt"), "endsAt", i)?.filter(|t| !is_zero_time(t));
        let labels = string_map(a.get("labels"), "labels", i)?;
        let annotations = string_map(a.get("annotations"), "annotations", i)?;
        let fingerprint = match a.get("fingerprint") {
            Some(Value::String(s)) if !s.is_empty() => {
                if s.len() > 200 {
                    return Err(invalid(format!("alerts[{i}].fingerprint is too long")));
                }
                s.clone()
            }
            None | Some(Value::Null) => labels_fingerprint(&labels),
            Some(Value::String(_)) => labels_fingerprint(&labels),
            Some(_) => return Err(invalid(format!("alerts[{i}].fingerprint is not a string"))),
        };
        out.push(Alert {
            fingerprint,
            status,
            starts_at,
            ends_at,
            labels,
            annotations,
            raw,
        });
    }
    Ok(Payload {
        alerts: out,
        rest: Value::Object(obj),
    })
}

/// Why a signature was refused (each a 401 with its own code).
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Invalid,
    BadTimestamp,
    Stale,
}

impl SignatureError {
    pub fn into_api(self, header: &str) -> ApiError {
        match self {
            SignatureError::Missing => ApiError::unauthorized(
                "missing_signature",
                "send a write token (Authorization: Bearer) or Grafana's HMAC signature \
                 (X-Grafana-Alerting-Signature)",
            ),
            SignatureError::Invalid => ApiError::unauthorized(
                "invalid_signature",
                "the HMAC-SHA256 signature does not match the body (and timestamp) with the configured secret",
            ),
            SignatureError::BadTimestamp => ApiError::unauthorized(
                "invalid_timestamp",
                format!("the {header} header is not a Unix time in seconds"),
            ),
            SignatureError::Stale => ApiError::unauthorized(
                "stale_timestamp",
                format!("the {header} header is more than 5 minutes away from now: a replay?"),
            ),
        }
    }
}

pub const MAX_SKEW_SECS: i64 = 300;

/// Verify hex HMAC-SHA256(secret, body), or of timestamp ":" body when a timestamp is given,
/// in constant time; the timestamp (Unix seconds, or milliseconds) must be within 5 minutes.
pub fn verify(
    secret: &[u8],
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let sig = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing)?;
    let sig = sig.strip_prefix("sha256=").unwrap_or(sig);
    let sig = hex::decode(sig).map_err(|_| SignatureError::Invalid)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Invalid)?;
    if let Some(ts) = timestamp {
        let ts = ts.trim();
        let n: i64 = ts.parse().map_err(|_| SignatureError::BadTimestamp)?;
        let secs = if n.abs() > 100_000_000_000 {
            n / 1000
        } else {
            n
        };
        // Check the signature first: an unsigned stale request is "invalid", not "stale".
        mac.update(ts.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac.verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        if (now.timestamp() - secs).abs() > MAX_SKEW_SECS {
            return Err(SignatureError::Stale);
        }
        Ok(())
    } else {
        mac.update(body);
        mac.verify_slice(&sig).map_err(|_| SignatureError::Invalid)
    }
}

/// hex HMAC-SHA256(secret, message): used to sign our own deliveries.
pub fn sign(secret: &[u8], parts: &[&[u8]]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            for p in parts {
                mac.update(p);
            }
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_with_and_without_timestamp() {
        let now = Utc::now();
        let body = b"{\"alerts\":[]}";
        let plain = sign(b"s3cret", &[body]);
        assert_eq!(verify(b"s3cret", body, Some(&plain), None, now), Ok(()));
        assert_eq!(
            verify(b"other", body, Some(&plain), None, now),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(b"s3cret", body, None, None, now),
            Err(SignatureError::Missing)
        );
        let ts = now.timestamp().to_string();
        let timed = sign(b"s3cret", &[ts.as_bytes(), b":", body]);
        assert_eq!(
            verify(b"s3cret", body, Some(&timed), Some(&ts), now),
            Ok(())
        );
        // The plain signature is not valid once a timestamp is sent.
        assert_eq!(
            verify(b"s3cret", body, Some(&plain), Some(&ts), now),
            Err(SignatureError::Invalid)
        );
        let old = (now.timestamp() - 301).to_string();
        let sig_old = sign(b"s3cret", &[old.as_bytes(), b":", body]);
        assert_eq!(
            verify(b"s3cret", body, Some(&sig_old), Some(&old), now),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"s3cret", body, Some(&timed), Some("yesterday"), now),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn payloads() {
        let p = parse(
            br#"{"receiver":"r","status":"firing","extra":1,"alerts":[{"status":"firing","labels":{"a":"b"},
            "startsAt":"0001-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc","new":true}]}"#,
        );
        let p = match p {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(p.alerts.len(), 1);
        assert!(p.alerts[0].ends_at.is_none());
        assert_eq!(p.alerts[0].starts_at.timestamp(), -62_135_596_800);
        assert_eq!(p.rest.get("extra"), Some(&Value::from(1)));
        assert!(p.rest.get("alerts").is_none());
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"alerts":{}}"#).is_err());
        assert!(parse(br#"{"alerts":[{"status":"firing","startsAt":"yesterday"}]}"#).is_err());
        assert!(
            parse(br#"{"alerts":[{"status":"pending","startsAt":"2024-01-01T00:00:00Z"}]}"#)
                .is_err()
        );
        assert!(parse(br#"{"alerts":[{"status":"firing","startsAt":"2024-01-01T00:00:00Z","labels":{"a":1}}]}"#).is_err());
    }
}
