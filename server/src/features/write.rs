//! The write path: Prometheus remote write 1.0 into the engine, for node tokens and for
//! Editors. A request is decoded, validated against the limits and re-encoded, so the
//! engine only ever sees what Perch checked; for a node token, `node_id` and `node_name` are
//! set to the node's own on every series, whatever the client sent, so one machine cannot
//! write as another. A request is accepted whole or refused whole, and the client hears
//! "success" only after the engine accepted the data.

use perch_remote_write::{Limits, NodeStamp, rewrite, rewrite_admitted};

use crate::request::{Answer, ApiError, Ctx, admit_node_series, no_content, write_to_engine};
use perch_auth::Via;
use perch_time::unix_now_ms;

/// The largest request body the write paths read (compressed).
pub const WRITE_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub async fn remote_write(ctx: Ctx) -> Answer {
    let limits = Limits {
        max_compressed_bytes: WRITE_BODY_LIMIT,
        // Query Analytics' series come from its reports, under their caps: none is forged.
        reserved_names: perch_qan::SERIES_NAMES,
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
            let admit = |fresh: &[u64]| admit_node_series(&ctx.app, *id, name, fresh);
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
    write_to_engine(&ctx.app.engine, body).await?;
    let metrics = &ctx.app.metrics;
    metrics.write_series.inc_by(series as u64);
    metrics.write_series_recalled.inc_by(recalled as u64);
    if let Some((id, last_push)) = node {
        ctx.app.auth.node_pushed(id, last_push);
        metrics
            .node_push_times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, unix_now_ms() / 1000);
    }
    Ok(no_content())
}
