//! Stateless log functions: `log_template`, `log_header` and `classify_log` over the shipped
//! default rules or a custom ruleset of `tidewatch.log_rules`. Template mining with state
//! (`log_parse`, `mine_logs`) and log monitors are still to come. The algorithms are
//! `crates/tidewatch-logs`.

use crate::errors;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::sync::OnceLock;
use tidewatch_logs::{Category, RuleSet, Severity};

fn default_rules() -> &'static RuleSet {
    static RULES: OnceLock<Option<RuleSet>> = OnceLock::new();
    RULES
        .get_or_init(|| RuleSet::default_rules().ok())
        .as_ref()
        .unwrap_or_else(|| {
            errors::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "the default log rules do not compile".into(),
                None,
                None,
            )
        })
}

/// The message with its variable parts (numbers, ids, addresses, paths, times, sizes, quoted
/// strings, key=value values) replaced by `<*>`.
#[pg_extern(immutable, parallel_safe, strict)]
fn log_template(message: &str) -> String {
    tidewatch_logs::template_of(message)
}

/// Header fields of a log line in syslog, log4j/logback, Python logging or JSON-lines form.
#[pg_extern(immutable, parallel_safe, strict)]
fn log_header(
    line: &str,
) -> TableIterator<
    'static,
    (
        name!(format, String),
        name!(ts, Option<String>),
        name!(level, Option<String>),
        name!(component, Option<String>),
        name!(message, String),
    ),
> {
    let h = tidewatch_logs::parse_header(line);
    let format = format!("{:?}", h.format).to_lowercase();
    TableIterator::once((format, h.timestamp, h.level, h.component, h.message))
}

/// Error class of a log message by the first matching rule of the ruleset.
#[pg_extern(stable, parallel_safe, strict)]
fn classify_log(
    message: &str,
    ruleset: default!(&str, "'default'"),
) -> TableIterator<
    'static,
    (
        name!(category, String),
        name!(severity, String),
        name!(rule_id, Option<i32>),
        name!(confidence, f64),
    ),
> {
    if ruleset != "default" {
        let (rules, priorities) = custom_rules(ruleset);
        let c = rules.classify(message);
        let rule_id = c
            .rule_id
            .as_deref()
            .and_then(|id| rules.rules().iter().position(|r| r.id == id))
            .and_then(|p| priorities.get(p).copied());
        return TableIterator::once((
            c.category.as_str().to_string(),
            c.severity.as_str().to_string(),
            rule_id,
            c.confidence,
        ));
    }
    let rules = default_rules();
    let c = rules.classify(message);
    let position = c
        .rule_id
        .as_deref()
        .and_then(|id| rules.rules().iter().position(|r| r.id == id))
        .and_then(|p| i32::try_from(p + 1).ok());
    TableIterator::once((
        c.category.as_str().to_string(),
        c.severity.as_str().to_string(),
        position,
        c.confidence,
    ))
}

fn category(name: &str) -> Category {
    Category::from_name(name).unwrap_or_else(|| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown log category \"{name}\""),
            None,
            Some(format!(
                "valid categories: {}",
                Category::ALL.map(|c| c.as_str()).join(", ")
            )),
        )
    })
}

fn severity(name: &str) -> Severity {
    Severity::from_name(name).unwrap_or_else(|| {
        errors::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown log severity \"{name}\""),
            None,
            Some("valid severities: info, warning, error, critical".into()),
        )
    })
}

fn rule_set(rows: &[(i32, String, String, String)]) -> RuleSet {
    let mut set = RuleSet::new();
    for (priority, pattern, cat, sev) in rows {
        set.push(&priority.to_string(), pattern, category(cat), severity(sev), 0.9)
            .unwrap_or_else(|e| {
                errors::raise(
                    PgSqlErrorCode::ERRCODE_INVALID_REGULAR_EXPRESSION,
                    format!("invalid log rule pattern: {e}"),
                    Some(format!("pattern: {pattern}")),
                    Some("Rules use Rust regex syntax (linear time; no look-around or backreferences), compiled size at most 1 MiB.".into()),
                )
            });
    }
    set
}

