//! Samples of a reference and a current window collected row by row, merged across parallel
//! workers and serialized between them: the state of the `drift_agg` SQL aggregates.

use crate::{categorical_drift, numeric_drift_many, DriftError, DriftReport};

/// Values of the two windows; the tests run once all rows are in.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples<T> {
    pub reference: Vec<T>,
    pub current: Vec<T>,
    /// Methods with their thresholds (None: the method's default), as given with the first row
    /// (constant per aggregate call); empty means `auto` with its default threshold.
    pub methods: Vec<(String, Option<f64>)>,
    /// NULL values seen in the reference and the current window.
    pub nulls: [u64; 2],
}

impl<T> Default for Samples<T> {
    fn default() -> Self {
        Samples {
            reference: Vec::new(),
            current: Vec::new(),
            methods: Vec::new(),
            nulls: [0, 0],
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

    /// Count a NULL value of one window.
    pub fn add_null(&mut self, is_current: bool) {
        self.nulls[usize::from(is_current)] += 1;
    }

    pub fn merge(&mut self, other: &Samples<T>) {
        self.reference.extend_from_slice(&other.reference);
        self.current.extend_from_slice(&other.current);
        if self.methods.is_empty() {
            self.methods.clone_from(&other.methods);
        }
        self.nulls[0] += other.nulls[0];
        self.nulls[1] += other.nulls[1];
    }

    fn method_list(&self) -> Vec<(&str, Option<f64>)> {
        if self.methods.is_empty() {
            return vec![("auto", None)];
        }
        self.methods.iter().map(|(m, t)| (m.as_str(), *t)).collect()
    }
}

fn judged(
    report: Result<DriftReport, DriftError>,
    threshold: Option<f64>,
) -> Result<DriftReport, DriftError> {
    report.map(|mut r| {
        if let Some(t) = threshold {
            r.result = r.result.with_threshold(t);
        }
        r
    })
}

impl Samples<f64> {
    /// The first method's result.
    pub fn test(&self) -> Result<DriftReport, DriftError> {
        self.test_all().remove(0)
    }

    /// Every method's result, in order; both windows are sorted once for all of them.
    pub fn test_all(&self) -> Vec<Result<DriftReport, DriftError>> {
        let list = self.method_list();
        let names: Vec<&str> = list.iter().map(|m| m.0).collect();
        numeric_drift_many(&names, &self.reference, &self.current)
            .into_iter()
            .zip(&list)
            .map(|(r, m)| judged(r, m.1))
            .collect()
    }
}

impl Samples<String> {
    /// The first method's result.
    pub fn test(&self) -> Result<DriftReport, DriftError> {
        self.test_all().remove(0)
    }

    /// Every method's result, in order.
    pub fn test_all(&self) -> Vec<Result<DriftReport, DriftError>> {
        self.method_list()
            .into_iter()
            .map(|(m, t)| judged(categorical_drift(m, &self.reference, &self.current), t))
            .collect()
    }
}

/// A value that can be written to and read from the state's byte form.
pub trait Value: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(input: &mut &[u8]) -> Option<Self>;

    /// A window in the byte form: its length, then its values in order.
    fn write_window(window: &[Self], out: &mut Vec<u8>) {
        write_plain(window, out);
    }

    fn read_window(input: &mut &[u8]) -> Option<Vec<Self>> {
        read_plain(input)
    }
}

/// A window as its length, then its values in order.
fn write_plain<T: Value>(window: &[T], out: &mut Vec<u8>) {
    write_len(out, window.len());
    for v in window {
        v.write(out);
    }
}

fn read_plain<T: Value>(input: &mut &[u8]) -> Option<Vec<T>> {
    let n = read_len(input)?;
    // Never trust a length from the wire for allocation beyond what is there.
    let mut w = Vec::with_capacity(n.min(input.len()));
    for _ in 0..n {
        w.push(T::read(input)?);
    }
    Some(w)
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

    /// A tag byte, then either the values in order (tag 0) or, when the window repeats values
    /// enough for it to be smaller, its distinct values (bit for bit, ascending) with their
    /// counts (tag 1): the byte form then grows with the distinct values, not the rows (Citus
    /// ships partial states from its workers in this form). Every numeric test sorts both
    /// windows first, so neither form changes a result.
    fn write_window(window: &[Self], out: &mut Vec<u8>) {
        let plain = |out: &mut Vec<u8>| {
            out.push(0);
            write_plain(window, out);
        };
        // Values that do not repeat in the window's first 4,096 seldom repeat enough to pay
        // for sorting the whole window (parallel workers serialize their states too).
        let probe = &window[..window.len().min(4096)];
        let mut bits: Vec<u64> = probe.iter().map(|v| v.to_bits()).collect();
        radsort::sort(&mut bits);
        bits.dedup();
        if bits.len() * 2 > probe.len() {
            return plain(out);
        }
        let mut bits: Vec<u64> = window.iter().map(|v| v.to_bits()).collect();
        radsort::sort(&mut bits);
        let mut runs: Vec<(u64, usize)> = Vec::new();
        for b in bits {
            match runs.last_mut() {
                Some((last, n)) if *last == b => *n += 1,
                _ => runs.push((b, 1)),
            }
        }
        if runs.len() * 16 < window.len() * 8 {
            out.push(1);
            write_len(out, runs.len());
            for (b, n) in runs {
                f64::from_bits(b).write(out);
                write_len(out, n);
            }
        } else {
            plain(out);
        }
    }

    fn read_window(input: &mut &[u8]) -> Option<Vec<Self>> {
        match take(input, 1)? {
            [0] => read_plain(input),
            [1] => read_counted(input, MAX_NUMERIC_ROWS),
            _ => None,
        }
    }
}

/// The most values a numeric window read from its counted form may hold (2^27, 1 GiB of
/// `f64`: what the largest `bytea` could hold as plain values).
pub const MAX_NUMERIC_ROWS: usize = 1 << 27;

impl Value for String {
    fn write(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
    fn read(input: &mut &[u8]) -> Option<Self> {
        let n = read_len(input)?;
        take(input, n).and_then(|b| String::from_utf8(b.to_vec()).ok())
    }

    /// Categories as (value, count) pairs in order of first appearance: the byte form grows
    /// with the number of distinct categories, not of rows (Citus ships partial states from
    /// its workers in this form). The categorical tests only count, so the order of the rows
    /// is not kept.
    fn write_window(window: &[Self], out: &mut Vec<u8>) {
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for v in window {
            let i = *index.entry(v.as_str()).or_insert_with(|| {
                counts.push((v.as_str(), 0));
                counts.len() - 1
            });
            counts[i].1 += 1;
        }
        write_len(out, counts.len());
        for (v, n) in counts {
            write_len(out, v.len());
            out.extend_from_slice(v.as_bytes());
            write_len(out, n);
        }
    }

    fn read_window(input: &mut &[u8]) -> Option<Vec<Self>> {
        read_counted(input, MAX_CATEGORICAL_ROWS)
    }
}

/// A window written as (value, count) pairs, expanded. A count from corrupt bytes must be an
/// error, never an abort on allocation (nor an overcommitted allocation that the kernel's OOM
/// killer ends): a window holds at most `max` values.
fn read_counted<T: Value + Clone>(input: &mut &[u8], max: usize) -> Option<Vec<T>> {
    let k = read_len(input)?;
    let mut w: Vec<T> = Vec::new();
    for _ in 0..k {
        let v = T::read(input)?;
        let n = read_len(input)?;
        if w.len().checked_add(n)? > max {
            return None;
        }
        w.try_reserve(n).ok()?;
        w.extend(std::iter::repeat_n(v, n));
    }
    Some(w)
}

/// The most values a categorical window read from bytes may hold (2^26, about 67 million): the
/// categories are held expanded in memory, at least 24 bytes a value.
pub const MAX_CATEGORICAL_ROWS: usize = 1 << 26;

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

const FORMAT: u8 = 4;

impl<T: Value> Samples<T> {
    /// Byte form: format byte, the number of methods and each method (length-prefixed) with its
    /// threshold flag and value, the two NULL counts, then both windows (`Value::write_window`:
    /// numbers in order or as distinct values with counts, categories as counts); little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        write_len(&mut out, self.methods.len());
        for (m, t) in &self.methods {
            m.write(&mut out);
            out.push(u8::from(t.is_some()));
            t.unwrap_or(0.0).write(&mut out);
        }
        for n in self.nulls {
            write_len(&mut out, n as usize);
        }
        for window in [&self.reference, &self.current] {
            T::write_window(window, &mut out);
        }
        out
    }

