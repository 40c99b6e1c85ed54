//! Prometheus remote write 1.0: a snappy-compressed (block format) protobuf `WriteRequest`.
//! `__name__` becomes the metric, the other labels the labels; sample timestamps are milliseconds.
//!
//! Stale markers (the NaN with bits 0x7ff0000000000002 that Prometheus writes when a series
//! disappears) are not values and are skipped; any other NaN or infinity refuses the request, as
//! in the other formats. Exemplars, native histograms and metadata are ignored.

use super::point::{check_metric, check_value, Labels, Precision};
use crate::db::write::Point;

/// The messages of prometheus/prompb/types.proto and remote.proto that carry samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

#[derive(Debug, PartialEq)]
pub enum RemoteWriteError {
    /// The declared decompressed size exceeds the limit.
    TooLarge(usize),
    /// Not snappy or not a WriteRequest.
    Encoding(String),
    /// A series or sample is not acceptable.
    Invalid(&'static str, String),
}

/// Decompress (checking the declared size against `limit` before allocating) and decode.
pub fn decode(body: &[u8], limit: usize) -> Result<WriteRequest, RemoteWriteError> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        RemoteWriteError::Encoding(format!(
            "the body is not snappy-compressed (block format): {e}"
        ))
    })?;
    if len > limit {
        return Err(RemoteWriteError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Encoding(format!("invalid snappy data: {e}")))?;
    <WriteRequest as prost::Message>::decode(raw.as_slice()).map_err(|e| {
        RemoteWriteError::Encoding(format!("the body is not a remote write WriteRequest: {e}"))
    })
}

/// The points of a request, and how many stale markers were skipped.
pub fn points(req: &WriteRequest) -> Result<(Vec<Point>, usize), RemoteWriteError> {
    let mut out = Vec::with_capacity(req.timeseries.iter().map(|t| t.samples.len()).sum());
    let mut stale = 0;
    for (i, ts) in req.timeseries.iter().enumerate() {
        let mut name = None;
        let mut labels = Labels::new();
        for l in &ts.labels {
            if l.name == "__name__" {
                name = Some(l.value.as_str());
            } else {
                labels.insert(&l.name, &l.value).map_err(|m| {
                    RemoteWriteError::Invalid("invalid_labels", format!("series {i}: {m}"))
                })?;
            }
        }
        let metric = name.unwrap_or("");
        check_metric(metric).map_err(|m| {
            RemoteWriteError::Invalid(
                "invalid_metric",
                format!("series {i}: {m} (no __name__ label)"),
            )
        })?;
        let labels = labels.finish();
        for s in &ts.samples {
            if s.value.to_bits() == STALE_NAN_BITS {
                stale += 1;
                continue;
            }
            check_value(s.value).map_err(|m| {
                RemoteWriteError::Invalid("invalid_value", format!("series {i} ({metric}): {m}"))
            })?;
            let time_us = Precision::Ms
                .int_to_us(s.timestamp as i128)
                .ok_or_else(|| {
                    RemoteWriteError::Invalid(
                        "invalid_timestamp",
                        format!(
                            "series {i} ({metric}): timestamp {} ms is out of range",
                            s.timestamp
                        ),
                    )
                })?;
            out.push(Point {
                time_us,
                metric: metric.to_string(),
                labels: labels.clone(),
                value: s.value,
            });
        }
    }
    Ok((out, stale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "node".into(),
                    },
                    Label {
                        name: "instance".into(),
                        value: "a:9100".into(),
                    },
                ],
                samples: vec![
                    Sample {
                        value: 1.0,
                        timestamp: 1_700_000_000_000,
                    },
                    Sample {
                        value: f64::from_bits(STALE_NAN_BITS),
                        timestamp: 1_700_000_015_000,
                    },
                ],
            }],
        }
    }

    #[test]
    fn round_trip_through_snappy_and_protobuf() {
        let body = match snap::raw::Encoder::new().compress_vec(&request().encode_to_vec()) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        // Compared as bytes: the stale marker is a NaN, never equal to itself.
        let decoded = decode(&body, 1 << 20).map(|r| r.encode_to_vec());
        assert_eq!(decoded, Ok(request().encode_to_vec()));
        let (points, stale) = match points(&request()) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(stale, 1);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].metric, "up");
        assert_eq!(points[0].labels, r#"{"instance":"a:9100","job":"node"}"#);
        assert_eq!(points[0].time_us, 1_700_000_000_000_000);
    }

    #[test]
    fn refuses_what_it_cannot_take() {
        let body = snap::raw::Encoder::new()
            .compress_vec(&request().encode_to_vec())
            .unwrap_or_default();
        assert!(matches!(
            decode(&body, 10),
            Err(RemoteWriteError::TooLarge(_))
        ));
        assert!(matches!(
            decode(b"not snappy at all", 1 << 20),
            Err(RemoteWriteError::Encoding(_))
        ));
        // Truncated input is an error, never a panic.
        for cut in 0..body.len() {
            let _ = decode(&body[..cut], 1 << 20);
        }
        let mut nan = request();
        nan.timeseries[0].samples[0].value = f64::NAN;
        assert!(matches!(
            points(&nan),
            Err(RemoteWriteError::Invalid("invalid_value", _))
        ));
        let mut unnamed = request();
        unnamed.timeseries[0].labels.remove(0);
        assert!(matches!(
            points(&unnamed),
            Err(RemoteWriteError::Invalid("invalid_metric", _))
        ));
    }
}
