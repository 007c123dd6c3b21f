//! The vendor API (`/api/vendor-api/...`) with auth, rate limit, faults and the request log.

use crate::model::{
    AlertRecord, ECHO_LARGE_AT, ECHO_LARGE_CUT, EchoShape, Pair, RequestRecord, Service, SimAccount,
};
use crate::state::{CATEGORIES, STATUSES, Shared, now_rfc3339};
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
use serde::{Deserialize, Deserializer};
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
        .route("/api/vendor-api/alerting/{account}", post(post_alert))
        .route(
            "/api/vendor-api/alerting/debug/{message}",
            axum::routing::get(alert_debug),
        )
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

/// `POST /api/vendor-api/service/{id}/count` (the only route `count_latency_ms` delays).
fn is_count_route(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/vendor-api/service/")
            .and_then(|rest| rest.strip_suffix("/count"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// `POST /api/vendor-api/alerting/{accountId}` (the only route `alert_status` forces).
fn is_alert_route(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/vendor-api/alerting/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
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
    let is_count = is_count_route(req.method(), req.uri().path());
    let is_alert = is_alert_route(req.method(), req.uri().path());
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let org = authenticate(&shared, req.headers());
    let sent_token = req
        .headers()
        .get("gradient-token")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();

    let (admitted, max_rps, delay, injected, pad_to, echo) = {
        let mut inner = shared.lock();
        let max_rps = inner.max_rps;
        let admitted = inner.admit(arrived);
        let echo = if admitted {
            take_echo(&mut inner.faults, req.uri().path())
        } else {
            None
        };
        let f = inner.faults.clone();
        let mut delay = Duration::from_millis(f.latency_ms);
        if is_count {
            delay += Duration::from_millis(f.count_latency_ms);
        }
        if f.slow_rate > 0.0 && inner.rng.random::<f64>() < f.slow_rate {
            delay += Duration::from_millis(f.slow_ms);
        }
        let injected = if let Some(s) = f.force_status {
            Injected::Forced(s)
        } else if f.unauthorized_after == Some(0) {
            Injected::Unauthorized
        } else if let (true, Some(s)) = (is_alert, f.alert_status) {
            Injected::Forced(s)
        } else if f.rate429 > 0.0 && inner.rng.random::<f64>() < f.rate429 {
            Injected::TooMany(f.retry_after_secs)
        } else if f.rate5xx > 0.0 && inner.rng.random::<f64>() < f.rate5xx {
            Injected::Unavailable
        } else if f.malformed_rate > 0.0 && inner.rng.random::<f64>() < f.malformed_rate {
            Injected::Malformed
        } else {
            Injected::None
        };
        (admitted, max_rps, delay, injected, f.error_body_bytes, echo)
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
    } else if let Some((shape, status)) = echo {
        echo_response(shape, status, &sent_token)
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

    let response = match pad_to {
        Some(n) if response.status().as_u16() >= 400 && echo.is_none() => {
            pad_error(response, n).await
        }
        _ => response,
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

/// The shape and status of an `echoToken` answer when the fault applies to `path` (counting
/// down its `times`).
fn take_echo(faults: &mut crate::model::Faults, path: &str) -> Option<(EchoShape, u16)> {
    let echo = faults.echo_token.as_mut()?;
    if echo.times == Some(0)
        || echo
            .path_prefix
            .as_deref()
            .is_some_and(|p| !path.starts_with(p))
    {
        return None;
    }
    if let Some(n) = echo.times.as_mut() {
        *n -= 1;
    }
    Some((echo.shape, echo.status))
}

/// An error answer whose body carries `token` (the received `GRADIENT-TOKEN`) in `shape`.
fn echo_response(shape: EchoShape, status: u16, token: &str) -> Response {
    // Inside a JSON string: escaped (a base64 value has nothing to escape).
    let escaped = serde_json::to_string(token).unwrap_or_default();
    let escaped = &escaped[1..escaped.len() - 1];
    let (content_type, body) = match shape {
        EchoShape::Json => (
            "application/json",
            json!({"statusCode": status, "message": format!("bad header {token}")}).to_string(),
        ),
        EchoShape::Text => (
            "text/plain; charset=utf-8",
            format!("GRADIENT-TOKEN: {token}"),
        ),
        EchoShape::BrokenJson => (
            "application/json",
            format!(
                r#"{{"statusCode":{status},"message":"bad header {escaped}, expected base64(vendorKey:partnerKey"#
            ),
        ),
        EchoShape::Large => ("application/json", large_echo(status, escaped)),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The [`EchoShape::Large`] body: `value` from byte [`ECHO_LARGE_AT`] and again with its middle
/// at byte [`ECHO_LARGE_CUT`], `.` between and for 1 KiB after.
fn large_echo(status: u16, value: &str) -> String {
    let pad = |body: &mut String, to: usize| {
        let n = to.saturating_sub(body.len());
        body.push_str(&".".repeat(n));
    };
    let mut body = format!(r#"{{"statusCode":{status},"message":"bad header "#);
    pad(&mut body, ECHO_LARGE_AT);
    body.push_str(value);
    let second = ECHO_LARGE_CUT
        .saturating_sub(value.len() / 2)
        .max(body.len() + 1);
    pad(&mut body, second);
    body.push_str(value);
    let end = body.len().max(ECHO_LARGE_CUT) + 1024;
    pad(&mut body, end);
    body.push_str("\"}");
    body
}

/// Rewrites an error answer so that its `message` has at least `n` bytes (status and headers kept).
async fn pad_error(response: Response, n: usize) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !value.is_object() {
        value = json!({"statusCode": parts.status.as_u16()});
    }
    let mut message = match value.get("message") {
        Some(Value::String(m)) => m.clone(),
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_owned(),
    };
    if message.len() < n {
        message.push(' ');
        let missing = n.saturating_sub(message.len());
        message.push_str(&"x".repeat(missing));
    }
    value["message"] = Value::String(message);
    let body = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
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

/// As Gradient lists an account: no description is `""`.
fn account_json(a: &SimAccount) -> Value {
    json!({"id": a.id, "name": a.name, "description": a.description.as_deref().unwrap_or("")})
}

/// An empty description is no description.
fn description_of(d: Option<String>) -> Option<String> {
    d.filter(|d| !d.is_empty())
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
    if let Some(message) = batch.iter().find_map(|a| org.refusal(&a.id)) {
        return Err(ApiError::new(400, message));
    }
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
            description: description_of(a.description),
        })
        .collect();
    org.accounts.extend(created.iter().cloned());
    ok(
        StatusCode::CREATED,
        Value::Array(created.iter().map(account_json).collect()),
    )
}

/// Tells an absent field (`None`) from a present one (`Some`, `null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct AccountUpdateIn {
    #[serde(default)]
    name: Option<String>,
    /// Absent: keep; `""` or `null`: clear; otherwise replace.
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
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
    let org = inner
        .org_mut(&org_id)
        .ok_or_else(|| ApiError::new(404, "Vendor Profile Not Found"))?;
    if let Some(message) = org.refusal(&id) {
        return Err(ApiError::new(400, message));
    }
    let account = org
        .accounts
        .iter_mut()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::new(404, format!("Account {id} not found")))?;
    if let Some(name) = update.name {
        account.name = name;
    }
    if let Some(d) = update.description {
        account.description = description_of(d);
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

/// A required non-empty string field of an alert.
fn required_text(body: &Value, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::new(400, format!("{field} should not be empty"))),
        None | Some(Value::Null) => Err(ApiError::new(400, format!("{field} is required"))),
        Some(_) => Err(ApiError::new(400, format!("{field} must be a string"))),
    }
}

/// A required integer field within `lo..=hi`.
fn required_int(body: &Value, field: &str, lo: u64, hi: u64) -> Result<u8, ApiError> {
    match body.get(field).and_then(Value::as_u64) {
        Some(v) if (lo..=hi).contains(&v) => Ok(v as u8),
        _ => Err(ApiError::new(
            400,
            format!("{field} must be an integer from {lo} to {hi}"),
        )),
    }
}

/// An optional string field (absent or `null` is `None`).
fn optional_text(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(400, format!("{field} must be a string"))),
    }
}

/// `POST /api/vendor-api/alerting/{accountId}`: validated like Gradient's SDK (unknown fields
/// ignored), 404 for an account that is not the organization's or a `serviceId` that is not a
/// vendor service; 200 `{messageId, alertId, correlationID}`.
async fn post_alert(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body: Value = parse(&body)?;
    if !body.is_object() {
        return Err(ApiError::new(400, "Invalid body: expected a JSON object"));
    }
    let title = required_text(&body, "title")?;
    let description = required_text(&body, "description")?;
    let alert_id = required_text(&body, "alertId")?;
    let priority = required_int(&body, "priority", 1, 4)?;
    let status = required_int(&body, "status", 1, 6)?;
    let due_date_time = optional_text(&body, "dueDateTime")?;
    let service_id = optional_text(&body, "serviceId")?;

    let mut inner = shared.lock();
    if !inner
        .org(&org_id)
        .is_some_and(|o| o.has_account(&account_id))
    {
        return Err(ApiError::new(
            404,
            format!("Account {account_id} not found"),
        ));
    }
    if let Some(s) = &service_id
        && !inner.services.iter().any(|v| &v.id == s)
    {
        return Err(ApiError::new(404, format!("Service {s} not found")));
    }
    let message_id = inner.random_uuid();
    let correlation_id = inner.random_uuid();
    let record = AlertRecord {
        account_id,
        title,
        description,
        alert_id: alert_id.clone(),
        priority,
        status,
        due_date_time,
        service_id,
        message_id: message_id.clone(),
        correlation_id: correlation_id.clone(),
        at: now_rfc3339(),
    };
    if let Some(org) = inner.org_mut(&org_id) {
        org.alerts.push(record);
    }
    ok(
        StatusCode::OK,
        json!({"messageId": message_id, "alertId": alert_id, "correlationID": correlation_id}),
    )
}

/// `GET /api/vendor-api/alerting/debug/{messageId}` (#11): whether the organization's alert
/// became a ticket — `success` with a ticket id unless the `alertTicket` fault says otherwise;
/// 404 for a message id the organization never got.
async fn alert_debug(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
    Path(message_id): Path<String>,
) -> ApiResult {
    let inner = shared.lock();
    let Some((n, alert)) = inner.org(&org_id).and_then(|o| {
        o.alerts
            .iter()
            .enumerate()
            .find(|(_, a)| a.message_id == message_id)
    }) else {
        return Err(ApiError::new(
            404,
            format!("Message {message_id} not found"),
        ));
    };
    let fault = inner.faults.alert_ticket.clone();
    let body = match fault {
        Some(t) if t.status != "success" => json!({
            "createdAt": alert.at,
            "status": t.status,
            "statusCode": if t.status == "failed" { 400 } else { 202 },
            "errors": t.errors,
        }),
        _ => json!({
            "ticketId": format!("T-{}", 1000 + n),
            "createdAt": alert.at,
            "status": "success",
            "statusCode": 200,
            "errors": [],
        }),
    };
    ok(StatusCode::OK, body)
}
