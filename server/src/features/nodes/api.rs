//! The JSON API of machines: enrollment tokens, enrolling, the node list, removal, and a
//! node's own record for its node token (`perch-admin status` and `unregister`).

use std::collections::BTreeMap;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::request::{Answer, ApiError, Ctx, json, json_body, no_content};
use perch_auth::{ENROLL_TOKEN_DEFAULT, EnrollRequest, Node, Via};

#[derive(Deserialize)]
struct EnrollTokenIn {
    /// Minutes, 5 to 1440; default 60.
    #[serde(default)]
    expires_in_minutes: Option<u64>,
}

#[derive(Serialize)]
struct EnrollTokenOut {
    token: String,
    expires_at: i64,
    #[serde(flatten)]
    hints: super::EnrollHints,
}

pub async fn enroll_token_create(ctx: Ctx) -> Answer {
    let input: EnrollTokenIn = if ctx.req.body().is_empty() {
        EnrollTokenIn {
            expires_in_minutes: None,
        }
    } else {
        json_body(ctx.req.body())?
    };
    let lifetime = input.expires_in_minutes.map_or(ENROLL_TOKEN_DEFAULT, |m| {
        std::time::Duration::from_secs(m.saturating_mul(60))
    });
    let (token, secret) = ctx
        .app
        .auth
        .create_enroll_token(ctx.principal()?, lifetime, ctx.client())
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &EnrollTokenOut {
            token: secret,
            expires_at: token.expires_at,
            hints: super::enroll_hints(&ctx),
        },
    ))
}

/// A node as the API shows it: no token digest.
#[derive(Serialize)]
struct NodeOut<'a> {
    id: u64,
    node_id: String,
    name: &'a str,
    address: &'a str,
    labels: &'a BTreeMap<String, String>,
    enrolled_by: &'a str,
    created_at: i64,
    last_push: Option<i64>,
}

impl<'a> From<&'a Node> for NodeOut<'a> {
    fn from(n: &'a Node) -> Self {
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

#[derive(Serialize)]
struct EnrolledOut<'a> {
    node: NodeOut<'a>,
    token: String,
}

/// Enrolls a machine (an Editor, or an enrollment token): the answer holds the node token,
/// shown this once.
pub async fn enroll(ctx: Ctx) -> Answer {
    let input: EnrollRequest = json_body(ctx.req.body())?;
    let (node, token) = ctx
        .app
        .auth
        .enroll(ctx.principal()?, input, ctx.client())
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &EnrolledOut {
            node: NodeOut::from(&node),
            token,
        },
    ))
}

#[derive(Serialize)]
struct NodesOut<'a> {
    nodes: Vec<NodeOut<'a>>,
}

pub async fn list(ctx: Ctx) -> Answer {
    let nodes = ctx.app.auth.nodes()?;
    Ok(json(
        StatusCode::OK,
        &NodesOut {
            nodes: nodes.iter().map(NodeOut::from).collect(),
        },
    ))
}

pub async fn delete(ctx: Ctx) -> Answer {
    ctx.app
        .auth
        .delete_node(ctx.principal()?, ctx.id()?, ctx.client())
        .await?;
    Ok(no_content())
}

/// The caller's own node, for a node token.
fn own_id(ctx: &Ctx) -> Result<u64, ApiError> {
    match ctx.principal()?.via {
        Via::Node { node_id, .. } => Ok(node_id),
        _ => Err(perch_auth::AuthError::Forbidden.into()),
    }
}

/// The node's own record, for its node token (`perch-admin status`).
pub async fn own(ctx: Ctx) -> Answer {
    let node = ctx.app.auth.node(own_id(&ctx)?)?;
    Ok(json(StatusCode::OK, &NodeOut::from(&node)))
}

/// `perch-admin unregister`: the node deletes itself; its token stops working.
pub async fn own_delete(ctx: Ctx) -> Answer {
    let id = own_id(&ctx)?;
    ctx.app
        .auth
        .delete_node(ctx.principal()?, id, ctx.client())
        .await?;
    Ok(no_content())
}
