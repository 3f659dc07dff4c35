//! API tokens: the page where admins create and revoke them, and the same in the JSON API.
//! A token's secret is shown once, when it is made.

pub mod api;
pub mod pages;

use std::time::Duration;

/// A token lifetime of `days`, when that is from 1 to 3650 days.
fn lifetime_days(days: u64) -> Option<Duration> {
    (1..=3650)
        .contains(&days)
        .then(|| Duration::from_secs(days * 86_400))
}
