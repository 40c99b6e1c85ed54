//! `tidewatch-service ask "question"`: the same answer as `/v1/ask`, printed (the text, or the
//! whole JSON with `--json`), from the same configuration (database, tables, `ask_timezone`).

use super::answer::{self, Tables};
use super::catalog;
use crate::config::{split_table_name, Config};

/// A configured table name resolved to quoted SQL, if the table exists (`name` on the
/// search_path, or `schema.name`).
async fn resolve(
    client: &tokio_postgres::Client,
    configured: &str,
) -> Result<Option<String>, String> {
    let (schema, name) = split_table_name(configured)?;
    let row = match schema {
        Some(s) => client
            .query_opt(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 \
                 AND c.relkind IN ('r', 'p')",
                &[&s, &name],
            )
            .await,
        None => client
            .query_opt(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = to_regclass(quote_ident($1)) AND c.relkind IN ('r', 'p')",
                &[&name],
            )
            .await,
    }
    .map_err(|e| format!("cannot look up the table {configured}: {e}"))?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn run(
    config: Config,
    words: Vec<String>,
    json: bool,
    tz: Option<String>,
) -> Result<(), String> {
    let question = words.join(" ");
    let question = question.trim();
    if question.is_empty() {
        return Err(
            "ask a question, e.g. tidewatch-service ask \"how many anomalies yesterday?\"".into(),
        );
    }
    if question.chars().count() > super::MAX_QUESTION {
        return Err(format!(
            "the question is longer than {} characters",
            super::MAX_QUESTION
        ));
    }
    let offset = answer::resolve_offset(tz.as_deref(), &config.ask_timezone)?;
    let mut pg = config.pg_config().map_err(|e| e.to_string())?;
    pg.application_name("tidewatch-service ask");
    let (client, conn) = pg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let task = tokio::spawn(conn);
    let ms = config.statement_timeout.as_millis();
    client
        .batch_execute(&format!(
            "SET statement_timeout = {ms}; SET default_transaction_read_only = on"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let tables = Tables {
        metrics: resolve(&client, &config.metrics_table).await?,
        logs: resolve(&client, &config.logs_table).await?,
    };
    let catalog = catalog::load(&client, &tables)
        .await
        .map_err(|e| format!("cannot read the catalog: {}", e.message))?;
    let reply = answer::answer(
        &client,
        &tables,
        &catalog,
        question,
        chrono::Utc::now(),
        offset,
    )
    .await
    .map_err(|e| e.message)?;
    drop(client);
    let _ = task.await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", reply.answer);
    }
    Ok(())
}
