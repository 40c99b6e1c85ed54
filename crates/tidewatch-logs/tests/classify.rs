use tidewatch_logs::{classify, Category, NaiveBayes, RuleSet, Severity};

fn cat(m: &str) -> &'static str {
    classify(m).category.as_str()
}

#[test]
fn connection() {
    for m in [
        "could not connect to server: Connection refused",
        "java.net.ConnectException: Connection reset by peer",
        "psycopg2.OperationalError: could not translate host name \"db\" to address",
        "No route to host",
    ] {
        assert_eq!(cat(m), "connection", "{m}");
    }
}

#[test]
fn timeout() {
    for m in [
        "canceling statement due to statement timeout",
        "Read timed out after 30s",
        "context deadline exceeded",
    ] {
        assert_eq!(cat(m), "timeout", "{m}");
    }
}

#[test]
fn authentication() {
    for m in [
        "FATAL: password authentication failed for user \"etl\"",
        "permission denied for table orders",
        "HTTP 401 Unauthorized",
        "AccessDenied: Access Denied when reading s3://bucket/key",
    ] {
        assert_eq!(cat(m), "authentication", "{m}");
    }
}

#[test]
fn resource() {
    for m in [
        "java.lang.OutOfMemoryError: Java heap space",
        "could not write to file: No space left on device",
        "Disk quota exceeded",
        "Too many open files",
    ] {
        assert_eq!(cat(m), "resource", "{m}");
    }
    assert_eq!(classify("out of memory").severity, Severity::Critical);
}

#[test]
fn data_quality() {
    for m in [
        "null value in column \"id\" violates not-null constraint",
        "duplicate key value violates unique constraint \"users_pkey\"",
        "invalid input syntax for type integer: \"abc\"",
        "java.lang.NumberFormatException: For input string: \"x\"",
        "insert or update on table \"a\" violates foreign key constraint \"fk\"",
    ] {
        assert_eq!(cat(m), "data_quality", "{m}");
    }
}

#[test]
fn schema() {
    for m in [
        "relation \"public.orders\" does not exist",
        "column \"amount\" does not exist",
        "sqlite3.OperationalError: no such table: users",
        "Unknown column 'x' in 'field list'",
    ] {
        assert_eq!(cat(m), "schema", "{m}");
    }
}

#[test]
fn upstream() {
    for m in [
        "upstream API returned 503 Service Unavailable",
        "502 Bad Gateway",
        "429 Too Many Requests: rate limit hit",
    ] {
        assert_eq!(cat(m), "upstream", "{m}");
    }
}

#[test]
fn configuration() {
    for m in [
        "missing environment variable DATABASE_URL",
        "invalid configuration: batch_size must be positive",
        "unknown option --fast",
    ] {
        assert_eq!(cat(m), "configuration", "{m}");
    }
}

#[test]
fn syntax() {
    for m in [
        "ERROR: syntax error at or near \"SELEC\"",
        "SyntaxError: unexpected token '}'",
        "mismatched input 'FROM' expecting",
    ] {
        assert_eq!(cat(m), "syntax", "{m}");
    }
}

#[test]
fn lock() {
    for m in [
        "deadlock detected",
        "Lock wait timeout exceeded; try restarting transaction",
        "could not obtain lock on relation \"t\"",
    ] {
        assert_eq!(cat(m), "lock", "{m}");
    }
}

#[test]
fn unknown_and_fields() {
    let c = classify("all good, 12 rows loaded");
    assert_eq!(c.category, Category::Unknown);
    assert_eq!(c.rule_id, None);
    assert_eq!(c.confidence, 0.0);
    let c = classify("deadlock detected");
    assert_eq!(c.rule_id.as_deref(), Some("lock.deadlock"));
    assert!(c.confidence > 0.9);
}

#[test]
fn custom_rules_and_bad_regex() {
    let mut rs = RuleSet::new();
    rs.push(
        "my.rule",
        r"widget \d+ exploded",
        Category::Resource,
        Severity::Warning,
        0.7,
    )
    .expect("valid");
    let c = rs.classify("WIDGET 7 EXPLODED");
    assert_eq!(c.category, Category::Resource);
    assert_eq!(c.rule_id.as_deref(), Some("my.rule"));
    assert!(rs
        .push("bad", r"(unclosed", Category::Lock, Severity::Error, 0.5)
        .is_err());
}

#[test]
fn naive_bayes_toy() {
    let train = [
        ("payment gateway replied with status 42", "upstream"),
        ("payment gateway replied slowly", "upstream"),
        ("gateway replied garbage to request 7", "upstream"),
        ("row 12 has an empty customer field", "data_quality"),
        ("row 99 has an empty amount field", "data_quality"),
        ("empty field in row 3", "data_quality"),
    ];
    let nb = NaiveBayes::train(train.iter().copied());
    let (l, p) = nb
        .predict("gateway replied with status 500")
        .expect("trained");
    assert_eq!(l, "upstream");
    assert!(p > 0.8, "{p}");
    let (l, p) = nb
        .predict("row 5 has an empty name field")
        .expect("trained");
    assert_eq!(l, "data_quality");
    assert!(p > 0.8, "{p}");
    // no word seen in training: no answer (not the prior's argmax)
    assert!(nb.predict("zzz qqq").is_none());
    assert!(NaiveBayes::new(1.0).predict("x").is_none());
    // fallback used only when no rule fires
    let rs = RuleSet::default_rules().expect("rules");
    let c = rs.classify_with_fallback("payment gateway replied oddly", &nb);
    assert_eq!(c.category, Category::Upstream);
    assert_eq!(c.rule_id, None);
    let c = rs.classify_with_fallback("deadlock detected", &nb);
    assert_eq!(c.rule_id.as_deref(), Some("lock.deadlock"));
    // serializable
    let js = serde_json::to_string(&nb).expect("ser");
    let back: NaiveBayes = serde_json::from_str(&js).expect("de");
    assert_eq!(back, nb);
}

/// A message with no token seen in training gets no label, even when the prior is lopsided
/// (before: the majority label with posterior = prior); one known token is enough.
#[test]
fn naive_bayes_abstains_on_unseen_vocabulary() {
    let train = [
        ("payment gateway replied with status 42", "upstream"),
        ("payment gateway replied slowly", "upstream"),
        ("gateway replied garbage to request 7", "upstream"),
        ("row 12 has an empty customer field", "data_quality"),
    ];
    let nb = NaiveBayes::train(train.iter().copied());
    for m in [
        "handled in 12 ms",
        "",
        "   ",
        "42 17",
        "\u{0}\u{7}",
        "zzz qqq xyzzy",
    ] {
        assert_eq!(nb.predict(m), None, "{m:?}");
    }
    let long = "x".repeat(1 << 20);
    assert_eq!(nb.predict(&long), None);
    let (l, p) = nb
        .predict("unrelated words then gateway")
        .expect("one known token");
    assert_eq!(l, "upstream");
    assert!(p > 0.5 && p < 1.0, "{p}");
    // the rules' fallback reports unknown with confidence 0
    let rs = RuleSet::new();
    let c = rs.classify_with_fallback("handled in 12 ms", &nb);
    assert_eq!(c.category, Category::Unknown);
    assert_eq!(c.confidence, 0.0);
    // a model serialized before this change (same fields) still loads and abstains
    let js = serde_json::to_string(&nb).expect("ser");
    let back: NaiveBayes = serde_json::from_str(&js).expect("de");
    assert_eq!(back.predict("handled in 12 ms"), None);
}