/// Check one row of tidewatch.log_rules (its CHECK constraint): the pattern compiles, the
/// category and severity exist. Raises with the reason; returns true otherwise.
#[pg_extern(immutable, parallel_safe, strict)]
fn _log_rule_check(pattern: &str, category: &str, severity: &str) -> bool {
    rule_set(&[(
        0,
        pattern.to_string(),
        category.to_string(),
        severity.to_string(),
    )]);
    true
}

thread_local! {
    /// Compiled custom rulesets of this backend, with the rule rows they were built from.
    static CUSTOM: std::cell::RefCell<std::collections::HashMap<String, (Vec<(i32, String, String, String)>, std::rc::Rc<RuleSet>)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The rules of a ruleset from tidewatch.log_rules (in priority order), compiled once per backend
/// and recompiled when the rows change.
fn custom_rules(ruleset: &str) -> (std::rc::Rc<RuleSet>, Vec<i32>) {
    let rows: Vec<(i32, String, String, String)> = Spi::connect(|client| {
        let mut out = Vec::new();
        if let Ok(tup) = client.select(
            "SELECT priority, pattern, category, severity FROM tidewatch.log_rules WHERE ruleset = $1 ORDER BY priority",
            None,
            &[ruleset.into()],
        ) {
            for row in tup {
                if let (Ok(Some(p)), Ok(Some(pat)), Ok(Some(c)), Ok(Some(s))) = (
                    row.get::<i32>(1),
                    row.get::<String>(2),
                    row.get::<String>(3),
                    row.get::<String>(4),
                ) {
                    out.push((p, pat, c, s));
                }
            }
        }
        out
    });
    if rows.is_empty() {
        errors::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("log ruleset \"{ruleset}\" does not exist"),
            None,
            Some("Use 'default', or add rules with INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category, severity).".into()),
        );
    }
    let priorities = rows.iter().map(|r| r.0).collect();
    let set = CUSTOM.with(|c| {
        let mut cache = c.borrow_mut();
        match cache.get(ruleset) {
            Some((cached, set)) if *cached == rows => set.clone(),
            _ => {
                let set = std::rc::Rc::new(rule_set(&rows));
                cache.insert(ruleset.to_string(), (rows, set.clone()));
                set
            }
        }
    });
    (set, priorities)
}

