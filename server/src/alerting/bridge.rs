//! vmalert's way to the metrics engine: a loopback listener, with a credential of its own,
//! that passes vmalert's queries (rules, and the remote read of alert state) to the query
//! path and its remote write (`ALERTS`, `ALERTS_FOR_STATE`) to the write path of whichever
//! engine Perch uses; and its notifications (`/alertmanager/...`) to the bundled
//! Alertmanager. vmalert so needs no engine credential, works the same with the bundled and
//! an external engine, and does not notice the restarts of either child (each comes back on
//! a new port).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use perch_upstream::Forwarded;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::slot::Slot;
use crate::engine::Engine;

/// The largest remote-write body vmalert sends (its default batch is far smaller).
const MAX_WRITE_BYTES: usize = 32 * 1024 * 1024;

type Answer = Response<perch_upstream::Body>;

fn plain(status: StatusCode, text: &'static str) -> Answer {
    let mut resp = Response::new(perch_upstream::full(text));
    *resp.status_mut() = status;
    resp
}

/// The listener's address and the `Authorization` value it wants.
pub struct Bridge {
    pub base: String,
    pub user: &'static str,
    pub password: String,
}

/// What the bridge passes requests to.
struct To {
    engine: Arc<Engine>,
    alertmanager: Arc<Slot>,
    client: perch_upstream::Client,
    want: HeaderValue,
}

/// A notification from vmalert, passed to the bundled Alertmanager at `rest`.
async fn to_alertmanager(to: &To, req: Request<Incoming>, rest: &str) -> Answer {
    let Some(up) = to.alertmanager.upstream(&to.client) else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "alertmanager is not ready\n",
        );
    };
    let from = Forwarded::of(&req, IpAddr::V4(Ipv4Addr::LOCALHOST), "http");
    let req = req.map(|b| {
        b.map_err(|e| Box::new(e) as perch_upstream::BoxError)
            .boxed_unsync()
    });
    perch_upstream::forward(&up, req, rest, &from, &perch_upstream::Edge::default())
        .await
        .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "alertmanager did not answer\n"))
}

async fn handle(to: Arc<To>, req: Request<Incoming>) -> Answer {
    if req.headers().get(AUTHORIZATION) != Some(&to.want) {
        return plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
    }
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/alertmanager/") {
        let rest = format!("/{rest}");
        return to_alertmanager(&to, req, &rest).await;
    }
    let engine = &to.engine;
    if path == "/api/v1/write" {
        // vmalert's remote write is snappy-compressed protobuf, as every agent's.
        let Ok(body) = Limited::new(req.into_body(), MAX_WRITE_BYTES)
            .collect()
            .await
        else {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large or cut\n");
        };
        return engine
            .remote_write(body.to_bytes())
            .await
            .unwrap_or_else(|_| unavailable());
    }
    if !path.starts_with("/api/v1/") {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let from = Forwarded::of(&req, IpAddr::V4(Ipv4Addr::LOCALHOST), "http");
    let req = req.map(|b| {
        b.map_err(|e| Box::new(e) as perch_upstream::BoxError)
            .boxed_unsync()
    });
    engine
        .forward_query(req, &path_and_query, &from)
        .await
        .unwrap_or_else(|_| unavailable())
}

fn unavailable() -> Answer {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the metrics engine is unavailable\n",
    )
}

/// Listens on a free loopback port until `shutdown` turns true.
pub async fn start(
    engine: Arc<Engine>,
    alertmanager: Arc<Slot>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<Bridge> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let user = "vmalert";
    let password = crate::process::random_password();
    let want = perch_upstream::Credentials::basic(user, &password)
        .ok()
        .and_then(|c| c.header().cloned())
        .ok_or_else(|| std::io::Error::other("cannot make the bridge's credential"))?;
    let to = Arc::new(To {
        engine,
        alertmanager,
        client: perch_upstream::Client::new(std::time::Duration::from_secs(5)),
        want,
    });
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let to = to.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let to = to.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(to, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Bridge {
        base,
        user,
        password,
    })
}
