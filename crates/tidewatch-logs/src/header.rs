//! Header parsing: split a raw log line into timestamp, level, component and message before
//! mining, for syslog (RFC 3164 and RFC 5424), log4j/logback, Python logging and JSON lines.
//! Unrecognised lines come back as [`HeaderFormat::Plain`] with the whole line as message.

use regex::Regex;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HeaderFormat {
    Json,
    /// RFC 5424 (`<34>1 2003-10-11T22:14:15.003Z host app procid msgid - msg`)
    Syslog5424,
    /// RFC 3164 / BSD (`<34>Oct 11 22:14:15 host app[123]: msg`, `<PRI>` optional)
    Syslog,
    /// `2024-01-01 12:00:00,123 INFO [thread] com.x.Y - msg` and the logback layout
    /// `12:00:00.123 [thread] INFO com.x.Y - msg`
    Log4j,
    /// `2024-01-01 12:00:00,123 - name - INFO - msg` or the default `INFO:name:msg`
    Python,
    Plain,
}

/// The parts of a log line. The timestamp is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub format: HeaderFormat,
    pub timestamp: Option<String>,
    pub level: Option<String>,
    pub component: Option<String>,
    pub message: String,
}

const LEVELS: &str =
    r"TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|SEVERE|CRITICAL|CRIT|ALERT|EMERG";

struct Res {
    s5424: Regex,
    s3164: Regex,
    py_dash: Regex,
    py_basic: Regex,
    log4j: Regex,
    logback: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| {
        let ts = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d+)?(?:Z|[+-]\d{2}:?\d{2})?";
        let re = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("bad header pattern: {e}"));
        Res {
            s5424: re(r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) ?(.*)$"),
            s3164: re(
                r"^(?:<(\d{1,3})>)?([A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}) (\S+) ([^:\[\s]+)(?:\[(\d+)\])?: ?(.*)$",
            ),
            py_dash: re(&format!(
                r"^({ts}) - (\S+) - ({LEVELS}) - (.*)$"
            )),
            py_basic: re(&format!(r"^({LEVELS}):([^:\s]+):(.*)$")),
            log4j: re(&format!(
                r"^({ts})\s+\[?({LEVELS})\]?\s+(?:\[([^\]]*)\]\s+)?(?:([\w.$\-]+)\s*(?:-|:)\s)?(.*)$"
            )),
            logback: re(&format!(
                r"^(\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d+)?)\s+\[([^\]]*)\]\s+({LEVELS})\s+([\w.$\-]+)\s+-\s(.*)$"
            )),
        }
    })
}

fn syslog_severity(pri: &str) -> Option<String> {
    let p: u32 = pri.parse().ok()?;
    let names = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    names.get((p % 8) as usize).map(|s| s.to_string())
}

fn nil(s: &str) -> Option<String> {
    (s != "-" && !s.is_empty()).then(|| s.to_string())
}

fn json_str(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    let obj = v.as_object()?;
    for k in keys {
        // dotted keys (`log.level`) may also be nested objects
        let found = obj.get(*k).or_else(|| {
            let mut cur = v;
            for part in k.split('.') {
                cur = cur.get(part)?;
            }
            Some(cur)
        });
        match found {
            Some(serde_json::Value::String(s)) => return Some(s.clone()),
            Some(serde_json::Value::Number(n)) => return Some(n.to_string()),
            _ => {}
        }
    }
    None
}

/// Parse the header of one log line (formats tried: JSON, RFC 5424, RFC 3164, Python, log4j,
/// logback; the first that matches wins).
pub fn parse_header(line: &str) -> Header {
    let line = line.trim_end_matches(['\r', '\n']);
    let t = line.trim_start();
    if t.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
            if v.is_object() {
                return Header {
                    format: HeaderFormat::Json,
                    timestamp: json_str(
                        &v,
                        &["timestamp", "@timestamp", "time", "ts", "asctime", "date"],
                    ),
                    level: json_str(&v, &["level", "levelname", "severity", "lvl", "log.level"]),
                    component: json_str(
                        &v,
                        &[
                            "logger",
                            "logger_name",
                            "name",
                            "component",
                            "module",
                            "service",
                            "source",
                        ],
                    ),
                    message: json_str(&v, &["message", "msg", "@message", "event", "text"])
                        .unwrap_or_else(|| t.to_string()),
                };
            }
        }
    }
    let r = res();
    let g = |c: &regex::Captures, i: usize| c.get(i).map(|m| m.as_str().to_string());
    if let Some(c) = r.s5424.captures(line) {
        return Header {
            format: HeaderFormat::Syslog5424,
            timestamp: c.get(2).and_then(|m| nil(m.as_str())),
            level: c.get(1).and_then(|m| syslog_severity(m.as_str())),
            component: c.get(4).and_then(|m| nil(m.as_str())),
            message: g(&c, 8).unwrap_or_default(),
        };
    }
    if let Some(c) = r.s3164.captures(line) {
        return Header {
            format: HeaderFormat::Syslog,
            timestamp: g(&c, 2),
            level: c.get(1).and_then(|m| syslog_severity(m.as_str())),
            component: g(&c, 4),
            message: g(&c, 6).unwrap_or_default(),
        };
    }
    if let Some(c) = r.py_dash.captures(line) {
        return Header {
            format: HeaderFormat::Python,
            timestamp: g(&c, 1),
            level: g(&c, 3),
            component: g(&c, 2),
            message: g(&c, 4).unwrap_or_default(),
        };
    }
    if let Some(c) = r.py_basic.captures(line) {
        return Header {
            format: HeaderFormat::Python,
            timestamp: None,
            level: g(&c, 1),
            component: g(&c, 2),
            message: g(&c, 3).unwrap_or_default(),
        };
    }
    if let Some(c) = r.log4j.captures(line) {
        return Header {
            format: HeaderFormat::Log4j,
            timestamp: g(&c, 1),
            level: g(&c, 2),
            component: g(&c, 4),
            message: g(&c, 5).unwrap_or_default(),
        };
    }
    if let Some(c) = r.logback.captures(line) {
        return Header {
            format: HeaderFormat::Log4j,
            timestamp: g(&c, 1),
            level: g(&c, 3),
            component: g(&c, 4),
            message: g(&c, 5).unwrap_or_default(),
        };
    }
    Header {
        format: HeaderFormat::Plain,
        timestamp: None,
        level: None,
        component: None,
        message: line.to_string(),
    }
}
