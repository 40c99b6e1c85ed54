//! Log functions without a miner: `log_template`, `log_header`, and `classify_log` over the
//! shipped default rules or a custom ruleset of `tidewatch.log_rules`, with the learned fallback
//! classifier of `train_log_classifier`. Template mining with state is `log_miner.rs`, log
//! monitors `log_monitor.rs`. The algorithms are `crates/tidewatch-logs`.

use crate::errors;
use pgrx::prelude::*;
use pgrx::{PgMemoryContexts, PgSqlErrorCode};
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

/// `classify_log(message, ruleset)`: the error class of a log message by the first matching rule
/// of the ruleset; lines no rule matches go to the learned classifier of the same name, if one
/// was trained. It is called once per row over whole log tables, so it is a plain version-1 C
/// function returning one composite (OUT parameters, declared below): a `#[pg_extern]` set-
/// returning wrapper cost about 5 µs a row (SRF protocol, per-call memory context, a tuplestore
/// per LATERAL call), over ten times the classification itself.
///
/// # Safety
/// Only for fmgr, as declared below: STRICT, (text, text), OUT (text, text, integer, float8).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tidewatch_classify_log(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: fmgr passes a valid fcinfo with two non-NULL text arguments (STRICT).
    let (message, ruleset, tupdesc) = unsafe {
        let args = (*fcinfo).args.as_slice(2);
        (
            text_arg(args[0].value),
            text_arg(args[1].value),
            result_tupdesc(fcinfo),
        )
    };
    let c = classify_with(&compiled(ruleset), message);
    let mut values = [
        c.category
            .as_ref()
            .into_datum()
            .unwrap_or(pg_sys::Datum::from(0)),
        c.severity.into_datum().unwrap_or(pg_sys::Datum::from(0)),
        c.rule_id
            .unwrap_or(0)
            .into_datum()
            .unwrap_or(pg_sys::Datum::from(0)),
        c.confidence.into_datum().unwrap_or(pg_sys::Datum::from(0)),
    ];
    let mut nulls = [false, false, c.rule_id.is_none(), false];
    // SAFETY: tupdesc is the blessed descriptor of the 4 OUT parameters, matching values/nulls.
    unsafe {
        let tuple = pg_sys::heap_form_tuple(tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
    }
}

/// A non-NULL `text` argument as `&str`, detoasted in the current memory context.
///
/// # Safety
/// `d` must be a non-NULL text datum of the current call.
unsafe fn text_arg<'a>(d: pg_sys::Datum) -> &'a str {
    // SAFETY: the caller's contract; text is valid in the server encoding (UTF-8 checked by pgrx).
    unsafe { <&str>::from_datum(d, false) }.unwrap_or_default()
}

