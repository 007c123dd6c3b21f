//! Admin API under `/_sim` (no auth, never rate limited or faulted).

use crate::model::{
    ConfigRequest, Faults, MapAllRequest, MappingsRequest, RefuseAccountRequest, VendorKeyRequest,
};
use crate::state::Shared;
use crate::vendor::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type AdminResult = Result<Response, ApiError>;

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(400, format!("Invalid body: {e}")))
}

fn unknown_org(org_id: &str) -> ApiError {
    ApiError::new(404, format!("Unknown organization {org_id}"))
}

fn no_content() -> AdminResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/organizations", post(create_org))
        .route(
            "/_sim/organizations/{org}/regenerate-key",
            post(regenerate_key),
        )
        .route("/_sim/organizations/{org}/accounts", delete(wipe_accounts))
        .route(
            "/_sim/organizations/{org}/refuse-account",
            post(refuse_account),
        )
        .route("/_sim/organizations/{org}/mappings", post(set_mappings))
        .route("/_sim/organizations/{org}/mappings/all", post(map_all))
        .route("/_sim/state", get(state))
        .route("/_sim/requests", get(requests).delete(clear_requests))
        .route("/_sim/faults", put(set_faults).delete(clear_faults))
        .route("/_sim/config", put(set_config))
        .route("/_sim/vendor-key", get(vendor_key).put(set_vendor_key))
        .with_state(shared)
}

#[derive(Deserialize)]
struct NewOrg {
    name: String,
}

async fn create_org(State(shared): State<Arc<Shared>>, body: Bytes) -> AdminResult {
    let req: NewOrg = parse(&body)?;
    let created = shared.lock().create_org(&req.name);
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn regenerate_key(State(shared): State<Arc<Shared>>, Path(org): Path<String>) -> AdminResult {
    let key = shared
        .lock()
        .regenerate_key(&org)
        .ok_or_else(|| unknown_org(&org))?;
    Ok(axum::Json(json!({ "partnerKey": key })).into_response())
}

async fn wipe_accounts(State(shared): State<Arc<Shared>>, Path(org): Path<String>) -> AdminResult {
    if !shared.lock().wipe_accounts(&org) {
        return Err(unknown_org(&org));
    }
    no_content()
}

async fn refuse_account(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    body: Bytes,
) -> AdminResult {
    let req: RefuseAccountRequest = parse(&body)?;
    if !shared
        .lock()
        .refuse_account(&org, &req.account_id, &req.message, req.refused)
    {
        return Err(unknown_org(&org));
    }
    no_content()
}

async fn vendor_key(State(shared): State<Arc<Shared>>) -> AdminResult {
    let vendor_key = shared.lock().vendor_key.clone();
    Ok(axum::Json(VendorKeyRequest { vendor_key }).into_response())
}

async fn set_vendor_key(State(shared): State<Arc<Shared>>, body: Bytes) -> AdminResult {
    let req: VendorKeyRequest = parse(&body)?;
    validate_vendor_key(&req.vendor_key).map_err(|m| ApiError::new(400, m))?;
    shared.lock().vendor_key = req.vendor_key;
    no_content()
}

/// A vendor key must be non-empty and must not contain `:` (the token's separator).
pub(crate) fn validate_vendor_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.contains(':') {
        return Err("vendorKey must be non-empty and without ':'".to_owned());
    }
    Ok(())
}

async fn set_mappings(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    body: Bytes,
) -> AdminResult {
    let req: MappingsRequest = parse(&body)?;
    if !shared.lock().set_mappings(&org, &req.pairs, req.mapped) {
        return Err(unknown_org(&org));
    }
    no_content()
}

async fn map_all(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    body: Bytes,
) -> AdminResult {
    let req: MapAllRequest = if body.is_empty() {
        MapAllRequest::default()
    } else {
        parse(&body)?
    };
    if !shared.lock().map_all(&org, &req.except) {
        return Err(unknown_org(&org));
    }
    no_content()
}

async fn state(State(shared): State<Arc<Shared>>) -> AdminResult {
    Ok(axum::Json(shared.lock().snapshot()).into_response())
}

async fn requests(State(shared): State<Arc<Shared>>) -> AdminResult {
    Ok(axum::Json(shared.lock().requests()).into_response())
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> AdminResult {
    shared.lock().log.clear();
    no_content()
}

pub(crate) fn validate_faults(f: &Faults) -> Result<(), String> {
    for (name, v) in [
        ("rate429", f.rate429),
        ("rate5xx", f.rate5xx),
        ("slowRate", f.slow_rate),
        ("malformedRate", f.malformed_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("{name} must be within 0..=1"));
        }
    }
    for (name, status) in [
        ("forceStatus", f.force_status),
        ("alertStatus", f.alert_status),
    ] {
        if let Some(s) = status
            && !(100..=599).contains(&s)
        {
            return Err(format!("{name} must be an HTTP status"));
        }
    }
    if let Some(t) = &f.alert_ticket
        && !["success", "pending", "failed"].contains(&t.status.as_str())
    {
        return Err("alertTicket.status must be success, pending or failed".to_owned());
    }
    if let Some(echo) = &f.echo_token
        && !(400..=599).contains(&echo.status)
    {
        return Err("echoToken.status must be an error status (400..=599)".to_owned());
    }
    Ok(())
}

async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> AdminResult {
    let faults: Faults = parse(&body)?;
    validate_faults(&faults).map_err(|m| ApiError::new(400, m))?;
    shared.lock().faults = faults;
    no_content()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> AdminResult {
    shared.lock().faults = Faults::default();
    no_content()
}

async fn set_config(State(shared): State<Arc<Shared>>, body: Bytes) -> AdminResult {
    let req: ConfigRequest = parse(&body)?;
    if req.max_rps == 0 {
        return Err(ApiError::new(400, "maxRps must be positive"));
    }
    shared.lock().max_rps = req.max_rps;
    no_content()
}
