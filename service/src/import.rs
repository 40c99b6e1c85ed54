//! `tidewatch-service import metrics|logs FILE`: bulk loads straight into the database with COPY
//! (not through HTTP), in one transaction: the whole file or nothing.
//!
//! A reader thread parses the file into chunks while the database takes the previous chunk, so
//! parsing and COPY overlap. Points go through the same staging table and `ON CONFLICT DO NOTHING`
//! as HTTP ingest (re-importing a file adds nothing); log lines are COPYed straight in. A progress
//! bar on stderr (when it is a terminal) follows the bytes read; the final count goes to stdout.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::config::{Config, ImportCommand, LogsFormat, MetricsFormat};
use crate::db::write::{self, LogLine, Point};
use crate::ingest::json::JsonPoint;
use crate::ingest::logs::{self as logparse, Defaults};
use crate::ingest::point::{labels_from_json, now_us, parse_rfc3339, Precision};
use crate::ingest::{json, line_protocol};

/// Points or lines per COPY.
const CHUNK: usize = 50_000;

pub async fn run(config: Config, what: ImportCommand) -> Result<(), String> {
    let pool = crate::db::pool(&config)?;
    let tables = {
        let pg = config.pg_config().map_err(|e| e.to_string())?;
        let (mut client, conn) = pg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        let task = tokio::spawn(conn);
        let t = crate::db::schema::prepare(&mut client, &config)
            .await
            .map_err(|e| e.to_string())?;
        drop(client);
        let _ = task.await;
        t
    };
    let mut client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let started = Instant::now();
    match what {
        ImportCommand::Metrics {
            file,
            format,
            precision,
        } => {
            let format = format.unwrap_or_else(|| metrics_format(&file));
            let precision = match precision {
                Some(p) => Precision::parse(&p).map_err(|e| e.message)?,
                None if format == MetricsFormat::LineProtocol => Precision::Ns,
                None => Precision::S,
            };
            let (bar, reader) = open(&file)?;
            let (tx_chunks, mut rx) = mpsc::channel::<Result<Vec<Point>, String>>(2);
            let reader_thread =
                std::thread::spawn(move || read_metrics(reader, format, precision, tx_chunks));
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            let insert = tx
                .prepare(&write::insert_staged_sql(&tables.metrics))
                .await
                .map_err(|e| e.to_string())?;
            let (mut total, mut inserted) = (0u64, 0u64);
            while let Some(chunk) = rx.recv().await {
                let points =
                    chunk.map_err(|e| format!("{}: {e}; nothing imported", file.display()))?;
                inserted += write::stage_points(&tx, &insert, &points)
                    .await
                    .map_err(|e| e.to_string())?;
                tx.batch_execute("TRUNCATE pg_temp.tidewatch_staging_points")
                    .await
                    .map_err(|e| e.to_string())?;
                total += points.len() as u64;
                bar.set_message(format!("{total} points"));
            }
            let _ = reader_thread.join();
            tx.commit().await.map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "imported {total} points from {} into {} in {secs:.1} s ({:.0} points/s): {inserted} new, {} already there",
                file.display(),
                tables.metrics.sql,
                total as f64 / secs.max(1e-9),
                total - inserted
            );
        }
        ImportCommand::Logs {
            file,
            format,
            source,
        } => {
            let format = format.unwrap_or_else(|| logs_format(&file));
            let (bar, reader) = open(&file)?;
            let (tx_chunks, mut rx) = mpsc::channel::<Result<Vec<LogLine>, String>>(2);
            let reader_thread =
                std::thread::spawn(move || read_logs(reader, format, source, tx_chunks));
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            let mut total = 0u64;
            while let Some(chunk) = rx.recv().await {
                let lines =
                    chunk.map_err(|e| format!("{}: {e}; nothing imported", file.display()))?;
                total += write::copy_logs(&tx, &tables.logs, &lines)
                    .await
                    .map_err(|e| e.to_string())?;
                bar.set_message(format!("{total} lines"));
            }
            let _ = reader_thread.join();
            tx.commit().await.map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "imported {total} log lines from {} into {} in {secs:.1} s ({:.0} lines/s)",
                file.display(),
                tables.logs.sql,
                total as f64 / secs.max(1e-9)
            );
        }
    }
    Ok(())
}

