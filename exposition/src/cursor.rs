//! A byte cursor over one line: names, label sets, quoted strings and bare tokens. Every
//! step moves forward, so scanning a line is linear in its length.
//!
//! The cursor only stops after ASCII bytes or at the end of the line, so its position is
//! always a `char` boundary and slicing at it cannot fail.

use crate::error::{ErrorKind, excerpt};
use perch_remote_write::Label;

/// How strict the syntax of a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Text 0.0.4: blanks (spaces and tabs) allowed around tokens and inside `{}`, a
    /// trailing comma allowed in label sets, unknown escapes in label values kept verbatim
    /// (as Prometheus does).
    Text004,
    /// OpenMetrics 1.0: exactly one space between tokens, none inside `{}`, only the
    /// escapes `\\`, `\"` and `\n`.
    OpenMetrics1,
}

#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

fn is_metric_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_metric_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(&b) if is_label_name_start(b))
        && bytes.iter().all(|&b| is_label_name_char(b))
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a str) -> Self {
        Cursor { line, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// The unread rest of the line.
    pub(crate) fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or("")
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `text` if it comes next.
    pub(crate) fn eat_str(&mut self, text: &str) -> bool {
        if self.rest().starts_with(text) {
            self.pos += text.len();
            true
        } else {
            false
        }
    }

    /// Consumes `b` or fails with [`ErrorKind::Expected`].
    pub(crate) fn expect(&mut self, b: u8, expected: &'static str) -> Result<(), ErrorKind> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.expected(expected))
        }
    }

    /// Skips spaces and tabs; returns how many.
    pub(crate) fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// An [`ErrorKind::Expected`] describing what is at the cursor.
    pub(crate) fn expected(&self, expected: &'static str) -> ErrorKind {
        let found = match self.rest().chars().next() {
            None => "end of line".to_owned(),
            Some(c) => format!("`{}`", c.escape_debug()),
        };
        ErrorKind::Expected { expected, found }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(b) if keep(b)) {
            self.pos += 1;
        }
        self.line.get(start..self.pos).unwrap_or("")
    }

    /// A metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub(crate) fn metric_name(&mut self, expected: &'static str) -> Result<&'a str, ErrorKind> {
        match self.peek() {
            Some(b) if is_metric_name_start(b) => Ok(self.take_while(is_metric_name_char)),
            _ => Err(self.expected(expected)),
        }
    }

    /// A label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self, expected: &'static str) -> Result<&'a str, ErrorKind> {
        match self.peek() {
            Some(b) if is_label_name_start(b) => Ok(self.take_while(is_label_name_char)),
            _ => Err(self.expected(expected)),
        }
    }

    /// Everything up to the next space (and, in text 0.0.4, tab) or the end of the line.
    pub(crate) fn token(&mut self, dialect: Dialect) -> &'a str {
        match dialect {
            Dialect::Text004 => self.take_while(|b| b != b' ' && b != b'\t'),
            Dialect::OpenMetrics1 => self.take_while(|b| b != b' '),
        }
    }

    /// The rest of a quoted label value, the opening `"` already consumed; consumes the
    /// closing `"`. Unescapes `\\`, `\"` and `\n`.
    fn quoted(&mut self, dialect: Dialect) -> Result<String, ErrorKind> {
        let bytes = self.line.as_bytes();
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            match bytes.get(self.pos) {
                None => return Err(ErrorKind::UnterminatedLabelValue),
                Some(b'"') => {
                    out.push_str(self.line.get(run..self.pos).unwrap_or(""));
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(self.line.get(run..self.pos).unwrap_or(""));
                    let unescaped = match bytes.get(self.pos + 1) {
                        Some(b'\\') => '\\',
                        Some(b'"') => '"',
                        Some(b'n') => '\n',
                        None => return Err(ErrorKind::UnterminatedLabelValue),
                        Some(_) if dialect == Dialect::Text004 => {
                            // Kept verbatim: the backslash now, the next character as
                            // ordinary text on the next turn.
                            out.push('\\');
                            self.pos += 1;
                            run = self.pos;
                            continue;
                        }
                        Some(_) => {
                            let escape = self
                                .line
                                .get(self.pos + 1..)
                                .and_then(|s| s.chars().next())
                                .map(String::from)
                                .unwrap_or_default();
                            return Err(ErrorKind::InvalidEscape { escape });
                        }
                    };
                    out.push(unescaped);
                    self.pos += 2;
                    run = self.pos;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// The rest of a label set, the opening `{` already consumed; consumes the closing `}`.
    /// Labels come back in their written order, duplicates included.
    pub(crate) fn label_set(&mut self, dialect: Dialect) -> Result<Vec<Label>, ErrorKind> {
        let mut labels = Vec::new();
        let text = dialect == Dialect::Text004;
        loop {
            if text {
                self.skip_blanks();
            }
            // `{}` is allowed in both; `{a="b",}` only in text 0.0.4.
            if (labels.is_empty() || text) && self.eat(b'}') {
                return Ok(labels);
            }
            if self.at_end() {
                return Err(ErrorKind::UnterminatedLabelSet);
            }
            let name = self.label_name("a label name")?;
            if text {
                self.skip_blanks();
            }
            self.expect(b'=', "`=` after a label name")?;
            if text {
                self.skip_blanks();
            }
            self.expect(b'"', "`\"` to open a label value")?;
            let value = self.quoted(dialect)?;
            labels.push(Label {
                name: name.to_owned(),
                value,
            });
            if text {
                self.skip_blanks();
            }
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(labels);
            }
            if self.at_end() {
                return Err(ErrorKind::UnterminatedLabelSet);
            }
            return Err(self.expected("`,` or `}` after a label value"));
        }
    }
}

/// Unescapes a HELP text: `\\` and `\n` in both formats, `\"` too in OpenMetrics. Other
/// escapes are kept verbatim in text 0.0.4 and are an error in OpenMetrics.
pub(crate) fn unescape_help(text: &str, dialect: Dialect) -> Result<String, ErrorKind> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match (chars.next(), dialect) {
            (Some('\\'), _) => out.push('\\'),
            (Some('n'), _) => out.push('\n'),
            (Some('"'), Dialect::OpenMetrics1) => out.push('"'),
            (Some(other), Dialect::Text004) => {
                out.push('\\');
                out.push(other);
            }
            (None, Dialect::Text004) => out.push('\\'),
            (other, Dialect::OpenMetrics1) => {
                return Err(ErrorKind::InvalidEscape {
                    escape: excerpt(&other.map(String::from).unwrap_or_default()),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(line: &str, dialect: Dialect) -> Result<Vec<(String, String)>, ErrorKind> {
        let mut c = Cursor::new(line);
        assert!(c.eat(b'{'));
        let got = c.label_set(dialect)?;
        assert!(c.at_end(), "left over: {:?}", c.rest());
        Ok(got.into_iter().map(|l| (l.name, l.value)).collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_values_unescape() {
        let got = labels(
            r#"{a="x\\y",b="say \"hi\"",c="l1\nl2",d="",e="ü€"}"#,
            Dialect::OpenMetrics1,
        );
        assert_eq!(
            got,
            Ok(pairs(&[
                ("a", "x\\y"),
                ("b", "say \"hi\""),
                ("c", "l1\nl2"),
                ("d", ""),
                ("e", "ü€")
            ]))
        );
    }

    #[test]
    fn text_is_lenient_openmetrics_strict() {
        let line = r#"{ a = "C:\temp" , b="1", }"#;
        assert_eq!(
            labels(line, Dialect::Text004),
            Ok(pairs(&[("a", "C:\\temp"), ("b", "1")]))
        );
        assert!(labels(line, Dialect::OpenMetrics1).is_err());
        assert_eq!(
            labels(r#"{a="C:\temp"}"#, Dialect::OpenMetrics1),
            Err(ErrorKind::InvalidEscape { escape: "t".into() })
        );
        assert_eq!(
            labels(r#"{a="b",}"#, Dialect::OpenMetrics1),
            Err(ErrorKind::Expected {
                expected: "a label name",
                found: "`}`".into()
            })
        );
        assert_eq!(labels("{}", Dialect::OpenMetrics1), Ok(vec![]));
    }

    #[test]
    fn label_set_errors() {
        for dialect in [Dialect::Text004, Dialect::OpenMetrics1] {
            assert_eq!(
                labels(r#"{a="b"#, dialect),
                Err(ErrorKind::UnterminatedLabelValue)
            );
            assert_eq!(
                labels(r#"{a="b\"#, dialect),
                Err(ErrorKind::UnterminatedLabelValue)
            );
            assert_eq!(
                labels(r#"{a="b""#, dialect),
                Err(ErrorKind::UnterminatedLabelSet)
            );
            assert_eq!(
                labels(r#"{a="b","#, dialect),
                Err(ErrorKind::UnterminatedLabelSet)
            );
            assert_eq!(labels("{", dialect), Err(ErrorKind::UnterminatedLabelSet));
            assert_eq!(
                labels(r#"{1a="b"}"#, dialect),
                Err(ErrorKind::Expected {
                    expected: "a label name",
                    found: "`1`".into()
                })
            );
            assert_eq!(
                labels(r#"{a:b="c"}"#, dialect),
                Err(ErrorKind::Expected {
                    expected: "`=` after a label name",
                    found: "`:`".into()
                })
            );
            assert_eq!(
                labels(r#"{a=b}"#, dialect),
                Err(ErrorKind::Expected {
                    expected: "`\"` to open a label value",
                    found: "`b`".into()
                })
            );
            assert_eq!(
                labels(r#"{a="b"c="d"}"#, dialect),
                Err(ErrorKind::Expected {
                    expected: "`,` or `}` after a label value",
                    found: "`c`".into()
                })
            );
        }
    }

    #[test]
    fn names() {
        let mut c = Cursor::new("job:rate_5m{");
        assert_eq!(c.metric_name("a metric name"), Ok("job:rate_5m"));
        assert_eq!(c.peek(), Some(b'{'));
        let mut c = Cursor::new("9lives");
        assert!(c.metric_name("a metric name").is_err());
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("a:b"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("1a"));
    }

    #[test]
    fn help_escapes() {
        assert_eq!(
            unescape_help(r#"a\\b\nc\"d\t"#, Dialect::Text004).as_deref(),
            Ok("a\\b\nc\\\"d\\t")
        );
        assert_eq!(
            unescape_help(r"trailing\", Dialect::Text004).as_deref(),
            Ok("trailing\\")
        );
        assert_eq!(
            unescape_help(r#"a\\b\nc\"d"#, Dialect::OpenMetrics1).as_deref(),
            Ok("a\\b\nc\"d")
        );
        assert!(unescape_help(r"a\t", Dialect::OpenMetrics1).is_err());
        assert!(unescape_help(r"a\", Dialect::OpenMetrics1).is_err());
    }
}
