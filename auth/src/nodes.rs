//! Machines: enrollment tokens (short-lived, single use, made by an Editor or Admin),
//! enrollment, and node tokens. A node token can only write its own node's metrics (the
//! write path stamps the node's identity on every series) and read or delete its own record;
//! it is never a user and passes no role check.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::model::{EnrollToken, Node};
use super::node_repo::InsertNode;
use super::store::IdKind;
use super::{AuditKind, Auth, AuthError, Gate, Principal, Role, Via, secret};
use perch_time::unix_now;

/// Shortest and longest life of an enrollment token.
pub const ENROLL_TOKEN_LIFETIME: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(5 * 60)..=Duration::from_secs(24 * 3600);
/// The default life of an enrollment token.
pub const ENROLL_TOKEN_DEFAULT: Duration = Duration::from_secs(3600);
/// Label names a node's own labels may not use besides the identity labels, which the
/// server sets: Prometheus's target labels.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// `last_push` is written at most this often.
const PUSH_TOUCH_EVERY: i64 = 60;

/// What `perch-admin config` sends to enroll a machine.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnrollRequest {
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Replace a node of the same name (its token stops working).
    #[serde(default)]
    pub force: bool,
}

impl EnrollRequest {
    fn validate(&mut self) -> Result<(), AuthError> {
        let bad = |m: String| Err(AuthError::BadInput(m));
        self.name = self.name.trim().to_owned();
        let name_ok = (1..=128).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return bad(format!(
                "node name {:?}: use 1 to 128 ASCII letters, digits, '.', '_' or '-' (--node-name)",
                self.name
            ));
        }
        self.address = self.address.trim().to_owned();
        if self.address.len() > 255
            || self
                .address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("node address: at most 255 characters, no spaces (--node-address)".into());
        }
        if self.labels.len() > 32 {
            return bad(format!(
                "{} labels; at most 32 (--labels)",
                self.labels.len()
            ));
        }
        for (name, value) in &self.labels {
            let name_ok = name.len() <= 64
                && perch_remote_write::is_label_name(name)
                && !name.starts_with("__");
            if !name_ok {
                return bad(format!(
                    "label name {name:?}: use [a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes, not starting with __ (--labels)"
                ));
            }
            if perch_remote_write::IDENTITY_LABELS.contains(&name.as_str())
                || TARGET_LABELS.contains(&name.as_str())
            {
                return bad(format!(
                    "label {name} is set by Perch itself; choose another name (--labels)"
                ));
            }
            if value.len() > 256 || value.chars().any(char::is_control) {
                return bad(format!(
                    "label {name}: the value has at most 256 bytes and no control characters (--labels)"
                ));
            }
        }
        Ok(())
    }
}

impl Auth {
    /// Creates a single-use enrollment token; the secret is returned once and stored only
    /// as a hash.
    pub async fn create_enroll_token(
        &self,
        who: &Principal,
        lifetime: Duration,
        client: IpAddr,
    ) -> Result<(EnrollToken, String), AuthError> {
        if !ENROLL_TOKEN_LIFETIME.contains(&lifetime) {
            return Err(AuthError::BadInput(
                "an enrollment token lives from 5 minutes to 24 hours".into(),
            ));
        }
        let secret = secret::enroll_token();
        let now = unix_now();
        let token = EnrollToken {
            id: self.store.next_id(IdKind::EnrollToken)?,
            created_by: who.actor(),
            created_by_id: who.user_id,
            created_by_token: who.token_id(),
            created_at: now,
            expires_at: now + lifetime.as_secs() as i64,
        };
        self.store
            .put_enroll_token(&secret::digest(&secret), &token)?;
        self.audit(
            AuditKind::EnrollTokenCreated,
            &who.actor(),
            "",
            &client.to_string(),
            &format!("expires in {} s", lifetime.as_secs()),
        )?;
        self.store.durable().await?;
        Ok((token, secret))
    }

