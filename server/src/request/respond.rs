//! Building responses: a body with its type, pages, JSON, redirects, cookies.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode};
use perch_upstream::{Body, full};
use serde::Serialize;

use super::ApiError;

/// `body` with its status and content type.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Plain text.
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body)
}

/// A rendered page (never cached); a template that fails to render is an error for the edge.
pub fn html(
    status: StatusCode,
    page: Result<String, perch_ui::Error>,
) -> Result<Response<Body>, ApiError> {
    let body = page.map_err(ApiError::Render)?;
    let mut resp = respond(status, "text/html; charset=utf-8", body);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `value` as JSON (never cached).
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = respond(status, "application/json", body);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn no_content() -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// 303 See Other to a path on this site.
pub fn see_other(location: &str) -> Response<Body> {
    let mut resp = text(StatusCode::SEE_OTHER, "See other.\n");
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    resp.headers_mut().insert(LOCATION, value);
    resp
}

/// A `Secure; HttpOnly; SameSite=Strict` cookie for the whole site.
pub fn set_cookie(resp: &mut Response<Body>, name: &str, value: &str, max_age_s: u64) {
    let cookie =
        format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

pub fn clear_cookie(resp: &mut Response<Body>, name: &str) {
    set_cookie(resp, name, "", 0);
}
