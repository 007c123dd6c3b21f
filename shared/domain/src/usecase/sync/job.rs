//! One job of a run, top to bottom: **claim** (the run, its lease, the connector, the token) →
//! **set up** ([`super::setup`]) → **plan** ([`super::plan`]) → **guard** ([`super::guard`]) →
//! **post** ([`super::send`], results streamed to the recorder) → **record**
//! ([`super::record`]) → **finish** ([`super::finish`]), or a continuation when time runs out
//! ([`super::continuation`]).

use super::alerts;
use super::finish::{self, end, full_due};
use super::plan::{guard_figures, plan_readings};
use super::record::Recorder;
use super::send::{Sender, Stop, Window};
use super::{JobOutcome, SyncPolicy};
use crate::connector::{ConnectorSettings, ConnectorStatus, reason};
use crate::ports::{Lease, PsaError, StoreError, SyncJob, VaultError};
use crate::secret::ApiToken;
use crate::sync::{RunStatus, SyncRun, Trigger};
use crate::usecase::WorkerCore;
use crate::usecase::{connectors, now, update_connector};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A step either hands its result to the next one or ends the job.
pub(super) enum Step<T> {
    Next(T),
    End(JobOutcome),
}

/// Runs (or continues) one sync job. `owner` names this worker invocation; `deadline` is when the
/// invocation is killed.
///
/// The deadline arithmetic (`m` = `deadline_margin`, 30 s by default): no count starts with less
/// than `m` left; every PSA call — each attempt, every backoff and every wait for the rate
/// budget — ends by `deadline − m/2` (the client honours [`crate::deadline`]; a post is also cut
/// there by a timeout); the last `m/2` are for the bookkeeping after it (a checkpoint, the run
/// record, the continuation on the queue: a handful of DynamoDB and SQS calls). A post cut by the
/// bound is not an outcome: it goes to the continuation, like the counts not started.
#[tracing::instrument(skip(core, policy, deadline), fields(workspace_id = %job.workspace_id, run_id = %job.run_id))]
pub async fn run_job(
    core: &WorkerCore,
    policy: &SyncPolicy,
    job: &SyncJob,
    owner: &str,
    deadline: Instant,
) -> Result<JobOutcome, StoreError> {
    let calls_end = psa_calls_end(deadline, policy);
    crate::deadline::scope(
        calls_end,
        run_job_bounded(core, policy, job, owner, deadline),
    )
    .await
}

/// Frees the slot `lease` took for a run that turned out finished (or unknown).
async fn free_taken(
    core: &WorkerCore,
    cref: &crate::connector::ConnectorRef,
    run: &crate::ids::RunId,
    lease: &Lease,
) -> Result<(), StoreError> {
    if *lease == Lease::Acquired {
        core.slots.release_slot(cref, run).await?;
    }
    Ok(())
}

/// When a job's PSA calls must have ended: half the margin before the invocation's deadline.
pub(super) fn psa_calls_end(deadline: Instant, policy: &SyncPolicy) -> Instant {
    deadline
        .checked_sub(policy.deadline_margin / 2)
        .unwrap_or(deadline)
}

