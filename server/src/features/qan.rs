//! Query Analytics' write path: `POST /v1/qan/report`, one interval of one database
//! service's busiest queries from its node's agent. New texts go to the text store (capped
//! per service), the figures become series in the metrics engine under the node's own
//! identity, and the agent hears which texts the server still needs. Fingerprints over the
//! cap, or whose text the server does not have, are counted under "other", so the service's
//! totals stay right while its series stay bounded.

use std::collections::{BTreeMap, HashSet};

use http::StatusCode;
use perch_qan::{
    Figures, MAX_LABEL_VALUE, METRICS, OTHER, Registered, Report, ReportAnswer, Store, StoreError,
    is_fingerprint_id, scope, service_labels_problem,
};
use perch_remote_write::{
    Label, Sample, TimeSeries, WriteRequest, is_label_name, series_fingerprint,
};

use crate::request::{
    Answer, ApiError, Ctx, admit_node_series, json, json_body, valid_service, write_to_engine,
};
use perch_auth::Via;
use perch_time::unix_now;

/// The most fingerprints one report may hold.
const MAX_QUERIES: usize = 10_000;
/// How far ahead of the server's clock a report may end (seconds).
const MAX_SKEW: i64 = 300;
/// The longest interval one report may cover (seconds).
const MAX_SPAN: i64 = 86_400;

fn bad(what: String) -> ApiError {
    ApiError::BadInput(what)
}

/// Why `report` cannot be taken, if it cannot.
fn check(report: &Report, now: i64) -> Result<(), ApiError> {
    if !valid_service(&report.service) {
        return Err(bad(format!(
            "service {:?}: use 1 to 64 letters, digits, '_', '-' or '.'",
            report.service
        )));
    }
    let source_fits = matches!(
        (report.service_type.as_str(), report.source.as_str()),
        ("mysql", "perfschema") | ("postgresql", "pgstatements")
    );
    if !source_fits {
        return Err(bad(format!(
            "service_type {:?} with source {:?}: use mysql with perfschema, or postgresql with pgstatements",
            report.service_type, report.source
        )));
    }
    if report.start < 0
        || report.start >= report.end
        || report.end.saturating_sub(report.start) > MAX_SPAN
    {
        return Err(bad(format!(
            "the interval {}..{} is empty, longer than a day or before 1970",
            report.start, report.end
        )));
    }
    if report.end > now + MAX_SKEW {
        return Err(bad(format!(
            "the interval ends {} s in the future: check this machine's clock",
            report.end - now
        )));
    }
    if report.queries.len() > MAX_QUERIES {
        return Err(bad(format!(
            "{} queries in one report: {MAX_QUERIES} at most",
            report.queries.len()
        )));
    }
    if let Some(k) = report.labels.keys().find(|k| !is_label_name(k)) {
        return Err(bad(format!("label {k:?}: not a label name")));
    }
    let labels = report.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if let Some(problem) = service_labels_problem(labels) {
        return Err(bad(problem));
    }
    for q in &report.queries {
        if !is_fingerprint_id(&q.id) || q.id == OTHER {
            return Err(bad(format!(
                "fingerprint id {:?}: 1 to 64 letters, digits, '-' or '_'",
                q.id
            )));
        }
        if q.schema.len() > MAX_LABEL_VALUE || q.username.len() > MAX_LABEL_VALUE {
            return Err(bad(format!(
                "fingerprint {}: schema or user over {MAX_LABEL_VALUE} bytes",
                q.id
            )));
        }
        if !q.figures.is_sane() {
            return Err(bad(format!(
                "fingerprint {}: a figure is negative or not a number",
                q.id
            )));
        }
    }
    if report.other.as_ref().is_some_and(|o| !o.is_sane()) {
        return Err(bad(
            "the other row: a figure is negative or not a number".into()
        ));
    }
    if let Some(t) = report.texts.iter().find(|t| !is_fingerprint_id(&t.id)) {
        return Err(bad(format!("text of {:?}: not a fingerprint id", t.id)));
    }
    Ok(())
}

