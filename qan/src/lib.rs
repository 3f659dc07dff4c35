//! Query Analytics: what an agent reports of a database's queries each interval (per
//! fingerprint: count, time, rows, ...), the literal scrubber every query text goes through
//! before it leaves the agent, and the server's store of fingerprint texts.

#![forbid(unsafe_code)]

mod figures;
mod scrub;
mod store;

pub use figures::{Figures, METRICS, Metric, SERIES_NAMES};
pub use scrub::{Dialect, scrub};
pub use store::{Registered, Store, StoreError, StoreLimits, StoredText};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The label value of the row that holds what is not in the top N (and fingerprints the
/// server dropped over its cap).
pub const OTHER: &str = "other";

/// The longest query text (and example) kept, bytes; longer ones are cut at a character
/// boundary and end with "…".
pub const MAX_TEXT_BYTES: usize = 4096;

/// One interval of one database service's queries, as the agent sends it to
/// `POST /v1/qan/report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The service's name (`perch-admin add ... --service-name`).
    pub service: String,
    /// `mysql` or `postgresql`.
    pub service_type: String,
    /// Where the figures come from: `perfschema` or `pgstatements`.
    pub source: String,
    /// The service's own labels: environment, cluster, replication_set, custom labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The interval, Unix seconds: the figures are what happened in (start, end].
    pub start: i64,
    pub end: i64,
    /// The top fingerprints by time in this interval.
    #[serde(default)]
    pub queries: Vec<QueryRow>,
    /// Everything else in the interval, summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<Figures>,
    /// Texts of fingerprints the server has not been sent yet (or asked for again).
    #[serde(default)]
    pub texts: Vec<QueryText>,
}

/// One fingerprint's figures in one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryRow {
    /// The database's own fingerprint id: MySQL's `DIGEST`, PostgreSQL's `queryid` in hex.
    pub id: String,
    /// The schema (MySQL) or database (PostgreSQL) it ran in.
    #[serde(default)]
    pub schema: String,
    /// The user that ran it (PostgreSQL; MySQL's digest table has no user).
    #[serde(default)]
    pub username: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A fingerprint's normalised text, sent once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryText {
    pub id: String,
    pub text: String,
    /// One real statement of this fingerprint, with its literals; absent when examples are
    /// off (`--disable-queryexamples`) or the source keeps none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

/// The server's answer to a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportAnswer {
    /// Fingerprints in the report whose text the server does not have: the agent sends
    /// their texts with its next report.
    #[serde(default)]
    pub unknown: Vec<String>,
    /// Fingerprints the server counted under "other" because the service is at its cap.
    #[serde(default)]
    pub dropped: u64,
}

/// Labels a service's report cannot carry: the server sets them on every series.
pub const RESERVED_LABELS: [&str; 10] = [
    "__name__",
    "node_id",
    "node_name",
    "service_name",
    "service_type",
    "fingerprint",
    "schema",
    "username",
    "job",
    "instance",
];
/// The most labels a service may add to its reports (environment, cluster, replication
/// set and custom labels), and the longest value of one.
pub const MAX_SERVICE_LABELS: usize = 16;
pub const MAX_LABEL_VALUE: usize = 256;

/// Why a service's own labels cannot go with its reports, if they cannot: the agent's `add`
/// refuses them, so that the server never refuses a report for them. (Their names are
/// checked as label names where they are given.)
pub fn service_labels_problem<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let mut count = 0;
    for (name, value) in labels {
        count += 1;
        if RESERVED_LABELS.contains(&name) {
            return Some(format!(
                "label {name:?} is Perch's own (it is set on every query's series); choose another name"
            ));
        }
        if value.len() > MAX_LABEL_VALUE {
            return Some(format!(
                "label {name:?} has a value of {} bytes; {MAX_LABEL_VALUE} at most",
                value.len()
            ));
        }
    }
    (count > MAX_SERVICE_LABELS)
        .then(|| format!("{count} labels; a service may have {MAX_SERVICE_LABELS} at most"))
}

/// Where a service's texts are kept: its node and its name (names are unique per node).
pub fn scope(node_id: u64, service: &str) -> String {
    format!("{node_id}/{service}")
}

/// Whether `id` can be a fingerprint id: 1 to 64 ASCII letters, digits, `-` or `_`.
pub fn is_fingerprint_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `text` cut to [`MAX_TEXT_BYTES`] at a character boundary.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_TEXT_BYTES - "…".len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_json() {
        let r = Report {
            service: "db-1".into(),
            service_type: "mysql".into(),
            source: "perfschema".into(),
            start: 10,
            end: 20,
            queries: vec![QueryRow {
                id: "abc".into(),
                schema: "shop".into(),
                username: String::new(),
                figures: Figures {
                    count: 3,
                    time_s: 0.5,
                    ..Figures::default()
                },
            }],
            ..Report::default()
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            !json.contains("rows_sent"),
            "zero figures are left out: {json}"
        );
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }

    #[test]
    fn service_labels_the_server_would_refuse_are_named() {
        assert_eq!(service_labels_problem([("environment", "prod")]), None);
        let p = service_labels_problem([("schema", "x")]).unwrap();
        assert!(p.contains("\"schema\" is Perch's own"), "{p}");
        let long = "v".repeat(MAX_LABEL_VALUE + 1);
        let p = service_labels_problem([("team", long.as_str())]).unwrap();
        assert!(p.contains("257 bytes"), "{p}");
        let names: Vec<String> = (0..=MAX_SERVICE_LABELS).map(|i| format!("l{i}")).collect();
        let p = service_labels_problem(names.iter().map(|n| (n.as_str(), "v"))).unwrap();
        assert!(p.contains("17 labels"), "{p}");
    }

    #[test]
    fn ids_and_clipping() {
        assert!(is_fingerprint_id("3f2a9c"));
        assert!(is_fingerprint_id("-123"));
        assert!(!is_fingerprint_id(""));
        assert!(!is_fingerprint_id("a b"));
        assert!(!is_fingerprint_id(&"a".repeat(65)));
        let long = "é".repeat(MAX_TEXT_BYTES);
        let c = clip(&long);
        assert!(c.len() <= MAX_TEXT_BYTES && c.ends_with('…'));
        assert_eq!(clip("short"), "short");
    }
}