async fn run_job_bounded(
    core: &WorkerCore,
    policy: &SyncPolicy,
    job: &SyncJob,
    owner: &str,
    deadline: Instant,
) -> Result<JobOutcome, StoreError> {
    let cref = job.connector();
    // The lease first, then the run: a run read under this job's lease cannot finish under it
    // (a duplicate delivery that read it earlier would write a stale copy back and run it again).
    // The lease surely runs `lease_ttl` from before the call that took it.
    let leased_at = tokio::time::Instant::now();
    let lease = core
        .slots
        .take_lease(&cref, &job.run_id, owner, policy.lease_ttl)
        .await?;
    if lease == Lease::HeldByOther {
        return Ok(JobOutcome::Busy);
    }
    let Some(mut run) = core.runs.get_run(&cref, &job.run_id).await? else {
        tracing::warn!("job for an unknown run; dropped");
        free_taken(core, &cref, &job.run_id, &lease).await?;
        return Ok(JobOutcome::Done(None));
    };
    if !run.status.is_active() {
        // A duplicate delivery of a finished run: the slot its lease made goes again.
        free_taken(core, &cref, &job.run_id, &lease).await?;
        return Ok(JobOutcome::Done(Some(run.status)));
    }
    if let Lease::OtherRun(other) = lease {
        let why = format!("already running: run {other} holds the connector");
        return end(core, &mut run, RunStatus::Failed, &why).await;
    }
    let connector = match core.connectors.get(&cref.workspace, cref.kind).await? {
        Some(c) if c.incarnation == run.incarnation && c.is_deleting() => {
            // A delete that failed half-way: this worker (it holds the vault and the PSA)
            // finishes it; an error leaves the mark for the next firing.
            tracing::warn!("the connector's delete did not finish; finishing it");
            if let Err(e) = connectors::finish_delete(core, policy, &c).await {
                tracing::error!(error = %e, "could not finish the connector's delete");
            }
            let why = "cancelled: the connector was deleted";
            return end(core, &mut run, RunStatus::Cancelled, why).await;
        }
        Some(c) if c.incarnation == run.incarnation => c,
        _ => {
            let why = "cancelled: the connector was deleted";
            return end(core, &mut run, RunStatus::Cancelled, why).await;
        }
    };
    let first_job = run.started_at.is_none();
    if first_job {
        run.started_at = Some(now());
        run.token_version = connector.token_version;
        run.full = full_due(&connector, policy);
    } else if connector.token_version != run.token_version {
        let why = "cancelled: the connector's token was replaced while the run was going";
        return end(core, &mut run, RunStatus::Cancelled, why).await;
    }
    if first_job && let Some(wait) = core.slots.lease_of_other_incarnation(&cref).await? {
        // A job of the connector's deleted incarnation still holds its lease: it may still post
        // (until it sees the delete, or its lease lapses). This run waits, so that no old count
        // lands over one of its own.
        tracing::warn!(
            ?wait,
            "a deleted incarnation's job is still going; the run waits"
        );
        core.slots.drop_lease(&cref, &run.run_id, owner).await?;
        return Ok(JobOutcome::Busy);
    }
    if !connector.may_sync() {
        let status = if connector.status_reason.as_deref() == Some(reason::TOKEN_REJECTED) {
            RunStatus::TokenRejected
        } else {
            RunStatus::Failed
        };
        let why = format!("the connector is {}", connector.status.as_str());
        return end(core, &mut run, status, &why).await;
    }
    run.status = RunStatus::Running;
    if !core.runs.put_run(&run).await? {
        return Ok(JobOutcome::Busy); // ended meanwhile by a job that found its slot taken
    }

    let token = match core.vault.load(&cref, run.token_version).await {
        Ok(t) => t,
        Err(VaultError::NotFound) => {
            let (inc, version) = (run.incarnation.clone(), run.token_version);
            update_connector(core, &cref.workspace, cref.kind, |c| {
                c.owns(&inc, version) && {
                    c.set_status(ConnectorStatus::Error, Some(reason::TOKEN_MISSING), now());
                    true
                }
            })
            .await?;
            let why = "no token is stored for the connector";
            return end(core, &mut run, RunStatus::Failed, why).await;
        }
        Err(e) => return Err(StoreError(e.to_string())),
    };
    let job_ctx = Job {
        core,
        policy,
        job,
        owner,
        deadline,
        lease_until: leased_at + policy.lease_ttl,
        resumed: !first_job,
        settings: connector.settings.clone(),
        organization: connector.organization_id.clone(),
    };
    let outcome = job_ctx.sync(&mut run, &token).await?;
    if matches!(outcome, JobOutcome::Done(Some(_))) {
        super::health::settle(core, policy, &run, &token).await?;
    }
    Ok(outcome)
}

pub(super) struct Job<'a> {
    pub core: &'a WorkerCore,
    pub policy: &'a SyncPolicy,
    pub job: &'a SyncJob,
    pub owner: &'a str,
    pub deadline: Instant,
    /// Until when the lease this job took surely runs.
    pub lease_until: tokio::time::Instant,
    /// An earlier job of the run started it (a continuation, or one that stopped half-way).
    pub resumed: bool,
    pub settings: ConnectorSettings,
    /// The organization the connector is bound to (`None`: bound by this run).
    pub organization: Option<String>,
}

