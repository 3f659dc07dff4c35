//! The route table: every path, its method, who may call it, and its handler, in one place,
//! so that authorization is decided here and a new route cannot forget it. Errors become a
//! status code here, at the edge: JSON for `/v1/` and `/metrics`, pages elsewhere.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HOST, LOCATION, ORIGIN, REFERER};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::{App, Body};
use crate::auth::{AuthError, Principal, Role, Via, secret};
use crate::metrics;
use crate::web::{api, dash_pages, node_pages, pages, support};

/// The route a request matched, as its metrics label.
pub type RouteName = &'static str;

pub type Handled = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = fn(Ctx) -> Handled;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Signed in with at least this role (session or API token).
    Role(Role),
    /// An Admin, or any API token (for Prometheus scrapers).
    Metrics,
    /// An Editor or Admin, or an enrollment token (which can do nothing else).
    Enroll,
    /// A node token, for the node's own record.
    Node,
    /// Remote write: an Editor or Admin, or a node token (whose node is stamped on every
    /// series).
    Write,
}

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Literal segments, `{id}` (a number) or `{file}` (any one segment).
    pub path: &'static str,
    pub access: Access,
    /// Still reachable while the user must change their password.
    pub while_locked: bool,
    pub name: RouteName,
    pub handler: Handler,
}

const fn route(
    method: Method,
    path: &'static str,
    access: Access,
    name: RouteName,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        access,
        while_locked: false,
        name,
        handler,
    }
}

const fn unlocked(mut r: Route) -> Route {
    r.while_locked = true;
    r
}

