//! `/v1/backups`: the settings, the archives and the runs; POST takes one now (and answers
//! when it is done); `/v1/backups/{file}` downloads one.

use http::StatusCode;
use serde::Serialize;

use crate::backup::{Run, Trigger};
use crate::request::{Answer, Ctx, json};

#[derive(Serialize)]
struct Listing {
    dir: Option<String>,
    schedule: Option<String>,
    keep: usize,
    encryption: Option<String>,
    running: bool,
    files: Vec<File>,
    runs: Vec<Run>,
}

#[derive(Serialize)]
struct File {
    name: String,
    bytes: u64,
    modified: i64,
}

pub async fn list(ctx: Ctx) -> Answer {
    let b = &ctx.app.backups;
    let s = b.settings();
    Ok(json(
        StatusCode::OK,
        &Listing {
            dir: s.dir.as_ref().map(|d| d.display().to_string()),
            schedule: s.schedule.map(|s| s.describe()),
            keep: s.keep,
            encryption: s.encryption.as_ref().map(|e| e.describe()),
            running: b.is_running(),
            files: b
                .files()
                .into_iter()
                .map(|f| File {
                    name: f.name,
                    bytes: f.bytes,
                    modified: f.modified,
                })
                .collect(),
            runs: b.runs(),
        },
    ))
}

/// Takes a backup into the folder and answers with its run (201), once it is written.
pub async fn take(ctx: Ctx) -> Answer {
    let trigger = Trigger::Admin {
        name: ctx.principal()?.actor(),
        client: ctx.client().to_string(),
    };
    let run = ctx.app.backups.to_dir(trigger).await?;
    Ok(json(StatusCode::CREATED, &run))
}

pub async fn download(ctx: Ctx) -> Answer {
    super::download(ctx).await
}
