//! The time a task must be done by: the worker runs each job inside [`scope`] with the instant
//! its PSA calls must have ended (the invocation's deadline less a margin for the bookkeeping
//! after them); the PSA client bounds every call by it — each attempt's timeout, every backoff
//! and every wait for the rate budget — and gives up with a timeout once it is reached.
//! Outside a scope there is no bound (the API has its own request deadlines).
//!
//! A task-local for the same reason as [`crate::calls`]: the calls happen deep inside the
//! client, under the core's port, and a process may run several jobs at once.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `fut` with every PSA call in it bounded to end by `until` (a scope inside another
/// keeps the earlier of the two).
pub async fn scope<F: Future>(until: Instant, fut: F) -> F::Output {
    let until = current().map_or(until, |outer| outer.min(until));
    DEADLINE.scope(until, fut).await
}

/// When the current task's PSA calls must have ended, if it has such a bound.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The time left before [`current`], `None` without a bound (zero once it has passed).
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

/// `wanted`, cut to the time left (unchanged without a bound).
pub fn bounded(wanted: Duration) -> Duration {
    remaining().map_or(wanted, |left| left.min(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_bound_outside_a_scope_and_the_earlier_bound_inside_two() {
        assert_eq!(remaining(), None);
        assert_eq!(bounded(Duration::from_secs(10)), Duration::from_secs(10));
        let soon = Instant::now() + Duration::from_secs(5);
        let later = soon + Duration::from_secs(60);
        scope(soon, async {
            assert_eq!(current(), Some(soon));
            assert!(bounded(Duration::from_secs(10)) <= Duration::from_secs(5));
            scope(later, async { assert_eq!(current(), Some(soon)) }).await;
        })
        .await;
        let past = Instant::now() - Duration::from_secs(1);
        scope(past, async {
            assert_eq!(remaining(), Some(Duration::ZERO))
        })
        .await;
    }
}
