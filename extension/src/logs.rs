//! Stateless log functions: `log_template`, `log_header` and `classify_log` over the shipped
//! default rules. Template mining with state (`log_parse`, `mine_logs`), rule tables and log
//! monitors are still to come. The algorithms are `crates/tidewatch-logs`.

use crate::errors;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::sync::OnceLock;
use tidewatch_logs::RuleSet;

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
        errors::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("log ruleset \"{ruleset}\" does not exist"),
            None,
            Some("Only the built-in ruleset 'default' exists so far.".into()),
        );
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
        format!("{:?}", c.severity).to_lowercase(),
        position,
        c.confidence,
    ))
}

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
}
