//! The daily schedule: one queued run per connected connector, within the day's Gradient budget,
//! for 10,000 connectors and more within the scheduler's time limit, resumable after a failure.
//!
//! * **One run per connector and firing.** The run id is the scheduled minute + `scheduled`; the
//!   run is created with a conditional write, so nothing a repeated or resumed firing does makes
//!   a second one.
//! * **Batched.** Connectors are read a page at a time from the status index; per page one
//!   batched read finds the runs already created (and whether their job is on the queue), the
//!   new runs are claimed and created concurrently, the jobs go out 10 per SendMessageBatch and
//!   are recorded as queued with batched writes.
//! * **Resumable.** After each page the firing saves its position (the index cursor) under a
//!   lease. An invocation that fails, is killed, or runs short of time leaves the position
//!   behind; the next invocation for the same firing (a retried event, or the resume schedule
//!   every few minutes) takes the lease once it expired and continues from there. Runs created
//!   but not recorded as queued are queued then; a job is sent twice only if an invocation died
//!   between SQS accepting a batch and recording it — the worker runs a run once whatever the
//!   number of its jobs.
//! * **Within the budget** (`capacity`): the firing plans the day once (recorded with its
//!   progress) and defers the full resends that do not fit to the next day.

use super::SyncPolicy;
use super::request::new_run;
use crate::capacity::{self, DayPlan};
use crate::connector::{Connector, ConnectorRef};
use crate::ids::RunId;
pub use crate::ports::{FiringClaim, ScheduleBook, ScheduleProgress, ScheduledRun};
use crate::ports::{StoreError, SyncJob};
use crate::sync::{RunStatus, Trigger};
use crate::usecase::QueueCore;
use crate::usecase::{Core, now, update_connector};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// What one invocation of the schedule did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleReport {
    pub connectors: u64,
    pub enqueued: u64,
    /// The run for this firing already existed (a repeated or resumed firing).
    pub duplicates: u64,
    /// Another run was queued or running for the connector.
    pub busy: u64,
    /// Runs whose full resend the day's budget deferred to the next day.
    pub deferred: u64,
    pub pages: u64,
    /// Every connector of the firing has its run and job (false: time ran short, or another
    /// invocation holds the firing; a later invocation continues).
    pub complete: bool,
    /// The day's plan against the budget.
    pub plan: DayPlan,
}

/// How one invocation schedules.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// Connectors per page (one batched read, one checkpoint).
    pub page_size: u32,
    /// Connectors claimed and created at once.
    pub concurrency: usize,
    /// Gradient calls per day the schedule plans with (`capacity::daily_budget`).
    pub budget: u64,
    /// The invocation stops (progress saved) when less than `margin` is left before this.
    pub deadline: Option<Instant>,
    pub margin: Duration,
    /// The firing's lease lasts this long past each checkpoint.
    pub lease_ttl: Duration,
    /// This invocation's id (the Lambda request id).
    pub owner: String,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        Self {
            page_size: 100,
            concurrency: 16,
            budget: capacity::daily_budget(80),
            deadline: None,
            margin: Duration::from_secs(15),
            lease_ttl: Duration::from_secs(30),
            owner: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Connectors read per page when planning the day (a query, never a scan).
const PLAN_PAGE: u32 = 1000;

fn until(ttl: Duration) -> OffsetDateTime {
    now() + ttl
}

/// Schedules the firing at `scheduled_at` (or continues it): one run per connected connector.
#[tracing::instrument(skip(core, policy, opts), fields(owner = %opts.owner))]
pub async fn schedule_all(
    core: &QueueCore,
    policy: &SyncPolicy,
    scheduled_at: OffsetDateTime,
    opts: &ScheduleOptions,
) -> Result<ScheduleReport, ScheduleError> {
    let run_id = RunId::new(scheduled_at, "scheduled");
    let book = &core.schedule;
    let saved = match book
        .claim_firing(&run_id, &opts.owner, until(opts.lease_ttl))
        .await?
    {
        FiringClaim::Busy => {
            tracing::info!(run_id = %run_id, "another invocation is scheduling this firing");
            return Ok(ScheduleReport::default());
        }
        FiringClaim::Mine(saved) => saved,
    };
    let mut progress = match saved {
        // Done before: a repeated event checks every connector again (reads only, mostly).
        Some(p) if p.complete => ScheduleProgress { cursor: None, ..p },
        Some(p) => p,
        None => {
            let p = ScheduleProgress {
                scheduled_at,
                plan: plan_the_day(core, policy, scheduled_at, opts.budget).await?,
                cursor: None,
                complete: false,
            };
            if !book
                .save_firing(&run_id, &opts.owner, until(opts.lease_ttl), &p)
                .await?
            {
                return Ok(ScheduleReport::default());
            }
            p
        }
    };
    tracing::info!(plan = ?progress.plan, resumed_at = ?progress.cursor.is_some(), "day planned");
    let mut report = ScheduleReport {
        plan: progress.plan,
        ..ScheduleReport::default()
    };
    loop {
        if opts
            .deadline
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) < opts.margin)
        {
            book.release_firing(&run_id, &opts.owner).await?;
            tracing::warn!(
                ?report,
                "time runs short: progress saved, the resume schedule continues"
            );
            return Ok(report);
        }
        let (page, next) = core
            .connectors
            .connected_page(progress.cursor.clone(), opts.page_size)
            .await?;
        schedule_page(core, policy, &progress, &run_id, page, opts, &mut report).await?;
        report.pages += 1;
        progress.cursor = next;
        progress.complete = progress.cursor.is_none();
        if !book
            .save_firing(&run_id, &opts.owner, until(opts.lease_ttl), &progress)
            .await?
        {
            tracing::warn!("lost the firing's lease; the other invocation goes on");
            return Ok(report);
        }
        if progress.complete {
            book.release_firing(&run_id, &opts.owner).await?;
            report.complete = true;
            return Ok(report);
        }
    }
}

