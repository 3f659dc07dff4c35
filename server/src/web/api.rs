//! The JSON API under `/v1/`: the same operations as the pages, for scripts and
//! `perch-admin`. Errors are `{"error": "...", "code": "..."}`.

use std::sync::atomic::Ordering;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::support::{self, SESSION_COOKIE, json, json_body, json_error, no_content};
use crate::auth::{AuditKind, AuthError, NewSession, Role, UserView};
use crate::http::Body;
use crate::http::routes::{Ctx, Handled};

type Response = http::Response<Body>;

fn respond_with(result: Result<Response, AuthError>) -> Response {
    result.unwrap_or_else(|e| json_error(&e))
}

/// Ready when the server is not shutting down and the metrics engine answers; the body
/// says which part is not ready. (Load balancers call this often: the ready answer is a
/// constant.)
pub fn readyz(ctx: Ctx) -> Handled {
    const READY: &str = r#"{"checks":{"metrics_engine":"ok","tls":"ok"},"status":"ready"}"#;
    Box::pin(async move {
        let draining = ctx.app.draining.load(Ordering::Relaxed);
        let (engine_ok, engine) = ctx.app.engine.readiness();
        let mut resp = if engine_ok && !draining {
            support::respond(StatusCode::OK, "application/json", READY)
        } else {
            let status = if draining {
                "shutting_down"
            } else {
                "not_ready"
            };
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": status, "checks": {"tls": "ok", "metrics_engine": engine}}),
            )
        };
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        resp
    })
}

pub fn metrics(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let mut resp = support::respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ctx.app.metrics.encode(),
        );
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        resp
    })
}

#[derive(Deserialize)]
struct SetupIn {
    code: String,
    name: String,
    password: String,
}

#[derive(Deserialize)]
struct LoginIn {
    name: String,
    password: String,
}

#[derive(Serialize)]
struct SessionOut {
    csrf: String,
    must_change_password: bool,
}

fn session_response(ctx: &Ctx, status: StatusCode, session: &NewSession) -> Response {
    let mut resp = json(
        status,
        &SessionOut {
            csrf: session.csrf.clone(),
            must_change_password: session.must_change_password,
        },
    );
    support::set_cookie(
        &mut resp,
        SESSION_COOKIE,
        &session.id,
        ctx.app.session_lifetime_s,
    );
    resp
}

pub fn setup(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let input: SetupIn = json_body(ctx.req.body())?;
                let session = ctx
                    .app
                    .auth
                    .complete_setup(&input.code, &input.name, &input.password, ctx.client())
                    .await?;
                Ok(session_response(&ctx, StatusCode::CREATED, &session))
            }
            .await,
        )
    })
}

pub fn login(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let input: LoginIn = json_body(ctx.req.body())?;
                let session = ctx
                    .app
                    .auth
                    .login(&input.name, &input.password, ctx.client())
                    .await?;
                Ok(session_response(&ctx, StatusCode::OK, &session))
            }
            .await,
        )
    })
}

pub fn logout(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                ctx.app.auth.logout(ctx.principal()?, ctx.client()).await?;
                let mut resp = no_content();
                support::clear_cookie(&mut resp, SESSION_COOKIE);
                Ok(resp)
            }
            .await,
        )
    })
}

#[derive(Serialize)]
struct MeOut<'a> {
    name: &'a str,
    role: Role,
    must_change_password: bool,
    kind: &'static str,
}

pub fn me(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with((|| {
            let p = ctx.principal()?;
            Ok(json(
                StatusCode::OK,
                &MeOut {
                    name: &p.name,
                    role: p.role,
                    must_change_password: p.must_change_password,
                    kind: match p.via {
                        crate::auth::Via::Session { .. } => "session",
                        crate::auth::Via::Token { .. } => "token",
                        crate::auth::Via::Node { .. } => "node",
                        crate::auth::Via::Enroll { .. } => "enroll",
                    },
                },
            ))
        })())
    })
}

#[derive(Deserialize)]
struct PasswordIn {
    current: String,
    new: String,
}

pub fn change_password(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let input: PasswordIn = json_body(ctx.req.body())?;
                let session = ctx
                    .app
                    .auth
                    .change_password(ctx.principal()?, &input.current, &input.new, ctx.client())
                    .await?;
                Ok(session_response(&ctx, StatusCode::OK, &session))
            }
            .await,
        )
    })
}

#[derive(Serialize)]
struct UsersOut {
    users: Vec<UserView>,
}

