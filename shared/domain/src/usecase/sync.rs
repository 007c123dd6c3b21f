//! The usage sync: requesting runs (on demand, daily schedule) and running one connector's sync.

use super::provision::{ProvisionError, ensure_accounts, ensure_services, managed_workspaces};
use super::{Core, now};
use crate::caller::Caller;
use crate::connector::{Connector, ConnectorStatus, LastSync, reason};
use crate::ids::{RunId, WorkspaceId};
use crate::ports::{Lease, PsaError, SentReading, SlotClaim, StoreError, SyncJob, VaultError};
use crate::sync::{Failure, MAX_RECORDED_FAILURES, RunCounts, RunStatus, SyncRun, Trigger};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Knobs of the sync, from optional environment variables (see `Settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Every reading is resent when the last full resend is older than this (default 7 days).
    pub full_resend_every: Duration,
    /// Counts in flight at once (the shared rate budget still bounds requests per second).
    pub in_flight: usize,
    /// Readings per checkpoint: after each chunk, accepted values are saved and the lease renewed.
    pub chunk: usize,
    /// Worker lease duration; renewed at every chunk.
    pub lease_ttl: Duration,
    /// How long a queued run may hold the connector's slot without a worker.
    pub slot_ttl: Duration,
    /// Minimum time between two on-demand requests of one connector.
    pub cooldown: Duration,
    /// A job stops and enqueues its continuation when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Fault injection for tests and drills: after this many chunks the job stops exactly as a
    /// killed worker would (lease left behind, run `running`, no continuation). `None` in production.
    pub halt_after_chunks: Option<usize>,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self {
            full_resend_every: Duration::from_secs(7 * 24 * 3600),
            in_flight: 8,
            chunk: 100,
            lease_ttl: Duration::from_secs(90),
            slot_ttl: Duration::from_secs(6 * 3600),
            cooldown: Duration::from_secs(300),
            deadline_margin: Duration::from_secs(30),
            halt_after_chunks: None,
        }
    }
}

fn run_id_for(at: OffsetDateTime, suffix: &str) -> RunId {
    RunId::new(at, suffix)
}

// ---- requesting runs ------------------------------------------------------------------------

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
    #[error("internal failure: {0}")]
    Internal(String),
}

impl From<StoreError> for RequestError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// An admin's "Sync now": one queued run, or why not.
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace))]
pub async fn request_sync(
    core: &Core,
    policy: &SyncPolicy,
    caller: &Caller,
) -> Result<SyncRun, RequestError> {
    let connector = core
        .connectors
        .get(&caller.workspace)
        .await?
        .ok_or(RequestError::NotFound)?;
    if !connector.may_sync() {
        return Err(RequestError::Disconnected {
            reason: connector.status_reason,
        });
    }
    let at = now();
    let run_id = run_id_for(at, &uuid::Uuid::new_v4().simple().to_string()[..12]);
    if let SlotClaim::Busy(active) = core
        .slots
        .claim_slot(&caller.workspace, &run_id, policy.slot_ttl)
        .await?
    {
        return Err(RequestError::InProgress(active));
    }
    let queued = async {
        if let Some(wait) = core
            .slots
            .claim_cooldown(&caller.workspace, policy.cooldown)
            .await?
        {
            return Err(RequestError::TooSoon(wait));
        }
        let run = new_run(
            &caller.workspace,
            run_id.clone(),
            Trigger::OnDemand,
            Some(caller.user.clone()),
            at,
        );
        core.runs.create_run(&run).await?;
        let job = SyncJob {
            workspace_id: caller.workspace.clone(),
            run_id: run_id.clone(),
        };
        if let Err(e) = core.queue.enqueue(&[job]).await {
            let mut failed = run.clone();
            failed.status = RunStatus::Failed;
            failed.finished_at = Some(now());
            failed.failures.push(Failure {
                account_id: String::new(),
                service: String::new(),
                reason: "could not be queued".into(),
            });
            let _ = core.runs.put_run(&failed).await;
            return Err(e.into());
        }
        Ok(run)
    }
    .await;
    if queued.is_err()
        && let Err(e) = core.slots.release_slot(&caller.workspace, &run_id).await
    {
        tracing::warn!(error = %e, "could not release the run slot; it expires by itself");
    }
    queued
}

fn new_run(
    workspace: &WorkspaceId,
    run_id: RunId,
    trigger: Trigger,
    requested_by: Option<crate::ids::UserId>,
    at: OffsetDateTime,
) -> SyncRun {
    SyncRun {
        run_id,
        connector_id: crate::ids::ConnectorType::Gradient,
        workspace_id: workspace.clone(),
        trigger,
        status: RunStatus::Queued,
        requested_by,
        queued_at: at,
        started_at: None,
        finished_at: None,
        counts: RunCounts::default(),
        failures: Vec::new(),
    }
}

/// A scheduled run found still `queued` this long after its creation is enqueued again by a
/// repeated schedule event (an immediate duplicate delivery is not).
const REQUEUE_AFTER: time::Duration = time::Duration::seconds(30);

/// What one firing of the daily schedule did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScheduleReport {
    pub connectors: u64,
    pub enqueued: u64,
    /// The run for this scheduled time already existed (a duplicate delivery of the event).
    pub duplicates: u64,
    /// Another run was queued or running for the connector.
    pub busy: u64,
}

/// Enqueues one run per connected connector for the schedule time `scheduled_at`. The run id is
/// derived from the connector and the scheduled time, so a duplicate event creates no second run.
#[tracing::instrument(skip(core, policy))]
pub async fn schedule_all(
    core: &Core,
    policy: &SyncPolicy,
    scheduled_at: OffsetDateTime,
    page_size: u32,
) -> Result<ScheduleReport, StoreError> {
    let mut report = ScheduleReport::default();
    let run_id = run_id_for(scheduled_at, "scheduled");
    let mut cursor = None;
    loop {
        let (page, next) = core.connectors.connected_page(cursor, page_size).await?;
        let mut jobs = Vec::new();
        for c in page {
            report.connectors += 1;
            let ws = &c.workspace_id;
            if let SlotClaim::Busy(_) = core.slots.claim_slot(ws, &run_id, policy.slot_ttl).await? {
                report.busy += 1;
                continue;
            }
            let run = new_run(ws, run_id.clone(), Trigger::Scheduled, None, now());
            if core.runs.create_run(&run).await? {
                jobs.push(SyncJob {
                    workspace_id: ws.clone(),
                    run_id: run_id.clone(),
                });
            } else {
                report.duplicates += 1;
                match core.runs.get_run(ws, &run_id).await? {
                    // Same run seen again after it finished: the claim we just made must go.
                    Some(existing) if !existing.status.is_active() => {
                        core.slots.release_slot(ws, &run_id).await?
                    }
                    // Still queued well after it was created: the earlier delivery may have died
                    // before enqueuing (EventBridge retries a failed invocation after a minute or
                    // more). Enqueue it again; the worker runs a run once whatever the job count.
                    Some(existing)
                        if existing.status == RunStatus::Queued
                            && now() - existing.queued_at > REQUEUE_AFTER =>
                    {
                        jobs.push(SyncJob {
                            workspace_id: ws.clone(),
                            run_id: run_id.clone(),
                        });
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

// ---- running one job ------------------------------------------------------------------------

/// How a job ended, for the queue: acknowledge it, or let it come back later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished (or nothing to do): acknowledge the message.
    Done(Option<RunStatus>),
    /// Deadline near: progress saved and a continuation enqueued; acknowledge the message.
    Continued,
    /// Another worker holds this run's lease: leave the message to come back.
    Busy,
    /// Stopped by [`SyncPolicy::halt_after_chunks`] like a killed worker: the message comes back.
    Halted,
}

/// One planned reading: the count of one enabled service of one managed workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub account_id: String,
    pub service_key: String,
    pub service_id: String,
    pub count: u64,
}

/// The readings of a run, with every planned pair accounted for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// To post now.
    pub send: Vec<Reading>,
    /// Equal to the value Gradient last accepted: not sent.
    pub unchanged: u64,
    /// Already posted by this same run before an interruption: not sent again.
    pub already_posted: u64,
    /// Reported before, now disabled (or the workspace left): not sent, Gradient keeps the last value.
    pub skipped_disabled: u64,
}

/// Plans the readings of a run (pure). `full` resends every enabled reading.
pub fn plan_readings(
    catalogue: &crate::catalogue::Catalogue,
    workspaces: &[crate::workspace::Workspace],
    service_ids: &BTreeMap<String, String>,
    last: &BTreeMap<(String, String), SentReading>,
    run_id: &RunId,
    full: bool,
) -> Plan {
    let mut plan = Plan::default();
    let mut enabled_pairs = BTreeSet::new();
    for ws in workspaces {
        for service in ws.enabled_services(catalogue) {
            let Some(service_id) = service_ids.get(&service.key) else {
                continue;
            };
            let key = (ws.id.as_str().to_owned(), service.key.clone());
            enabled_pairs.insert(key.clone());
            let reading = Reading {
                account_id: key.0.clone(),
                service_key: key.1.clone(),
                service_id: service_id.clone(),
                count: ws.count_for(service.unit),
            };
            match last.get(&key) {
                Some(l) if &l.run_id == run_id && l.count == reading.count => {
                    plan.already_posted += 1
                }
                Some(l)
                    if !full && l.count == reading.count && l.service_id == reading.service_id =>
                {
                    plan.unchanged += 1
                }
                _ => plan.send.push(reading),
            }
        }
    }
    plan.skipped_disabled = last.keys().filter(|k| !enabled_pairs.contains(*k)).count() as u64;
    plan
}

const GO: u8 = 0;
const STOP_TOKEN: u8 = 1;
const STOP_FORBIDDEN: u8 = 2;

enum Posted {
    Ok(Reading),
    Unmapped(Reading),
    Failed(Reading, String),
    NotSent(Reading),
}

/// Runs (or continues) one sync job. `owner` names this worker invocation; `deadline` is when the
/// invocation is killed.
#[tracing::instrument(skip(core, policy, deadline), fields(workspace_id = %job.workspace_id, run_id = %job.run_id))]
pub async fn run_job(
    core: &Core,
    policy: &SyncPolicy,
    job: &SyncJob,
    owner: &str,
    deadline: Instant,
) -> Result<JobOutcome, StoreError> {
    let ws = &job.workspace_id;
    let Some(mut run) = core.runs.get_run(ws, &job.run_id).await? else {
        tracing::warn!("job for an unknown run; dropped");
        return Ok(JobOutcome::Done(None));
    };
    if !run.status.is_active() {
        return Ok(JobOutcome::Done(Some(run.status))); // a duplicate delivery of a finished run
    }
    match core
        .slots
        .take_lease(ws, &job.run_id, owner, policy.lease_ttl)
        .await?
    {
        Lease::Acquired => {}
        Lease::HeldByOther => return Ok(JobOutcome::Busy),
        Lease::OtherRun(other) => {
            run.failures.push(Failure {
                account_id: String::new(),
                service: String::new(),
                reason: format!("already running: run {other} holds the connector"),
            });
            return finish_run(core, &mut run, RunStatus::Failed).await;
        }
    }
    if run.started_at.is_none() {
        run.started_at = Some(now());
    }
    run.status = RunStatus::Running;
    core.runs.put_run(&run).await?;

    let Some(connector) = core.connectors.get(ws).await? else {
        run.failures
            .push(failure("", "", "the connector was deleted"));
        return finish_run(core, &mut run, RunStatus::Failed).await;
    };
    if !connector.may_sync() {
        let status = if connector.status_reason.as_deref() == Some(reason::TOKEN_REJECTED) {
            RunStatus::TokenRejected
        } else {
            RunStatus::Failed
        };
        run.failures.push(failure(
            "",
            "",
            &format!("the connector is {}", connector.status.as_str()),
        ));
        return finish_run(core, &mut run, status).await;
    }
    let token = match core.vault.load(ws, connector.token_version).await {
        Ok(t) => t,
        Err(VaultError::NotFound) => {
            set_connector_status(
                core,
                &connector,
                ConnectorStatus::Error,
                reason::TOKEN_MISSING,
            )
            .await?;
            run.failures
                .push(failure("", "", "no token is stored for the connector"));
            return finish_run(core, &mut run, RunStatus::Failed).await;
        }
        Err(e) => return Err(StoreError(e.to_string())),
    };

    // Verify, then make Gradient hold the services and the accounts.
    let setup: Result<_, ProvisionError> = async {
        core.psa.organization(&token).await?;
        let (ids, services_created) = ensure_services(core, &token, ws.as_str()).await?;
        let workspaces = managed_workspaces(core, ws).await?;
        let accounts = ensure_accounts(core, &token, &workspaces).await?;
        Ok((ids, services_created, workspaces, accounts))
    }
    .await;
    let (ids, services_created, workspaces, accounts) = match setup {
        Ok(v) => v,
        Err(ProvisionError::Psa(e)) => return psa_stop(core, connector, &mut run, e).await,
        Err(ProvisionError::Store(e)) => return Err(e),
        Err(e) => {
            run.failures.push(failure("", "", &e.to_string()));
            return finish_run(core, &mut run, RunStatus::Failed).await;
        }
    };
    run.counts.services_created += services_created;
    run.counts.accounts = accounts.accounts;
    run.counts.accounts_created += accounts.created;
    run.counts.accounts_renamed += accounts.renamed;

    let last = core.last.last_sent(ws).await?;
    let full = connector.full_resend_due
        || connector
            .last_full_resend_at
            .is_none_or(|at| now() - at >= policy.full_resend_every);
    let plan = plan_readings(&core.catalogue, &workspaces, &ids, &last, &run.run_id, full);
    let counts = &mut run.counts;
    counts.readings =
        plan.send.len() as u64 + plan.unchanged + plan.already_posted + plan.skipped_disabled;
    counts.posted = plan.already_posted;
    counts.unchanged = plan.unchanged;
    counts.skipped_disabled = plan.skipped_disabled;
    counts.unmapped = 0;
    counts.failed = 0;
    run.failures.clear();
    tracing::info!(
        send = plan.send.len(),
        unchanged = plan.unchanged,
        full,
        "readings planned"
    );

    let stop = AtomicU8::new(GO);
    let total = plan.send.len();
    let mut sent_so_far = 0usize;
    for (n, chunk) in plan.send.chunks(policy.chunk.max(1)).enumerate() {
        if policy.halt_after_chunks == Some(n) {
            tracing::warn!(chunks = n, "halted by fault injection, as a killed worker");
            return Ok(JobOutcome::Halted);
        }
        if stop.load(Ordering::SeqCst) == GO
            && deadline.saturating_duration_since(Instant::now()) < policy.deadline_margin
        {
            // Progress is saved per chunk; the continuation re-plans and skips what this run posted.
            core.slots.drop_lease(ws, &run.run_id, owner).await?;
            core.queue.enqueue(std::slice::from_ref(job)).await?;
            core.runs.put_run(&run).await?;
            tracing::info!(sent_so_far, total, "deadline near: continuing in a new job");
            return Ok(JobOutcome::Continued);
        }
        if core
            .slots
            .take_lease(ws, &run.run_id, owner, policy.lease_ttl)
            .await?
            != Lease::Acquired
        {
            tracing::warn!("lease lost to another worker; it finishes the run");
            return Ok(JobOutcome::Busy);
        }
        let results = post_chunk(core, policy, &token, chunk, sent_so_far, total, &stop).await;
        sent_so_far += chunk.len();
        let mut accepted = Vec::new();
        let mut forget = Vec::new();
        for r in results {
            match r {
                Posted::Ok(reading) => {
                    run.counts.posted += 1;
                    accepted.push(SentReading {
                        account_id: reading.account_id,
                        service_key: reading.service_key,
                        service_id: reading.service_id,
                        count: reading.count,
                        run_id: run.run_id.clone(),
                    });
                }
                Posted::Unmapped(reading) => {
                    run.counts.unmapped += 1;
                    let key = (reading.account_id, reading.service_key);
                    if last.contains_key(&key) {
                        forget.push(key);
                    }
                }
                Posted::Failed(reading, why) => {
                    run.counts.failed += 1;
                    push_failure(&mut run.failures, &reading, &why);
                }
                Posted::NotSent(reading) => {
                    run.counts.failed += 1;
                    push_failure(&mut run.failures, &reading, "not sent: the run stopped");
                }
            }
        }
        core.last.record_sent(ws, &accepted).await?;
        core.last.forget_sent(ws, &forget).await?;
        if stop.load(Ordering::SeqCst) != GO {
            // 401/403: no further calls. What was not sent fails now and goes out next run.
            for reading in &plan.send[sent_so_far..] {
                run.counts.failed += 1;
                push_failure(&mut run.failures, reading, "not sent: the run stopped");
            }
            break;
        }
    }

    match stop.load(Ordering::SeqCst) {
        STOP_TOKEN => psa_stop(core, connector, &mut run, PsaError::TokenRejected).await,
        STOP_FORBIDDEN => {
            psa_stop(
                core,
                connector,
                &mut run,
                PsaError::Forbidden("forbidden".into()),
            )
            .await
        }
        _ => {
            let status = if run.counts.failed == 0 {
                RunStatus::Succeeded
            } else if run.counts.posted + run.counts.unchanged + run.counts.unmapped > 0 {
                RunStatus::PartiallyFailed
            } else {
                RunStatus::Failed
            };
            finish_run_full(core, &mut run, status, full).await
        }
    }
}

/// Posts one chunk with several counts in flight; the run's very last count goes alone and last,
/// with `no_build=false` (every other with `no_build=true`), so Gradient rebuilds once per run.
async fn post_chunk(
    core: &Core,
    policy: &SyncPolicy,
    token: &crate::ApiToken,
    chunk: &[Reading],
    offset: usize,
    total: usize,
    stop: &AtomicU8,
) -> Vec<Posted> {
    let is_final_chunk = offset + chunk.len() == total;
    let (bulk, last) = if is_final_chunk {
        chunk.split_at(chunk.len() - 1)
    } else {
        (chunk, &[][..])
    };
    let post = |reading: Reading, no_build: bool| async move {
        if stop.load(Ordering::SeqCst) != GO {
            return Posted::NotSent(reading);
        }
        match core
            .psa
            .post_count(
                token,
                &reading.service_id,
                &reading.account_id,
                reading.count,
                no_build,
            )
            .await
        {
            Ok(()) => Posted::Ok(reading),
            Err(PsaError::NotFound(_)) => Posted::Unmapped(reading),
            Err(PsaError::TokenRejected) => {
                stop.store(STOP_TOKEN, Ordering::SeqCst);
                Posted::Failed(reading, "token rejected (401)".into())
            }
            Err(PsaError::Forbidden(m)) => {
                stop.store(STOP_FORBIDDEN, Ordering::SeqCst);
                Posted::Failed(reading, format!("forbidden (403): {m}"))
            }
            Err(e) => Posted::Failed(reading, e.to_string()),
        }
    };
    let mut out: Vec<Posted> = futures::stream::iter(bulk.iter().cloned())
        .map(|r| post(r, true))
        .buffer_unordered(policy.in_flight.max(1))
        .collect()
        .await;
    for r in last {
        out.push(post(r.clone(), false).await);
    }
    out
}

fn failure(account: &str, service: &str, why: &str) -> Failure {
    Failure {
        account_id: account.into(),
        service: service.into(),
        reason: why.into(),
    }
}

fn push_failure(failures: &mut Vec<Failure>, reading: &Reading, why: &str) {
    if failures.len() < MAX_RECORDED_FAILURES {
        failures.push(failure(&reading.account_id, &reading.service_key, why));
    }
}

/// 401 → connector disconnected (`token_rejected`), run `token_rejected`; 403 → connector
/// `error`, run `failed`; anything else during set-up → run `failed` (retried next run).
async fn psa_stop(
    core: &Core,
    connector: Connector,
    run: &mut SyncRun,
    e: PsaError,
) -> Result<JobOutcome, StoreError> {
    match e {
        PsaError::TokenRejected => {
            set_connector_status(
                core,
                &connector,
                ConnectorStatus::Disconnected,
                reason::TOKEN_REJECTED,
            )
            .await?;
            if run.failures.is_empty() {
                run.failures
                    .push(failure("", "", "Gradient rejected the token (401)"));
            }
            finish_run(core, run, RunStatus::TokenRejected).await
        }
        PsaError::Forbidden(m) => {
            set_connector_status(
                core,
                &connector,
                ConnectorStatus::Error,
                reason::GRADIENT_FORBIDDEN,
            )
            .await?;
            if run.failures.is_empty() {
                run.failures.push(failure(
                    "",
                    "",
                    &format!("Gradient refused the calls (403): {m}"),
                ));
            }
            finish_run(core, run, RunStatus::Failed).await
        }
        other => {
            run.failures.push(failure(
                "",
                "",
                &format!("setting up Gradient failed: {other}"),
            ));
            finish_run(core, run, RunStatus::Failed).await
        }
    }
}

/// Sets the connector's status unless a newer token arrived meanwhile (its outcome wins).
async fn set_connector_status(
    core: &Core,
    seen: &Connector,
    status: ConnectorStatus,
    why: &str,
) -> Result<(), StoreError> {
    for _ in 0..5 {
        let Some(mut fresh) = core.connectors.get(&seen.workspace_id).await? else {
            return Ok(());
        };
        if fresh.token_version != seen.token_version {
            return Ok(());
        }
        fresh.set_status(status, Some(why), now());
        if core.connectors.replace(&mut fresh).await? {
            return Ok(());
        }
    }
    Err(StoreError(
        "the connector kept changing while setting its status".into(),
    ))
}

async fn finish_run(
    core: &Core,
    run: &mut SyncRun,
    status: RunStatus,
) -> Result<JobOutcome, StoreError> {
    finish_run_full(core, run, status, false).await
}

/// Records the finished run, the connector's `lastSync` (and the end of a full resend), frees the slot.
async fn finish_run_full(
    core: &Core,
    run: &mut SyncRun,
    status: RunStatus,
    full: bool,
) -> Result<JobOutcome, StoreError> {
    let finished = now();
    run.status = status;
    run.finished_at = Some(finished);
    core.runs.put_run(run).await?;
    let last_sync = LastSync {
        run_id: run.run_id.clone(),
        status,
        finished_at: finished,
        counts: run.counts.clone(),
    };
    for _ in 0..5 {
        let Some(mut c) = core.connectors.get(&run.workspace_id).await? else {
            break;
        };
        c.last_sync = Some(last_sync.clone());
        if full && status != RunStatus::TokenRejected && status != RunStatus::Failed {
            c.full_resend_due = false;
            c.last_full_resend_at = Some(finished);
        }
        if status == RunStatus::Succeeded
            && c.status_reason.as_deref() == Some(reason::SETUP_INCOMPLETE)
        {
            c.status_reason = None;
        }
        if core.connectors.replace(&mut c).await? {
            break;
        }
    }
    core.slots
        .release_slot(&run.workspace_id, &run.run_id)
        .await?;
    tracing::info!(status = ?status, counts = ?run.counts, "sync run finished");
    Ok(JobOutcome::Done(Some(status)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::WorkspaceType;
    use crate::catalogue::Catalogue;
    use crate::workspace::{Workspace, WorkspaceStatus};

    fn ws(
        id: &str,
        status: WorkspaceStatus,
        services: &[&str],
        users: u64,
        devices: u64,
    ) -> Workspace {
        Workspace {
            id: WorkspaceId::parse(id).unwrap(),
            parent: None,
            kind: WorkspaceType::Child,
            name: id.into(),
            domain: None,
            status,
            services: services.iter().map(|s| s.to_string()).collect(),
            protected_users: users,
            protected_devices: devices,
        }
    }

    fn sent(acc: &str, key: &str, count: u64, run: &str) -> ((String, String), SentReading) {
        (
            (acc.into(), key.into()),
            SentReading {
                account_id: acc.into(),
                service_key: key.into(),
                service_id: format!("svc_{key}"),
                count,
                run_id: RunId::parse(run).unwrap(),
            },
        )
    }

    #[test]
    fn plan_counts_by_unit_skips_unchanged_and_accounts_for_disabled() {
        let c = Catalogue::builtin();
        let ids: BTreeMap<String, String> = c
            .iter()
            .map(|s| (s.key.clone(), format!("svc_{}", s.key)))
            .collect();
        let workspaces = vec![
            ws(
                "a",
                WorkspaceStatus::Subscription,
                &["EDR", "EMAIL_SECURITY"],
                10,
                4,
            ),
            ws("b", WorkspaceStatus::Inactive, &["EDR"], 3, 3),
            ws("c", WorkspaceStatus::Trial, &["ZTNA"], 0, 0),
        ];
        let run = RunId::parse("r2").unwrap();
        let last: BTreeMap<_, _> = [
            sent("a", "EDR", 4, "r1"),            // unchanged
            sent("a", "CLOUD_SECURITY", 9, "r1"), // disabled since
            sent("b", "EDR", 3, "r1"),            // workspace inactive now
        ]
        .into_iter()
        .collect();
        let plan = plan_readings(&c, &workspaces, &ids, &last, &run, false);
        let send: Vec<_> = plan
            .send
            .iter()
            .map(|r| (r.account_id.as_str(), r.service_key.as_str(), r.count))
            .collect();
        // Email Security counts users, ZTNA devices; an enabled service with 0 is still sent.
        assert_eq!(send, vec![("a", "EMAIL_SECURITY", 10), ("c", "ZTNA", 0)]);
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.skipped_disabled, 2);

        let full = plan_readings(&c, &workspaces, &ids, &last, &run, true);
        assert_eq!(full.send.len(), 3);
        assert_eq!(full.unchanged, 0);
    }

    #[test]
    fn a_resumed_run_does_not_resend_what_it_already_posted() {
        let c = Catalogue::builtin();
        let ids: BTreeMap<String, String> = c
            .iter()
            .map(|s| (s.key.clone(), format!("svc_{}", s.key)))
            .collect();
        let workspaces = vec![ws(
            "a",
            WorkspaceStatus::Subscription,
            &["EDR", "EMAIL_SECURITY"],
            10,
            4,
        )];
        let run = RunId::parse("r2").unwrap();
        let last: BTreeMap<_, _> = [sent("a", "EDR", 4, "r2")].into_iter().collect();
        let plan = plan_readings(&c, &workspaces, &ids, &last, &run, true);
        assert_eq!(plan.already_posted, 1);
        assert_eq!(plan.send.len(), 1);
        assert_eq!(plan.send[0].service_key, "EMAIL_SECURITY");
    }
}
