//! Delivery routes: label matchers as Grafana writes them (`=`, `!=`, `=~`, `!~`; regular
//! expressions anchored at both ends, as in Alertmanager) mapped to channels.

use regex::Regex;

use crate::config::RouteConfig;

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
}

#[derive(Debug, Clone, Default)]
pub struct Routes(pub Vec<Route>);

pub const KINDS: &[&str] = &["webhook"];

impl Routes {
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
            if !KINDS.contains(&c.kind.as_str()) {
                return Err(format!(
                    "route \"{}\": unknown kind \"{}\" (supported: {})",
                    c.name,
                    c.kind,
                    KINDS.join(", ")
                ));
            }
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                return Err(format!(
                    "route \"{}\": url must start with http:// or https://",
                    c.name
                ));
            }
            if c.max_attempts == 0 || c.max_attempts > 100 {
                return Err(format!(
                    "route \"{}\": max_attempts must be in 1..100",
                    c.name
                ));
            }
            let matchers = c
                .matchers
                .iter()
                .map(|m| Matcher::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("route \"{}\": {e}", c.name))?;
            out.push(Route {
                config: c.clone(),
                matchers,
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
}
