//! Minimal, allocation-free CSV output helpers (RFC 4180 quoting, fixed
//! decimal floats) and a tiny parser used by tests and tools.

use std::io::Write;

const POW10: [f64; 16] = [
    1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Largest magnitude of `v·10^d` handled by the integer fast path (2^53).
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Writes `buf` to `out` once it holds 64 KiB, so generators stream with bounded memory.
pub fn flush_if_full<W: Write>(out: &mut W, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.len() >= 1 << 16 {
        out.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

/// Writes what is left in `buf` and flushes `out`.
pub fn finish<W: Write>(out: &mut W, buf: &[u8]) -> std::io::Result<()> {
    out.write_all(buf)?;
    out.flush()
}

/// Number of decimals that gives about `sig` significant digits for values of
/// typical magnitude `magnitude` (clamped to `0..=9`).
pub fn decimals_for(magnitude: f64, sig: i32) -> u32 {
    let m = magnitude.abs();
    if !m.is_finite() || m == 0.0 {
        return 3;
    }
    let exp = m.log10().floor() as i32;
    (sig - 1 - exp).clamp(0, 9) as u32
}

/// Rounds `v` to `decimals` decimal places. The result, printed with
/// [`write_fixed`] and parsed back, is bit-identical.
#[inline]
pub fn quantize(v: f64, decimals: u32) -> f64 {
    let p = POW10[decimals.min(15) as usize];
    let s = (v * p).round();
    if s.abs() < EXACT_LIMIT {
        s / p
    } else {
        v
    }
}

/// Appends `v` with exactly `decimals` decimal places (no exponent).
#[inline]
pub fn write_fixed(out: &mut Vec<u8>, v: f64, decimals: u32) {
    let d = decimals.min(15);
    let p = POW10[d as usize];
    let scaled = (v * p).round();
    if !scaled.is_finite() || scaled.abs() >= EXACT_LIMIT {
        // Rare slow path (huge or non-finite values).
        let _ = write!(out, "{:.*}", d as usize, v);
        return;
    }
    let mut n = scaled as i64;
    if n < 0 {
        out.push(b'-');
        n = -n;
    }
    let n = n as u64;
    let p_int = p as u64;
    write_u64(out, n / p_int);
    if d > 0 {
        out.push(b'.');
        let mut frac = n % p_int;
        let start = out.len();
        out.resize(start + d as usize, b'0');
        let mut i = start + d as usize;
        while frac > 0 {
            i -= 1;
            out[i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
    }
}

/// Appends the decimal representation of `n`.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `field`, quoting it if it contains a comma, quote, CR or LF
/// (embedded quotes are doubled, RFC 4180).
pub fn write_field(out: &mut Vec<u8>, field: &str) {
    if field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for b in field.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

/// Splits one CSV record (without its line terminator) into fields,
/// honouring RFC 4180 quoting. Returns `None` for an unterminated quote.
pub fn parse_record(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_field_start {
            in_quotes = true;
            at_field_start = false;
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            at_field_start = true;
        } else {
            cur.push(c);
            at_field_start = false;
        }
    }
    if in_quotes {
        return None;
    }
    fields.push(cur);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, d: u32) -> String {
        let mut out = Vec::new();
        write_fixed(&mut out, v, d);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn fixed_matches_std_formatting() {
        let mut r = crate::rng::Xoshiro256pp::from_u64(11);
        for _ in 0..20_000 {
            let d = r.int_in(0, 8) as u32;
            let mag = 10f64.powf(r.uniform(-3.0, 6.0));
            let v = quantize(r.sign() * mag * r.unit(), d);
            let got = fixed(v, d);
            let want = format!("{:.*}", d as usize, v);
            // std prints "-0.00" for tiny negatives; we print "0.00" only
            // when the rounded integer is zero.
            let want = if want
                .trim_start_matches('-')
                .bytes()
                .all(|b| b == b'0' || b == b'.')
            {
                want.trim_start_matches('-').to_string()
            } else {
                want
            };
            assert_eq!(got, want, "v={v} d={d}");
            assert_eq!(got.parse::<f64>().ok(), Some(v), "round trip of {got}");
        }
        assert_eq!(fixed(-1.5, 0), "-2");
        assert_eq!(fixed(0.000_5, 3), "0.001");
        assert_eq!(fixed(1234.5678, 2), "1234.57");
        assert_eq!(fixed(-0.0001, 2), "0.00");
    }

    #[test]
    fn decimals_give_six_significant_digits() {
        assert_eq!(decimals_for(1234.0, 6), 2);
        assert_eq!(decimals_for(0.8, 6), 6);
        assert_eq!(decimals_for(12.0, 6), 4);
        assert_eq!(decimals_for(1e9, 6), 0);
    }

    #[test]
    fn quoting_round_trips() {
        let fields = [
            "plain",
            "with, comma",
            "with \"quotes\"",
            "multi\nline",
            "",
            "key (id)=(1) already exists.",
        ];
        let mut line = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            write_field(&mut line, f);
        }
        let line = String::from_utf8(line).expect("utf8");
        assert_eq!(
            line,
            "plain,\"with, comma\",\"with \"\"quotes\"\"\",\"multi\nline\",,key (id)=(1) already exists."
        );
        let parsed = parse_record(&line).expect("well formed");
        assert_eq!(
            parsed,
            fields.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        assert!(parse_record("\"open").is_none());
    }
}