/// Continues the newest firing if it is not complete (the resume schedule); `None` when there is
/// nothing to continue.
pub async fn resume_latest(
    core: &QueueCore,
    policy: &SyncPolicy,
    opts: &ScheduleOptions,
) -> Result<Option<ScheduleReport>, ScheduleError> {
    let Some(run_id) = core.schedule.latest_firing().await? else {
        return Ok(None);
    };
    let claim = core
        .schedule
        .claim_firing(&run_id, &opts.owner, until(opts.lease_ttl))
        .await?;
    if let FiringClaim::Mine(_) = claim {
        // Hand the lease back and schedule as the firing's own event would.
        core.schedule.release_firing(&run_id, &opts.owner).await?;
    }
    match claim {
        FiringClaim::Mine(Some(p)) if !p.complete => {
            schedule_all(core, policy, p.scheduled_at, opts)
                .await
                .map(Some)
        }
        _ => Ok(None),
    }
}

/// The day's plan: every connected connector's expected calls against the budget.
async fn plan_the_day(
    core: &Core,
    policy: &SyncPolicy,
    at: OffsetDateTime,
    budget: u64,
) -> Result<DayPlan, StoreError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = core.connectors.connected_page(cursor, PLAN_PAGE).await?;
        all.extend(page);
        cursor = next;
        if cursor.is_none() {
            return Ok(capacity::plan_day(&all, at, policy, budget));
        }
    }
}

enum Step {
    Enqueue(SyncJob, bool),
    Duplicate,
    Busy,
}

async fn schedule_page(
    core: &QueueCore,
    policy: &SyncPolicy,
    progress: &ScheduleProgress,
    run_id: &RunId,
    page: Vec<Connector>,
    opts: &ScheduleOptions,
    report: &mut ScheduleReport,
) -> Result<(), ScheduleError> {
    let refs: Vec<ConnectorRef> = page.iter().map(Connector::reference).collect();
    let known = core.schedule.scheduled_runs(run_id, &refs).await?;
    let at = progress.scheduled_at;
    let steps = futures::stream::iter(page.iter().map(|c| {
        let known = known.get(&c.reference()).copied();
        one(core, policy, &progress.plan, run_id, at, c, known)
    }))
    .buffer_unordered(opts.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    let mut jobs = Vec::new();
    for step in steps {
        report.connectors += 1;
        match step? {
            Step::Enqueue(job, deferred) => {
                report.deferred += u64::from(deferred);
                jobs.push(job);
            }
            Step::Duplicate => report.duplicates += 1,
            Step::Busy => report.busy += 1,
        }
    }
    core.queue.enqueue(&jobs).await?;
    let sent: Vec<ConnectorRef> = jobs.iter().map(SyncJob::connector).collect();
    core.schedule.mark_enqueued(run_id, &sent).await?;
    report.enqueued += jobs.len() as u64;
    Ok(())
}

/// One connector of the firing: its run created (or found) and whether its job must go out.
async fn one(
    core: &QueueCore,
    policy: &SyncPolicy,
    plan: &DayPlan,
    run_id: &RunId,
    at: OffsetDateTime,
    c: &Connector,
    known: Option<ScheduledRun>,
) -> Result<Step, StoreError> {
    let job = SyncJob {
        workspace_id: c.workspace_id.clone(),
        connector_id: c.kind,
        run_id: run_id.clone(),
        incarnation: c.incarnation.clone(),
    };
    match known {
        // Created by an invocation that died before its job was recorded as sent.
        Some(r) if r.status == RunStatus::Queued && !r.enqueued => {
            return Ok(Step::Enqueue(job, false));
        }
        Some(_) => return Ok(Step::Duplicate),
        None => {}
    }
    let cref = c.reference();
    if super::request::claim_slot(core, policy, &cref, run_id)
        .await?
        .is_some()
    {
        return Ok(Step::Busy);
    }
    let mut deferred = false;
    if plan.admits(c, at, policy) == Some(false) {
        let (inc, version) = (c.incarnation.clone(), c.token_version);
        deferred = update_connector(core, &c.workspace_id, c.kind, |fresh| {
            fresh.owns(&inc, version) && capacity::defer(fresh, at)
        })
        .await?
        .is_some();
    }
    let run = new_run(c, run_id.clone(), Trigger::Scheduled, None, now());
    if core.runs.create_run(&run).await? {
        return Ok(Step::Enqueue(job, deferred));
    }
    // Created in between and already finished: the claim just made must go.
    if core
        .runs
        .get_run(&cref, run_id)
        .await?
        .is_some_and(|r| !r.status.is_active())
    {
        core.slots.release_slot(&cref, run_id).await?;
    }
    Ok(Step::Duplicate)
}
