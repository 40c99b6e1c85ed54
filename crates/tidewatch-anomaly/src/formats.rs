//! The byte formats of the SQL aggregates and the training of a stored model, so that the
//! extension's wrappers only move bytes: the state of `anomaly_agg` between parallel workers
//! ([`Batch`]), its result (scored points, [`encode_scored`] / [`ScoredPoints`]) and what
//! `train_detector` stores ([`Trained`]; the model bytes are [`Model::to_bytes`]).
//!
//! All integers and floats are little-endian.

use crate::{AnomalyError, BatchResult, Kind, Model};

/// A byte string that is not what the reader expected (truncated, or of another aggregate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// The state of `anomaly_agg(ts, value [, method [, params]])`: the method, its params and the
/// points as they came (unsorted), and how many rows had a NULL time or value.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    pub method: Option<String>,
    pub params: Option<serde_json::Value>,
    pub points: Vec<(i64, f64)>,
    pub nulls: u64,
}

impl Batch {
    /// Layout: u32 header length, header JSON `[method, params, nulls]`, then (i64 µs, f64) pairs.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::json!([self.method, self.params, self.nulls]).to_string();
        let mut out = Vec::with_capacity(4 + header.len() + self.points.len() * 16);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for (t, v) in &self.points {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Batch, FormatError> {
        let truncated = || FormatError("truncated header".into());
        let len = b
            .get(..4)
            .and_then(|h| <[u8; 4]>::try_from(h).ok())
            .map(|h| u32::from_le_bytes(h) as usize)
            .ok_or_else(truncated)?;
        let end = len.checked_add(4).ok_or_else(truncated)?;
        let header = b.get(4..end).ok_or_else(truncated)?;
        let (method, params, nulls): (Option<String>, Option<serde_json::Value>, u64) =
            serde_json::from_slice(header).map_err(|e| FormatError(e.to_string()))?;
        let body = &b[end..];
        if !body.len().is_multiple_of(16) {
            return Err(FormatError("truncated points".into()));
        }
        let points = body
            .chunks_exact(16)
            .map(|c| (i64::from_le_bytes(le8(c, 0)), f64::from_le_bytes(le8(c, 8))))
            .collect();
        Ok(Batch {
            method,
            params,
            points,
            nulls,
        })
    }

    /// The combine step: the points and NULL counts of both; the method of whichever has one.
    pub fn merge(&mut self, other: &Batch) {
        if self.method.is_none() {
            self.method.clone_from(&other.method);
            self.params.clone_from(&other.params);
        }
        self.points.extend_from_slice(&other.points);
        self.nulls += other.nulls;
    }

    fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("auto")
    }

    fn params(&self) -> serde_json::Value {
        self.params.clone().unwrap_or(serde_json::Value::Null)
    }

    /// Score the series (see [`crate::detect`]) and encode the result for `anomaly_points`.
    pub fn score(&self) -> Result<Vec<u8>, AnomalyError> {
        self.score_where(|_| true)
    }

    /// [`Batch::score`] keeping only the flagged points (`detect_anomalies(..., anomalies_only
    /// => true)`): the same bytes as the flagged points of `score`, without writing and reading
    /// back every point of the series.
    pub fn score_flagged(&self) -> Result<Vec<u8>, AnomalyError> {
        self.score_where(|sc| sc.is_anomaly)
    }

    /// Score the series and encode the points whose verdict passes `keep`. Methods whose batch
    /// form revises the streaming scores (`seasonal`, `changepoint`) go through [`crate::detect`];
    /// the others are encoded as they are scored, from the points in place when they came in
    /// time order (the usual case: a scan returns a series' rows as they were written), so no
    /// copy of the series and no array of verdicts is made. The bytes are the same either way.
    fn score_where(&self, keep: impl Fn(&crate::Scored) -> bool) -> Result<Vec<u8>, AnomalyError> {
        let method = self.method();
        if matches!(method, "seasonal" | "changepoint") {
            let r = crate::detect(method, &self.params(), self.points.clone())?;
            return Ok(encode_scored_where(self.nulls, &r, keep));
        }
        let mut model = Model::new(method, &self.params())?;
        let sorted;
        let points: &[(i64, f64)] = if self.points.is_sorted_by_key(|p| p.0) {
            &self.points
        } else {
            let mut p = self.points.clone();
            // Stable, as crate::detect's: rows with the same time keep their input order.
            p.sort_by_key(|p| p.0);
            sorted = p;
            &sorted
        };
        let mut out = Vec::with_capacity(8 + POINT_BYTES * 64);
        out.extend_from_slice(&0u64.to_le_bytes());
        let mut skipped = 0u64;
        for &(t, v) in points {
            if !v.is_finite() {
                skipped += 1;
                continue;
            }
            let sc = model.update(t, v);
            if keep(&sc) {
                push_scored(&mut out, t, v, &sc);
            }
        }
        out[..8].copy_from_slice(&(skipped + self.nulls).to_le_bytes());
        Ok(out)
    }

