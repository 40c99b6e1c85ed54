//! The byte format between the output plugin (writer) and the decoder (reader), side by side.
//!
//! A block is what the plugin emits for (part of) one committed transaction:
//!
//! ```text
//! block  = end_lsn:u64le row*
//! row    = monitor:u16le flags:u8 time_us:i64le value:f64le more:f64le{m} label{n}
//! label  = len:i32le bytes{len}        (len = -1: NULL)
//! flags  = bit 0: time is NULL, bit 1: value is NULL
//! ```
//!
//! `n` is the number of series columns of the row's monitor and `m` the number of its further
//! value columns (a device monitor's; NULL is NaN there), from the `Spec`s both sides share.
//! A malformed block (which only a different plugin version could produce) is an error, never a
//! guess and never a panic.

use super::Spec;

/// Appends rows to a block.
pub(super) struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Append rows to `buf`; the block's [`Writer::header`] goes before the first row (the
    /// plugin writes it when it sends the block).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Writer { buf }
    }

    /// The block header: the commit's end position.
    pub fn header(end_lsn: u64) -> [u8; 8] {
        end_lsn.to_le_bytes()
    }

    /// A row's fixed part; its labels follow with [`Writer::label`].
    pub fn row(&mut self, monitor: u16, time_us: Option<i64>, value: Option<f64>) {
        let flags = u8::from(time_us.is_none()) | (u8::from(value.is_none()) << 1);
        self.buf.extend_from_slice(&monitor.to_le_bytes());
        self.buf.push(flags);
        self.buf
            .extend_from_slice(&time_us.unwrap_or(0).to_le_bytes());
        self.buf
            .extend_from_slice(&value.unwrap_or(0.0).to_le_bytes());
    }

    /// One further value of the current row (a device monitor's; None: NULL, written as NaN),
    /// after [`Writer::row`] and before the labels.
    pub fn more(&mut self, value: Option<f64>) {
        self.buf
            .extend_from_slice(&value.unwrap_or(f64::NAN).to_le_bytes());
    }

    /// One label of the current row (None: NULL). A label longer than i32::MAX bytes cannot
    /// come from PostgreSQL (a varlena is at most 1 GB).
    pub fn label(&mut self, text: Option<&[u8]>) {
        match text {
            None => self.buf.extend_from_slice(&(-1i32).to_le_bytes()),
            Some(b) => {
                let len = i32::try_from(b.len()).unwrap_or(i32::MAX);
                self.buf.extend_from_slice(&len.to_le_bytes());
                self.buf.extend_from_slice(&b[..len as usize]);
            }
        }
    }
}

/// One row as read from a block; its labels stay encoded (a slice of the block), so that rows
/// are grouped by series without decoding or allocating per row.
#[derive(Debug, PartialEq)]
pub(super) struct Point<'a> {
    pub mon: usize,
    pub ts: Option<i64>,
    pub value: Option<f64>,
    /// The further values of a device monitor's row, encoded (8 bytes each; see [`more_values`]).
    pub more: &'a [u8],
    pub labels: &'a [u8],
}

/// The further values of a row ([`Point::more`]).
pub(super) fn more_values(b: &[u8]) -> impl Iterator<Item = f64> + '_ {
    b.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        f64::from_le_bytes(a)
    })
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err("truncated block".into());
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take_array<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(b, N)?);
    Ok(out)
}

/// Parse one block: its commit end position and its rows.
pub(super) fn parse_block<'a>(
    block: &'a [u8],
    specs: &[Spec],
) -> Result<(u64, Vec<Point<'a>>), String> {
    let mut b = block;
    let end = u64::from_le_bytes(take_array(&mut b)?);
    let mut out = Vec::new();
    while !b.is_empty() {
        let mon = usize::from(u16::from_le_bytes(take_array(&mut b)?));
        let spec = specs.get(mon).ok_or("unknown monitor index")?;
        let [flags] = take_array::<1>(&mut b)?;
        if flags > 3 {
            return Err("bad row flags".into());
        }
        let ts = i64::from_le_bytes(take_array(&mut b)?);
        let v = f64::from_le_bytes(take_array(&mut b)?);
        let more = take(
            &mut b,
            spec.more.len().checked_mul(8).ok_or("too many values")?,
        )?;
        let start = b;
        let mut used = 0;
        for _ in &spec.series {
            let len = i32::from_le_bytes(take_array(&mut b)?);
            used += 4;
            if len >= 0 {
                take(&mut b, len as usize)?;
                used += len as usize;
            } else if len != -1 {
                return Err("bad label length".into());
            }
        }
        out.push(Point {
            mon,
            ts: (flags & 1 == 0).then_some(ts),
            value: (flags & 2 == 0).then_some(v),
            more,
            labels: &start[..used],
        });
    }
    Ok((end, out))
}

