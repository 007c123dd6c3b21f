//! The sync job queue on SQS.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use psa_domain::ports::{JobQueue, StoreError, SyncJob};

/// Entries per SendMessageBatch (the SQS limit).
const BATCH: usize = 10;

/// Sync jobs as SQS messages: the body is the job's JSON.
#[derive(Clone, Debug)]
pub struct SqsJobQueue {
    client: Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends `entries`; answers the ones SQS reported as failed (with their codes for the log).
    async fn send(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Result<(Vec<SendMessageBatchRequestEntry>, Vec<String>), StoreError> {
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| StoreError(format!("enqueue sync jobs: {}", DisplayErrorContext(&e))))?;
        let failed = out.failed();
        let codes = failed
            .iter()
            .map(|f| format!("{}:{}", f.id(), f.code()))
            .collect();
        let again = entries
            .into_iter()
            .filter(|e| failed.iter().any(|f| f.id() == e.id()))
            .collect();
        Ok((again, codes))
    }
}

/// SendMessageBatch calls in flight at once (a page of the schedule is 10 batches).
const IN_FLIGHT: usize = 8;

impl SqsJobQueue {
    /// One batch of at most 10; entries SQS reports as failed are sent once more, then it is an
    /// error.
    async fn send_chunk(&self, chunk: &[SyncJob]) -> Result<(), StoreError> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, job) in chunk.iter().enumerate() {
            let body = serde_json::to_string(job)
                .map_err(|e| StoreError(format!("sync job json: {e}")))?;
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .map_err(|e| StoreError(format!("sync job entry: {e}")))?;
            entries.push(entry);
        }
        let (failed, _) = self.send(entries).await?;
        if failed.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            failed = failed.len(),
            "SQS rejected sync jobs; sending them again"
        );
        let (failed, codes) = self.send(failed).await?;
        if !failed.is_empty() {
            return Err(StoreError(format!(
                "enqueue sync jobs: {} of {} messages failed twice ({})",
                failed.len(),
                chunk.len(),
                codes.join(", ")
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    /// Batches of 10, several in flight; the first failure is the error (jobs of other batches
    /// may have gone out: the callers treat enqueueing as at-least-once).
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), StoreError> {
        use futures::StreamExt;
        let sends: Vec<_> = jobs.chunks(BATCH).map(|c| self.send_chunk(c)).collect();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(sends)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }
}
