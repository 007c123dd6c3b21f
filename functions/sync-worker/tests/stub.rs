//! The stub with a real SQS batch payload (tests/events/sqs-sync-jobs.json).

use aws_lambda_events::event::sqs::SqsEvent;

const BATCH: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/events/sqs-sync-jobs.json"
));

#[tokio::test]
async fn every_record_goes_back_to_the_queue() {
    let event: SqsEvent = serde_json::from_str(BATCH).expect("SQS batch fixture");
    assert_eq!(event.records.len(), 2);
    let response = sync_worker::handle(event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "2e1424d4-f796-459a-8184-9c92662be6da",
            "7c9b1e5a-3f0d-4b8e-9a61-0d2f5c4e8b17"
        ]
    );
    // The wire shape Lambda expects with ReportBatchItemFailures.
    let wire = serde_json::to_value(&response).unwrap();
    assert_eq!(
        wire["batchItemFailures"][1]["itemIdentifier"],
        "7c9b1e5a-3f0d-4b8e-9a61-0d2f5c4e8b17"
    );
}

#[tokio::test]
async fn an_empty_batch_reports_no_failures() {
    let event: SqsEvent = serde_json::from_str(r#"{"Records": []}"#).unwrap();
    assert!(
        sync_worker::handle(event)
            .await
            .batch_item_failures
            .is_empty()
    );
}
