//! Peer outliers: which series of a group behave unlike the others, bucket by bucket, using the
//! MAD and DBSCAN detectors of `augurs-outlier`.

use augurs_outlier::{DbscanDetector, MADDetector, OutlierDetector};

use crate::AnomalyError;

/// Peer-outlier methods accepted by [`peer_outliers`].
pub const PEER_METHODS: &[&str] = &["mad", "dbscan"];

/// Per-series, per-bucket verdicts.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerResult {
    /// `flags[s][b]`: series `s` is an outlier in bucket `b`.
    pub flags: Vec<Vec<bool>>,
    /// `scores[s][b]`: the detector's score (MAD: distance in MADs; DBSCAN: 0/1).
    pub scores: Vec<Vec<f64>>,
    /// Series that are outliers in at least one bucket.
    pub outlying_series: Vec<usize>,
}

/// Detect peer outliers over bucket-aligned series (one `Vec<f64>` per series, all the same length;
/// NaN marks a missing bucket). `method` is `"mad"` or `"dbscan"`, `sensitivity` in (0, 1): higher
/// flags more.
pub fn peer_outliers(
    series: &[Vec<f64>],
    method: &str,
    sensitivity: f64,
) -> Result<PeerResult, AnomalyError> {
    if !PEER_METHODS.contains(&method) {
        return Err(AnomalyError::UnknownMethod {
            name: method.to_string(),
        });
    }
    let n = series.first().map_or(0, Vec::len);
    if series.iter().any(|s| s.len() != n) {
        return Err(AnomalyError::InvalidParam {
            key: "series".into(),
            reason: "all series must have the same number of buckets".into(),
        });
    }
    if !(sensitivity > 0.0 && sensitivity < 1.0) {
        return Err(AnomalyError::InvalidParam {
            key: "sensitivity".into(),
            reason: "must be in (0, 1)".into(),
        });
    }
    let empty = PeerResult {
        flags: vec![vec![false; n]; series.len()],
        scores: vec![vec![0.0; n]; series.len()],
        outlying_series: Vec::new(),
    };
    if series.len() < 3 || n == 0 {
        return Ok(empty);
    }
    let refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
    let err = |e: augurs_outlier::Error| AnomalyError::InvalidParam {
        key: "series".into(),
        reason: e.to_string(),
    };
    let bad_sens = |e: augurs_outlier::Error| AnomalyError::InvalidParam {
        key: "sensitivity".into(),
        reason: e.to_string(),
    };
    let out = match method {
        "mad" => {
            let d = MADDetector::with_sensitivity(sensitivity).map_err(bad_sens)?;
            let pre = match d.preprocess(&refs) {
                Ok(p) => p,
                // Constant groups (MAD = 0 everywhere) have no outliers.
                Err(_) => return Ok(empty),
            };
            d.detect(&pre).map_err(err)?
        }
        "dbscan" => {
            let d = DbscanDetector::with_sensitivity(sensitivity).map_err(bad_sens)?;
            let pre = d.preprocess(&refs).map_err(err)?;
            d.detect(&pre).map_err(err)?
        }
        other => {
            return Err(AnomalyError::UnknownMethod {
                name: other.to_string(),
            });
        }
    };
    let mut res = empty;
    for (s, r) in out.series_results.iter().enumerate().take(series.len()) {
        for iv in &r.outlier_intervals.intervals {
            let end = iv.end.unwrap_or(n).min(n);
            for b in iv.start.min(n)..end {
                res.flags[s][b] = true;
            }
        }
        for (b, v) in r.scores.iter().enumerate().take(n) {
            res.scores[s][b] = if v.is_finite() { *v } else { 0.0 };
        }
    }
    res.outlying_series = (0..series.len())
        .filter(|&s| res.flags[s].iter().any(|&f| f))
        .collect();
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_deviating_series_is_flagged_in_its_buckets() {
        for method in PEER_METHODS {
            let mut series: Vec<Vec<f64>> = (0..6)
                .map(|s| {
                    (0..40)
                        .map(|b| 10.0 + (b as f64 * 0.3).sin() + s as f64 * 0.01)
                        .collect()
                })
                .collect();
            for v in series[4].iter_mut().skip(20).take(5) {
                *v += 30.0;
            }
            let r = peer_outliers(&series, method, 0.5).expect("detect");
            assert_eq!(r.outlying_series, vec![4], "{method}");
            assert!(r.flags[4][22], "{method}");
            assert!(!r.flags[4][5], "{method}");
        }
        let e = peer_outliers(&[vec![1.0]], "nope", 0.5).expect_err("unknown");
        assert!(matches!(e, AnomalyError::UnknownMethod { .. }));
        assert!(peer_outliers(&[vec![1.0]], "mad", 1.5).is_err());
    }
}
