//! Delivery routes: label matchers as Grafana writes them (`=`, `!=`, `=~`, `!~`; regular
//! expressions anchored at both ends, as in Alertmanager) mapped to channels.

use regex::Regex;

use crate::config::{ChatId, RouteConfig, Secret};

#[derive(Debug, Clone)]
pub enum Op {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
}

impl Matcher {
    /// `label=value`, `label!=value`, `label=~regex`, `label!~regex`; the value may be quoted.
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let pos = s
            .find(['=', '!'])
            .ok_or_else(|| format!("matcher \"{s}\" has no operator (=, !=, =~, !~)"))?;
        let label = s[..pos].trim().to_string();
        let rest = &s[pos..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            ("=~", v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            ("!~", v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            ("!=", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            return Err(format!("matcher \"{s}\" has no operator (=, !=, =~, !~)"));
        };
        if label.is_empty() || !label.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("matcher \"{s}\": \"{label}\" is not a label name"));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .to_string();
        let re = |v: &str| {
            Regex::new(&format!("^(?:{v})$"))
                .map_err(|e| format!("matcher \"{s}\": bad regular expression: {e}"))
        };
        let op = match op {
            "=" => Op::Eq(value),
            "!=" => Op::Ne(value),
            "=~" => Op::Re(re(&value)?),
            _ => Op::NotRe(re(&value)?),
        };
        Ok(Matcher { label, op })
    }

    /// A missing label is the empty string, as in Alertmanager.
    pub fn matches(&self, labels: &serde_json::Map<String, serde_json::Value>) -> bool {
        let v = labels
            .get(&self.label)
            .and_then(|v| v.as_str())
            .unwrap_or("");
        match &self.op {
            Op::Eq(x) => v == x,
            Op::Ne(x) => v != x,
            Op::Re(r) => r.is_match(v),
            Op::NotRe(r) => !r.is_match(v),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub config: RouteConfig,
    pub matchers: Vec<Matcher>,
    /// Where and how to send, checked and built once at start.
    pub channel: Channel,
}

#[derive(Debug, Clone, Default)]
pub struct Routes(pub Vec<Route>);

pub const KINDS: &[&str] = &["webhook", "telegram", "slack", "email"];

/// Telegram's Bot API, unless the route says otherwise (tests point it at a local receiver).
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// How an e-mail route reaches its SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a relay on the same host or network).
    None,
    /// Plain text, then STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// A route's channel, validated: every URL parsed, every address parsed, the SMTP transport built.
#[derive(Clone)]
pub enum Channel {
    Webhook {
        url: reqwest::Url,
        hmac_secret: Option<Secret>,
    },
    Telegram {
        /// `{base_url}/bot{token}/sendMessage`: holds the token, never shown.
        endpoint: reqwest::Url,
        /// The token, to scrub it from error messages.
        token: Secret,
        chat_id: ChatId,
    },
    Slack {
        /// Holds the webhook's token, never shown.
        url: reqwest::Url,
        blocks: bool,
    },
    Email {
        transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        host: String,
        port: u16,
        tls: SmtpTls,
        from: lettre::message::Mailbox,
        to: Vec<lettre::message::Mailbox>,
    },
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Channel::Webhook { url, .. } => write!(f, "webhook {url}"),
            Channel::Telegram { chat_id, .. } => write!(f, "telegram chat {chat_id:?}"),
            Channel::Slack { .. } => f.write_str("slack <redacted url>"),
            Channel::Email {
                host,
                port,
                tls,
                to,
                ..
            } => {
                write!(
                    f,
                    "email via {host}:{port} ({tls:?}) to {} recipient(s)",
                    to.len()
                )
            }
        }
    }
}

fn http_url(route: &str, field: &str, s: &str) -> Result<reqwest::Url, String> {
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return Err(format!(
            "route \"{route}\": {field} must start with http:// or https://"
        ));
    }
    let url = reqwest::Url::parse(s)
        // The parser's message names no part of the URL (which may hold a token).
        .map_err(|e| format!("route \"{route}\": {field} is not a valid URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("route \"{route}\": {field} has no host"));
    }
    Ok(url)
}