/// One series: `name` with `labels` (sorted here), one sample.
fn series(name: &str, labels: &BTreeMap<&str, &str>, value: f64, t: i64) -> TimeSeries {
    let mut all = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    all.extend(
        labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| Label {
                name: (*k).to_owned(),
                value: (*v).to_owned(),
            }),
    );
    all.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels: all,
        samples: vec![Sample {
            value,
            timestamp: t,
        }],
    }
}

/// Every non-zero figure of every row as series at the interval's end.
fn to_series(report: &Report, node: (&str, &str), rows: &[Row<'_>]) -> Vec<TimeSeries> {
    let mut base: BTreeMap<&str, &str> = report
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    base.insert("node_id", node.0);
    base.insert("node_name", node.1);
    base.insert("service_name", &report.service);
    base.insert("service_type", &report.service_type);
    let t = report.end * 1000;
    let mut out = Vec::new();
    for (id, schema, username, figures) in rows {
        let mut labels = base.clone();
        labels.insert("fingerprint", id);
        labels.insert("schema", schema);
        labels.insert("username", username);
        for m in METRICS {
            let v = (m.get)(figures);
            if v != 0.0 {
                out.push(series(m.name, &labels, v, t));
            }
        }
    }
    out
}

/// A fingerprint's row as it is written: id, schema, user, figures.
type Row<'a> = (&'a str, &'a str, &'a str, Figures);

/// Keeps the report's new texts, and sorts its rows: those whose text the store has keep
/// their own series; the rest are summed into "other", and the agent is asked for their
/// texts while the service has room, else they count as dropped.
fn admit<'a>(
    report: &'a Report,
    store: &Store,
    scope: &str,
    now: i64,
) -> Result<(Vec<Row<'a>>, ReportAnswer), StoreError> {
    let mut refused: HashSet<&str> = HashSet::new();
    for text in &report.texts {
        match store.register(scope, &report.service_type, text, now)? {
            Registered::New | Registered::Known => {}
            Registered::OverCap | Registered::Full => {
                refused.insert(&text.id);
            }
        }
    }
    let room = store.has_room(scope);
    let mut answer = ReportAnswer::default();
    let mut other = report.other.unwrap_or_default();
    let mut rows: Vec<Row<'a>> = Vec::with_capacity(report.queries.len() + 1);
    for q in &report.queries {
        if !refused.contains(q.id.as_str()) && store.seen(scope, &q.id, now)? {
            rows.push((&q.id, &q.schema, &q.username, q.figures));
            continue;
        }
        other.add(&q.figures);
        if refused.contains(q.id.as_str()) {
            continue;
        }
        if room {
            if !answer.unknown.contains(&q.id) {
                answer.unknown.push(q.id.clone());
            }
        } else {
            refused.insert(&q.id);
        }
    }
    answer.dropped = refused.len() as u64;
    if !other.is_empty() {
        rows.push((OTHER, "", "", other));
    }
    Ok((rows, answer))
}

