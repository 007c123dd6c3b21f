//! Services, counts and alerts.

use super::*;
use crate::model::{AlertRecord, Pair, Service};
use crate::state::{CATEGORIES, Shared, now_rfc3339};
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewServiceIn {
    name: String,
    description: String,
    category: String,
    subcategory: String,
    #[serde(default)]
    support_article: Option<String>,
    #[serde(default)]
    support_contact: Option<String>,
}

pub(super) async fn create_service(State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
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

pub(super) async fn service(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult {
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
pub(super) struct CountIn {
    account_id: String,
    unit_count: u64,
}

pub(super) async fn post_count(
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
pub(super) fn required_text(body: &Value, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::new(400, format!("{field} should not be empty"))),
        None | Some(Value::Null) => Err(ApiError::new(400, format!("{field} is required"))),
        Some(_) => Err(ApiError::new(400, format!("{field} must be a string"))),
    }
}

/// A required integer field within `lo..=hi`.
pub(super) fn required_int(body: &Value, field: &str, lo: u64, hi: u64) -> Result<u8, ApiError> {
    match body.get(field).and_then(Value::as_u64) {
        Some(v) if (lo..=hi).contains(&v) => Ok(v as u8),
        _ => Err(ApiError::new(
            400,
            format!("{field} must be an integer from {lo} to {hi}"),
        )),
    }
}

/// An optional string field (absent or `null` is `None`).
pub(super) fn optional_text(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(400, format!("{field} must be a string"))),
    }
}

/// `POST /api/vendor-api/alerting/{accountId}`: validated like Gradient's SDK (unknown fields
/// ignored), 404 for an account that is not the organization's or a `serviceId` that is not a
/// vendor service; 200 `{messageId, alertId, correlationID}`.
pub(super) async fn post_alert(
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
pub(super) async fn alert_debug(
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
