//! Configuration: command line and environment (clap) over an optional TOML file over defaults.
//!
//! Every setting has one environment variable (`TIDEWATCH_*`), one long option and one TOML key
//! (the option's name with `_`). The environment and the command line win over the file, the file
//! over the defaults. Secrets (tokens, the database URL) are never printed: `--help` hides their
//! values and `check-config` shows them redacted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "tidewatch-service",
    version,
    about = "HTTP service in front of a Tidewatch database: ingest (JSON, InfluxDB line protocol, \
             Prometheus remote write, logs), anomaly and log queries, OpenAPI.",
    after_help = "Settings come from the command line, the environment (TIDEWATCH_*) and an optional \
                  TOML file (--config), in that order of precedence; TOML keys are the option names \
                  with '_' (database_url, listen, write_tokens, ...)."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: CliSettings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve,
    /// Bulk-load a file straight into the database with COPY (not through HTTP).
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Validate the configuration (and, unless --offline, that the database answers); print it
    /// with secrets redacted.
    CheckConfig {
        /// Do not connect to the database.
        #[arg(long)]
        offline: bool,
    },
    /// Ask the assistant a question about anomalies (as GET /v1/ask) and print its answer.
    Ask {
        /// The question, e.g. "how many anomalies yesterday?" (several words are joined).
        #[arg(required = true, num_args = 1..)]
        question: Vec<String>,
        /// Print the whole JSON reply (episodes, reasons, counts), not only the answer's text.
        #[arg(long)]
        json: bool,
        /// Time zone of the question and answer: UTC, UTC+2, UTC-05:30 [default: ask_timezone].
        #[arg(long)]
        tz: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Points from CSV (time,metric,labels,value), JSON lines ({"metric", "labels", "ts",
    /// "value"}) or InfluxDB line protocol, into the metrics table; idempotent like HTTP ingest.
    Metrics {
        /// The file ('-' for standard input).
        file: PathBuf,
        /// Its format (default: from the extension: .csv, .jsonl/.ndjson/.json, .lp/.line/.txt).
        #[arg(long, value_enum)]
        format: Option<MetricsFormat>,
        /// Unit of epoch timestamps: s, ms, us or ns (default: s for CSV and JSON, ns for line
        /// protocol).
        #[arg(long)]
        precision: Option<String>,
    },
    /// Log lines (JSON lines {"ts", "source", "labels", "message"}, or plain text, one message a
    /// line) into the logs table.
    Logs {
        /// The file ('-' for standard input).
        file: PathBuf,
        /// Its format (default: .jsonl/.ndjson/.json are JSON lines, anything else plain text).
        #[arg(long, value_enum)]
        format: Option<LogsFormat>,
        /// Source of plain-text lines (and of JSON lines without one).
        #[arg(long, default_value = "import")]
        source: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricsFormat {
    Csv,
    Jsonl,
    LineProtocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogsFormat {
    Jsonl,
    Text,
}

/// Settings as given on the command line or in the environment: all optional, so that the TOML
/// file and the defaults can fill what is missing.
#[derive(Debug, Default, Args)]
pub struct CliSettings {
    /// TOML file with settings (keys as the long options, with '_').
    #[arg(long, global = true, env = "TIDEWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// libpq connection string or URL of the database (a Unix-socket directory as host works).
    #[arg(
        long,
        global = true,
        env = "TIDEWATCH_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "TIDEWATCH_LISTEN")]
    pub listen: Option<String>,
    /// Comma-separated bearer tokens allowed to write (required to serve).
    #[arg(
        long,
        global = true,
        env = "TIDEWATCH_WRITE_TOKENS",
        hide_env_values = true
    )]
    pub write_tokens: Option<String>,
    /// Comma-separated bearer tokens allowed to read; reads are open when none is set. Write
    /// tokens may read too.
    #[arg(
        long,
        global = true,
        env = "TIDEWATCH_READ_TOKENS",
        hide_env_values = true
    )]
    pub read_tokens: Option<String>,
    /// Metrics table, optionally schema-qualified; created as a hypertable when missing [default: metrics].
    #[arg(long, global = true, env = "TIDEWATCH_METRICS_TABLE")]
    pub metrics_table: Option<String>,
    /// Logs table, optionally schema-qualified; created as a hypertable when missing [default: logs].
    #[arg(long, global = true, env = "TIDEWATCH_LOGS_TABLE")]
    pub logs_table: Option<String>,
    /// Monitor put on the tables the service creates: auto (async when the server is set up for
    /// it, else sync), sync, async or off [default: auto].
    #[arg(long, global = true, env = "TIDEWATCH_MONITOR", value_enum)]
    pub monitor: Option<MonitorMode>,
    /// Largest request body, before and after decompression, in bytes [default: 16777216].
    #[arg(long, global = true, env = "TIDEWATCH_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Time limit of one request, e.g. 30s or 500ms [default: 30s].
    #[arg(long, global = true, env = "TIDEWATCH_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// Requests served at once; more get 503 with Retry-After [default: 256].
    #[arg(long, global = true, env = "TIDEWATCH_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// Database connections in the pool [default: 16].
    #[arg(long, global = true, env = "TIDEWATCH_POOL_SIZE")]
    pub pool_size: Option<usize>,
    /// How long a request waits for a free connection before 503 with Retry-After [default: 2s].
    #[arg(long, global = true, env = "TIDEWATCH_POOL_TIMEOUT")]
    pub pool_timeout: Option<String>,
    /// statement_timeout of the service's sessions [default: 25s].
    #[arg(long, global = true, env = "TIDEWATCH_STATEMENT_TIMEOUT")]
    pub statement_timeout: Option<String>,
    /// How long SIGTERM waits for in-flight requests before exiting [default: 8s].
    #[arg(long, global = true, env = "TIDEWATCH_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<String>,
    /// Log filter (tracing EnvFilter syntax) [default: info].
    #[arg(long, global = true, env = "TIDEWATCH_LOG")]
    pub log: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, global = true, env = "TIDEWATCH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Shared secret of Grafana's webhook HMAC signature; when set, POST /v1/alerts/grafana
    /// accepts requests signed with it (or carrying a write token).
    #[arg(
        long,
        global = true,
        env = "TIDEWATCH_ALERT_HMAC_SECRET",
        hide_env_values = true
    )]
    pub alert_hmac_secret: Option<String>,
    /// Header of the signature's timestamp [default: X-Grafana-Alerting-Timestamp].
    #[arg(long, global = true, env = "TIDEWATCH_ALERT_HMAC_TIMESTAMP_HEADER")]
    pub alert_hmac_timestamp_header: Option<String>,
    /// Delivery routes of alert notifications, a JSON array of {name, kind, matchers,
    /// max_attempts, and the kind's settings} (in the TOML file: [[alert_routes]] tables); kinds:
    /// webhook, telegram, slack, email (see docs/alerts.md).
    #[arg(
        long,
        global = true,
        env = "TIDEWATCH_ALERT_ROUTES",
        hide_env_values = true
    )]
    pub alert_routes: Option<String>,
    /// First retry delay of a failed delivery; doubled each try, with jitter [default: 2s].
    #[arg(long, global = true, env = "TIDEWATCH_ALERT_RETRY_BASE")]
    pub alert_retry_base: Option<String>,
    /// Longest delay between two tries of a delivery [default: 5m].
    #[arg(long, global = true, env = "TIDEWATCH_ALERT_RETRY_MAX")]
    pub alert_retry_max: Option<String>,
    /// Time limit of one delivery attempt [default: 10s].
    #[arg(long, global = true, env = "TIDEWATCH_ALERT_DELIVERY_TIMEOUT")]
    pub alert_delivery_timeout: Option<String>,
    /// Time zone of the assistant's answers (/v1/ask) and of alert messages: UTC, an offset such
    /// as UTC+2, or an IANA name such as Europe/Paris [default: UTC].
    #[arg(long, global = true, env = "TIDEWATCH_ASK_TIMEZONE")]
    pub ask_timezone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorMode {
    Auto,
    Sync,
    Async,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A token list in TOML: an array of strings or one comma-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenList {
    One(String),
    Many(Vec<String>),
}

/// Durations in TOML: "30s" or a number of seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Text(String),
    Seconds(f64),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    listen: Option<String>,
    write_tokens: Option<TokenList>,
    read_tokens: Option<TokenList>,
    metrics_table: Option<String>,
    logs_table: Option<String>,
    monitor: Option<MonitorMode>,
    max_body_bytes: Option<usize>,
    request_timeout: Option<DurationValue>,
    max_concurrency: Option<usize>,
    pool_size: Option<usize>,
    pool_timeout: Option<DurationValue>,
    statement_timeout: Option<DurationValue>,
    shutdown_timeout: Option<DurationValue>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    alert_hmac_secret: Option<String>,
    alert_hmac_timestamp_header: Option<String>,
    alert_routes: Option<Vec<RouteConfig>>,
    alert_retry_base: Option<DurationValue>,
    alert_retry_max: Option<DurationValue>,
    alert_delivery_timeout: Option<DurationValue>,
    ask_timezone: Option<String>,
}