/// The blessed descriptor of the function's composite result, built once per call site and kept
/// in `fn_extra` (in `fn_mcxt`, which lives as long as the call site).
///
/// # Safety
/// `fcinfo` must be fmgr's, for a function declared with OUT parameters or a composite result.
unsafe fn result_tupdesc(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::TupleDesc {
    // SAFETY: fmgr's flinfo; fn_extra is ours and holds only this descriptor.
    unsafe {
        let fl = (*fcinfo).flinfo;
        if (*fl).fn_extra.is_null() {
            let td = PgMemoryContexts::For((*fl).fn_mcxt).switch_to(|_| {
                let mut td: pg_sys::TupleDesc = std::ptr::null_mut();
                let class = pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut td);
                if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || td.is_null() {
                    errors::raise(
                        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                        "function returning a record called in a context that cannot accept it"
                            .into(),
                        None,
                        None,
                    );
                }
                pg_sys::BlessTupleDesc(td)
            });
            (*fl).fn_extra = td.cast();
        }
        (*fl).fn_extra.cast()
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_tidewatch_classify_log() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

extension_sql!(
    r#"
CREATE FUNCTION tidewatch.classify_log(message text, ruleset text DEFAULT 'default',
    OUT category text, OUT severity text, OUT rule_id integer, OUT confidence float8)
    RETURNS record AS 'MODULE_PATHNAME', 'tidewatch_classify_log'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
"#,
    name = "classify_log_c"
);

/// One classified line, as classify_log returns it.
pub struct Class {
    /// A rule's category (static), or the label of the learned classifier.
    pub category: std::borrow::Cow<'static, str>,
    pub severity: &'static str,
    pub rule_id: Option<i32>,
    pub confidence: f64,
}

/// Classify with a compiled ruleset: its first matching rule, else its learned fallback.
pub fn classify_with(set: &Compiled, message: &str) -> Class {
    let rules = set.rules();
    let c = rules.classify(message);
    if c.category == Category::Unknown {
        if let Some((label, p)) = set.fallback.as_ref().and_then(|nb| nb.predict(message)) {
            return Class {
                category: label.into(),
                severity: Severity::Error.as_str(),
                rule_id: None,
                confidence: p,
            };
        }
    }
    // rule_id: the priority of a custom rule, the position of a default one.
    let rule_id = c
        .rule_id
        .as_deref()
        .and_then(|id| rules.rules().iter().position(|r| r.id == id))
        .and_then(|p| match &set.priorities {
            Some(pr) => pr.get(p).copied(),
            None => i32::try_from(p + 1).ok(),
        });
    Class {
        category: c.category.as_str().into(),
        severity: c.severity.as_str(),
        rule_id,
        confidence: c.confidence,
    }
}

/// A ruleset ready to classify: the rules (the shipped defaults, or the rows of a custom
/// ruleset with their priorities) and the learned fallback classifier of the same name.
pub struct Compiled {
    custom: Option<(Vec<(i32, String, String, String)>, RuleSet)>,
    priorities: Option<Vec<i32>>,
    fallback: Option<tidewatch_logs::NaiveBayes>,
    fallback_key: Option<String>,
}

impl Compiled {
    fn rules(&self) -> &RuleSet {
        match &self.custom {
            Some((_, r)) => r,
            None => default_rules(),
        }
    }
}

thread_local! {
    /// Compiled rulesets of this backend, each with the statement it was last checked in and
    /// whether a log monitor's trigger checked it as the extension's owner (definer.rs): a
    /// caller's own use checks again (a learned classifier may be hidden from it).
    static COMPILED: std::cell::RefCell<std::collections::HashMap<String, (StatementKey, bool, std::rc::Rc<Compiled>)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Identifies the statement being run: the rules and classifiers are read once per statement
/// (and again after a write or an abort in the same transaction), not once per line.
#[derive(Default, Clone, Copy, PartialEq, Debug)]
pub struct StatementKey {
    lxid: u32,
    cid: u32,
    start: i64,
    aborts: u64,
}

impl StatementKey {
    pub fn current() -> Self {
        // SAFETY: plain reads of the backend's transaction state.
        unsafe {
            StatementKey {
                lxid: pg_sys::MyProc.as_ref().map_or(0, |p| p.lxid),
                cid: pg_sys::GetCurrentCommandId(false),
                start: pg_sys::GetCurrentStatementStartTimestamp(),
                aborts: crate::log_miner::aborts(),
            }
        }
    }

    /// The same top-level statement with no abort in between, whatever the command counter
    /// did (an AFTER trigger runs after its statement's writes bumped it).
    pub fn same_statement(&self, other: &StatementKey) -> bool {
        self.lxid == other.lxid && self.start == other.start && self.aborts == other.aborts
    }
}

/// The compiled ruleset `name`, checked against tidewatch.log_rules and
/// tidewatch.log_classifiers once per statement, recompiled only when its rows changed.
pub fn compiled(name: &str) -> std::rc::Rc<Compiled> {
    compiled_at(name, StatementKey::current(), false)
}

/// [`compiled`] for a caller that already holds the statement's key (a row trigger), read as
/// the extension's owner when `by_owner` (a log monitor's trigger, whose inserting role may not
/// see the monitor's classifier).
pub fn compiled_at(name: &str, key: StatementKey, by_owner: bool) -> std::rc::Rc<Compiled> {
    let cached = COMPILED.with(|c| {
        c.borrow()
            .get(name)
            .filter(|(k, o, _)| *k == key && *o == by_owner)
            .map(|(_, _, set)| set.clone())
    });
    if let Some(set) = cached {
        return set;
    }
    let load = || load_ruleset(name);
    let (rows, model) = if by_owner {
        crate::definer::as_owner(load)
    } else {
        load()
    };
    compile(name, key, by_owner, rows, model)
}

/// A ruleset's rules (priority, pattern, category, severity) and its learned classifier (the
/// key that identifies its training, and the model), as the running role sees them.
fn load_ruleset(
    name: &str,
) -> (
    Vec<(i32, String, String, String)>,
    Option<(String, pgrx::JsonB)>,
) {
    Spi::connect(|client| {
        let mut rows = Vec::new();
        if name != "default" {
            if let Ok(tup) = client.select(
                "SELECT priority, pattern, category, severity FROM tidewatch.log_rules WHERE ruleset = $1 ORDER BY priority",
                None,
                &[name.into()],
            ) {
                for row in tup {
                    if let (Ok(Some(p)), Ok(Some(pat)), Ok(Some(c)), Ok(Some(s))) = (
                        row.get::<i32>(1),
                        row.get::<String>(2),
                        row.get::<String>(3),
                        row.get::<String>(4),
                    ) {
                        rows.push((p, pat, c, s));
                    }
                }
            }
        }
        let model = client
            .select(
                "SELECT pg_catalog.concat(trained_at, '/', n), model::text FROM tidewatch.log_classifiers WHERE name = $1",
                None,
                &[name.into()],
            )
            .ok()
            .and_then(|t| t.into_iter().next())
            .and_then(|r| Some((r.get::<String>(1).ok()??, r.get::<String>(2).ok()??)))
            // Parsed here, not by pgrx's JsonB (which panics on jsonb serde_json refuses).
            .map(|(key, m)| {
                let m = serde_json::from_str::<serde_json::Value>(&m).unwrap_or_else(|e| {
                    errors::raise(
                        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                        format!("the learned classifier of log ruleset \"{name}\" cannot be read: {e}"),
                        None,
                        Some("Train it again with tidewatch.train_log_classifier().".into()),
                    )
                });
                (key, pgrx::JsonB(m))
            });
        (rows, model)
    })
}

/// Compile what [`load_ruleset`] read, reusing the backend's copy when its rows did not change.
fn compile(
    name: &str,
    key: StatementKey,
    by_owner: bool,
    rows: Vec<(i32, String, String, String)>,
    model: Option<(String, pgrx::JsonB)>,
) -> std::rc::Rc<Compiled> {
    if name != "default" && rows.is_empty() {
        errors::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("log ruleset \"{name}\" does not exist"),
            None,
            Some("Use 'default', or add rules with INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category, severity).".into()),
        );
    }
    let old = COMPILED.with(|c| c.borrow().get(name).map(|(_, _, set)| set.clone()));
    let model_key = model.as_ref().map(|m| m.0.clone());
    let same_rules = old
        .as_ref()
        .is_some_and(|o| o.custom.as_ref().map(|c| &c.0) == (name != "default").then_some(&rows));
    let same_model = old.as_ref().is_some_and(|o| o.fallback_key == model_key);
    let set = match old {
        Some(o) if same_rules && same_model => o,
        o => {
            let custom = if name == "default" {
                None
            } else if let Some(prev) = o
                .as_ref()
                .filter(|_| same_rules)
                .and_then(|p| p.custom.as_ref())
            {
                Some((prev.0.clone(), prev.1.clone()))
            } else {
                Some((rows.clone(), rule_set(&rows)))
            };
            let fallback = model
                .and_then(|(_, m)| serde_json::from_value::<tidewatch_logs::NaiveBayes>(m.0).ok());
            std::rc::Rc::new(Compiled {
                priorities: custom.as_ref().map(|c| c.0.iter().map(|r| r.0).collect()),
                custom,
                fallback,
                fallback_key: model_key,
            })
        }
    };
    COMPILED.with(|c| {
        c.borrow_mut()
            .insert(name.to_string(), (key, by_owner, set.clone()))
    });
    set
}

/// Train the learned fallback classifier `name` from the (message, label) rows of `relation`
/// where both are not NULL; returns the number of examples. The caller checks the columns' types.
#[pg_extern(volatile)]
fn _train_log_classifier(
    name: &str,
    relation: pgrx::PgRelation,
    message_column: &str,
    label_column: &str,
) -> i64 {
    let (msg, label) = (
        pgrx::spi::quote_identifier(message_column),
        pgrx::spi::quote_identifier(label_column),
    );
    let query = format!(
        "SELECT {msg}::text, {label}::text FROM {} WHERE {msg} IS NOT NULL AND {label} IS NOT NULL",
        pgrx::spi::quote_qualified_identifier(relation.namespace(), relation.name())
    );
    let relation = relation.oid();
    let (nb, n, labels) = Spi::connect(|client| {
        let mut nb = tidewatch_logs::NaiveBayes::new(1.0);
        let mut n: i64 = 0;
        let mut labels: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        let mut cursor = client.open_cursor(&query, &[]);
        loop {
            let batch = cursor.fetch(10_000).unwrap_or_else(|e| {
                errors::raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    e.to_string(),
                    None,
                    None,
                )
            });
            if batch.is_empty() {
                break;
            }
            for row in batch {
                if let (Ok(Some(m)), Ok(Some(l))) = (row.get::<&str>(1), row.get::<&str>(2)) {
                    nb.observe(m, l);
                    n += 1;
                    *labels.entry(l.to_string()).or_default() += 1;
                }
            }
        }
        (nb, n, labels)
    });
    if n == 0 {
        errors::raise(
            PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            "no labelled rows to train the log classifier on".into(),
            None,
            Some("The message and label columns must both be non-NULL in some rows.".into()),
        );
    }
    let model = serde_json::to_value(&nb).unwrap_or(serde_json::Value::Null);
    let labels = serde_json::to_value(&labels).unwrap_or(serde_json::Value::Null);
    Spi::connect_mut(|client| {
        client
            .update(
                "INSERT INTO tidewatch.log_classifiers (name, relation, n, labels, model, trained_at)
                 VALUES ($1, $2::regclass, $3, $4, $5, clock_timestamp())
                 ON CONFLICT (name) DO UPDATE SET relation = excluded.relation, n = excluded.n,
                     labels = excluded.labels, model = excluded.model, trained_at = excluded.trained_at,
                     owner = current_user::regrole",
                None,
                &[
                    name.into(),
                    relation.into(),
                    n.into(),
                    pgrx::JsonB(labels).into(),
                    pgrx::JsonB(model).into(),
                ],
            )
            .map(|_| ())
            .unwrap_or_else(|e| errors::raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string(), None, None))
    });
    n
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

extension_sql!(
    r#"
CREATE TABLE tidewatch.log_rules (
    ruleset     text    NOT NULL CHECK (ruleset <> 'default'),
    priority    integer NOT NULL,
    pattern     text    NOT NULL,
    category    text    NOT NULL,
    severity    text    NOT NULL DEFAULT 'error',
    description text,
    owner       regrole NOT NULL DEFAULT current_user::regrole,
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
