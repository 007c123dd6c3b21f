//! One request from its payload to its answer: the caller, the workspace's share of the API, the
//! route, the role it needs, the use case, and the answer (or the problem).

use crate::app::App;
use crate::body::{json, json_body, with_location};
use crate::error::ApiError;
use crate::input::{
    CreateBody, PageQuery, TokenBody, connector_location, own_connector, paged, parse_token,
    queued, settings_patch,
};
use crate::routes::{Route, request_path, route};
use crate::{claims::caller, export, view};
use lambda_http::RequestExt;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use psa_domain::usecase::connectors;
use psa_domain::usecase::sync;
use psa_domain::usecase::views::{self, UsageState};
use psa_domain::{ConnectorType, Outcome};
use tracing::Instrument;

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
    let route = route(req.method(), request_path(req))?;
    note_route(&route);
    if !serves(app, &route) {
        return Err(ApiError::RouteNotFound); // served by the other HTTP function
    }
    // Present wherever `serves` let the route through.
    let with_psa = || app.with_psa.as_ref().ok_or(ApiError::RouteNotFound);
    let with_queue = || app.with_queue.as_ref().ok_or(ApiError::RouteNotFound);
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
                .filter(|k| with_psa().is_ok_and(|p| p.psas.serves(*k)))
                .ok_or(ApiError::UnsupportedConnectorType)?;
            tracing::Span::current().record("connector_id", kind.as_str());
            let token = parse_token(&body.api_token)?;
            let (connector, _) =
                connectors::connect(with_psa()?, &app.policy, &caller, kind, token).await?;
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
                connectors::retoken(with_psa()?, &app.policy, &caller, kind, token).await?;
            Ok(json(StatusCode::OK, &view::ConnectorView::from(&connector)))
        }
        Route::DeleteConnector(id) => {
            let kind = own_connector(&id)?;
            connectors::delete(with_psa()?, &app.policy, &caller, kind).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .expect("static response parts"))
        }
        Route::RequestSync(id) => {
            let kind = own_connector(&id)?;
            let run = sync::request_sync(with_queue()?, &app.policy, &caller, kind).await?;
            note_run(&run.run_id);
            Ok(queued(&run))
        }
        Route::ReleaseSync(id, held) => {
            let kind = own_connector(&id)?;
            let run = sync::release_run(with_queue()?, &app.policy, &caller, kind, &held).await?;
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
                let every = views::usage(
                    with_psa()?,
                    &app.policy,
                    &caller,
                    kind,
                    state,
                    u32::MAX,
                    None,
                )
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
                with_psa()?,
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

/// Whether this process has the ports `route` needs; a route it has none for is the other HTTP
/// function's (404, before any role check).
fn serves(app: &App, route: &Route) -> bool {
    match route {
        Route::RequestSync(_) | Route::ReleaseSync(..) => app.with_queue.is_some(),
        Route::CreateConnector
        | Route::PutToken(_)
        | Route::DeleteConnector(_)
        | Route::Usage(_) => app.with_psa.is_some(),
        Route::ListConnectors
        | Route::GetConnector(_)
        | Route::PatchConnector(_)
        | Route::ListSyncs(_)
        | Route::GetSync(..)
        | Route::ListReadings(..)
        | Route::Audit
        | Route::Services => true,
    }
}
