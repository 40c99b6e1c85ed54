//! `tidewatch-sample`: writes deterministic sample data as CSV on stdout and,
//! with `--labels PATH`, the injected anomalies as JSON.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use tidewatch_sample::devices::{write_devices_csv, DevicesConfig, DevicesPlan};
use tidewatch_sample::etl_logs::{write_logs_csv, EtlConfig, EtlPlan};
use tidewatch_sample::features::{write_features_csv, Drift, FeaturesConfig};
use tidewatch_sample::telemetry::{write_rows_csv, TelemetryConfig, TelemetryPlan, TelemetryRows};
use tidewatch_sample::time::parse_timestamp;
use tidewatch_sample::{Error, LabelFile};

/// Generate realistic, deterministic sample data (CSV on stdout) with
/// labelled anomalies.
#[derive(Debug, Parser)]
#[command(name = "tidewatch-sample", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Satellite telemetry: ts,satellite,metric,value
    Telemetry {
        /// First timestamp (RFC 3339, `YYYY-MM-DD HH:MM:SS+00` or a date)
        #[arg(long, default_value = "2026-01-01T00:00:00Z", value_parser = parse_start)]
        start: DateTime<Utc>,
        /// Length of the range in days
        #[arg(long, default_value_t = 21.0)]
        days: f64,
        /// Sampling step in seconds
        #[arg(long, default_value_t = 5)]
        step_secs: u32,
        /// Number of satellites (SAT1..SATn)
        #[arg(long, default_value_t = 4)]
        satellites: u32,
        /// Metrics per satellite (SCH.M1..SCH.Mm)
        #[arg(long, default_value_t = 15)]
        metrics: u32,
        /// Random seed
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the injected anomalies as JSON to this file
        #[arg(long, value_name = "PATH")]
        labels: Option<PathBuf>,
        /// Anomalies injected into every series
        #[arg(long, default_value_t = 3)]
        anomalies_per_series: u32,
    },
    /// Correlated device metrics: ts,device,temperature,power,load,voltage,fan,clock
    Devices {
        /// First timestamp
        #[arg(long, default_value = "2026-01-01T00:00:00Z", value_parser = parse_start)]
        start: DateTime<Utc>,
        /// Length of the range in days
        #[arg(long, default_value_t = 7.0)]
        days: f64,
        /// Sampling step in seconds
        #[arg(long, default_value_t = 60)]
        step_secs: u32,
        /// Number of devices
        #[arg(long, default_value_t = 20)]
        devices: u32,
        /// Random seed
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the injected anomalies as JSON to this file
        #[arg(long, value_name = "PATH")]
        labels: Option<PathBuf>,
        /// Anomalies injected into every device
        #[arg(long, default_value_t = 2)]
        anomalies_per_device: u32,
    },
    /// ETL / application logs: ts,pipeline,level,message
    EtlLogs {
        /// First timestamp
        #[arg(long, default_value = "2026-01-01T00:00:00Z", value_parser = parse_start)]
        start: DateTime<Utc>,
        /// Length of the range in days
        #[arg(long, default_value_t = 7.0)]
        days: f64,
        /// Random seed
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the error bursts as JSON to this file
        #[arg(long, value_name = "PATH")]
        labels: Option<PathBuf>,
        /// Number of error bursts
        #[arg(long, default_value_t = 10)]
        bursts: u32,
    },
    /// Reference and current feature batches: batch,f_num1,f_num2,f_cat,f_bool
    Features {
        /// Rows per batch
        #[arg(long, default_value_t = 5000)]
        rows: u64,
        /// Random seed
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Drift of the current batch: none, shift, scale or category
        #[arg(long, default_value = "none", value_parser = parse_drift)]
        drift: Drift,
    },
}

fn parse_start(s: &str) -> Result<DateTime<Utc>, String> {
    parse_timestamp(s).map_err(|e| e.to_string())
}

fn parse_drift(s: &str) -> Result<Drift, String> {
    s.parse::<Drift>().map_err(|e| e.to_string())
}

fn write_labels(path: Option<&PathBuf>, file: impl FnOnce() -> LabelFile) -> Result<(), String> {
    if let Some(path) = path {
        file()
            .write_to_path(path)
            .map_err(|e| format!("cannot write labels to {}: {e}", path.display()))?;
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = match cli.command {
        Command::Telemetry {
            start,
            days,
            step_secs,
            satellites,
            metrics,
            seed,
            labels,
            anomalies_per_series,
        } => {
            let cfg = TelemetryConfig {
                start,
                days,
                step_secs,
                satellites,
                metrics,
                seed,
                anomalies_per_series,
            };
            let plan = TelemetryPlan::new(&cfg).map_err(|e| e.to_string())?;
            write_labels(labels.as_ref(), || plan.label_file())?;
            write_rows_csv(TelemetryRows::new(plan), &mut out)
        }
        Command::Devices {
            start,
            days,
            step_secs,
            devices,
            seed,
            labels,
            anomalies_per_device,
        } => {
            let cfg = DevicesConfig {
                start,
                days,
                step_secs,
                devices,
                seed,
                anomalies_per_device,
            };
            let plan = DevicesPlan::new(&cfg).map_err(|e| e.to_string())?;
            write_labels(labels.as_ref(), || plan.label_file())?;
            write_devices_csv(&cfg, &mut out)
        }
        Command::EtlLogs {
            start,
            days,
            seed,
            labels,
            bursts,
        } => {
            let cfg = EtlConfig {
                start,
                days,
                seed,
                bursts,
            };
            let plan = EtlPlan::new(&cfg).map_err(|e| e.to_string())?;
            write_labels(labels.as_ref(), || plan.label_file())?;
            write_logs_csv(&cfg, &mut out)
        }
        Command::Features { rows, seed, drift } => {
            write_features_csv(&FeaturesConfig { rows, seed, drift }, &mut out)
        }
    };
    match written.and_then(|_| out.flush().map_err(Error::from)) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is not an error for a data generator.
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write output: {e}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            let _ = writeln!(io::stderr(), "tidewatch-sample: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
