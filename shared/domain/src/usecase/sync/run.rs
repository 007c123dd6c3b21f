//! One job of a run: lease, set-up, plan, send, record — and a continuation when time runs out.

use super::alerts;
use super::finish::{self, end, full_due};
use super::plan::{Plan, Reading, guard_figures, plan_readings};
use super::record::Recorder;
use super::send::{Sender, Sent, Stop, Window};
use super::{JobOutcome, SyncPolicy};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::connector::{ConnectorSettings, ConnectorStatus, reason};
use crate::ports::{AcceptedBy, Lease, PsaError, PsaIntegration, StoreError, SyncJob, VaultError};
use crate::secret::ApiToken;
use crate::sync::{Outcome, RunReading, RunStatus, SyncRun, Trigger};
use crate::usecase::provision::{
    ProvisionError, ensure_accounts, ensure_services, managed_workspaces,
};
use crate::usecase::{Core, audit, connectors, now, update_connector};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    core: &Core,
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

/// When a job's PSA calls must have ended: half the margin before the invocation's deadline.
pub(super) fn psa_calls_end(deadline: Instant, policy: &SyncPolicy) -> Instant {
    deadline
        .checked_sub(policy.deadline_margin / 2)
        .unwrap_or(deadline)
}

async fn run_job_bounded(
    core: &Core,
    policy: &SyncPolicy,
    job: &SyncJob,
    owner: &str,
    deadline: Instant,
) -> Result<JobOutcome, StoreError> {
    let cref = job.connector();
    let Some(mut run) = core.runs.get_run(&cref, &job.run_id).await? else {
        tracing::warn!("job for an unknown run; dropped");
        return Ok(JobOutcome::Done(None));
    };
    if !run.status.is_active() {
        return Ok(JobOutcome::Done(Some(run.status))); // a duplicate delivery of a finished run
    }
    match core
        .slots
        .take_lease(&cref, &run.run_id, owner, policy.lease_ttl)
        .await?
    {
        Lease::Acquired => {}
        Lease::HeldByOther => return Ok(JobOutcome::Busy),
        Lease::OtherRun(other) => {
            let why = format!("already running: run {other} holds the connector");
            return end(core, &mut run, RunStatus::Failed, &why).await;
        }
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
    if run.started_at.is_none() {
        run.started_at = Some(now());
        run.token_version = connector.token_version;
        run.full = full_due(&connector, policy);
    } else if connector.token_version != run.token_version {
        let why = "cancelled: the connector's token was replaced while the run was going";
        return end(core, &mut run, RunStatus::Cancelled, why).await;
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
    core.runs.put_run(&run).await?;

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
        settings: connector.settings.clone(),
        organization: connector.organization_id.clone(),
    };
    let outcome = job_ctx.sync(&mut run, &token).await?;
    if matches!(outcome, JobOutcome::Done(Some(_))) {
        super::health::settle(core, policy, &run, &token).await?;
    }
    Ok(outcome)
}

struct Job<'a> {
    core: &'a Core,
    policy: &'a SyncPolicy,
    job: &'a SyncJob,
    owner: &'a str,
    deadline: Instant,
    settings: ConnectorSettings,
    /// The organization the connector is bound to (`None`: bound by this run).
    organization: Option<String>,
}

