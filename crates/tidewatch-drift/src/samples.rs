//! Samples of a reference and a current window collected row by row, merged across parallel
//! workers and serialized between them: the state of the `drift_agg` SQL aggregates.

use crate::{categorical_drift, numeric_drift, DriftError, DriftReport};

/// Values of the two windows; the test runs once all rows are in.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples<T> {
    pub reference: Vec<T>,
    pub current: Vec<T>,
    /// Method and threshold as given with the first row (constant per aggregate call).
    pub method: Option<String>,
    pub threshold: Option<f64>,
}

impl<T> Default for Samples<T> {
    fn default() -> Self {
        Samples {
            reference: Vec::new(),
            current: Vec::new(),
            method: None,
            threshold: None,
        }
    }
}

impl<T: Clone> Samples<T> {
    pub fn add(&mut self, value: T, is_current: bool) {
        if is_current {
            self.current.push(value);
        } else {
            self.reference.push(value);
        }
    }

    pub fn merge(&mut self, other: &Samples<T>) {
        self.reference.extend_from_slice(&other.reference);
        self.current.extend_from_slice(&other.current);
        if self.method.is_none() {
            self.method.clone_from(&other.method);
        }
        if self.threshold.is_none() {
            self.threshold = other.threshold;
        }
    }

    fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("auto")
    }

    fn judged(&self, mut report: DriftReport) -> DriftReport {
        if let Some(t) = self.threshold {
            report.result = report.result.with_threshold(t);
        }
        report
    }
}

impl Samples<f64> {
    pub fn test(&self) -> Result<DriftReport, DriftError> {
        numeric_drift(self.method(), &self.reference, &self.current).map(|r| self.judged(r))
    }
}

impl Samples<String> {
    pub fn test(&self) -> Result<DriftReport, DriftError> {
        categorical_drift(self.method(), &self.reference, &self.current).map(|r| self.judged(r))
    }
}

/// A value that can be written to and read from the state's byte form.
pub trait Value: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(input: &mut &[u8]) -> Option<Self>;
}

impl Value for f64 {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn read(input: &mut &[u8]) -> Option<Self> {
        take(input, 8)
            .and_then(|b| b.try_into().ok())
            .map(f64::from_le_bytes)
    }
}

impl Value for String {
    fn write(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
    fn read(input: &mut &[u8]) -> Option<Self> {
        let n = read_len(input)?;
        take(input, n).and_then(|b| String::from_utf8(b.to_vec()).ok())
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Some(head)
}

fn write_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn read_len(input: &mut &[u8]) -> Option<usize> {
    take(input, 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
}

const FORMAT: u8 = 1;

impl<T: Value> Samples<T> {
    /// Byte form: format byte, method (length-prefixed, empty = auto), threshold flag and value,
    /// then both windows length-prefixed, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        self.method.clone().unwrap_or_default().write(&mut out);
        out.push(u8::from(self.threshold.is_some()));
        self.threshold.unwrap_or(0.0).write(&mut out);
        for window in [&self.reference, &self.current] {
            write_len(&mut out, window.len());
            for v in window {
                v.write(&mut out);
            }
        }
        out
    }

    pub fn from_bytes(mut input: &[u8]) -> Result<Self, String> {
        let bad = || "truncated or corrupt drift state".to_string();
        let input = &mut input;
        if take(input, 1) != Some(&[FORMAT][..]) {
            return Err("unknown drift state format".into());
        }
        let method = String::read(input).ok_or_else(bad)?;
        let has_threshold = take(input, 1).ok_or_else(bad)?[0] == 1;
        let threshold = f64::read(input).ok_or_else(bad)?;
        let mut windows = [Vec::new(), Vec::new()];
        for w in &mut windows {
            let n = read_len(input).ok_or_else(bad)?;
            // Never trust a length from the wire for allocation beyond what is there.
            w.reserve(n.min(input.len()));
            for _ in 0..n {
                w.push(T::read(input).ok_or_else(bad)?);
            }
        }
        if !input.is_empty() {
            return Err(bad());
        }
        let [reference, current] = windows;
        Ok(Samples {
            reference,
            current,
            method: (!method.is_empty()).then_some(method),
            threshold: has_threshold.then_some(threshold),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge() {
        let mut a = Samples::<f64> {
            method: Some("psi".into()),
            threshold: Some(0.2),
            ..Default::default()
        };
        a.add(1.5, false);
        a.add(f64::NAN, true);
        let back = Samples::<f64>::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(back.reference, vec![1.5]);
        assert!(back.current[0].is_nan());
        assert_eq!(
            (back.method.as_deref(), back.threshold),
            (Some("psi"), Some(0.2))
        );
        let mut s = Samples::<String>::default();
        s.add("x".into(), true);
        let mut t = Samples::<String> {
            method: Some("chisquare".into()),
            ..Default::default()
        };
        t.add("y".into(), false);
        s.merge(&t);
        assert_eq!(
            (s.reference.len(), s.current.len(), s.method.as_deref()),
            (1, 1, Some("chisquare"))
        );
        assert_eq!(Samples::<String>::from_bytes(&s.to_bytes()), Ok(s));
    }

    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        let good = Samples::<f64> {
            reference: vec![1.0, 2.0],
            ..Default::default()
        }
        .to_bytes();
        for cut in 0..good.len() {
            assert!(Samples::<f64>::from_bytes(&good[..cut]).is_err());
        }
        let mut huge = vec![FORMAT];
        String::new().write(&mut huge);
        huge.push(0);
        0f64.write(&mut huge);
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Samples::<f64>::from_bytes(&huge).is_err());
    }

    #[test]
    fn test_uses_the_given_threshold() {
        let mut s = Samples::<f64> {
            method: Some("wasserstein".into()),
            threshold: Some(1e9),
            ..Default::default()
        };
        for i in 0..50 {
            s.add(f64::from(i), false);
            s.add(f64::from(i) + 100.0, true);
        }
        let r = s.test().unwrap().result;
        assert!(!r.drifted && r.threshold == 1e9);
        s.threshold = None;
        assert!(s.test().unwrap().result.drifted);
    }
}
