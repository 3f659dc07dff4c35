//! What one connection is doing: requests in flight (until their answer's body is sent) and
//! since when it has had none, so that an idle connection can be told to go. HTTP/1.1 has
//! its keep-alive timeout; this is what closes an h2 connection that opened and then asks
//! for nothing while answering the server's pings.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Instant;

use crate::request::{Body, BoxError};

#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// When the last request in flight finished (or the connection opened).
    quiet_since: Mutex<Instant>,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
        })
    }

    /// Counts a request as in flight until the guard (or the body it is moved into) drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn quiet_since(&self) -> Instant {
        *self
            .quiet_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let busy = self.in_flight.load(Ordering::Acquire) > 0;
            let quiet_since = self.quiet_since();
            if !busy && quiet_since.elapsed() >= timeout {
                return;
            }
            let wake = if busy {
                Instant::now() + timeout
            } else {
                quiet_since + timeout
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A request in flight.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self
            .0
            .quiet_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request in flight until it is sent or dropped.
#[derive(Debug)]
pub struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl Tracked {
    pub fn new(body: Body, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_when_nothing_is_in_flight_for_the_whole_timeout() {
        let activity = Activity::new();
        let timeout = Duration::from_millis(300);
        let guard = activity.start();
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(timeout).await }
        });
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(!idle.is_finished(), "a long request keeps the connection");
        drop(guard);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!idle.is_finished());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(idle.is_finished());
    }
}
