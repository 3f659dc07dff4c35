//! Perch's own metrics in the engine: every interval, what `/metrics` shows is written into
//! the metrics engine as the node `perch-server`, so that rules (the brute-force and
//! certificate alerts, node down) and dashboards can use them. Before each round, each
//! enrolled node's last accepted push is brought into `perch_node_last_push_timestamp_seconds`
//! (from the user store after a restart, until the node pushes again) and deleted nodes
//! leave it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use perch_exposition::{Format, ScrapeOptions, TargetLabels};
use perch_remote_write::WriteRequest;
use perch_time::unix_now_ms;
use tokio::sync::watch;

use crate::request::{App, write_to_engine};
use crate::selfmon::NodeLabels;

/// The node name (and id) Perch's own series carry.
pub const SELF_NODE: &str = "perch-server";

/// Brings the last-push gauge in line with the enrolled nodes; `known` is the set of names
/// it held after the previous round.
fn sync_last_push(app: &App, known: &mut HashSet<String>) {
    let Ok(nodes) = app.auth.nodes() else {
        return;
    };
    let family = &app.metrics.node_last_push;
    let mut now = HashSet::with_capacity(nodes.len());
    for node in nodes {
        let labels = NodeLabels {
            node_name: node.name.clone(),
        };
        if let Some(t) = node.last_push {
            let gauge = family.get_or_create(&labels);
            if gauge.get() < t {
                gauge.set(t);
            }
        }
        now.insert(node.name);
    }
    for gone in known.difference(&now) {
        family.remove(&NodeLabels {
            node_name: gone.clone(),
        });
    }
    *known = now;
}

async fn scrape_once(app: &App, options: &ScrapeOptions) -> Result<(), String> {
    let text = app.metrics.encode();
    let parsed = perch_exposition::parse(text.as_bytes(), Format::OpenMetrics1, unix_now_ms(), options)
        .map_err(|e| format!("Perch's own metrics do not parse: {e}"))?;
    let body = WriteRequest {
        timeseries: parsed.series,
    }
    .encode_body();
    write_to_engine(&app.engine, bytes::Bytes::from(body))
        .await
        .map_err(|e| format!("{e:?}"))
}

/// Writes Perch's own metrics every `every` until `shutdown` turns true.
pub fn spawn(
    app: Arc<App>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let options = ScrapeOptions {
            target_labels: TargetLabels::new([("node_id", SELF_NODE), ("node_name", SELF_NODE), ("job", "perch")])
                .expect("constant labels are valid"),
            honor_labels: false,
            max_series: 1_000_000,
        };
        let mut known = HashSet::new();
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            sync_last_push(&app, &mut known);
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