pub async fn report(ctx: Ctx) -> Answer {
    let Some((node_id, node_name)) = ctx.who.as_ref().and_then(|p| match p.via {
        Via::Node { node_id, .. } => Some((node_id, p.name.clone())),
        _ => None,
    }) else {
        return Err(ApiError::NotAllowed(
            "Query Analytics reports come from a node's agent (its node token)".into(),
        ));
    };
    let report: Report = json_body(ctx.req.body())?;
    let now = unix_now();
    check(&report, now)?;
    let store = &ctx.app.qan;
    let scope = scope(node_id, &report.service);
    let (rows, answer) = admit(&report, store, &scope, now)?;
    // The texts are durable before the figures that point at them are written.
    store.durable().await?;
    let node_id_text = node_id.to_string();
    let series = to_series(&report, (&node_id_text, &node_name), &rows);
    if !series.is_empty() {
        // Within the node's limit of new series, as its remote writes are.
        let fresh: Vec<u64> = series.iter().map(series_fingerprint).collect();
        admit_node_series(&ctx.app, node_id, &node_name, &fresh)?;
        let body = WriteRequest { timeseries: series }.encode_body();
        write_to_engine(&ctx.app.engine, bytes::Bytes::from(body)).await?;
    }
    if answer.dropped > 0 {
        ctx.app.metrics.qan_dropped_queries.inc_by(answer.dropped);
    }
    // At most hourly a walk of the whole store: off the async workers.
    let pruned = ctx.app.qan.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = pruned.prune(now) {
            tracing::warn!("Query Analytics: pruning old query texts: {e}");
        }
    });
    let (texts, bytes) = store.size();
    ctx.app.metrics.qan_texts.set(texts as i64);
    ctx.app.metrics.qan_text_bytes.set(bytes as i64);
    Ok(json(StatusCode::OK, &answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_qan::{QueryRow, QueryText};

    fn report() -> Report {
        Report {
            service: "db-1".into(),
            service_type: "mysql".into(),
            source: "perfschema".into(),
            labels: [("environment".to_owned(), "prod".to_owned())].into(),
            start: 1000,
            end: 1010,
            queries: vec![QueryRow {
                id: "abc123".into(),
                schema: "shop".into(),
                username: String::new(),
                figures: Figures {
                    count: 4,
                    time_s: 0.2,
                    ..Figures::default()
                },
            }],
            other: None,
            texts: vec![QueryText {
                id: "abc123".into(),
                text: "SELECT ?".into(),
                example: None,
            }],
        }
    }

    #[test]
    fn reports_are_checked() {
        assert!(check(&report(), 1010).is_ok());
        let mut r = report();
        r.labels.insert("node_id".into(), "7".into());
        assert!(check(&r, 1010).is_err(), "a report cannot set the node");
        let mut r = report();
        r.source = "pgstatements".into();
        assert!(check(&r, 1010).is_err());
        let mut r = report();
        r.queries[0].figures.time_s = f64::NAN;
        assert!(check(&r, 1010).is_err());
        let mut r = report();
        r.queries[0].id = "a b".into();
        assert!(check(&r, 1010).is_err());
        assert!(check(&report(), 500).is_err(), "ends far in the future");
        let mut r = report();
        r.start = r.end;
        assert!(check(&r, 1010).is_err());
    }

    #[test]
    fn over_the_cap_fingerprints_count_as_other_and_are_not_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let limits = perch_qan::StoreLimits {
            per_service: 1,
            ..perch_qan::StoreLimits::default()
        };
        let store = Store::open(dir.path(), limits).unwrap();
        let mut r = report();
        let second = QueryRow {
            id: "def456".into(),
            ..r.queries[0].clone()
        };
        r.queries.push(second.clone());
        r.texts.push(QueryText {
            id: "def456".into(),
            text: "SELECT ? , ?".into(),
            example: None,
        });
        let (rows, answer) = admit(&r, &store, "1/db-1", 1010).unwrap();
        assert_eq!(rows.len(), 2, "abc123 and other: {rows:?}");
        assert_eq!(rows[0].0, "abc123");
        assert_eq!((rows[1].0, rows[1].3.count), (OTHER, 4));
        assert_eq!(answer.dropped, 1);
        assert!(answer.unknown.is_empty());
        // Without its text, a fingerprint is "other" and asked for while there is room...
        let store2_dir = tempfile::tempdir().unwrap();
        let store2 = Store::open(store2_dir.path(), perch_qan::StoreLimits::default()).unwrap();
        let mut r2 = report();
        r2.texts.clear();
        let (rows, answer) = admit(&r2, &store2, "1/db-1", 1010).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, OTHER);
        assert_eq!(answer.unknown, ["abc123"]);
        // ...and not when the service is full.
        let mut r3 = report();
        r3.texts.clear();
        r3.queries = vec![second];
        let (_, answer) = admit(&r3, &store, "1/db-1", 1020).unwrap();
        assert!(answer.unknown.is_empty());
        assert_eq!(answer.dropped, 1);
    }

    #[test]
    fn figures_become_labelled_series_without_zeros() {
        let r = report();
        let rows = [("abc123", "shop", "", r.queries[0].figures)];
        let s = to_series(&r, ("3", "web-1"), &rows);
        assert_eq!(s.len(), 2, "count and time only");
        let labels: Vec<(&str, &str)> = s[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("__name__", "perch_qan_queries"),
                ("environment", "prod"),
                ("fingerprint", "abc123"),
                ("node_id", "3"),
                ("node_name", "web-1"),
                ("schema", "shop"),
                ("service_name", "db-1"),
                ("service_type", "mysql"),
            ]
        );
        assert_eq!(s[0].samples[0].timestamp, 1_010_000);
    }
}
