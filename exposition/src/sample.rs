//! One sample line: `name{labels} value [timestamp]`, in OpenMetrics optionally followed by
//! an exemplar ` # {labels} value [timestamp]`, which is checked and dropped.

use crate::cursor::{Cursor, Dialect};
use crate::error::{ErrorKind, excerpt};
use perch_remote_write::Label;

/// A parsed sample line, labels as written (unsorted, duplicates not yet checked).
#[derive(Debug, PartialEq)]
pub(crate) struct SampleLine<'a> {
    pub(crate) name: &'a str,
    pub(crate) labels: Vec<Label>,
    pub(crate) value: f64,
    /// Milliseconds since the Unix epoch, if the line has a timestamp.
    pub(crate) timestamp_ms: Option<i64>,
}

/// A sample value: a decimal or exponent number, `NaN`, `Inf`, `+Inf` or `-Inf` (ASCII
/// case-insensitive, `Infinity` too, as Go's `strconv.ParseFloat` and the OpenMetrics ABNF
/// allow).
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    // Rust's grammar matches Go's decimal one except that it has no hex floats and no
    // `_`, which neither format allows either.
    text.parse::<f64>().ok()
}

/// The next token as a sample value.
fn value(c: &mut Cursor<'_>, dialect: Dialect) -> Result<f64, ErrorKind> {
    let text = c.token(dialect);
    if text.is_empty() {
        return Err(c.expected("a sample value"));
    }
    parse_float(text).ok_or_else(|| ErrorKind::InvalidValue {
        text: excerpt(text),
    })
}

/// The next token as a timestamp, converted to milliseconds by `parse`.
fn timestamp(
    c: &mut Cursor<'_>,
    dialect: Dialect,
    parse: fn(&str) -> Result<i64, ErrorKind>,
) -> Result<i64, ErrorKind> {
    let text = c.token(dialect);
    if text.is_empty() {
        return Err(c.expected("a timestamp"));
    }
    parse(text)
}

fn invalid_timestamp(text: &str) -> ErrorKind {
    ErrorKind::InvalidTimestamp {
        text: excerpt(text),
    }
}

/// A text 0.0.4 timestamp: integer milliseconds.
fn parse_timestamp_ms(text: &str) -> Result<i64, ErrorKind> {
    text.parse::<i64>().map_err(|_| invalid_timestamp(text))
}

/// An OpenMetrics timestamp: seconds, possibly with a fraction or exponent, rounded to the
/// nearest millisecond; must be finite and fit an `i64` of milliseconds.
fn parse_timestamp_seconds(text: &str) -> Result<i64, ErrorKind> {
    let seconds = parse_float(text).ok_or_else(|| invalid_timestamp(text))?;
    let ms = (seconds * 1000.0).round();
    // -2^63 is exact as an f64; 2^63 is the first value out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if ms.is_finite() && (-LIMIT..LIMIT).contains(&ms) {
        Ok(ms as i64)
    } else {
        Err(invalid_timestamp(text))
    }
}

/// Parses a sample line of either format.
pub(crate) fn parse_sample(line: &str, dialect: Dialect) -> Result<SampleLine<'_>, ErrorKind> {
    match dialect {
        Dialect::Text004 => parse_text(line),
        Dialect::OpenMetrics1 => parse_openmetrics(line),
    }
}

