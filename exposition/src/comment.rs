//! Lines starting with `#`: HELP, TYPE, UNIT (OpenMetrics), EOF (OpenMetrics) and, in text
//! 0.0.4 only, free comments.

use crate::cursor::{Cursor, Dialect, unescape_help};
use crate::error::{ErrorKind, excerpt};
use crate::family::MetricType;

/// What a `#` line says.
#[derive(Debug, PartialEq)]
pub(crate) enum Comment<'a> {
    Help {
        name: &'a str,
        text: String,
    },
    Type {
        name: &'a str,
        kind: MetricType,
    },
    Unit {
        name: &'a str,
        unit: &'a str,
    },
    Eof,
    /// A free comment (text 0.0.4), ignored.
    Other,
}

/// Parses a line that starts with `#`.
pub(crate) fn parse_comment(line: &str, dialect: Dialect) -> Result<Comment<'_>, ErrorKind> {
    match dialect {
        Dialect::Text004 => parse_text(line),
        Dialect::OpenMetrics1 => parse_openmetrics(line),
    }
}

fn unknown_type(text: &str) -> ErrorKind {
    ErrorKind::UnknownType {
        text: excerpt(text),
    }
}

/// `#[ \t]*HELP[ \t]+name([ \t]+text)?` and `#[ \t]*TYPE[ \t]+name[ \t]+type[ \t]*`; any
/// other `#` line is a comment.
fn parse_text(line: &str) -> Result<Comment<'_>, ErrorKind> {
    let text = Dialect::Text004;
    let mut c = Cursor::new(line);
    c.eat(b'#');
    c.skip_blanks();
    let keyword = c.token(text);
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(Comment::Other);
    }
    c.skip_blanks();
    let name = c.metric_name("a metric name")?;
    if !c.at_end() && c.skip_blanks() == 0 {
        return Err(c.expected("a space after the metric name"));
    }
    if keyword == "HELP" {
        let text = unescape_help(c.rest(), text)?;
        return Ok(Comment::Help { name, text });
    }
    let type_text = c.token(text);
    if type_text.is_empty() {
        return Err(c.expected("a metric type"));
    }
    let kind = MetricType::parse(type_text, text).ok_or_else(|| unknown_type(type_text))?;
    c.skip_blanks();
    if !c.at_end() {
        return Err(c.expected("the end of the line after the metric type"));
    }
    Ok(Comment::Type { name, kind })
}

/// `# HELP name[ text]`, `# TYPE name type`, `# UNIT name[ unit]` or `# EOF`, single
/// spaces; nothing else.
fn parse_openmetrics(line: &str) -> Result<Comment<'_>, ErrorKind> {
    let om = Dialect::OpenMetrics1;
    if line == "# EOF" {
        return Ok(Comment::Eof);
    }
    let mut c = Cursor::new(line);
    let keyword = if c.eat_str("# HELP ") {
        "HELP"
    } else if c.eat_str("# TYPE ") {
        "TYPE"
    } else if c.eat_str("# UNIT ") {
        "UNIT"
    } else {
        return Err(ErrorKind::InvalidComment);
    };
    let name = c.metric_name("a metric name")?;
    let has_text = c.eat(b' ');
    if !has_text && !c.at_end() {
        return Err(c.expected("a space after the metric name"));
    }
    match keyword {
        "HELP" => Ok(Comment::Help {
            name,
            text: unescape_help(c.rest(), om)?,
        }),
        "UNIT" => {
            let unit = c.rest();
            if unit
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            {
                Ok(Comment::Unit { name, unit })
            } else {
                Err(ErrorKind::Expected {
                    expected: "a unit made of letters, digits, `_` and `:`",
                    found: format!("`{}`", excerpt(unit)),
                })
            }
        }
        _ => {
            let type_text = c.rest();
            if !has_text {
                return Err(c.expected("a space and a metric type"));
            }
            let kind = MetricType::parse(type_text, om).ok_or_else(|| unknown_type(type_text))?;
            Ok(Comment::Type { name, kind })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_comments() {
        let t = Dialect::Text004;
        assert_eq!(
            parse_comment(r"# HELP go_gc Time\\GC \n pauses.", t),
            Ok(Comment::Help {
                name: "go_gc",
                text: "Time\\GC \n pauses.".into()
            })
        );
        assert_eq!(
            parse_comment("#\tHELP\tx", t),
            Ok(Comment::Help {
                name: "x",
                text: String::new()
            })
        );
        assert_eq!(
            parse_comment("# TYPE x untyped  ", t),
            Ok(Comment::Type {
                name: "x",
                kind: MetricType::Unknown
            })
        );
        assert_eq!(
            parse_comment("#TYPE x summary", t),
            Ok(Comment::Type {
                name: "x",
                kind: MetricType::Summary
            })
        );
        assert_eq!(parse_comment("# just a comment", t), Ok(Comment::Other));
        assert_eq!(parse_comment("# HELPER x", t), Ok(Comment::Other));
        assert_eq!(parse_comment("#", t), Ok(Comment::Other));
        assert_eq!(parse_comment("# EOF", t), Ok(Comment::Other));
        assert_eq!(
            parse_comment("# TYPE x info", t),
            Err(ErrorKind::UnknownType {
                text: "info".into()
            })
        );
        assert_eq!(
            parse_comment("# TYPE x Counter", t),
            Err(ErrorKind::UnknownType {
                text: "Counter".into()
            })
        );
        assert!(matches!(
            parse_comment("# TYPE x", t),
            Err(ErrorKind::Expected { .. })
        ));
        assert!(matches!(
            parse_comment("# TYPE x gauge extra", t),
            Err(ErrorKind::Expected { .. })
        ));
        assert!(matches!(
            parse_comment("# HELP", t),
            Err(ErrorKind::Expected { .. })
        ));
        assert!(matches!(
            parse_comment("# HELP x-y z", t),
            Err(ErrorKind::Expected { .. })
        ));
    }

    #[test]
    fn openmetrics_comments() {
        let om = Dialect::OpenMetrics1;
        assert_eq!(parse_comment("# EOF", om), Ok(Comment::Eof));
        assert_eq!(
            parse_comment(r#"# HELP a Say \"hi\"\\"#, om),
            Ok(Comment::Help {
                name: "a",
                text: "Say \"hi\"\\".into()
            })
        );
        assert_eq!(
            parse_comment("# HELP a", om),
            Ok(Comment::Help {
                name: "a",
                text: String::new()
            })
        );
        assert_eq!(
            parse_comment("# TYPE a stateset", om),
            Ok(Comment::Type {
                name: "a",
                kind: MetricType::StateSet
            })
        );
        assert_eq!(
            parse_comment("# UNIT a_seconds seconds", om),
            Ok(Comment::Unit {
                name: "a_seconds",
                unit: "seconds"
            })
        );
        for bad in [
            "# a comment",
            "#HELP a b",
            "# EOF ",
            "# TYPE a untyped",
            "# TYPE a  gauge",
            "# TYPE a gauge ",
            "# TYPE a",
            "# UNIT a sec onds",
            r"# HELP a b\c",
        ] {
            assert!(parse_comment(bad, om).is_err(), "{bad:?} accepted");
        }
    }
}
