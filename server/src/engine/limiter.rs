//! How many queries each user or token may have running at once against the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `per_user` queries at once for each user or token.
#[derive(Debug)]
pub struct QueryLimiter {
    per_user: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl QueryLimiter {
    pub fn new(per_user: usize) -> Self {
        Self {
            per_user: per_user.max(1),
            slots: Mutex::default(),
        }
    }

    /// A slot for `who`, held until the permit is dropped; `None` when all of theirs are
    /// taken.
    pub fn try_acquire(&self, who: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(who.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_user)))
            .clone();
        semaphore.try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_caps_each_user_separately() {
        let l = QueryLimiter::new(2);
        let a1 = l.try_acquire("alice");
        let a2 = l.try_acquire("alice");
        assert!(a1.is_some() && a2.is_some());
        assert!(l.try_acquire("alice").is_none());
        assert!(l.try_acquire("bob").is_some());
        drop(a1);
        assert!(l.try_acquire("alice").is_some());
    }
}
