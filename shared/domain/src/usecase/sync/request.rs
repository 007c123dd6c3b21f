//! Requesting runs: an admin's "Sync now" and the daily schedule.

use super::SyncPolicy;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::caller::Caller;
use crate::connector::Connector;
use crate::ids::{RunId, UserId};
use crate::ports::{PageError, SlotClaim, StoreError, SyncJob};
use crate::sync::{RunCounts, RunStatus, SyncRun, Trigger};
use crate::usecase::{Core, audit, now};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the workspace has no such connector")]
    NotFound,
    #[error("the connector is disconnected")]
    Disconnected { reason: Option<String> },
    #[error("run {0} is already queued or running")]
    InProgress(RunId),
    #[error("asked again too soon")]
    TooSoon(Duration),
    #[error("the connector has no such run")]
    RunNotFound,
    #[error("the run is not the connector's latest, held run")]
    RunNotHeld,
    #[error("the store failed")]
    Store(#[from] StoreError),
}

impl From<PageError> for RequestError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Store(e) => Self::Store(e),
            // Only a first page (no cursor) is asked for here.
            PageError::InvalidCursor => {
                Self::Store(StoreError("the first page had a bad cursor".into()))
            }
        }
    }
}

/// A new queued run of `connector`'s current incarnation.
pub(crate) fn new_run(
    connector: &Connector,
    run_id: RunId,
    trigger: Trigger,
    requested_by: Option<UserId>,
    at: OffsetDateTime,
) -> SyncRun {
    SyncRun {
        run_id,
        connector_id: connector.kind,
        workspace_id: connector.workspace_id.clone(),
        incarnation: connector.incarnation.clone(),
        trigger,
        status: RunStatus::Queued,
        requested_by,
        queued_at: at,
        started_at: None,
        finished_at: None,
        counts: RunCounts::default(),
        failures: Vec::new(),
        reason: None,
        token_version: connector.token_version,
        continuations: 0,
        full: false,
        guard: None,
        release_of: None,
        calls: Default::default(),
    }
}

/// The caller's connector, or `NotFound`.
async fn connector_of(core: &Core, caller: &Caller) -> Result<Connector, RequestError> {
    core.connectors
        .get(&caller.workspace)
        .await?
        .ok_or(RequestError::NotFound)
}

/// An admin's "Sync now": one queued run, or why not.
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace))]
pub async fn request_sync(
    core: &Core,
    policy: &SyncPolicy,
    caller: &Caller,
) -> Result<SyncRun, RequestError> {
    let connector = connector_of(core, caller).await?;
    if !connector.may_sync() {
        return Err(RequestError::Disconnected {
            reason: connector.status_reason,
        });
    }
    let cref = connector.reference();
    let at = now();
    let run_id = RunId::new(at, &uuid::Uuid::new_v4().simple().to_string()[..12]);
    if let SlotClaim::Busy(active) = core
        .slots
        .claim_slot(&cref, &run_id, policy.slot_ttl)
        .await?
    {
        return Err(RequestError::InProgress(active));
    }
    let queued = async {
        if let Some(wait) = core.slots.claim_cooldown(&cref, policy.cooldown).await? {
            return Err(RequestError::TooSoon(wait));
        }
        let run = new_run(
            &connector,
            run_id.clone(),
            Trigger::OnDemand,
            Some(caller.user.clone()),
            at,
        );
        core.runs.create_run(&run).await?;
        if let Err(e) = core.queue.enqueue(&[SyncJob::for_run(&run)]).await {
            let mut failed = run.clone();
            failed.status = RunStatus::Failed;
            failed.finished_at = Some(now());
            failed.reason = Some("the run could not be queued".into());
            let _ = core.runs.put_run(&failed).await;
            crate::usecase::run_finished(core, &failed).await;
            return Err(e.into());
        }
        Ok(run)
    }
    .await;
    match &queued {
        Ok(run) => {
            let event = AuditEvent::new(
                Actor::User(caller.user.clone()),
                AuditAction::SyncRequested,
                connector.kind,
            )
            .run(&run.run_id);
            audit(core, &caller.workspace, event).await;
        }
        Err(_) => {
            if let Err(e) = core.slots.release_slot(&cref, &run_id).await {
                tracing::warn!(error = %e, "could not release the run slot; it expires by itself");
            }
        }
    }
    queued
}

