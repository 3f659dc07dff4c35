//! No panics on mangled input, and time linear in the input on long lines.

use perch_exposition::{Format, ScrapeOptions, TargetLabels, parse};
use std::path::Path;
use std::time::{Duration, Instant};

fn options() -> ScrapeOptions {
    ScrapeOptions {
        target_labels: TargetLabels::new([("job", "j"), ("instance", "i")]).expect("valid"),
        honor_labels: false,
        max_series: 100_000,
    }
}

/// xorshift64*: a fixed-seed generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes the grammars give meaning to, to make mutations reach deep states.
const INTERESTING: &[u8] = b"{}\",=\\n# \t\n_:.eE+-0123456789NaInf\xff\xc3";

/// Every data file, mutated thousands of ways (byte flips, insertions of syntax bytes,
/// deletions, splices of other lines), parsed in both formats: no panic, and whatever is
/// accepted is well formed.
#[test]
fn mutated_data_files_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("tests/data")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let ext = path.extension()?.to_str()?;
            (ext == "prom" || ext == "om").then(|| std::fs::read(&path).ok())?
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 6);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for round in 0..3000 {
        let mut body = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(body.len() + 1);
            match rng.below(4) {
                0 if at < body.len() => body[at] = INTERESTING[rng.below(INTERESTING.len())],
                1 => body.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
                2 if at < body.len() => {
                    let end = (at + rng.below(16)).min(body.len());
                    body.drain(at..end);
                }
                _ => {
                    let other = &seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len());
                    let len = rng.below(64).min(other.len() - from);
                    body.splice(at..at, other[from..from + len].iter().copied());
                }
            }
        }
        for format in [Format::Text004, Format::OpenMetrics1] {
            if let Ok(exposition) = parse(&body, format, 0, &options()) {
                accepted += 1;
                for series in &exposition.series {
                    assert!(series.labels.windows(2).all(|w| w[0].name < w[1].name));
                    assert!(series.labels.iter().all(|l| !l.value.is_empty()));
                    assert!(series.labels.iter().any(|l| l.name == "__name__"));
                    assert_eq!(series.samples.len(), 1);
                }
            }
        }
    }
    // Mutations are mostly small: a fair share must still parse, or the test only ever
    // exercises the first error path.
    assert!(accepted > 300, "only {accepted} mutated bodies parsed");
}

/// Each pathological body is about `SIZE` bytes; a quadratic parser would need hours, a
/// linear one well under the bound even unoptimised on a loaded machine.
#[test]
fn long_lines_parse_in_linear_time() {
    const SIZE: usize = 2 << 20;
    let bound = Duration::from_secs(20);
    let labels: String = (0..SIZE / 12).map(|i| format!("l{i}=\"v\",")).collect();
    let exported: String = (1..400)
        .map(|i| format!("{}job=\"x\",", "exported_".repeat(i)))
        .collect();
    let bodies: Vec<(&str, Format, String)> = vec![
        (
            "long name",
            Format::Text004,
            format!("{} 1\n", "a".repeat(SIZE)),
        ),
        (
            "long value",
            Format::Text004,
            format!("a{{x=\"{}\"}} 1\n", "v".repeat(SIZE)),
        ),
        (
            "many escapes",
            Format::OpenMetrics1,
            format!("a{{x=\"{}\"}} 1\n# EOF\n", "\\\\\\n\\\"".repeat(SIZE / 6)),
        ),
        (
            "unterminated value",
            Format::Text004,
            format!("a{{x=\"{}\n", "\\\"".repeat(SIZE / 2)),
        ),
        ("many labels", Format::Text004, format!("a{{{labels}}} 1\n")),
        (
            "many duplicate-free labels, OM",
            Format::OpenMetrics1,
            format!("a{{{}}} 1\n# EOF\n", labels.trim_end_matches(',')),
        ),
        (
            "exported_ chain",
            Format::Text004,
            format!("a{{{exported}}} 1\n"),
        ),
        (
            "long help",
            Format::OpenMetrics1,
            format!("# HELP a {}\n# EOF\n", "\\n".repeat(SIZE / 2)),
        ),
        (
            "long digits",
            Format::Text004,
            format!("a {}\n", "9".repeat(SIZE)),
        ),
        (
            "many blank lines",
            Format::Text004,
            "\n \t".repeat(SIZE / 3),
        ),
        (
            "many tiny series",
            Format::Text004,
            "a 1\n".repeat(SIZE / 40),
        ),
        (
            "many families",
            Format::Text004,
            (0..SIZE / 40)
                .map(|i| format!("# TYPE f{i} gauge\nf{i} 1\n"))
                .collect(),
        ),
        (
            "long comment",
            Format::Text004,
            format!("# {}\n", "#".repeat(SIZE)),
        ),
    ];
    for (name, format, body) in bodies {
        let start = Instant::now();
        let result = parse(body.as_bytes(), format, 0, &options());
        let took = start.elapsed();
        assert!(took < bound, "{name}: {took:?}");
        eprintln!(
            "{name}: {} bytes in {took:?}, ok={}",
            body.len(),
            result.is_ok()
        );
    }
}

/// The exporter label chain `exported_job`, `exported_exported_job`, ... is followed to
/// the first free name.
#[test]
fn exported_chain_ends_at_first_free_name() {
    let body = "a{job=\"j0\",exported_job=\"j1\",exported_exported_job=\"j2\"} 1\n";
    let target = TargetLabels::new([("job", "t")]).expect("valid");
    let options = ScrapeOptions {
        target_labels: target,
        honor_labels: false,
        max_series: 10,
    };
    let got = parse(body.as_bytes(), Format::Text004, 0, &options).expect("parses");
    let labels: Vec<(&str, &str)> = got.series[0]
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("__name__", "a"),
            ("exported_exported_exported_job", "j0"),
            ("exported_exported_job", "j2"),
            ("exported_job", "j1"),
            ("job", "t"),
        ]
    );
}

#[test]
fn honor_labels_keeps_exporter_values() {
    let body = b"a{job=\"mysql\"} 1\n";
    let target = TargetLabels::new([("job", "node"), ("instance", "h:1")]).expect("valid");
    let options = ScrapeOptions {
        target_labels: target,
        honor_labels: true,
        max_series: 10,
    };
    let got = parse(body, Format::Text004, 5, &options).expect("parses");
    let labels: Vec<(&str, &str)> = got.series[0]
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        [("__name__", "a"), ("instance", "h:1"), ("job", "mysql")]
    );
    assert_eq!(got.series[0].samples[0].timestamp, 5);
}
