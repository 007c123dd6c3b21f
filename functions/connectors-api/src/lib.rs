//! Connectors API: one handler for every route of the HTTP API contract that this function serves.
//! `main.rs` builds the [`App`] once; tests call [`handle`] with real API Gateway v2 payloads.

pub mod http;
pub mod view;

use crate::http::{Problem, Route, caller, json, json_body, route, with_location};
use lambda_http::RequestExt;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use psa_domain::usecase::Core;
use psa_domain::usecase::connectors::{self, ConnectorError};
use psa_domain::usecase::sync::{self, RequestError, SyncPolicy};
use psa_domain::usecase::views::{self, UsageState, ViewError};
use psa_domain::{ApiToken, ConnectorType, Outcome, SettingsPatch, TokenError};
use serde::Deserialize;
use tracing::Instrument;

/// What the handler needs, built once per process.
#[derive(Clone)]
pub struct App {
    pub core: Core,
    pub policy: SyncPolicy,
}

impl App {
    pub fn new(platform: &psa_runtime::Platform) -> Self {
        Self {
            core: platform.core.clone(),
            policy: platform.settings.sync.clone(),
        }
    }
}

/// Sync-history page size: default and cap.
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    #[serde(rename = "type")]
    kind: String,
    api_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenBody {
    api_token: String,
}

/// `Retry-After` of a 503 `gradient_unavailable` (Gradient's retries inside the call are spent).
pub const GRADIENT_RETRY_AFTER_SECS: u64 = 60;

const CONNECTOR_LOCATION: &str = "/v1/psa/connectors/gradient";

/// The span of one request: every log line of it carries the Lambda request id, then the
/// workspace, connector and run ids as soon as they are known ([`note_route`], [`note_run`]).
/// At error level, so it is on every line whatever `RUST_LOG` lets through.
pub fn request_span(req: &Request) -> tracing::Span {
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.as_str())
        .unwrap_or_default();
    tracing::error_span!(
        "request",
        request_id,
        workspace_id = tracing::field::Empty,
        connector_id = tracing::field::Empty,
        run_id = tracing::field::Empty,
        route = tracing::field::Empty,
    )
}

/// Records the route's connector (when it names a known one) and run on the request's span.
fn note_route(route: &Route) {
    let span = tracing::Span::current();
    span.record("route", tracing::field::debug(route));
    let (connector, run) = match route {
        Route::CreateConnector => (Some(ConnectorType::Gradient.as_str()), None),
        Route::GetConnector(c)
        | Route::PatchConnector(c)
        | Route::PutToken(c)
        | Route::DeleteConnector(c)
        | Route::RequestSync(c)
        | Route::ListSyncs(c)
        | Route::Usage(c) => (ConnectorType::parse(c).map(ConnectorType::as_str), None),
        Route::ReleaseSync(c, r) | Route::GetSync(c, r) | Route::ListReadings(c, r) => {
            (ConnectorType::parse(c).map(ConnectorType::as_str), Some(r))
        }
        Route::ListConnectors | Route::Audit | Route::Services => (None, None),
    };
    if let Some(c) = connector {
        span.record("connector_id", c);
    }
    if let Some(r) = run {
        note_run(r);
    }
}

/// Records a run id on the request's span (a run the request names or creates).
fn note_run(run: &psa_domain::RunId) {
    tracing::Span::current().record("run_id", run.as_str());
}

/// Entry point for one request: never panics on input, never answers 5xx for bad input.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let span = request_span(&req);
    handle_in_span(app, req).instrument(span).await
}

