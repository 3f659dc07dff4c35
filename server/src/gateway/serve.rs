//! One request through a proxy route: the path checked, the caller authenticated and their
//! role checked before anything is sent, the identity headers set by Perch alone, then the
//! request and its answer streamed; an upstream that fails gets a page naming it and why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{ACCEPT, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::config::MinRole;
use super::table::{Hit, ProxyRoute};

use crate::auth::{AuthError, Principal, Role};
use crate::http::routes::{self, Access, LoggedUser, RouteName};
use crate::http::{App, Body, BoxError};
use crate::proxy::{self, Edge, Forwarded, ProxyError};
use crate::web::{pages, support};

/// Marks a response that came from an upstream: its own security headers (a CSP for its
/// own scripts) are kept, not replaced by Perch's.
#[derive(Debug, Clone, Copy)]
pub struct Proxied;

/// Serves `req` on the route `hit` matched.
pub async fn serve(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
    hit: Hit,
) -> (RouteName, Response<Body>) {
    let route = match hit {
        Hit::AddSlash(route) => return ("proxy", add_slash(&route, &req)),
        Hit::Route(route) => route,
    };
    let api = !wants_html(&req);
    if has_dot_segment(req.uri().path()) {
        let resp = refuse(
            api,
            None,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The path holds a '.' or '..' segment; ask for the path itself.",
        );
        route.count(resp.status().as_u16());
        return ("proxy", resp);
    }
    let who = match routes::authenticate(&app, &req) {
        Ok(who) => who,
        Err(_) if route.spec.role == MinRole::Public => None,
        Err(e) => return ("proxy", routes::deny(&app, api, &e, None)),
    };
    let actor = who.as_ref().map(|p| LoggedUser(p.actor()));
    let mut resp = match admit(&app, &route, who.as_ref(), &req, api) {
        Some(refusal) => refusal,
        None => pass(&route, peer, req, who.as_ref(), api).await,
    };
    route.count(resp.status().as_u16());
    if let Some(actor) = actor {
        resp.extensions_mut().insert(actor);
    }
    ("proxy", resp)
}

/// `None` when `who` may use the route.
fn admit(
    app: &App,
    route: &ProxyRoute,
    who: Option<&Principal>,
    req: &Request<Incoming>,
    api: bool,
) -> Option<Response<Body>> {
    let access = match route.spec.role {
        MinRole::Public => Access::Public,
        MinRole::Role(role) => Access::Role(role),
    };
    if let Some(refusal) = routes::check_access(app, access, false, who, req, api) {
        return Some(refusal);
    }
    // Node and enrollment tokens are machines: they may use public routes only, as nobody.
    if access != Access::Public && who.is_some_and(|p| !p.is_user()) {
        return Some(routes::deny(app, api, &AuthError::Forbidden, who));
    }
    if !routes::proxy_csrf_ok(who, req) {
        return Some(routes::deny(app, api, &AuthError::Csrf, who));
    }
    None
}

async fn pass(
    route: &ProxyRoute,
    peer: SocketAddr,
    req: Request<Incoming>,
    who: Option<&Principal>,
    api: bool,
) -> Response<Body> {
    let start = Instant::now();
    let from = Forwarded::of(&req, peer.ip().to_canonical(), "https");
    let target = target(route, &req);
    let user = who.filter(|p| p.is_user());
    let mut identity = Vec::new();
    if let Some(name) = &route.spec.identity_header {
        identity.push((name.clone(), user.and_then(|p| value(&p.actor()))));
    }
    if let Some(name) = &route.spec.role_header {
        identity.push((name.clone(), user.map(|p| role_value(p.role))));
    }
    let edge = Edge {
        keep_foreign_credentials: true,
        identity,
    };
    let upstream = if proxy::wants_upgrade(&req) {
        &route.upgrade_upstream
    } else {
        &route.upstream
    };
    let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
    let outcome = proxy::forward(upstream, req, &target, &from, &edge).await;
    route.latency.observe(start.elapsed().as_secs_f64());
    match outcome {
        Ok(mut resp) => {
            route.up.set(1);
            resp.extensions_mut().insert(Proxied);
            resp
        }
        Err(e) => {
            if matches!(e, ProxyError::Connect { .. } | ProxyError::Timeout { .. }) {
                route.up.set(0);
            }
            let (status, title) = match e {
                ProxyError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "Gateway timeout"),
                ProxyError::BadTarget { .. } => (StatusCode::BAD_REQUEST, "Bad request"),
                _ => (StatusCode::BAD_GATEWAY, "Bad gateway"),
            };
            tracing::warn!(route = %route.spec.name, error = %e, "proxy request failed");
            refuse(api, who, status, title, &format!("{e}."))
        }
    }
}

/// The path and query to ask the upstream for.
fn target<B>(route: &ProxyRoute, req: &Request<B>) -> String {
    let path = req.uri().path();
    let path = if route.spec.strip_prefix {
        // The prefix ends with '/': keep it as the stripped path's start.
        &path[route.spec.prefix.len() - 1..]
    } else {
        path
    };
    match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

/// Grafana's role header takes `Viewer`, `Editor` or `Admin`.
fn role_value(role: Role) -> HeaderValue {
    HeaderValue::from_static(match role {
        Role::Viewer => "Viewer",
        Role::Editor => "Editor",
        Role::Admin => "Admin",
    })
}

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// A browser asking for a page (as opposed to a script or an API client).
fn wants_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `.` and `..` segments, also percent-encoded: an upstream that resolves them could be led
/// outside the prefix that was authorized.
fn has_dot_segment(path: &str) -> bool {
    path.bytes().any(|b| b == b'.' || b == b'%') && path.split('/').any(is_dot_segment)
}

fn is_dot_segment(seg: &str) -> bool {
    let mut rest = seg.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// `/graph` → `/graph/`, with the query kept (308: the method too).
fn add_slash<B>(route: &ProxyRoute, req: &Request<B>) -> Response<Body> {
    let location = match req.uri().query() {
        Some(q) => format!("{}?{q}", route.spec.prefix),
        None => route.spec.prefix.clone(),
    };
    let mut resp = support::respond(
        StatusCode::PERMANENT_REDIRECT,
        "text/plain; charset=utf-8",
        format!("See {location}\n"),
    );
    if let Ok(v) = HeaderValue::try_from(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// Perch's own answer: a page for a browser, JSON for the rest.
fn refuse(
    api: bool,
    who: Option<&Principal>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response<Body> {
    if api {
        let code = match status {
            StatusCode::GATEWAY_TIMEOUT => "upstream_timeout",
            StatusCode::BAD_GATEWAY => "upstream_unavailable",
            _ => "bad_request",
        };
        support::json(
            status,
            &serde_json::json!({ "error": message, "code": code }),
        )
    } else {
        pages::message(who, status, title, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_even_encoded() {
        for bad in ["/g/../v1", "/g/./x", "/g/%2E%2e/x", "/g/%2e", "/g/.."] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in [
            "/g/",
            "/g/a.b",
            "/g/...",
            "/g/.well-known/x",
            "/g/%2e%2e%2e",
        ] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }
}