fn extension(file: &Path) -> String {
    file.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn metrics_format(file: &Path) -> MetricsFormat {
    match extension(file).as_str() {
        "csv" => MetricsFormat::Csv,
        "jsonl" | "ndjson" | "json" => MetricsFormat::Jsonl,
        _ => MetricsFormat::LineProtocol,
    }
}

fn logs_format(file: &Path) -> LogsFormat {
    match extension(file).as_str() {
        "jsonl" | "ndjson" | "json" => LogsFormat::Jsonl,
        _ => LogsFormat::Text,
    }
}

/// The file (or standard input for `-`), wrapped so that reading advances the progress bar.
fn open(file: &Path) -> Result<(ProgressBar, Box<dyn BufRead + Send>), String> {
    let (len, inner): (Option<u64>, Box<dyn Read + Send>) = if file.as_os_str() == "-" {
        (None, Box::new(std::io::stdin()))
    } else {
        let f = File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
        (f.metadata().ok().map(|m| m.len()), Box::new(f))
    };
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    let reader = bar.wrap_read(inner);
    Ok((bar, Box::new(BufReader::with_capacity(1 << 20, reader))))
}

fn read_metrics(
    reader: Box<dyn BufRead + Send>,
    format: MetricsFormat,
    precision: Precision,
    out: mpsc::Sender<Result<Vec<Point>, String>>,
) {
    let now = now_us();
    let mut chunk = Vec::with_capacity(CHUNK);
    let send = |chunk: &mut Vec<Point>, force: bool| -> bool {
        if chunk.len() >= CHUNK || (force && !chunk.is_empty()) {
            let full = std::mem::replace(chunk, Vec::with_capacity(CHUNK));
            return out.blocking_send(Ok(full)).is_ok();
        }
        true
    };
    let fail = |out: &mpsc::Sender<Result<Vec<Point>, String>>, m: String| {
        let _ = out.blocking_send(Err(m));
    };
    match format {
        MetricsFormat::Csv => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(reader);
            let headers = match rdr.headers() {
                Ok(h) => h.clone(),
                Err(e) => return fail(&out, format!("cannot read the CSV header: {e}")),
            };
            let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.trim()));
            let (Some(t), Some(m), Some(v)) =
                (col(&["time", "ts"]), col(&["metric"]), col(&["value"]))
            else {
                return fail(&out, "the CSV header must name the columns time (or ts), metric, value and optionally labels".into());
            };
            let l = col(&["labels"]);
            for (i, rec) in rdr.records().enumerate() {
                let line = i + 2;
                let point = rec.map_err(|e| format!("line {line}: {e}")).and_then(|r| {
                    csv_point(
                        r.get(t).unwrap_or(""),
                        r.get(m).unwrap_or(""),
                        l.and_then(|l| r.get(l)),
                        r.get(v).unwrap_or(""),
                        precision,
                    )
                    .map_err(|e| format!("line {line}: {e}"))
                });
                match point {
                    Ok(p) => chunk.push(p),
                    Err(e) => return fail(&out, e),
                }
                if !send(&mut chunk, false) {
                    return;
                }
            }
        }
        MetricsFormat::Jsonl => {
            for (i, line) in reader.lines().enumerate() {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => return fail(&out, format!("line {}: {e}", i + 1)),
                };
                if line.trim().is_empty() {
                    continue;
                }
                let point = serde_json::from_str::<JsonPoint>(&line)
                    .map_err(|e| json::classify_serde_error(&e).1)
                    .and_then(|p| p.into_point(precision, now));
                match point {
                    Ok(p) => chunk.push(p),
                    Err(e) => return fail(&out, format!("line {}: {e}", i + 1)),
                }
                if !send(&mut chunk, false) {
                    return;
                }
            }
        }
        MetricsFormat::LineProtocol => {
            for (i, line) in reader.lines().enumerate() {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => return fail(&out, format!("line {}: {e}", i + 1)),
                };
                match line_protocol::parse(&line, precision, now) {
                    Ok(parsed) => chunk.extend(parsed.points),
                    // parse() numbers lines from 1 within what it was given.
                    Err(e) => {
                        return fail(&out, e.replacen("line 1:", &format!("line {}:", i + 1), 1))
                    }
                }
                if !send(&mut chunk, false) {
                    return;
                }
            }
        }
    }
    send(&mut chunk, true);
}