async fn handle_in_span(app: &App, req: Request) -> Response<Body> {
    match dispatch(app, &req).await {
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

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>, Problem> {
    let caller = caller(req)?;
    tracing::Span::current().record("workspace_id", caller.workspace.as_str());
    let route = route(req.method(), http::request_path(req))?;
    note_route(&route);
    if route.admin_only() {
        caller.may_write()?;
    } else {
        caller.may_read()?;
    }
    match route {
        Route::Services => Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "items": view::services(&app.core.catalogue) }),
        )),
        Route::ListConnectors => {
            let items: Vec<_> = connectors::list(&app.core, &caller)
                .await
                .map_err(map_error)?
                .iter()
                .map(view::ConnectorView::from)
                .collect();
            Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
        }
        Route::CreateConnector => {
            let body: CreateBody = json_body(req)?;
            if ConnectorType::parse(&body.kind).is_none() {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_connector_type",
                    "Unsupported connector type",
                    "the only supported connector type is `gradient`",
                ));
            }
            let token = parse_token(&body.api_token)?;
            let (connector, _) = connectors::connect(&app.core, &app.policy, &caller, token)
                .await
                .map_err(map_error)?;
            let resp = json(StatusCode::CREATED, &view::ConnectorView::from(&connector));
            Ok(with_location(resp, CONNECTOR_LOCATION))
        }
        Route::GetConnector(id) => {
            own_connector(&id)?;
            let connector = connectors::get(&app.core, &caller)
                .await
                .map_err(map_error)?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::PatchConnector(id) => {
            own_connector(&id)?;
            let patch = settings_patch(req)?;
            let connector = connectors::update_settings(&app.core, &caller, patch)
                .await
                .map_err(map_error)?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::PutToken(id) => {
            own_connector(&id)?;
            let body: TokenBody = json_body(req)?;
            let token = parse_token(&body.api_token)?;
            let (connector, _) = connectors::retoken(&app.core, &app.policy, &caller, token)
                .await
                .map_err(map_error)?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::DeleteConnector(id) => {
            own_connector(&id)?;
            connectors::delete(&app.core, &app.policy, &caller)
                .await
                .map_err(map_error)?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .expect("static response parts"))
        }
        Route::RequestSync(id) => {
            own_connector(&id)?;
            let run = sync::request_sync(&app.core, &app.policy, &caller)
                .await
                .map_err(map_request_error)?;
            note_run(&run.run_id);
            let body = serde_json::json!({"runId": run.run_id, "status": "queued"});
            Ok(with_location(
                json(StatusCode::ACCEPTED, &body),
                &format!("{CONNECTOR_LOCATION}/syncs/{}", run.run_id),
            ))
        }
        Route::ReleaseSync(id, held) => {
            own_connector(&id)?;
            let run = sync::release_run(&app.core, &app.policy, &caller, &held)
                .await
                .map_err(map_request_error)?;
            note_run(&run.run_id);
            let body = serde_json::json!({"runId": run.run_id, "status": "queued"});
            Ok(with_location(
                json(StatusCode::ACCEPTED, &body),
                &format!("{CONNECTOR_LOCATION}/syncs/{}", run.run_id),
            ))
        }
        Route::ListSyncs(id) => {
            own_connector(&id)?;
            let q = PageQuery::from(req)?;
            let page = views::runs(&app.core, &caller, q.limit, q.cursor.as_deref())
                .await
                .map_err(map_view_error)?;
            let items: Vec<_> = page.items.iter().map(view::RunView::from).collect();
            Ok(json(StatusCode::OK, &paged(items, page.next)))
        }
        Route::GetSync(id, run_id) => {
            own_connector(&id)?;
            let run = views::run(&app.core, &caller, &run_id)
                .await
                .map_err(map_view_error)?;
            Ok(json(StatusCode::OK, &view::RunView::from(&run)))
        }
        Route::ListReadings(id, run_id) => {
            own_connector(&id)?;
            let q = PageQuery::from(req)?;
            let outcome = q.choice(
                "outcome",
                Outcome::parse,
                &Outcome::ALL.map(Outcome::as_str),
            )?;
            let page = views::readings(
                &app.core,
                &caller,
                &run_id,
                outcome,
                q.limit,
                q.cursor.as_deref(),
            )
            .await
            .map_err(map_view_error)?;
            Ok(json(StatusCode::OK, &paged(page.items, page.next)))
        }
        Route::Usage(id) => {
            own_connector(&id)?;
            let q = PageQuery::from(req)?;
            let state = q.choice(
                "state",
                UsageState::parse,
                &UsageState::ALL.map(UsageState::as_str),
            )?;
            let usage = views::usage(
                &app.core,
                &app.policy,
                &caller,
                state,
                q.limit,
                q.cursor.as_deref(),
            )
            .await
            .map_err(map_view_error)?;
            let mut body = serde_json::json!({
                "summary": usage.summary,
                "items": usage.page.items,
            });
            if let Some(next) = usage.page.next {
                body["nextCursor"] = next.into();
            }
            Ok(json(StatusCode::OK, &body))
        }
        Route::Audit => {
            let q = PageQuery::from(req)?;
            let page = views::audit(&app.core, &caller, q.limit, q.cursor.as_deref())
                .await
                .map_err(map_view_error)?;
            Ok(json(StatusCode::OK, &paged(page.items, page.next)))
        }
    }
}

