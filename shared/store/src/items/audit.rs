//! An audit event's item (`AUDIT#<at ms>#<random>` in the workspace's partition), kept 401 days.

use crate::attrs::DAY_S;
use crate::keys::workspace_pk;
use psa_domain::{AuditEvent, WorkspaceId};
use serde::{Deserialize, Serialize};

/// Audit entries are kept 401 days (the contract asks for at least 400).
const AUDIT_RETENTION_S: i64 = 401 * DAY_S;

#[derive(Serialize, Deserialize)]
pub(crate) struct AuditItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    pub(crate) event: AuditEvent,
}

pub(crate) fn audit_item(ws: &WorkspaceId, sk: &str, event: &AuditEvent) -> AuditItem {
    AuditItem {
        pk: workspace_pk(ws),
        sk: sk.to_owned(),
        expires_at: event.at.unix_timestamp() + AUDIT_RETENTION_S,
        event: event.clone(),
    }
}