impl Job<'_> {
    pub(super) fn deadline_near(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < self.policy.deadline_margin
    }

    /// Set-up, plan, guard, post, record, finish.
    async fn sync(&self, run: &mut SyncRun, token: &ApiToken) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        let set = match self.set_up(run, token).await? {
            Step::Next(set) => set,
            Step::End(outcome) => return Ok(outcome),
        };
        let ids = &set.ids;

        // After the accounts: a missing one's pairs were forgotten there.
        let pairs = core.pairs.pairs(&cref).await?;
        let recorded_keys: BTreeSet<(String, String)> = set
            .recorded
            .iter()
            .map(|r| (r.account_id.clone(), r.service.clone()))
            .collect();
        let plan = plan_readings(
            &core.catalogue,
            &set.workspaces,
            &set.ids,
            &pairs,
            &recorded_keys,
            &set.accounts.refused,
            // A job that resumes a run sends every reading the run has not recorded, even one
            // whose pair state says the PSA has it: an earlier job of the run may have posted
            // another value and stopped before it recorded it (the count then changed back).
            run.full || self.resumed,
        );
        let already = set.recorded.len();
        let recorder = Recorder::new(core, run, &pairs, set.recorded);
        if run.guard.is_none() {
            let figures = guard_figures(&core.catalogue, &set.workspaces, ids, &pairs);
            run.guard = Some(figures);
            let threshold = self.settings.guard_drop_percent;
            if run.trigger != Trigger::Release
                && figures.holds(threshold, self.policy.guard_min_units)
            {
                let threshold = threshold.unwrap_or_default();
                return self.hold(run, &recorder, plan, threshold).await;
            }
            // The decision is saved before the first count goes out: a job that takes the run
            // over after a crash must not decide again (on pair states this one moved) and hold
            // a run that has posted.
            if !plan.send.is_empty() && !core.runs.put_run(run).await? {
                return Ok(JobOutcome::Busy); // ended meanwhile: nothing to post
            }
        }
        recorder.decided(&plan.decided).await?;
        tracing::info!(
            send = plan.send.len(),
            decided = plan.decided.len(),
            already,
            full = run.full,
            "readings planned"
        );

        let sender = Sender::new(
            core,
            token,
            &cref,
            run.token_version,
            self.deadline,
            self.lease_until,
            self.policy,
        );
        let window = Window {
            core,
            connector: &cref,
            run_id: &run.run_id,
            owner: self.owner,
            lease_ttl: self.policy.lease_ttl,
            every: self.policy.checkpoint_every.max(1),
            interval: self.policy.checkpoint_interval,
        };
        // (Also with nothing to send: a set-up longer than the lease must not make every
        // delivery of the run give up at the end.)
        if !sender.refresh_lease(&window).await? {
            tracing::warn!("lease lost: another worker finishes the run");
            return Ok(JobOutcome::Busy);
        }
        sender.check_connector().await?;
        let (bulk, last) = match plan.send.split_last() {
            Some((last, bulk)) => (bulk, Some(last)),
            None => (&plan.send[..], None),
        };
        let unsent = sender.send_all(&recorder, bulk, last, &window).await?;
        if !sender.holds_lease() {
            // Stalled past the lease: another worker may be ending the run; this job writes
            // nothing more.
            return Ok(JobOutcome::Busy);
        }
        let accepted_now = recorder.accepted_newest_first();
        match sender.stop() {
            Stop::Go => {}
            // (`send_all` already failed the job; kept for the match to be whole.)
            Stop::StoreFailed => return Err(StoreError("a checkpoint failed".into())),
            Stop::LeaseLost => return Ok(JobOutcome::Busy),
            Stop::Deadline => {
                return self
                    .continue_or_give_up(run, Some(&recorder), &unsent)
                    .await;
            }
            Stop::Token | Stop::Forbidden | Stop::Cancelled => {
                // No further calls: what was not sent fails now and goes out next run.
                let why = if sender.stop() == Stop::Cancelled {
                    "not sent: the connector was deleted or re-tokened"
                } else {
                    "not sent: the run stopped"
                };
                recorder.not_sent(&unsent, why).await?;
            }
        }
        match sender.stop() {
            Stop::Token => finish::rejected(core, self.policy, run, PsaError::TokenRejected).await,
            Stop::Forbidden => {
                let e = PsaError::Forbidden("anomaly detected".into());
                finish::rejected(core, self.policy, run, e).await
            }
            Stop::Cancelled => {
                let why =
                    "cancelled: the connector was deleted or re-tokened while the run was going";
                end(core, run, RunStatus::Cancelled, why).await
            }
            // (StoreFailed and LeaseLost returned above; a deadline met by the rebuild count is
            // fine.)
            Stop::Go | Stop::Deadline | Stop::LeaseLost | Stop::StoreFailed => {
                let readings = recorder.readings();
                if !sender.built.load(Ordering::SeqCst) {
                    self.rebuild(&sender, ids, accepted_now, &readings).await;
                }
                if self.settings.psa_alerts && !self.deadline_near() {
                    alerts::raise(core, self.policy, run, token, ids, &readings).await?;
                }
                finish::finish(core, run, None, Some(readings)).await
            }
        }
    }
}
