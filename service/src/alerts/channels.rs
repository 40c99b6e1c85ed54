//! Sending one message through one route's channel: a generic webhook (the notification as
//! JSON), Telegram's Bot API `sendMessage`, a Slack-compatible incoming webhook, or e-mail over
//! SMTP. Every kind sends the same subject and text, composed once when the alert was stored
//! (`alerts::compose`); a channel only lays it out.
//!
//! Each attempt carries the delivery's idempotency key (the `Idempotency-Key` header over HTTP,
//! the `Message-ID` of an e-mail), and its outcome says whether to try again: network errors,
//! timeouts, 408, 425, 429, 5xx and SMTP 4xx replies are retried; other 4xx and SMTP 5xx replies
//! are final. Retry-After (the header, or Telegram's `parameters.retry_after`) is passed on.
//!
//! Secrets (a bot token, a Slack webhook URL, SMTP credentials) never reach an error message:
//! reqwest's errors are taken without their URL and the token is scrubbed from whatever else.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::grafana;
use super::routes::{Channel, Route};
use crate::config::{ChatId, Config};

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted: the HTTP status (HTTP kinds) and the receiver's reply (the SMTP server's, or
    /// Telegram's message id).
    Delivered {
        http: Option<u16>,
        reply: Option<String>,
    },
    /// Refused or unreachable: the HTTP status if any, the error, the delay the receiver asked
    /// for, and whether trying again is pointless.
    Failed {
        http: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
        permanent: bool,
    },
}

/// One message to send.
pub struct Message<'a> {
    /// The delivery's idempotency key.
    pub key: &'a str,
    /// 1 for the first try.
    pub attempt: i32,
    pub subject: &'a str,
    pub text: &'a str,
    /// What a generic webhook receives (the notification as JSON).
    pub body: &'a Value,
}

/// The HTTP client of every delivery (webhook, Telegram, Slack).
pub fn http_client(config: &Config) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(config.alert_delivery_timeout)
        .user_agent(concat!("tidewatch-service/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client of deliveries: {e}"))
}

/// Send `msg` through `route`'s channel, once, in at most `timeout` (the outbox's lease assumes
/// it: an SMTP server that stalls must not outlive it).
pub async fn send(
    http: &reqwest::Client,
    route: &Route,
    msg: &Message<'_>,
    timeout: Duration,
) -> Outcome {
    match tokio::time::timeout(timeout, send_once(http, route, msg)).await {
        Ok(o) => o,
        Err(_) => failed(None, format!("no answer within {timeout:?}"), false),
    }
}

async fn send_once(http: &reqwest::Client, route: &Route, msg: &Message<'_>) -> Outcome {
    match &route.channel {
        Channel::Webhook { url, hmac_secret } => {
            let bytes = match serde_json::to_vec(msg.body) {
                Ok(b) => b,
                Err(e) => return failed(None, format!("cannot encode the body: {e}"), true),
            };
            let mut req = post(http, url.clone(), msg);
            if let Some(secret) = hmac_secret {
                let ts = Utc::now().timestamp().to_string();
                let sig = grafana::sign(secret.expose().as_bytes(), &[ts.as_bytes(), b":", &bytes]);
                req = req
                    .header("X-Tidewatch-Timestamp", ts)
                    .header("X-Tidewatch-Signature", sig);
            }
            plain_http(req.body(bytes), None).await
        }
        Channel::Telegram {
            endpoint,
            token,
            chat_id,
        } => {
            let req =
                post(http, endpoint.clone(), msg).body(telegram_body(chat_id, msg).to_string());
            telegram(req, token.expose()).await
        }
        Channel::Slack { url, blocks } => {
            let req = post(http, url.clone(), msg).body(slack_body(msg, *blocks).to_string());
            plain_http(req, None).await
        }
        Channel::Email {
            transport,
            from,
            to,
            ..
        } => email(transport, from, to, msg).await,
    }
}

fn failed(http: Option<u16>, error: String, permanent: bool) -> Outcome {
    Outcome::Failed {
        http,
        error,
        retry_after: None,
        permanent,
    }
}

fn post(http: &reqwest::Client, url: reqwest::Url, msg: &Message<'_>) -> reqwest::RequestBuilder {
    http.post(url)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", msg.key)
        .header("X-Tidewatch-Attempt", msg.attempt.to_string())
}

