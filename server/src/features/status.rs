//! What the server says about itself: readiness (`/v1/readyz`), its own metrics
//! (`/metrics`), and the static files its pages use.

use std::sync::atomic::Ordering;

use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};

use crate::request::{Answer, ApiError, Ctx, json, respond};

/// Ready when the server is not shutting down and the metrics engine, vmalert and
/// Alertmanager answer; the body says which part is not ready. (Load balancers call this
/// often: the ready answer is a constant.)
pub async fn readyz(ctx: Ctx) -> Answer {
    const READY: &str = r#"{"checks":{"alertmanager":"ok","metrics_engine":"ok","store":"ok","tls":"ok","vmalert":"ok"},"status":"ready"}"#;
    let draining = ctx.app.draining.load(Ordering::Relaxed);
    let (engine_ok, engine) = ctx.app.engine.readiness();
    let alerting = ctx.app.alerting.readiness();
    let store_fault = ctx.app.auth.store_fault();
    let mut resp =
        if engine_ok && alerting.iter().all(|(_, ok, _)| *ok) && store_fault.is_none() && !draining
        {
            respond(StatusCode::OK, "application/json", READY)
        } else {
            let status = if draining {
                "shutting_down"
            } else {
                "not_ready"
            };
            let store = store_fault.map_or("ok".to_owned(), |why| format!("unavailable: {why}"));
            let mut checks =
                serde_json::json!({"tls": "ok", "metrics_engine": engine, "store": store});
            for (name, _, line) in alerting {
                checks[name] = line.into();
            }
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": status, "checks": checks}),
            )
        };
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Perch's own metrics, in the OpenMetrics text format.
pub async fn metrics(ctx: Ctx) -> Answer {
    let mut resp = respond(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ctx.app.metrics.encode(),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// A static file of the pages (CSS, the chart script), cached for an hour.
pub async fn asset(ctx: Ctx) -> Answer {
    let (bytes, content_type) = perch_ui::asset(ctx.param()).ok_or(ApiError::NoAsset)?;
    let mut resp = respond(StatusCode::OK, content_type, bytes);
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(resp)
}
