//! Metric families: their metadata (TYPE, HELP, UNIT), which family a sample belongs to
//! (by name and the suffixes its type allows), and the per-type checks on samples.

use crate::cursor::Dialect;
use crate::error::ErrorKind;
use perch_remote_write::Label;
use std::collections::HashMap;

/// A metric family's type. Text 0.0.4's `untyped` is [`MetricType::Unknown`], as in
/// Prometheus's metadata API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    /// OpenMetrics only.
    GaugeHistogram,
    Summary,
    /// OpenMetrics only.
    Info,
    /// OpenMetrics only.
    StateSet,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics name of the type (`unknown` for text 0.0.4's `untyped`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// The type a TYPE line names; only the lowercase names its format defines.
    pub(crate) fn parse(text: &str, dialect: Dialect) -> Option<MetricType> {
        let kind = match (text, dialect) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Dialect::Text004) => MetricType::Unknown,
            ("unknown", Dialect::OpenMetrics1) => MetricType::Unknown,
            ("gaugehistogram", Dialect::OpenMetrics1) => MetricType::GaugeHistogram,
            ("info", Dialect::OpenMetrics1) => MetricType::Info,
            ("stateset", Dialect::OpenMetrics1) => MetricType::StateSet,
            _ => return None,
        };
        Some(kind)
    }

    /// The name suffixes this type's samples may carry in a format; `""` is the bare
    /// family name.
    fn suffixes(self, dialect: Dialect) -> &'static [&'static str] {
        use MetricType::*;
        match (dialect, self) {
            (Dialect::Text004, Histogram) => &["_bucket", "_sum", "_count"],
            (Dialect::Text004, Summary) => &["", "_sum", "_count"],
            (Dialect::Text004, _) => &[""],
            (Dialect::OpenMetrics1, Counter) => &["_total", "_created"],
            (Dialect::OpenMetrics1, Histogram) => &["_bucket", "_sum", "_count", "_created"],
            (Dialect::OpenMetrics1, GaugeHistogram) => &["_bucket", "_gsum", "_gcount"],
            (Dialect::OpenMetrics1, Summary) => &["", "_sum", "_count", "_created"],
            (Dialect::OpenMetrics1, Info) => &["_info"],
            (Dialect::OpenMetrics1, Gauge | StateSet | Unknown) => &[""],
        }
    }

    /// The suffixes as an error message lists them.
    fn suffix_list(self, dialect: Dialect) -> &'static str {
        use MetricType::*;
        match (dialect, self) {
            (Dialect::Text004, Histogram) => "_bucket, _sum or _count",
            (Dialect::OpenMetrics1, Counter) => "_total or _created",
            (Dialect::OpenMetrics1, Histogram) => "_bucket, _sum, _count or _created",
            (Dialect::OpenMetrics1, GaugeHistogram) => "_bucket, _gsum or _gcount",
            (Dialect::OpenMetrics1, Info) => "_info",
            _ => "nothing",
        }
    }
}

/// The metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    /// The family name: as in its TYPE/HELP lines, or for samples with neither, the
    /// sample's own name.
    pub name: String,
    /// [`MetricType::Unknown`] when the body has no TYPE line for it.
    pub kind: MetricType,
    /// The HELP text, unescaped; `None` when the body has no HELP line for it.
    pub help: Option<String>,
    /// The OpenMetrics UNIT; always `None` in text 0.0.4.
    pub unit: Option<String>,
}

/// Which metadata line a [`Families::describe`] call records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Descriptor {
    Help,
    Type,
    Unit,
}

impl Descriptor {
    fn keyword(self) -> &'static str {
        match self {
            Descriptor::Help => "HELP",
            Descriptor::Type => "TYPE",
            Descriptor::Unit => "UNIT",
        }
    }
}

#[derive(Debug)]
struct Family {
    meta: MetricMetadata,
    /// Named by a HELP, TYPE or UNIT line (rather than made up for a sample).
    declared: bool,
    typed: bool,
    has_samples: bool,
    /// Another family has come since (OpenMetrics forbids coming back).
    closed: bool,
}

/// The families of one body, in the order they first appear.
#[derive(Debug)]
pub(crate) struct Families {
    dialect: Dialect,
    list: Vec<Family>,
    by_name: HashMap<String, usize>,
    current: Option<usize>,
}