pub fn users(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            ctx.app
                .auth
                .users()
                .map(|users| json(StatusCode::OK, &UsersOut { users })),
        )
    })
}

#[derive(Deserialize)]
struct UserIn {
    name: String,
    role: Role,
    password: String,
}

pub fn user_create(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let input: UserIn = json_body(ctx.req.body())?;
                let user = ctx
                    .app
                    .auth
                    .create_user(
                        ctx.principal()?,
                        &input.name,
                        input.role,
                        &input.password,
                        ctx.client(),
                    )
                    .await?;
                Ok(json(StatusCode::CREATED, &user))
            }
            .await,
        )
    })
}

#[derive(Deserialize)]
struct RoleIn {
    role: Role,
}

pub fn user_role(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let input: RoleIn = json_body(ctx.req.body())?;
                ctx.app
                    .auth
                    .set_role(ctx.principal()?, ctx.id()?, input.role, ctx.client())
                    .await?;
                Ok(no_content())
            }
            .await,
        )
    })
}

#[derive(Deserialize)]
struct ResetIn {
    password: String,
}

pub fn user_reset(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let input: ResetIn = json_body(ctx.req.body())?;
                ctx.app
                    .auth
                    .reset_password(ctx.principal()?, ctx.id()?, &input.password, ctx.client())
                    .await?;
                Ok(no_content())
            }
            .await,
        )
    })
}

pub fn user_delete(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                ctx.app
                    .auth
                    .delete_user(ctx.principal()?, ctx.id()?, ctx.client())
                    .await?;
                Ok(no_content())
            }
            .await,
        )
    })
}

pub fn tokens(ctx: Ctx) -> Handled {
    Box::pin(async move {
        #[derive(Serialize)]
        struct Out {
            tokens: Vec<crate::auth::ApiToken>,
        }
        respond_with(
            ctx.app
                .auth
                .tokens()
                .map(|tokens| json(StatusCode::OK, &Out { tokens })),
        )
    })
}

#[derive(Deserialize)]
struct TokenIn {
    name: String,
    role: Role,
    #[serde(default)]
    expires_in_days: Option<u64>,
}

pub fn token_create(ctx: Ctx) -> Handled {
    Box::pin(async move {
        #[derive(Serialize)]
        struct Out {
            token: crate::auth::ApiToken,
            secret: String,
        }
        respond_with(
            async {
                let input: TokenIn = json_body(ctx.req.body())?;
                let lifetime = match input.expires_in_days {
                    None => None,
                    Some(d) if (1..=3650).contains(&d) => {
                        Some(std::time::Duration::from_secs(d * 86_400))
                    }
                    Some(_) => {
                        return Err(AuthError::BadInput(
                            "expires_in_days is from 1 to 3650".into(),
                        ));
                    }
                };
                let (token, secret) = ctx
                    .app
                    .auth
                    .create_token(
                        ctx.principal()?,
                        &input.name,
                        input.role,
                        lifetime,
                        ctx.client(),
                    )
                    .await?;
                Ok(json(StatusCode::CREATED, &Out { token, secret }))
            }
            .await,
        )
    })
}

pub fn token_revoke(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                ctx.app
                    .auth
                    .revoke_token(ctx.principal()?, ctx.id()?, ctx.client())
                    .await?;
                Ok(no_content())
            }
            .await,
        )
    })
}

pub fn audit(ctx: Ctx) -> Handled {
    Box::pin(async move {
        #[derive(Serialize)]
        struct Out {
            events: Vec<crate::auth::AuditEvent>,
        }
        respond_with((|| {
            let q = support::query(&ctx.req);
            let kind = match q.get("kind") {
                "" => None,
                k => Some(
                    AuditKind::parse(k)
                        .ok_or_else(|| AuthError::BadInput(format!("unknown audit kind '{k}'")))?,
                ),
            };
            let user = Some(q.get("user")).filter(|u| !u.is_empty());
            let limit = q.get("limit").parse().unwrap_or(200).clamp(1, 10_000);
            let events = ctx.app.auth.audit_trail(user, kind, limit)?;
            Ok(json(StatusCode::OK, &Out { events }))
        })())
    })
}

#[derive(Deserialize)]
struct EnrollTokenIn {
    /// Minutes, 5 to 1440; default 60.
    #[serde(default)]
    expires_in_minutes: Option<u64>,
}

/// What a client needs to enroll against this server: printed by the Add node page and
/// returned with a new enrollment token.
#[derive(Serialize)]
pub struct EnrollHints {
    /// SHA-256 of the served certificate's public key (what `--server-insecure-ssl` pins).
    pub fingerprint: Option<String>,
    /// The address the client used to reach this server (Host).
    pub server: String,
}

