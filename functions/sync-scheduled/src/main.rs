//! Wiring only: tracing, configuration, the clients this function uses, then the runtime loop.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let platform = psa_runtime::Platform::sync_scheduled().await?;
    let scheduler = sync_scheduled::Scheduler::new(&platform);
    run(service_fn(
        |event: LambdaEvent<sync_scheduled::ScheduledEvent>| {
            let scheduler = scheduler.clone();
            async move {
                let report = sync_scheduled::handle(&scheduler, event.payload).await?;
                Ok::<_, Error>(serde_json::json!({
                    "connectors": report.connectors,
                    "enqueued": report.enqueued,
                    "duplicates": report.duplicates,
                    "busy": report.busy,
                }))
            }
        },
    ))
    .await
}
