//! Sync worker: one SQS message = one connector's usage sync (partial batch failures).
//!
//! STUB. The usage sync is the next issue. Until then every record is reported as a batch item
//! failure, so nothing is lost: SQS makes the messages visible again (and, after `maxReceiveCount`,
//! moves them to the dead-letter queue) instead of deleting them as "done".

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

/// Handles one SQS batch; the answer lists the records SQS must not delete.
pub async fn handle(event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        tracing::warn!(
            message_id = %id,
            receive_count = record.attributes.get("ApproximateReceiveCount").map(String::as_str),
            "sync worker not implemented yet; returning the message to the queue"
        );
        response.add_failure(id); // a `BatchItemFailure` with this message id
    }
    response
}
