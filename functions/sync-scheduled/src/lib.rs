//! Daily schedule (EventBridge, 05:00 UTC): one sync job per connected connector, batched and
//! within the day's Gradient budget. The run id is derived from the event's scheduled time, so a
//! duplicate delivery makes no second run. A firing cut short (a failure, a kill, the time limit)
//! is continued by the next delivery of the same event or by the resume schedule
//! (`{"resume": true}` every few minutes after the daily time), from its saved position.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use psa_domain::capacity;
use psa_domain::telemetry::Measurement;
use psa_domain::usecase::QueueCore;
use psa_domain::usecase::sync::{
    ScheduleOptions, ScheduleReport, SyncPolicy, resume_latest, schedule_all,
};
use serde_json::Value;
use std::time::Instant;

pub type ScheduledEvent = EventBridgeEvent<Value>;

#[derive(Clone)]
pub struct Scheduler {
    /// The store and the sync queue.
    pub core: QueueCore,
    pub policy: SyncPolicy,
    /// Connectors per page (one batched read, one checkpoint).
    pub page_size: u32,
    /// Paging, concurrency, the day's budget, the time margin, the lease, fault injection.
    pub options: ScheduleOptions,
}

impl Scheduler {
    /// A scheduler over `core` whose day's budget is what `max_rps` (`GRADIENT_MAX_RPS`) allows.
    pub fn new(core: QueueCore, policy: SyncPolicy, max_rps: u32) -> Self {
        Self {
            core,
            policy,
            page_size: 100,
            options: ScheduleOptions {
                budget: capacity::daily_budget(max_rps),
                ..ScheduleOptions::default()
            },
        }
    }

    fn options(&self, deadline: Option<Instant>, owner: Option<&str>) -> ScheduleOptions {
        let mut o = self.options.clone();
        o.page_size = self.page_size;
        o.deadline = deadline.or(o.deadline);
        if let Some(owner) = owner {
            o.owner = owner.to_owned();
        }
        o
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the scheduled event has no time")]
    NoTime,
    #[error(transparent)]
    Schedule(#[from] psa_domain::usecase::sync::ScheduleError),
}

/// What the function was asked to do.
pub enum Request {
    /// The daily event.
    Daily(Box<ScheduledEvent>),
    /// The resume schedule: continue the newest firing if it is not complete.
    Resume,
}

impl Request {
    /// `{"resume": true}` is the resume schedule's input; anything else is the daily event.
    pub fn parse(payload: Value) -> Result<Self, serde_json::Error> {
        if payload.get("resume").and_then(Value::as_bool) == Some(true) {
            return Ok(Self::Resume);
        }
        serde_json::from_value(payload).map(|e| Self::Daily(Box::new(e)))
    }
}

/// Enqueues the day's runs. The scheduled time is the event's `time`, truncated to the minute.
pub async fn handle(
    scheduler: &Scheduler,
    event: ScheduledEvent,
) -> Result<ScheduleReport, ScheduleError> {
    handle_until(scheduler, Request::Daily(Box::new(event)), None, None).await
}

/// [`handle`] for either request, stopping (progress saved) shortly before `deadline`, as
/// invocation `owner` (the Lambda request id).
pub async fn handle_until(
    scheduler: &Scheduler,
    request: Request,
    deadline: Option<Instant>,
    owner: Option<&str>,
) -> Result<ScheduleReport, ScheduleError> {
    let opts = scheduler.options(deadline, owner);
    let (core, policy) = (&scheduler.core, &scheduler.policy);
    let report = match request {
        Request::Resume => {
            let report = resume_latest(core, policy, &opts).await?;
            if report.is_none() {
                tracing::info!("nothing to resume");
            }
            report.unwrap_or_default()
        }
        Request::Daily(event) => {
            let at = event.time.ok_or(ScheduleError::NoTime)?;
            let at =
                time::OffsetDateTime::from_unix_timestamp(at.timestamp() - at.timestamp() % 60)
                    .map_err(|_| ScheduleError::NoTime)?;
            schedule_all(core, policy, at, &opts).await?
        }
    };
    tracing::info!(
        event = "schedule_report",
        connectors = report.connectors,
        enqueued = report.enqueued,
        duplicates = report.duplicates,
        busy = report.busy,
        deferred = report.deferred,
        pages = report.pages,
        complete = report.complete,
        planned_calls = report.plan.planned_calls(),
        budget = report.plan.budget,
        "daily sync scheduled"
    );
    scheduler.core.metrics.record(&Measurement::scheduled(
        report.pages,
        report.connectors,
        report.enqueued,
        report.busy,
        report.duplicates,
    ));
    Ok(report)
}