/// 4xx other than 408 (timeout), 425 (too early) and 429 (too many requests) will not change by
/// trying again.
fn permanent_status(status: u16) -> bool {
    (400..500).contains(&status) && ![408, 425, 429].contains(&status)
}

fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A transport error without its URL (which may hold a token), with its causes.
fn transport_error(e: reqwest::Error, secret: Option<&str>) -> Outcome {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    failed(None, scrub(&msg, secret), false)
}

fn scrub(s: &str, secret: Option<&str>) -> String {
    match secret {
        Some(t) if !t.is_empty() => s.replace(t, "<redacted>"),
        _ => s.to_string(),
    }
}

/// A webhook or Slack: any 2xx is delivered; otherwise the status and the start of the body.
async fn plain_http(req: reqwest::RequestBuilder, secret: Option<&str>) -> Outcome {
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return transport_error(e, secret),
    };
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        let reply = Some(crate::ingest::point::clip(text.trim())).filter(|t| !t.is_empty());
        return Outcome::Delivered {
            http: Some(status),
            reply,
        };
    }
    let retry_after = retry_after_header(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    Outcome::Failed {
        http: Some(status),
        error: scrub(
            &format!("HTTP {status}: {}", crate::ingest::point::clip(text.trim())),
            secret,
        ),
        retry_after,
        permanent: permanent_status(status),
    }
}

/// Telegram allows 4096 characters a message.
const TELEGRAM_MAX: usize = 4096;

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s[i..].chars().nth(1).is_some() => format!("{}…", &s[..i]),
        _ => s.to_string(),
    }
}

/// `sendMessage`'s body: plain text (no parse_mode: labels and reasons need no escaping), the
/// subject on the first line, no link previews.
pub fn telegram_body(chat_id: &ChatId, msg: &Message<'_>) -> Value {
    let chat = match chat_id {
        ChatId::Number(n) => json!(n),
        ChatId::Text(s) => json!(s.trim()),
    };
    json!({
        "chat_id": chat,
        "text": truncate_chars(&format!("{}\n{}", msg.subject, msg.text), TELEGRAM_MAX),
        "link_preview_options": {"is_disabled": true},
    })
}

/// The Bot API answers `{"ok": true, "result": {...}}`, or `{"ok": false, "error_code": 429,
/// "description": "Too Many Requests: retry after 5", "parameters": {"retry_after": 5}}`.
async fn telegram(req: reqwest::RequestBuilder, token: &str) -> Outcome {
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return transport_error(e, Some(token)),
    };
    let status = resp.status().as_u16();
    let header_delay = retry_after_header(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if resp_ok(status, &body) {
        let id = body
            .pointer("/result/message_id")
            .and_then(Value::as_i64)
            .map(|id| format!("message_id {id}"));
        return Outcome::Delivered {
            http: Some(status),
            reply: id,
        };
    }
    let code = body
        .get("error_code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(status);
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| crate::ingest::point::clip(text.trim()));
    let body_delay = body
        .pointer("/parameters/retry_after")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    Outcome::Failed {
        http: Some(status),
        error: scrub(
            &format!("Telegram error {code}: {}", description.trim()),
            Some(token),
        ),
        retry_after: header_delay.max(body_delay),
        permanent: permanent_status(code),
    }
}

fn resp_ok(status: u16, body: &Value) -> bool {
    (200..300).contains(&status) && body.get("ok").and_then(Value::as_bool) == Some(true)
}

