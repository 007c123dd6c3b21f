//! An audit event's item (`AUDIT#<at ms>#<random>` in the workspace's partition), kept 401 days.
//! Written as the store's own [`AuditRecord`], not as the API's `AuditEvent`.

use crate::attrs::DAY_S;
use crate::keys::workspace_pk;
use psa_domain::{Actor, AuditAction, AuditEvent, ConnectorType, RunId, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The attribute of an entry's detail map (annotated in place, see `AuditLog::annotate`).
pub(crate) const AUDIT_DETAIL: &str = "detail";

/// Audit entries are kept 401 days (the contract asks for at least 400).
const AUDIT_RETENTION_S: i64 = 401 * DAY_S;

#[derive(Serialize, Deserialize)]
pub(crate) struct AuditItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    event: AuditRecord,
}

impl AuditItem {
    pub(crate) fn into_event(self) -> AuditEvent {
        self.event.into()
    }
}

pub(crate) fn audit_item(ws: &WorkspaceId, sk: &str, event: &AuditEvent) -> AuditItem {
    AuditItem {
        pk: workspace_pk(ws),
        sk: sk.to_owned(),
        expires_at: event.at.unix_timestamp() + AUDIT_RETENTION_S,
        event: event.into(),
    }
}

/// One entry of the trail; `detail` is a map the trail's entries are annotated in place.
#[derive(Serialize, Deserialize)]
struct AuditRecord {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: Actor,
    action: AuditAction,
    #[serde(rename = "connectorId")]
    connector_id: ConnectorType,
    #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
    run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    detail: BTreeMap<String, String>,
}

impl From<&AuditEvent> for AuditRecord {
    fn from(e: &AuditEvent) -> Self {
        Self {
            at: e.at,
            actor: e.actor.clone(),
            action: e.action,
            connector_id: e.connector_id,
            run_id: e.run_id.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl From<AuditRecord> for AuditEvent {
    fn from(e: AuditRecord) -> Self {
        Self {
            at: e.at,
            actor: e.actor,
            action: e.action,
            connector_id: e.connector_id,
            run_id: e.run_id,
            detail: e.detail,
        }
    }
}
