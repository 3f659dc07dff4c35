//! `perch-admin unregister`: the server deletes this node and revokes its token; then the
//! local config and buffer are removed.

use std::path::Path;

use http::Method;
use serde_json::json;

use super::{Failure, Output, server_of};
use crate::cli::UnregisterArgs;
use crate::config::AgentConfig;

pub async fn run(args: UnregisterArgs, path: &Path) -> Result<Output, Failure> {
    let config = AgentConfig::load(path)?;
    let told = async {
        let mut conn = server_of(&config)?.connect().await?;
        conn.json(Method::DELETE, "/v1/node", Some(&config.token), None)
            .await?
            .ok()
    }
    .await;
    let note = match told {
        Ok(_) => "The server deleted the node and revoked its token.".to_owned(),
        Err(e) if args.force => {
            format!(
                "The server could not be told ({e}); removing the local config anyway (--force). Delete the node on the server's Nodes page."
            )
        }
        Err(e) => {
            let f = Failure::from(e);
            return Err(Failure {
                code: f.code,
                message: format!(
                    "{}\nNothing was removed. Use --force to remove the local config anyway.",
                    f.message
                ),
            });
        }
    };
    std::fs::remove_file(path)
        .map_err(|e| Failure::runtime(format!("{}: cannot remove: {e}", path.display())))?;
    let _ = std::fs::remove_dir_all(AgentConfig::buffer_dir(path));
    let _ = std::fs::remove_file(AgentConfig::state_path(path));
    Ok(Output::new(
        format!(
            "{note}\nRemoved {}. Stop the agent: systemctl disable --now perch-agent.",
            path.display()
        ),
        json!({"node_id": config.node_id, "node_name": config.node_name, "unregistered": true}),
    ))
}