    /// The principal behind an enrollment token that is unused, unexpired, and whose
    /// creator is still an Editor or Admin.
    fn enroll_principal(&self, bearer: &str) -> Result<Option<Principal>, AuthError> {
        let key = secret::digest(bearer);
        let Some(token) = self.store.enroll_token(&key)? else {
            return Ok(None);
        };
        if unix_now() >= token.expires_at {
            return Ok(None);
        }
        if let Some(creator) = token.created_by_id {
            let still_editor = self
                .store
                .user(creator)?
                .is_some_and(|u| u.role >= Role::Editor);
            if !still_editor {
                return Ok(None);
            }
        }
        // Made with an API token: only while that token is still valid (not revoked, not
        // expired, its creator still an admin) and an Editor's.
        if let Some(api_token) = token.created_by_token
            && !self.api_token_valid(api_token, Role::Editor)?
        {
            return Ok(None);
        }
        Ok(Some(Principal {
            gate: Gate::Open,
            user_id: None,
            name: format!("enroll-token:{}", token.created_by),
            role: Role::Viewer,
            must_change_password: false,
            via: Via::Enroll { key },
            time_zone: None,
        }))
    }

    /// The principal behind a node token (by its digest): the node itself, good until the
    /// node changes.
    fn node_principal(&self, key: &[u8; 32]) -> Result<Option<(Principal, i64)>, AuthError> {
        let Some(node) = self.store.node_by_token(key)? else {
            return Ok(None);
        };
        let principal = Principal {
            gate: Gate::Open,
            user_id: None,
            name: node.name,
            role: Role::Viewer,
            must_change_password: false,
            via: Via::Node {
                node_id: node.id,
                last_push: node.last_push,
            },
            time_zone: None,
        };
        Ok(Some((principal, i64::MAX)))
    }

    /// The principal behind a bearer token of any kind: API, node or enrollment token.
    /// API and node tokens verified lately are answered from memory (see `verified`).
    pub fn bearer(&self, bearer: &str) -> Result<Option<Principal>, AuthError> {
        let bearer = bearer.trim();
        if bearer.starts_with(secret::ENROLL_TOKEN_PREFIX) {
            return self.enroll_principal(bearer);
        }
        let key = secret::digest(bearer);
        let now = unix_now();
        // Read before the lookup: a change after it makes the entry unusable.
        let changes = self.store.auth_changes();
        if let Some(principal) = self.verified.get(&key, changes, now) {
            return Ok(Some(principal));
        }
        let found = if bearer.starts_with(secret::NODE_TOKEN_PREFIX) {
            self.node_principal(&key)?
        } else {
            self.token_principal(&key, now)?
        };
        Ok(found.map(|(principal, until)| {
            self.verified.put(key, changes, now, until, &principal);
            principal
        }))
    }

    /// Enrolls a machine for an Editor or Admin (session or API token) or with an
    /// enrollment token, which is used up. Returns the node and its token, shown once.
    pub async fn enroll(
        &self,
        who: &Principal,
        mut request: EnrollRequest,
        client: IpAddr,
    ) -> Result<(Node, String), AuthError> {
        request.validate()?;
        // One enrollment at a time: "name taken" and "token used" are decided once.
        let _guard = self.users_lock.lock().await;
        let enrolled_by = match &who.via {
            Via::Enroll { .. } => who.name.clone(),
            Via::Session { .. } | Via::Token { .. } if who.role >= Role::Editor => who.actor(),
            _ => return Err(AuthError::Forbidden),
        };
        let existing = self.store.node_by_name(&request.name)?;
        if existing.is_some() && !request.force {
            return Err(AuthError::NodeNameTaken(request.name));
        }
        // An enrollment token adds a machine; replacing one (and revoking its token) takes an
        // Editor, so a leaked token cannot take over an existing node's name.
        if existing.is_some() && matches!(who.via, Via::Enroll { .. }) {
            return Err(AuthError::BadInput(format!(
                "a node named {} exists, and an enrollment token cannot replace it: remove it on the Nodes page first, or enroll with --server-user and --force",
                request.name
            )));
        }
        if let Via::Enroll { key } = &who.via
            && self.store.take_enroll_token(key)?.is_none()
        {
            return Err(AuthError::BadEnrollToken);
        }
        if let Some(old) = existing {
            self.store.delete_node(&old)?;
            self.audit(
                AuditKind::NodeDeleted,
                &enrolled_by,
                &old.name,
                &client.to_string(),
                &format!("node {} replaced by a forced enrollment", old.id),
            )?;
        }
        let secret = secret::node_token();
        let node = Node {
            id: self.store.next_id(IdKind::Node)?,
            name: request.name,
            address: request.address,
            labels: request.labels,
            enrolled_by: enrolled_by.clone(),
            created_at: unix_now(),
            token_digest: secret::hex(&secret::digest(&secret)),
            last_push: None,
        };
        match self.store.insert_node(&node) {
            Ok(()) => {}
            Err(InsertNode::NameTaken) => return Err(AuthError::NodeNameTaken(node.name)),
            Err(InsertNode::Store(e)) => return Err(e.into()),
        }
        self.audit(
            AuditKind::NodeEnrolled,
            &enrolled_by,
            &node.name,
            &client.to_string(),
            &format!("node {}", node.id),
        )?;
        self.store.durable().await?;
        Ok((node, secret))
    }

