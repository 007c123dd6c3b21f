//! Accounts: list, bulk create, update.

use super::*;
use crate::model::SimAccount;
use crate::state::Shared;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use std::sync::Arc;

/// As Gradient lists an account: no description is `""`.
pub(super) fn account_json(a: &SimAccount) -> Value {
    json!({"id": a.id, "name": a.name, "description": a.description.as_deref().unwrap_or("")})
}

/// An empty description is no description.
pub(super) fn description_of(d: Option<String>) -> Option<String> {
    d.filter(|d| !d.is_empty())
}

pub(super) async fn list_accounts(
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
pub(super) struct NewAccountIn {
    id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
}

pub(super) async fn create_accounts(
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
pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub(super) struct AccountUpdateIn {
    #[serde(default)]
    name: Option<String>,
    /// Absent: keep; `""` or `null`: clear; otherwise replace.
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
}

pub(super) async fn update_account(
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
