//! tidewatch-service: the HTTP service in front of a Tidewatch database.
//!
//! Table of contents:
//! - `config`   settings from the command line, the environment and a TOML file (clap)
//! - `state`    what handlers share (pool, tables, tokens, limits, metrics)
//! - `error`    `{code, message}` errors, also for middleware
//! - `auth`     bearer tokens, compared in constant time
//! - `extract`  strict query strings and limited bodies
//! - `app`      the router: one sub-router per area, and the common layers
//! - `openapi`  the OpenAPI document and the /docs page
//! - `ingest`   metrics (JSON, line protocol, remote write) and logs in
//! - `query`    series, points, anomalies, drift, log templates and errors out
//! - `ops`      /healthz, /readyz, /metrics
//! - `observe`  tracing and Prometheus metrics
//! - `db`       pool, error mapping, table set-up, the COPY write path
//! - `serve`    the server's lifecycle (start, drain on SIGTERM)
//! - `import`   bulk loads through COPY
//! - `alerts`   Grafana alerts in, notifications stored, linked to episodes and delivered (outbox)
//! - `ask`      the assistant: questions about anomalies in plain English (/v1/ask, `ask`)

mod alerts;
mod app;
mod ask;
mod auth;
mod config;
mod db;
mod error;
mod extract;
mod import;
mod ingest;
mod observe;
mod openapi;
mod ops;
mod query;
mod serve;
mod state;
mod zone;

use clap::Parser;

use crate::config::{Cli, Command, Config};

fn main() {
    let cli = Cli::parse();
    let config = match Config::resolve(&cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidewatch-service: {e}");
            std::process::exit(2);
        }
    };
    observe::init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tidewatch-service: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(config).await,
            Command::Import { what } => import::run(config, what).await,
            Command::CheckConfig { offline } => check_config(config, offline).await,
            Command::Ask { question, json, tz } => ask::cli::run(config, question, json, tz).await,
        }
    });
    if let Err(e) = result {
        eprintln!("tidewatch-service: {e}");
        std::process::exit(1);
    }
}

/// Print the effective configuration (secrets redacted); unless offline, check the database.
async fn check_config(config: Config, offline: bool) -> Result<(), String> {
    println!("{}", config.describe());
    config.require_write_tokens().map_err(|e| e.to_string())?;
    if offline {
        println!("configuration is valid (database not checked: --offline)");
        return Ok(());
    }
    let pg = config.pg_config().map_err(|e| e.to_string())?;
    let (client, conn) = pg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let task = tokio::spawn(conn);
    let version = db::schema::extension_version(&client)
        .await
        .map_err(|e| e.to_string())?;
    let role: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let superuser: bool = client
        .query_one(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    drop(client);
    let _ = task.await;
    println!(
        "database          connected as {role}{}",
        if superuser {
            " (a superuser: use tidewatch_service, see sql/roles.sql)"
        } else {
            ""
        }
    );
    match version {
        Some(v) => println!("extension         tidewatch {v}"),
        None => return Err("the tidewatch extension is not installed in this database (CREATE EXTENSION tidewatch)".into()),
    }
    println!("configuration is valid");
    Ok(())
}
