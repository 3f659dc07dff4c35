//! Snapshots of the bundled engine's data, for backups: VictoriaMetrics flushes what it
//! holds in memory and hard-links its parts under `<data>/snapshots/<name>`, instantly and
//! with no extra space, while it goes on taking writes.

use serde::Deserialize;

use super::{Engine, Mode, ReadError};

/// A snapshot being copied; [`Engine::drop_snapshot`] removes it after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
}

#[derive(Deserialize)]
struct SnapshotAnswer {
    status: String,
    #[serde(default)]
    snapshot: String,
    #[serde(default)]
    msg: String,
}

impl Engine {
    /// Whether the engine's data is Perch's to copy (the bundled engine) or the external
    /// engine's own business.
    pub fn is_bundled(&self) -> bool {
        matches!(self.mode, Mode::Bundled { .. })
    }

    /// Flushes the bundled engine and takes a snapshot of its data.
    pub async fn snapshot(&self) -> Result<Snapshot, ReadError> {
        self.get("/internal/force_flush").await?;
        let body = self.get("/snapshot/create").await?;
        let answer: SnapshotAnswer =
            serde_json::from_slice(&body).map_err(|_| ReadError::Decode)?;
        let plain = !answer.snapshot.is_empty()
            && answer
                .snapshot
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if answer.status != "ok" || !plain {
            return Err(ReadError::Query {
                kind: "snapshot".into(),
                message: answer.msg,
            });
        }
        Ok(Snapshot {
            name: answer.snapshot,
        })
    }

    /// Removes a snapshot taken by [`Engine::snapshot`].
    pub async fn drop_snapshot(&self, snapshot: &Snapshot) -> Result<(), ReadError> {
        self.get(&format!("/snapshot/delete?snapshot={}", snapshot.name))
            .await
            .map(drop)
    }
}
