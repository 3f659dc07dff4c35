//! The memory that request bodies may hold at once, across every request: Perch's own
//! routes read a body whole (after the caller is admitted), and many slow senders at once
//! must not add up to more than this. A body reserves its bytes as they arrive (its whole
//! declared length at once); when the budget is spent a request waits briefly for others
//! to finish, then is refused with 503 and `Retry-After`. Reserved bytes come back when
//! the request has been handled.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The budget is counted in units of this many bytes.
const UNIT: usize = 1024;

#[derive(Debug, Clone)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    /// How long a body waits for room before its request is refused.
    wait: Duration,
}

/// Bytes a request holds of the budget; given back when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

/// No room in the budget within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl BodyBudget {
    /// A budget of `bytes` (at least `largest_body`, so that any one body the routes allow
    /// can be read), waiting up to `wait` for room.
    pub fn new(bytes: usize, largest_body: usize, wait: Duration) -> Self {
        let units = bytes.max(largest_body).div_ceil(UNIT);
        Self {
            units: Arc::new(Semaphore::new(units)),
            wait,
        }
    }

    /// The time by which a body that starts now must have found room.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.wait
    }

    /// Grows `held` to cover `bytes` in all, waiting until `deadline` at most.
    pub async fn cover(
        &self,
        held: &mut Reservation,
        bytes: usize,
        deadline: Instant,
    ) -> Result<(), Exhausted> {
        let missing = bytes.saturating_sub(held.bytes()).div_ceil(UNIT);
        if missing == 0 {
            return Ok(());
        }
        let wanted = u32::try_from(missing).map_err(|_| Exhausted)?;
        let more = match self.units.clone().try_acquire_many_owned(wanted) {
            Ok(more) => more,
            Err(_) => {
                tokio::time::timeout_at(deadline, self.units.clone().acquire_many_owned(wanted))
                    .await
                    .map_err(|_| Exhausted)?
                    .map_err(|_| Exhausted)?
            }
        };
        match &mut held.permit {
            Some(permit) => permit.merge(more),
            None => held.permit = Some(more),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(10 * UNIT, 4 * UNIT, Duration::from_millis(100));
        let mut a = Reservation::default();
        budget
            .cover(&mut a, 3 * UNIT + 1, budget.deadline())
            .await
            .unwrap();
        budget
            .cover(&mut a, 4 * UNIT, budget.deadline())
            .await
            .unwrap();
        assert_eq!(a.bytes(), 4 * UNIT);
        let mut b = Reservation::default();
        budget
            .cover(&mut b, 6 * UNIT, budget.deadline())
            .await
            .unwrap();
        let mut c = Reservation::default();
        assert_eq!(
            budget.cover(&mut c, 1, budget.deadline()).await,
            Err(Exhausted),
            "no room: refused after the wait"
        );
        drop(a);
        budget
            .cover(&mut c, 4 * UNIT, budget.deadline())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_waiting_body_gets_room_when_another_finishes_in_time() {
        let budget = BodyBudget::new(2 * UNIT, UNIT, Duration::from_secs(5));
        let mut a = Reservation::default();
        budget
            .cover(&mut a, 2 * UNIT, budget.deadline())
            .await
            .unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(a);
        });
        let mut b = Reservation::default();
        budget.cover(&mut b, UNIT, budget.deadline()).await.unwrap();
    }

    #[test]
    fn the_budget_always_fits_the_largest_body() {
        let budget = BodyBudget::new(1, 8 * UNIT, Duration::ZERO);
        assert_eq!(budget.units.available_permits() * UNIT, 8 * UNIT);
    }
}
