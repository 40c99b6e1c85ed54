//! `tidewatch-service serve`: set up the database side, listen, and stop cleanly on SIGTERM or
//! Ctrl-C: stop accepting, let in-flight requests finish (at most `shutdown_timeout`), exit 0.

use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::db;
use crate::state::AppState;

/// Connect (retrying while the database starts), prepare the tables, serve until a signal.
pub async fn run(config: Config) -> Result<(), String> {
    config.require_write_tokens().map_err(|e| e.to_string())?;
    let prometheus = crate::observe::init_metrics()?;
    let pool = db::pool(&config)?;
    let tables = prepare_with_retry(&config).await?;
    tracing::info!(
        metrics = %tables.metrics.sql,
        logs = %tables.logs.sql,
        metrics_monitor = tables.metrics.monitor.as_deref().unwrap_or("none"),
        logs_monitor = tables.logs.monitor.as_deref().unwrap_or("none"),
        extension = %tables.extension_version,
        "database ready"
    );
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let grace = config.shutdown_timeout;
    let http = crate::alerts::channels::http_client(&config)?;
    let state = AppState::new(config, pool, tables, prometheus, http);
    // Deliveries left pending or sending (a restart, a kill -9) are picked up again.
    crate::alerts::outbox::spawn(state.clone());
    let app = crate::app::build(state);
    // Tests and scripts read this line to learn the port (with TIDEWATCH_LISTEN=127.0.0.1:0).
    tracing::info!(%addr, "listening on {addr}");
    eprintln!("tidewatch-service listening on {addr}");
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = signalled_tx.send(());
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let server = tokio::spawn(async move { server.await });
    // Once signalled, in-flight requests get `grace`; then the process ends regardless (their
    // transactions roll back, so nothing unacknowledged is half-written).
    tokio::select! {
        r = server => r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
        _ = async {
            let _ = signalled_rx.await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(?grace, "in-flight requests still running after the shutdown timeout; exiting"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn prepare_with_retry(config: &Config) -> Result<db::schema::Tables, String> {
    let pg = config.pg_config().map_err(|e| e.to_string())?;
    let mut delay = Duration::from_millis(200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let (mut client, conn) = pg
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(db::schema::SetupError::Db)?;
            let task = tokio::spawn(conn);
            let r = db::schema::prepare(&mut client, config).await;
            drop(client);
            let _ = task.await;
            r
        };
        match attempt.await {
            Ok(t) => return Ok(t),
            Err(db::schema::SetupError::Db(e))
                if db::is_transient(&e) && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(format!("database set-up failed: {e}")),
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
