//! `POST /v1/psa/connectors/{connectorId}/sync` (an admin's "Sync now") and
//! `POST .../syncs/{runId}/release` (an admin's release of a held run). The HTTP edge and the use
//! case are the connectors API's (one route table, one error mapping); this function serves only
//! these two routes.

use connectors_api::http::{Route, caller, request_path, route};
use connectors_api::{ApiError, App};
use lambda_http::{Body, Request, Response};

/// Answers the sync and release routes; any other path is not this function's (404).
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let routed = caller(&req).and_then(|_| route(req.method(), request_path(&req)));
    match routed {
        Ok(Route::RequestSync(_) | Route::ReleaseSync(..)) => {
            connectors_api::handle(app, req).await
        }
        Ok(_) => ApiError::RouteNotFound.problem().into_response(),
        Err(e) => e.problem().into_response(),
    }
}
