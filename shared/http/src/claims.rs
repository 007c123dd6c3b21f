//! The caller from the JWT claims API Gateway validated.

use crate::error::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use psa_domain::caller::{Caller, Role, WorkspaceType};
use psa_domain::{UserId, WorkspaceId};

/// The caller from `requestContext.authorizer.jwt.claims` (contract). Anything missing or
/// unparseable is a 401: API Gateway validated the token, so a bad claim is not the user's typo.
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| &j.claims),
        _ => None,
    }
    .ok_or(ApiError::Unauthenticated)?;
    let claim = |name: &str| {
        claims
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let caller = (|| {
        Some(Caller {
            user: UserId::parse(claim("sub")?).ok()?,
            workspace: WorkspaceId::parse(claim("workspace_id")?).ok()?,
            workspace_type: WorkspaceType::parse(claim("workspace_type")?)?,
            role: Role::parse(claim("role")?)?,
            // Optional; one that is no plain address is simply not used.
            email: claim("email")
                .filter(|e| psa_domain::connector::is_notify_address(e))
                .map(str::to_owned),
        })
    })()
    .ok_or(ApiError::Unauthenticated)?;
    // A workspace no token secret can be named after could never be connected: say so here,
    // before anything is verified or written (not as a 500 at connect).
    if !caller.workspace.names_a_secret() {
        return Err(ApiError::InvalidWorkspace);
    }
    Ok(caller)
}