/// The body of `PATCH /v1/psa/connectors/{id}`: `{"settings": {"guardDropPercent"?: 1–100 or
/// null, "psaAlerts"?: bool}}`. Anything else — another value, type or key — is 400
/// `invalid_settings` (malformed JSON stays `invalid_body`).
fn settings_patch(req: &Request) -> Result<SettingsPatch, Problem> {
    let body: serde_json::Value = json_body(req)?;
    let bad = |detail: &str| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_settings",
            "Invalid settings",
            detail.to_owned(),
        )
    };
    let top = body
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| bad("the body must be {\"settings\": {...}}"))?;
    let settings = top
        .get("settings")
        .and_then(|s| s.as_object())
        .ok_or_else(|| bad("settings must be an object"))?;
    let mut patch = SettingsPatch::default();
    for (key, value) in settings {
        match key.as_str() {
            "guardDropPercent" => {
                patch.guard_drop_percent = Some(match value {
                    serde_json::Value::Null => None,
                    v => Some(
                        v.as_u64()
                            .filter(|n| (1..=100).contains(n))
                            .map(|n| n as u8)
                            .ok_or_else(|| {
                                bad("guardDropPercent must be a whole number from 1 to 100, or null")
                            })?,
                    ),
                });
            }
            "psaAlerts" => {
                patch.psa_alerts = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| bad("psaAlerts must be true or false"))?,
                );
            }
            _ => return Err(bad("settings may hold only guardDropPercent and psaAlerts")),
        }
    }
    Ok(patch)
}

/// `{"items": [...], "nextCursor"?}` (no `nextCursor` on the last page).
fn paged<T: serde::Serialize>(items: Vec<T>, next: Option<String>) -> serde_json::Value {
    let mut body = serde_json::json!({ "items": items });
    if let Some(next) = next {
        body["nextCursor"] = next.into();
    }
    body
}

/// `limit` (1–100, default 20) and `cursor` of every paged route, and its one filter.
struct PageQuery {
    limit: u32,
    cursor: Option<String>,
    params: lambda_http::aws_lambda_events::query_map::QueryMap,
}

impl PageQuery {
    fn from(req: &Request) -> Result<Self, Problem> {
        let params = req.query_string_parameters();
        let limit = match params.first("limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    invalid_query(format!("limit must be a whole number from 1 to {MAX_PAGE}"))
                })?,
        };
        let cursor = params.first("cursor").map(str::to_owned);
        if cursor.as_deref() == Some("") {
            return Err(invalid_cursor());
        }
        Ok(Self {
            limit,
            cursor,
            params,
        })
    }

    /// An optional filter that must be one of `allowed`.
    fn choice<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Result<Option<T>, Problem> {
        match self.params.first(name) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                invalid_query(format!("{name} must be one of {}", allowed.join(", ")))
            }),
        }
    }
}

