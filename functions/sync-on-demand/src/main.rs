//! Wiring only: tracing, configuration, the clients this function uses, then the runtime loop.

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let app = psa_runtime::sync_on_demand().await?;
    run(service_fn(|req: Request| {
        let app = app.clone();
        async move { Ok::<_, Error>(sync_on_demand::handle(&app, req).await) }
    }))
    .await
}
