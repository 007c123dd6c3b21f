//! One job of a run: lease, set-up, plan, send, record — and a continuation when time runs out.

use super::alerts;
use super::finish::{self, end, full_due};
use super::plan::{Plan, Reading, guard_figures, plan_readings};
use super::send::{Sender, Sent, Stop};
use super::{JobOutcome, SyncPolicy};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::connector::{ConnectorSettings, ConnectorStatus, reason};
use crate::ports::{Lease, PsaError, StoreError, SyncJob, VaultError};
use crate::secret::ApiToken;
use crate::sync::{
    Accepted, AttemptOutcome, Outcome, PairState, RunReading, RunStatus, SyncRun, Trigger,
};
use crate::usecase::provision::{
    ProvisionError, ensure_accounts, ensure_services, managed_workspaces,
};
use crate::usecase::{Core, audit, now, update_connector};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

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
    let connector = match core.connectors.get(&cref.workspace).await? {
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
            update_connector(core, &cref.workspace, |c| {
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
        settings: connector.settings,
    };
    job_ctx.sync(&mut run, &token).await
}

struct Job<'a> {
    core: &'a Core,
    policy: &'a SyncPolicy,
    job: &'a SyncJob,
    owner: &'a str,
    deadline: Instant,
    settings: ConnectorSettings,
}