/// An admin's release of a held run: a new run (trigger `release`, `releaseOf`) that posts
/// without the billing guard, once. Only the connector's latest run, and only when it is held;
/// not subject to the cool-down.
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace))]
pub async fn release_run(
    core: &Core,
    policy: &SyncPolicy,
    caller: &Caller,
    held: &RunId,
) -> Result<SyncRun, RequestError> {
    let connector = connector_of(core, caller).await?;
    let cref = connector.reference();
    let target = core
        .runs
        .get_run(&cref, held)
        .await?
        .ok_or(RequestError::RunNotFound)?;
    let latest = core
        .runs
        .list_runs(&cref, 1, None)
        .await?
        .items
        .into_iter()
        .next();
    match latest {
        Some(l) if l.status.is_active() => return Err(RequestError::InProgress(l.run_id)),
        Some(l) if l.run_id == target.run_id && l.status == RunStatus::Held => {}
        _ => return Err(RequestError::RunNotHeld),
    }
    if !connector.may_sync() {
        return Err(RequestError::Disconnected {
            reason: connector.status_reason,
        });
    }
    let at = now();
    let run_id = RunId::new(
        at,
        &format!(
            "release-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
    );
    if let SlotClaim::Busy(active) = core
        .slots
        .claim_slot(&cref, &run_id, policy.slot_ttl)
        .await?
    {
        return Err(RequestError::InProgress(active));
    }
    let mut run = new_run(
        &connector,
        run_id.clone(),
        Trigger::Release,
        Some(caller.user.clone()),
        at,
    );
    run.release_of = Some(target.run_id.clone());
    let queued = async {
        core.runs.create_run(&run).await?;
        core.queue.enqueue(&[SyncJob::for_run(&run)]).await?;
        Ok::<_, StoreError>(())
    }
    .await;
    if let Err(e) = queued {
        if let Err(e) = core.slots.release_slot(&cref, &run_id).await {
            tracing::warn!(error = %e, "could not release the run slot; it expires by itself");
        }
        return Err(e.into());
    }
    let event = AuditEvent::new(
        Actor::User(caller.user.clone()),
        AuditAction::SyncReleased,
        connector.kind,
    )
    .run(&run.run_id)
    .with("releaseOf", target.run_id.to_string());
    audit(core, &caller.workspace, event).await;
    Ok(run)
}

/// A scheduled run found still `queued` this long after its creation is enqueued again by a
/// repeated schedule event (an immediate duplicate delivery is not).
const REQUEUE_AFTER: time::Duration = time::Duration::seconds(30);

/// What one firing of the daily schedule did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScheduleReport {
    /// Index pages of connected connectors read.
    pub pages: u64,
    pub connectors: u64,
    pub enqueued: u64,
    /// The run for this scheduled time already existed (a duplicate delivery of the event).
    pub duplicates: u64,
    /// Another run was queued or running for the connector.
    pub busy: u64,
}

/// Enqueues one run per connected connector for the schedule time `scheduled_at`. The run id is
/// derived from the scheduled time, so a duplicate event creates no second run.
#[tracing::instrument(skip(core, policy))]
pub async fn schedule_all(
    core: &Core,
    policy: &SyncPolicy,
    scheduled_at: OffsetDateTime,
    page_size: u32,
) -> Result<ScheduleReport, StoreError> {
    let mut report = ScheduleReport::default();
    let run_id = RunId::new(scheduled_at, "scheduled");
    let mut cursor = None;
    loop {
        let (page, next) = core.connectors.connected_page(cursor, page_size).await?;
        report.pages += 1;
        let mut jobs = Vec::new();
        for c in page {
            report.connectors += 1;
            let cref = c.reference();
            if let SlotClaim::Busy(_) = core
                .slots
                .claim_slot(&cref, &run_id, policy.slot_ttl)
                .await?
            {
                report.busy += 1;
                continue;
            }
            let run = new_run(&c, run_id.clone(), Trigger::Scheduled, None, now());
            if core.runs.create_run(&run).await? {
                jobs.push(SyncJob::for_run(&run));
            } else {
                report.duplicates += 1;
                match core.runs.get_run(&cref, &run_id).await? {
                    // Same run seen again after it finished: the claim we just made must go.
                    Some(existing) if !existing.status.is_active() => {
                        core.slots.release_slot(&cref, &run_id).await?
                    }
                    // Still queued well after it was created: the earlier delivery may have died
                    // before enqueuing (EventBridge retries a failed invocation after a minute or
                    // more). Enqueue it again; the worker runs a run once whatever the job count.
                    Some(existing)
                        if existing.status == RunStatus::Queued
                            && now() - existing.queued_at > REQUEUE_AFTER =>
                    {
                        jobs.push(SyncJob::for_run(&existing));
                    }
                    _ => {}
                }
            }
        }
        core.queue.enqueue(&jobs).await?;
        report.enqueued += jobs.len() as u64;
        cursor = next;
        if cursor.is_none() {
            return Ok(report);
        }
    }
}
