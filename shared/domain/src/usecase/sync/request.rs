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

/// How long a run may wait queued, its slot claimed, before whoever meets it sends its job again:
/// far longer than a message takes to reach a worker, so that clicks in a row (or at once) send
/// no duplicates.
const RESEND_AFTER: Duration = Duration::from_secs(120);

/// Claims the connector's slot for `run`: `Some(holder)` when another run holds it (its job is
/// sent again if it has been queued, never started, for [`RESEND_AFTER`]: see
/// [`resend_if_queued`]). A run whose expired slot this
/// claim took over is ended (see [`end_abandoned`]).
pub(super) async fn claim_slot(
    core: &QueueCore,
    policy: &SyncPolicy,
    cref: &crate::connector::ConnectorRef,
    run: &RunId,
) -> Result<Option<RunId>, StoreError> {
    match core.slots.claim_slot(cref, run, policy.slot_ttl).await? {
        SlotClaim::Claimed => Ok(None),
        SlotClaim::TookOver(old) => {
            end_abandoned(core, cref, &old).await;
            Ok(None)
        }
        SlotClaim::Busy(active, held) => {
            if held >= RESEND_AFTER {
                resend_if_queued(core, cref, &active).await?;
            }
            Ok(Some(active))
        }
    }
}

/// A run whose slot expired while it was still queued, never started, will not end by itself
/// (its job was never sent: the request or firing that created it died first): it ends
/// `failed` now, so that the run list does not show it queued for ever. Best effort: a failure
/// is logged. A message of it that comes later finds it finished and does nothing.
async fn end_abandoned(core: &QueueCore, cref: &crate::connector::ConnectorRef, old: &RunId) {
    let ended = async {
        let Some(mut run) = core.runs.get_run(cref, old).await? else {
            return Ok(());
        };
        // A run that started has readings to settle: its own job (a message that comes back)
        // or a continuation ends it.
        if run.status != RunStatus::Queued || run.started_at.is_some() {
            return Ok(());
        }
        tracing::warn!(run_id = %old, "an abandoned run ends: its slot expired");
        run.status = RunStatus::Failed;
        run.finished_at = Some(now());
        run.reason = Some(
            "abandoned: its job was never sent and the connector's slot expired; the next run \
             sends the counts"
                .into(),
        );
        if core.runs.put_run(&run).await? {
            crate::usecase::run_finished(core, &run).await;
        }
        Ok::<_, StoreError>(())
    };
    if let Err(e) = ended.await {
        tracing::warn!(error = %e, "could not end an abandoned run");
    }
}

/// The run that holds the slot is still `queued`, never started: its job may never have been
/// sent (the function that created it died before the queue answered, or a firing died between
/// creating it and sending it and a later firing took over), so it is sent (again). A duplicate
/// is harmless: the worker's lease and the run's status make it a no-op.
async fn resend_if_queued(
    core: &QueueCore,
    cref: &crate::connector::ConnectorRef,
    active: &RunId,
) -> Result<(), StoreError> {
    let Some(run) = core.runs.get_run(cref, active).await? else {
        return Ok(());
    };
    if run.status == RunStatus::Queued && run.started_at.is_none() {
        tracing::warn!(run_id = %run.run_id, "the run is still queued: its job is sent again");
        core.queue.enqueue(&[SyncJob::for_run(&run)]).await?;
    }
    Ok(())
}

/// Frees the slot `run` claimed, for a request that did not go through.
async fn free_slot(core: &QueueCore, run: &SyncRun) {
    if let Err(e) = core.slots.release_slot(&run.connector(), &run.run_id).await {
        tracing::warn!(error = %e, "could not release the run slot; it expires by itself");
    }
}

/// Creates the queued `run` (its slot claimed) and sends its job. When either fails, the run is
/// written `failed` and its slot freed: a create that landed although the store answered an
/// error must not leave a run `queued` for ever that no job will pick up. If even that write
/// fails, the slot stays with the run: the next "Sync now" or firing that finds it sends the
/// run's job (see [`resend_if_queued`]), or, if the run was never created, the slot expires.
async fn create_and_send(core: &QueueCore, run: &SyncRun) -> Result<(), StoreError> {
    let sent = match core.runs.create_run(run).await {
        Ok(_) => core.queue.enqueue(&[SyncJob::for_run(run)]).await,
        Err(e) => Err(e),
    };
    let Err(e) = sent else {
        return Ok(());
    };
    let mut failed = run.clone();
    failed.status = RunStatus::Failed;
    failed.finished_at = Some(now());
    failed.reason = Some("the run could not be queued".into());
    match core.runs.put_run(&failed).await {
        Ok(written) => {
            if written {
                crate::usecase::run_finished(core, &failed).await;
            }
            free_slot(core, run).await;
        }
        Err(e) => tracing::warn!(error = %e, "the run could not be marked failed; its slot stays"),
    }
    Err(e)
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
    if let Some(active) = claim_slot(core, policy, &cref, &run_id).await? {
        return Err(RequestError::InProgress(active));
    }
    let run = new_run(
        &connector,
        run_id,
        Trigger::OnDemand,
        Some(caller.user.clone()),
        at,
    );
    let refused = match core.slots.claim_cooldown(&cref, policy.cooldown).await {
        Ok(None) => None,
        Ok(Some(wait)) => Some(RequestError::TooSoon(wait)),
        Err(e) => Some(e.into()),
    };
    if let Some(refused) = refused {
        free_slot(core, &run).await;
        return Err(refused);
    }
    create_and_send(core, &run).await?;
    let event = AuditEvent::new(
        Actor::User(caller.user.clone()),
        AuditAction::SyncRequested,
        connector.kind,
    )
    .run(&run.run_id);
    audit(core, &caller.workspace, event).await;
    Ok(run)
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
        // A release of it that could not be queued (marked failed, never started) leaves it
        // the one to release.
        Some(l)
            if target.status == RunStatus::Held
                && l.release_of.as_ref() == Some(&target.run_id)
                && l.status == RunStatus::Failed
                && l.started_at.is_none() => {}
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
    if let Some(active) = claim_slot(core, policy, &cref, &run_id).await? {
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
    create_and_send(core, &run).await?;
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
