//! Sync worker: one SQS message = one job of one connector's usage sync. Reports partial batch
//! failures: a record fails only when its job must come back (another worker holds the run's
//! lease, a simulated crash, or a store failure); finished and continued jobs are acknowledged.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use psa_domain::ports::SyncJob;
use psa_domain::usecase::Core;
use psa_domain::usecase::sync::{JobOutcome, SyncPolicy, run_job};
use psa_runtime::Budget;
use std::sync::Arc;
use std::time::Instant;

/// What the worker needs, built once per process.
#[derive(Clone)]
pub struct Worker {
    pub core: Core,
    pub policy: SyncPolicy,
    /// The process's lease of the Gradient budget, given back after each batch (Lambda may
    /// freeze the process right after; its shares would otherwise idle until the lease expires).
    pub budget: Option<Arc<Budget>>,
}

impl Worker {
    pub fn new(platform: &psa_runtime::Platform) -> Self {
        Self {
            core: platform.core.clone(),
            policy: platform.settings.sync.clone(),
            budget: Some(platform.budget.clone()),
        }
    }
}

/// Handles one SQS batch, job after job (they belong to different connectors and share the
/// process's request budget anyway). `request_id` names this invocation (the lease owner);
/// `deadline` is when Lambda stops it.
pub async fn handle(
    worker: &Worker,
    event: SqsEvent,
    request_id: &str,
    deadline: Instant,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let job: SyncJob = match record.body.as_deref().map(serde_json::from_str) {
            Some(Ok(job)) => job,
            _ => {
                // Unreadable: let it go to the dead-letter queue for a person to look at.
                tracing::error!(message_id = %id, "sync job message is not a SyncJob");
                response.add_failure(id);
                continue;
            }
        };
        let owner = format!("{request_id}/{id}");
        match run_job(&worker.core, &worker.policy, &job, &owner, deadline).await {
            Ok(JobOutcome::Done(_) | JobOutcome::Continued) => {}
            Ok(JobOutcome::Busy | JobOutcome::Halted) => response.add_failure(id),
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "sync job failed; it comes back");
                response.add_failure(id);
            }
        }
    }
    if let Some(budget) = &worker.budget {
        budget.release().await;
    }
    response
}
