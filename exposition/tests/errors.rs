//! Error cases from `tests/data/errors.txt`: each case is a header line
//! `=== <text|om> <description>`, the body's lines (each ends with `\n` in the body), and a
//! line `--- <expected error message>`.

use perch_exposition::{ErrorKind, Format, ParseError, ScrapeOptions, TargetLabels, parse};
use std::path::Path;

fn options(max_series: usize) -> ScrapeOptions {
    ScrapeOptions {
        target_labels: TargetLabels::default(),
        honor_labels: false,
        max_series,
    }
}

struct Case {
    format: Format,
    title: String,
    body: String,
    want: String,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/errors.txt");
    let text = std::fs::read_to_string(path).expect("errors.txt");
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("=== ") {
            assert!(current.is_none(), "case without --- before {header}");
            let (format, title) = header.split_once(' ').expect("=== format title");
            let format = match format {
                "text" => Format::Text004,
                "om" => Format::OpenMetrics1,
                other => panic!("unknown format {other}"),
            };
            current = Some(Case {
                format,
                title: title.to_owned(),
                body: String::new(),
                want: String::new(),
            });
        } else if let Some(want) = line.strip_prefix("--- ") {
            let mut case = current.take().expect("--- after a === header");
            case.want = want.to_owned();
            cases.push(case);
        } else if let Some(case) = current.as_mut() {
            case.body.push_str(line);
            case.body.push('\n');
        }
    }
    assert!(current.is_none(), "unfinished case at the end");
    cases
}

#[test]
fn error_cases_report_line_and_cause() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let got = match parse(case.body.as_bytes(), case.format, 0, &options(1000)) {
            Ok(e) => format!("accepted with {} series", e.series.len()),
            Err(e) => e.to_string(),
        };
        if got != case.want {
            failures.push(format!("{}: want `{}`, got `{got}`", case.title, case.want));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_utf8_names_its_line() {
    let body = b"a 1\nb 2\nc{x=\"\xff\"} 3\n";
    for format in [Format::Text004, Format::OpenMetrics1] {
        assert_eq!(
            parse(body, format, 0, &options(10)),
            Err(ParseError {
                line: 3,
                kind: ErrorKind::InvalidUtf8
            })
        );
    }
}

#[test]
fn series_limit_is_inclusive() {
    let body = b"a 1\nb 2\nc 3\n";
    assert_eq!(
        parse(body, Format::Text004, 0, &options(3)).map(|e| e.series.len()),
        Ok(3)
    );
    let err = parse(body, Format::Text004, 0, &options(2)).expect_err("over the limit");
    assert_eq!(err.to_string(), "line 3: the body has more than 2 series");
    let err = parse(b"a 1\n", Format::Text004, 0, &options(0)).expect_err("limit 0");
    assert_eq!(err.kind, ErrorKind::TooManySeries { limit: 0 });
}

#[test]
fn missing_eof_points_past_the_last_line() {
    assert_eq!(
        parse(b"", Format::OpenMetrics1, 0, &options(10)),
        Err(ParseError {
            line: 1,
            kind: ErrorKind::MissingEof
        })
    );
    assert_eq!(
        parse(b"a 1\nb 2", Format::OpenMetrics1, 0, &options(10)),
        Err(ParseError {
            line: 3,
            kind: ErrorKind::MissingEof
        })
    );
    // `# EOF` needs no newline after it; text 0.0.4 needs none after its last line.
    assert!(parse(b"a 1\n# EOF", Format::OpenMetrics1, 0, &options(10)).is_ok());
    assert!(parse(b"a 1", Format::Text004, 0, &options(10)).is_ok());
    assert_eq!(
        parse(b"", Format::Text004, 0, &options(10)).map(|e| e.series.len()),
        Ok(0)
    );
}
