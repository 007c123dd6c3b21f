//! Sync worker: one SQS message = one job of one connector's usage sync. Reports partial batch
//! failures: a record fails only when its job must come back (another worker holds the run's
//! lease, a simulated crash, or a store failure); finished and continued jobs are acknowledged.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use psa_domain::ports::BudgetShare;
use psa_domain::ports::SyncJob;
use psa_domain::usecase::WorkerCore;
use psa_domain::usecase::sync::{JobOutcome, SyncPolicy, run_job};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// What the worker needs, built once per process.
#[derive(Clone)]
pub struct Worker {
    /// Every port: the store, the vault, the PSAs, the queue.
    pub core: WorkerCore,
    pub policy: SyncPolicy,
    /// The process's lease of the Gradient budget, given back after each batch (Lambda may
    /// freeze the process right after; its shares would otherwise idle until the lease expires).
    pub budget: Option<Arc<dyn BudgetShare>>,
}

impl Worker {
    pub fn new(core: WorkerCore, policy: SyncPolicy, budget: Option<Arc<dyn BudgetShare>>) -> Self {
        Self {
            core,
            policy,
            budget,
        }
    }
}

/// Handles one SQS batch, job after job (they belong to different connectors and share the
/// process's request budget anyway). `request_id` names this invocation (the lease owner);
/// `deadline` is when Lambda stops it.
///
/// Every log line of the invocation carries `request_id` (span `batch`, at error level so it is
/// there at any `RUST_LOG`), and every line of a job its message, workspace, connector and run
/// (span `job`). Each job runs in its own PSA call tally ([`psa_domain::calls`]), which becomes
/// the run's `GradientCalls` and `Throttled` metrics.
pub async fn handle(
    worker: &Worker,
    event: SqsEvent,
    request_id: &str,
    deadline: Instant,
) -> SqsBatchResponse {
    let span = tracing::error_span!("batch", request_id);
    handle_batch(worker, event, request_id, deadline)
        .instrument(span)
        .await
}

async fn handle_batch(
    worker: &Worker,
    event: SqsEvent,
    request_id: &str,
    deadline: Instant,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    // Take the budget lease beside the job's set-up (claim, token, workspaces), so the first
    // vendor call does not wait for it; awaited before the release below, which then gives
    // back whatever it took.
    let prepared = worker
        .budget
        .clone()
        .filter(|_| !event.records.is_empty())
        .map(|b| tokio::spawn(async move { b.prepare().await }.in_current_span()));
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
        let span = tracing::error_span!(
            "job",
            message_id = %id,
            workspace_id = %job.workspace_id,
            connector_id = job.connector().kind.as_str(),
            run_id = %job.run_id,
        );
        let ran = psa_domain::calls::scope(run_job(
            &worker.core,
            &worker.policy,
            &job,
            &owner,
            deadline,
        ))
        .instrument(span.clone())
        .await;
        match ran {
            Ok(JobOutcome::Done(_) | JobOutcome::Continued) => {}
            Ok(JobOutcome::Busy) => response.add_failure(id),
            Err(e) => {
                span.in_scope(|| tracing::error!(error = %e, "sync job failed; it comes back"));
                response.add_failure(id);
            }
        }
    }
    if let Some(prepared) = prepared {
        let _ = prepared.await;
    }
    if let Some(budget) = &worker.budget {
        budget.release().await;
    }
    response
}
