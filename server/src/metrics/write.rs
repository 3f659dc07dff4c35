//! The write path: Prometheus remote write 1.0 into the engine, for node tokens and for
//! Editors. A request is decoded, validated against the limits and re-encoded, so the
//! engine only ever sees what Perch checked; for a node token, `node_id` and `node_name` are
//! set to the node's own on every series, whatever the client sent, so one machine cannot
//! write as another. A request is accepted whole or refused whole, and the client hears
//! "success" only after the engine accepted the data.

use std::time::Duration;

use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use perch_remote_write::{DecodeError, Limits, NodeStamp, rewrite};

use super::EngineError;
use crate::auth::Via;
use crate::http::routes::{Ctx, Handled};
use crate::web::support;

/// The largest request body the write paths read (compressed).
pub const WRITE_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// How much of the engine's answer to a refused write is read (bytes), and for how long:
/// reading it whole lets the connection go back to the pool, and its start goes to the log.
const ENGINE_ERROR_BYTES: usize = 4096;
const ENGINE_ERROR_WAIT: Duration = Duration::from_secs(1);

/// Perch's own path and PMM's.
pub fn is_write_path(path: &str) -> bool {
    path == "/v1/metrics/write" || path == "/victoriametrics/api/v1/write"
}

fn error(status: StatusCode, code: &str, message: &str) -> http::Response<crate::http::Body> {
    let mut resp = support::json(status, &serde_json::json!({"error": message, "code": code}));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("10"));
    }
    resp
}

/// The start of the engine's answer to a write it refused, for the log (empty when it is
/// not there within [`ENGINE_ERROR_WAIT`]). Read whole (it is short), the answer frees its
/// connection for the next write; dropped unread, the connection would be closed.
async fn engine_says(resp: http::Response<crate::http::Body>) -> String {
    let body = crate::proxy::read_body(resp.into_body(), ENGINE_ERROR_BYTES);
    match tokio::time::timeout(ENGINE_ERROR_WAIT, body).await {
        Ok(Ok(body)) => String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(512)
            .collect(),
        _ => String::new(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn remote_write(ctx: Ctx) -> Handled {
    Box::pin(async move {
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
        // Decode, validate, stamp and re-encode in one pass over the body (zero-copy).
        let rewritten = match rewrite(ctx.req.body(), &limits, now_ms(), stamp) {
            Ok(r) => r,
            Err(
                e @ (DecodeError::CompressedTooLarge { .. }
                | DecodeError::DecompressedTooLarge { .. }),
            ) => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &e.to_string());
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_data", &e.to_string()),
        };
        let node = node.map(|(id, last_push, _, _)| (id, last_push));
        let (series, recalled) = (rewritten.series, rewritten.recalled);
        let body = bytes::Bytes::from(rewritten.body);
        let answer = ctx
            .app
            .engine
            .send_write(|uri| {
                http::Request::post(uri)
                    .header(CONTENT_TYPE, "application/x-protobuf")
                    .header(CONTENT_ENCODING, "snappy")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(Full::new(body))
            })
            .await;
        match answer {
            Err(EngineError::Unavailable(why)) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &format!("the metrics engine is {why}; keep the samples and retry"),
            ),
            Err(EngineError::Timeout(_)) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the metrics engine did not answer in time; retry",
            ),
            Err(EngineError::NoAnswer) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the metrics engine did not answer; retry",
            ),
            Err(EngineError::BadRequest) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
            Ok(resp) if resp.status().is_success() => {
                let metrics = &ctx.app.metrics;
                metrics.write_series.inc_by(series as u64);
                metrics.write_series_recalled.inc_by(recalled as u64);
                if let Some((id, last_push)) = node {
                    ctx.app.auth.node_pushed(id, last_push);
                }
                support::no_content()
            }
            Ok(resp)
                if matches!(
                    resp.status(),
                    StatusCode::BAD_REQUEST
                        | StatusCode::CONFLICT
                        | StatusCode::UNPROCESSABLE_ENTITY
                ) =>
            {
                // The engine refuses the data itself (a Prometheus receiver refuses samples
                // out of order or duplicated): retrying cannot help, so the client drops it.
                let status = resp.status();
                let said = engine_says(resp).await;
                tracing::warn!(%status, engine = %said, "the metrics engine refused a write's data");
                error(
                    StatusCode::BAD_REQUEST,
                    "refused_by_engine",
                    &format!(
                        "the metrics engine refused the data (HTTP {status}): out-of-order or duplicate samples are the usual cause; do not retry this request"
                    ),
                )
            }
            Ok(resp) => {
                // Perch's own set-up is refused (401/403 credentials, 404 a wrong write URL)
                // or the engine is failing: the data is fine, so clients keep it and retry.
                let status = resp.status();
                let said = engine_says(resp).await;
                tracing::error!(%status, engine = %said, "the metrics engine refused a write");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    &format!("the metrics engine answered {status}; retry"),
                )
            }
        }
    })
}
