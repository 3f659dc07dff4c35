//! Users and sessions: first-run setup, login and logout, changing one's password, user
//! management and the audit trail, as pages and as the JSON API.

pub mod api;
pub mod pages;

use std::sync::Arc;

use perch_auth::Auth;
use tokio::sync::watch;

/// Every ten minutes, removes sessions past their idle time or lifetime and expired
/// enrollment tokens, so that abandoned ones do not accumulate.
/// While the user store is unavailable (its file system full or failing), tries every
/// second to open it again, so that Perch recovers without a restart once space returns.
pub fn spawn_store_recovery(
    auth: Arc<Auth>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            if auth.store_fault().is_some() {
                auth.recover_store().await;
            }
        }
    })
}

pub fn spawn_session_sweeper(
    auth: Arc<Auth>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            match auth.sweep_expired() {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "expired sessions and enrollment tokens removed"
                ),
                Err(e) => tracing::warn!(error = ?e, "sweep of expired sessions failed"),
            }
        }
    })
}
