//! Small pieces every handler uses: responses, cookies, forms, JSON, times.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::AuthError;
use crate::http::Body;

pub const SESSION_COOKIE: &str = "__Host-perch_session";
pub const LOGIN_CSRF_COOKIE: &str = "__Host-perch_csrf";

/// The host (and port) the client addressed: `Host` (HTTP/1.1) or the URI authority (h2).
pub fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(crate::http::full(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn html(status: StatusCode, page: Result<String, perch_ui::Error>) -> Response<Body> {
    match page {
        Ok(body) => {
            let mut resp = respond(status, "text/html; charset=utf-8", body);
            resp.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "Internal error.\n",
            )
        }
    }
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = respond(status, "application/json", body);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn no_content() -> Response<Body> {
    let mut resp = Response::new(crate::http::full(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// `{"error": "...", "code": "..."}` with the error's status; internals are logged, not shown.
pub fn json_error(e: &AuthError) -> Response<Body> {
    if matches!(e, AuthError::Store(_) | AuthError::Hash(_)) {
        tracing::error!(error = ?e, "request failed");
    }
    #[derive(Serialize)]
    struct Out<'a> {
        error: String,
        code: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        suggestion: Option<&'a str>,
    }
    let suggestion = match e {
        AuthError::Policy(r) => r.suggestion.as_deref(),
        _ => None,
    };
    let mut resp = json(
        e.status(),
        &Out {
            error: e.to_string(),
            code: e.code(),
            suggestion,
        },
    );
    add_retry_after(&mut resp, e);
    if matches!(e, AuthError::Unauthenticated) {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"perch\""),
        );
    }
    resp
}

pub fn add_retry_after(resp: &mut Response<Body>, e: &AuthError) {
    if let Some(wait) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
    {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
}

/// 303 See Other to a path on this site.
pub fn see_other(location: &str) -> Response<Body> {
    let mut resp = respond(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        "See other.\n",
    );
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    resp.headers_mut().insert(LOCATION, value);
    resp
}

/// A `next` target is only ever a path on this site.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if ok { next } else { "/" }
}

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

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The fields of an urlencoded form body.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The query string's fields.
pub fn query<B>(req: &Request<B>) -> Form {
    Form::parse(req.uri().query().unwrap_or("").as_bytes())
}

/// A JSON body, or a 400 that says what is wrong with it.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(body)
        .map_err(|e| AuthError::BadInput(format!("the JSON body is not valid: {e}")))
}

/// `2026-11-23 14:05` (UTC) for tables.
pub fn when(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}
