//! Wiring only: tracing, then the runtime loop. The stub builds no platform; the usage sync will
//! build it here once (`psa_runtime::Platform::from_env`) and pass it to the handler.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sync_scheduled::ScheduledEvent;

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    run(service_fn(|event: LambdaEvent<ScheduledEvent>| {
        sync_scheduled::handle(event.payload)
    }))
    .await
}
