//! The node pages: the list of enrolled machines, Add node (an enrollment token inside the
//! exact `perch-admin config` command), removal, and `ca-certs.pem` for clients.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use super::pages::{done_notice, error_page, form, nav, notice_for};
use super::{api, support};
use crate::auth::{AuthError, Role};
use crate::http::Body;
use crate::http::routes::{Ctx, Handled};

type Response = http::Response<Body>;

fn csrf(ctx: &Ctx) -> String {
    nav(ctx.who.as_ref()).map(|n| n.csrf).unwrap_or_default()
}

fn nodes_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Response {
    let nodes = match ctx.app.auth.nodes() {
        Ok(n) => n,
        Err(e) => return error_page(ctx.who.as_ref(), &e),
    };
    let page = ui::NodesPage {
        nav: nav(ctx.who.as_ref()),
        csrf: csrf(ctx),
        notice,
        can_edit: ctx.who.as_ref().is_some_and(|p| p.role >= Role::Editor),
        nodes: nodes
            .iter()
            .map(|n| ui::NodeRow {
                id: n.id,
                node_id: n.node_id(),
                name: n.name.clone(),
                address: n.address.clone(),
                labels: n
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                enrolled_by: n.enrolled_by.clone(),
                created: support::when(n.created_at),
                last_push: n.last_push.map_or("never".into(), support::when),
            })
            .collect(),
    };
    support::html(status, page.render())
}

pub fn nodes(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let notice = done_notice(&ctx);
        nodes_page(&ctx, StatusCode::OK, notice)
    })
}

fn add_page(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    token: Option<(String, i64)>,
) -> Response {
    let hints = api::enroll_hints(ctx);
    let page = ui::NodeAddPage {
        nav: nav(ctx.who.as_ref()),
        csrf: csrf(ctx),
        notice,
        expires: token.as_ref().map_or(String::new(), |t| support::when(t.1)),
        token: token.map(|t| t.0),
        server: hints.server,
        fingerprint: hints.fingerprint,
        has_ca: ctx.app.cert_dir.join("ca-certs.pem").is_file(),
    };
    support::html(status, page.render())
}

pub fn node_add_form(ctx: Ctx) -> Handled {
    Box::pin(async move { add_page(&ctx, StatusCode::OK, ui::Notice::default(), None) })
}

pub fn node_add(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let f = form(&ctx);
        let result = async {
            let who = ctx.principal()?.clone();
            // The range (5 minutes to a day) is the auth service's to enforce.
            let minutes: u64 = f.get("minutes").trim().parse().map_err(|_| {
                AuthError::BadInput("the lifetime is a number of minutes, 5 to 1440".into())
            })?;
            ctx.app
                .auth
                .create_enroll_token(
                    &who,
                    std::time::Duration::from_secs(minutes.saturating_mul(60)),
                    ctx.client(),
                )
                .await
        }
        .await;
        match result {
            Ok((token, secret)) => add_page(
                &ctx,
                StatusCode::OK,
                ui::Notice::default(),
                Some((secret, token.expires_at)),
            ),
            Err(e) => add_page(&ctx, e.status(), notice_for(&e), None),
        }
    })
}

pub fn node_delete(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let result = async {
            let who = ctx.principal()?.clone();
            ctx.app
                .auth
                .delete_node(&who, ctx.id()?, ctx.client())
                .await
        }
        .await;
        match result {
            Ok(_) => support::see_other("/nodes?done=node-removed"),
            Err(e) => nodes_page(&ctx, e.status(), notice_for(&e)),
        }
    })
}

/// The CA certificates clients verify this server with (`--ca-file`).
pub fn ca_certs(ctx: Ctx) -> Handled {
    Box::pin(async move {
        match std::fs::read(ctx.app.cert_dir.join("ca-certs.pem")) {
            Ok(bytes) => {
                let mut resp = support::respond(StatusCode::OK, "application/x-pem-file", bytes);
                resp.headers_mut().insert(
                    http::header::CONTENT_DISPOSITION,
                    http::HeaderValue::from_static("attachment; filename=\"ca-certs.pem\""),
                );
                resp
            }
            Err(_) => error_page(ctx.who.as_ref(), &AuthError::NotFound("ca-certs.pem")),
        }
    })
}
