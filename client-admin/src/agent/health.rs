//! What one scrape says of its target, an exporter or a database service: the series the
//! agent adds for it (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `perch_target_up`, `perch_target_since_timestamp_seconds` (when it last went up or down)
//! and, while it is down, `perch_target_error_info{error}`), and its health
//! as `list` and `status` show it. A service is healthy when its exporter answered and
//! reached the database (`mysql_up` or `pg_up` is 1); its error is then in the exporter's own
//! words.

use perch_remote_write::TimeSeries;

use super::gauge;
use super::scrape::Scraped;
use super::state::TargetHealth;
use super::supervise::Supervised;
use crate::services::{exporter_of, probe};

/// Longest error text sent as a label value.
const MAX_ERROR_CHARS: usize = 300;

/// One target's scrape, judged.
#[derive(Debug)]
pub struct Judged {
    /// The exporter answered (the value of `up`).
    pub answered: bool,
    pub duration_s: f64,
    /// What it gave, with the target's labels.
    pub series: Vec<TimeSeries>,
    /// Why it is down; none when healthy.
    pub error: Option<String>,
    /// A database's version.
    pub version: Option<String>,
}

/// Judges `result`, the scrape of an exporter (`service` is none) or of a service's exporter.
pub fn judge(
    result: Result<Scraped, String>,
    service: Option<&Supervised>,
    timeout_s: f64,
) -> Judged {
    let scraped = match result {
        Ok(s) => s,
        Err(error) => {
            return Judged {
                answered: false,
                duration_s: timeout_s,
                series: Vec::new(),
                error: Some(error),
                version: None,
            };
        }
    };
    let (mut error, mut version) = (None, None);
    if let Some(s) = service {
        let kind = s.service.kind;
        let up_metric = exporter_of(kind).up_metric;
        let db_up = probe::first(&scraped.series, up_metric).map(|(_, v)| v);
        version = probe::version(kind, &scraped.series);
        if db_up != Some(1.0) {
            error = Some(s.log().connection_error.map(|e| e.0).unwrap_or_else(|| {
                format!(
                    "the exporter cannot reach {} ({up_metric} is {})",
                    s.service.address(),
                    db_up.map_or("missing".into(), |v| v.to_string())
                )
            }));
        }
    }
    Judged {
        answered: true,
        duration_s: scraped.duration.as_secs_f64(),
        series: scraped.series,
        error,
        version,
    }
}

impl Judged {
    /// The series the agent adds for the target, labelled `labels`, at `t` (ms); `since` is
    /// when its health last changed (Unix seconds).
    pub fn own_series(
        &self,
        labels: &[(String, String)],
        count: usize,
        since: i64,
        t: i64,
    ) -> Vec<TimeSeries> {
        let refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut out = vec![
            gauge("up", &refs, f64::from(u8::from(self.answered)), t),
            gauge("scrape_duration_seconds", &refs, self.duration_s, t),
            gauge("scrape_samples_scraped", &refs, count as f64, t),
            gauge(
                "perch_target_up",
                &refs,
                f64::from(u8::from(self.error.is_none())),
                t,
            ),
            gauge(
                "perch_target_since_timestamp_seconds",
                &refs,
                since as f64,
                t,
            ),
        ];
        if let Some(e) = &self.error {
            let short: String = e.chars().take(MAX_ERROR_CHARS).collect();
            let mut with_error = refs.clone();
            with_error.push(("error", short.as_str()));
            out.push(gauge("perch_target_error_info", &with_error, 1.0, t));
        }
        out
    }

    /// The target's health after this scrape, from `previous`; a change is logged once.
    pub fn health(
        &self,
        previous: Option<&TargetHealth>,
        (name, kind, address): (&str, &str, String),
        now: i64,
    ) -> TargetHealth {
        let up = self.error.is_none();
        match (&self.error, previous) {
            (Some(e), None) => tracing::warn!("{name} is down: {e}"),
            (Some(e), Some(p)) if p.up => tracing::warn!("{name} is down: {e}"),
            (None, Some(p)) if !p.up => tracing::info!("{name} is up again"),
            _ => {}
        }
        TargetHealth {
            name: name.to_owned(),
            kind: kind.to_owned(),
            address,
            up,
            since: match previous {
                Some(p) if p.up == up => p.since,
                _ => now,
            },
            last_scrape: now,
            error: self.error.clone(),
            version: self
                .version
                .clone()
                .or_else(|| previous.and_then(|p| p.version.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn names(series: &[TimeSeries]) -> Vec<String> {
        series
            .iter()
            .map(|s| {
                let get = |k: &str| {
                    s.labels
                        .iter()
                        .find(|l| l.name == k)
                        .map_or(String::new(), |l| l.value.clone())
                };
                format!("{}{}", get("__name__"), get("error"))
            })
            .collect()
    }

    #[test]
    fn a_target_is_down_with_its_reason_and_up_again_since_then() {
        let labels = vec![("job".to_owned(), "app".to_owned())];
        let down = judge(Err("cannot connect: refused".into()), None, 8.0);
        assert!(!down.answered && down.duration_s == 8.0);
        assert_eq!(
            names(&down.own_series(&labels, 0, 100, 5)),
            [
                "up",
                "scrape_duration_seconds",
                "scrape_samples_scraped",
                "perch_target_up",
                "perch_target_since_timestamp_seconds",
                "perch_target_error_infocannot connect: refused"
            ]
        );
        let first = down.health(None, ("app", "exporter", "u".into()), 100);
        assert!(!first.up && first.since == 100);
        let still = down.health(Some(&first), ("app", "exporter", "u".into()), 115);
        assert_eq!(still.since, 100, "down since the first failure");
        let up = judge(
            Ok(Scraped {
                series: Vec::new(),
                duration: Duration::from_millis(20),
            }),
            None,
            8.0,
        );
        assert_eq!(
            up.own_series(&labels, 0, 130, 5).len(),
            5,
            "no error series"
        );
        let back = up.health(Some(&still), ("app", "exporter", "u".into()), 130);
        assert!(back.up && back.since == 130 && back.error.is_none());
    }
}
