//! Reading what a request carries: cookies, forms, the query string, JSON bodies, the host.

use http::{HeaderMap, Request};
use perch_auth::Role;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The session cookie (`__Host-`: Secure, Path=/, no Domain).
pub const SESSION_COOKIE: &str = "__Host-perch_session";
/// The double-submit CSRF cookie of the forms shown before login.
pub const LOGIN_CSRF_COOKIE: &str = "__Host-perch_csrf";

/// The host (and port) the client addressed: `Host` (HTTP/1.1) or the URI authority (h2).
/// A service name as perch-admin allows them: 1 to 64 letters, digits, `_`, `-` or `.`.
pub fn valid_service(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// A `next` target is only ever a path on this site.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if ok { next } else { "/" }
}

/// The value of cookie `name`, if the request carries it.
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

/// The bearer token of the `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
}

/// The fields of an urlencoded form body (or query string).
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's value; empty when it is missing.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The `role` field of a form.
pub fn role_field(f: &Form) -> Result<Role, ApiError> {
    Role::parse(f.get("role"))
        .ok_or_else(|| ApiError::BadInput("the role is viewer, editor or admin".into()))
}

/// The query string's fields.
pub fn query<B>(req: &Request<B>) -> Form {
    Form::parse(req.uri().query().unwrap_or("").as_bytes())
}

/// Whether the request says its body is of this media type.
pub fn has_content_type<B>(req: &Request<B>, media_type: &str) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(media_type))
}

/// A JSON body, or a 400 that says what is wrong with it.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadInput(format!("the JSON body is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_stay_on_this_site() {
        assert_eq!(safe_next("/nodes?x=1"), "/nodes?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn cookies_and_bearer_tokens_are_found() {
        let mut h = HeaderMap::new();
        h.append(http::header::COOKIE, "a=1; b=2".parse().unwrap());
        h.append(http::header::COOKIE, "c=3".parse().unwrap());
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "d"), None);
        assert_eq!(bearer(&h), None);
        h.insert(http::header::AUTHORIZATION, "bEaReR tok".parse().unwrap());
        assert_eq!(bearer(&h), Some("tok"));
        h.insert(http::header::AUTHORIZATION, "Basic eA==".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
