//! InfluxDB line protocol (as Telegraf and InfluxDB clients send it):
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! Escapes follow InfluxDB's reference: in the measurement, `\,` and `\ `; in tag keys, tag values
//! and field keys, `\,`, `\=` and `\ `; in string field values, `\"` and `\\`. A backslash before
//! any other character is kept as is. Tags become labels; each numeric field (float, `i` integer,
//! `u` unsigned) becomes one point, named after the measurement for a field called `value` and
//! `measurement_field` otherwise. String and boolean fields are not metrics and are skipped (a
//! line with only such fields adds nothing). Timestamps are integers in `precision` (ns by default);
//! absent, the server's time. Blank lines and `#` comments are ignored.

use super::point::{check_metric, check_value, clip, Labels, Precision};
use crate::db::write::Point;

/// What a parse produced: the points and how many non-numeric fields were skipped.
#[derive(Debug, Default)]
pub struct Parsed {
    pub points: Vec<Point>,
    pub skipped_fields: usize,
}

/// Parse a whole body; the first bad line refuses it, with its number (1-based) in the message.
pub fn parse(text: &str, precision: Precision, now: i64) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        parse_line(trimmed, precision, now, &mut out)
            .map_err(|m| format!("line {}: {m}", i + 1))?;
    }
    Ok(out)
}

/// Read up to an unescaped byte of `stops`, unescaping `escapable` characters; returns the text
/// and the index of the stop (or the end).
fn read_token(s: &str, start: usize, stops: &[u8], escapable: &[u8]) -> (String, usize) {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = start;
    let mut run = start;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() && escapable.contains(&b[i + 1]) {
            out.push_str(&s[run..i]);
            out.push(b[i + 1] as char);
            i += 2;
            run = i;
            continue;
        }
        if stops.contains(&c) {
            break;
        }
        i += 1;
    }
    out.push_str(&s[run..i]);
    (out, i)
}

enum FieldValue {
    Number(f64),
    NotNumeric,
}

fn parse_line(line: &str, precision: Precision, now: i64, out: &mut Parsed) -> Result<(), String> {
    let b = line.as_bytes();
    // Measurement.
    let (measurement, mut i) = read_token(line, 0, b",  ".as_slice(), b", ".as_slice());
    if measurement.is_empty() {
        return Err("the measurement name is empty".into());
    }
    // Tags.
    let mut tags: Vec<(String, String)> = Vec::new();
    while i < b.len() && b[i] == b',' {
        let (key, j) = read_token(line, i + 1, b",= ".as_slice(), b",= ".as_slice());
        if j >= b.len() || b[j] != b'=' {
            return Err(format!(
                "tag \"{}\" has no value (expected key=value)",
                clip(&key)
            ));
        }
        let (value, k) = read_token(line, j + 1, b", ".as_slice(), b",= ".as_slice());
        if key.is_empty() {
            return Err("a tag has an empty key".into());
        }
        if value.is_empty() {
            return Err(format!("tag \"{}\" has an empty value", clip(&key)));
        }
        tags.push((key, value));
        i = k;
    }
    if i >= b.len() || b[i] != b' ' {
        return Err("expected a space and fields after the measurement and tags".into());
    }
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    // Fields.
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    loop {
        let (key, j) = read_token(line, i, b",= ".as_slice(), b",= ".as_slice());
        if key.is_empty() {
            return Err("a field has an empty key".into());
        }
        if j >= b.len() || b[j] != b'=' {
            return Err(format!(
                "field \"{}\" has no value (expected key=value)",
                clip(&key)
            ));
        }
        let (value, k) =
            parse_field_value(line, j + 1).map_err(|m| format!("field \"{}\": {m}", clip(&key)))?;
        fields.push((key, value));
        i = k;
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        break;
    }
    // Timestamp.
    let rest = line[i..].trim();
    let time_us = if rest.is_empty() {
        now
    } else {
        let t: i128 = rest
            .parse::<i64>()
            .map_err(|_| format!("the timestamp \"{}\" is not an integer", clip(rest)))?
            as i128;
        precision
            .int_to_us(t)
            .ok_or_else(|| format!("the timestamp {t} is out of range for precision {precision:?} (years 0001 to 9999)"))?
    };
    let mut labels = Labels::new();
    for (k, v) in &tags {
        labels.insert(k, v)?;
    }
    let labels = labels.finish();
    for (key, value) in fields {
        let FieldValue::Number(v) = value else {
            out.skipped_fields += 1;
            continue;
        };
        check_value(v)?;
        let metric = if key == "value" {
            measurement.clone()
        } else {
            format!("{measurement}_{key}")
        };
        check_metric(&metric)?;
        out.points.push(Point {
            time_us,
            metric,
            labels: labels.clone(),
            value: v,
        });
    }
    Ok(())
}

