//! Wiring only: tracing, then the runtime loop. The stub builds no platform; the usage sync will
//! build it here once (`psa_runtime::Platform::from_env`) and pass it to the handler.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(sync_worker::handle(event.payload).await)
    }))
    .await
}