    /// Train a model on the points in time order (non-finite values skipped), as
    /// `train_detector` stores it.
    pub fn train(&self) -> Result<Trained, AnomalyError> {
        let mut model = Model::new(self.method(), &self.params())?;
        let mut pts = self.points.clone();
        pts.sort_by_key(|p| p.0);
        let mut t = Trained {
            model: Vec::new(),
            n: 0,
            skipped: self.nulls,
            flagged: 0,
            first_us: None,
            last_us: None,
        };
        for (ts, v) in pts {
            if !v.is_finite() {
                t.skipped += 1;
                continue;
            }
            let sc = model.update(ts, v);
            t.n += 1;
            t.flagged += u64::from(sc.is_anomaly);
            t.first_us.get_or_insert(ts);
            t.last_us = Some(ts);
        }
        t.model = model.to_bytes();
        Ok(t)
    }
}

/// What training a model on one series gives: the model's bytes ([`Model::to_bytes`]) and a
/// summary of the training window.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub model: Vec<u8>,
    /// Points learned from, and rows skipped (NULL or non-finite).
    pub n: u64,
    pub skipped: u64,
    /// Points flagged while learning.
    pub flagged: u64,
    /// Time of the first and last point learned from (µs since the Unix epoch).
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
}

impl Trained {
    /// The share of the training points flagged (0 when there were none).
    pub fn anomaly_rate(&self) -> f64 {
        if self.n > 0 {
            self.flagged as f64 / self.n as f64
        } else {
            0.0
        }
    }
}

/// Bytes per scored point in the result of `anomaly_agg`: time, value, expected, lower, upper,
/// score (8 bytes each), flags (bit 0 is_anomaly, bit 1 outside) and the kind's code.
pub const POINT_BYTES: usize = 8 * 6 + 2;

/// One point of the result of `anomaly_agg`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPoint {
    /// µs since the Unix epoch.
    pub ts: i64,
    pub value: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    pub score: f64,
    pub is_anomaly: bool,
    pub outside: bool,
    pub kind: Option<Kind>,
}

/// Encode a scored series: u64 rows skipped (`nulls` + the result's non-finite values), then
/// [`POINT_BYTES`] per point.
pub fn encode_scored(nulls: u64, r: &BatchResult) -> Vec<u8> {
    encode_scored_where(nulls, r, |_| true)
}

/// [`encode_scored`] of the points whose verdict passes `keep` (the skipped count is the whole
/// series').
pub fn encode_scored_where(
    nulls: u64,
    r: &BatchResult,
    keep: impl Fn(&crate::Scored) -> bool,
) -> Vec<u8> {
    let kept = r.points.iter().filter(|p| keep(&p.2)).count();
    let mut out = Vec::with_capacity(8 + kept * POINT_BYTES);
    out.extend_from_slice(&(r.skipped as u64 + nulls).to_le_bytes());
    for (t, v, sc) in r.points.iter().filter(|p| keep(&p.2)) {
        push_scored(&mut out, *t, *v, sc);
    }
    out
}

/// Append one scored point ([`POINT_BYTES`] bytes).
fn push_scored(out: &mut Vec<u8>, t: i64, v: f64, sc: &crate::Scored) {
    out.extend_from_slice(&t.to_le_bytes());
    for x in [v, sc.expected, sc.lower, sc.upper, sc.score] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.push(u8::from(sc.is_anomaly) | (u8::from(sc.outside) << 1));
    out.push(sc.kind.map_or(0, |k| k.code()));
}

/// A reader over an encoded scored series, without copying it.
#[derive(Debug, Clone, Copy)]
pub struct ScoredPoints<'a> {
    skipped: u64,
    body: &'a [u8],
}

