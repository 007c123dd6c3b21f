//! Each workspace's share of the API: `API_WORKSPACE_RPS` requests a second, counted across every
//! instance in the project's table (one atomic `ADD` per admitted request, in fixed one-second
//! windows), so one tenant's flood never slows another tenant's requests — which only a
//! per-caller limit can promise: API Gateway's route throttles are shared by every caller (they
//! stay in the template as a deployment-wide safety net only).
//!
//! A workspace found over its rate is remembered by the instance until its window ends: its
//! further requests in that window are refused without a DynamoDB write, so a flood costs the
//! table one write per instance and window past the limit, not one per request.

use crate::error::ApiError;
use psa_domain::WorkspaceId;
use psa_domain::ports::AttemptCounter;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the rate is counted in.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Most workspaces an instance remembers as over their rate (older ones are forgotten first).
const REMEMBERED: usize = 4096;

pub struct WorkspaceLimiter {
    rps: u64,
    /// Workspaces over their rate, until when.
    over: Mutex<HashMap<WorkspaceId, Instant>>,
}

impl WorkspaceLimiter {
    pub fn new(rps: u32) -> Self {
        Self {
            rps: u64::from(rps.max(1)),
            over: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `workspace`; `TooManyRequests` (with the wait) beyond its rate. A
    /// counter that cannot be reached admits the request (logged): the limit protects tenants
    /// from each other, it must not become an outage of its own.
    pub async fn admit(
        &self,
        counter: &dyn AttemptCounter,
        workspace: &WorkspaceId,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        {
            let mut over = self.over.lock().unwrap_or_else(|e| e.into_inner());
            match over.get(workspace) {
                Some(until) if *until > now => {
                    return Err(ApiError::TooManyRequests(*until - now));
                }
                Some(_) => {
                    over.remove(workspace);
                }
                None => {}
            }
        }
        match counter.attempt(workspace, "api", WINDOW).await {
            Ok((n, left)) if n > self.rps => {
                let mut over = self.over.lock().unwrap_or_else(|e| e.into_inner());
                if over.len() >= REMEMBERED {
                    over.retain(|_, until| *until > now);
                }
                if over.len() < REMEMBERED {
                    over.insert(workspace.clone(), now + left);
                }
                Err(ApiError::TooManyRequests(left))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "could not count the request; admitted");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use psa_domain::ports::StoreError;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A counter whose window never ends; counts how often it was asked.
    #[derive(Default)]
    struct Counter {
        n: Mutex<HashMap<WorkspaceId, u64>>,
        asked: AtomicU64,
        down: bool,
    }

    #[async_trait]
    impl AttemptCounter for Counter {
        async fn attempt(
            &self,
            ws: &WorkspaceId,
            _: &str,
            _: Duration,
        ) -> Result<(u64, Duration), StoreError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.down {
                return Err(StoreError("down".into()));
            }
            let mut n = self.n.lock().unwrap();
            let c = n.entry(ws.clone()).or_default();
            *c += 1;
            Ok((*c, Duration::from_millis(700)))
        }
    }

    fn ws(id: &str) -> WorkspaceId {
        WorkspaceId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn a_workspace_over_its_rate_is_refused_and_others_are_not() {
        let limiter = WorkspaceLimiter::new(3);
        let counter = Counter::default();
        for _ in 0..3 {
            limiter.admit(&counter, &ws("noisy")).await.unwrap();
        }
        let refused = limiter.admit(&counter, &ws("noisy")).await.unwrap_err();
        assert!(
            matches!(refused, ApiError::TooManyRequests(w) if w <= Duration::from_millis(700)),
            "{refused:?}"
        );
        let asked = counter.asked.load(Ordering::SeqCst);
        for _ in 0..50 {
            assert!(limiter.admit(&counter, &ws("noisy")).await.is_err());
        }
        assert_eq!(
            counter.asked.load(Ordering::SeqCst),
            asked,
            "a workspace known to be over costs no more writes in its window"
        );
        limiter.admit(&counter, &ws("quiet")).await.unwrap();
    }

    #[tokio::test]
    async fn a_counter_that_fails_admits() {
        let limiter = WorkspaceLimiter::new(1);
        let counter = Counter {
            down: true,
            ..Default::default()
        };
        for _ in 0..5 {
            limiter.admit(&counter, &ws("a")).await.unwrap();
        }
    }
}
