//! Wiring only: tracing, configuration, clients, then the runtime loop.

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    // Built once at start-up so a missing or malformed variable fails here, naming it; the stub
    // handler does not use it yet (the usage sync passes it to the handler).
    let _platform = psa_runtime::Platform::from_env().await?;
    run(service_fn(|req: Request| async move {
        Ok::<_, Error>(sync_on_demand::handle(req).await)
    }))
    .await
}
