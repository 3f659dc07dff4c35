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
use perch_auth::{AuthError, Principal, Role};
use perch_upstream::{self as upstream, Edge, Forwarded, UpstreamError};

use super::config::MinRole;
use super::table::{Hit, ProxyRoute};

use crate::request::{
    Access, ApiError, App, Body, BoxError, Face, Guard, LoggedUser, RouteName, authenticate,
    respond,
};

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
    let face = if wants_html(&req) {
        Face::Page
    } else {
        Face::Api
    };
    let who = match authenticate(&app, &req) {
        Ok(who) => who,
        Err(_) if route.spec.role == MinRole::Public => None,
        Err(e) => {
            let resp = ApiError::from(e).into_response(face, None);
            return ("proxy", resp);
        }
    };
    let actor = who.as_ref().map(|p| LoggedUser(p.actor()));
    let outcome = match admit(&app, &route, who.as_ref(), &req, face) {
        Ok(()) => pass(&route, peer, req, who.as_ref()).await,
        Err(e) => Err(e),
    };
    let mut resp = outcome.unwrap_or_else(|e| e.into_response(face, who.as_ref()));
    route.count(resp.status().as_u16());
    if let Some(actor) = actor {
        resp.extensions_mut().insert(actor);
    }
    ("proxy", resp)
}

/// Whether `who` may use the route: a path without dot segments, the route's role, and
/// this site's origin for a session's state change.
fn admit(
    app: &App,
    route: &ProxyRoute,
    who: Option<&Principal>,
    req: &Request<Incoming>,
    face: Face,
) -> Result<(), ApiError> {
    if is_evasive(req.uri().path()) {
        return Err(ApiError::EvasivePath);
    }
    let access = match route.spec.role {
        MinRole::Public => Access::Public,
        MinRole::Role(role) => Access::Role(role),
    };
    Guard::new(access).admit(app, who, req, face)?;
    // Node and enrollment tokens are machines: they may use public routes only, as nobody.
    if access != Access::Public && who.is_some_and(|p| !p.is_user()) {
        return Err(AuthError::Forbidden.into());
    }
    Guard::check_proxy_csrf(who, req)
}

async fn pass(
    route: &ProxyRoute,
    peer: SocketAddr,
    req: Request<Incoming>,
    who: Option<&Principal>,
) -> Result<Response<Body>, ApiError> {
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
    let upstream = if upstream::wants_upgrade(&req) {
        &route.upgrade_upstream
    } else {
        &route.upstream
    };
    let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
    let outcome = upstream::forward(upstream, req, &target, &from, &edge).await;
    route.latency.observe(start.elapsed().as_secs_f64());
    match outcome {
        Ok(mut resp) => {
            route.up.set(1);
            resp.extensions_mut().insert(Proxied);
            Ok(resp)
        }
        Err(e) => {
            if matches!(
                e,
                UpstreamError::Connect { .. } | UpstreamError::Timeout { .. }
            ) {
                route.up.set(0);
            }
            tracing::warn!(route = %route.spec.name, error = %e, "proxy request failed");
            Err(ApiError::Upstream(e))
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

/// Paths an upstream could resolve outside the prefix that was authorized: `.` and `..`
/// segments, percent-encoded once or twice and with a `;` parameter (`..;`, as Tomcat reads
/// it), an encoded `/` (`%2f`) or a backslash, raw or encoded (`%5c`).
fn is_evasive(path: &str) -> bool {
    if !path.bytes().any(|b| matches!(b, b'.' | b'%' | b'\\')) {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    lower.contains('\\')
        || ["%2f", "%5c", "%252f", "%255c"]
            .iter()
            .any(|encoded| lower.contains(encoded))
        || lower.split('/').any(is_dot_segment)
}

/// `.` or `..`, each dot raw or as `%2e` or `%252e`, before any `;` parameter.
fn is_dot_segment(seg: &str) -> bool {
    let mut rest = seg.split(';').next().unwrap_or("").as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.starts_with(b"%2e") {
            rest = &rest[3..];
        } else if rest.starts_with(b"%252e") {
            rest = &rest[5..];
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
    let mut resp = respond(
        StatusCode::PERMANENT_REDIRECT,
        "text/plain; charset=utf-8",
        format!("See {location}\n"),
    );
    if let Ok(v) = HeaderValue::try_from(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_encoded_slashes_and_backslashes_are_found() {
        for bad in [
            "/g/../v1",
            "/g/./x",
            "/g/%2E%2e/x",
            "/g/%2e",
            "/g/..",
            "/g/..;/v1",
            "/g/.;x/y",
            "/g/%252e%252e/x",
            "/g/a%2fb",
            "/g/a%2F..%2Fv1",
            "/g/a%5cb",
            "/g/a%252fb",
            "/g/a\\b",
        ] {
            assert!(is_evasive(bad), "{bad}");
        }
        for ok in [
            "/g/",
            "/g/a.b",
            "/g/...",
            "/g/.well-known/x",
            "/g/%2e%2e%2e",
            "/g/a%20b",
            "/g/a;b=1",
        ] {
            assert!(!is_evasive(ok), "{ok}");
        }
    }
}
