//! Ground-truth anomaly labels and the JSON label file.
//!
//! ```json
//! {"generator":"tidewatch-sample","dataset":"telemetry","seed":42,
//!  "start":"2026-01-01T00:00:00Z","end":"2026-01-22T00:00:00Z","step_secs":5,
//!  "anomalies":[{"series":{"satellite":"SAT2","metric":"SCH.M1"},"kind":"spike",
//!                "start":"2026-01-09T03:14:05Z","end":"2026-01-09T03:14:10Z",
//!                "magnitude_sigma":8.0}]}
//! ```
//!
//! `start` and `end` of an anomaly are both **inclusive**: they are the
//! timestamps of the first and the last affected point (for `missing_data`:
//! the first and last omitted timestamp). The file's `end` is exclusive (the
//! first timestamp after the data). `magnitude_sigma` is the characteristic
//! deviation from the clean signal in units of the series' noise σ, or
//! `null` where that is not meaningful (`flatline`, `missing_data`, log
//! bursts, …).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Result;

/// Identifies the series an anomaly belongs to. Only the keys relevant to
/// the data set are present.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SeriesRef {
    /// Telemetry: satellite name (`SAT1`…).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub satellite: Option<String>,
    /// Telemetry: metric name (`SCH.M1`…).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metric: Option<String>,
    /// Devices: device name (`dev-01`…).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<String>,
    /// ETL logs: pipeline name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pipeline: Option<String>,
}

impl SeriesRef {
    /// Telemetry series key.
    pub fn telemetry(satellite: impl Into<String>, metric: impl Into<String>) -> Self {
        Self {
            satellite: Some(satellite.into()),
            metric: Some(metric.into()),
            ..Self::default()
        }
    }

    /// Device key.
    pub fn device(device: impl Into<String>) -> Self {
        Self {
            device: Some(device.into()),
            ..Self::default()
        }
    }

    /// Pipeline key.
    pub fn pipeline(pipeline: impl Into<String>) -> Self {
        Self {
            pipeline: Some(pipeline.into()),
            ..Self::default()
        }
    }
}

/// One injected anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The affected series.
    pub series: SeriesRef,
    /// Anomaly kind, e.g. `spike`, `level_shift`, `stress`, `timeout`.
    pub kind: String,
    /// First affected timestamp (RFC 3339, inclusive).
    pub start: String,
    /// Last affected timestamp (RFC 3339, inclusive).
    pub end: String,
    /// Characteristic deviation in units of the noise σ, if meaningful.
    pub magnitude_sigma: Option<f64>,
    /// Affected columns for multi-column data sets (devices); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub columns: Vec<String>,
    /// Free-form detail (e.g. `phase_flip` / `removed`, the faulty host).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// The JSON label file written by `--labels PATH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelFile {
    /// Always `tidewatch-sample`.
    pub generator: String,
    /// `telemetry`, `devices` or `etl-logs`.
    pub dataset: String,
    /// The seed the data was generated with.
    pub seed: u64,
    /// First timestamp of the data (RFC 3339).
    pub start: String,
    /// First timestamp after the data (RFC 3339, exclusive).
    pub end: String,
    /// Sampling step in seconds (`null` for irregular data such as logs).
    pub step_secs: Option<u64>,
    /// The injected anomalies, ordered by start time.
    pub anomalies: Vec<Label>,
}

impl LabelFile {
    /// Builds a label file; anomalies are sorted by (start, end, kind).
    pub fn new(
        dataset: &str,
        seed: u64,
        start: String,
        end: String,
        step_secs: Option<u64>,
        mut anomalies: Vec<Label>,
    ) -> Self {
        // RFC 3339 UTC strings of equal format sort chronologically.
        anomalies.sort_by(|a, b| {
            (a.start.as_str(), a.end.as_str(), a.kind.as_str()).cmp(&(
                b.start.as_str(),
                b.end.as_str(),
                b.kind.as_str(),
            ))
        });
        Self {
            generator: "tidewatch-sample".to_string(),
            dataset: dataset.to_string(),
            seed,
            start,
            end,
            step_secs,
            anomalies,
        }
    }

    /// Writes the file as pretty-printed JSON.
    pub fn write_to_path(&self, path: &Path) -> Result<()> {
        let f = File::create(path)?;
        let mut w = BufWriter::new(f);
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()?;
        Ok(())
    }
}