pub fn enroll_hints(ctx: &Ctx) -> EnrollHints {
    let host = support::request_host(&ctx.req).unwrap_or("localhost");
    let server = host.strip_suffix(":443").unwrap_or(host).to_owned();
    EnrollHints {
        fingerprint: ctx.app.certs.as_ref().map(|c| c.fingerprint()),
        server,
    }
}

pub fn enroll_token_create(ctx: Ctx) -> Handled {
    Box::pin(async move {
        #[derive(Serialize)]
        struct Out {
            token: String,
            expires_at: i64,
            #[serde(flatten)]
            hints: EnrollHints,
        }
        respond_with(
            async {
                let input: EnrollTokenIn = if ctx.req.body().is_empty() {
                    EnrollTokenIn {
                        expires_in_minutes: None,
                    }
                } else {
                    json_body(ctx.req.body())?
                };
                let lifetime = input
                    .expires_in_minutes
                    .map_or(crate::auth::ENROLL_TOKEN_DEFAULT, |m| {
                        std::time::Duration::from_secs(m.saturating_mul(60))
                    });
                let (token, secret) = ctx
                    .app
                    .auth
                    .create_enroll_token(ctx.principal()?, lifetime, ctx.client())
                    .await?;
                Ok(json(
                    StatusCode::CREATED,
                    &Out {
                        token: secret,
                        expires_at: token.expires_at,
                        hints: enroll_hints(&ctx),
                    },
                ))
            }
            .await,
        )
    })
}

/// A node as the API shows it: no token digest.
#[derive(Serialize)]
struct NodeOut<'a> {
    id: u64,
    node_id: String,
    name: &'a str,
    address: &'a str,
    labels: &'a std::collections::BTreeMap<String, String>,
    enrolled_by: &'a str,
    created_at: i64,
    last_push: Option<i64>,
}

impl<'a> From<&'a crate::auth::Node> for NodeOut<'a> {
    fn from(n: &'a crate::auth::Node) -> Self {
        Self {
            id: n.id,
            node_id: n.node_id(),
            name: &n.name,
            address: &n.address,
            labels: &n.labels,
            enrolled_by: &n.enrolled_by,
            created_at: n.created_at,
            last_push: n.last_push,
        }
    }
}

/// Enrolls a machine (an Editor, or an enrollment token): the answer holds the node token,
/// shown this once.
pub fn node_enroll(ctx: Ctx) -> Handled {
    Box::pin(async move {
        #[derive(Serialize)]
        struct Out<'a> {
            node: NodeOut<'a>,
            token: String,
        }
        respond_with(
            async {
                let input: crate::auth::EnrollRequest = json_body(ctx.req.body())?;
                let (node, token) = ctx
                    .app
                    .auth
                    .enroll(ctx.principal()?, input, ctx.client())
                    .await?;
                Ok(json(
                    StatusCode::CREATED,
                    &Out {
                        node: NodeOut::from(&node),
                        token,
                    },
                ))
            }
            .await,
        )
    })
}

pub fn nodes(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(ctx.app.auth.nodes().map(|nodes| {
            json(
                StatusCode::OK,
                &serde_json::json!({"nodes": nodes.iter().map(NodeOut::from).collect::<Vec<_>>()}),
            )
        }))
    })
}

pub fn node_delete(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                ctx.app
                    .auth
                    .delete_node(ctx.principal()?, ctx.id()?, ctx.client())
                    .await?;
                Ok(no_content())
            }
            .await,
        )
    })
}

fn own_id(ctx: &Ctx) -> Result<u64, AuthError> {
    match ctx.principal()?.via {
        crate::auth::Via::Node { node_id, .. } => Ok(node_id),
        _ => Err(AuthError::Forbidden),
    }
}

/// The node's own record, for its node token (`perch-admin status`).
pub fn own_node(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with((|| {
            let node = ctx.app.auth.node(own_id(&ctx)?)?;
            Ok(json(StatusCode::OK, &NodeOut::from(&node)))
        })())
    })
}

/// `perch-admin unregister`: the node deletes itself; its token stops working.
pub fn own_node_delete(ctx: Ctx) -> Handled {
    Box::pin(async move {
        respond_with(
            async {
                let id = own_id(&ctx)?;
                ctx.app
                    .auth
                    .delete_node(ctx.principal()?, id, ctx.client())
                    .await?;
                Ok(no_content())
            }
            .await,
        )
    })
}
