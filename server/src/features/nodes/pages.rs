//! The node pages: the list of enrolled machines, Add node, removal, and `ca-certs.pem`.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use crate::request::{
    Answer, ApiError, Ctx, Form, csrf, done_notice, html, nav, notice_for, respond, see_other, when,
};
use perch_auth::Role;

fn list_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    let nodes = ctx.app.auth.nodes()?;
    let who = ctx.who.as_ref();
    let page = ui::NodesPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        can_edit: who.is_some_and(|p| p.role >= Role::Editor),
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
                created: when(n.created_at),
                last_push: n.last_push.map_or("never".into(), when),
            })
            .collect(),
    };
    html(status, page.render())
}

pub async fn list(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    list_page(&ctx, StatusCode::OK, notice)
}

fn add_page(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    token: Option<(String, i64)>,
) -> Answer {
    let hints = super::enroll_hints(ctx);
    let who = ctx.who.as_ref();
    let page = ui::NodeAddPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        expires: token.as_ref().map_or(String::new(), |t| when(t.1)),
        token: token.map(|t| t.0),
        server: hints.server,
        fingerprint: hints.fingerprint,
        has_ca: ctx.app.cert_dir.join("ca-certs.pem").is_file(),
    };
    html(status, page.render())
}

pub async fn add_form(ctx: Ctx) -> Answer {
    add_page(&ctx, StatusCode::OK, ui::Notice::default(), None)
}

pub async fn add(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = async {
        // The range (5 minutes to a day) is the auth service's to enforce.
        let minutes: u64 = f.get("minutes").trim().parse().map_err(|_| {
            ApiError::BadInput("the lifetime is a number of minutes, 5 to 1440".into())
        })?;
        let lifetime = std::time::Duration::from_secs(minutes.saturating_mul(60));
        Ok::<_, ApiError>(
            ctx.app
                .auth
                .create_enroll_token(ctx.principal()?, lifetime, ctx.client())
                .await?,
        )
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
}

pub async fn delete(ctx: Ctx) -> Answer {
    let result = async {
        let id = ctx.id()?;
        Ok::<_, ApiError>(
            ctx.app
                .auth
                .delete_node(ctx.principal()?, id, ctx.client())
                .await?,
        )
    }
    .await;
    match result {
        Ok(_) => Ok(see_other("/nodes?done=node-removed")),
        Err(e) => list_page(&ctx, e.status(), notice_for(&e)),
    }
}

/// The CA certificates clients verify this server with (`--ca-file`).
pub async fn ca_certs(ctx: Ctx) -> Answer {
    let bytes = std::fs::read(ctx.app.cert_dir.join("ca-certs.pem"))
        .map_err(|_| ApiError::NotFound("ca-certs.pem"))?;
    let mut resp = respond(StatusCode::OK, "application/x-pem-file", bytes);
    resp.headers_mut().insert(
        http::header::CONTENT_DISPOSITION,
        http::HeaderValue::from_static("attachment; filename=\"ca-certs.pem\""),
    );
    Ok(resp)
}
