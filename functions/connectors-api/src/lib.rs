//! Connectors API: one handler for every route of the HTTP API contract that this function serves.
//! `main.rs` builds the [`App`] once; tests call [`handle`] with real API Gateway v2 payloads.

pub mod error;
pub mod export;
pub mod http;
pub mod limit;
pub mod view;

pub use crate::error::{ApiError, GRADIENT_RETRY_AFTER_SECS};
use crate::http::{Route, caller, json, json_body, route, with_location};
use lambda_http::RequestExt;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use psa_domain::usecase::Core;
use psa_domain::usecase::connectors;
use psa_domain::usecase::sync::{self, SyncPolicy};
use psa_domain::usecase::views::{self, UsageState};
use psa_domain::{ApiToken, ConnectorType, Outcome, SettingsPatch};
use serde::Deserialize;
use tracing::Instrument;

/// What the handler needs, built once per process.
#[derive(Clone)]
pub struct App {
    pub core: Core,
    pub policy: SyncPolicy,
    /// Each workspace's share of the API (`API_WORKSPACE_RPS`, across all instances).
    pub limiter: std::sync::Arc<limit::WorkspaceLimiter>,
    /// Whether this process has the sync queue: `POST …/sync` and `…/release` are served only
    /// where it is wired (the on-demand function); elsewhere they are 404, never a 500.
    pub serves_sync: bool,
    /// This process's lease of the deployment's Gradient budget, given back after every
    /// request that called Gradient (Lambda may freeze the process once it has answered).
    pub budget: Option<std::sync::Arc<psa_runtime::Budget>>,
}