fn parse_text(line: &str) -> Result<SampleLine<'_>, ErrorKind> {
    let mut c = Cursor::new(line);
    c.skip_blanks();
    let name = c.metric_name("a metric name")?;
    let mut labels = Vec::new();
    let blanks = c.skip_blanks();
    if c.eat(b'{') {
        labels = c.label_set(Dialect::Text004)?;
        c.skip_blanks();
    } else if blanks == 0 && !c.at_end() {
        return Err(c.expected("`{` or a space after the metric name"));
    }
    let value = value(&mut c, Dialect::Text004)?;
    c.skip_blanks();
    let mut timestamp_ms = None;
    if !c.at_end() {
        timestamp_ms = Some(timestamp(&mut c, Dialect::Text004, parse_timestamp_ms)?);
        c.skip_blanks();
        if !c.at_end() {
            return Err(c.expected("the end of the line after the timestamp"));
        }
    }
    Ok(SampleLine {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

fn parse_openmetrics(line: &str) -> Result<SampleLine<'_>, ErrorKind> {
    let om = Dialect::OpenMetrics1;
    let mut c = Cursor::new(line);
    let name = c.metric_name("a metric name")?;
    let mut labels = Vec::new();
    if c.eat(b'{') {
        labels = c.label_set(om)?;
    }
    c.expect(b' ', "a space before the sample value")?;
    let value = value(&mut c, om)?;
    let mut timestamp_ms = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'#') {
            timestamp_ms = Some(timestamp(&mut c, om, parse_timestamp_seconds)?);
            if c.at_end() {
                return Ok(SampleLine {
                    name,
                    labels,
                    value,
                    timestamp_ms,
                });
            }
            c.expect(b' ', "a space or the end of the line after the timestamp")?;
        }
        if !c.eat_str("# ") {
            return Err(c.expected("`# ` to start an exemplar"));
        }
        skip_exemplar(&mut c)?;
    }
    if !c.at_end() {
        return Err(c.expected("the end of the line"));
    }
    Ok(SampleLine {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// `{labels} value [timestamp]` of an exemplar, after its `# `: checked, then dropped.
fn skip_exemplar(c: &mut Cursor<'_>) -> Result<(), ErrorKind> {
    let om = Dialect::OpenMetrics1;
    c.expect(b'{', "`{` to open the exemplar's labels")?;
    c.label_set(om)?;
    c.expect(b' ', "a space before the exemplar value")?;
    value(c, om)?;
    if c.eat(b' ') {
        timestamp(c, om, parse_timestamp_seconds)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str, dialect: Dialect) -> (String, Vec<(String, String)>, f64, Option<i64>) {
        match parse_sample(line, dialect) {
            Ok(s) => (
                s.name.to_owned(),
                s.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                s.value,
                s.timestamp_ms,
            ),
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    #[test]
    fn values() {
        for (text, want) in [
            ("1", 1.0),
            ("-0.5", -0.5),
            ("1.5e3", 1500.0),
            ("1E-3", 0.001),
            ("+Inf", f64::INFINITY),
            ("Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("+inf", f64::INFINITY),
            ("8.0781934592e+10", 80781934592.0),
        ] {
            assert_eq!(parse_float(text), Some(want), "{text}");
        }
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        for bad in ["", "0x10", "1_000", "one", "1,5", " 1", "--1"] {
            assert_eq!(parse_float(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_lines() {
        let t = Dialect::Text004;
        assert_eq!(ok("up 1", t), ("up".into(), vec![], 1.0, None));
        assert_eq!(
            ok("  up\t1\t 1700000000000  ", t),
            ("up".into(), vec![], 1.0, Some(1_700_000_000_000))
        );
        assert_eq!(ok("up{a=\"b\"}2", t).1, vec![("a".into(), "b".into())]);
        assert_eq!(ok("up -1 -5", t).3, Some(-5));
        assert_eq!(
            parse_sample("up-1 1", t),
            Err(ErrorKind::Expected {
                expected: "`{` or a space after the metric name",
                found: "`-`".into()
            })
        );
        assert_eq!(
            parse_sample("up", t),
            Err(ErrorKind::Expected {
                expected: "a sample value",
                found: "end of line".into()
            })
        );
        assert_eq!(
            parse_sample("up 1 1.5", t),
            Err(ErrorKind::InvalidTimestamp { text: "1.5".into() })
        );
        assert!(matches!(
            parse_sample("up 1 2 3", t),
            Err(ErrorKind::Expected { .. })
        ));
        assert!(matches!(
            parse_sample("up 1 # {a=\"b\"} 1", t),
            Err(ErrorKind::InvalidTimestamp { .. })
        ));
    }

    #[test]
    fn openmetrics_lines() {
        let om = Dialect::OpenMetrics1;
        assert_eq!(ok("up 1", om), ("up".into(), vec![], 1.0, None));
        assert_eq!(ok("up 1 1520879607.789", om).3, Some(1_520_879_607_789));
        assert_eq!(ok("up 1 1520879607", om).3, Some(1_520_879_607_000));
        assert_eq!(ok("up 1 1.5e9", om).3, Some(1_500_000_000_000));
        assert_eq!(ok("up 1 -0.001", om).3, Some(-1));
        let with_exemplar =
            r#"foo_bucket{le="0.1"} 8 # {trace_id="KOO5S4vxi0o"} 0.067 1520879606.2"#;
        assert_eq!(ok(with_exemplar, om).2, 8.0);
        let both = r#"foo_total 17 1520879607 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789"#;
        assert_eq!(ok(both, om).3, Some(1_520_879_607_000));
        assert_eq!(ok(r#"foo_total 1 # {} 1"#, om).2, 1.0);
        for bad in [
            " up 1",
            "up  1",
            "up\t1",
            "up 1 ",
            "up 1  2",
            "up 1 2 ",
            "up 1 # ",
            "up 1 #{a=\"b\"} 1",
            "up 1 # {a=\"b\"}",
            "up 1 # {a=\"b\"} x",
            "up 1 # {a=\"b\"} 1 2 3",
            "up 1 NaN",
            "up 1 1e400",
            "up{a=\"b\"}1",
            "up { } 1",
        ] {
            assert!(parse_sample(bad, om).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn long_value_excerpted() {
        let line = format!("up {}", "x".repeat(1000));
        match parse_sample(&line, Dialect::Text004) {
            Err(ErrorKind::InvalidValue { text }) => assert_eq!(text.len(), 43),
            other => panic!("{other:?}"),
        }
    }
}
