//! Polls the certificate directory and swaps in a replaced certificate once it validates.
//!
//! Polling (every second) rather than inotify: it works the same on bind mounts, Docker
//! volumes and `docker cp`, and costs three `stat` calls. A change that does not validate,
//! such as garbage PEM, a key that does not match, or the first half of a copy, keeps the
//! old certificate serving and is logged once; the next change is tried again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{CertSource, Certificates};
use crate::selfmon::ReasonLabels;

const POLL: Duration = Duration::from_secs(1);
/// How often a generated certificate is checked for renewal.
const RENEW_CHECK: Duration = Duration::from_secs(3600);

/// Runs until `shutdown` turns true.
pub fn spawn_watcher(
    certs: Arc<Certificates>,
    source: CertSource,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = source.dir.state();
        let mut since_renew_check = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            since_renew_check += POLL;
            if since_renew_check >= RENEW_CHECK {
                since_renew_check = Duration::ZERO;
                renew(&source).await;
            }
            let now = source.dir.state();
            if now == seen {
                continue;
            }
            seen = now;
            let loader = source.clone();
            let loaded = tokio::task::spawn_blocking(move || loader.dir.load(loader.options)).await;
            let outcome = match loaded {
                Ok(Ok(cert)) => {
                    certs.replace(cert);
                    "ok"
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "certificate files changed but do not validate; still serving the previous certificate");
                    "rejected"
                }
                Err(e) => {
                    tracing::error!(error = %e, "certificate reload task failed");
                    "rejected"
                }
            };
            certs
                .metrics
                .cert_reloads
                .get_or_create(&ReasonLabels { reason: outcome })
                .inc();
        }
    })
}

/// Issues the generated certificate again when due; the poll above then loads it.
async fn renew(source: &CertSource) {
    let source = source.clone();
    let result = tokio::task::spawn_blocking(move || {
        perch_certs::provision(&source.dir, &source.ca_dir, &source.sans)
    })
    .await;
    match result {
        Ok(Ok(perch_certs::Provisioned::GeneratedRenewed)) => {
            tracing::info!("renewed the generated server certificate, same key")
        }
        Ok(Ok(perch_certs::Provisioned::GeneratedStale { reason })) => {
            tracing::warn!(%reason, "the generated server certificate is due for renewal but could not be issued again")
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the generated certificate"),
        Err(e) => tracing::error!(error = %e, "certificate renewal task failed"),
    }
}
