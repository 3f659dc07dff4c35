//! vmalert's and Alertmanager's state as the handlers see it: where each answers now, and
//! the upstream (with its pool of kept-alive connections) for that address.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use perch_upstream::{Client, Upstream};

use crate::process::supervise::ChildState;

/// One alerting child's state, shared between its supervisor and the handlers.
#[derive(Debug)]
pub struct Slot {
    pub name: &'static str,
    state: Mutex<ChildState>,
    /// Used instead of a bundled child (an external Alertmanager): always this base URL.
    external: Option<String>,
    /// Its HTTP credential, if it takes one.
    pub auth: perch_upstream::Credentials,
    /// The upstream for the current base URL, made again when the child moves to a new port.
    upstream: Mutex<Option<(String, Arc<Upstream>)>>,
}

/// How long a call to vmalert or Alertmanager may wait for its answer's head.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Slot {
    pub fn new(
        name: &'static str,
        auth: perch_upstream::Credentials,
        external: Option<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            state: Mutex::new(ChildState::Starting),
            external,
            auth,
            upstream: Mutex::new(None),
        })
    }

    pub fn set(&self, state: ChildState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    fn state(&self) -> ChildState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The base URL while it answers (an external one always).
    pub fn base(&self) -> Option<String> {
        if let Some(url) = &self.external {
            return Some(url.clone());
        }
        match self.state() {
            ChildState::Ready(base) => Some(base),
            _ => None,
        }
    }

    /// Where requests go now (with its credential), while it answers.
    pub fn upstream(&self, client: &Client) -> Option<Arc<Upstream>> {
        let base = self.base()?;
        let mut cached = self.upstream.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, up)) = cached.as_ref().filter(|(b, _)| *b == base) {
            return Some(up.clone());
        }
        let url = perch_upstream::parse_base_url(&base).ok()?;
        let up = Arc::new(Upstream::new(
            self.name,
            url,
            self.auth.clone(),
            CALL_TIMEOUT,
            client.clone(),
        ));
        *cached = Some((base, up.clone()));
        Some(up)
    }

    /// `ok`, `starting` or `unavailable: <why>`, for readiness.
    pub fn readiness(&self) -> (bool, String) {
        if self.external.is_some() {
            return (true, "ok".into());
        }
        match self.state() {
            ChildState::Ready(_) => (true, "ok".into()),
            ChildState::Starting => (false, "starting".into()),
            ChildState::Unavailable(why) => (false, format!("unavailable: {why}")),
        }
    }
}
