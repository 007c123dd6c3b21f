//! A per-task tally of PSA calls: how many HTTP attempts a job made and how many were answered
//! 429. The worker runs each job inside [`scope`]; the PSA client calls [`sent`] and [`answered`]
//! for every attempt (retries included). Outside a scope both do nothing, so the API path and the
//! tools pay nothing for it.
//!
//! Why a task-local: the attempts happen deep inside the client, under the core's port, and a
//! process may run several jobs at once (tests, `make serve`); a process-wide counter would mix
//! them. Everything a job does runs in its task (`buffer_unordered`, no `spawn`), so the tally
//! sees every attempt of the job and nothing of another.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    static TALLY: Arc<Counters>;
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    throttled: AtomicU64,
}

/// PSA calls made (HTTP attempts, retries included) and how many of them were answered 429.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Calls {
    pub calls: u64,
    pub throttled: u64,
}

impl Calls {
    pub fn is_zero(&self) -> bool {
        self.calls == 0 && self.throttled == 0
    }
}

impl std::ops::Add for Calls {
    type Output = Calls;
    fn add(self, other: Calls) -> Calls {
        Calls {
            calls: self.calls + other.calls,
            throttled: self.throttled + other.throttled,
        }
    }
}

/// Runs `fut` with a fresh tally; [`current`] inside it answers that tally.
pub async fn scope<F: Future>(fut: F) -> F::Output {
    TALLY.scope(Arc::new(Counters::default()), fut).await
}

/// One HTTP attempt goes out (counted before the answer, so a timeout counts too).
pub fn sent() {
    let _ = TALLY.try_with(|t| t.calls.fetch_add(1, Ordering::Relaxed));
}

/// The attempt was answered with HTTP `status`.
pub fn answered(status: u16) {
    if status == 429 {
        let _ = TALLY.try_with(|t| t.throttled.fetch_add(1, Ordering::Relaxed));
    }
}

/// The tally of the current scope so far (zero outside a scope).
pub fn current() -> Calls {
    TALLY
        .try_with(|t| Calls {
            calls: t.calls.load(Ordering::Relaxed),
            throttled: t.throttled.load(Ordering::Relaxed),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_scope_counts_its_own_attempts() {
        sent(); // outside a scope: nothing to count into, no panic
        assert_eq!(current(), Calls::default());
        let a = scope(async {
            sent();
            answered(200);
            sent();
            answered(429);
            sent(); // a timeout: sent, never answered
            let inner = scope(async {
                sent();
                current()
            })
            .await;
            assert_eq!(
                inner,
                Calls {
                    calls: 1,
                    throttled: 0
                }
            );
            current()
        });
        let b = scope(async {
            sent();
            answered(429);
            tokio::task::yield_now().await;
            current()
        });
        let (a, b) = tokio::join!(a, b);
        assert_eq!(
            a,
            Calls {
                calls: 3,
                throttled: 1
            }
        );
        assert_eq!(
            b,
            Calls {
                calls: 1,
                throttled: 1
            }
        );
        assert_eq!(
            a + b,
            Calls {
                calls: 4,
                throttled: 2
            }
        );
    }
}
