//! The route table of the HTTP API contract.

use crate::error::ApiError;
use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};
use psa_domain::RunId;

/// Every route of the HTTP API contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ListConnectors,
    CreateConnector,
    GetConnector(String),
    PatchConnector(String),
    PutToken(String),
    DeleteConnector(String),
    RequestSync(String),
    ReleaseSync(String, RunId),
    ListSyncs(String),
    GetSync(String, RunId),
    ListReadings(String, RunId),
    Usage(String),
    Audit,
    Services,
}

impl Route {
    /// Reads need any role; writes need an admin.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::CreateConnector
                | Self::PatchConnector(_)
                | Self::PutToken(_)
                | Self::DeleteConnector(_)
                | Self::RequestSync(_)
                | Self::ReleaseSync(..)
        )
    }

    /// Routes only admins may read (the audit trail names users and actions).
    pub fn admin_only(&self) -> bool {
        self.is_write() || matches!(self, Self::Audit)
    }
}

/// Every (method, path template) the router serves: the list `route()` is tested against and
/// `openapi.yaml` is compared with (`tests/tests/it/openapi.rs`). Path parameters are `{connectorId}`
/// and `{runId}`. `POST .../sync` and `POST .../syncs/{runId}/release` are served in AWS by the
/// sync-on-demand function (same edge), the rest by connectors-api.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/psa/connectors"),
    ("POST", "/v1/psa/connectors"),
    ("GET", "/v1/psa/connectors/{connectorId}"),
    ("PATCH", "/v1/psa/connectors/{connectorId}"),
    ("DELETE", "/v1/psa/connectors/{connectorId}"),
    ("PUT", "/v1/psa/connectors/{connectorId}/token"),
    ("POST", "/v1/psa/connectors/{connectorId}/sync"),
    ("GET", "/v1/psa/connectors/{connectorId}/syncs"),
    ("GET", "/v1/psa/connectors/{connectorId}/syncs/{runId}"),
    (
        "GET",
        "/v1/psa/connectors/{connectorId}/syncs/{runId}/readings",
    ),
    (
        "POST",
        "/v1/psa/connectors/{connectorId}/syncs/{runId}/release",
    ),
    ("GET", "/v1/psa/connectors/{connectorId}/usage"),
    ("GET", "/v1/psa/audit"),
    ("GET", "/v1/psa/services"),
];

impl Route {
    /// The (method, path template) of [`ROUTES`] this route answers.
    pub fn template(&self) -> (&'static str, &'static str) {
        match self {
            Self::ListConnectors => ("GET", "/v1/psa/connectors"),
            Self::CreateConnector => ("POST", "/v1/psa/connectors"),
            Self::GetConnector(_) => ("GET", "/v1/psa/connectors/{connectorId}"),
            Self::PatchConnector(_) => ("PATCH", "/v1/psa/connectors/{connectorId}"),
            Self::DeleteConnector(_) => ("DELETE", "/v1/psa/connectors/{connectorId}"),
            Self::PutToken(_) => ("PUT", "/v1/psa/connectors/{connectorId}/token"),
            Self::RequestSync(_) => ("POST", "/v1/psa/connectors/{connectorId}/sync"),
            Self::ListSyncs(_) => ("GET", "/v1/psa/connectors/{connectorId}/syncs"),
            Self::GetSync(..) => ("GET", "/v1/psa/connectors/{connectorId}/syncs/{runId}"),
            Self::ListReadings(..) => (
                "GET",
                "/v1/psa/connectors/{connectorId}/syncs/{runId}/readings",
            ),
            Self::ReleaseSync(..) => (
                "POST",
                "/v1/psa/connectors/{connectorId}/syncs/{runId}/release",
            ),
            Self::Usage(_) => ("GET", "/v1/psa/connectors/{connectorId}/usage"),
            Self::Audit => ("GET", "/v1/psa/audit"),
            Self::Services => ("GET", "/v1/psa/services"),
        }
    }
}

/// The path to route on: the event's raw path as the client sent it (API Gateway's `rawPath`),
/// not the URI lambda_http builds from it, which resolves dot segments — also percent-encoded
/// ones — so `.../syncs/%2e%2e` would otherwise route to the connector itself.
pub fn request_path(req: &Request) -> &str {
    match req.raw_http_path() {
        "" => req.uri().path(),
        raw => raw,
    }
}

