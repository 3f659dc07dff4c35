//! vmalert's and Alertmanager's state as the handlers see it: where each answers now.

use std::sync::{Arc, Mutex, PoisonError};

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
}

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
