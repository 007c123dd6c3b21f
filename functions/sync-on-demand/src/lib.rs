//! `POST /v1/psa/connectors/{connectorId}/sync` (an admin's "Sync now") and
//! `POST .../syncs/{runId}/release` (an admin's release of a held run). The HTTP edge and the use
//! case are the shared edge's ([`psa_http`]: one route table, one error mapping); this function
//! serves only these two routes.

use lambda_http::{Body, Request, Response};
use psa_http::claims::caller;
use psa_http::{ApiError, App, Route, request_path, route};

/// Answers the sync and release routes; any other path is not this function's (404).
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let routed = caller(&req).and_then(|_| route(req.method(), request_path(&req)));
    match routed {
        Ok(Route::RequestSync(_) | Route::ReleaseSync(..)) => psa_http::handle(app, req).await,
        Ok(_) => ApiError::RouteNotFound.problem().into_response(),
        Err(e) => e.problem().into_response(),
    }
}
