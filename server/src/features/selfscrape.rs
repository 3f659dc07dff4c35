//! Perch's own metrics in the engine: every interval, what `/metrics` shows is written into
//! the metrics engine as the node `perch-server`, so that rules (the brute-force and
//! certificate alerts, node down) and dashboards can use them. Series that name a node
//! (`perch_node_last_push_timestamp_seconds`, a node's new series) keep its `node_name`
//! (Prometheus's `honor_labels`); the rest are `perch-server`'s.

use std::sync::Arc;
use std::time::Duration;

use perch_exposition::{Format, ScrapeOptions, TargetLabels};
use perch_remote_write::WriteRequest;
use perch_time::unix_now_ms;
use tokio::sync::watch;

use crate::request::{App, write_to_engine};

/// The node name (and id) Perch's own series carry.
pub const SELF_NODE: &str = "perch-server";

/// Rebuilds the last-push gauge from the enrolled nodes (their ids, names and labels, as
/// their own series carry them): the exact time of a push since Perch started, else the
/// user store's (kept to the minute); nodes that never pushed are left out.
fn sync_last_push(app: &App) {
    let Ok(nodes) = app.auth.nodes() else {
        return;
    };
    let exact = app
        .metrics
        .node_push_times
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let family = &app.metrics.node_last_push;
    family.clear();
    for node in nodes {
        let Some(t) = exact.get(&node.id).copied().or(node.last_push) else {
            continue;
        };
        let mut labels: Vec<(String, String)> = node
            .labels
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "node_id" | "node_name" | "job"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.push(("node_id".into(), node.node_id()));
        labels.push(("node_name".into(), node.name.clone()));
        family.get_or_create(&labels).set(t);
    }
}

async fn scrape_once(app: &App, options: &ScrapeOptions) -> Result<(), String> {
    let text = app.metrics.encode();
    let parsed = perch_exposition::parse(
        text.as_bytes(),
        Format::OpenMetrics1,
        unix_now_ms(),
        options,
    )
    .map_err(|e| format!("Perch's own metrics do not parse: {e}"))?;
    let body = WriteRequest {
        timeseries: parsed.series,
    }
    .encode_body();
    write_to_engine(&app.engine, bytes::Bytes::from(body))
        .await
        .map_err(|e| e.to_string())
}

/// Writes Perch's own metrics every `every` until `shutdown` turns true.
pub fn spawn(
    app: Arc<App>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let options = ScrapeOptions {
            target_labels: TargetLabels::new([
                ("node_id", SELF_NODE),
                ("node_name", SELF_NODE),
                ("job", "perch"),
            ])
            .expect("constant labels are valid"),
            honor_labels: true,
            max_series: 1_000_000,
        };
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            sync_last_push(&app);
            match scrape_once(&app, &options).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("Perch's own metrics are written to the engine again");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "Perch's own metrics could not be written to the engine; retrying each interval");
                }
                Err(_) => {}
            }
        }
    })
}