/// The label texts of an encoded label list (as checked by [`parse_block`]).
pub(super) fn decode_labels(mut b: &[u8]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        b = &b[4..];
        if len < 0 {
            out.push(None);
        } else {
            let n = (len as usize).min(b.len());
            out.push(Some(String::from_utf8_lossy(&b[..n]).into_owned()));
            b = &b[n..];
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;
    use proptest::prelude::*;

    fn specs(series: usize) -> Vec<Spec> {
        vec![
            Spec {
                relid: 1,
                value: "v".into(),
                time: "t".into(),
                series: (0..series).map(|i| format!("s{i}")).collect(),
                log: false,
                more: Vec::new(),
                shards: Vec::new(),
            },
            Spec {
                relid: 2,
                value: String::new(),
                time: String::new(),
                series: vec!["message".into()],
                log: true,
                more: Vec::new(),
                shards: Vec::new(),
            },
            Spec {
                relid: 3,
                value: "a".into(),
                time: "t".into(),
                series: vec!["host".into()],
                log: false,
                more: vec!["b".into(), "c".into()],
                shards: Vec::new(),
            },
        ]
    }

    /// (kind: 0 series, 1 log, 2 device; time; value; labels; message).
    type Row = (
        u8,
        Option<i64>,
        Option<f64>,
        Vec<Option<Vec<u8>>>,
        Option<Vec<u8>>,
    );

    /// A device row's further values, derived from its value (NaN when it has none).
    fn more_of(v: Option<f64>) -> [Option<f64>; 2] {
        [v.map(|x| x * 2.0), None]
    }

    fn row() -> impl Strategy<Value = Row> {
        (
            0u8..3,
            any::<Option<i64>>(),
            any::<Option<f64>>(),
            proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                3,
            ),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        )
    }

    /// The block, and its length after the header and after each row.
    fn write_with_bounds(end: u64, rows: &[Row]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Writer::header(end).to_vec();
        let mut bounds = vec![buf.len()];
        for (kind, ts, v, labels, message) in rows {
            let mut w = Writer::new(&mut buf);
            if *kind == 1 {
                w.row(1, *ts, None);
                w.label(message.as_deref());
            } else if *kind == 2 {
                w.row(2, *ts, *v);
                for m in more_of(*v) {
                    w.more(m);
                }
                w.label(labels[0].as_deref());
            } else {
                w.row(0, *ts, *v);
                for l in labels {
                    w.label(l.as_deref());
                }
            }
            bounds.push(buf.len());
        }
        (buf, bounds)
    }

    fn write(end: u64, rows: &[Row]) -> Vec<u8> {
        write_with_bounds(end, rows).0
    }

    proptest! {
        #[test]
        fn blocks_round_trip(end in any::<u64>(), rows in proptest::collection::vec(row(), 0..20)) {
            let block = write(end, &rows);
            let (got_end, points) = parse_block(&block, &specs(3)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(got_end, end);
            prop_assert_eq!(points.len(), rows.len());
            for (p, (kind, ts, v, labels, message)) in points.iter().zip(&rows) {
                prop_assert_eq!(p.mon, usize::from(*kind));
                prop_assert_eq!(p.ts, *ts);
                let text = |l: &Option<Vec<u8>>| l.as_ref().map(|m| String::from_utf8_lossy(m).into_owned());
                let want: Vec<Option<String>> = if *kind == 1 {
                    prop_assert_eq!(p.value, None);
                    vec![text(message)]
                } else if *kind == 2 {
                    prop_assert_eq!(p.value.map(f64::to_bits), v.map(f64::to_bits));
                    let want_more: Vec<u64> =
                        more_of(*v).iter().map(|m| m.unwrap_or(f64::NAN).to_bits()).collect();
                    prop_assert_eq!(more_values(p.more).map(f64::to_bits).collect::<Vec<_>>(), want_more);
                    vec![text(&labels[0])]
                } else {
                    prop_assert_eq!(p.value.map(f64::to_bits), v.map(f64::to_bits));
                    labels.iter().map(|l| l.as_ref().map(|m| String::from_utf8_lossy(m).into_owned())).collect()
                };
                prop_assert_eq!(decode_labels(p.labels), want);
            }
        }

        #[test]
        fn truncated_or_corrupted_blocks_are_errors_not_panics(
            rows in proptest::collection::vec(row(), 1..10),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let (block, bounds) = write_with_bounds(7, &rows);
            // A prefix that ends between rows holds those rows; any other prefix is refused.
            let at = cut.index(block.len());
            match (parse_block(&block[..at], &specs(3)), bounds.iter().position(|&b| b == at)) {
                (Ok((_, p)), Some(k)) => prop_assert_eq!(p.len(), k),
                (Err(_), None) => {}
                (got, want) => prop_assert!(false, "prefix of {} bytes: {:?} vs {:?}", at, got.map(|(_, p)| p.len()), want),
            }
            // Any byte changed: an error or some rows, never a panic.
            let mut bad = block.clone();
            let i = flip.index(bad.len());
            bad[i] ^= byte | 1;
            let _ = parse_block(&bad, &specs(3));
        }
    }

    #[test]
    fn a_row_of_an_unknown_monitor_is_refused() {
        let mut buf = Writer::header(1).to_vec();
        Writer::new(&mut buf).row(9, Some(1), Some(1.0));
        assert_eq!(
            parse_block(&buf, &specs(3)).err().as_deref(),
            Some("unknown monitor index")
        );
    }
}