use Access::{Metrics, Public};
const VIEWER: Access = Access::Role(Role::Viewer);
const EDITOR: Access = Access::Role(Role::Editor);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route the server answers.
pub static ROUTES: &[Route] = &[
    // Pages.
    route(Method::GET, "/", VIEWER, "overview", dash_pages::overview),
    route(Method::GET, "/nodes/{id}", VIEWER, "node", dash_pages::node),
    route(
        Method::GET,
        "/d/{file}",
        VIEWER,
        "dashboard",
        dash_pages::dashboard,
    ),
    route(
        Method::GET,
        "/explore",
        VIEWER,
        "explore",
        dash_pages::explore,
    ),
    route(Method::GET, "/browse", VIEWER, "browse", dash_pages::browse),
    route(Method::GET, "/setup", Public, "setup", pages::setup_form),
    route(Method::POST, "/setup", Public, "setup", pages::setup_submit),
    route(Method::GET, "/login", Public, "login", pages::login_form),
    route(Method::POST, "/login", Public, "login", pages::login_submit),
    unlocked(route(
        Method::POST,
        "/logout",
        VIEWER,
        "logout",
        pages::logout,
    )),
    unlocked(route(
        Method::GET,
        "/password",
        VIEWER,
        "password",
        pages::password_form,
    )),
    unlocked(route(
        Method::POST,
        "/password",
        VIEWER,
        "password",
        pages::password_submit,
    )),
    route(Method::GET, "/users", ADMIN, "users", pages::users),
    route(Method::POST, "/users", ADMIN, "users", pages::user_create),
    route(
        Method::POST,
        "/users/{id}/role",
        ADMIN,
        "users",
        pages::user_role,
    ),
    route(
        Method::POST,
        "/users/{id}/reset",
        ADMIN,
        "users",
        pages::user_reset,
    ),
    route(
        Method::POST,
        "/users/{id}/delete",
        ADMIN,
        "users",
        pages::user_delete,
    ),
    route(Method::GET, "/tokens", ADMIN, "tokens", pages::tokens),
    route(
        Method::POST,
        "/tokens",
        ADMIN,
        "tokens",
        pages::token_create,
    ),
    route(
        Method::POST,
        "/tokens/{id}/revoke",
        ADMIN,
        "tokens",
        pages::token_revoke,
    ),
    route(Method::GET, "/audit", ADMIN, "audit", pages::audit),
    route(Method::GET, "/nodes", VIEWER, "nodes", node_pages::nodes),
    route(
        Method::GET,
        "/nodes/add",
        EDITOR,
        "nodes",
        node_pages::node_add_form,
    ),
    route(
        Method::POST,
        "/nodes/add",
        EDITOR,
        "nodes",
        node_pages::node_add,
    ),
    route(
        Method::POST,
        "/nodes/{id}/delete",
        EDITOR,
        "nodes",
        node_pages::node_delete,
    ),
    route(
        Method::GET,
        "/ca-certs.pem",
        Public,
        "ca",
        node_pages::ca_certs,
    ),
    unlocked(route(
        Method::GET,
        "/static/{file}",
        Public,
        "static",
        pages::asset,
    )),
    // The JSON API.
    unlocked(route(
        Method::GET,
        "/v1/readyz",
        Public,
        "readyz",
        api::readyz,
    )),
    route(Method::GET, "/metrics", Metrics, "metrics", api::metrics),
    route(Method::POST, "/v1/setup", Public, "api_setup", api::setup),
    route(Method::POST, "/v1/login", Public, "api_login", api::login),
    unlocked(route(
        Method::POST,
        "/v1/logout",
        VIEWER,
        "api_logout",
        api::logout,
    )),
    unlocked(route(Method::GET, "/v1/me", VIEWER, "api_me", api::me)),
    unlocked(route(
        Method::PUT,
        "/v1/me/password",
        VIEWER,
        "api_me",
        api::change_password,
    )),
    route(Method::GET, "/v1/users", ADMIN, "api_users", api::users),
    route(
        Method::POST,
        "/v1/users",
        ADMIN,
        "api_users",
        api::user_create,
    ),
    route(
        Method::PUT,
        "/v1/users/{id}/role",
        ADMIN,
        "api_users",
        api::user_role,
    ),
    route(
        Method::PUT,
        "/v1/users/{id}/password",
        ADMIN,
        "api_users",
        api::user_reset,
    ),
    route(
        Method::DELETE,
        "/v1/users/{id}",
        ADMIN,
        "api_users",
        api::user_delete,
    ),
    route(Method::GET, "/v1/tokens", ADMIN, "api_tokens", api::tokens),
    route(
        Method::POST,
        "/v1/tokens",
        ADMIN,
        "api_tokens",
        api::token_create,
    ),
    route(
        Method::DELETE,
        "/v1/tokens/{id}",
        ADMIN,
        "api_tokens",
        api::token_revoke,
    ),
    route(Method::GET, "/v1/audit", ADMIN, "api_audit", api::audit),
    // Machines: enrollment, the node list, and a node's own record (its token).
    route(
        Method::POST,
        "/v1/enroll-tokens",
        EDITOR,
        "api_enroll_tokens",
        api::enroll_token_create,
    ),
    route(
        Method::POST,
        "/v1/nodes",
        Access::Enroll,
        "api_nodes",
        api::node_enroll,
    ),
    route(Method::GET, "/v1/nodes", VIEWER, "api_nodes", api::nodes),
    route(
        Method::DELETE,
        "/v1/nodes/{id}",
        EDITOR,
        "api_nodes",
        api::node_delete,
    ),
    route(
        Method::GET,
        "/v1/node",
        Access::Node,
        "api_node",
        api::own_node,
    ),
    route(
        Method::DELETE,
        "/v1/node",
        Access::Node,
        "api_node",
        api::own_node_delete,
    ),
    // Remote write into the metrics engine (Perch's path and PMM's).
    route(
        Method::POST,
        "/v1/metrics/write",
        Access::Write,
        "write",
        metrics::remote_write,
    ),
    route(
        Method::POST,
        "/victoriametrics/api/v1/write",
        Access::Write,
        "write",
        metrics::remote_write,
    ),
    // The Prometheus query API in front of the metrics engine.
    route(
        Method::GET,
        "/prometheus/api/v1/{*}",
        VIEWER,
        "query",
        metrics::forward_query,
    ),
    route(
        Method::POST,
        "/prometheus/api/v1/{*}",
        VIEWER,
        "query",
        metrics::forward_query,
    ),
];

