//! Wiring only: tracing, configuration, the clients this function uses, then the runtime loop.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let parts = psa_runtime::sync_worker().await?;
    let worker = sync_worker::Worker::new(parts.ports, parts.settings.sync, Some(parts.budget));
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move {
            // The context's deadline is wall-clock epoch ms; turn it into a monotonic instant.
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let deadline = Instant::now() + left;
            Ok::<SqsBatchResponse, Error>(
                sync_worker::handle(&worker, event.payload, &event.context.request_id, deadline)
                    .await,
            )
        }
    }))
    .await
}
