//! The query path: `/prometheus/api/v1/*` for Viewer and up, forwarded to the engine's
//! `/api/v1/*`, so that Grafana's Prometheus data source works against
//! `https://host/prometheus` with a Viewer token. The answer streams back as the engine
//! writes it, through the proxy core (so the client's token and cookies stay at Perch).
//! Errors keep Prometheus's JSON shape (`{"status":"error","errorType":...}`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::EngineError;
use crate::http::Body;
use crate::http::routes::{Ctx, Handled};
use crate::proxy::Forwarded;

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

/// At most `per_user` queries at once for each user or token.
#[derive(Debug)]
pub struct QueryLimiter {
    per_user: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl QueryLimiter {
    pub fn new(per_user: usize) -> Self {
        Self {
            per_user: per_user.max(1),
            slots: Mutex::default(),
        }
    }

    fn try_acquire(&self, who: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(who.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_user)))
            .clone();
        semaphore.try_acquire_owned().ok()
    }
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

/// Prometheus's error shape.
pub fn prom_error(status: StatusCode, error_type: &str, error: &str) -> Response<Body> {
    let body = serde_json::json!({"status": "error", "errorType": error_type, "error": error});
    let mut resp = Response::new(crate::http::full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

pub fn forward_query(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let rest = ctx.params.first().cloned().unwrap_or_default();
        if !allowed(&rest) {
            return prom_error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("/api/v1/{rest} is not served here"),
            );
        }
        let who = ctx.who.as_ref().map_or_else(String::new, |p| p.actor());
        let Some(permit) = ctx.app.query_limiter.try_acquire(&who) else {
            return prom_error(
                StatusCode::TOO_MANY_REQUESTS,
                "unavailable",
                "too many queries at once for this user; retry when one finishes",
            );
        };
        let query = ctx
            .req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let from = Forwarded::of(&ctx.req, ctx.client(), "https");
        let mut request = ctx.req.map(crate::http::full);
        // Only what describes the query reaches the engine: no tenant or routing headers
        // (X-Scope-OrgID, THANOS-TENANT, ...) from the client, whatever the engine is.
        keep_only(request.headers_mut(), &QUERY_HEADERS);
        let answer = ctx
            .app
            .engine
            .forward_query(request, &format!("/api/v1/{rest}{query}"), &from)
            .await;
        match answer {
            Err(EngineError::Unavailable(why)) => prom_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &format!("the metrics engine is {why}"),
            ),
            Err(EngineError::Timeout(limit)) => prom_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                &format!("the query did not finish within {limit:?}"),
            ),
            Err(EngineError::NoAnswer) => prom_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the metrics engine did not answer",
            ),
            Err(EngineError::BadRequest) => prom_error(
                StatusCode::BAD_REQUEST,
                "bad_data",
                "the request target is not valid",
            ),
            Ok(resp) => {
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
                // Only what describes the body: the engine's other headers (CORS, cookies)
                // are not Perch's to pass on.
                for name in [CONTENT_TYPE, CONTENT_ENCODING, VARY] {
                    if let Some(value) = parts.headers.get(&name) {
                        out.headers_mut().insert(name, value.clone());
                    }
                }
                out.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                out
            }
        }
    })
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

    #[test]
    fn the_limiter_caps_each_user_separately() {
        let l = QueryLimiter::new(2);
        let a1 = l.try_acquire("alice");
        let a2 = l.try_acquire("alice");
        assert!(a1.is_some() && a2.is_some());
        assert!(l.try_acquire("alice").is_none());
        assert!(l.try_acquire("bob").is_some());
        drop(a1);
        assert!(l.try_acquire("alice").is_some());
    }
}
