//! The router: a proxied path goes to the gateway; every other request is matched against
//! the route table, its caller authenticated and admitted from the headers alone, and only
//! then is its body read (up to the route's limit), the CSRF check made and the handler run.
//! Every error on the way, and every error a handler returns, becomes a response in the
//! route's face at the request layer's one error edge.

mod table;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Incoming};

use crate::features::gateway::{self, Gateway};
use crate::request::{
    ApiError, App, Body, BodyError, BoxError, Ctx, Face, LoggedUser, Reservation, RouteName,
    authenticate,
};
use crate::selfmon::ReasonLabels;
use table::{Found, Route, face_of, find};
pub use table::{largest_body_limit, reserved_segments};

/// Perch's own routes and the proxied ones.
#[derive(Debug)]
pub struct Router {
    app: Arc<App>,
    gateway: Arc<Gateway>,
}

impl Router {
    pub fn new(app: Arc<App>, gateway: Arc<Gateway>) -> Self {
        Self { app, gateway }
    }

    /// The answer to `req`, and the route it took (the metrics label).
    pub async fn serve(
        &self,
        peer: SocketAddr,
        req: Request<Incoming>,
    ) -> (RouteName, Response<Body>) {
        // Proxy routes stream their bodies; Perch's own read them whole after admission.
        let hit = self.gateway.table().find(req.uri().path());
        if let Some(hit) = hit {
            return gateway::serve(self.app.clone(), peer, req, hit).await;
        }
        dispatch(&self.app, peer, req).await
    }
}

/// One request through Perch's own routes.
pub async fn dispatch<B>(
    app: &Arc<App>,
    peer: SocketAddr,
    req: Request<B>,
) -> (RouteName, Response<Body>)
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let face = face_of(req.uri().path());
    let (route, params) = match find(req.method(), req.uri().path()) {
        Found::Route(r, p) => (r, p),
        Found::WrongMethod(allowed) => {
            let e = match drain(req.into_body(), app.body_timeout).await {
                Ok(()) => ApiError::MethodNotAllowed(allowed),
                Err(e) => e,
            };
            return ("method_not_allowed", e.into_response(face, None));
        }
        Found::Nothing => {
            let e = match drain(req.into_body(), app.body_timeout).await {
                Ok(()) => ApiError::NoRoute,
                Err(e) => e,
            };
            return ("not_found", e.into_response(face, None));
        }
    };
    let who = if route.anonymous {
        None
    } else {
        match authenticate(app, &req) {
            Ok(who) => who,
            Err(e) if route.guard.access == crate::request::Access::Public => {
                tracing::error!(error = ?e, "authentication failed; serving a public page anonymously");
                None
            }
            Err(e) => {
                let e = noted(app, ApiError::from(e));
                return (route.name, e.into_response(face, None));
            }
        }
    };
    let actor = who.as_ref().map(|p| LoggedUser(p.actor()));
    // A page shows its error with the navigation bar of who asked.
    let page_who = if face == Face::Page {
        who.clone()
    } else {
        None
    };
    let mut resp = match run(app, route, peer, req, who, params, face).await {
        Ok(resp) => resp,
        Err(e) => noted(app, e).into_response(face, page_who.as_ref()),
    };
    if let Some(actor) = actor {
        resp.extensions_mut().insert(actor);
    }
    (route.name, resp)
}

/// A store error is counted, and one caused by the file system (full, read-only) marks
/// the store unavailable until it recovers (readiness says so meanwhile).
fn noted(app: &App, e: ApiError) -> ApiError {
    if let ApiError::Auth(perch_auth::AuthError::Store(store)) = &e {
        app.metrics
            .store_errors
            .get_or_create(&ReasonLabels {
                reason: store.reason(),
            })
            .inc();
    }
    if let ApiError::Auth(auth) = &e {
        app.auth.note_error(auth);
    }
    e
}

/// Admission from the head, the body, the CSRF check, the handler.
async fn run<B>(
    app: &Arc<App>,
    route: &Route,
    peer: SocketAddr,
    req: Request<B>,
    who: Option<perch_auth::Principal>,
    params: Vec<String>,
    face: Face,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    route.guard.admit(app, who.as_ref(), &req, face)?;
    let (parts, body) = req.into_parts();
    // Held until the handler is done with the body.
    let (body, _reserved) = read_body(body, route.body_limit, app).await?;
    let req = Request::from_parts(parts, body);
    route.guard.check_csrf(who.as_ref(), &req, face)?;
    let ctx = Ctx {
        app: app.clone(),
        peer,
        req,
        who,
        params,
    };
    (route.handler)(ctx).await
}

/// Reads and discards the body of a request no route takes (up to the usual limit, and in
/// time), as nginx does, so that the connection can carry the next request and a request
/// still arriving when shutdown starts is answered, not cut. Nothing is kept.
async fn drain<B>(body: B, timeout: Duration) -> Result<(), ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (limit, too_large) = table::DEFAULT_BODY_LIMIT;
    let mut body = std::pin::pin!(body);
    let read = async {
        let mut seen = 0usize;
        while let Some(frame) = body.as_mut().frame().await {
            let frame = frame.map_err(|_| ApiError::Body(BodyError::Unreadable))?;
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > limit {
                return Err(ApiError::Body(BodyError::TooLarge(too_large)));
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(ApiError::Body(BodyError::Timeout)))
}

/// Reads a request body whole, bounded in size and time, within the shared body budget
/// (the bytes are held until the returned reservation drops, after the handler), so that a
/// request still arriving when shutdown starts is finished, not cut. A declared length over
/// the limit is refused before anything is read.
async fn read_body<B>(
    body: B,
    (limit, too_large): (usize, &'static str),
    app: &App,
) -> Result<(Bytes, Reservation), ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut held = Reservation::default();
    if body.is_end_stream() {
        return Ok((Bytes::new(), held));
    }
    let too_large = || ApiError::Body(BodyError::TooLarge(too_large));
    let declared = body.size_hint().exact().map(|n| n as usize);
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let budget = &app.body_budget;
    let deadline = budget.deadline();
    let busy = |_| ApiError::Body(BodyError::Busy);
    let expected = declared.unwrap_or(0);
    budget
        .cover(&mut held, expected, deadline)
        .await
        .map_err(busy)?;
    let mut buf = BytesMut::with_capacity(expected);
    let mut body = std::pin::pin!(body);
    let read = async {
        while let Some(frame) = body.as_mut().frame().await {
            let frame = frame.map_err(|_| ApiError::Body(BodyError::Unreadable))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let len = buf.len() + data.len();
            if len > limit {
                return Err(too_large());
            }
            budget.cover(&mut held, len, deadline).await.map_err(busy)?;
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(app.body_timeout, read).await {
        Ok(Ok(())) => Ok((buf.freeze(), held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::Body(BodyError::Timeout)),
    }
}
