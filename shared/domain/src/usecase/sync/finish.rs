//! Ending a run: tally its recorded readings, record it, update the connector it belongs to (and
//! only that incarnation), free the slot, audit. Also what a 401/403 does to the connector — or,
//! when many connectors are rejected at once, to no one (a fault of the vendor key).

use super::{JobOutcome, SyncPolicy};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::caller::WorkspaceType;
use crate::connector::{Connector, ConnectorStatus, LastSync, reason};
use crate::ids::WorkspaceId;
use crate::ports::{PsaError, Rejected, Rejection, StoreError};
use crate::sync::{
    Failure, MAX_RECORDED_FAILURES, Outcome, RunReading, RunStatus, SyncRun, bounded_reason,
};
use crate::telemetry::Measurement;
use crate::usecase::WorkerCore;
use crate::usecase::{Core, audit, now, run_finished, update_connector};

fn system(action: AuditAction, run: &SyncRun) -> AuditEvent {
    AuditEvent::new(Actor::System, action, run.connector_id).run(&run.run_id)
}

/// Whether the next run of `connector` carries a full resend: after a connect or re-token, on
/// the connector's staggered day in the period, or when overdue (see `capacity`).
pub fn full_due(connector: &Connector, policy: &SyncPolicy) -> bool {
    crate::capacity::full_due(connector, now(), policy)
}

/// Ends the run with `status` and `why`.
pub(super) async fn end(
    core: &Core,
    run: &mut SyncRun,
    status: RunStatus,
    why: &str,
) -> Result<JobOutcome, StoreError> {
    run.reason = Some(bounded_reason(why));
    finish(core, run, Some(status), None).await
}

/// Records the finished run. The counts are the tally of the run's recorded readings (so the
/// readings route adds up to them exactly): `readings` when the job knows them all (its
/// [`super::record::Recorder`]), else read from the store. `status` `None` derives it from them.
pub(super) async fn finish(
    core: &Core,
    run: &mut SyncRun,
    status: Option<RunStatus>,
    readings: Option<Vec<RunReading>>,
) -> Result<JobOutcome, StoreError> {
    let cref = run.connector();
    let readings = match readings {
        Some(known) => known,
        None => core.readings.all_readings(&cref, &run.run_id).await?,
    };
    run.counts.tally(readings.iter().map(|r| &r.outcome));
    run.failures = readings
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .take(MAX_RECORDED_FAILURES)
        .map(|r| Failure {
            account_id: r.account_id.clone(),
            service: r.service.clone(),
            reason: r.reason.clone().unwrap_or_default(),
        })
        .collect();
    let c = &run.counts;
    let status = status.unwrap_or(if c.failed == 0 {
        RunStatus::Succeeded
    } else if c.posted + c.unchanged + c.unmapped > 0 {
        RunStatus::PartiallyFailed
    } else {
        RunStatus::Failed
    });
    if status == RunStatus::Failed && run.reason.is_none() && c.failed > 0 {
        run.reason = Some("no reading could be sent; they are sent again next run".into());
    }
    let finished = now();
    run.status = status;
    run.finished_at = Some(finished);
    run.calls = run.calls + crate::calls::current();
    if !core.runs.put_run(run).await? {
        // Another job ended the run first (duplicates that found its slot taken): its record
        // stands, and so do its effects.
        tracing::warn!("the run had already finished; this job's ending is dropped");
        let stored = core.runs.get_run(&cref, &run.run_id).await?;
        return Ok(JobOutcome::Done(stored.map(|r| r.status)));
    }
    if status != RunStatus::Cancelled {
        let last_sync = LastSync {
            run_id: run.run_id.clone(),
            status,
            finished_at: finished,
            counts: run.counts.clone(),
        };
        let (incarnation, version, full) = (run.incarnation.clone(), run.token_version, run.full);
        update_connector(core, &run.workspace_id, run.connector_id, |c| {
            if !c.owns(&incarnation, version) {
                return false; // a newer token or connector: this run's outcome is not its
            }
            c.finished_run(last_sync.clone(), full);
            true
        })
        .await?;
    }
    let mut event = system(AuditAction::SyncFinished, run).with("status", status.as_str());
    if let Some(why) = &run.reason {
        event = event.with("reason", why.clone());
    }
    tracing::info!(status = ?status, counts = ?run.counts, calls = ?run.calls, "sync run finished");
    // The run and its connector are recorded: the rest needs nothing from each other.
    let (released, (), ()) = futures::join!(
        core.slots.release_slot(&cref, &run.run_id),
        audit(core, &run.workspace_id, event),
        run_finished(core, run),
    );
    released?;
    Ok(JobOutcome::Done(Some(status)))
}

