//! What the HTTP edge needs from the process, built once in a function's `main.rs`.

use crate::limit::WorkspaceLimiter;
use psa_domain::ports::BudgetShare;
use psa_domain::usecase::sync::SyncPolicy;
use psa_domain::usecase::{Core, PsaCore, QueueCore};
use std::sync::Arc;

/// What the handler needs, built once per process.
#[derive(Clone)]
pub struct App {
    pub core: Core,
    pub policy: SyncPolicy,
    /// Each workspace's share of the API (`API_WORKSPACE_RPS`, across all instances).
    pub limiter: Arc<WorkspaceLimiter>,
    /// The core with the vault and the PSAs, where this process has them (the connectors API):
    /// connecting, re-tokening, deleting and the usage view are served only there.
    pub with_psa: Option<PsaCore>,
    /// The core with the sync queue, where this process has it (the on-demand function):
    /// `POST …/sync` and `…/release` are served only there; elsewhere they are 404.
    pub with_queue: Option<QueueCore>,
    /// This process's share of the deployment's PSA budget, given back after every request that
    /// called the PSA (Lambda may freeze the process once it has answered).
    pub budget: Option<Arc<dyn BudgetShare>>,
}

impl App {
    /// An edge over `core` with `workspace_rps` requests per second per workspace; it serves
    /// the routes whose ports it is given.
    pub fn new(
        core: Core,
        policy: SyncPolicy,
        workspace_rps: u32,
        with_psa: Option<PsaCore>,
        with_queue: Option<QueueCore>,
        budget: Option<Arc<dyn BudgetShare>>,
    ) -> Self {
        Self {
            core,
            policy,
            limiter: Arc::new(WorkspaceLimiter::new(workspace_rps)),
            with_psa,
            with_queue,
            budget,
        }
    }
}