impl<'a> ScoredPoints<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Self, FormatError> {
        if b.len() < 8 || !(b.len() - 8).is_multiple_of(POINT_BYTES) {
            return Err(FormatError(format!(
                "{} bytes is not 8 + a multiple of {POINT_BYTES}",
                b.len()
            )));
        }
        Ok(ScoredPoints {
            skipped: u64::from_le_bytes(le8(b, 0)),
            body: &b[8..],
        })
    }

    /// Rows the aggregate skipped (NULL time or value, NaN, ±Infinity).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn len(&self) -> usize {
        self.body.len() / POINT_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The points in time order. An unknown kind code reads as no kind.
    pub fn iter(&self) -> impl Iterator<Item = ScoredPoint> + 'a {
        let f = |c: &[u8], at: usize| f64::from_le_bytes(le8(c, at));
        self.body
            .chunks_exact(POINT_BYTES)
            .map(move |c| ScoredPoint {
                ts: i64::from_le_bytes(le8(c, 0)),
                value: f(c, 8),
                expected: f(c, 16),
                lower: f(c, 24),
                upper: f(c, 32),
                score: f(c, 40),
                is_anomaly: c[48] & 1 == 1,
                outside: c[48] & 2 == 2,
                kind: Kind::from_code(c[49]),
            })
    }
}