/// Sets the connector's status for `run`'s incarnation and token (never a newer one's), with an
/// audit entry when it changed.
async fn set_status(
    core: &Core,
    run: &SyncRun,
    status: ConnectorStatus,
    why: &str,
    action: AuditAction,
) -> Result<(), StoreError> {
    let (incarnation, version) = (run.incarnation.clone(), run.token_version);
    let changed = update_connector(core, &run.workspace_id, run.connector_id, |c| {
        if !c.owns(&incarnation, version)
            || (c.status == status && c.status_reason.as_deref() == Some(why))
        {
            return false;
        }
        c.set_status(status, Some(why), now());
        true
    })
    .await?;
    if changed.is_some() {
        audit(
            core,
            &run.workspace_id,
            system(action, run).with("reason", why),
        )
        .await;
    }
    Ok(())
}

/// A 401 or 403 stopped the run. Normally the connector is disconnected (401, `token_rejected`)
/// or errored (403). When connectors of `key_fault_connectors` different MSPs were rejected the
/// same way within `key_fault_window` with no accepted call in between, the vendor key is at
/// fault: no one is disconnected, those disconnected by the wave are restored, and the run fails
/// saying so. Rejections that all come from one MSP (however many of its channel workspaces) are
/// that MSP's: a tenant cannot page Coro's on-call by re-keying its own workspaces.
pub(super) async fn rejected(
    core: &WorkerCore,
    policy: &SyncPolicy,
    run: &mut SyncRun,
    e: PsaError,
) -> Result<JobOutcome, StoreError> {
    let psa = core.psa(run.connector_id).name();
    let (kind, status, why, action, run_status) = match e {
        PsaError::TokenRejected => (
            Rejection::Unauthorized,
            ConnectorStatus::Disconnected,
            reason::TOKEN_REJECTED,
            AuditAction::ConnectorDisconnected,
            RunStatus::TokenRejected,
        ),
        PsaError::Forbidden(_) => (
            Rejection::Forbidden,
            ConnectorStatus::Error,
            reason::GRADIENT_FORBIDDEN,
            AuditAction::ConnectorErrored,
            RunStatus::Failed,
        ),
        other => {
            let why = format!("setting up {psa} failed: {other}");
            return end(core, run, RunStatus::Failed, &why).await;
        }
    };
    // A 401 right after a re-token (or a delete) is the old token's: the run is cancelled, and
    // it says nothing about the vendor key.
    let current = core
        .connectors
        .get(&run.workspace_id, run.connector_id)
        .await?;
    if !current.is_some_and(|c| c.owns(&run.incarnation, run.token_version)) {
        let why = "cancelled: the connector was deleted or re-tokened while the run was going";
        return end(core, run, RunStatus::Cancelled, why).await;
    }
    let me = Rejected {
        workspace: run.workspace_id.clone(),
        msp: msp_of(core, &run.workspace_id).await,
    };
    let wave = core
        .key_health
        .rejected(run.connector_id, kind, &me, policy.key_fault_window)
        .await?;
    // Only rejections of different MSPs point at the vendor key: an MSP that re-keys all its
    // channel workspaces at once is that MSP's business, never an alarm for Coro's on-call.
    let msps: std::collections::BTreeSet<&WorkspaceId> = wave.iter().map(|r| &r.msp).collect();
    if msps.len() >= policy.key_fault_connectors.max(1)
        && !vendor_key_works(core, policy, run, &wave).await
    {
        let what = match kind {
            Rejection::Unauthorized => "rejected (401)",
            Rejection::Forbidden => "refused (403)",
        };
        tracing::error!(
            event = "vendor_key_fault",
            connectors = wave.len(),
            kind = what,
            "{psa} {what} the calls of {} connectors with no accepted call in between: Coro's \
             vendor key is at fault; no connector is disconnected",
            wave.len()
        );
        core.metrics
            .record(&Measurement::vendor_key_fault(wave.len(), what));
        for r in wave.iter().filter(|r| r.workspace != run.workspace_id) {
            restore(core, &r.workspace, run.connector_id, status, why).await?;
        }
        let reason = format!(
            "{psa} {what} Coro's vendor key ({} connectors at once): the connector stays \
             connected and the next run sends these readings",
            wave.len()
        );
        return end(core, run, RunStatus::Failed, &reason).await;
    }
    set_status(core, run, status, why, action).await?;
    let reason = match kind {
        Rejection::Unauthorized => {
            format!("{psa} rejected the token (401): paste the new API token to reconnect")
        }
        Rejection::Forbidden => format!("{psa} refused the calls (403, anomaly detected)"),
    };
    end(core, run, run_status, &reason).await
}