/// Everything a handler gets. Its `Debug` leaves out the request's headers and body,
/// which hold cookies, tokens and passwords.
pub struct Ctx {
    pub app: Arc<App>,
    pub peer: SocketAddr,
    pub req: Request<Bytes>,
    pub who: Option<Principal>,
    pub params: Vec<String>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("peer", &self.peer)
            .field("method", self.req.method())
            .field("path", &self.req.uri().path())
            .field("who", &self.who.as_ref().map(|p| (&p.name, p.role)))
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub fn client(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }

    /// The `{id}` path parameter.
    pub fn id(&self) -> Result<u64, AuthError> {
        self.params
            .first()
            .and_then(|p| p.parse().ok())
            .ok_or(AuthError::NotFound("id"))
    }

    /// The signed-in principal; routes with a role guarantee one.
    pub fn principal(&self) -> Result<&Principal, AuthError> {
        self.who.as_ref().ok_or(AuthError::Unauthenticated)
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/v1/")
        || path == "/metrics"
        || path.starts_with("/prometheus/")
        || path.starts_with("/victoriametrics/")
}

/// Matches `path` against a route pattern, returning the parameters.
fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some("{id}"), Some(seg))
                if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) =>
            {
                params.push(seg.to_owned())
            }
            (Some("{file}"), Some(seg)) if !seg.is_empty() => params.push(seg.to_owned()),
            (Some("{*}"), Some(seg)) if !seg.is_empty() => {
                let rest: Vec<&str> = std::iter::once(seg).chain(have.by_ref()).collect();
                params.push(rest.join("/"));
                return Some(params);
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

enum Found<'a> {
    Route(&'a Route, Vec<String>),
    WrongMethod(Vec<&'static str>),
    Nothing,
}

/// Routes without parameters, by path: most requests are answered from here without
/// scanning the table.
fn literal_routes() -> &'static std::collections::HashMap<&'static str, Vec<&'static Route>> {
    static MAP: std::sync::OnceLock<std::collections::HashMap<&'static str, Vec<&'static Route>>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        let mut map: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
        for r in ROUTES.iter().filter(|r| !r.path.contains('{')) {
            map.entry(r.path).or_default().push(r);
        }
        map
    })
}

fn find(method: &Method, path: &str) -> Found<'static> {
    if let Some(routes) = literal_routes().get(path)
        && let Some(r) = routes
            .iter()
            .find(|r| r.method == method || (method == Method::HEAD && r.method == Method::GET))
    {
        return Found::Route(r, Vec::new());
    }
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = matches(r.path, path) {
            if r.method == method || (method == Method::HEAD && r.method == Method::GET) {
                return Found::Route(r, params);
            }
            allowed.push(r.method.as_str());
        }
    }
    if allowed.is_empty() {
        Found::Nothing
    } else {
        Found::WrongMethod(allowed)
    }
}

/// The first path segments Perch answers itself (`v1`, `login`, …, and `` for `/`), and
/// those kept for pages to come: no proxy route may take them.
pub fn reserved_segments() -> std::collections::HashSet<&'static str> {
    const KEPT: &[&str] = &[
        "dashboards",
        "explore",
        "browse",
        "d",
        "favicon.ico",
        "robots.txt",
    ];
    ROUTES
        .iter()
        .map(|r| {
            r.path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("")
        })
        .chain(KEPT.iter().copied())
        .collect()
}

/// The session cookie, else a bearer token.
pub(crate) fn authenticate<B>(app: &App, req: &Request<B>) -> Result<Option<Principal>, AuthError> {
    if let Some(id) = support::cookie(req.headers(), support::SESSION_COOKIE)
        && let Some(p) = app.auth.session(id)?
    {
        return Ok(Some(p));
    }
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        });
    match bearer {
        Some(token) => app.auth.bearer(token),
        None => Ok(None),
    }
}

