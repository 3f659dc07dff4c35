//! Perch's calls to vmalert's and Alertmanager's HTTP APIs, and the count of firing alerts
//! behind the badges.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use http::{Method, StatusCode};
use perch_upstream::{self as upstream, Upstream};
use serde::Deserialize;
use serde_json::Value;

use super::receivers::TEST_LABEL;
use super::slot::Slot;
use super::{Alerting, AlertingError, FIRING};

/// One alert as vmalert holds it (`/api/v1/alerts`), firing or pending.
#[derive(Debug, Clone, Deserialize)]
pub struct VmAlert {
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When its condition became true, RFC 3339.
    #[serde(rename = "activeAt", default)]
    pub active_at: String,
    #[serde(default)]
    pub value: String,
    /// Its rule's expression.
    #[serde(default)]
    pub expression: String,
}

/// One alert as Alertmanager holds it (`/api/v2/alerts`): its labels, and the silences
/// that hold it back.
#[derive(Debug, Clone, Deserialize)]
pub struct AmAlert {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub status: AmStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AmStatus {
    #[serde(rename = "silencedBy", default)]
    pub silenced_by: Vec<String>,
}

/// The longest answer read from vmalert or Alertmanager.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

impl Alerting {
    /// Counts the firing alerts, in all and by node, for the badges.
    pub(super) async fn count_firing(&self) {
        let Ok(alerts) = self.vmalert_alerts().await else {
            return;
        };
        let mut by_node = HashMap::new();
        let mut all = 0;
        for a in alerts.iter().filter(|a| a.state == "firing") {
            all += 1;
            if let Some(node) = a.labels.get("node_name") {
                *by_node.entry(node.clone()).or_insert(0) += 1;
            }
        }
        FIRING.store(all, Ordering::Relaxed);
        *self.by_node.lock().unwrap_or_else(PoisonError::into_inner) = by_node;
    }

    /// Alerts firing on the node named `node`, as last counted.
    pub fn firing_on(&self, node: &str) -> usize {
        self.by_node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node)
            .copied()
            .unwrap_or(0)
    }

    fn upstream(&self, slot: &Slot) -> Result<Arc<Upstream>, AlertingError> {
        slot.upstream(&self.client)
            .ok_or_else(|| AlertingError::Unavailable(slot.name, slot.readiness().1))
    }

    pub(super) async fn call(
        &self,
        slot: &Slot,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Bytes), AlertingError> {
        let up = self.upstream(slot)?;
        let uri = up
            .uri(path)
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        let mut req = http::Request::builder().method(method).uri(uri);
        let body = match body {
            Some(v) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                upstream::full(serde_json::to_vec(&v).unwrap_or_default())
            }
            None => upstream::full(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        let resp = upstream::send(&up, req)
            .await
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        let status = resp.status();
        let bytes = upstream::read_body(resp.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|_| {
                AlertingError::Failed(slot.name, "its answer was cut or too long".into())
            })?;
        Ok((status, bytes))
    }

    async fn call_json(
        &self,
        slot: &Slot,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AlertingError> {
        let (status, bytes) = self.call(slot, method, path, body).await?;
        if !status.is_success() {
            let text = excerpt(&bytes);
            return Err(if status == StatusCode::BAD_REQUEST {
                AlertingError::BadInput(format!("{} refused it: {text}", slot.name))
            } else if status == StatusCode::NOT_FOUND {
                AlertingError::NotFound(format!("{} has no such thing: {text}", slot.name))
            } else {
                AlertingError::Failed(slot.name, format!("{status}: {text}"))
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| AlertingError::Failed(slot.name, format!("answered with bad JSON: {e}")))
    }

    /// vmalert's alerts (`/api/v1/alerts`): firing and pending.
    pub async fn vmalert_alerts(&self) -> Result<Vec<VmAlert>, AlertingError> {
        let mut v = self
            .call_json(&self.vmalert, Method::GET, "/api/v1/alerts", None)
            .await?;
        // vmalert answers `null` when nothing fires or is pending.
        serde_json::from_value::<Option<Vec<VmAlert>>>(v["data"]["alerts"].take())
            .map(Option::unwrap_or_default)
            .map_err(|e| AlertingError::Failed("vmalert", format!("answered with bad alerts: {e}")))
    }

    /// vmalert's rule groups with each rule's state (`/api/v1/rules`).
    pub async fn vmalert_rules(&self) -> Result<Value, AlertingError> {
        self.call_json(&self.vmalert, Method::GET, "/api/v1/rules", None)
            .await
    }

    /// Alertmanager's alerts, with whether each is silenced (`/api/v2/alerts`).
    pub async fn alertmanager_alerts(&self) -> Result<Vec<AmAlert>, AlertingError> {
        let v = self
            .call_json(&self.alertmanager, Method::GET, "/api/v2/alerts", None)
            .await?;
        serde_json::from_value::<Option<Vec<AmAlert>>>(v)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                AlertingError::Failed("alertmanager", format!("answered with bad alerts: {e}"))
            })
    }

    pub async fn silences(&self) -> Result<Value, AlertingError> {
        self.call_json(&self.alertmanager, Method::GET, "/api/v2/silences", None)
            .await
    }

    /// Creates a silence (Alertmanager's `postableSilence`); its id.
    pub async fn create_silence(&self, silence: Value) -> Result<String, AlertingError> {
        let v = self
            .call_json(
                &self.alertmanager,
                Method::POST,
                "/api/v2/silences",
                Some(silence),
            )
            .await?;
        Ok(v.get("silenceID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), AlertingError> {
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            return Err(AlertingError::BadInput(format!(
                "{id:?} is not a silence id"
            )));
        }
        self.call_json(
            &self.alertmanager,
            Method::DELETE,
            &format!("/api/v2/silence/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Sends a test notification through Alertmanager to the contact point `name` alone.
    pub async fn test_receiver(&self, name: &str, by: &str) -> Result<(), AlertingError> {
        if !self
            .settings
            .lock()
            .await
            .contacts
            .receivers
            .iter()
            .any(|r| r.name == name)
        {
            return Err(AlertingError::NotFound(format!(
                "no contact point {name:?}"
            )));
        }
        let now = jiff::Timestamp::now();
        let ends = now + jiff::SignedDuration::from_secs(300);
        let alert = serde_json::json!([{
            "labels": {
                "alertname": "PerchTestNotification",
                "severity": "info",
                TEST_LABEL: name,
                "test_id": now.as_millisecond().to_string(),
            },
            "annotations": {
                "summary": format!("A test notification from Perch, sent by {by}"),
            },
            "startsAt": now.to_string(),
            "endsAt": ends.to_string(),
        }]);
        self.call_json(
            &self.alertmanager,
            Method::POST,
            "/api/v2/alerts",
            Some(alert),
        )
        .await
        .map(|_| ())
    }

    /// Asks vmalert to read its rule files again.
    pub(super) async fn reload_vmalert(&self) {
        let why = match self
            .call(&self.vmalert, Method::GET, "/-/reload", None)
            .await
        {
            Ok((status, _)) if status.is_success() => return,
            Ok((status, body)) => format!("{status}: {}", excerpt(&body)),
            Err(e) => e.to_string(),
        };
        tracing::warn!(error = %why, "vmalert did not reload its rules; it will at its next start");
    }
}

/// An answer body as text for an error, at most 500 characters.
pub(super) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(500)
        .collect()
}