impl Families {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Families {
            dialect,
            list: Vec::new(),
            by_name: HashMap::new(),
            current: None,
        }
    }

    pub(crate) fn into_metadata(self) -> Vec<MetricMetadata> {
        self.list.into_iter().map(|f| f.meta).collect()
    }

    fn add(&mut self, name: &str, declared: bool) -> usize {
        let index = self.list.len();
        self.list.push(Family {
            meta: MetricMetadata {
                name: name.to_owned(),
                kind: MetricType::Unknown,
                help: None,
                unit: None,
            },
            declared,
            typed: false,
            has_samples: false,
            closed: false,
        });
        self.by_name.insert(name.to_owned(), index);
        index
    }

    /// Makes `index` the current family. In OpenMetrics a family may not come back once
    /// another has started.
    fn enter(&mut self, index: usize) -> Result<(), ErrorKind> {
        if self.current == Some(index) {
            return Ok(());
        }
        if let Some(previous) = self.current.and_then(|i| self.list.get_mut(i)) {
            previous.closed = true;
        }
        self.current = Some(index);
        match self.list.get(index) {
            Some(family) if family.closed && self.dialect == Dialect::OpenMetrics1 => {
                Err(ErrorKind::InterleavedFamily {
                    name: family.meta.name.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a HELP, TYPE or UNIT line. Each may appear once per family, before the
    /// family's first sample.
    pub(crate) fn describe(
        &mut self,
        name: &str,
        descriptor: Descriptor,
        apply: impl FnOnce(&mut MetricMetadata),
    ) -> Result<(), ErrorKind> {
        let index = match self.by_name.get(name) {
            Some(&index) => index,
            None => self.add(name, true),
        };
        self.enter(index)?;
        let Some(family) = self.list.get_mut(index) else {
            return Ok(());
        };
        let keyword = descriptor.keyword();
        if family.has_samples {
            return Err(ErrorKind::MetadataAfterSamples {
                keyword,
                name: name.to_owned(),
            });
        }
        let seen = match descriptor {
            Descriptor::Help => family.meta.help.is_some(),
            Descriptor::Type => family.typed,
            Descriptor::Unit => family.meta.unit.is_some(),
        };
        if seen {
            return Err(ErrorKind::DuplicateMetadata {
                keyword,
                name: name.to_owned(),
            });
        }
        family.declared = true;
        family.typed |= descriptor == Descriptor::Type;
        apply(&mut family.meta);
        Ok(())
    }

    /// Finds the family of a sample and checks the sample against the family's type.
    ///
    /// A declared family whose type allows the bare name wins; then a declared family the
    /// name reaches by dropping one suffix the family's type allows; otherwise the sample
    /// is its own untyped family.
    pub(crate) fn sample(&mut self, name: &str, labels: &[Label]) -> Result<(), ErrorKind> {
        let dialect = self.dialect;
        let declared = |families: &Self, n: &str| {
            families
                .by_name
                .get(n)
                .copied()
                .filter(|&i| families.list.get(i).is_some_and(|f| f.declared))
        };
        let allows = |families: &Self, index: usize, suffix: &str| {
            families
                .list
                .get(index)
                .is_some_and(|f| f.meta.kind.suffixes(dialect).contains(&suffix))
        };

        let exact = declared(self, name);
        let mut found = exact.filter(|&i| allows(self, i, "")).map(|i| (i, ""));
        if found.is_none() {
            for suffix in SUFFIXES {
                if let Some(base) = name.strip_suffix(suffix)
                    && let Some(index) = declared(self, base)
                    && allows(self, index, suffix)
                {
                    found = Some((index, suffix));
                    break;
                }
            }
        }
        let (index, suffix) = match (found, exact) {
            (Some(found), _) => found,
            (None, Some(index)) => {
                let family = self.list.get(index).map(|f| &f.meta);
                let (family, kind) =
                    family.map_or(("", MetricType::Unknown), |m| (m.name.as_str(), m.kind));
                return Err(ErrorKind::SampleNameMismatch {
                    sample: name.to_owned(),
                    family: family.to_owned(),
                    kind: kind.as_str(),
                    expected: kind.suffix_list(dialect),
                });
            }
            (None, None) => match self.by_name.get(name) {
                Some(&index) => (index, ""),
                None => (self.add(name, false), ""),
            },
        };
        self.enter(index)?;
        let Some(family) = self.list.get_mut(index) else {
            return Ok(());
        };
        family.has_samples = true;
        check_labels(name, &family.meta, suffix, labels)
    }
}

/// Every suffix any type allows.
const SUFFIXES: [&str; 8] = [
    "_bucket", "_sum", "_count", "_created", "_total", "_info", "_gsum", "_gcount",
];

fn label<'l>(labels: &'l [Label], name: &str) -> Option<&'l str> {
    labels
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.value.as_str())
}

/// The labels a sample's type and suffix require: `le` (a number) on buckets, `quantile`
/// (a number) on a summary's quantiles, the family name on a stateset's samples.
fn check_labels(
    sample: &str,
    family: &MetricMetadata,
    suffix: &str,
    labels: &[Label],
) -> Result<(), ErrorKind> {
    let required = match (family.kind, suffix) {
        (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => Some("le"),
        (MetricType::Summary, "") => Some("quantile"),
        (MetricType::StateSet, "") => None,
        _ => return Ok(()),
    };
    let missing = |label: &str| ErrorKind::MissingLabel {
        sample: sample.to_owned(),
        label: label.to_owned(),
    };
    let Some(name) = required else {
        return match label(labels, &family.name) {
            Some(_) => Ok(()),
            None => Err(missing(&family.name)),
        };
    };
    let value = label(labels, name).ok_or_else(|| missing(name))?;
    match crate::sample::parse_float(value) {
        Some(_) => Ok(()),
        None => Err(ErrorKind::InvalidLabelNumber {
            label: name,
            value: crate::error::excerpt(value),
        }),
    }
}
