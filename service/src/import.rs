//! `tidewatch-service import metrics|logs FILE`: bulk loads straight into the database with COPY.

use crate::config::{Config, ImportCommand};

pub async fn run(_config: Config, _what: ImportCommand) -> Result<(), String> {
    Err("import is not implemented yet".into())
}