impl App {
    pub fn new(platform: &psa_runtime::Platform) -> Self {
        Self {
            core: platform.core.clone(),
            policy: platform.settings.sync.clone(),
            limiter: std::sync::Arc::new(limit::WorkspaceLimiter::new(
                platform.settings.api_workspace_rps,
            )),
            serves_sync: platform.sqs.is_some(),
            budget: platform.budget.clone(),
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

/// Where a connector of type `kind` lives (its id is its type).
fn connector_location(kind: ConnectorType) -> String {
    format!("/v1/psa/connectors/{}", kind.as_str())
}

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
        Route::CreateConnector => (None, None), // recorded once the body names the type
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
    psa_domain::calls::scope(async {
        let response = handle_in_span(app, req).await;
        if let Some(budget) = &app.budget
            && !psa_domain::calls::current().is_zero()
        {
            // This request called Gradient: one read and one write. Requests that did not
            // leave a share this process may hold for other work (the local front, tests).
            budget.release().await;
        }
        response
    })
    .instrument(span)
    .await
}

async fn handle_in_span(app: &App, req: Request) -> Response<Body> {
    match dispatch(app, &req).await {
        Ok(resp) => resp,
        Err(e) => {
            let problem = e.problem();
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

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = caller(req)?;
    tracing::Span::current().record("workspace_id", caller.workspace.as_str());
    app.limiter
        .admit(app.core.attempts.as_ref(), &caller.workspace)
        .await?;
    let route = route(req.method(), http::request_path(req))?;
    note_route(&route);
    if matches!(route, Route::RequestSync(_) | Route::ReleaseSync(..)) && !app.serves_sync {
        return Err(ApiError::RouteNotFound); // served by the on-demand function
    }
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
                .await?
                .iter()
                .map(view::ConnectorView::from)
                .collect();
            Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
        }
        Route::CreateConnector => {
            let body: CreateBody = json_body(req)?;
            let kind = ConnectorType::parse(&body.kind)
                .filter(|k| app.core.psas.serves(*k))
                .ok_or(ApiError::UnsupportedConnectorType)?;
            tracing::Span::current().record("connector_id", kind.as_str());
            let token = parse_token(&body.api_token)?;
            let (connector, _) =
                connectors::connect(&app.core, &app.policy, &caller, kind, token).await?;
            let resp = json(StatusCode::CREATED, &view::ConnectorView::from(&connector));
            Ok(with_location(resp, &connector_location(kind)))
        }
        Route::GetConnector(id) => {
            let kind = own_connector(&id)?;
            let connector = connectors::get(&app.core, &caller, kind).await?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::PatchConnector(id) => {
            let kind = own_connector(&id)?;
            let patch = settings_patch(req)?;
            let connector =
                connectors::update_settings(&app.core, &app.policy, &caller, kind, patch).await?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::PutToken(id) => {
            let kind = own_connector(&id)?;
            let body: TokenBody = json_body(req)?;
            let token = parse_token(&body.api_token)?;
            let (connector, _) =
                connectors::retoken(&app.core, &app.policy, &caller, kind, token).await?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::DeleteConnector(id) => {
            let kind = own_connector(&id)?;
            connectors::delete(&app.core, &app.policy, &caller, kind).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .expect("static response parts"))
        }
        Route::RequestSync(id) => {
            let kind = own_connector(&id)?;
            let run = sync::request_sync(&app.core, &app.policy, &caller, kind).await?;
            note_run(&run.run_id);
            Ok(queued(&run))
        }
        Route::ReleaseSync(id, held) => {
            let kind = own_connector(&id)?;
            let run = sync::release_run(&app.core, &app.policy, &caller, kind, &held).await?;
            note_run(&run.run_id);
            Ok(queued(&run))
        }
        Route::ListSyncs(id) => {
            let kind = own_connector(&id)?;
            let q = PageQuery::from(req)?;
            let page = views::runs(&app.core, &caller, kind, q.limit, q.cursor.as_deref()).await?;
            let items: Vec<_> = page.items.iter().map(view::RunView::from).collect();
            Ok(json(StatusCode::OK, &paged(items, page.next)))
        }
        Route::GetSync(id, run_id) => {
            let kind = own_connector(&id)?;
            let run = views::run(&app.core, &caller, kind, &run_id).await?;
            Ok(json(StatusCode::OK, &view::RunView::from(&run)))
        }
        Route::ListReadings(id, run_id) => {
            let kind = own_connector(&id)?;
            let q = PageQuery::from(req)?;
            let outcome = q.choice(
                "outcome",
                Outcome::parse,
                &Outcome::ALL.map(Outcome::as_str),
            )?;
            if export::wants_csv(&q.params)? {
                let all = views::all_readings(&app.core, &caller, kind, &run_id, outcome).await?;
                let csv = export::to_csv(
                    &export::READINGS_COLUMNS,
                    all.iter().map(export::reading_row),
                );
                let name = format!("{}-{run_id}-readings.csv", kind.as_str());
                return Ok(export::response(&name, csv));
            }
            let page = views::readings(
                &app.core,
                &caller,
                kind,
                &run_id,
                outcome,
                q.limit,
                q.cursor.as_deref(),
            )
            .await?;
            Ok(json(StatusCode::OK, &paged(page.items, page.next)))
        }
        Route::Usage(id) => {
            let kind = own_connector(&id)?;
            let q = PageQuery::from(req)?;
            let state = q.choice(
                "state",
                UsageState::parse,
                &UsageState::ALL.map(UsageState::as_str),
            )?;
            if export::wants_csv(&q.params)? {
                let every =
                    views::usage(&app.core, &app.policy, &caller, kind, state, u32::MAX, None)
                        .await?;
                let csv = export::to_csv(
                    &export::USAGE_COLUMNS,
                    every.page.items.iter().map(export::usage_row),
                );
                let today = time::OffsetDateTime::now_utc().date();
                let name = format!("{}-usage-{today}.csv", kind.as_str());
                return Ok(export::response(&name, csv));
            }
            let usage = views::usage(
                &app.core,
                &app.policy,
                &caller,
                kind,
                state,
                q.limit,
                q.cursor.as_deref(),
            )
            .await?;
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
            let page = views::audit(&app.core, &caller, q.limit, q.cursor.as_deref()).await?;
            Ok(json(StatusCode::OK, &paged(page.items, page.next)))
        }
    }
}

/// The body of `PATCH /v1/psa/connectors/{id}`: `{"settings": {"guardDropPercent"?: 1–100 or
/// null, "psaAlerts"?: bool, "notify"?: {"emails", "on"}}}`. Anything else — another value, type or key — is 400
/// `invalid_settings` (malformed JSON stays `invalid_body`).
fn settings_patch(req: &Request) -> Result<SettingsPatch, ApiError> {
    let body: serde_json::Value = json_body(req)?;
    let bad = ApiError::InvalidSettings;
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
            "notify" => patch.notify = Some(notify(value)?),
            _ => {
                return Err(bad(
                    "settings may hold only guardDropPercent, psaAlerts and notify",
                ));
            }
        }
    }
    Ok(patch)
}

/// `settings.notify` as a whole: `{"emails": [≤ 10 plain addresses], "on": "always" |
/// "problems" | "never"}`, both keys, nothing else.
fn notify(value: &serde_json::Value) -> Result<psa_domain::connector::NotifySettings, ApiError> {
    use psa_domain::connector::{NotifyError, NotifyOn, NotifySettings};
    let bad = ApiError::InvalidSettings;
    let shape =
        "notify must be {\"emails\": [addresses], \"on\": \"always\" | \"problems\" | \"never\"}";
    let o = value
        .as_object()
        .filter(|o| o.len() == 2 && o.contains_key("emails") && o.contains_key("on"))
        .ok_or_else(|| bad(shape))?;
    let on = o["on"]
        .as_str()
        .and_then(NotifyOn::parse)
        .ok_or_else(|| bad("notify.on must be always, problems or never"))?;
    let emails = o["emails"]
        .as_array()
        .ok_or_else(|| bad("notify.emails must be an array of addresses"))?
        .iter()
        .map(|e| e.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("notify.emails must be an array of addresses"))?;
    NotifySettings::new(emails, on).map_err(|e| {
        bad(match e {
            NotifyError::TooMany => "notify.emails may hold at most 10 addresses",
            NotifyError::BadAddress => {
                "notify.emails holds something that is not a plain email address"
            }
        })
    })
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
    fn from(req: &Request) -> Result<Self, ApiError> {
        let params = req.query_string_parameters();
        let limit = match params.first("limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidQuery(format!(
                        "limit must be a whole number from 1 to {MAX_PAGE}"
                    ))
                })?,
        };
        let cursor = params.first("cursor").map(str::to_owned);
        if cursor.as_deref() == Some("") {
            return Err(ApiError::InvalidCursor);
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
    ) -> Result<Option<T>, ApiError> {
        match self.params.first(name) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                ApiError::InvalidQuery(format!("{name} must be one of {}", allowed.join(", ")))
            }),
        }
    }
}

/// A connector's id is its type (`gradient`); anything else is not found (never "forbidden").
fn own_connector(id: &str) -> Result<ConnectorType, ApiError> {
    ConnectorType::parse(id).ok_or(ApiError::ConnectorNotFound)
}

/// 202 `{"runId", "status": "queued"}` with the run's `Location`.
fn queued(run: &psa_domain::SyncRun) -> Response<Body> {
    let body = serde_json::json!({"runId": run.run_id, "status": "queued"});
    with_location(
        json(StatusCode::ACCEPTED, &body),
        &format!(
            "{}/syncs/{}",
            connector_location(run.connector_id),
            run.run_id
        ),
    )
}

fn parse_token(raw: &str) -> Result<ApiToken, ApiError> {
    Ok(ApiToken::parse(raw)?)
}
