//! On-demand sync: `POST /v1/psa/connectors/{connectorId}/sync` → one sync job on the queue, 202.
//!
//! STUB. The usage sync is the next issue. Until then the edge is real (the caller from the JWT
//! claims, the shared route table, admin only) and an allowed request gets 501 `not_implemented`.
//! Everything is checked before any AWS call, so tests need no local stack.

use connectors_api::http::{Problem, Route, caller, route};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

/// Entry point for one request: never panics on input, never answers 5xx for bad input.
pub async fn handle(req: Request) -> Response<Body> {
    match dispatch(&req) {
        Ok(resp) => resp,
        Err(problem) => {
            if problem.status.is_client_error() {
                tracing::info!(
                    status = problem.status.as_u16(),
                    code = problem.code,
                    "request refused"
                );
            }
            problem.into_response()
        }
    }
}

fn dispatch(req: &Request) -> Result<Response<Body>, Problem> {
    let caller = caller(req)?;
    let Route::RequestSync(id) = route(req.method(), req.uri().path())? else {
        // API Gateway only sends this function the sync route; anything else is not ours.
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "no such resource",
        ));
    };
    caller.may_write()?;
    if psa_domain::ConnectorType::parse(&id).is_none() {
        return Err(Problem::connector_not_found());
    }
    tracing::warn!(workspace_id = %caller.workspace, "on-demand sync not implemented yet");
    Err(Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "Not implemented",
        "usage sync is not available yet",
    ))
}