pub async fn dispatch(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Bytes>,
) -> (RouteName, Response<Body>) {
    let path = req.uri().path().to_owned();
    let api = is_api(&path);
    let (route, params) = match find(req.method(), &path) {
        Found::Route(r, p) => (r, p),
        Found::WrongMethod(mut allowed) => {
            if allowed.contains(&"GET") {
                allowed.push("HEAD");
            }
            let mut resp = if api {
                support::json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &serde_json::json!({
                        "error": format!("use {}", allowed.join(" or ")),
                        "code": "method_not_allowed"
                    }),
                )
            } else {
                text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "This method is not allowed here.\n",
                )
            };
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                resp.headers_mut().insert(ALLOW, v);
            }
            return ("method_not_allowed", resp);
        }
        Found::Nothing => {
            let resp = if api {
                support::json_error(&AuthError::NotFound("path"))
            } else {
                pages::message(
                    None,
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no page here.",
                )
            };
            return ("not_found", resp);
        }
    };
    // Readiness and static files never touch the store.
    let who = if matches!(route.name, "readyz" | "static") {
        None
    } else {
        match authenticate(&app, &req) {
            Ok(who) => who,
            Err(e) if route.access == Access::Public => {
                tracing::error!(error = ?e, "authentication failed; serving a public page anonymously");
                None
            }
            Err(e) => return (route.name, deny(&app, api, &e, None)),
        }
    };
    let actor = who.as_ref().map(|p| LoggedUser(p.actor()));
    let mut resp = match authorize(&app, route, who.as_ref(), &req, api) {
        Some(refusal) => refusal,
        None => {
            let ctx = Ctx {
                app,
                peer,
                req,
                who,
                params,
            };
            (route.handler)(ctx).await
        }
    };
    if let Some(actor) = actor {
        resp.extensions_mut().insert(actor);
    }
    (route.name, resp)
}

/// Who made a request, as the access log shows it: a user name, or `token:<name>`.
#[derive(Debug, Clone)]
pub struct LoggedUser(pub String);

pub(crate) fn deny(app: &App, api: bool, e: &AuthError, who: Option<&Principal>) -> Response<Body> {
    if api {
        support::json_error(e)
    } else {
        let _ = app;
        pages::error_page(who, e)
    }
}

/// `None` when the request may proceed; otherwise the refusal to send.
fn authorize<B: AsRef<[u8]>>(
    app: &App,
    route: &Route,
    who: Option<&Principal>,
    req: &Request<B>,
    api: bool,
) -> Option<Response<Body>> {
    if let Some(refusal) = check_access(app, route.access, route.while_locked, who, req, api) {
        return Some(refusal);
    }
    if is_unsafe(req.method()) {
        let ok = match (route.access, who.map(|p| &p.via)) {
            (Access::Public, _) => login_csrf_ok(req, api),
            (_, Some(Via::Session { csrf, .. })) => session_csrf_ok(req, csrf, api),
            (_, Some(Via::Token { .. } | Via::Node { .. } | Via::Enroll { .. })) => true,
            (_, None) => false,
        };
        if !ok {
            return Some(deny(app, api, &AuthError::Csrf, who));
        }
    }
    None
}

/// For the reverse proxy, whose upstreams have forms of their own without Perch's CSRF
/// token: a state change made with a session (its cookie is `SameSite=Strict`) must come
/// from this site's own origin.
pub(crate) fn proxy_csrf_ok<B>(who: Option<&Principal>, req: &Request<B>) -> bool {
    !is_unsafe(req.method())
        || !matches!(who.map(|p| &p.via), Some(Via::Session { .. }))
        || same_origin(req)
}

