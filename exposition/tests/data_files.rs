//! Data-driven tests: every `tests/data/*.prom` (text 0.0.4) and `*.om` (OpenMetrics) file is
//! parsed and rendered as text, which must equal its `.expected` file. Set
//! `PERCH_BLESS=1` to (re)write the `.expected` files, then review the diff.

use perch_exposition::{Exposition, Format, ScrapeOptions, TargetLabels, parse};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The scrape time every sample without a timestamp gets.
const SCRAPE_MS: i64 = 1_700_000_000_000;

fn options() -> ScrapeOptions {
    ScrapeOptions {
        target_labels: TargetLabels::new([("job", "node"), ("instance", "host-1:9100")])
            .expect("valid target labels"),
        honor_labels: false,
        max_series: 1000,
    }
}

/// One line per series (`{name="value", ...} value @timestamp`, values in Rust's `{:?}`
/// form), then one per family (`name type help=... unit=...`).
fn render(exposition: &Exposition) -> String {
    let mut out = String::from("# series\n");
    for series in &exposition.series {
        let labels: Vec<String> = series
            .labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        for sample in &series.samples {
            let _ = writeln!(
                out,
                "{{{}}} {:?} @{}",
                labels.join(", "),
                sample.value,
                sample.timestamp
            );
        }
    }
    out.push_str("# metadata\n");
    for m in &exposition.metadata {
        let _ = writeln!(
            out,
            "{} {} help={:?} unit={:?}",
            m.name,
            m.kind.as_str(),
            m.help,
            m.unit
        );
    }
    out
}

fn data_files() -> Vec<(PathBuf, Format)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<(PathBuf, Format)> = std::fs::read_dir(&dir)
        .expect("tests/data exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let format = match path.extension()?.to_str()? {
                "prom" => Format::Text004,
                "om" => Format::OpenMetrics1,
                _ => return None,
            };
            Some((path, format))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[test]
fn data_files_parse_as_expected() {
    let files = data_files();
    assert!(files.len() >= 6, "expected the data files, found {files:?}");
    let bless = std::env::var_os("PERCH_BLESS").is_some();
    let mut failures = Vec::new();
    for (path, format) in files {
        let body = std::fs::read(&path).expect("readable data file");
        let got = match parse(&body, format, SCRAPE_MS, &options()) {
            Ok(exposition) => render(&exposition),
            Err(e) => format!("error: {e}\n"),
        };
        let expected_path = path.with_extension(format!(
            "{}.expected",
            path.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
        if bless {
            std::fs::write(&expected_path, &got).expect("writable expected file");
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{}:\n--- want\n{want}--- got\n{got}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The Content-Type a server would send for each file selects the parser that reads it.
#[test]
fn content_type_selects_the_parser() {
    for (path, format) in data_files() {
        let content_type = match format {
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics1 => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        };
        assert_eq!(
            Format::from_content_type(content_type),
            format,
            "{}",
            path.display()
        );
    }
}