/// Whether a suspected vendor-key fault is disproved: the connector whose call was accepted last
/// (outside the wave) is asked again with its own token, and the PSA accepts it. Then the vendor
/// key works and the wave is the MSPs' own tokens. Anything that cannot say (no such connector,
/// its token gone, the PSA not answering) does not disprove the fault.
async fn vendor_key_works(
    core: &WorkerCore,
    policy: &SyncPolicy,
    run: &SyncRun,
    wave: &[Rejected],
) -> bool {
    let kind = run.connector_id;
    let Ok(Some(last)) = core.key_health.last_accepted(kind).await else {
        return false;
    };
    if wave.iter().any(|r| r.workspace == last.connector.workspace) {
        return false;
    }
    let Ok(token) = core.vault.load(&last.connector, last.token_version).await else {
        return false;
    };
    let check = core.psa(kind).verify(&token);
    match tokio::time::timeout(policy.verify_deadline, check).await {
        Ok(Ok(_)) => {
            tracing::warn!(
                connectors = wave.len(),
                "many connectors rejected at once, but a recently accepted token is still \
                 accepted: the vendor key works, these are the MSPs' own tokens"
            );
            true
        }
        _ => false,
    }
}

/// The MSP of a channel workspace: the topmost channel workspace above it (itself when its
/// parent is no channel, or when the read model cannot say: then it counts as its own MSP).
async fn msp_of(core: &Core, workspace: &WorkspaceId) -> WorkspaceId {
    let mut current = match core.directory.workspace(workspace).await {
        Ok(Some(w)) => w,
        Ok(None) => return workspace.clone(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the workspace to find its MSP");
            return workspace.clone();
        }
    };
    for _ in 0..8 {
        let Some(parent) = current.parent.clone() else {
            break;
        };
        match core.directory.workspace(&parent).await {
            Ok(Some(p)) if p.kind == WorkspaceType::Channel => current = p,
            _ => break,
        }
    }
    current.id
}

/// Undoes what a wave of rejections did to another workspace's connector.
async fn restore(
    core: &Core,
    workspace: &crate::ids::WorkspaceId,
    kind: crate::ids::ConnectorType,
    status: ConnectorStatus,
    why: &str,
) -> Result<(), StoreError> {
    let restored = update_connector(core, workspace, kind, |c| {
        if c.status != status || c.status_reason.as_deref() != Some(why) {
            return false;
        }
        c.set_status(ConnectorStatus::Connected, None, now());
        true
    })
    .await?;
    if let Some(c) = restored {
        tracing::warn!(workspace_id = %workspace, "connector restored after a vendor-key fault");
        let event = AuditEvent::new(Actor::System, AuditAction::ConnectorRestored, c.kind)
            .with("reason", "vendor key fault");
        audit(core, workspace, event).await;
    }
    Ok(())
}
