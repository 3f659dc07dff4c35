//! What a handler gets, and what it gives back.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use perch_auth::Principal;
use perch_upstream::Body;

use super::{ApiError, App};

/// The route a request matched, as its metrics label.
pub type RouteName = &'static str;

/// What a handler answers: a response, or an error for the edge to turn into one.
pub type Handled = Pin<Box<dyn Future<Output = Result<Response<Body>, ApiError>> + Send>>;

/// A route's handler.
pub type Handler = fn(Ctx) -> Handled;

/// Who made a request, as the access log shows it: a user name, or `token:<name>`.
#[derive(Debug, Clone)]
pub struct LoggedUser(pub String);

/// Everything a handler gets: the request with its body read, the caller (checked against
/// the route's access rule already) and the path's parameters. Its `Debug` leaves out the
/// request's headers and body, which hold cookies, tokens and passwords.
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
    /// The client's address (IPv4-mapped addresses as IPv4).
    pub fn client(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }

    /// The `{id}` path parameter.
    pub fn id(&self) -> Result<u64, ApiError> {
        self.params
            .first()
            .and_then(|p| p.parse().ok())
            .ok_or(ApiError::NotFound("id"))
    }

    /// The first path parameter (`{file}`, `{*}`), empty when there is none.
    pub fn param(&self) -> &str {
        self.params.first().map_or("", String::as_str)
    }

    /// The signed-in principal; routes with a role guarantee one.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.who
            .as_ref()
            .ok_or(ApiError::Unauthenticated { sign_in: None })
    }
}