extension_sql!(
    r#"
CREATE TABLE tidewatch.log_rules (
    ruleset     text    NOT NULL CHECK (ruleset <> 'default'),
    priority    integer NOT NULL,
    pattern     text    NOT NULL,
    category    text    NOT NULL,
    severity    text    NOT NULL DEFAULT 'error',
    description text,
    PRIMARY KEY (ruleset, priority),
    CHECK (tidewatch._log_rule_check(pattern, category, severity))
);
COMMENT ON TABLE tidewatch.log_rules IS 'Custom log classification rulesets: ordered (by priority) case-insensitive Rust regexes with a category and severity; the first match wins. Invalid patterns are rejected on insert. The built-in ruleset is ''default''.';
GRANT SELECT, INSERT, UPDATE, DELETE ON tidewatch.log_rules TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_rules', '');
"#,
    name = "log_rules",
    requires = [_log_rule_check]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn template_masks_variables() {
        let t = Spi::get_one::<String>(
            "SELECT tidewatch.log_template('Connection to 10.0.0.12:5432 timed out after 30s (attempt 3)')",
        )
        .unwrap()
        .unwrap();
        assert!(
            !t.contains("10.0.0.12")
                && !t.contains("30s")
                && t.contains("<*>")
                && t.contains("timed out"),
            "{t}"
        );
        let same = Spi::get_one::<bool>(
            "SELECT tidewatch.log_template('Connection to 10.0.0.12:5432 timed out after 30s (attempt 3)')
                  = tidewatch.log_template('Connection to 192.168.1.7:6543 timed out after 12s (attempt 1)')",
        )
        .unwrap();
        assert_eq!(same, Some(true));
        assert_eq!(
            Spi::get_one::<String>("SELECT tidewatch.log_template(NULL)").unwrap(),
            None
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT tidewatch.log_template('')")
                .unwrap()
                .as_deref(),
            Some("")
        );
    }

    #[pg_test]
    fn classification_of_etl_errors() {
        for (line, want) in [
            (
                "ERROR: duplicate key value violates unique constraint \"orders_pkey\"",
                "data_quality",
            ),
            (
                "could not connect to server: Connection refused",
                "connection",
            ),
            ("ERROR: deadlock detected", "lock"),
            (
                "password authentication failed for user \"etl\"",
                "authentication",
            ),
            (
                "ERROR: relation \"staging.orders\" does not exist",
                "schema",
            ),
            ("job finished in 12.3 s, 1043 rows loaded", "unknown"),
        ] {
            let got = Spi::get_one_with_args::<String>(
                "SELECT category FROM tidewatch.classify_log($1)",
                &[line.into()],
            )
            .unwrap();
            assert_eq!(got.as_deref(), Some(want), "{line}");
        }
        let unknown = Spi::get_two::<i32, f64>(
            "SELECT rule_id, confidence FROM tidewatch.classify_log('all good')",
        )
        .unwrap();
        assert_eq!(unknown, (None, Some(0.0)));
    }

    #[pg_test]
    fn header_and_bad_input() {
        let h = Spi::get_three::<String, String, String>(
            "SELECT level, component, message FROM tidewatch.log_header('2024-01-01 12:00:00,123 ERROR [main] com.acme.Loader - load failed')",
        )
        .unwrap();
        assert_eq!(h.0.as_deref(), Some("ERROR"));
        assert_eq!(h.2.as_deref(), Some("load failed"));
        // A 1 MB line of control characters and variables neither crashes nor errors.
        let n = Spi::get_one::<i32>(
            "SELECT length(tidewatch.log_template(repeat(E'\\x01 0x1F 42 ', 100000)))",
        )
        .unwrap();
        assert!(n.unwrap_or(-1) >= 0);
    }

    #[pg_test(error = "log ruleset \"mine\" does not exist")]
    fn unknown_ruleset_is_an_error() {
        Spi::run("SELECT * FROM tidewatch.classify_log('x', 'mine')").unwrap();
    }

    #[pg_test]
    fn custom_ruleset_first_match_wins_and_recompiles_on_change() {
        Spi::run(
            "INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category, severity) VALUES
                 ('etl', 10, 'snowflake.*warehouse .* suspended', 'resource', 'critical'),
                 ('etl', 20, 'warehouse', 'configuration', 'warning')",
        )
        .unwrap();
        let got = Spi::get_two::<String, i32>(
            "SELECT category, rule_id FROM tidewatch.classify_log('Snowflake: warehouse ETL_WH is suspended', 'etl')",
        )
        .unwrap();
        assert_eq!(got, (Some("resource".into()), Some(10)));
        Spi::run("DELETE FROM tidewatch.log_rules WHERE priority = 10").unwrap();
        let got = Spi::get_two::<String, i32>(
            "SELECT category, rule_id FROM tidewatch.classify_log('Snowflake: warehouse ETL_WH is suspended', 'etl')",
        )
        .unwrap();
        assert_eq!(got, (Some("configuration".into()), Some(20)));
        let unknown = Spi::get_one::<String>(
            "SELECT category FROM tidewatch.classify_log('all good', 'etl')",
        )
        .unwrap();
        assert_eq!(unknown.as_deref(), Some("unknown"));
    }

    #[pg_test(
        error = "invalid log rule pattern: invalid rule \"0\": regex parse error:\n    (unclosed\n    ^\nerror: unclosed group"
    )]
    fn invalid_pattern_is_rejected() {
        Spi::run("INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category) VALUES ('x', 1, '(unclosed', 'timeout')")
            .unwrap();
    }

    #[pg_test(error = "unknown log category \"network\"")]
    fn unknown_category_is_rejected() {
        Spi::run("INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category) VALUES ('x', 1, 'a', 'network')")
            .unwrap();
    }
}
