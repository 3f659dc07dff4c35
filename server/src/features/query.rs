//! The query path: `/prometheus/api/v1/*` for Viewer and up, forwarded to the engine's
//! `/api/v1/*`, so that Grafana's Prometheus data source works against
//! `https://host/prometheus` with a Viewer token. The answer streams back as the engine
//! writes it, through the upstream client (so the client's token and cookies stay at
//! Perch). Errors keep Prometheus's JSON shape (`{"status":"error","errorType":...}`).

use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use perch_upstream::Forwarded;

use crate::request::{Answer, ApiError, Ctx, EngineOp, full};

/// The read-only endpoints of the Prometheus HTTP API that are forwarded.
fn allowed(rest: &str) -> bool {
    matches!(
        rest,
        "query"
            | "query_range"
            | "series"
            | "labels"
            | "metadata"
            | "status/buildinfo"
            | "query_exemplars"
    ) || rest
        .strip_prefix("label/")
        .and_then(|r| r.strip_suffix("/values"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// The request headers a query carries to the engine.
const QUERY_HEADERS: [http::header::HeaderName; 5] = [
    http::header::ACCEPT,
    http::header::ACCEPT_ENCODING,
    http::header::CONTENT_TYPE,
    http::header::CONTENT_LENGTH,
    http::header::USER_AGENT,
];

fn keep_only(headers: &mut http::HeaderMap, allowed: &[http::header::HeaderName]) {
    let drop: Vec<http::header::HeaderName> = headers
        .keys()
        .filter(|k| !allowed.contains(k))
        .cloned()
        .collect();
    for name in drop {
        headers.remove(name);
    }
}

pub async fn forward_query(ctx: Ctx) -> Answer {
    let rest = ctx.param().to_owned();
    if !allowed(&rest) {
        return Err(ApiError::QueryNotServed(rest));
    }
    let who = ctx.who.as_ref().map_or_else(String::new, |p| p.actor());
    let permit = ctx
        .app
        .query_limiter
        .try_acquire(&who)
        .ok_or(ApiError::TooManyQueries)?;
    let query = ctx
        .req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let from = Forwarded::of(&ctx.req, ctx.client(), "https");
    let mut request = ctx.req.map(full);
    // Only what describes the query reaches the engine: no tenant or routing headers
    // (X-Scope-OrgID, THANOS-TENANT, ...) from the client, whatever the engine is.
    keep_only(request.headers_mut(), &QUERY_HEADERS);
    let resp = ctx
        .app
        .engine
        .forward_query(request, &format!("/api/v1/{rest}{query}"), &from)
        .await
        .map_err(|e| ApiError::engine(EngineOp::Query, e))?;
    let (parts, body) = resp.into_parts();
    // The permit is held until the answer has been streamed out.
    let body = body
        .map_err(move |e| {
            let _ = &permit;
            e
        })
        .boxed_unsync();
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    // Only what describes the body: the engine's other headers (CORS, cookies) are not
    // Perch's to pass on.
    for name in [CONTENT_TYPE, CONTENT_ENCODING, VARY] {
        if let Some(value) = parts.headers.get(&name) {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_identity_headers_never_reach_the_engine() {
        let mut h = http::HeaderMap::new();
        for (k, v) in [
            ("accept", "application/json"),
            ("accept-encoding", "gzip"),
            ("x-scope-orgid", "other-tenant"),
            ("thanos-tenant", "other"),
            ("cookie", "a=b"),
            ("authorization", "Bearer x"),
            ("host", "perch"),
        ] {
            h.insert(http::header::HeaderName::from_static(k), v.parse().unwrap());
        }
        keep_only(&mut h, &QUERY_HEADERS);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept", "accept-encoding"]);
    }

    #[test]
    fn only_the_read_api_is_forwarded() {
        for ok in [
            "query",
            "query_range",
            "series",
            "labels",
            "label/job/values",
            "metadata",
            "status/buildinfo",
        ] {
            assert!(allowed(ok), "{ok}");
        }
        for no in [
            "admin/tsdb/delete_series",
            "write",
            "import",
            "label//values",
            "label/a/b/values",
            "../x",
        ] {
            assert!(!allowed(no), "{no}");
        }
    }
}