/// The 8 bytes of `c` at `at` (the callers index within checked lengths).
fn le8(c: &[u8], at: usize) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&c[at..at + 8]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch() -> impl Strategy<Value = Batch> {
        (
            proptest::option::of("[a-z]{0,8}"),
            proptest::option::of((0.0f64..1.0).prop_map(|t| serde_json::json!({"threshold": t}))),
            proptest::collection::vec((any::<i64>(), any::<f64>()), 0..64),
            any::<u64>(),
        )
            .prop_map(|(method, params, points, nulls)| Batch {
                method,
                params,
                points,
                nulls,
            })
    }

    /// Bit-level equality (NaN payloads included), which PartialEq on f64 does not give.
    fn same_points(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    proptest! {
        #[test]
        fn batch_round_trips(b in batch()) {
            let d = Batch::decode(&b.encode()).expect("decodes");
            prop_assert_eq!(&d.method, &b.method);
            prop_assert_eq!(&d.params, &b.params);
            prop_assert_eq!(d.nulls, b.nulls);
            prop_assert!(same_points(&d.points, &b.points));
        }

        #[test]
        fn batch_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Batch::decode(&bytes);
        }

        #[test]
        fn truncated_batch_is_refused(b in batch(), cut in 1usize..16) {
            let e = b.encode();
            prop_assume!(!b.points.is_empty());
            prop_assert!(Batch::decode(&e[..e.len() - cut]).is_err());
        }

        #[test]
        fn scored_points_round_trip(
            pts in proptest::collection::vec(
                (any::<i64>(), any::<f64>(), any::<f64>(), any::<bool>(), any::<bool>(), 0u8..=8),
                0..64),
            nulls in 0u64..1_000_000, skipped in 0usize..1_000_000,
        ) {
            let r = BatchResult {
                points: pts.iter().map(|&(t, v, s, a, o, k)| (t, v, crate::Scored {
                    expected: v * 0.5, lower: v - 1.0, upper: v + 1.0, score: s, sigma: 0.0,
                    is_anomaly: a, outside: o, kind: Kind::from_code(k),
                })).collect(),
                skipped,
            };
            let bytes = encode_scored(nulls, &r);
            prop_assert_eq!(bytes.len(), 8 + pts.len() * POINT_BYTES);
            let sp = ScoredPoints::parse(&bytes).expect("parses");
            prop_assert_eq!(sp.skipped(), nulls + skipped as u64);
            prop_assert_eq!(sp.len(), pts.len());
            for (p, (t, v, sc)) in sp.iter().zip(&r.points) {
                prop_assert_eq!(p.ts, *t);
                for (a, b) in [(p.value, *v), (p.expected, sc.expected), (p.lower, sc.lower),
                               (p.upper, sc.upper), (p.score, sc.score)] {
                    prop_assert_eq!(a.to_bits(), b.to_bits());
                }
                prop_assert_eq!((p.is_anomaly, p.outside, p.kind), (sc.is_anomaly, sc.outside, sc.kind));
            }
        }

        #[test]
        fn score_streams_the_bytes_detect_gives(
            vals in proptest::collection::vec(
                prop_oneof![8 => -50.0f64..50.0, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)], 1..400),
            dup in 0usize..5, shuffle in any::<bool>(), method in 0usize..4, nulls in 0u64..3,
        ) {
            // The second code path: crate::detect then encode_scored, for every kind of input the
            // streaming path takes (in order or not, repeated times, non-finite values).
            let method = ["auto", "robust", "ewma", "seasonal"][method];
            let mut points: Vec<(i64, f64)> = vals.iter().enumerate()
                .map(|(i, v)| (((i / (dup + 1)) as i64) * 60_000_000, *v)).collect();
            if shuffle {
                points.reverse();
            }
            let b = Batch { method: Some(method.into()), params: None, points: points.clone(), nulls };
            let r = crate::detect(method, &serde_json::Value::Null, points).expect("detects");
            prop_assert_eq!(b.score().expect("scores"), encode_scored(nulls, &r));
            prop_assert_eq!(b.score_flagged().expect("scores"),
                            encode_scored_where(nulls, &r, |sc| sc.is_anomaly));
        }

        #[test]
        fn scored_points_refuse_other_lengths(n in 0usize..400) {
            let ok = n >= 8 && (n - 8) % POINT_BYTES == 0;
            prop_assert_eq!(ScoredPoints::parse(&vec![0u8; n]).is_ok(), ok);
        }
    }

    #[test]
    fn score_equals_detect() {
        // The second code path: detect() on the same points, encoded by hand.
        let points: Vec<(i64, f64)> = (0..500)
            .map(|i| (i * 60_000_000, if i == 400 { 50.0 } else { (i % 7) as f64 }))
            .collect();
        let mut shuffled = points.clone();
        shuffled.reverse();
        let b = Batch {
            method: Some("robust".into()),
            params: None,
            points: shuffled,
            nulls: 3,
        };
        let r = crate::detect("robust", &serde_json::Value::Null, points).expect("detects");
        let bytes = b.score().expect("scores");
        let sp = ScoredPoints::parse(&bytes).expect("parses");
        assert_eq!(sp.skipped(), 3);
        assert_eq!(sp.len(), r.points.len());
        assert!(sp.iter().zip(&r.points).all(|(p, (t, _, sc))| p.ts == *t
            && p.is_anomaly == sc.is_anomaly
            && p.score.to_bits() == sc.score.to_bits()));
        assert!(sp.iter().any(|p| p.is_anomaly && p.ts == 400 * 60_000_000));
        // The flagged-only encoding: byte for byte the flagged points of the full one.
        let flagged = b.score_flagged().expect("scores");
        let fp = ScoredPoints::parse(&flagged).expect("parses");
        assert_eq!(fp.skipped(), 3);
        let want: Vec<_> = sp.iter().filter(|p| p.is_anomaly).collect();
        assert!(!want.is_empty() && want.len() < sp.len());
        assert_eq!(fp.iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn train_matches_a_model_fed_in_time_order() {
        let mut pts: Vec<(i64, f64)> = (0..300).map(|i| (i * 1_000, (i % 5) as f64)).collect();
        pts.push((5, f64::NAN));
        pts.reverse();
        let b = Batch {
            method: Some("ewma".into()),
            params: None,
            points: pts,
            nulls: 2,
        };
        let t = b.train().expect("trains");
        let mut m = Model::new("ewma", &serde_json::Value::Null).expect("model");
        let mut flagged = 0;
        for i in 0..300 {
            flagged += u64::from(m.update(i * 1_000, (i % 5) as f64).is_anomaly);
        }
        assert_eq!(t.model, m.to_bytes());
        assert_eq!((t.n, t.skipped, t.flagged), (300, 3, flagged));
        assert_eq!((t.first_us, t.last_us), (Some(0), Some(299_000)));
        assert!(Model::from_bytes(&t.model).is_ok());
    }

    #[test]
    fn merge_keeps_both() {
        let mut a = Batch {
            method: None,
            points: vec![(1, 1.0)],
            nulls: 1,
            ..Batch::default()
        };
        let b = Batch {
            method: Some("ewma".into()),
            params: Some(serde_json::json!({"alpha": 0.1})),
            points: vec![(2, 2.0)],
            nulls: 2,
        };
        a.merge(&b);
        assert_eq!(a.method.as_deref(), Some("ewma"));
        assert_eq!(a.points, vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(a.nulls, 3);
    }
}
