//! The Tidewatch HTTP service (axum + tokio-postgres) will live here: ingest, query, alert
//! webhook and assistant endpoints. Until those land the binary only states what it is, so the
//! workspace layout, packaging and CI are in place from the start.

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("tidewatch-service {version}");
        return;
    }
    eprintln!(
        "tidewatch-service {version}: the HTTP service is not implemented yet; \
         use the tidewatch extension from SQL (see README.md)"
    );
    std::process::exit(2);
}