/// One delivery route: where notifications whose labels match go, and through which channel.
/// Which fields a route takes depends on its kind (checked at start by `Routes::compile`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name, part of each delivery's idempotency key.
    pub name: String,
    /// Channel kind: webhook (a JSON POST), telegram (Bot API sendMessage), slack (an incoming
    /// webhook) or email (SMTP).
    pub kind: String,
    /// webhook, slack: the URL to POST to (a Slack webhook URL holds its token: never logged).
    #[serde(default)]
    pub url: Option<Secret>,
    /// Label matchers as Grafana writes them (`severity=critical`, `team!=ops`, `sat=~SAT[12]`,
    /// `env!~dev.*`); all must match. None: every notification.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Tries before a delivery is given up (status dead) [default: 8].
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// webhook: when set, each delivery is signed: X-Tidewatch-Signature = hex HMAC-SHA256(secret,
    /// timestamp ":" body), X-Tidewatch-Timestamp = the timestamp (Unix seconds).
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// telegram: the bot's token (`123456:ABC...`).
    #[serde(default)]
    pub bot_token: Option<Secret>,
    /// telegram: the chat to write to: a numeric id or `@channelname`.
    #[serde(default)]
    pub chat_id: Option<ChatId>,
    /// telegram: the Bot API's base URL [default: https://api.telegram.org].
    #[serde(default)]
    pub base_url: Option<String>,
    /// slack: also send Block Kit blocks (a header and a section) besides the text [default: false].
    #[serde(default)]
    pub blocks: bool,
    /// email: the SMTP server's host name.
    #[serde(default)]
    pub smtp_host: Option<String>,
    /// email: its port [default: 25 with tls none, 587 with starttls, 465 with tls].
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// email: none (plain text, for a local relay), starttls (required) or tls (from the first
    /// byte) [default: starttls].
    #[serde(default)]
    pub smtp_tls: Option<String>,
    /// email: user name for SMTP AUTH (with smtp_password).
    #[serde(default)]
    pub smtp_username: Option<String>,
    /// email: password for SMTP AUTH.
    #[serde(default)]
    pub smtp_password: Option<Secret>,
    /// email: the sender address (`Tidewatch <alerts@example.net>`).
    #[serde(default)]
    pub from: Option<String>,
    /// email: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
}