impl Job<'_> {
    /// The token's organization must be the connector's own; a connector created before
    /// organizations were bound binds its own now (or fails the run if another workspace holds
    /// it: it never posts into another workspace's organization).
    async fn check_organization(
        &self,
        run: &SyncRun,
        org: &PsaIntegration,
    ) -> Result<(), ProvisionError> {
        let (core, kind, ws) = (self.core, run.connector_id, &run.workspace_id);
        let psa = core.psa(kind).name();
        match self.organization.as_deref() {
            Some(own) if own == org.id => Ok(()),
            Some(_) => Err(ProvisionError::Organization(format!(
                "the token reaches another {psa} organization than the connector's; delete the \
                 connector and connect again"
            ))),
            None => {
                if !core.orgs.bind(kind, &org.id, ws).await? {
                    return Err(ProvisionError::Organization(format!(
                        "the {psa} organization is connected to another Coro workspace; nothing \
                         is sent to it"
                    )));
                }
                let (inc, version) = (run.incarnation.clone(), run.token_version);
                update_connector(core, ws, kind, |c| {
                    c.owns(&inc, version) && c.organization_id.is_none() && {
                        c.organization_id = Some(org.id.clone());
                        true
                    }
                })
                .await?;
                Ok(())
            }
        }
    }

    fn deadline_near(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < self.policy.deadline_margin
    }

    /// Set-up, plan, send, record.
    async fn sync(&self, run: &mut SyncRun, token: &ApiToken) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        let near = || self.deadline_near();
        // What needs nothing from the PSA (the tree, the readings of earlier jobs) is read
        // beside the token's check; the services and the accounts are then made sure of side by
        // side (neither needs the other). Nothing is written to the PSA before the check.
        let setup: Result<_, ProvisionError> = async {
            let check = async {
                let org = core.psa(cref.kind).verify(token).await?;
                self.check_organization(run, &org).await
            };
            let reads = async {
                let workspaces = managed_workspaces(core, &cref.workspace).await?;
                let recorded = core.readings.all_readings(&cref, &run.run_id).await?;
                Ok::<_, StoreError>((workspaces, recorded))
            };
            let (checked, read) = futures::join!(check, reads);
            checked?;
            let (workspaces, recorded) = read?;
            let by = AcceptedBy {
                connector: cref.clone(),
                token_version: run.token_version,
            };
            let accepted = async {
                if let Err(e) = core.key_health.accepted(cref.kind, &by).await {
                    tracing::warn!(error = %e, "could not record an accepted call");
                }
            };
            let (services, accounts, ()) = futures::join!(
                ensure_services(core, cref.kind, token, &cref.workspace),
                ensure_accounts(core, token, &workspaces, &cref, &near),
                accepted,
            );
            let (ids, services_created) = services?;
            let accounts = accounts?;
            Ok((ids, services_created, workspaces, accounts, recorded))
        }
        .await;
        let (ids, services_created, workspaces, accounts, recorded) = match setup {
            Ok(v) => v,
            // A PSA call cut by the job's bound is no answer of the PSA: the next job goes on.
            Err(ProvisionError::Psa(_)) if crate::deadline::remaining() == Some(Duration::ZERO) => {
                tracing::warn!("set-up ran into the job's time bound: continuing in a new job");
                return self.continue_or_give_up(run, None, &[]).await;
            }
            Err(ProvisionError::Psa(e)) => {
                return finish::rejected(core, self.policy, run, e).await;
            }
            Err(ProvisionError::Store(e)) => return Err(e),
            Err(ProvisionError::Deadline) => {
                return self.continue_or_give_up(run, None, &[]).await;
            }
            Err(e) => return end(core, run, RunStatus::Failed, &e.to_string()).await,
        };
        run.counts.services_created += services_created;
        run.counts.accounts = accounts.accounts;
        run.counts.accounts_created += accounts.created;
        run.counts.accounts_renamed += accounts.renamed;

        // After the accounts: a missing one's pairs were forgotten there.
        let pairs = core.pairs.pairs(&cref).await?;
        let recorded_keys: BTreeSet<(String, String)> = recorded
            .iter()
            .map(|r| (r.account_id.clone(), r.service.clone()))
            .collect();
        let plan = plan_readings(
            &core.catalogue,
            &workspaces,
            &ids,
            &pairs,
            &recorded_keys,
            &accounts.refused,
            run.full,
        );
        let already = recorded.len();
        let recorder = Recorder::new(core, run, &pairs, recorded);
        if run.guard.is_none() {
            let figures = guard_figures(&core.catalogue, &workspaces, &ids, &pairs);
            run.guard = Some(figures);
            let threshold = self.settings.guard_drop_percent;
            if run.trigger != Trigger::Release
                && figures.holds(threshold, self.policy.guard_min_units)
            {
                let threshold = threshold.unwrap_or_default();
                return self.hold(run, &recorder, plan, threshold).await;
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
            self.policy.deadline_margin,
            self.policy.in_flight,
            self.policy.cancel_check_every,
        );
        let window = Window {
            core,
            connector: &cref,
            run_id: &run.run_id,
            owner: self.owner,
            lease_ttl: self.policy.lease_ttl,
            every: self.policy.checkpoint_every.max(1),
            interval: self.policy.checkpoint_interval,
            halt_after: self.policy.halt_after_checkpoints,
        };
        sender.check_connector().await?;
        let (bulk, last) = match plan.send.split_last() {
            Some((last, bulk)) => (bulk, Some(last)),
            None => (&plan.send[..], None),
        };
        let unsent = sender.send_all(&recorder, bulk, last, &window).await?;
        let accepted_now = recorder.accepted_newest_first();
        match sender.stop() {
            Stop::Go => {}
            Stop::Killed => return Ok(JobOutcome::Halted),
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
            // (Killed and LeaseLost returned above; a deadline met by the rebuild count is fine.)
            Stop::Go | Stop::Deadline | Stop::LeaseLost | Stop::Killed => {
                let readings = recorder.readings();
                if !sender.built.load(Ordering::SeqCst) {
                    self.rebuild(&sender, &ids, accepted_now, &readings).await;
                }
                if self.settings.psa_alerts && !self.deadline_near() {
                    alerts::raise(core, self.policy, run, token, &ids, &readings).await?;
                }
                finish::finish(core, run, None, Some(readings)).await
            }
        }
    }

    /// The billing guard holds the run: nothing is posted; what would have been posted is `held`.
    async fn hold(
        &self,
        run: &mut SyncRun,
        recorder: &Recorder<'_>,
        plan: Plan,
        threshold: u8,
    ) -> Result<JobOutcome, StoreError> {
        let core = self.core;
        let g = run.guard.unwrap_or_default();
        let held: Vec<RunReading> = plan
            .send
            .iter()
            .map(|r| r.ended(Outcome::Held, None))
            .collect();
        recorder.as_is(&plan.decided).await?;
        recorder.as_is(&held).await?;
        tracing::warn!(
            before = g.before,
            after = g.after,
            "billing guard: run held"
        );
        run.reason = Some(format!(
            "held by the billing guard: the units billed for previously billed services would \
             drop {}% ({} → {}), more than the {threshold}% allowed. Nothing was sent; check the \
             numbers, then release this run or wait for the next sync",
            g.drop_percent(),
            g.before,
            g.after
        ));
        let event = AuditEvent::new(Actor::System, AuditAction::SyncHeld, run.connector_id)
            .run(&run.run_id)
            .with("before", g.before.to_string())
            .with("after", g.after.to_string())
            .with("dropPercent", g.drop_percent().to_string());
        audit(core, &run.workspace_id, event).await;
        let readings = recorder.readings();
        finish::finish(core, run, Some(RunStatus::Held), Some(readings)).await
    }

    /// The run had counts accepted but none with `no_build=false` (the last one was unmapped or
    /// failed, or was sent by an earlier job): send one accepted count again, letting the PSA
    /// rebuild its billing view. A count is a set, so this changes no value.
    /// `readings`: the run's recorded readings (earlier jobs' accepted ones are candidates too).
    async fn rebuild(
        &self,
        sender: &Sender<'_>,
        ids: &BTreeMap<String, String>,
        accepted_now: Vec<Reading>,
        readings: &[RunReading],
    ) {
        let mut candidates = accepted_now;
        if candidates.is_empty() {
            candidates = readings
                .iter()
                .filter(|r| r.outcome == Outcome::Posted)
                .filter_map(|r| {
                    Some(Reading {
                        service_id: ids.get(&r.service)?.clone(),
                        account_id: r.account_id.clone(),
                        account_name: r.account_name.clone(),
                        service_key: r.service.clone(),
                        unit: r.unit,
                        count: r.value,
                        previous: r.previous,
                    })
                })
                .rev()
                .take(3)
                .collect();
        }
        if candidates.is_empty() {
            return; // nothing accepted in this run: nothing to rebuild
        }
        for reading in candidates {
            if let Sent::Accepted(_) = sender.post(reading, false).await {
                tracing::info!("billing view rebuild requested with an accepted count");
                return;
            }
            if sender.stop() != Stop::Go {
                break;
            }
        }
        tracing::warn!(
            "no count of the last batch was accepted; the PSA brings billing up to date on its own"
        );
    }

    /// Time is short: saves progress and enqueues the run's next job — unless the run has used
    /// its continuations, then what is left (`rest`, or nothing planned yet) ends `failed`.
    async fn continue_or_give_up(
        &self,
        run: &mut SyncRun,
        recorder: Option<&Recorder<'_>>,
        rest: &[Reading],
    ) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        if run.continuations >= self.policy.max_continuations {
            let why = format!(
                "not sent: the run used all {} continuations",
                self.policy.max_continuations
            );
            if let Some(recorder) = recorder {
                recorder.not_sent(rest, &why).await?;
            }
            tracing::warn!(left = rest.len(), "continuations used up; the rest fails");
            // Nothing left to send means set-up itself did not finish: the run failed.
            let status = rest.is_empty().then_some(RunStatus::Failed);
            run.reason = Some(format!(
                "the run ran out of time after {} continuations; what is left is sent next run",
                self.policy.max_continuations
            ));
            let readings = recorder.map(Recorder::readings);
            return finish::finish(core, run, status, readings).await;
        }
        run.continuations += 1;
        run.calls = run.calls + crate::calls::current();
        let readings = match recorder {
            Some(recorder) => recorder.readings(),
            None => core.readings.all_readings(&cref, &run.run_id).await?,
        };
        run.counts.tally(readings.iter().map(|r| &r.outcome));
        core.runs.put_run(run).await?;
        core.slots
            .drop_lease(&cref, &run.run_id, self.owner)
            .await?;
        core.queue.enqueue(std::slice::from_ref(self.job)).await?;
        tracing::info!(
            left = rest.len(),
            continuation = run.continuations,
            "deadline near: continuing in a new job"
        );
        Ok(JobOutcome::Continued)
    }
}
