//! Wiring only: tracing, configuration, the clients this function uses, then the runtime loop.
//! The handler is the shared HTTP edge ([`psa_http::handle`]), which serves every route of the
//! API but the sync ones (those are sync-on-demand's).

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    psa_runtime::init_tracing();
    let app = psa_runtime::connectors_api().await?;
    run(service_fn(|req: Request| {
        let app = app.clone();
        async move { Ok::<_, Error>(psa_http::handle(&app, req).await) }
    }))
    .await
}