/// Slack's text escapes: `&`, `<` and `>` (its mrkdwn uses `<url|label>` for links).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An incoming webhook's body: `text` (the subject in bold, then the message), and with
/// `blocks` a header block and a section block with the same words.
pub fn slack_body(msg: &Message<'_>, blocks: bool) -> Value {
    let subject = slack_escape(msg.subject);
    let text = slack_escape(msg.text);
    let mut body = json!({"text": format!("*{subject}*\n{text}")});
    if blocks {
        body["blocks"] = json!([
            {"type": "header", "text": {"type": "plain_text", "text": truncate_chars(msg.subject, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate_chars(&text, 3000)}},
        ]);
    }
    body
}

/// The e-mail: the subject, the text as plain text, a Message-ID made of the idempotency key (a
/// mail system that deduplicates on it shows a message sent twice once), `Auto-Submitted:
/// auto-generated` (RFC 3834: no vacation replies).
pub fn email_message(
    from: &lettre::message::Mailbox,
    to: &[lettre::message::Mailbox],
    msg: &Message<'_>,
) -> Result<lettre::Message, String> {
    use lettre::message::header::{ContentType, HeaderName, HeaderValue};
    let domain = from.email.domain();
    let mut b = lettre::Message::builder()
        .from(from.clone())
        .subject(msg.subject)
        .message_id(Some(format!("<{}@{domain}>", msg.key)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Tidewatch-Idempotency-Key"),
            msg.key.to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        b = b.to(t.clone());
    }
    b.body(format!("{}\n", msg.text))
        .map_err(|e| format!("cannot build the e-mail: {e}"))
}

async fn email(
    transport: &lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: &lettre::message::Mailbox,
    to: &[lettre::message::Mailbox],
    msg: &Message<'_>,
) -> Outcome {
    use lettre::AsyncTransport;
    let m = match email_message(from, to, msg) {
        Ok(m) => m,
        Err(e) => return failed(None, e, true),
    };
    match transport.send(m).await {
        Ok(resp) => Outcome::Delivered {
            http: None,
            reply: Some(format!(
                "{} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            )),
        },
        Err(e) => failed(None, format!("SMTP: {e}"), e.is_permanent()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(subject: &'a str, text: &'a str, body: &'a Value) -> Message<'a> {
        Message {
            key: "tidewatch-7-mail",
            attempt: 1,
            subject,
            text,
            body,
        }
    }

    #[test]
    fn telegram_body_is_plain_text_and_fits() {
        let v = Value::Null;
        let b = telegram_body(
            &ChatId::Number(-100123),
            &msg("[FIRING] x", "Where: a=b", &v),
        );
        assert_eq!(b["chat_id"], json!(-100123));
        assert_eq!(b["text"], json!("[FIRING] x\nWhere: a=b"));
        assert!(b.get("parse_mode").is_none());
        let long = "é".repeat(5000);
        let b = telegram_body(&ChatId::Text("@ops".into()), &msg("s", &long, &v));
        assert_eq!(b["chat_id"], json!("@ops"));
        let t = b["text"].as_str().unwrap_or_default();
        assert_eq!(t.chars().count(), TELEGRAM_MAX);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn truncation_keeps_short_text_whole() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("", 3), "");
    }

    #[test]
    fn slack_body_escapes_and_blocks() {
        let v = Value::Null;
        let b = slack_body(&msg("[FIRING] a<b", "x & y > z", &v), false);
        assert_eq!(b["text"], json!("*[FIRING] a&lt;b*\nx &amp; y &gt; z"));
        assert!(b.get("blocks").is_none());
        let b = slack_body(&msg("s", "t", &v), true);
        assert_eq!(b["blocks"][0]["type"], json!("header"));
        assert_eq!(b["blocks"][1]["text"]["text"], json!("t"));
    }

    #[test]
    fn email_carries_the_key_as_message_id() {
        let v = Value::Null;
        let from: lettre::message::Mailbox = "Tidewatch <alerts@example.net>"
            .parse()
            .unwrap_or_else(|_| panic!("mailbox"));
        let to: lettre::message::Mailbox = "ops@example.org"
            .parse()
            .unwrap_or_else(|_| panic!("mailbox"));
        let m = email_message(&from, &[to], &msg("[RESOLVED] cpu", "Resolved: now", &v))
            .unwrap_or_else(|e| panic!("{e}"));
        let raw = String::from_utf8(m.formatted()).unwrap_or_default();
        assert!(
            raw.contains("Message-ID: <tidewatch-7-mail@example.net>"),
            "{raw}"
        );
        assert!(raw.contains("Subject: [RESOLVED] cpu"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(raw.contains("Resolved: now"), "{raw}");
    }

    #[test]
    fn permanence() {
        assert!(permanent_status(400));
        assert!(permanent_status(403));
        assert!(!permanent_status(429));
        assert!(!permanent_status(408));
        assert!(!permanent_status(503));
        assert!(!permanent_status(200));
    }
}
