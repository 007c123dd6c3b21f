//! The worker and the queue of a test: receiving, handling, draining.

use crate::claims::{ApiResponse, Claims};
use crate::env::TestEnv;
use crate::payloads::sqs_event;

use serde_json::Value;
use std::time::Duration;

impl TestEnv {
    /// Gives the API the platform's ports again after a test replaced some (a faulty vault, a
    /// slow PSA, another event bus); the API keeps its settings and the routes it serves.
    pub fn rewire_api(&mut self) {
        self.api.core = self.platform.core.clone();
        let (psa, queue) = (self.platform.psa_core(), self.platform.queue_core());
        self.api.with_psa = self.api.with_psa.take().map(|_| psa);
        self.api.with_queue = self.api.with_queue.take().map(|_| queue);
    }

    /// The sync worker with the test's core and sync policy.
    pub fn worker(&self) -> sync_worker::Worker {
        sync_worker::Worker::new(
            self.platform.worker_core(),
            self.platform.settings.sync.clone(),
            Some(self.platform.budget_share()),
        )
    }

    /// Receives up to 10 messages (hidden for `visibility` seconds).
    pub async fn receive(&self, visibility: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.local
            .sqs()
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    }

    /// Jobs currently waiting on the queue (each visible message once; they stay queued).
    pub async fn queued_jobs(&self) -> Vec<psa_domain::ports::SyncJob> {
        let mut seen = Vec::new();
        loop {
            let batch = self.receive(30).await;
            if batch.is_empty() {
                break;
            }
            seen.extend(batch);
        }
        let mut jobs = Vec::new();
        for m in &seen {
            jobs.push(serde_json::from_str(m.body().unwrap_or_default()).expect("job body"));
            self.local
                .sqs()
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .expect("change visibility");
        }
        jobs
    }

    /// Runs the worker like Lambda's SQS poller: receive a batch, invoke the handler with a real
    /// SQS event, delete what succeeded; failed items come back after `retry_after` (visibility).
    /// Stops when the queue stays empty or after `max_rounds`.
    pub async fn drain_with(
        &self,
        worker: &sync_worker::Worker,
        max_rounds: usize,
        retry_after: i32,
    ) -> usize {
        self.drain_with_deadline(worker, max_rounds, retry_after, Duration::from_secs(300))
            .await
    }

    /// [`Self::drain_with`] where each invocation has `time` before Lambda would stop it.
    pub async fn drain_with_deadline(
        &self,
        worker: &sync_worker::Worker,
        max_rounds: usize,
        retry_after: i32,
        time: Duration,
    ) -> usize {
        let mut invocations = 0;
        let mut empty_rounds = 0;
        for _ in 0..max_rounds {
            let batch = self.receive(retry_after.max(1)).await;
            if batch.is_empty() {
                empty_rounds += 1;
                if empty_rounds >= 8 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            empty_rounds = 0;
            invocations += 1;
            let deadline = std::time::Instant::now() + time;
            let resp = sync_worker::handle(
                worker,
                sqs_event(&batch),
                &format!("req-{invocations}"),
                deadline,
            )
            .await;
            let failed: std::collections::BTreeSet<String> = resp
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            for m in &batch {
                if !failed.contains(m.message_id().unwrap_or_default()) {
                    self.local
                        .sqs()
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .send()
                        .await
                        .expect("delete message");
                }
            }
        }
        invocations
    }

    /// Drains the queue with the default worker.
    pub async fn drain(&self) -> usize {
        self.drain_with(&self.worker(), 50, 1).await
    }

    /// `POST .../sync` as the channel's admin.
    pub async fn sync_now(&self, channel: &str) -> ApiResponse {
        self.call(
            "POST",
            "/v1/psa/connectors/gradient/sync",
            Some(&Claims::admin(channel)),
            None,
        )
        .await
    }

    /// `GET /v1/psa/connectors/gradient` as a viewer of the channel (must answer 200).
    pub async fn connector(&self, channel: &str) -> Value {
        let r = self
            .call(
                "GET",
                "/v1/psa/connectors/gradient",
                Some(&Claims::viewer(channel)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// `GET .../syncs` (first page, newest first) as a viewer of the channel.
    pub async fn syncs(&self, channel: &str) -> Value {
        let r = self
            .call(
                "GET",
                "/v1/psa/connectors/gradient/syncs",
                Some(&Claims::viewer(channel)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// `GET .../syncs/{runId}` as the channel's admin.
    pub async fn run(&self, channel: &str, run_id: &str) -> Value {
        let r = self
            .call(
                "GET",
                &format!("/v1/psa/connectors/gradient/syncs/{run_id}"),
                Some(&Claims::admin(channel)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }
}
