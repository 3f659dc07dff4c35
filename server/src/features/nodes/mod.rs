//! Machines: the node list, Add node (an enrollment token inside the exact `perch-admin
//! config` command), removal and `ca-certs.pem` for clients, as pages and as the JSON API.

pub mod api;
pub mod pages;

use serde::Serialize;

use crate::request::{Ctx, request_host};

/// What a client needs to enroll against this server: printed by the Add node page and
/// returned with a new enrollment token.
#[derive(Serialize)]
struct EnrollHints {
    /// SHA-256 of the served certificate's public key (what `--server-insecure-ssl` pins).
    fingerprint: Option<String>,
    /// The address the client used to reach this server (Host).
    server: String,
}

fn enroll_hints(ctx: &Ctx) -> EnrollHints {
    let host = request_host(&ctx.req).unwrap_or("localhost");
    let server = host.strip_suffix(":443").unwrap_or(host).to_owned();
    EnrollHints {
        fingerprint: ctx.app.certs.as_ref().map(|c| c.fingerprint()),
        server,
    }
}