fn invalid_query(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "Invalid query",
        detail,
    )
}

fn invalid_cursor() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "Invalid cursor",
        "cursor must be a nextCursor this API returned",
    )
}

fn map_view_error(e: ViewError) -> Problem {
    match e {
        ViewError::ConnectorNotFound => Problem::connector_not_found(),
        ViewError::RunNotFound => Problem::run_not_found(),
        ViewError::InvalidCursor => invalid_cursor(),
        ViewError::Internal(cause) => Problem::internal(&cause),
    }
}

fn map_request_error(e: RequestError) -> Problem {
    match e {
        RequestError::NotFound => Problem::connector_not_found(),
        RequestError::Disconnected { reason } => Problem::new(
            StatusCode::CONFLICT,
            "connector_disconnected",
            "Connector disconnected",
            match reason.as_deref() {
                Some("token_rejected") => {
                    "Gradient rejected the token; paste the new API token to reconnect".to_owned()
                }
                _ => "the connector is not connected; replace its token to reconnect".to_owned(),
            },
        ),
        RequestError::InProgress(run) => Problem::new(
            StatusCode::CONFLICT,
            "sync_in_progress",
            "Sync in progress",
            format!("run {run} is already queued or running"),
        ),
        RequestError::TooSoon(wait) => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sync_too_soon",
                "Sync requested too often",
                "a sync was requested moments ago; try again later",
            );
            p.retry_after =
                Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).map(|s| s.max(1));
            p
        }
        RequestError::RunNotFound => Problem::run_not_found(),
        RequestError::RunNotHeld => Problem::new(
            StatusCode::CONFLICT,
            "run_not_held",
            "Run not held",
            "only the connector's latest run can be released, and only while it is held",
        ),
        RequestError::Internal(cause) => Problem::internal(&cause),
    }
}

/// The only connector id is `gradient`; anything else is not found (never "forbidden").
fn own_connector(id: &str) -> Result<(), Problem> {
    ConnectorType::parse(id)
        .map(|_| ())
        .ok_or_else(Problem::connector_not_found)
}

fn parse_token(raw: &str) -> Result<ApiToken, Problem> {
    ApiToken::parse(raw).map_err(|e| {
        let detail = match e {
            TokenError::Empty => "apiToken must not be empty",
            TokenError::TooLong => "apiToken is too long",
            TokenError::BadCharacters => "apiToken must not contain spaces or control characters",
        };
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Invalid API token",
            detail,
        )
    })
}

fn map_error(e: ConnectorError) -> Problem {
    match e {
        ConnectorError::NotFound => Problem::connector_not_found(),
        ConnectorError::Exists => Problem::new(
            StatusCode::CONFLICT,
            "connector_exists",
            "Connector exists",
            "this workspace already has a Gradient connector; replace its token instead",
        ),
        ConnectorError::TokenRejected => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "token_rejected",
            "Token rejected",
            "Gradient did not accept this API token; copy a new one from Synthesize (Integrations → Coro)",
        ),
        ConnectorError::GradientRefused(why) => {
            tracing::warn!(%why, "Gradient refused a connector call");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "gradient_refused",
                "Gradient refused the request",
                "Gradient refused the request; try again later or contact support",
            )
        }
        ConnectorError::GradientUnavailable(why) => {
            tracing::warn!(%why, "Gradient unavailable");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gradient_unavailable",
                "Gradient unavailable",
                "Gradient could not be reached; try again in a few minutes",
            );
            p.retry_after = Some(GRADIENT_RETRY_AFTER_SECS); // contract: 503 with Retry-After
            p
        }
        ConnectorError::TooManyAttempts(wait) => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many attempts",
                "too many API tokens were checked for this workspace; try again later",
            );
            p.retry_after = Some(wait.as_secs().max(1));
            p
        }
        ConnectorError::Internal(cause) => Problem::internal(&cause),
    }
}
