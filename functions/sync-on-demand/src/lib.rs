//! `POST /v1/psa/connectors/{connectorId}/sync` (an admin's "Sync now") and
//! `POST .../syncs/{runId}/release` (an admin's release of a held run). The HTTP edge and the use
//! case are the connectors API's (one route table, one error mapping); this function serves only
//! these two routes.

use connectors_api::App;
use connectors_api::http::{Problem, Route, caller, request_path, route};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

/// Answers the sync and release routes; any other path is not this function's (404).
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let routed = caller(&req).and_then(|_| route(req.method(), request_path(&req)));
    match routed {
        Ok(Route::RequestSync(_) | Route::ReleaseSync(..)) => {
            connectors_api::handle(app, req).await
        }
        Ok(_) => Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "no such resource",
        )
        .into_response(),
        Err(problem) => problem.into_response(),
    }
}
