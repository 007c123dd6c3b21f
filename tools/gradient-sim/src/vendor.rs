//! The vendor API (`/api/vendor-api/...`) with auth, rate limit, faults and the request log.

use crate::model::{Pair, RequestRecord, Service, SimAccount};
use crate::state::{CATEGORIES, STATUSES, Shared};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Gradient-style error: `{"statusCode": N, "message": "..."}`.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message.into(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"statusCode": self.0.as_u16(), "message": self.1});
        (self.0, axum::Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// The organization the partner key selected (set by the middleware).
#[derive(Clone)]
pub(crate) struct OrgId(pub String);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/vendor-api", get(vendor))
        .route("/api/vendor-api/organization", get(organization))
        .route(
            "/api/vendor-api/organization/status/{status}",
            patch(set_status),
        )
        .route(
            "/api/vendor-api/organization/accounts",
            get(list_accounts).post(create_accounts),
        )
        .route(
            "/api/vendor-api/organization/accounts/{id}",
            patch(update_account),
        )
        .route("/api/vendor-api/service", post(create_service))
        .route("/api/vendor-api/service/{id}", get(service))
        .route("/api/vendor-api/service/{id}/count", post(post_count))
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// Decodes `GRADIENT-TOKEN` and returns the organization id it selects.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("gradient-token")?.to_str().ok()?;
    let decoded = STANDARD.decode(raw.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (vendor_key, partner_key) = decoded.split_once(':')?;
    let inner = shared.lock();
    if vendor_key != inner.vendor_key {
        return None;
    }
    inner.org_by_key(partner_key).map(|o| o.id.clone())
}

enum Injected {
    None,
    TooMany(Option<u64>),
    Unavailable,
    Unauthorized,
    Forced(u16),
    Malformed,
}

/// Middleware on every vendor route: rate limit, auth, faults, then the request log.
async fn gate(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let org = authenticate(&shared, req.headers());

    let (admitted, max_rps, delay, injected) = {
        let mut inner = shared.lock();
        let max_rps = inner.max_rps;
        let admitted = inner.admit(arrived);
        let f = inner.faults.clone();
        let mut delay = Duration::from_millis(f.latency_ms);
        if f.slow_rate > 0.0 && inner.rng.random::<f64>() < f.slow_rate {
            delay += Duration::from_millis(f.slow_ms);
        }
        let injected = if let Some(s) = f.force_status {
            Injected::Forced(s)
        } else if f.unauthorized_after == Some(0) {
            Injected::Unauthorized
        } else if f.rate429 > 0.0 && inner.rng.random::<f64>() < f.rate429 {
            Injected::TooMany(f.retry_after_secs)
        } else if f.rate5xx > 0.0 && inner.rng.random::<f64>() < f.rate5xx {
            Injected::Unavailable
        } else if f.malformed_rate > 0.0 && inner.rng.random::<f64>() < f.malformed_rate {
            Injected::Malformed
        } else {
            Injected::None
        };
        (admitted, max_rps, delay, injected)
    };

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let response = if !admitted {
        let mut r = ApiError::new(
            429,
            format!("Request limit reached ({max_rps} requests a second)"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        match (&org, injected) {
            (None, _) | (_, Injected::Unauthorized) => {
                ApiError::new(401, "Unauthorized: invalid GRADIENT-TOKEN").into_response()
            }
            (_, Injected::Forced(403)) => {
                ApiError::new(403, "Anomaly detected with your API usage").into_response()
            }
            (_, Injected::Forced(s)) => {
                ApiError::new(s, format!("Injected status {s}")).into_response()
            }
            (_, Injected::TooMany(retry_after)) => {
                let mut r = ApiError::new(
                    429,
                    format!("Request limit reached ({max_rps} requests a second)"),
                )
                .into_response();
                if let Some(secs) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                r
            }
            (_, Injected::Unavailable) => ApiError::new(503, "Service Unavailable").into_response(),
            (_, Injected::Malformed) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"status\":\"succ",
            )
                .into_response(),
            (Some(org_id), Injected::None) => {
                req.extensions_mut().insert(OrgId(org_id.clone()));
                next.run(req).await
            }
        }
    };

    let status = response.status().as_u16();
    let since = arrived.duration_since(shared.started);
    let mut inner = shared.lock();
    if response.status().is_success()
        && let Some(n) = inner.faults.unauthorized_after
        && n > 0
    {
        inner.faults.unauthorized_after = Some(n - 1);
    }
    inner.log.push(RequestRecord {
        at_us: since.as_micros() as u64,
        at_ms: since.as_millis() as u64,
        method,
        path,
        organization_id: org,
        status,
    });
    response
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(400, format!("Invalid body: {e}")))
}

fn ok(status: StatusCode, body: Value) -> ApiResult {
    Ok((status, axum::Json(body)).into_response())
}

fn org_json(shared: &Shared, org_id: &str) -> Result<Value, ApiError> {
    let inner = shared.lock();
    let org = inner
        .org(org_id)
        .ok_or_else(|| ApiError::new(404, "Vendor Profile Not Found"))?;
    Ok(json!({
        "organizationId": org.id,
        "name": org.name,
        "vendorId": inner.vendor_id,
        "vendorName": inner.vendor_name,
        "integrationId": org.integration_id,
        "status": org.status,
        "lastSyncedAt": org.last_synced_at,
    }))
}

fn sku_json(s: &Service) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "category": s.category,
        "subcategory": s.subcategory,
    })
}

