//! Wiring only: tracing, configuration, clients, then the runtime loop.

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let platform = psa_runtime::Platform::from_env().await?;
    let app = connectors_api::App::new(&platform);
    run(service_fn(|req: Request| {
        let app = app.clone();
        async move { Ok::<_, Error>(sync_on_demand::handle(&app, req).await) }
    }))
    .await
}
