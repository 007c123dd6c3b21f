//! Every way a request can fail, typed — and [`ApiError::problem`], the one place where each
//! becomes an HTTP status, a stable problem `code` (the contract's table) and a human `detail`.
//! 5xx bodies are opaque; their log line carries the whole cause chain.

use crate::problem::Problem;
use lambda_http::http::{Method, StatusCode};
use psa_domain::caller::AccessError;
use psa_domain::usecase::connectors::ConnectorError;
use psa_domain::usecase::sync::RequestError;
use psa_domain::usecase::views::ViewError;
use psa_domain::{ConnectorType, TokenError};
use std::time::Duration;

/// `Retry-After` of a 503 `gradient_unavailable` (the PSA client's retries inside the call are
/// spent).
pub const GRADIENT_RETRY_AFTER_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    // ---- the edge: claims, route, body, query
    #[error("the request carries no valid caller claims")]
    Unauthenticated,
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The `workspace_id` claim is a workspace id no partner-token secret can be named after
    /// (Secrets Manager allows only letters, digits and `/_+=.@-`).
    #[error("the workspace id cannot name a connector")]
    InvalidWorkspace,
    /// The workspace is over `API_WORKSPACE_RPS`; try again after the wait.
    #[error("too many requests from this workspace; try again in {0:?}")]
    TooManyRequests(Duration),
    #[error("no such route")]
    RouteNotFound,
    #[error("{0} is not allowed on this route")]
    MethodNotAllowed(Method),
    #[error("the body is over {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body is not JSON")]
    UnsupportedMediaType,
    /// The detail never echoes a value from the body (it may be a token).
    #[error("invalid body: {0}")]
    InvalidBody(String),
    #[error("invalid API token")]
    InvalidToken(#[from] TokenError),
    #[error("unsupported connector type")]
    UnsupportedConnectorType,
    #[error("invalid settings: {0}")]
    InvalidSettings(&'static str),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid cursor")]
    InvalidCursor,
    /// A connector id in the path that names no connector type (never "forbidden").
    #[error("no such connector")]
    ConnectorNotFound,
    /// A run id in the path that no run can have.
    #[error("no such run")]
    RunNotFound,
    // ---- the use cases
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    View(#[from] ViewError),
}

fn problem(status: StatusCode, code: &'static str, title: &'static str, detail: &str) -> Problem {
    Problem {
        status,
        code,
        title,
        detail: detail.to_owned(),
        retry_after: None,
    }
}

/// Seconds to wait, rounded up (at least 1).
fn retry_after(mut p: Problem, wait: Duration) -> Problem {
    p.retry_after = Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
    p
}

/// `error: cause: cause…` — for the log only.
pub fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl ApiError {
    /// The answer to this error. Logs what the body does not say: the cause of a 5xx (error
    /// level) and of a PSA refusal or outage (warn level).
    pub fn problem(&self) -> Problem {
        use StatusCode as S;
        let not_found = || {
            problem(
                S::NOT_FOUND,
                "connector_not_found",
                "Connector not found",
                "this workspace has no such connector",
            )
        };
        let run_not_found = || {
            problem(
                S::NOT_FOUND,
                "run_not_found",
                "Run not found",
                "this connector has no such sync run",
            )
        };
        let invalid_cursor = || {
            problem(
                S::BAD_REQUEST,
                "invalid_cursor",
                "Invalid cursor",
                "cursor must be a nextCursor this API returned",
            )
        };
        let internal = || {
            tracing::error!(error = %cause_chain(self), "request failed");
            problem(
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the request could not be completed; it is safe to retry",
            )
        };
        match self {
            Self::Unauthenticated => problem(
                S::UNAUTHORIZED,
                "unauthenticated",
                "Unauthenticated",
                "the request carries no valid caller claims",
            ),
            Self::Access(AccessError::NotChannelWorkspace) => problem(
                S::FORBIDDEN,
                "not_channel_workspace",
                "Not a channel workspace",
                "PSA connectors can only be configured in a channel workspace",
            ),
            Self::Access(AccessError::AdminRequired) => problem(
                S::FORBIDDEN,
                "admin_required",
                "Admin role required",
                "only admins of the channel workspace may change its connectors",
            ),
            Self::InvalidWorkspace => problem(
                S::BAD_REQUEST,
                "invalid_workspace",
                "Invalid workspace",
                "the caller's workspace id may hold only letters, digits and _.@- to have a connector",
            ),
            Self::TooManyRequests(wait) => retry_after(
                problem(
                    S::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "Too many requests",
                    "this workspace sends more requests than it may; slow down and try again",
                ),
                *wait,
            ),
            Self::RouteNotFound => {
                problem(S::NOT_FOUND, "not_found", "Not found", "no such resource")
            }
            Self::MethodNotAllowed(m) => problem(
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                &format!("{m} is not allowed here"),
            ),
            Self::PayloadTooLarge { limit } => problem(
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                &format!("the body may be at most {limit} bytes"),
            ),
            Self::UnsupportedMediaType => problem(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as application/json",
            ),
            Self::InvalidBody(detail) => problem(
                S::BAD_REQUEST,
                "invalid_body",
                "Invalid request body",
                detail,
            ),
            Self::InvalidToken(e) => problem(
                S::BAD_REQUEST,
                "invalid_token",
                "Invalid API token",
                match e {
                    TokenError::Empty => "apiToken must not be empty",
                    TokenError::TooLong => "apiToken is too long",
                    TokenError::BadCharacters => {
                        "apiToken must not contain spaces or control characters"
                    }
                },
            ),
            Self::UnsupportedConnectorType => problem(
                S::BAD_REQUEST,
                "unsupported_connector_type",
                "Unsupported connector type",
                &format!(
                    "supported connector types: {}",
                    ConnectorType::ALL
                        .iter()
                        .map(|t| format!("`{}`", t.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Self::InvalidSettings(detail) => problem(
                S::BAD_REQUEST,
                "invalid_settings",
                "Invalid settings",
                detail,
            ),
            Self::InvalidQuery(detail) => {
                problem(S::BAD_REQUEST, "invalid_query", "Invalid query", detail)
            }
            Self::InvalidCursor | Self::View(ViewError::InvalidCursor) => invalid_cursor(),
            Self::ConnectorNotFound
            | Self::Connector(ConnectorError::NotFound)
            | Self::Request(RequestError::NotFound)
            | Self::View(ViewError::ConnectorNotFound) => not_found(),
            Self::RunNotFound
            | Self::Request(RequestError::RunNotFound)
            | Self::View(ViewError::RunNotFound) => run_not_found(),
            Self::Connector(ConnectorError::Exists) => problem(
                S::CONFLICT,
                "connector_exists",
                "Connector exists",
                "this workspace already has a Gradient connector; replace its token instead",
            ),
            Self::Connector(ConnectorError::TokenRejected) => problem(
                S::UNPROCESSABLE_ENTITY,
                "token_rejected",
                "Token rejected",
                "Gradient did not accept this API token; copy a new one from Synthesize (Integrations → Coro)",
            ),
            Self::Connector(ConnectorError::PsaRefused(e)) => {
                tracing::warn!(error = %cause_chain(e), "Gradient refused a connector call");
                problem(
                    S::BAD_GATEWAY,
                    "gradient_refused",
                    "Gradient refused the request",
                    "Gradient refused the request; try again later or contact support",
                )
            }
            Self::Connector(ConnectorError::PsaUnavailable(e)) => {
                tracing::warn!(error = %cause_chain(e), "Gradient unavailable");
                let mut p = problem(
                    S::SERVICE_UNAVAILABLE,
                    "gradient_unavailable",
                    "Gradient unavailable",
                    "Gradient could not be reached; try again in a few minutes",
                );
                p.retry_after = Some(GRADIENT_RETRY_AFTER_SECS); // contract: 503 with Retry-After
                p
            }
            Self::Connector(ConnectorError::TooManyAttempts(wait)) => retry_after(
                problem(
                    S::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "Too many attempts",
                    "too many API tokens were checked for this workspace; try again later",
                ),
                *wait,
            ),
            Self::Connector(ConnectorError::TooManyChanges(wait)) => retry_after(
                problem(
                    S::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "Too many changes",
                    "this workspace changed its connector settings too often; try again later",
                ),
                *wait,
            ),
            Self::Connector(ConnectorError::OrganizationInUse) => problem(
                S::CONFLICT,
                "organization_in_use",
                "Organization in use",
                "this token reaches a Gradient organization that another Coro workspace is connected to",
            ),
            Self::Connector(ConnectorError::OrganizationMismatch) => problem(
                S::CONFLICT,
                "organization_mismatch",
                "Organization mismatch",
                "this token reaches another Gradient organization than the connector's; delete the connector and connect again",
            ),
            Self::Request(RequestError::Disconnected { reason }) => problem(
                S::CONFLICT,
                "connector_disconnected",
                "Connector disconnected",
                match reason.as_deref() {
                    Some(psa_domain::connector::reason::TOKEN_REJECTED) => {
                        "Gradient rejected the token; paste the new API token to reconnect"
                    }
                    _ => "the connector is not connected; replace its token to reconnect",
                },
            ),
            Self::Request(RequestError::InProgress(run)) => problem(
                S::CONFLICT,
                "sync_in_progress",
                "Sync in progress",
                &format!("run {run} is already queued or running"),
            ),
            Self::Request(RequestError::TooSoon(wait)) => retry_after(
                problem(
                    S::TOO_MANY_REQUESTS,
                    "sync_too_soon",
                    "Sync requested too often",
                    "a sync was requested moments ago; try again later",
                ),
                *wait,
            ),
            Self::Request(RequestError::RunNotHeld) => problem(
                S::CONFLICT,
                "run_not_held",
                "Run not held",
                "only the connector's latest run can be released, and only while it is held",
            ),
            Self::Connector(ConnectorError::Store(_) | ConnectorError::Vault(_))
            | Self::Request(RequestError::Store(_))
            | Self::View(ViewError::Store(_) | ViewError::Psa(_)) => internal(),
        }
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        e.problem()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psa_domain::ports::{PsaError, StoreError};

    #[test]
    fn codes_and_statuses_of_the_contract() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::Unauthenticated, 401, "unauthenticated"),
            (AccessError::AdminRequired.into(), 403, "admin_required"),
            (ApiError::RouteNotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed(Method::PUT),
                405,
                "method_not_allowed",
            ),
            (TokenError::Empty.into(), 400, "invalid_token"),
            (ConnectorError::NotFound.into(), 404, "connector_not_found"),
            (ViewError::RunNotFound.into(), 404, "run_not_found"),
            (ViewError::InvalidCursor.into(), 400, "invalid_cursor"),
            (ConnectorError::Exists.into(), 409, "connector_exists"),
            (ConnectorError::TokenRejected.into(), 422, "token_rejected"),
            (
                ConnectorError::PsaRefused(PsaError::Forbidden("x".into())).into(),
                502,
                "gradient_refused",
            ),
            (
                ConnectorError::PsaUnavailable(PsaError::Unavailable {
                    what: "down".into(),
                    retry_after: None,
                })
                .into(),
                503,
                "gradient_unavailable",
            ),
            (
                RequestError::TooSoon(Duration::from_millis(1500)).into(),
                429,
                "sync_too_soon",
            ),
            (RequestError::RunNotHeld.into(), 409, "run_not_held"),
            (
                ConnectorError::OrganizationInUse.into(),
                409,
                "organization_in_use",
            ),
            (
                ConnectorError::OrganizationMismatch.into(),
                409,
                "organization_mismatch",
            ),
            (
                ApiError::TooManyRequests(Duration::from_millis(300)),
                429,
                "too_many_requests",
            ),
            (ApiError::InvalidWorkspace, 400, "invalid_workspace"),
            (
                ViewError::Store(StoreError("ddb: secret detail".into())).into(),
                500,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let p = e.problem();
            assert_eq!((p.status.as_u16(), p.code), (status, code), "{e:?}");
            assert!(!p.detail.contains("secret detail"), "5xx bodies are opaque");
        }
        let p = ApiError::from(RequestError::TooSoon(Duration::from_millis(1500))).problem();
        assert_eq!(p.retry_after, Some(2), "Retry-After rounds up");
        let p = ApiError::TooManyRequests(Duration::from_millis(300)).problem();
        assert_eq!(p.retry_after, Some(1), "at least a second");
    }

    #[test]
    fn the_log_gets_the_whole_cause_chain() {
        let e = ApiError::from(ConnectorError::Store(StoreError("put: throttled".into())));
        assert_eq!(
            cause_chain(&e),
            "the connector store failed: store failure: put: throttled"
        );
    }
}
