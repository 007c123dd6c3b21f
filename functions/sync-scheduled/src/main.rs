//! Wiring only: tracing, configuration, the clients this function uses, then the runtime loop.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let (ports, settings) = psa_runtime::sync_scheduled().await?;
    let scheduler =
        sync_scheduled::Scheduler::new(ports, settings.sync.clone(), settings.gradient_max_rps);
    run(service_fn(|event: LambdaEvent<Value>| {
        let scheduler = scheduler.clone();
        // Every log line of the invocation carries the Lambda request id, at any RUST_LOG.
        let span = tracing::error_span!("schedule", request_id = %event.context.request_id);
        async move {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let request = sync_scheduled::Request::parse(event.payload)?;
            let report = sync_scheduled::handle_until(
                &scheduler,
                request,
                Some(Instant::now() + left),
                Some(&event.context.request_id),
            )
            .await?;
            Ok::<_, Error>(serde_json::to_value(&report)?)
        }
        .instrument(span)
    }))
    .await
}
