//! Wiring only: tracing, configuration, clients, then the runtime loop.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let platform = psa_runtime::Platform::from_env().await?;
    let scheduler = sync_scheduled::Scheduler::new(&platform);
    run(service_fn(
        |event: LambdaEvent<sync_scheduled::ScheduledEvent>| {
            let scheduler = scheduler.clone();
            // Every log line of the invocation carries the Lambda request id, at any RUST_LOG.
            let span = tracing::error_span!("schedule", request_id = %event.context.request_id);
            async move {
                let report = sync_scheduled::handle(&scheduler, event.payload).await?;
                Ok::<_, Error>(serde_json::json!({
                    "connectors": report.connectors,
                    "enqueued": report.enqueued,
                    "duplicates": report.duplicates,
                    "busy": report.busy,
                }))
            }
            .instrument(span)
        },
    ))
    .await
}