/// One route table on the request path: works for API Gateway events (with or without a stage
/// prefix) and for the Function-URL events `cargo lambda watch` sends (no path parameters).
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let start = path.find("/v1/psa/").ok_or(ApiError::RouteNotFound)?;
    let rest = path[start + "/v1/psa/".len()..].trim_end_matches('/');
    let parts: Vec<&str> = rest.split('/').collect();
    let m = method.clone();
    let allowed = |ok: &[Method], r: Route| -> Result<Route, ApiError> {
        if ok.contains(&m) {
            Ok(r)
        } else {
            Err(ApiError::MethodNotAllowed(m.clone()))
        }
    };
    match parts.as_slice() {
        ["services"] => allowed(&[Method::GET], Route::Services),
        ["connectors"] => {
            if m == Method::POST {
                Ok(Route::CreateConnector)
            } else {
                allowed(&[Method::GET], Route::ListConnectors)
            }
        }
        ["connectors", id] => match m {
            Method::DELETE => Ok(Route::DeleteConnector(id.to_string())),
            Method::PATCH => Ok(Route::PatchConnector(id.to_string())),
            _ => allowed(&[Method::GET], Route::GetConnector(id.to_string())),
        },
        ["connectors", id, "token"] => allowed(&[Method::PUT], Route::PutToken(id.to_string())),
        ["connectors", id, "sync"] => allowed(&[Method::POST], Route::RequestSync(id.to_string())),
        ["connectors", id, "syncs"] => allowed(&[Method::GET], Route::ListSyncs(id.to_string())),
        ["connectors", id, "syncs", run] => {
            let run = RunId::parse(run).map_err(|_| ApiError::RunNotFound)?;
            allowed(&[Method::GET], Route::GetSync(id.to_string(), run))
        }
        ["connectors", id, "syncs", run, "release"] => {
            let run = RunId::parse(run).map_err(|_| ApiError::RunNotFound)?;
            allowed(&[Method::POST], Route::ReleaseSync(id.to_string(), run))
        }
        ["connectors", id, "syncs", run, "readings"] => {
            let run = RunId::parse(run).map_err(|_| ApiError::RunNotFound)?;
            allowed(&[Method::GET], Route::ListReadings(id.to_string(), run))
        }
        ["connectors", id, "usage"] => allowed(&[Method::GET], Route::Usage(id.to_string())),
        ["audit"] => allowed(&[Method::GET], Route::Audit),
        _ => Err(ApiError::RouteNotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::StatusCode;

    #[test]
    fn routes_match_the_contract_with_or_without_a_prefix() {
        assert_eq!(
            route(&Method::GET, "/v1/psa/connectors").ok(),
            Some(Route::ListConnectors)
        );
        assert_eq!(
            route(&Method::POST, "/prod/v1/psa/connectors/").ok(),
            Some(Route::CreateConnector)
        );
        assert_eq!(
            route(&Method::PUT, "/v1/psa/connectors/gradient/token").ok(),
            Some(Route::PutToken("gradient".into()))
        );
        assert_eq!(
            route(
                &Method::GET,
                "/lambda-url/connectors-api/v1/psa/connectors/gradient/syncs/20261124T050000.000Z-x"
            )
            .ok(),
            Some(Route::GetSync(
                "gradient".into(),
                RunId::parse("20261124T050000.000Z-x").unwrap()
            ))
        );
        assert_eq!(
            route(&Method::PATCH, "/v1/psa/connectors/gradient").ok(),
            Some(Route::PatchConnector("gradient".into()))
        );
        assert_eq!(
            route(&Method::PUT, "/v1/psa/connectors/gradient")
                .unwrap_err()
                .problem()
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            route(&Method::GET, "/v1/psa/nope")
                .unwrap_err()
                .problem()
                .status,
            StatusCode::NOT_FOUND
        );
        // A run id no run can have is "no such run", not "no such route".
        assert_eq!(
            route(&Method::GET, "/v1/psa/connectors/gradient/syncs/%C2%84")
                .unwrap_err()
                .problem()
                .code,
            "run_not_found"
        );
    }

    /// `route()` serves exactly [`ROUTES`]: each listed pair routes to the route of that
    /// template, every other method on a listed path is 405, and each route variant is listed.
    #[test]
    fn route_serves_exactly_the_listed_routes() {
        let sample = |t: &str| {
            t.replace("{connectorId}", "gradient")
                .replace("{runId}", "20261124T050000.000Z-x")
        };
        let mut seen = std::collections::BTreeSet::new();
        for (m, t) in ROUTES {
            assert!(seen.insert((*m, *t)), "{m} {t} listed twice");
            let path = sample(t);
            for other in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
                let method = Method::from_bytes(other.as_bytes()).unwrap();
                let listed = ROUTES.contains(&(other, *t));
                match route(&method, &path) {
                    Ok(r) => {
                        assert!(listed, "{other} {t} is served but not in ROUTES");
                        assert_eq!(r.template(), (other, *t), "{other} {path}");
                    }
                    Err(e) => {
                        let p = e.problem();
                        assert!(!listed, "{other} {t} is listed but answers {}", p.code);
                        assert_eq!(p.status, StatusCode::METHOD_NOT_ALLOWED, "{other} {t}");
                    }
                }
            }
        }
        let run = || RunId::parse("r").unwrap();
        let id = || "gradient".to_string();
        let every_variant = [
            Route::ListConnectors,
            Route::CreateConnector,
            Route::GetConnector(id()),
            Route::PatchConnector(id()),
            Route::PutToken(id()),
            Route::DeleteConnector(id()),
            Route::RequestSync(id()),
            Route::ReleaseSync(id(), run()),
            Route::ListSyncs(id()),
            Route::GetSync(id(), run()),
            Route::ListReadings(id(), run()),
            Route::Usage(id()),
            Route::Audit,
            Route::Services,
        ];
        let templates: std::collections::BTreeSet<_> =
            every_variant.iter().map(Route::template).collect();
        assert_eq!(templates, seen, "ROUTES and the Route variants differ");
    }
}
