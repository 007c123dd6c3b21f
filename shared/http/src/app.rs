//! What the HTTP edge needs from the process, built once in a function's `main.rs`.

use crate::limit::WorkspaceLimiter;
use psa_domain::ports::BudgetShare;
use psa_domain::usecase::Core;
use psa_domain::usecase::sync::SyncPolicy;
use std::sync::Arc;

/// What the handler needs, built once per process.
#[derive(Clone)]
pub struct App {
    pub core: Core,
    pub policy: SyncPolicy,
    /// Each workspace's share of the API (`API_WORKSPACE_RPS`, across all instances).
    pub limiter: Arc<WorkspaceLimiter>,
    /// Whether this process has the sync queue: `POST …/sync` and `…/release` are served only
    /// where it is wired (the on-demand function); elsewhere they are 404, never a 500.
    pub serves_sync: bool,
    /// This process's share of the deployment's PSA budget, given back after every request that
    /// called the PSA (Lambda may freeze the process once it has answered).
    pub budget: Option<Arc<dyn BudgetShare>>,
}

impl App {
    /// An edge over `core` with `workspace_rps` requests per second per workspace; it serves the
    /// sync routes only when `serves_sync` (the process has the queue).
    pub fn new(
        core: Core,
        policy: SyncPolicy,
        workspace_rps: u32,
        serves_sync: bool,
        budget: Option<Arc<dyn BudgetShare>>,
    ) -> Self {
        Self {
            core,
            policy,
            limiter: Arc::new(WorkspaceLimiter::new(workspace_rps)),
            serves_sync,
            budget,
        }
    }
}