    pub fn node(&self, id: u64) -> Result<Node, AuthError> {
        self.store.node(id)?.ok_or(AuthError::NotFound("node"))
    }

    /// Every node, by name.
    pub fn nodes(&self) -> Result<Vec<Node>, AuthError> {
        let mut nodes = self.store.nodes()?;
        nodes.sort_by_key(|n| n.name.to_lowercase());
        Ok(nodes)
    }

    /// Deletes a node and revokes its token: by an Editor or Admin, or by the node itself
    /// (`perch-admin unregister`). Its metrics stay in the engine until retention ends.
    pub async fn delete_node(
        &self,
        who: &Principal,
        id: u64,
        client: IpAddr,
    ) -> Result<Node, AuthError> {
        let allowed = match who.via {
            Via::Node { node_id, .. } => node_id == id,
            Via::Session { .. } | Via::Token { .. } => who.role >= Role::Editor,
            Via::Enroll { .. } => false,
        };
        if !allowed {
            return Err(AuthError::Forbidden);
        }
        let _guard = self.users_lock.lock().await;
        let node = self.node(id)?;
        self.store.delete_node(&node)?;
        self.audit(
            AuditKind::NodeDeleted,
            &who.actor(),
            &node.name,
            &client.to_string(),
            &format!("node {}", node.id),
        )?;
        self.store.durable().await?;
        Ok(node)
    }

    /// Notes that the engine accepted a write from this node (kept to the minute, not
    /// flushed: it is a display value).
    pub fn node_pushed(&self, id: u64, last_push: Option<i64>) {
        let now = unix_now();
        if last_push.is_some_and(|t| now - t < PUSH_TOUCH_EVERY) {
            return;
        }
        if let Err(e) = self.store.touch_node(id, now) {
            tracing::warn!(error = %e, "recording a node's last push failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, labels: &[(&str, &str)]) -> EnrollRequest {
        EnrollRequest {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..EnrollRequest::default()
        }
    }

    #[test]
    fn enroll_requests_are_validated() {
        assert!(
            request(" db-1.example ", &[("env", "prod")])
                .validate()
                .is_ok()
        );
        for bad in ["", "has space", "ünïcode", &"x".repeat(129)] {
            assert!(request(bad, &[]).validate().is_err(), "{bad:?}");
        }
        for (k, v) in [
            ("node_name", "x"),
            ("job", "x"),
            ("__name__", "x"),
            ("1abc", "x"),
            ("a-b", "x"),
            ("ok", "line\nbreak"),
        ] {
            assert!(request("n", &[(k, v)]).validate().is_err(), "{k}={v:?}");
        }
        let mut r = request("n", &[]);
        r.address = "10.0.0.1 ; rm".into();
        assert!(r.validate().is_err());
    }
}