fn vendor_json(shared: &Shared) -> Value {
    let inner = shared.lock();
    json!({
        "status": "success",
        "message": "Vendor retrieved",
        "data": {
            "id": inner.vendor_id,
            "name": inner.vendor_name,
            "skus": inner.services.iter().map(sku_json).collect::<Vec<_>>(),
        }
    })
}

async fn vendor(State(shared): State<Arc<Shared>>) -> ApiResult {
    ok(StatusCode::OK, vendor_json(&shared))
}

async fn organization(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
) -> ApiResult {
    ok(StatusCode::OK, org_json(&shared, &org_id)?)
}

async fn set_status(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
    Path(status): Path<String>,
) -> ApiResult {
    if !STATUSES.contains(&status.as_str()) {
        return Err(ApiError::new(
            400,
            format!("Invalid status; expected one of {}", STATUSES.join(", ")),
        ));
    }
    if let Some(org) = shared.lock().org_mut(&org_id) {
        org.status = status;
    }
    let data = org_json(&shared, &org_id)?;
    ok(
        StatusCode::OK,
        json!({"status": "success", "message": "Integration status updated", "data": data}),
    )
}

fn account_json(a: &SimAccount) -> Value {
    json!({"id": a.id, "name": a.name, "description": a.description})
}

async fn list_accounts(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
) -> ApiResult {
    let inner = shared.lock();
    let accounts: Vec<Value> = inner
        .org(&org_id)
        .map(|o| o.accounts.iter().map(account_json).collect())
        .unwrap_or_default();
    ok(StatusCode::OK, Value::Array(accounts))
}

#[derive(Deserialize)]
struct NewAccountIn {
    id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
}

async fn create_accounts(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
    body: Bytes,
) -> ApiResult {
    let batch: Vec<NewAccountIn> = parse(&body)?;
    if batch
        .iter()
        .any(|a| a.id.trim().is_empty() || a.name.trim().is_empty())
    {
        return Err(ApiError::new(400, "Account id and name are required"));
    }
    let mut inner = shared.lock();
    let org = inner
        .org_mut(&org_id)
        .ok_or_else(|| ApiError::new(404, "Vendor Profile Not Found"))?;
    let mut seen = std::collections::BTreeSet::new();
    for a in &batch {
        if org.has_account(&a.id) || !seen.insert(a.id.as_str()) {
            return Err(ApiError::new(
                409,
                format!("Account with id {} already exists", a.id),
            ));
        }
    }
    let created: Vec<SimAccount> = batch
        .into_iter()
        .map(|a| SimAccount {
            id: a.id,
            name: a.name,
            description: a.description,
        })
        .collect();
    org.accounts.extend(created.iter().cloned());
    ok(
        StatusCode::CREATED,
        Value::Array(created.iter().map(account_json).collect()),
    )
}

#[derive(Deserialize)]
struct AccountUpdateIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn update_account(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let update: AccountUpdateIn = parse(&body)?;
    if update.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::new(400, "Account name must not be empty"));
    }
    let mut inner = shared.lock();
    let account = inner
        .org_mut(&org_id)
        .and_then(|o| o.accounts.iter_mut().find(|a| a.id == id))
        .ok_or_else(|| ApiError::new(404, format!("Account {id} not found")))?;
    if let Some(name) = update.name {
        account.name = name;
    }
    if let Some(d) = update.description {
        account.description = Some(d);
    }
    let body = account_json(account);
    ok(StatusCode::OK, body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewServiceIn {
    name: String,
    description: String,
    category: String,
    subcategory: String,
    #[serde(default)]
    support_article: Option<String>,
    #[serde(default)]
    support_contact: Option<String>,
}

async fn create_service(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let s: NewServiceIn = parse(&body)?;
    if s.name.trim().is_empty() {
        return Err(ApiError::new(400, "Service name is required"));
    }
    if !CATEGORIES.contains(&s.category.as_str()) {
        return Err(ApiError::new(
            400,
            format!(
                "Invalid category; expected one of {}",
                CATEGORIES.join(", ")
            ),
        ));
    }
    shared.lock().create_service(Service {
        id: String::new(),
        name: s.name,
        description: s.description,
        category: s.category,
        subcategory: s.subcategory,
        support_article: s.support_article,
        support_contact: s.support_contact,
    });
    ok(StatusCode::CREATED, vendor_json(&shared))
}

async fn service(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let inner = shared.lock();
    let s = inner
        .services
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::new(404, format!("Service {id} not found")))?;
    ok(
        StatusCode::OK,
        json!({"status": "success", "message": "Service retrieved", "data": sku_json(s)}),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountIn {
    account_id: String,
    unit_count: u64,
}

async fn post_count(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
    Path(service_id): Path<String>,
    uri: axum::http::Uri,
    body: Bytes,
) -> ApiResult {
    let no_build = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv.eq_ignore_ascii_case("no_build=true"));
    let c: CountIn = parse(&body)?;
    let pair = Pair::new(c.account_id, service_id);
    let mut inner = shared.lock();
    match inner.record_count(&org_id, pair.clone(), c.unit_count, no_build) {
        Ok(()) => ok(
            StatusCode::CREATED,
            json!({"status": "success", "message": "Unit count updated"}),
        ),
        Err(()) => Err(ApiError::new(
            404,
            format!(
                "Mapping not found for account {} and service {}",
                pair.account_id, pair.service_id
            ),
        )),
    }
}
