//! The write path: Prometheus remote write 1.0 into the engine, for node tokens and for
//! Editors. A request is decoded, validated against the limits and re-encoded, so the
//! engine only ever sees what Perch checked; for a node token, `node_id` and `node_name` are
//! set to the node's own on every series, whatever the client sent, so one machine cannot
//! write as another. A request is accepted whole or refused whole, and the client hears
//! "success" only after the engine accepted the data.

use std::time::Duration;

use http::StatusCode;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http_body_util::Full;
use perch_remote_write::{Limits, NodeStamp, rewrite, rewrite_admitted};

use crate::request::{Answer, ApiError, Body, Ctx, EngineOp, no_content};
use crate::selfmon::NodeLabels;
use perch_auth::Via;
use perch_time::unix_now_ms;

/// The largest request body the write paths read (compressed).
pub const WRITE_BODY_LIMIT: usize = 8 * 1024 * 1024;

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

pub async fn remote_write(ctx: Ctx) -> Answer {
    let limits = Limits {
        max_compressed_bytes: WRITE_BODY_LIMIT,
        ..Limits::default()
    };
    let node = match ctx.who.as_ref().map(|p| (&p.via, p.name.as_str())) {
        Some((Via::Node { node_id, last_push }, name)) => {
            Some((*node_id, *last_push, node_id.to_string(), name))
        }
        _ => None,
    };
    let stamp = node.as_ref().map(|(_, _, id, name)| NodeStamp {
        node_id: id,
        node_name: name,
    });
    // Decode, validate, stamp and re-encode in one pass over the body (zero-copy); a node
    // within its limit of new series.
    let rewritten = match &node {
        Some((id, _, _, name)) => {
            let metrics = &ctx.app.metrics;
            let labels = NodeLabels {
                node_name: (*name).to_owned(),
            };
            let admit = |fresh: &[u64]| match ctx.app.series_limit.admit(*id, fresh) {
                Ok(new) => {
                    if new > 0 {
                        metrics
                            .node_new_series
                            .get_or_create(&labels)
                            .inc_by(new as u64);
                    }
                    Ok(())
                }
                Err(over) => {
                    metrics.node_series_refused.get_or_create(&labels).inc();
                    Err(ApiError::SeriesLimit {
                        node: labels.node_name.clone(),
                        over,
                    })
                }
            };
            rewrite_admitted(ctx.req.body(), &limits, unix_now_ms(), stamp, admit)
                .map_err(ApiError::WriteData)??
        }
        None => {
            rewrite(ctx.req.body(), &limits, unix_now_ms(), None).map_err(ApiError::WriteData)?
        }
    };
    let node = node.map(|(id, last_push, _, _)| (id, last_push));
    let (series, recalled) = (rewritten.series, rewritten.recalled);
    let body = bytes::Bytes::from(rewritten.body);
    let resp = ctx
        .app
        .engine
        .send_write(|uri| {
            http::Request::post(uri)
                .header(CONTENT_TYPE, "application/x-protobuf")
                .header(CONTENT_ENCODING, "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(Full::new(body))
        })
        .await
        .map_err(|e| ApiError::engine(EngineOp::Write, e))?;
    let status = resp.status();
    if status.is_success() {
        let metrics = &ctx.app.metrics;
        metrics.write_series.inc_by(series as u64);
        metrics.write_series_recalled.inc_by(recalled as u64);
        if let Some((id, last_push)) = node {
            ctx.app.auth.node_pushed(id, last_push);
        }
        return Ok(no_content());
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