    pub fn from_bytes(mut input: &[u8]) -> Result<Self, String> {
        let bad = || "truncated or corrupt drift state".to_string();
        let input = &mut input;
        if take(input, 1) != Some(&[FORMAT][..]) {
            return Err("unknown drift state format".into());
        }
        let n_methods = read_len(input).ok_or_else(bad)?;
        let mut methods = Vec::with_capacity(n_methods.min(input.len()));
        for _ in 0..n_methods {
            let m = String::read(input).ok_or_else(bad)?;
            let has_threshold = take(input, 1).ok_or_else(bad)?[0] == 1;
            let t = f64::read(input).ok_or_else(bad)?;
            methods.push((m, has_threshold.then_some(t)));
        }
        let mut nulls = [0u64; 2];
        for n in &mut nulls {
            *n = read_len(input).ok_or_else(bad)? as u64;
        }
        let mut windows = [Vec::new(), Vec::new()];
        for w in &mut windows {
            *w = T::read_window(input).ok_or_else(bad)?;
        }
        if !input.is_empty() {
            return Err(bad());
        }
        let [reference, current] = windows;
        Ok(Samples {
            reference,
            current,
            methods,
            nulls,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_categorical_count_beyond_the_limit_is_refused_not_allocated() {
        let mut s = Samples::<String>::default();
        s.add("qz".into(), false);
        s.add("qz".into(), false);
        let b = s.to_bytes();
        // The count of "qz" follows its bytes in the reference window.
        let at = b.windows(2).position(|w| w == b"qz").unwrap() + 2;
        assert_eq!(u64::from_le_bytes(b[at..at + 8].try_into().unwrap()), 2);
        let with_count = |n: u64| {
            let mut c = b.clone();
            c[at..at + 8].copy_from_slice(&n.to_le_bytes());
            Samples::<String>::from_bytes(&c)
        };
        assert_eq!(with_count(5).unwrap().reference.len(), 5);
        assert!(with_count(MAX_CATEGORICAL_ROWS as u64 + 1).is_err());
        assert!(with_count(u64::MAX).is_err());
    }

    #[test]
    fn round_trip_and_merge() {
        let mut a = Samples::<f64> {
            methods: vec![("psi".into(), Some(0.2)), ("ks".into(), None)],
            ..Default::default()
        };
        a.add(1.5, false);
        a.add(f64::NAN, true);
        a.add_null(true);
        let back = Samples::<f64>::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(back.reference, vec![1.5]);
        assert!(back.current[0].is_nan());
        assert_eq!(back.methods, a.methods);
        assert_eq!(back.nulls, [0, 1]);
        let mut s = Samples::<String>::default();
        s.add("x".into(), true);
        let mut t = Samples::<String> {
            methods: vec![("chisquare".into(), None)],
            ..Default::default()
        };
        t.add("y".into(), false);
        t.add_null(false);
        s.merge(&t);
        assert_eq!(
            (s.reference.len(), s.current.len(), s.methods.len(), s.nulls),
            (1, 1, 1, [1, 0])
        );
        assert_eq!(Samples::<String>::from_bytes(&s.to_bytes()), Ok(s));
    }

    #[test]
    fn categorical_byte_form_grows_with_categories_not_rows() {
        let make = |rows: usize| {
            let mut s = Samples::<String>::default();
            for i in 0..rows {
                s.add(["ok", "warn", "fail"][i % 3].to_string(), i % 2 == 0);
            }
            s
        };
        let (small, big) = (make(300), make(300_000));
        assert_eq!(small.to_bytes().len(), big.to_bytes().len());
        let back = Samples::<String>::from_bytes(&big.to_bytes()).unwrap();
        let count = |w: &[String], v: &str| w.iter().filter(|x| *x == v).count();
        for v in ["ok", "warn", "fail"] {
            assert_eq!(count(&back.reference, v), count(&big.reference, v));
            assert_eq!(count(&back.current, v), count(&big.current, v));
        }
        // The same test on the windows as written and as read back (order is not kept).
        assert_eq!(back.test_all()[0], big.test_all()[0]);
        // A corrupt count is an error, not an allocation of 2^64 strings.
        let mut bytes = small.to_bytes();
        let at = bytes.len() - 8;
        bytes[at..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Samples::<String>::from_bytes(&bytes).is_err());
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
        // A window length, or a count of one distinct value, of 2^64 - 1: errors, no allocation.
        for tag in [0u8, 1] {
            let mut huge = vec![FORMAT];
            write_len(&mut huge, 0);
            write_len(&mut huge, 0);
            write_len(&mut huge, 0);
            huge.push(tag);
            if tag == 1 {
                write_len(&mut huge, 1);
                huge.extend_from_slice(&1.5f64.to_le_bytes());
            }
            huge.extend_from_slice(&u64::MAX.to_le_bytes());
            assert!(Samples::<f64>::from_bytes(&huge).is_err());
        }
        // The largest count allowed is read; one more is refused.
        let counted = |n: u64| {
            let mut b = vec![FORMAT];
            write_len(&mut b, 0);
            write_len(&mut b, 0);
            write_len(&mut b, 0);
            b.push(1);
            write_len(&mut b, 1);
            b.extend_from_slice(&2.0f64.to_le_bytes());
            b.extend_from_slice(&n.to_le_bytes());
            b.push(0);
            write_len(&mut b, 0);
            Samples::<f64>::from_bytes(&b)
        };
        assert_eq!(counted(3).unwrap().reference, vec![2.0; 3]);
        assert!(counted(MAX_NUMERIC_ROWS as u64 + 1).is_err());
        // An unknown window tag is an error.
        let mut b = vec![FORMAT];
        for _ in 0..3 {
            write_len(&mut b, 0);
        }
        b.push(2);
        write_len(&mut b, 0);
        assert!(Samples::<f64>::from_bytes(&b).is_err());
    }

    fn sorted_bits(w: &[f64]) -> Vec<u64> {
        let mut b: Vec<u64> = w.iter().map(|v| v.to_bits()).collect();
        b.sort_unstable();
        b
    }

    #[test]
    fn numeric_byte_form_grows_with_distinct_values_not_rows() {
        // A sensor read at a resolution of 0.1 over 0..50: 500 distinct values.
        let make = |rows: usize| {
            let mut s = Samples::<f64>::default();
            for i in 0..rows {
                let v = ((i * 7919) % 500) as f64 / 10.0 + if i % 2 == 0 { 3.0 } else { 0.0 };
                s.add(v, i % 2 == 0);
            }
            s
        };
        let (small, big) = (make(20_000), make(2_000_000));
        assert_eq!(small.to_bytes().len(), big.to_bytes().len());
        let back = Samples::<f64>::from_bytes(&big.to_bytes()).unwrap();
        assert_eq!(sorted_bits(&back.reference), sorted_bits(&big.reference));
        assert_eq!(sorted_bits(&back.current), sorted_bits(&big.current));
        // Values that never repeat keep the plain form: 8 bytes a value.
        let mut c = Samples::<f64>::default();
        for i in 0..1000 {
            c.add(f64::from(i) / 7.0, i % 2 == 0);
        }
        let plain = c.to_bytes().len();
        for i in 1000..2000 {
            c.add(f64::from(i) / 7.0, i % 2 == 0);
        }
        assert_eq!(c.to_bytes().len() - plain, 8 * 1000);
        let back = Samples::<f64>::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!((back.reference, back.current), (c.reference, c.current));
    }

    proptest::proptest! {
        /// Every method gives the same result on the windows as written and as read back,
        /// whichever form the bytes took (values from a small set repeat; NaN, infinities and
        /// both zeros included).
        #[test]
        fn every_method_is_unchanged_by_the_byte_form(
            r in proptest::collection::vec(0usize..40, 1..300),
            c in proptest::collection::vec(0usize..40, 1..300),
            spread in 1usize..40,
        ) {
            let pool = |i: usize| -> f64 {
                match i % spread {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    3 => f64::INFINITY,
                    k => (k as f64) * 0.37 - 4.0,
                }
            };
            let mut s = Samples::<f64> {
                methods: crate::METHODS.iter().map(|m| (m.to_string(), None)).collect(),
                ..Default::default()
            };
            r.iter().for_each(|&i| s.add(pool(i), false));
            c.iter().for_each(|&i| s.add(pool(i), true));
            let back = Samples::<f64>::from_bytes(&s.to_bytes()).unwrap();
            proptest::prop_assert_eq!(sorted_bits(&back.reference), sorted_bits(&s.reference));
            proptest::prop_assert_eq!(sorted_bits(&back.current), sorted_bits(&s.current));
            proptest::prop_assert_eq!(format!("{:?}", back.test_all()), format!("{:?}", s.test_all()));
        }
    }

    #[test]
    fn test_uses_the_given_threshold() {
        let mut s = Samples::<f64> {
            methods: vec![("wasserstein".into(), Some(1e9))],
            ..Default::default()
        };
        for i in 0..50 {
            s.add(f64::from(i), false);
            s.add(f64::from(i) + 100.0, true);
        }
        let r = s.test().unwrap().result;
        assert!(!r.drifted && r.threshold == 1e9);
        s.methods[0].1 = None;
        assert!(s.test().unwrap().result.drifted);
        // Several methods on one state give each method's own numbers.
        s.methods.push(("ks".into(), None));
        let all = s.test_all();
        let ks = crate::numeric_drift("ks", &s.reference, &s.current).unwrap();
        assert_eq!(all[1].as_ref().unwrap(), &ks);
        assert_eq!(all.len(), 2);
    }
}