/// A field value starting at `start`: a quoted string, a boolean or a number; returns it and the
/// index after it.
fn parse_field_value(line: &str, start: usize) -> Result<(FieldValue, usize), String> {
    let b = line.as_bytes();
    if start >= b.len() {
        return Err("the value is missing".into());
    }
    if b[start] == b'"' {
        let mut i = start + 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Ok((FieldValue::NotNumeric, i + 1)),
                _ => i += 1,
            }
        }
        return Err("unterminated string value".into());
    }
    let end = line[start..]
        .find([',', ' '])
        .map(|p| start + p)
        .unwrap_or(b.len());
    let text = &line[start..end];
    if text.is_empty() {
        return Err("the value is missing".into());
    }
    match text {
        "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE" => {
            return Ok((FieldValue::NotNumeric, end))
        }
        _ => {}
    }
    let number = if let Some(int) = text.strip_suffix('i') {
        int.parse::<i64>()
            .map(|v| v as f64)
            .map_err(|_| format!("\"{}\" is not an integer", clip(text)))?
    } else if let Some(uint) = text.strip_suffix('u') {
        uint.parse::<u64>()
            .map(|v| v as f64)
            .map_err(|_| format!("\"{}\" is not an unsigned integer", clip(text)))?
    } else {
        // Digits, sign, point and exponent only: Rust would also read "inf" and "NaN".
        if !text
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
        {
            return Err(format!(
                "\"{}\" is not a number, a boolean or a quoted string",
                clip(text)
            ));
        }
        let v = text
            .parse::<f64>()
            .map_err(|_| format!("\"{}\" is not a number", clip(text)))?;
        if !v.is_finite() {
            return Err(format!(
                "value {} is out of range (values must be finite)",
                clip(text)
            ));
        }
        v
    };
    Ok((FieldValue::Number(number), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Parsed {
        match parse(s, Precision::Ns, 7) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn reads_tags_fields_and_timestamps() {
        let p = ok("cpu,host=a,region=eu value=1.5,idle=98i,count=3u 1700000000000000000\n\n# comment\nmem free=2 \n");
        assert_eq!(p.points.len(), 4);
        assert_eq!(p.points[0].metric, "cpu");
        assert_eq!(p.points[0].labels, r#"{"host":"a","region":"eu"}"#);
        assert_eq!(p.points[0].time_us, 1_700_000_000_000_000);
        assert_eq!(p.points[1].metric, "cpu_idle");
        assert_eq!(p.points[1].value, 98.0);
        assert_eq!(p.points[2].value, 3.0);
        assert_eq!(p.points[3].metric, "mem_free");
        assert_eq!(p.points[3].time_us, 7);
        assert_eq!(p.points[3].labels, "{}");
    }

    #[test]
    fn escapes() {
        let p = ok(
            r#"my\ meas\,ure,tag\ key=tag\,val\=ue field\=x=1,s="a \"quoted\", string",b=t 1000"#,
        );
        assert_eq!(p.points.len(), 1);
        assert_eq!(p.points[0].metric, "my meas,ure_field=x");
        assert_eq!(p.points[0].labels, r#"{"tag key":"tag,val=ue"}"#);
        assert_eq!(p.points[0].time_us, 1);
        assert_eq!(p.skipped_fields, 2);
    }

    #[test]
    fn refuses_bad_lines() {
        for bad in [
            "cpu",
            "cpu value=",
            "cpu value=abc",
            "cpu value=NaN",
            "cpu value=inf",
            "cpu value=1e999",
            "cpu,host value=1",
            "cpu,host= value=1",
            "cpu value=1 notatime",
            "cpu value=1 99999999999999999999",
            "cpu s=\"unterminated",
            ",host=a value=1",
            "cpu value=1i5",
        ] {
            assert!(parse(bad, Precision::Ns, 0).is_err(), "accepted {bad:?}");
        }
        let e = parse("cpu value=1\ncpu value=x\n", Precision::Ns, 0)
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn precision_applies_to_timestamps() {
        let p = match parse("cpu value=1 1700000000", Precision::S, 0) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(p.points[0].time_us, 1_700_000_000_000_000);
    }
}
