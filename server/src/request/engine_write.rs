//! Writing into the metrics engine on a client's behalf: one remote-write body sent, and
//! the engine's answer turned into what the client hears. Shared by remote write and
//! Query Analytics' reports.

use std::time::Duration;

use http::StatusCode;

use super::{ApiError, App, Body, EngineOp};
use crate::engine::Engine;
use crate::selfmon::NodeLabels;

/// How much of the engine's answer to a refused write is read (bytes), and for how long:
/// reading it whole lets the connection go back to the pool, and its start goes to the log.
const ENGINE_ERROR_BYTES: usize = 4096;
const ENGINE_ERROR_WAIT: Duration = Duration::from_secs(1);

/// The start of the engine's answer to a write it refused, for the log (empty when it is
/// not there within [`ENGINE_ERROR_WAIT`]). Read whole (it is short), the answer frees its
/// connection for the next write; dropped unread, the connection would be closed.
async fn engine_says(resp: http::Response<Body>) -> String {
    let body = perch_upstream::read_body(resp.into_body(), ENGINE_ERROR_BYTES);
    match tokio::time::timeout(ENGINE_ERROR_WAIT, body).await {
        Ok(Ok(body)) => String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(512)
            .collect(),
        _ => String::new(),
    }
}

/// Sends a snappy-compressed remote-write `body`; `Ok` once the engine accepted it.
pub async fn write_to_engine(engine: &Engine, body: bytes::Bytes) -> Result<(), ApiError> {
    let resp = engine
        .remote_write(body)
        .await
        .map_err(|e| ApiError::engine(EngineOp::Write, e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let said = engine_says(resp).await;
    if matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
    ) {
        // The engine refuses the data itself (a Prometheus receiver refuses samples out of
        // order or duplicated): retrying cannot help, so the client drops it.
        tracing::warn!(%status, engine = %said, "the metrics engine refused a write's data");
        Err(ApiError::EngineRefusedData(status))
    } else {
        // Perch's own set-up is refused (401/403 credentials, 404 a wrong write URL) or the
        // engine is failing: the data is fine, so clients keep it and retry.
        tracing::error!(%status, engine = %said, "the metrics engine refused a write");
        Err(ApiError::EngineFailed(status))
    }
}

/// Admits a write by the node `node_id` (named `node_name`) whose series have these
/// fingerprints, within the node's limit of new series; counted either way. Shared by
/// remote write and Query Analytics' reports, so that neither can flood the engine.
pub fn admit_node_series(
    app: &App,
    node_id: u64,
    node_name: &str,
    fresh: &[u64],
) -> Result<(), ApiError> {
    // The node's label is made only when there is something to count: most writes send
    // no new series.
    let labels = || NodeLabels {
        node_name: node_name.to_owned(),
    };
    match app.series_limit.admit(node_id, fresh) {
        Ok(0) => Ok(()),
        Ok(new) => {
            app.metrics
                .node_new_series
                .get_or_create(&labels())
                .inc_by(new as u64);
            Ok(())
        }
        Err(over) => {
            app.metrics
                .node_series_refused
                .get_or_create(&labels())
                .inc();
            Err(ApiError::SeriesLimit {
                node: node_name.to_owned(),
                over,
            })
        }
    }
}
