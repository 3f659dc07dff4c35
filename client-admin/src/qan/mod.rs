//! Query Analytics in the agent: every interval, read each database service's statement
//! statistics itself (MySQL's performance_schema, PostgreSQL's pg_stat_statements), turn
//! the cumulative counters into what happened in the interval, keep the busiest
//! fingerprints, and report them to the server (`POST /v1/qan/report`). Texts are
//! normalised by the database, scrubbed of any literal left, and sent once.

pub mod deltas;
mod mysql;
mod postgres;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use perch_qan::{QueryRow, Report, ReportAnswer};

use crate::config::{QuerySource, Service, ServiceType};
use deltas::Reading;

/// How long `add`'s check may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QanError {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The source is off or out of reach: what to enable or grant.
    #[error("{0}")]
    Unavailable(String),
    #[error("reading the statement statistics failed: {0}")]
    Query(String),
    #[error("reading the statement statistics took over {0} s")]
    Timeout(f64),
}

#[derive(Debug)]
enum Source {
    MySql(mysql::Reader),
    Postgres(postgres::Reader),
}

impl Source {
    fn of(kind: ServiceType) -> Self {
        match kind {
            ServiceType::Mysql => Self::MySql(mysql::Reader::default()),
            ServiceType::Postgresql => Self::Postgres(postgres::Reader::default()),
        }
    }

    fn reset(&mut self) {
        match self {
            Self::MySql(r) => r.reset(),
            Self::Postgres(r) => r.reset(),
        }
    }
}

/// Checks once (for `perch-admin add`) that `service`'s query source can be read: `Ok` with
/// notes (what examples or privileges are missing), or what to enable.
pub async fn check(service: &Service) -> Result<Vec<String>, QanError> {
    let work = async {
        let mut notes = Vec::new();
        match Source::of(service.kind) {
            Source::MySql(mut r) => {
                r.check(service).await?;
                if !service.disable_query_examples && !r.has_history(service).await {
                    notes.push("examples need statement history: run UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME IN ('events_statements_current', 'events_statements_history_long'); (and add performance-schema-consumer-events-statements-current=ON and performance-schema-consumer-events-statements-history-long=ON to my.cnf to keep it after a restart)".to_owned());
                }
            }
            Source::Postgres(mut r) => notes.extend(r.check(service).await?),
        }
        Ok(notes)
    };
    tokio::time::timeout(READ_TIMEOUT, work)
        .await
        .map_err(|_| QanError::Timeout(READ_TIMEOUT.as_secs_f64()))?
}

/// One service's Query Analytics.
#[derive(Debug)]
pub struct Qan {
    pub service: Service,
    source: Source,
    /// The last reading and when it was taken (Unix seconds).
    previous: Option<(Reading, i64)>,
    /// Fingerprints whose texts the server has.
    sent: HashSet<String>,
    /// The last failure, logged once.
    pub last_error: Option<String>,
    /// When the next reading is due.
    pub due: Instant,
}

impl Qan {
    /// `None` when the service has Query Analytics off.
    pub fn new(service: Service) -> Option<Self> {
        service.query_source?;
        Some(Self {
            source: Source::of(service.kind),
            service,
            previous: None,
            sent: HashSet::new(),
            last_error: None,
            due: Instant::now(),
        })
    }

    pub fn source(&self) -> QuerySource {
        QuerySource::of(self.service.kind)
    }

    /// Reads the source; the report of what happened since the last reading (`None` for
    /// the first, which is the baseline).
    pub async fn collect(
        &mut self,
        now: i64,
        timeout: Duration,
    ) -> Result<Option<Report>, QanError> {
        match tokio::time::timeout(timeout, self.collect_inner(now)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                // A source that is off keeps its connection; anything else connects again.
                if !matches!(e, QanError::Unavailable(_)) {
                    self.source.reset();
                }
                Err(e)
            }
            Err(_) => {
                self.source.reset();
                Err(QanError::Timeout(timeout.as_secs_f64()))
            }
        }
    }

    async fn collect_inner(&mut self, now: i64) -> Result<Option<Report>, QanError> {
        let service = &self.service;
        let reading = match &mut self.source {
            Source::MySql(r) => r.read(service).await?,
            Source::Postgres(r) => r.read(service).await?,
        };
        let Some((before, start)) = &self.previous else {
            self.previous = Some((reading, now));
            return Ok(None);
        };
        let start = *start;
        let changed = deltas::deltas(before, &reading);
        let (queries, other) = deltas::top(changed, service.qan_top);
        let new = self.unsent(&queries);
        let examples = !service.disable_query_examples;
        let texts = match &mut self.source {
            Source::MySql(r) => r.texts(service, &new, examples).await?,
            Source::Postgres(r) => r.texts(service, &new).await?,
        };
        // Only now is this reading the next one's baseline: when the texts cannot be read,
        // the next reading covers this interval too, and nothing is lost.
        self.previous = Some((reading, now));
        let labels = service.own_labels().collect();
        Ok(Some(Report {
            service: service.name.clone(),
            service_type: service.kind.as_str().to_owned(),
            source: self.source().as_str().to_owned(),
            labels,
            start,
            end: now,
            queries,
            other,
            texts,
        }))
    }

    /// The fingerprints among `queries` whose texts the server has not been sent.
    fn unsent(&self, queries: &[QueryRow]) -> Vec<String> {
        let mut new: Vec<String> = queries
            .iter()
            .map(|q| q.id.clone())
            .filter(|id| !self.sent.contains(id))
            .collect();
        new.sort();
        new.dedup();
        new
    }

    /// The server took `report`: its texts are known there, except those it asks for again.
    pub fn delivered(&mut self, report: &Report, answer: &ReportAnswer) {
        for t in &report.texts {
            self.sent.insert(t.id.clone());
        }
        for id in &answer.unknown {
            self.sent.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_qan::QueryText;

    #[test]
    fn texts_are_sent_once_and_again_when_the_server_asks() {
        let service: Service = toml::from_str(
            "name = 'db'\ntype = 'mysql'\nusername = 'u'\ninterval_s = 10\nquery_source = 'perfschema'",
        )
        .unwrap();
        let mut q = Qan::new(service).unwrap();
        let row = |id: &str| QueryRow {
            id: id.into(),
            ..QueryRow::default()
        };
        let rows = [row("b"), row("a"), row("a")];
        assert_eq!(q.unsent(&rows), ["a", "b"]);
        let text = |id: &str| QueryText {
            id: id.into(),
            text: "SELECT ?".into(),
            example: None,
        };
        let report = Report {
            texts: vec![text("a"), text("b")],
            ..Report::default()
        };
        q.delivered(&report, &ReportAnswer::default());
        assert!(q.unsent(&rows).is_empty(), "sent once");
        // The server lost b's text (a restore, say) and asks for it.
        let answer = ReportAnswer {
            unknown: vec!["b".into()],
            dropped: 0,
        };
        q.delivered(&Report::default(), &answer);
        assert_eq!(q.unsent(&rows), ["b"]);
    }
}