/// `None` when `who` may use a route with `access`; otherwise the refusal: a sign-in
/// redirect (pages) or 401 (API) for nobody, 403 for too low a role, the password form for
/// a user who must change theirs (unless the route is `while_locked`).
pub(crate) fn check_access<B>(
    app: &App,
    access: Access,
    while_locked: bool,
    who: Option<&Principal>,
    req: &Request<B>,
    api: bool,
) -> Option<Response<Body>> {
    // A user who must change their password goes to the change form first, whatever else
    // they ask for.
    if let Some(p) = who
        && p.must_change_password
        && matches!(p.via, Via::Session { .. })
        && access != Access::Public
        && !while_locked
    {
        return Some(if api {
            support::json_error(&AuthError::PasswordChangeRequired)
        } else {
            support::see_other("/password")
        });
    }
    let editor = |p: &Principal| p.is_user() && p.role >= Role::Editor;
    match (access, who) {
        (Access::Public, _) => {}
        (Access::Metrics, Some(p))
            if p.is_user() && (p.role == Role::Admin || matches!(p.via, Via::Token { .. })) => {}
        (Access::Role(min), Some(p)) if p.is_user() && p.role >= min => {}
        (Access::Enroll, Some(p)) if editor(p) || matches!(p.via, Via::Enroll { .. }) => {}
        (Access::Node, Some(p)) if matches!(p.via, Via::Node { .. }) => {}
        (Access::Write, Some(p)) if editor(p) || matches!(p.via, Via::Node { .. }) => {}
        (_, Some(p)) => return Some(deny(app, api, &AuthError::Forbidden, Some(p))),
        (_, None) if api => return Some(support::json_error(&AuthError::Unauthenticated)),
        (_, None) => {
            let setup = app.auth.needs_setup().unwrap_or(false);
            let target = if setup {
                "/setup".to_owned()
            } else {
                let here = if is_unsafe(req.method()) {
                    "/"
                } else {
                    req.uri().path_and_query().map_or("/", |pq| pq.as_str())
                };
                let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
                format!("/login?next={next}")
            };
            return Some(support::see_other(&target));
        }
    }
    None
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request's own origin, from Host (HTTP/1.1) or the URI authority (h2).
fn own_origin<B>(req: &Request<B>) -> Option<String> {
    Some(format!("https://{}", support::request_host(req)?))
}

/// Origin (or, failing that, Referer) names this site. Required for every state change
/// made with a cookie.
fn same_origin<B>(req: &Request<B>) -> bool {
    let Some(own) = own_origin(req) else {
        return false;
    };
    if let Some(origin) = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) {
        return origin == own;
    }
    req.headers()
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| r == own || r.starts_with(&format!("{own}/")))
}

fn form_field<B: AsRef<[u8]>>(req: &Request<B>, name: &str) -> String {
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        support::Form::parse(req.body().as_ref())
            .get(name)
            .to_owned()
    } else {
        String::new()
    }
}

fn is_json<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Before a session exists (login, setup): pages use a double-submit cookie and the origin;
/// the JSON API needs a JSON body (which a cross-site form cannot send) and no foreign Origin.
fn login_csrf_ok<B: AsRef<[u8]>>(req: &Request<B>, api: bool) -> bool {
    if api {
        let foreign = req.headers().get(ORIGIN).is_some() && !same_origin(req);
        return is_json(req) && !foreign;
    }
    let cookie = support::cookie(req.headers(), support::LOGIN_CSRF_COOKIE).unwrap_or("");
    let field = form_field(req, "csrf");
    same_origin(req)
        && !cookie.is_empty()
        && secret::constant_time_eq(cookie.as_bytes(), field.as_bytes())
}

/// With a session: the origin, and the session's CSRF token in the form or `X-CSRF-Token`.
fn session_csrf_ok<B: AsRef<[u8]>>(req: &Request<B>, csrf: &str, api: bool) -> bool {
    let sent = if api {
        req.headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    } else {
        form_field(req, "csrf")
    };
    same_origin(req) && secret::constant_time_eq(sent.as_bytes(), csrf.as_bytes())
}

/// Plain HTTP: a 308 to the same path and query on HTTPS, nothing else.
pub fn redirect<B>(https_port: u16, req: &Request<B>) -> (RouteName, Response<Body>) {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .and_then(host_without_port);
    let Some(host) = host else {
        return (
            "redirect",
            text(
                StatusCode::BAD_REQUEST,
                "A valid Host header is required; this port only redirects to HTTPS.\n",
            ),
        );
    };
    let port = match https_port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{path}");
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, "Use HTTPS.\n");
    match HeaderValue::try_from(location) {
        Ok(value) => {
            resp.headers_mut().insert(LOCATION, value);
            ("redirect", resp)
        }
        Err(_) => (
            "redirect",
            text(StatusCode::BAD_REQUEST, "Bad request target.\n"),
        ),
    }
}