/// Refuse the settings of other kinds: a typo or a kind changed halfway is caught at start.
fn only(c: &RouteConfig, allowed: &[&str]) -> Result<(), String> {
    let set: [(&str, bool); 13] = [
        ("url", c.url.is_some()),
        ("hmac_secret", c.hmac_secret.is_some()),
        ("bot_token", c.bot_token.is_some()),
        ("chat_id", c.chat_id.is_some()),
        ("base_url", c.base_url.is_some()),
        ("blocks", c.blocks),
        ("smtp_host", c.smtp_host.is_some()),
        ("smtp_port", c.smtp_port.is_some()),
        ("smtp_tls", c.smtp_tls.is_some()),
        ("smtp_username", c.smtp_username.is_some()),
        ("smtp_password", c.smtp_password.is_some()),
        ("from", c.from.is_some()),
        ("to", !c.to.is_empty()),
    ];
    match set.iter().find(|(k, on)| *on && !allowed.contains(k)) {
        Some((k, _)) => Err(format!(
            "route \"{}\": {k} is not a setting of {} routes (they take: {})",
            c.name,
            c.kind,
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn missing(c: &RouteConfig, field: &str, example: &str) -> String {
    format!(
        "route \"{}\": {} routes need {field} (e.g. {example})",
        c.name, c.kind
    )
}

/// Check a route's settings for its kind and build its channel.
fn channel(c: &RouteConfig) -> Result<Channel, String> {
    let name = c.name.as_str();
    match c.kind.as_str() {
        "webhook" => {
            only(c, &["url", "hmac_secret"])?;
            let url = c
                .url
                .as_ref()
                .ok_or_else(|| missing(c, "url", "\"https://hooks.example.net/tidewatch\""))?;
            Ok(Channel::Webhook {
                url: http_url(name, "url", url.expose())?,
                hmac_secret: c.hmac_secret.clone().filter(|s| !s.expose().is_empty()),
            })
        }
        "telegram" => {
            only(c, &["bot_token", "chat_id", "base_url"])?;
            let token = c
                .bot_token
                .clone()
                .filter(|t| !t.expose().trim().is_empty())
                .ok_or_else(|| missing(c, "bot_token", "\"123456:ABC-DEF...\" from @BotFather"))?;
            if !token
                .expose()
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == ':' || ch == '_' || ch == '-')
            {
                return Err(format!(
                    "route \"{name}\": bot_token must be letters, digits, ':', '_' or '-' (as @BotFather gives it)"
                ));
            }
            let chat_id = match &c.chat_id {
                None => return Err(missing(c, "chat_id", "-1001234567890 or \"@channelname\"")),
                Some(ChatId::Text(t)) if t.trim().is_empty() => {
                    return Err(missing(c, "chat_id", "-1001234567890 or \"@channelname\""))
                }
                Some(id) => id.clone(),
            };
            let base = c.base_url.as_deref().unwrap_or(TELEGRAM_API);
            let base_url = http_url(name, "base_url", base)?;
            let endpoint = base_url
                .join(&format!(
                    "{}/bot{}/sendMessage",
                    base_url.path().trim_end_matches('/'),
                    token.expose()
                ))
                .map_err(|e| format!("route \"{name}\": base_url: {e}"))?;
            Ok(Channel::Telegram {
                endpoint,
                token,
                chat_id,
            })
        }
        "slack" => {
            only(c, &["url", "blocks"])?;
            let url = c.url.as_ref().ok_or_else(|| {
                missing(
                    c,
                    "url",
                    "\"https://hooks.slack.com/services/T000/B000/XXXX\"",
                )
            })?;
            Ok(Channel::Slack {
                url: http_url(name, "url", url.expose())?,
                blocks: c.blocks,
            })
        }
        "email" => {
            only(
                c,
                &[
                    "smtp_host",
                    "smtp_port",
                    "smtp_tls",
                    "smtp_username",
                    "smtp_password",
                    "from",
                    "to",
                ],
            )?;
            email_channel(c)
        }
        other => Err(format!(
            "route \"{name}\": unknown kind \"{other}\" (supported: {})",
            KINDS.join(", ")
        )),
    }
}

fn email_channel(c: &RouteConfig) -> Result<Channel, String> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let name = c.name.as_str();
    let host = c
        .smtp_host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| missing(c, "smtp_host", "\"smtp.example.net\""))?
        .to_string();
    if host.contains(|ch: char| ch.is_whitespace() || ch == '/' || ch == ':') {
        return Err(format!(
            "route \"{name}\": smtp_host \"{host}\" is not a host name (give the port as smtp_port)"
        ));
    }
    let tls = match c.smtp_tls.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
        None => SmtpTls::StartTls,
        Some(s) if s == "none" => SmtpTls::None,
        Some(s) if s == "starttls" => SmtpTls::StartTls,
        Some(s) if s == "tls" => SmtpTls::Tls,
        Some(s) => {
            return Err(format!(
                "route \"{name}\": smtp_tls \"{s}\" is not one of none, starttls, tls"
            ))
        }
    };
    let port = c.smtp_port.unwrap_or(match tls {
        SmtpTls::None => 25,
        SmtpTls::StartTls => 587,
        SmtpTls::Tls => 465,
    });
    if port == 0 {
        return Err(format!("route \"{name}\": smtp_port must be 1..65535"));
    }
    let from: lettre::message::Mailbox = c
        .from
        .as_deref()
        .ok_or_else(|| missing(c, "from", "\"Tidewatch <alerts@example.net>\""))?
        .parse()
        .map_err(|e| format!("route \"{name}\": from is not an e-mail address: {e}"))?;
    if c.to.is_empty() {
        return Err(missing(c, "to", "[\"oncall@example.net\"]"));
    }
    let to = c
        .to
        .iter()
        .map(|t| {
            t.parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("route \"{name}\": to \"{t}\" is not an e-mail address: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(&host).port(port);
    if tls != SmtpTls::None {
        let params = TlsParameters::new(host.clone())
            .map_err(|e| format!("route \"{name}\": TLS set-up for {host}: {e}"))?;
        builder = builder.tls(match tls {
            SmtpTls::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    match (&c.smtp_username, &c.smtp_password) {
        (Some(u), Some(p)) => {
            builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()))
        }
        (None, None) => {}
        _ => {
            return Err(format!(
                "route \"{name}\": give both smtp_username and smtp_password, or neither"
            ))
        }
    }
    Ok(Channel::Email {
        transport: builder.build(),
        host,
        port,
        tls,
        from,
        to,
    })
}

impl Routes {
    /// Check every route (names, kinds, each kind's settings, matchers) and build its channel;
    /// the first problem is the error, naming the route and the setting.
    pub fn compile(configs: &[RouteConfig]) -> Result<Routes, String> {
        let mut out = Vec::new();
        for c in configs {
            if c.name.is_empty()
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(format!(
                    "route name \"{}\" must be letters, digits, '-' or '_'",
                    c.name
                ));
            }
            if out.iter().any(|r: &Route| r.config.name == c.name) {
                return Err(format!("two routes are named \"{}\"", c.name));
            }
            if c.max_attempts == 0 || c.max_attempts > 100 {
                return Err(format!(
                    "route \"{}\": max_attempts must be in 1..100",
                    c.name
                ));
            }
            let channel = channel(c)?;
            let matchers = c
                .matchers
                .iter()
                .map(|m| Matcher::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("route \"{}\": {e}", c.name))?;
            out.push(Route {
                config: c.clone(),
                matchers,
                channel,
            });
        }
        Ok(Routes(out))
    }

    /// The routes whose matchers all match these labels.
    pub fn matching<'a>(
        &'a self,
        labels: &'a serde_json::Map<String, serde_json::Value>,
    ) -> impl Iterator<Item = &'a Route> + 'a {
        self.0
            .iter()
            .filter(move |r| r.matchers.iter().all(|m| m.matches(labels)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn matchers_as_grafana_writes_them() {
        let l = labels(serde_json::json!({"severity": "critical", "satellite": "SAT2"}));
        let ok = |s: &str| Matcher::parse(s).map(|m| m.matches(&l)).unwrap_or(false);
        assert!(ok("severity=critical"));
        assert!(ok("severity = \"critical\""));
        assert!(!ok("severity!=critical"));
        assert!(ok("satellite=~SAT[12]"));
        assert!(!ok("satellite=~SAT")); // anchored
        assert!(ok("satellite!~SAT[34]"));
        assert!(ok("team!=ops")); // missing label is ""
        assert!(ok("team=\"\""));
        assert!(Matcher::parse("severity").is_err());
        assert!(Matcher::parse("=x").is_err());
        assert!(Matcher::parse("a=~(").is_err());
    }

    fn compile(v: serde_json::Value) -> Result<Routes, String> {
        let configs: Vec<RouteConfig> = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Routes::compile(&configs)
    }

    #[test]
    fn every_kind_checked_for_its_settings() {
        let ok = compile(serde_json::json!([
            {"name": "tg", "kind": "telegram", "bot_token": "123:AbC_d-e", "chat_id": -100123,
             "base_url": "http://127.0.0.1:5/api/"},
            {"name": "sl", "kind": "slack", "url": "http://127.0.0.1:5/services/T/B/X", "blocks": true},
            {"name": "em", "kind": "email", "smtp_host": "127.0.0.1", "smtp_tls": "none",
             "from": "Tidewatch <tw@example.net>", "to": ["a@example.net", "B <b@example.net>"]},
            {"name": "wh", "kind": "webhook", "url": "http://127.0.0.1:5/x"}
        ]));
        let routes = ok.unwrap_or_else(|e| panic!("{e}"));
        match &routes.0[0].channel {
            Channel::Telegram { endpoint, .. } => {
                assert_eq!(
                    endpoint.as_str(),
                    "http://127.0.0.1:5/api/bot123:AbC_d-e/sendMessage"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{:?}", routes.0[0].channel).contains("AbC"),
            "the token is not shown"
        );
        match &routes.0[2].channel {
            Channel::Email { port, tls, to, .. } => {
                assert_eq!((*port, *tls, to.len()), (25, SmtpTls::None, 2))
            }
            other => panic!("{other:?}"),
        }
        let err = |v: serde_json::Value| compile(v).err().unwrap_or_default();
        for (route, want) in [
            (
                serde_json::json!({"name": "x", "kind": "pager"}),
                "unknown kind \"pager\"",
            ),
            (
                serde_json::json!({"name": "x", "kind": "telegram", "bot_token": "1:a"}),
                "telegram routes need chat_id",
            ),
            (
                serde_json::json!({"name": "x", "kind": "telegram", "chat_id": 5}),
                "need bot_token",
            ),
            (
                serde_json::json!({"name": "x", "kind": "telegram", "bot_token": "1:a b", "chat_id": 5}),
                "bot_token must be",
            ),
            (
                serde_json::json!({"name": "x", "kind": "telegram", "bot_token": "1:a", "chat_id": 5, "base_url": "api.telegram.org"}),
                "base_url must start with http",
            ),
            (
                serde_json::json!({"name": "x", "kind": "telegram", "bot_token": "1:a", "chat_id": 5, "url": "http://a"}),
                "url is not a setting of telegram routes",
            ),
            (
                serde_json::json!({"name": "x", "kind": "slack"}),
                "slack routes need url",
            ),
            (
                serde_json::json!({"name": "x", "kind": "slack", "url": "http://"}),
                "url is not a valid URL",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "from": "a@b.c", "to": ["d@e.f"]}),
                "need smtp_host",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "smtp_host": "h", "to": ["d@e.f"]}),
                "need from",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "smtp_host": "h", "from": "a@b.c"}),
                "need to",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "smtp_host": "h", "from": "nobody", "to": ["d@e.f"]}),
                "from is not an e-mail address",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "smtp_host": "h", "from": "a@b.c", "to": ["d@e.f"],
                                "smtp_tls": "ssl"}),
                "smtp_tls \"ssl\" is not one of none, starttls, tls",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "smtp_host": "h", "from": "a@b.c", "to": ["d@e.f"],
                                "smtp_username": "u"}),
                "both smtp_username and smtp_password",
            ),
            (
                serde_json::json!({"name": "x", "kind": "email", "smtp_host": "h:25", "from": "a@b.c", "to": ["d@e.f"]}),
                "is not a host name",
            ),
            (
                serde_json::json!({"name": "x", "kind": "webhook", "url": "http://a", "chat_id": 1}),
                "chat_id is not a setting of webhook routes",
            ),
        ] {
            let e = err(serde_json::json!([route]));
            assert!(e.contains(want), "{route}: {e}");
        }
    }
}
