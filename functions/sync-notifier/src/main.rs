//! Wiring only: tracing, configuration, DynamoDB and SES, then the runtime loop.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let notifier = psa_runtime::sync_notifier().await?;
    run(service_fn(
        |event: LambdaEvent<sync_notifier::FinishedEvent>| {
            let notifier = notifier.clone();
            // Every log line of the invocation carries the Lambda request id, at any RUST_LOG.
            let span = tracing::error_span!("notify", request_id = %event.context.request_id);
            async move {
                let handled =
                    sync_notifier::handle(&notifier, event.payload, &event.context.request_id)
                        .await?;
                Ok::<_, Error>(serde_json::to_value(&handled)?)
            }
            .instrument(span)
        },
    ))
    .await
}