/// The host part of a Host header, if it is a plain name, IPv4 or bracketed IPv6 address.
fn host_without_port(value: &str) -> Option<&str> {
    let host = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        if !(rest.is_empty() || rest.starts_with(':')) {
            return None;
        }
        host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().ok()?;
        host
    } else {
        value.split(':').next()?
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then_some(host)
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    support::respond(status, "text/plain; charset=utf-8", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Auth, AuthConfig};
    use crate::http::AccessLog;
    use crate::selfmon::SelfMetrics;
    use crate::store::Store;
    use std::time::Duration;

    fn req(host: Option<&str>, target: &str) -> Request<()> {
        let mut b = Request::builder().uri(target);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap()
    }

    fn location(resp: &Response<Body>) -> Option<&str> {
        resp.headers().get(LOCATION).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn redirects_keep_path_and_query() {
        let (_, r) = redirect(443, &req(Some("perch.example:80"), "/a/b?c=d"));
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(location(&r), Some("https://perch.example/a/b?c=d"));
        let (_, r) = redirect(8443, &req(Some("[::1]:8080"), "/"));
        assert_eq!(location(&r), Some("https://[::1]:8443/"));
    }

    #[test]
    fn redirect_refuses_bad_hosts() {
        for bad in [
            None,
            Some(""),
            Some("evil.com/x"),
            Some("a b"),
            Some("[zz]"),
        ] {
            let (_, r) = redirect(443, &req(bad, "/"));
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn patterns() {
        assert_eq!(
            matches("/users/{id}/role", "/users/12/role"),
            Some(vec!["12".into()])
        );
        assert_eq!(matches("/users/{id}/role", "/users/x/role"), None);
        assert_eq!(matches("/users/{id}/role", "/users/12"), None);
        assert_eq!(
            matches("/static/{file}", "/static/perch.css"),
            Some(vec!["perch.css".into()])
        );
        assert_eq!(matches("/", "/"), Some(vec![]));
        assert_eq!(matches("/", "/x"), None);
        assert_eq!(
            matches(
                "/prometheus/api/v1/{*}",
                "/prometheus/api/v1/label/job/values"
            ),
            Some(vec!["label/job/values".into()])
        );
        assert_eq!(
            matches("/prometheus/api/v1/{*}", "/prometheus/api/v1/"),
            None
        );
    }

    const HOST_NAME: &str = "perch.test";
    const STRONG: &str = "violet-tractor-lantern-9";

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Who {
        Anonymous,
        Session(Role),
        Token(Role),
        /// A node token (a fresh node per case: one route deletes its own node).
        Node,
        /// An unused enrollment token.
        Enroll,
    }

    struct Fixture {
        app: Arc<App>,
        _dir: tempfile::TempDir,
        tokens: Vec<(Role, String)>,
        admin: Principal,
    }

    impl Fixture {
        async fn node_token(&self) -> String {
            let n = self.app.auth.nodes().unwrap().len();
            let request = crate::auth::EnrollRequest {
                name: format!("node-{n}"),
                ..Default::default()
            };
            let ip: IpAddr = "127.0.0.1".parse().unwrap();
            self.app
                .auth
                .enroll(&self.admin, request, ip)
                .await
                .unwrap()
                .1
        }

        async fn enroll_token(&self) -> String {
            let ip: IpAddr = "127.0.0.1".parse().unwrap();
            self.app
                .auth
                .create_enroll_token(&self.admin, Duration::from_secs(600), ip)
                .await
                .unwrap()
                .1
        }
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(SelfMetrics::new());
        let store = Store::open(&dir.path().join("db")).unwrap();
        let auth = Auth::new(
            store,
            AuthConfig {
                data_dir: dir.path().to_path_buf(),
                session_idle: Duration::from_secs(600),
                session_lifetime: Duration::from_secs(3600),
                password_min_len: 12,
                password_max_age: None,
            },
            metrics.login_failures.clone(),
        )
        .unwrap();
        let secret_file = dir.path().join("admin-password");
        std::fs::write(&secret_file, STRONG).unwrap();
        assert!(auth.admin_from_file("admin", &secret_file).await.unwrap());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let admin = auth.login("admin", STRONG, ip).await.unwrap();
        let admin = auth.session(&admin.id).unwrap().unwrap();
        for role in [Role::Viewer, Role::Editor] {
            let name = role.as_str();
            auth.create_user(&admin, name, role, "temporary-ocelot-42-x", ip)
                .await
                .unwrap();
            let s = auth.login(name, "temporary-ocelot-42-x", ip).await.unwrap();
            let p = auth.session(&s.id).unwrap().unwrap();
            auth.change_password(&p, "temporary-ocelot-42-x", STRONG, ip)
                .await
                .unwrap();
        }
        let mut tokens = Vec::new();
        for role in Role::ALL {
            let (_, secret) = auth
                .create_token(&admin, role.as_str(), role, None, ip)
                .await
                .unwrap();
            tokens.push((role, secret));
        }
        let app = Arc::new(App {
            gateway: Arc::new(crate::gateway::Gateway::empty(metrics.clone())),
            dashboards_dir: dir.path().join("dashboards"),
            engine: crate::metrics::Engine::new(Duration::from_secs(5)),
            query_limiter: crate::metrics::QueryLimiter::new(4),
            access_log: AccessLog::start(None, metrics.access_log_dropped.clone()).unwrap(),
            metrics,
            auth: Arc::new(auth),
            session_lifetime_s: 3600,
            draining: false.into(),
            https_port: 443,
            body_timeout: Duration::from_secs(5),
            certs: None,
            cert_dir: dir.path().join("nginx"),
        });
        Fixture {
            app,
            _dir: dir,
            tokens,
            admin,
        }
    }

    fn allowed(access: Access, who: Who) -> bool {
        match (access, who) {
            (Access::Public, _) => true,
            (Access::Metrics, Who::Token(_)) | (Access::Metrics, Who::Session(Role::Admin)) => true,
            (Access::Metrics, _) => false,
            (Access::Role(min), Who::Session(r) | Who::Token(r)) => r >= min,
            (Access::Enroll, Who::Session(r) | Who::Token(r)) => r >= Role::Editor,
            (Access::Enroll, Who::Enroll) => true,
            (Access::Write, Who::Session(r) | Who::Token(r)) => r >= Role::Editor,
            (Access::Write | Access::Node, Who::Node) => true,
            (
                Access::Role(_) | Access::Enroll | Access::Node | Access::Write,
                Who::Anonymous | Who::Node | Who::Enroll | Who::Session(_) | Who::Token(_),
            ) => false,
        }
    }

    /// A denial by the authorization layer, as opposed to anything a handler answers.
    async fn is_denial(resp: Response<Body>, api: bool) -> bool {
        use http_body_util::BodyExt;
        let status = resp.status();
        let to = location(&resp).unwrap_or("").to_owned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        if api {
            matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                && (body.contains(r#""code":"unauthenticated""#)
                    || body.contains(r#""code":"forbidden""#))
        } else {
            (status == StatusCode::SEE_OTHER && to.starts_with("/login?next="))
                || (status == StatusCode::FORBIDDEN && body.contains("Not allowed"))
        }
    }

    /// Every route in the table against every kind of caller: the authorization matrix.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn authorization_matrix() {
        let fx = fixture().await;
        let identities = [
            Who::Anonymous,
            Who::Session(Role::Viewer),
            Who::Session(Role::Editor),
            Who::Session(Role::Admin),
            Who::Token(Role::Viewer),
            Who::Token(Role::Editor),
            Who::Token(Role::Admin),
            Who::Node,
            Who::Enroll,
        ];
        // Requests come from another address than the fixture's logins, so that the failed
        // logins the matrix provokes throttle only themselves.
        let peer: SocketAddr = "127.0.0.9:40000".parse().unwrap();
        let login_ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut checked = 0;
        for route in ROUTES {
            let path = route
                .path
                .replace("{id}", "999999")
                .replace("{file}", "perch.css");
            let api = is_api(&path);
            for who in identities {
                let mut b = Request::builder()
                    .method(route.method.clone())
                    .uri(path.as_str())
                    .header(HOST, HOST_NAME)
                    .header(ORIGIN, format!("https://{HOST_NAME}"));
                // Valid CSRF proof for every case, so that only authorization is measured:
                // the pre-login double-submit pair on public routes, the session's token elsewhere.
                let mut cookies = vec![format!("{}=c0ffee", support::LOGIN_CSRF_COOKIE)];
                let mut body = "csrf=c0ffee".to_owned();
                match who {
                    Who::Anonymous => {}
                    Who::Session(role) => {
                        // A fresh session per case: logout routes end theirs.
                        let name = role.as_str();
                        let s = fx.app.auth.login(name, STRONG, login_ip).await.unwrap();
                        cookies.push(format!("{}={}", support::SESSION_COOKIE, s.id));
                        b = b.header("x-csrf-token", s.csrf.as_str());
                        if route.access != Access::Public {
                            body = format!("csrf={}", s.csrf);
                        }
                    }
                    Who::Token(role) => {
                        let secret = &fx.tokens.iter().find(|(r, _)| *r == role).unwrap().1;
                        b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
                    }
                    Who::Node => {
                        let secret = fx.node_token().await;
                        b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
                    }
                    Who::Enroll => {
                        let secret = fx.enroll_token().await;
                        b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
                    }
                }
                b = b.header(http::header::COOKIE, cookies.join("; "));
                let (content_type, body) = if api && route.method != Method::GET {
                    ("application/json", "{}".to_owned())
                } else {
                    ("application/x-www-form-urlencoded", body)
                };
                let req = b
                    .header(CONTENT_TYPE, content_type)
                    .body(Bytes::from(body))
                    .unwrap();
                let (_, resp) = dispatch(fx.app.clone(), peer, req).await;
                let denied = is_denial(resp, api).await;
                assert_eq!(
                    !denied,
                    allowed(route.access, who),
                    "{} {} as {who:?}",
                    route.method,
                    route.path
                );
                checked += 1;
            }
        }
        assert_eq!(checked, ROUTES.len() * identities.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_changes_need_the_csrf_token_and_our_origin() {
        let fx = fixture().await;
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let s = fx.app.auth.login("admin", STRONG, peer.ip()).await.unwrap();
        let cookie = format!("{}={}", support::SESSION_COOKIE, s.id);
        let cases = [
            (Some(format!("https://{HOST_NAME}")), "csrf=wrong", false),
            (
                Some("https://evil.example".to_owned()),
                format!("csrf={}", s.csrf).leak() as &str,
                false,
            ),
            (None, format!("csrf={}", s.csrf).leak() as &str, false),
            (
                Some(format!("https://{HOST_NAME}")),
                format!("csrf={}", s.csrf).leak() as &str,
                true,
            ),
        ];
        for (origin, body, ok) in cases {
            let mut b = Request::builder()
                .method(Method::POST)
                .uri("/tokens")
                .header(HOST, HOST_NAME)
                .header(http::header::COOKIE, cookie.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(o) = &origin {
                b = b.header(ORIGIN, o.as_str());
            }
            let req = b
                .body(Bytes::from(format!("{body}&name=t&role=viewer")))
                .unwrap();
            let (_, resp) = dispatch(fx.app.clone(), peer, req).await;
            let refused = resp.status() == StatusCode::FORBIDDEN;
            assert_eq!(
                !refused,
                ok,
                "origin {origin:?}, body {body}: {}",
                resp.status()
            );
        }
        // A bearer token needs no CSRF token: it is not sent by browsers on their own.
        let admin_token = &fx.tokens.iter().find(|(r, _)| *r == Role::Admin).unwrap().1;
        let req = Request::builder()
            .method(Method::POST)
            .uri("/v1/tokens")
            .header(HOST, HOST_NAME)
            .header(http::header::AUTHORIZATION, format!("Bearer {admin_token}"))
            .header(CONTENT_TYPE, "application/json")
            .body(Bytes::from(r#"{"name":"x","role":"viewer"}"#))
            .unwrap();
        let (_, resp) = dispatch(fx.app.clone(), peer, req).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
}
