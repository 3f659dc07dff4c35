//! The Backups page.

use std::collections::HashMap;

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use crate::backup::Trigger;
use crate::request::{
    Answer, ApiError, Ctx, csrf, html, nav, notice_for, query, see_other, when_in, zone,
};

fn page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    let backups = &ctx.app.backups;
    let settings = backups.settings();
    let runs = backups.runs();
    let by_file: HashMap<&str, &crate::backup::Run> = runs
        .iter()
        .filter_map(|r| r.file.as_deref().map(|f| (f, r)))
        .collect();
    let files = backups
        .files()
        .into_iter()
        .map(|f| {
            let run = by_file.get(f.name.as_str());
            ui::BackupRow {
                taken: run.map_or_else(
                    || when_in(zone(ctx), f.modified),
                    |r| when_in(zone(ctx), r.started_at),
                ),
                size: ui::units::format(f.bytes as f64, ui::units::Unit::Bytes),
                duration: run.map_or("".into(), |r| format!("{:.1} s", r.seconds)),
                by: run.map_or("".into(), |r| r.by.clone()),
                name: f.name,
            }
        })
        .collect();
    let failures = runs
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|e| ui::BackupFailure {
                at: when_in(zone(ctx), r.started_at),
                by: r.by.clone(),
                error: e.clone(),
            })
        })
        .take(5)
        .collect();
    let last_success = runs
        .iter()
        .find(|r| r.error.is_none())
        .map_or("none yet".into(), |r| when_in(zone(ctx), r.started_at));
    let who = ctx.who.as_ref();
    let page = ui::BackupsPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        dir: settings.dir.as_ref().map(|d| d.display().to_string()),
        schedule: settings.schedule.map_or(
            "none: only from this page or perch-server backup".into(),
            |s| s.describe(),
        ),
        keep: match settings.keep {
            0 => "all".into(),
            n => format!("the newest {n}"),
        },
        encryption: settings
            .encryption
            .as_ref()
            .map_or("nothing set".into(), |e| e.describe()),
        running: backups.is_running(),
        last_success,
        files,
        failures,
    };
    html(status, page.render())
}

pub async fn show(ctx: Ctx) -> Answer {
    let success = match query(&ctx.req).get("done") {
        "started" => Some("Backup started: it appears below when it is done."),
        _ => None,
    };
    let notice = ui::Notice {
        success: success.map(str::to_owned),
        ..ui::Notice::default()
    };
    page(&ctx, StatusCode::OK, notice)
}

/// Starts a backup into the folder and comes back to the page, which refreshes until it
/// is done (a large one takes minutes; the browser need not wait).
pub async fn take(ctx: Ctx) -> Answer {
    let backups = ctx.app.backups.clone();
    let refused = if backups.settings().dir.is_none() {
        Some(crate::backup::BackupError::NoDir)
    } else if backups.is_running() {
        Some(crate::backup::BackupError::Busy)
    } else {
        None
    };
    if let Some(e) = refused {
        let e = ApiError::from(e);
        return page(&ctx, e.status(), notice_for(&e));
    }
    let trigger = Trigger::Admin {
        name: ctx.principal()?.actor(),
        client: ctx.client().to_string(),
    };
    tokio::spawn(async move {
        // The outcome is logged, counted and listed on the page by the service.
        let _ = backups.to_dir(trigger).await;
    });
    // Let the page it comes back to show the backup as running.
    tokio::task::yield_now().await;
    Ok(see_other("/backups?done=started"))
}

pub async fn download(ctx: Ctx) -> Answer {
    super::download(ctx).await
}
