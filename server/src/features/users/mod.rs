//! Users and sessions: first-run setup, login and logout, changing one's password, user
//! management and the audit trail, as pages and as the JSON API.

pub mod api;
pub mod pages;
pub mod second_factor;

use std::sync::Arc;
use std::time::Duration;

use perch_auth::Auth;
use tokio::sync::watch;

/// Runs `work` every `period` until `shutdown` turns true.
fn spawn_every<F>(
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut work: impl FnMut() -> F + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            work().await;
        }
    })
}

/// While the user store is unavailable (its file system full or failing), tries every
/// second to open it again, so that Perch recovers without a restart once space returns.
pub fn spawn_store_recovery(
    auth: Arc<Auth>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    spawn_every(Duration::from_secs(1), shutdown, move || {
        let auth = auth.clone();
        async move {
            if auth.store_fault().is_some() {
                auth.recover_store().await;
            }
        }
    })
}

/// Every ten minutes, removes sessions past their idle time or lifetime and expired
/// enrollment tokens, so that abandoned ones do not accumulate.
pub fn spawn_session_sweeper(
    auth: Arc<Auth>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    spawn_every(Duration::from_secs(600), shutdown, move || {
        match auth.sweep_expired() {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "expired sessions and enrollment tokens removed"
            ),
            Err(e) => tracing::warn!(error = ?e, "sweep of expired sessions failed"),
        }
        std::future::ready(())
    })
}
