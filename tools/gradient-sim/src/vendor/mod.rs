//! The vendor API (`/api/vendor-api/...`) with auth, rate limit, faults and the request log.

use crate::model::Service;
use crate::state::{STATUSES, Shared};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// A Gradient-style error: `{"statusCode": N, "message": "..."}`.
mod accounts;
mod faults;
mod services;

use accounts::*;
use faults::*;
use services::*;

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

pub(super) fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(400, format!("Invalid body: {e}")))
}

pub(super) fn ok(status: StatusCode, body: Value) -> ApiResult {
    Ok((status, axum::Json(body)).into_response())
}

pub(super) fn org_json(shared: &Shared, org_id: &str) -> Result<Value, ApiError> {
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

pub(super) fn sku_json(s: &Service) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "category": s.category,
        "subcategory": s.subcategory,
    })
}

pub(super) fn vendor_json(shared: &Shared) -> Value {
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

pub(super) async fn vendor(State(shared): State<Arc<Shared>>) -> ApiResult {
    ok(StatusCode::OK, vendor_json(&shared))
}

pub(super) async fn organization(
    State(shared): State<Arc<Shared>>,
    Extension(OrgId(org_id)): Extension<OrgId>,
) -> ApiResult {
    ok(StatusCode::OK, org_json(&shared, &org_id)?)
}

pub(super) async fn set_status(
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
