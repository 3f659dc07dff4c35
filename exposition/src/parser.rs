//! The line loop: splits a body into lines, hands each to the comment or sample parser,
//! and turns samples into series.

use crate::comment::{Comment, parse_comment};
use crate::cursor::Dialect;
use crate::error::{ErrorKind, ParseError};
use crate::family::{Descriptor, Families, MetricMetadata};
use crate::format::Format;
use crate::sample::parse_sample;
use crate::target::TargetLabels;
use perch_remote_write::{Label, Sample, TimeSeries};

/// How a target's scrapes are turned into series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeOptions {
    /// Added to every series; see [`ScrapeOptions::honor_labels`] for conflicts.
    pub target_labels: TargetLabels,
    /// Prometheus's `honor_labels`. `false` (the default, as in Prometheus): on a name
    /// conflict the target label wins and the exporter's value is kept as
    /// `exported_<name>`. `true`: the exporter's label wins.
    pub honor_labels: bool,
    /// The most series one body may produce, inclusive. One more is
    /// [`ErrorKind::TooManySeries`] and the whole body is refused.
    pub max_series: usize,
}

/// A parsed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition {
    /// One series per sample line, in body order. Labels are sorted by name, include
    /// `__name__` and the target labels, and have no empty values (an empty value is no
    /// label, as in Prometheus). Each series has exactly one sample.
    pub series: Vec<TimeSeries>,
    /// One entry per metric family, in order of first appearance.
    pub metadata: Vec<MetricMetadata>,
}

/// Parses a scraped body.
///
/// `default_timestamp_ms` (milliseconds since the Unix epoch, normally the scrape's start)
/// is the timestamp of samples that carry none. Exemplars are checked and dropped. The
/// whole body is refused on the first error, which names its line. Runs in time linear in
/// the body's length (label sets are sorted per line) and never panics.
pub fn parse(
    body: &[u8],
    format: Format,
    default_timestamp_ms: i64,
    options: &ScrapeOptions,
) -> Result<Exposition, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let before = body.get(..e.valid_up_to()).unwrap_or(&[]);
        ParseError {
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            kind: ErrorKind::InvalidUtf8,
        }
    })?;
    let dialect = match format {
        Format::Text004 => Dialect::Text004,
        Format::OpenMetrics1 => Dialect::OpenMetrics1,
    };
    let mut state = State {
        dialect,
        default_timestamp_ms,
        options,
        families: Families::new(dialect),
        series: Vec::new(),
    };
    let mut line_no = 0;
    let mut eof = false;
    for raw in text.split_inclusive('\n') {
        line_no += 1;
        let at = |kind| ParseError {
            line: line_no,
            kind,
        };
        if eof {
            return Err(at(ErrorKind::ContentAfterEof));
        }
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        eof = state.line(line).map_err(at)?;
    }
    if dialect == Dialect::OpenMetrics1 && !eof {
        return Err(ParseError {
            line: line_no + 1,
            kind: ErrorKind::MissingEof,
        });
    }
    Ok(Exposition {
        series: state.series,
        metadata: state.families.into_metadata(),
    })
}

struct State<'o> {
    dialect: Dialect,
    default_timestamp_ms: i64,
    options: &'o ScrapeOptions,
    families: Families,
    series: Vec<TimeSeries>,
}

impl State<'_> {
    /// Handles one line (without its `\n`); returns whether it was OpenMetrics' `# EOF`.
    fn line(&mut self, line: &str) -> Result<bool, ErrorKind> {
        let text = self.dialect == Dialect::Text004;
        if text && line.bytes().all(|b| b == b' ' || b == b'\t') {
            return Ok(false);
        }
        if line.is_empty() {
            return Err(ErrorKind::BlankLine);
        }
        let first = if text {
            line.trim_start_matches([' ', '\t'])
        } else {
            line
        };
        if first.starts_with('#') {
            self.comment(line)
        } else {
            self.sample(line).map(|()| false)
        }
    }

    fn comment(&mut self, line: &str) -> Result<bool, ErrorKind> {
        match parse_comment(line.trim_start_matches([' ', '\t']), self.dialect)? {
            Comment::Help { name, text } => {
                self.families
                    .describe(name, Descriptor::Help, |m| m.help = Some(text))?;
            }
            Comment::Type { name, kind } => {
                self.families
                    .describe(name, Descriptor::Type, |m| m.kind = kind)?;
            }
            Comment::Unit { name, unit } => {
                self.families
                    .describe(name, Descriptor::Unit, |m| m.unit = Some(unit.to_owned()))?;
            }
            Comment::Eof => return Ok(true),
            Comment::Other => {}
        }
        Ok(false)
    }

    fn sample(&mut self, line: &str) -> Result<(), ErrorKind> {
        let sample = parse_sample(line, self.dialect)?;
        self.families.sample(sample.name, &sample.labels)?;
        let mut labels = Vec::with_capacity(
            sample.labels.len() + 1 + self.options.target_labels.as_slice().len(),
        );
        labels.push(Label {
            name: "__name__".to_owned(),
            value: sample.name.to_owned(),
        });
        labels.extend(sample.labels);
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = labels.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(ErrorKind::DuplicateLabel {
                name: crate::error::excerpt(&pair[0].name),
            });
        }
        labels.retain(|l| !l.value.is_empty());
        self.options
            .target_labels
            .apply(&mut labels, self.options.honor_labels);
        if self.series.len() >= self.options.max_series {
            return Err(ErrorKind::TooManySeries {
                limit: self.options.max_series,
            });
        }
        self.series.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value: sample.value,
                timestamp: sample.timestamp_ms.unwrap_or(self.default_timestamp_ms),
            }],
        });
        Ok(())
    }
}
