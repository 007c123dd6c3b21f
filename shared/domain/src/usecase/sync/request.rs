//! Requesting runs: an admin's "Sync now" and the release of a held run (the daily schedule is
//! [`super::schedule`]).

use super::SyncPolicy;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::caller::Caller;
use crate::connector::Connector;
use crate::ids::{ConnectorType, RunId, UserId};
use crate::ports::{PageError, SlotClaim, StoreError, SyncJob};
use crate::sync::{RunCounts, RunStatus, SyncRun, Trigger};
use crate::usecase::QueueCore;
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
        tickets: Vec::new(),
    }
}

/// The caller's connector of type `kind`, or `NotFound`.
async fn connector_of(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
) -> Result<Connector, RequestError> {
    core.connectors
        .get(&caller.workspace, kind)
        .await?
        .filter(|c| !c.is_deleting())
        .ok_or(RequestError::NotFound)
}

/// An admin's "Sync now": one queued run, or why not.
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn request_sync(
    core: &QueueCore,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
) -> Result<SyncRun, RequestError> {
    let connector = connector_of(core, caller, kind).await?;
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
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn release_run(
    core: &QueueCore,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    held: &RunId,
) -> Result<SyncRun, RequestError> {
    let connector = connector_of(core, caller, kind).await?;
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
