//! Scheduled sync: the daily EventBridge rule (05:00 UTC, after Coro's 04:00 UTC protected-user
//! refresh) → one sync job per connected connector on the queue.
//!
//! STUB. The usage sync is the next issue. Until then the handler parses the event, logs that
//! scheduling is not implemented, and succeeds (a failure would only make EventBridge retry a
//! no-op).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::Value;

/// The scheduled event as EventBridge delivers it (`detail` is `{}` for a schedule).
pub type ScheduledEvent = EventBridgeEvent<Value>;

/// Handles one scheduled invocation.
pub async fn handle(event: ScheduledEvent) -> Result<(), lambda_runtime::Error> {
    if event.detail_type != "Scheduled Event" || event.source != "aws.events" {
        tracing::warn!(
            detail_type = %event.detail_type,
            source = %event.source,
            "unexpected EventBridge event for the sync schedule"
        );
    }
    tracing::warn!(
        event_id = event.id.as_deref(),
        scheduled_for = event.time.map(|t| t.to_rfc3339()),
        rule = event
            .resources
            .as_ref()
            .and_then(|r| r.first())
            .map(String::as_str),
        "scheduled sync not implemented yet; no jobs enqueued"
    );
    Ok(())
}