/// A Telegram chat id as written in the configuration: a number or a string (`@channel`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ChatId {
    Number(i64),
    Text(String),
}

fn default_max_attempts() -> u32 {
    8
}

/// A value that must never reach a log line or an error message.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    #[cfg(test)]
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub listen: String,
    pub write_tokens: Vec<Secret>,
    pub read_tokens: Vec<Secret>,
    pub metrics_table: String,
    pub logs_table: String,
    pub monitor: MonitorMode,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    pub pool_size: usize,
    pub pool_timeout: Duration,
    pub statement_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub log: String,
    pub log_format: LogFormat,
    pub alert_hmac_secret: Option<Secret>,
    pub alert_hmac_timestamp_header: String,
    pub alert_routes: Vec<RouteConfig>,
    pub alert_retry_base: Duration,
    pub alert_retry_max: Duration,
    pub alert_delivery_timeout: Duration,
    /// Zone of the assistant's answers (None: UTC).
    pub ask_timezone: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("invalid {setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    #[error("{0}")]
    Missing(String),
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

impl Config {
    /// Resolve: command line/environment over the TOML file over the defaults, then validate.
    pub fn resolve(cli: &CliSettings) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let duration = |setting: &'static str,
                        cli: &Option<String>,
                        file: Option<DurationValue>,
                        default: Duration|
         -> Result<Duration, ConfigError> {
            match (cli, file) {
                (Some(s), _) => parse_duration(s).map_err(|m| invalid(setting, m)),
                (None, Some(DurationValue::Text(s))) => {
                    parse_duration(&s).map_err(|m| invalid(setting, m))
                }
                (None, Some(DurationValue::Seconds(x))) if x.is_finite() && x >= 0.0 => {
                    Ok(Duration::from_secs_f64(x))
                }
                (None, Some(DurationValue::Seconds(x))) => {
                    Err(invalid(setting, format!("{x} is not a duration")))
                }
                (None, None) => Ok(default),
            }
        };
        let tokens = |cli: &Option<String>, file: Option<TokenList>| -> Vec<Secret> {
            let raw: Vec<String> = match (cli, file) {
                (Some(s), _) => split_list(s),
                (None, Some(TokenList::One(s))) => split_list(&s),
                (None, Some(TokenList::Many(v))) => {
                    v.into_iter().map(|t| t.trim().to_string()).collect()
                }
                (None, None) => Vec::new(),
            };
            raw.into_iter()
                .filter(|t| !t.is_empty())
                .map(Secret)
                .collect()
        };
        let config = Config {
            database_url: Secret(
                cli.database_url
                    .clone()
                    .or(file.database_url)
                    .unwrap_or_default(),
            ),
            listen: cli
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            write_tokens: tokens(&cli.write_tokens, file.write_tokens),
            read_tokens: tokens(&cli.read_tokens, file.read_tokens),
            metrics_table: cli
                .metrics_table
                .clone()
                .or(file.metrics_table)
                .unwrap_or_else(|| "metrics".into()),
            logs_table: cli
                .logs_table
                .clone()
                .or(file.logs_table)
                .unwrap_or_else(|| "logs".into()),
            monitor: cli.monitor.or(file.monitor).unwrap_or(MonitorMode::Auto),
            max_body_bytes: cli
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(16 * 1024 * 1024),
            request_timeout: duration(
                "request_timeout",
                &cli.request_timeout,
                file.request_timeout,
                Duration::from_secs(30),
            )?,
            max_concurrency: cli.max_concurrency.or(file.max_concurrency).unwrap_or(256),
            pool_size: cli.pool_size.or(file.pool_size).unwrap_or(16),
            pool_timeout: duration(
                "pool_timeout",
                &cli.pool_timeout,
                file.pool_timeout,
                Duration::from_secs(2),
            )?,
            statement_timeout: duration(
                "statement_timeout",
                &cli.statement_timeout,
                file.statement_timeout,
                Duration::from_secs(25),
            )?,
            shutdown_timeout: duration(
                "shutdown_timeout",
                &cli.shutdown_timeout,
                file.shutdown_timeout,
                Duration::from_secs(8),
            )?,
            log: cli
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| "info".into()),
            log_format: cli
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            alert_hmac_secret: cli
                .alert_hmac_secret
                .clone()
                .or(file.alert_hmac_secret)
                .filter(|s| !s.is_empty())
                .map(Secret),
            alert_hmac_timestamp_header: cli
                .alert_hmac_timestamp_header
                .clone()
                .or(file.alert_hmac_timestamp_header)
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "X-Grafana-Alerting-Timestamp".into()),
            alert_routes: match &cli.alert_routes {
                Some(json) if !json.trim().is_empty() => {
                    serde_json::from_str(json).map_err(|e| {
                        invalid(
                            "alert_routes",
                            format!("TIDEWATCH_ALERT_ROUTES is not a JSON array of routes: {e}"),
                        )
                    })?
                }
                _ => file.alert_routes.unwrap_or_default(),
            },
            alert_retry_base: duration(
                "alert_retry_base",
                &cli.alert_retry_base,
                file.alert_retry_base,
                Duration::from_secs(2),
            )?,
            alert_retry_max: duration(
                "alert_retry_max",
                &cli.alert_retry_max,
                file.alert_retry_max,
                Duration::from_secs(300),
            )?,
            alert_delivery_timeout: duration(
                "alert_delivery_timeout",
                &cli.alert_delivery_timeout,
                file.alert_delivery_timeout,
                Duration::from_secs(10),
            )?,
            ask_timezone: cli.ask_timezone.clone().or(file.ask_timezone),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.expose().is_empty() {
            return Err(ConfigError::Missing(
                "no database: set TIDEWATCH_DATABASE_URL (or --database-url, or database_url in the TOML file), \
                 e.g. postgresql://tidewatch_service@localhost/tidewatch"
                    .into(),
            ));
        }
        self.pg_config()?;
        split_table_name(&self.metrics_table).map_err(|m| invalid("metrics_table", m))?;
        split_table_name(&self.logs_table).map_err(|m| invalid("logs_table", m))?;
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if self.max_concurrency == 0 {
            return Err(invalid("max_concurrency", "must be at least 1"));
        }
        if self.pool_size == 0 {
            return Err(invalid("pool_size", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be more than 0"));
        }
        if self.shutdown_timeout > Duration::from_secs(9) {
            return Err(invalid(
                "shutdown_timeout",
                "must be at most 9s: SIGTERM must end the process within 10 s",
            ));
        }
        if axum::http::HeaderName::from_bytes(self.alert_hmac_timestamp_header.trim().as_bytes())
            .is_err()
        {
            return Err(invalid(
                "alert_hmac_timestamp_header",
                format!(
                    "\"{}\" is not an HTTP header name",
                    self.alert_hmac_timestamp_header
                ),
            ));
        }
        if self.alert_delivery_timeout.is_zero() || self.alert_retry_base.is_zero() {
            return Err(invalid(
                "alert_delivery_timeout/alert_retry_base",
                "must be more than 0",
            ));
        }
        crate::alerts::routes::Routes::compile(&self.alert_routes)
            .map_err(|m| invalid("alert_routes", m))?;
        if let Some(tz) = &self.ask_timezone {
            crate::zone::Zone::parse(tz).ok_or_else(|| {
                invalid(
                    "ask_timezone",
                    format!(
                        "\"{tz}\" is not UTC, an offset such as UTC+2 or UTC-05:30, or an IANA name such as Europe/Paris"
                    ),
                )
            })?;
        }
        for t in self.write_tokens.iter().chain(&self.read_tokens) {
            if t.expose()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid(
                    "tokens",
                    "a token contains whitespace or a control character",
                ));
            }
        }
        Ok(())
    }

    /// The parsed connection settings (a libpq key=value string or a postgresql:// URL).
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, ConfigError> {
        self.database_url
            .expose()
            .parse::<tokio_postgres::Config>()
            // The parser's message never contains the password; the string itself is not shown.
            .map_err(|e| {
                invalid(
                    "database_url",
                    format!("not a libpq connection string or URL: {e}"),
                )
            })
    }

    /// Serving needs a write token: writes are never open.
    pub fn require_write_tokens(&self) -> Result<(), ConfigError> {
        if self.write_tokens.is_empty() {
            return Err(ConfigError::Missing(
                "no write token: set TIDEWATCH_WRITE_TOKENS to one or more comma-separated bearer tokens \
                 (writes are never open)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Human-readable summary for `check-config`, with secrets redacted.
    pub fn describe(&self) -> String {
        let db = match self.pg_config() {
            Ok(c) => {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        tokio_postgres::config::Host::Tcp(s) => s.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                format!(
                    "host={} port={:?} user={} dbname={} password={}",
                    hosts.join(","),
                    c.get_ports(),
                    c.get_user().unwrap_or("(default)"),
                    c.get_dbname().unwrap_or("(default)"),
                    if c.get_password().is_some() {
                        "<redacted>"
                    } else {
                        "(none)"
                    }
                )
            }
            Err(e) => e.to_string(),
        };
        format!(
            "database_url      {db}\n\
             listen            {}\n\
             write_tokens      {} token(s)\n\
             read_tokens       {}\n\
             metrics_table     {}\n\
             logs_table        {}\n\
             monitor           {:?}\n\
             max_body_bytes    {}\n\
             request_timeout   {:?}\n\
             max_concurrency   {}\n\
             pool_size         {}\n\
             pool_timeout      {:?}\n\
             statement_timeout {:?}\n\
             shutdown_timeout  {:?}\n\
             log               {} ({:?})\n\
             alert_hmac_secret {}\n\
             alert_routes      {}\n\
             ask_timezone      {}",
            self.listen,
            self.write_tokens.len(),
            if self.read_tokens.is_empty() {
                "none: reads are open".to_string()
            } else {
                format!("{} token(s)", self.read_tokens.len())
            },
            self.metrics_table,
            self.logs_table,
            self.monitor,
            self.max_body_bytes,
            self.request_timeout,
            self.max_concurrency,
            self.pool_size,
            self.pool_timeout,
            self.statement_timeout,
            self.shutdown_timeout,
            self.log,
            self.log_format,
            if self.alert_hmac_secret.is_some() {
                format!(
                    "<redacted> (timestamp header {})",
                    self.alert_hmac_timestamp_header
                )
            } else {
                "none: alerts need a write token".to_string()
            },
            if self.alert_routes.is_empty() {
                "none: notifications are stored, not delivered".to_string()
            } else {
                self.alert_routes
                    .iter()
                    .map(|r| format!("{} ({})", r.name, r.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.ask_timezone.as_deref().unwrap_or("UTC"),
        )
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Toml {
        path: path.into(),
        message: e.message().to_string(),
    })
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// "30s", "500ms", "2m", "1h" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .parse()
        .map_err(|_| format!("\"{s}\" is not a duration (use e.g. 30s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => x,
        "ms" => x / 1e3,
        "us" => x / 1e6,
        "m" | "min" => x * 60.0,
        "h" => x * 3600.0,
        other => {
            return Err(format!(
                "unknown unit \"{other}\" in \"{s}\" (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("\"{s}\" is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A table name as configured: `name` or `schema.name`, unquoted (case kept as written).
pub fn split_table_name(s: &str) -> Result<(Option<String>, String), String> {
    let parts: Vec<&str> = s.split('.').collect();
    let ok =
        |p: &str| !p.is_empty() && p.len() <= 63 && !p.chars().any(|c| c.is_control() || c == '"');
    match parts.as_slice() {
        [name] if ok(name) => Ok((None, name.to_string())),
        [schema, name] if ok(schema) && ok(name) => Ok((Some(schema.to_string()), name.to_string())),
        _ => Err(format!(
            "\"{s}\" is not a table name: use name or schema.name, each at most 63 bytes, without quotes or control characters"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn table_names() {
        assert_eq!(split_table_name("metrics"), Ok((None, "metrics".into())));
        assert_eq!(
            split_table_name("ops.Metrics"),
            Ok((Some("ops".into()), "Metrics".into()))
        );
        assert!(split_table_name("a.b.c").is_err());
        assert!(split_table_name("x\"y").is_err());
        assert!(split_table_name("").is_err());
    }

    #[test]
    fn environment_wins_over_file_and_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("tw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "database_url = \"host=/tmp dbname=a\"\nlisten = \"127.0.0.1:9999\"\nwrite_tokens = [\"w1\", \"w2\"]\n\
             pool_size = 4\nrequest_timeout = 5\nmetrics_table = \"filemetrics\"\n",
        )
        .unwrap_or_default();
        let cli = CliSettings {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7777".into()),
            ..Default::default()
        };
        let c = Config::resolve(&cli).map_err(|e| e.to_string());
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.listen, "127.0.0.1:7777");
        assert_eq!(c.pool_size, 4);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.metrics_table, "filemetrics");
        assert_eq!(c.logs_table, "logs");
        assert_eq!(c.write_tokens, vec![Secret::new("w1"), Secret::new("w2")]);
        assert!(
            !format!("{c:?}").contains("w1"),
            "tokens must not show in Debug"
        );
        std::fs::write(&path, "databse_url = \"x\"\n").unwrap_or_default();
        let err = Config::resolve(&cli)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("databse_url"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
