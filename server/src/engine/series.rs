//! The limit of new series a node may create in an hour. One machine's token must not be
//! able to flood the engine with series (each costs the engine memory and index space for
//! the whole retention): a push that would take a node past the limit is refused whole,
//! naming the limit. A series is new to a node when the node has not sent it in the
//! current or the previous hour (as far as this process has seen: after a restart a node's
//! series count as new once more, well within a limit meant for cardinality floods). The
//! engine's own hourly and daily series limits stand behind this for everyone together.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The window the limit counts in.
pub const WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct SeriesLimit {
    /// New series a node may create per window; 0: no limit.
    per_node: usize,
    nodes: Mutex<HashMap<u64, NodeSeries>>,
}

/// What one node sent, by series fingerprint.
#[derive(Debug)]
struct NodeSeries {
    window_start: Instant,
    current: HashSet<u64>,
    previous: HashSet<u64>,
    /// New series this window.
    created: usize,
}

/// A push that would take its node past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: usize,
    /// Until the window starts over.
    pub retry_after: Duration,
}

impl SeriesLimit {
    pub fn new(per_node: usize) -> Self {
        Self {
            per_node,
            nodes: Mutex::default(),
        }
    }

    /// Admits a push by `node` whose series not sent lately have these fingerprints;
    /// returns how many of them are new to the node.
    pub fn admit(&self, node: u64, fresh: &[u64]) -> Result<usize, OverLimit> {
        if self.per_node == 0 || fresh.is_empty() {
            return Ok(0);
        }
        let now = Instant::now();
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if nodes
            .get(&node)
            .is_none_or(|n| now.saturating_duration_since(n.window_start) >= WINDOW)
        {
            // Once a window per node: nodes silent for two windows (deleted, or gone) are
            // forgotten, so that their fingerprints do not stay in memory.
            nodes.retain(|_, n| now.saturating_duration_since(n.window_start) < 2 * WINDOW);
        }
        let seen = nodes.entry(node).or_insert_with(|| NodeSeries {
            window_start: now,
            current: HashSet::new(),
            previous: HashSet::new(),
            created: 0,
        });
        let elapsed = now.saturating_duration_since(seen.window_start);
        if elapsed >= WINDOW {
            seen.previous = if elapsed >= 2 * WINDOW {
                HashSet::new()
            } else {
                std::mem::take(&mut seen.current)
            };
            seen.current.clear();
            seen.created = 0;
            seen.window_start = now;
        }
        let new: HashSet<u64> = fresh
            .iter()
            .copied()
            .filter(|f| !seen.current.contains(f) && !seen.previous.contains(f))
            .collect();
        if seen.created + new.len() > self.per_node {
            return Err(OverLimit {
                limit: self.per_node,
                retry_after: WINDOW
                    .saturating_sub(now.saturating_duration_since(seen.window_start)),
            });
        }
        seen.created += new.len();
        seen.current.extend(new.iter().copied());
        Ok(new.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_series_count_once_per_node_until_the_limit() {
        let limit = SeriesLimit::new(5);
        assert_eq!(limit.admit(1, &[1, 2, 3]), Ok(3));
        assert_eq!(limit.admit(1, &[1, 2, 3]), Ok(0), "seen: not new again");
        assert_eq!(
            limit.admit(2, &[1, 2, 3, 4, 5]),
            Ok(5),
            "each node counts its own"
        );
        let over = limit.admit(1, &[4, 5, 6]).unwrap_err();
        assert_eq!(over.limit, 5);
        assert!(over.retry_after <= WINDOW && over.retry_after > WINDOW / 2);
        assert_eq!(
            limit.admit(1, &[4, 5]),
            Ok(2),
            "a refused push counted nothing"
        );
        assert_eq!(limit.admit(1, &[4, 4]), Ok(0));
        assert_eq!(SeriesLimit::new(0).admit(1, &[1; 10]), Ok(0), "0: no limit");
    }
}
