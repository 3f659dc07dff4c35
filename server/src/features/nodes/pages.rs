//! The node pages: the list of enrolled machines, Add node, removal, and `ca-certs.pem`.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use crate::request::{
    Answer, ApiError, Ctx, Form, confirm, csrf, done_notice, html, nav, notice_for, respond,
    see_other, when_in, zone,
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
                created: when_in(zone(ctx), n.created_at),
                last_push: n
                    .last_push
                    .map_or("never".into(), |at| when_in(zone(ctx), at)),
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
    server: Option<String>,
) -> Answer {
    let hints = super::enroll_hints(ctx);
    let server = server.unwrap_or(hints.server);
    let who = ctx.who.as_ref();
    let page = ui::NodeAddPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        expires: token
            .as_ref()
            .map_or(String::new(), |t| when_in(zone(ctx), t.1)),
        token: token.map(|t| t.0),
        server_is_local: is_local(&server),
        uncovered: ctx.app.certs.as_ref().and_then(|c| {
            let names = c.names();
            (!covered(&names, host_of(&server))).then(|| names.join(", "))
        }),
        server,
        fingerprint: hints.fingerprint,
        has_ca: ctx.app.cert_dir.join("ca-certs.pem").is_file(),
    };
    html(status, page.render())
}

pub async fn add_form(ctx: Ctx) -> Answer {
    add_page(&ctx, StatusCode::OK, ui::Notice::default(), None, None)
}

/// The host of `server` (host[:port], [v6]:port, or a bare address).
fn host_of(server: &str) -> &str {
    if server.parse::<std::net::IpAddr>().is_ok() {
        return server;
    }
    server
        .strip_prefix('[')
        .and_then(|s| s.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| server.rsplit_once(':').map_or(server, |(h, _)| h))
}

/// Whether `server` (host[:port]) names this machine only.
fn is_local(server: &str) -> bool {
    let host = host_of(server);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a certificate for `names` (DNS names, `*.` wildcards of one label, addresses)
/// is valid for `host`, as a client checks it.
fn covered(names: &[String], host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return names
            .iter()
            .any(|n| n.parse::<std::net::IpAddr>().is_ok_and(|a| a == ip));
    }
    let host = host.trim_end_matches('.');
    names.iter().any(|n| {
        if let Some(parent) = n.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(parent))
        } else {
            n.eq_ignore_ascii_case(host)
        }
    })
}

/// The server as typed on the page: a host name or address and an optional port, nothing
/// a shell would read as more than one word.
fn typed_server(typed: &str) -> Result<Option<String>, ApiError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    let plain = typed.len() <= 255
        && typed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !plain {
        return Err(ApiError::BadInput(
            "the server is a name or address with an optional :port, like perch.example.com or 10.0.0.5:8443".into(),
        ));
    }
    Ok(Some(typed.strip_suffix(":443").unwrap_or(typed).to_owned()))
}

pub async fn add(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let server = match typed_server(f.get("server")) {
        Ok(server) => server,
        Err(e) => return add_page(&ctx, e.status(), notice_for(&e), None, None),
    };
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
            server,
        ),
        Err(e) => add_page(&ctx, e.status(), notice_for(&e), None, server),
    }
}

/// Asks before removing a node.
pub async fn delete_confirm(ctx: Ctx) -> Answer {
    let node = ctx.app.auth.node(ctx.id()?)?;
    confirm(
        &ctx,
        format!("Remove {}?", node.name),
        format!("Remove the node {} ({})?", node.name, node.node_id()),
        "Its node token stops working at once, so its agent can no longer send metrics; what it sent stays in the metrics engine until the retention period ends. To watch it again, enroll it anew from Add node.",
        "Remove node",
        "/nodes",
    )
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

#[cfg(test)]
mod tests {
    use super::{covered, is_local, typed_server};

    #[test]
    fn local_names_and_typed_servers() {
        for local in [
            "localhost",
            "localhost:8443",
            "127.0.0.1",
            "127.0.0.1:443",
            "[::1]:8443",
            "::1",
        ] {
            assert!(is_local(local), "{local}");
        }
        for remote in ["perch.example.com", "10.0.0.5:8443", "[2001:db8::1]:443"] {
            assert!(!is_local(remote), "{remote}");
        }
        assert_eq!(
            typed_server(" perch.lan:443 ").unwrap().as_deref(),
            Some("perch.lan")
        );
        assert_eq!(typed_server("").unwrap(), None);
        for bad in ["a b", "x;rm -rf /", "$(id)", "h\"q"] {
            assert!(typed_server(bad).is_err(), "{bad}");
        }
        let names: Vec<String> = ["localhost", "127.0.0.1", "::1", "*.lan.example"]
            .map(str::to_owned)
            .into();
        for yes in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "::1",
            "perch.lan.example",
        ] {
            assert!(covered(&names, yes), "{yes}");
        }
        for no in [
            "perch.example.net",
            "10.0.0.5",
            "lan.example",
            "a.b.lan.example",
        ] {
            assert!(!covered(&names, no), "{no}");
        }
    }
}
