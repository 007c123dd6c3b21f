//! Daily schedule (EventBridge, 05:00 UTC): one sync job per connected connector. The run id is
//! derived from the event's scheduled time, so a duplicate delivery makes no second run.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use psa_domain::telemetry::Measurement;
use psa_domain::usecase::Core;
use psa_domain::usecase::sync::{ScheduleReport, SyncPolicy, schedule_all};
use serde_json::Value;

pub type ScheduledEvent = EventBridgeEvent<Value>;

#[derive(Clone)]
pub struct Scheduler {
    pub core: Core,
    pub policy: SyncPolicy,
    /// Connectors read per index page.
    pub page_size: u32,
}

impl Scheduler {
    pub fn new(platform: &psa_runtime::Platform) -> Self {
        Self {
            core: platform.core.clone(),
            policy: platform.settings.sync.clone(),
            page_size: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the scheduled event has no time")]
    NoTime,
    #[error(transparent)]
    Store(#[from] psa_domain::ports::StoreError),
}

/// Enqueues the day's runs. The scheduled time is the event's `time`, truncated to the minute.
pub async fn handle(
    scheduler: &Scheduler,
    event: ScheduledEvent,
) -> Result<ScheduleReport, ScheduleError> {
    let at = event.time.ok_or(ScheduleError::NoTime)?;
    let at = time::OffsetDateTime::from_unix_timestamp(at.timestamp() - at.timestamp() % 60)
        .map_err(|_| ScheduleError::NoTime)?;
    let report = schedule_all(&scheduler.core, &scheduler.policy, at, scheduler.page_size).await?;
    tracing::info!(?report, scheduled_at = %at, "daily sync scheduled");
    scheduler.core.metrics.record(&Measurement::scheduled(
        report.pages,
        report.connectors,
        report.enqueued,
        report.busy,
        report.duplicates,
    ));
    Ok(report)
}
