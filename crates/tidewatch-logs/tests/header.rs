use tidewatch_logs::{parse_header, HeaderFormat};

#[test]
fn log4j() {
    let h = parse_header("2024-01-01 12:00:00,123 INFO [main] com.x.Y - Job started");
    assert_eq!(h.format, HeaderFormat::Log4j);
    assert_eq!(h.timestamp.as_deref(), Some("2024-01-01 12:00:00,123"));
    assert_eq!(h.level.as_deref(), Some("INFO"));
    assert_eq!(h.component.as_deref(), Some("com.x.Y"));
    assert_eq!(h.message, "Job started");
    let h = parse_header("2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster");
    assert_eq!(
        h.component.as_deref(),
        Some("org.apache.hadoop.mapreduce.v2.app.MRAppMaster")
    );
    assert_eq!(h.message, "Created MRAppMaster");
}

#[test]
fn logback() {
    let h = parse_header("12:00:00.123 [http-nio-8080-exec-1] WARN  c.e.Svc - slow request");
    assert_eq!(h.format, HeaderFormat::Log4j);
    assert_eq!(h.timestamp.as_deref(), Some("12:00:00.123"));
    assert_eq!(h.level.as_deref(), Some("WARN"));
    assert_eq!(h.component.as_deref(), Some("c.e.Svc"));
    assert_eq!(h.message, "slow request");
}

#[test]
fn python_logging() {
    let h = parse_header("2024-01-01 12:00:00,123 - etl.loader - ERROR - load failed: x");
    assert_eq!(h.format, HeaderFormat::Python);
    assert_eq!(h.timestamp.as_deref(), Some("2024-01-01 12:00:00,123"));
    assert_eq!(h.level.as_deref(), Some("ERROR"));
    assert_eq!(h.component.as_deref(), Some("etl.loader"));
    assert_eq!(h.message, "load failed: x");
    let h = parse_header("WARNING:root:disk almost full");
    assert_eq!(h.format, HeaderFormat::Python);
    assert_eq!(h.level.as_deref(), Some("WARNING"));
    assert_eq!(h.component.as_deref(), Some("root"));
    assert_eq!(h.message, "disk almost full");
}

#[test]
fn syslog_3164() {
    let h = parse_header("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick");
    assert_eq!(h.format, HeaderFormat::Syslog);
    assert_eq!(h.timestamp.as_deref(), Some("Oct 11 22:14:15"));
    assert_eq!(h.level.as_deref(), Some("crit"));
    assert_eq!(h.component.as_deref(), Some("su"));
    assert_eq!(h.message, "'su root' failed for lonvick");
    let h = parse_header(
        "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
    );
    assert_eq!(h.format, HeaderFormat::Syslog);
    assert_eq!(h.level, None);
    assert_eq!(h.component.as_deref(), Some("sshd"));
    assert_eq!(h.message, "Invalid user webmaster from 173.234.31.186");
}

#[test]
fn syslog_5424() {
    let h = parse_header("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - An application event");
    assert_eq!(h.format, HeaderFormat::Syslog5424);
    assert_eq!(h.timestamp.as_deref(), Some("2003-10-11T22:14:15.003Z"));
    assert_eq!(h.level.as_deref(), Some("notice"));
    assert_eq!(h.component.as_deref(), Some("evntslog"));
    assert_eq!(h.message, "An application event");
}

#[test]
fn json_lines() {
    let h = parse_header(
        r#"{"ts":"2024-01-01T00:00:00Z","level":"error","logger":"etl","msg":"boom 42"}"#,
    );
    assert_eq!(h.format, HeaderFormat::Json);
    assert_eq!(h.timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(h.level.as_deref(), Some("error"));
    assert_eq!(h.component.as_deref(), Some("etl"));
    assert_eq!(h.message, "boom 42");
    let h = parse_header(r#"{"@timestamp":"t","log":{"level":"warn"},"message":"m"}"#);
    assert_eq!(h.level.as_deref(), Some("warn"));
    assert_eq!(h.message, "m");
    // broken JSON is a plain line
    let h = parse_header(r#"{"msg": "#);
    assert_eq!(h.format, HeaderFormat::Plain);
}

#[test]
fn plain_line() {
    let h = parse_header("just a message");
    assert_eq!(h.format, HeaderFormat::Plain);
    assert_eq!(h.message, "just a message");
    assert_eq!(h.level, None);
}