fn csv_point(
    time: &str,
    metric: &str,
    labels: Option<&str>,
    value: &str,
    precision: Precision,
) -> Result<Point, String> {
    crate::ingest::point::check_metric(metric)?;
    // An epoch number in `precision`, or RFC 3339 text.
    let time_us = match time.trim().parse::<i64>() {
        Ok(n) => precision.int_to_us(n as i128),
        Err(_) => time
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|n| precision.float_to_us(n)),
    };
    let time_us = match time_us {
        Some(us) => us,
        None if time.trim().parse::<f64>().is_ok() => {
            return Err(format!("time {time} is out of range"))
        }
        None => parse_rfc3339(time.trim())?,
    };
    let labels = match labels.map(str::trim) {
        None | Some("") => "{}".to_string(),
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| format!("labels are not a JSON object: {e}"))?;
            labels_from_json(Some(&v))?
        }
    };
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("value \"{value}\" is not a number"))?;
    crate::ingest::point::check_value(value)?;
    Ok(Point {
        time_us,
        metric: metric.to_string(),
        labels,
        value,
    })
}

fn read_logs(
    reader: Box<dyn BufRead + Send>,
    format: LogsFormat,
    source: String,
    out: mpsc::Sender<Result<Vec<LogLine>, String>>,
) {
    let defaults = Defaults {
        source: &source,
        labels: "{}",
        precision: Precision::S,
        now: now_us(),
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    for (i, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = out.blocking_send(Err(format!("line {}: {e}", i + 1)));
                return;
            }
        };
        let parsed = match format {
            LogsFormat::Jsonl => logparse::parse_json(line.as_bytes(), &defaults),
            LogsFormat::Text => logparse::parse_text(line.as_bytes(), &defaults),
        };
        match parsed {
            Ok(lines) => chunk.extend(lines),
            Err((_, e)) => {
                let _ =
                    out.blocking_send(Err(e.replacen("line 1:", &format!("line {}:", i + 1), 1)));
                return;
            }
        }
        if chunk.len() >= CHUNK && out.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
            return;
        }
    }
    if !chunk.is_empty() {
        let _ = out.blocking_send(Ok(chunk));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_points() {
        let p = csv_point(
            "2026-03-02T10:00:05Z",
            "m",
            Some(r#"{"b":"2","a":"1"}"#),
            "1.5",
            Precision::S,
        );
        assert_eq!(
            p,
            Ok(Point {
                time_us: 1_772_445_605_000_000,
                metric: "m".into(),
                labels: r#"{"a":"1","b":"2"}"#.into(),
                value: 1.5
            })
        );
        assert_eq!(
            csv_point("1772445605", "m", None, "2", Precision::S).map(|p| p.time_us),
            Ok(1_772_445_605_000_000)
        );
        assert!(csv_point("x", "m", None, "2", Precision::S).is_err());
        assert!(csv_point("1", "", None, "2", Precision::S).is_err());
        assert!(csv_point("1", "m", None, "NaN", Precision::S).is_err());
        assert!(csv_point("1", "m", Some("[1]"), "1", Precision::S).is_err());
    }
}