impl Job<'_> {
    fn deadline_near(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < self.policy.deadline_margin
    }

    /// Set-up, plan, send, record.
    async fn sync(&self, run: &mut SyncRun, token: &ApiToken) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        let near = || self.deadline_near();
        let setup: Result<_, ProvisionError> = async {
            core.psa.organization(token).await?;
            if let Err(e) = core.key_health.accepted().await {
                tracing::warn!(error = %e, "could not record an accepted call");
            }
            let (ids, services_created) =
                ensure_services(core, token, cref.workspace.as_str()).await?;
            let workspaces = managed_workspaces(core, &cref.workspace).await?;
            let accounts = ensure_accounts(core, token, &workspaces, Some(&cref), &near).await?;
            Ok((ids, services_created, workspaces, accounts))
        }
        .await;
        let (ids, services_created, workspaces, accounts) = match setup {
            Ok(v) => v,
            Err(ProvisionError::Psa(e)) => {
                return finish::rejected(core, self.policy, run, e).await;
            }
            Err(ProvisionError::Store(e)) => return Err(e),
            Err(ProvisionError::Deadline) => {
                return self.continue_or_give_up(run, &BTreeMap::new(), &[]).await;
            }
            Err(e) => return end(core, run, RunStatus::Failed, &e.to_string()).await,
        };
        run.counts.services_created += services_created;
        run.counts.accounts = accounts.accounts;
        run.counts.accounts_created += accounts.created;
        run.counts.accounts_renamed += accounts.renamed;

        let pairs = core.pairs.pairs(&cref).await?;
        let recorded = core.readings.all_readings(&cref, &run.run_id).await?;
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
        if run.guard.is_none() {
            let figures = guard_figures(&core.catalogue, &workspaces, &ids, &pairs);
            run.guard = Some(figures);
            let threshold = self.settings.guard_drop_percent;
            if run.trigger != Trigger::Release
                && figures.holds(threshold, self.policy.guard_min_units)
            {
                return self.hold(run, plan, threshold.unwrap_or_default()).await;
            }
        }
        self.record_failed(run, &pairs, &plan.decided).await?;
        tracing::info!(
            send = plan.send.len(),
            decided = plan.decided.len(),
            already = recorded.len(),
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
        let mut accepted_now: Vec<Reading> = Vec::new();
        let chunk = self.policy.chunk.max(1);
        let mut offset = 0;
        while offset < plan.send.len() {
            let n = offset / chunk;
            if self.policy.halt_after_chunks == Some(n) {
                tracing::warn!(chunks = n, "halted by fault injection, as a killed worker");
                return Ok(JobOutcome::Halted);
            }
            if self.deadline_near() {
                return self
                    .continue_or_give_up(run, &pairs, &plan.send[offset..])
                    .await;
            }
            if core
                .slots
                .take_lease(&cref, &run.run_id, self.owner, self.policy.lease_ttl)
                .await?
                != Lease::Acquired
            {
                tracing::warn!("lease lost to another worker; it finishes the run");
                return Ok(JobOutcome::Busy);
            }
            sender.check_connector().await?;
            let end_at = (offset + chunk).min(plan.send.len());
            let results = sender
                .post_chunk(&plan.send[offset..end_at], end_at == plan.send.len())
                .await;
            offset = end_at;
            let left = self.record(run, &pairs, results, &mut accepted_now).await?;
            match sender.stop() {
                Stop::Go => {}
                Stop::Deadline => {
                    let mut rest = left;
                    rest.extend_from_slice(&plan.send[offset..]);
                    return self.continue_or_give_up(run, &pairs, &rest).await;
                }
                stop => {
                    // No further calls: what was not sent fails now and goes out next run.
                    let why = match stop {
                        Stop::Cancelled => "not sent: the connector was deleted or re-tokened",
                        _ => "not sent: the run stopped",
                    };
                    let rest: Vec<RunReading> = left
                        .iter()
                        .chain(&plan.send[offset..])
                        .map(|r| r.ended(Outcome::Failed, Some(why)))
                        .collect();
                    self.record_failed(run, &pairs, &rest).await?;
                    break;
                }
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
            Stop::Go | Stop::Deadline => {
                if !sender.built.load(Ordering::SeqCst) {
                    self.rebuild(run, &sender, &ids, accepted_now).await?;
                }
                if self.settings.psa_alerts && !self.deadline_near() {
                    alerts::raise(core, self.policy, run, token, &ids).await?;
                }
                finish::finish(core, run, None).await
            }
        }
    }

    /// The billing guard holds the run: nothing is posted; what would have been posted is `held`.
    async fn hold(
        &self,
        run: &mut SyncRun,
        plan: Plan,
        threshold: u8,
    ) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        let g = run.guard.unwrap_or_default();
        let held: Vec<RunReading> = plan
            .send
            .iter()
            .map(|r| r.ended(Outcome::Held, None))
            .collect();
        core.readings
            .put_readings(&cref, &run.run_id, &plan.decided)
            .await?;
        core.readings
            .put_readings(&cref, &run.run_id, &held)
            .await?;
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
        finish::finish(core, run, Some(RunStatus::Held)).await
    }

    /// Records readings decided without a post; those that `failed` (a refused account, a run that
    /// stopped or ran out of continuations) also mark their pair's latest attempt failed, so the
    /// usage view says so and the next run sends them.
    async fn record_failed(
        &self,
        run: &SyncRun,
        pairs: &BTreeMap<(String, String), PairState>,
        readings: &[RunReading],
    ) -> Result<(), StoreError> {
        let cref = run.connector();
        let at = now();
        let states: Vec<PairState> = readings
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .filter_map(|r| {
                let before = pairs.get(&(r.account_id.clone(), r.service.clone()));
                if before.is_some_and(|p| p.last_attempt == AttemptOutcome::Failed) {
                    return None;
                }
                Some(PairState {
                    account_id: r.account_id.clone(),
                    service_key: r.service.clone(),
                    account_name: r.account_name.clone(),
                    accepted: before.and_then(|p| p.accepted.clone()),
                    last_attempt: AttemptOutcome::Failed,
                    last_attempt_at: at,
                })
            })
            .collect();
        self.core.pairs.put_pairs(&cref, &states).await?;
        self.core
            .readings
            .put_readings(&cref, &run.run_id, readings)
            .await
    }

    /// Records the outcomes of one chunk (readings and pair states); answers the readings that
    /// were not sent.
    async fn record(
        &self,
        run: &SyncRun,
        pairs: &BTreeMap<(String, String), PairState>,
        results: Vec<Sent>,
        accepted_now: &mut Vec<Reading>,
    ) -> Result<Vec<Reading>, StoreError> {
        let cref = run.connector();
        let at = now();
        let mut readings = Vec::new();
        let mut states = Vec::new();
        let mut left = Vec::new();
        let mut state = |r: &Reading, attempt: AttemptOutcome, accepted: Option<Accepted>| {
            let before = pairs.get(&r.key());
            let accepted = accepted.or_else(|| before.and_then(|p| p.accepted.clone()));
            let same = before.is_some_and(|p| p.last_attempt == attempt && p.accepted == accepted);
            if !same {
                states.push(PairState {
                    account_id: r.account_id.clone(),
                    service_key: r.service_key.clone(),
                    account_name: r.account_name.clone(),
                    accepted,
                    last_attempt: attempt,
                    last_attempt_at: at,
                });
            }
        };
        for sent in results {
            match sent {
                Sent::Accepted(r) => {
                    let accepted = Accepted {
                        value: r.count,
                        service_id: r.service_id.clone(),
                        at,
                        run_id: run.run_id.clone(),
                    };
                    state(&r, AttemptOutcome::Posted, Some(accepted));
                    readings.push(r.ended(Outcome::Posted, None));
                    accepted_now.push(r);
                }
                Sent::Unmapped(r) => {
                    state(&r, AttemptOutcome::Unmapped, None);
                    readings.push(r.ended(Outcome::Unmapped, None));
                }
                Sent::Failed(r, why) => {
                    state(&r, AttemptOutcome::Failed, None);
                    readings.push(r.ended(Outcome::Failed, Some(&why)));
                }
                Sent::Unsent(r) => left.push(r),
            }
        }
        // Pair states first: a reading recorded for this run is never attempted again in it.
        self.core.pairs.put_pairs(&cref, &states).await?;
        self.core
            .readings
            .put_readings(&cref, &run.run_id, &readings)
            .await?;
        Ok(left)
    }

    /// The run had counts accepted but none with `no_build=false` (the last one was unmapped or
    /// failed, or was sent by an earlier job): send one accepted count again, letting the PSA
    /// rebuild its billing view. A count is a set, so this changes no value.
    async fn rebuild(
        &self,
        run: &SyncRun,
        sender: &Sender<'_>,
        ids: &BTreeMap<String, String>,
        accepted_now: Vec<Reading>,
    ) -> Result<(), StoreError> {
        let mut candidates: Vec<Reading> = accepted_now.into_iter().rev().take(3).collect();
        if candidates.is_empty() {
            let cref = run.connector();
            let earlier = self.core.readings.all_readings(&cref, &run.run_id).await?;
            candidates = earlier
                .into_iter()
                .filter(|r| r.outcome == Outcome::Posted)
                .filter_map(|r| {
                    Some(Reading {
                        service_id: ids.get(&r.service)?.clone(),
                        account_id: r.account_id,
                        account_name: r.account_name,
                        service_key: r.service,
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
            return Ok(()); // nothing accepted in this run: nothing to rebuild
        }
        for reading in candidates {
            if let Sent::Accepted(_) = sender.post(reading, false).await {
                tracing::info!("billing view rebuild requested with an accepted count");
                return Ok(());
            }
            if sender.stop() != Stop::Go {
                break;
            }
        }
        tracing::warn!("no count with no_build=false was accepted; Gradient rebuilds on its own");
        Ok(())
    }

    /// Time is short: saves progress and enqueues the run's next job — unless the run has used
    /// its continuations, then what is left (`rest`, or nothing planned yet) ends `failed`.
    async fn continue_or_give_up(
        &self,
        run: &mut SyncRun,
        pairs: &BTreeMap<(String, String), PairState>,
        rest: &[Reading],
    ) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        if run.continuations >= self.policy.max_continuations {
            let why = format!(
                "not sent: the run used all {} continuations",
                self.policy.max_continuations
            );
            let failed: Vec<RunReading> = rest
                .iter()
                .map(|r| r.ended(Outcome::Failed, Some(&why)))
                .collect();
            self.record_failed(run, pairs, &failed).await?;
            tracing::warn!(left = rest.len(), "continuations used up; the rest fails");
            // Nothing left to send means set-up itself did not finish: the run failed.
            let status = rest.is_empty().then_some(RunStatus::Failed);
            run.reason = Some(format!(
                "the run ran out of time after {} continuations; what is left is sent next run",
                self.policy.max_continuations
            ));
            return finish::finish(core, run, status).await;
        }
        run.continuations += 1;
        run.calls = run.calls + crate::calls::current();
        let readings = core.readings.all_readings(&cref, &run.run_id).await?;
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
