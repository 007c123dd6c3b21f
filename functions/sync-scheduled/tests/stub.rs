//! The stub with a real EventBridge "Scheduled Event" payload (tests/events/eventbridge-scheduled.json).

use sync_scheduled::ScheduledEvent;

const SCHEDULED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/events/eventbridge-scheduled.json"
));

#[tokio::test]
async fn the_daily_schedule_event_parses_and_succeeds() {
    let event: ScheduledEvent = serde_json::from_str(SCHEDULED).expect("EventBridge fixture");
    assert_eq!(event.detail_type, "Scheduled Event");
    assert_eq!(event.source, "aws.events");
    assert_eq!(
        event.time.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-24T05:00:00+00:00")
    );
    assert!(
        event.resources.as_ref().unwrap()[0]
            .starts_with("arn:aws:events:us-east-1:123456789012:rule/")
    );
    assert!(sync_scheduled::handle(event).await.is_ok());
}
