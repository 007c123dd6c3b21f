//! A connector's item (`WS#<ws>` / `CONNECTOR#<type>`, on `byStatus` under its status).
//!
//! The connector is written as the store's own [`ConnectorRecord`], not as the domain's
//! `Connector`: the attribute names below are the table's.

use super::run::CountsRecord;
use crate::error::serde_error;
use crate::keys::{connector_sk, connectors_by_status_pk, connectors_by_status_sk, workspace_pk};
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::connector::{LastSync, NotifyOn, NotifySettings};
use psa_domain::ports::StoreError;
use psa_domain::{
    Connector, ConnectorSettings, ConnectorStatus, ConnectorType, RunId, RunStatus, UserId,
    WorkspaceId,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;

#[derive(Serialize, Deserialize)]
struct ConnectorItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    connector: ConnectorRecord,
}

impl ConnectorItem {
    fn new(c: &Connector) -> Self {
        Self {
            pk: workspace_pk(&c.workspace_id),
            sk: connector_sk(c.kind),
            // A connector whose delete began stays in the scheduler's partition whatever its
            // status, so the next scheduled firing's worker finishes the delete.
            gsi1pk: connectors_by_status_pk(if c.is_deleting() {
                ConnectorStatus::Connected
            } else {
                c.status
            }),
            gsi1sk: connectors_by_status_sk(&c.workspace_id),
            connector: ConnectorRecord::from(c),
        }
    }
}

/// The stored item of `connector` (also for tests that seed many connectors at once with batched
/// writes, so the layout is written down once).
pub fn connector_item(
    connector: &Connector,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(ConnectorItem::new(connector)).map_err(|e| serde_error("connector", e))
}

/// The connector of a stored item.
pub(crate) fn connector_of(item: HashMap<String, AttributeValue>) -> Result<Connector, StoreError> {
    serde_dynamo::from_item::<_, ConnectorItem>(item)
        .map(|i| i.connector.into())
        .map_err(|e| serde_error("connector item", e))
}

#[derive(Serialize, Deserialize)]
struct ConnectorRecord {
    #[serde(rename = "workspaceId")]
    workspace_id: WorkspaceId,
    #[serde(rename = "type")]
    kind: ConnectorType,
    status: ConnectorStatus,
    #[serde(
        rename = "statusReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    status_reason: Option<String>,
    #[serde(rename = "tokenHint")]
    token_hint: String,
    #[serde(rename = "createdAt", with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(rename = "updatedAt", with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(rename = "createdBy")]
    created_by: UserId,
    #[serde(rename = "lastSync", default, skip_serializing_if = "Option::is_none")]
    last_sync: Option<LastSyncRecord>,
    #[serde(rename = "tokenVersion")]
    token_version: u64,
    #[serde(rename = "fullResendDue")]
    full_resend_due: bool,
    #[serde(
        rename = "lastFullResendAt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    last_full_resend_at: Option<OffsetDateTime>,
    #[serde(
        rename = "fullResendDeferredUntil",
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    full_resend_deferred_until: Option<OffsetDateTime>,
    /// Absent from connectors stored before settings: the default settings.
    #[serde(default)]
    settings: SettingsRecord,
    #[serde(rename = "failedStreak", default)]
    failed_streak: u32,
    #[serde(rename = "psaFailing", default)]
    psa_failing: bool,
    #[serde(
        rename = "organizationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    organization_id: Option<String>,
    #[serde(
        rename = "deletingSince",
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    deleting_since: Option<OffsetDateTime>,
    incarnation: String,
    version: u64,
}

impl From<&Connector> for ConnectorRecord {
    fn from(c: &Connector) -> Self {
        Self {
            workspace_id: c.workspace_id.clone(),
            kind: c.kind,
            status: c.status,
            status_reason: c.status_reason.clone(),
            token_hint: c.token_hint.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            created_by: c.created_by.clone(),
            last_sync: c.last_sync.as_ref().map(LastSyncRecord::from),
            token_version: c.token_version,
            full_resend_due: c.full_resend_due,
            last_full_resend_at: c.last_full_resend_at,
            full_resend_deferred_until: c.full_resend_deferred_until,
            settings: (&c.settings).into(),
            failed_streak: c.failed_streak,
            psa_failing: c.psa_failing,
            organization_id: c.organization_id.clone(),
            deleting_since: c.deleting_since,
            incarnation: c.incarnation.clone(),
            version: c.version,
        }
    }
}

impl From<ConnectorRecord> for Connector {
    fn from(c: ConnectorRecord) -> Self {
        Self {
            workspace_id: c.workspace_id,
            kind: c.kind,
            status: c.status,
            status_reason: c.status_reason,
            token_hint: c.token_hint,
            created_at: c.created_at,
            updated_at: c.updated_at,
            created_by: c.created_by,
            last_sync: c.last_sync.map(LastSync::from),
            token_version: c.token_version,
            full_resend_due: c.full_resend_due,
            last_full_resend_at: c.last_full_resend_at,
            full_resend_deferred_until: c.full_resend_deferred_until,
            settings: c.settings.into(),
            failed_streak: c.failed_streak,
            psa_failing: c.psa_failing,
            organization_id: c.organization_id,
            deleting_since: c.deleting_since,
            incarnation: c.incarnation,
            version: c.version,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LastSyncRecord {
    #[serde(rename = "runId")]
    run_id: RunId,
    status: RunStatus,
    #[serde(rename = "finishedAt", with = "time::serde::rfc3339")]
    finished_at: OffsetDateTime,
    counts: CountsRecord,
}

impl From<&LastSync> for LastSyncRecord {
    fn from(l: &LastSync) -> Self {
        Self {
            run_id: l.run_id.clone(),
            status: l.status,
            finished_at: l.finished_at,
            counts: (&l.counts).into(),
        }
    }
}

impl From<LastSyncRecord> for LastSync {
    fn from(l: LastSyncRecord) -> Self {
        Self {
            run_id: l.run_id,
            status: l.status,
            finished_at: l.finished_at,
            counts: l.counts.into(),
        }
    }
}

/// The connector's settings; `guardDropPercent` is written even when off (as null).
#[derive(Serialize, Deserialize)]
struct SettingsRecord {
    #[serde(rename = "guardDropPercent")]
    guard_drop_percent: Option<u8>,
    #[serde(rename = "psaAlerts")]
    psa_alerts: bool,
    /// Absent from settings stored before it: no addresses, `always`.
    #[serde(default)]
    notify: NotifyRecord,
}

impl Default for SettingsRecord {
    fn default() -> Self {
        (&ConnectorSettings::default()).into()
    }
}

impl From<&ConnectorSettings> for SettingsRecord {
    fn from(s: &ConnectorSettings) -> Self {
        Self {
            guard_drop_percent: s.guard_drop_percent,
            psa_alerts: s.psa_alerts,
            notify: (&s.notify).into(),
        }
    }
}

impl From<SettingsRecord> for ConnectorSettings {
    fn from(s: SettingsRecord) -> Self {
        Self {
            guard_drop_percent: s.guard_drop_percent,
            psa_alerts: s.psa_alerts,
            notify: s.notify.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct NotifyRecord {
    emails: Vec<String>,
    on: NotifyOn,
}

impl Default for NotifyRecord {
    fn default() -> Self {
        (&NotifySettings::default()).into()
    }
}

impl From<&NotifySettings> for NotifyRecord {
    fn from(n: &NotifySettings) -> Self {
        Self {
            emails: n.emails.clone(),
            on: n.on,
        }
    }
}

impl From<NotifyRecord> for NotifySettings {
    fn from(n: NotifyRecord) -> Self {
        // Not `NotifySettings::new`: what was stored was checked when it was set.
        Self {
            emails: n.emails,
            on: n.on,
        }
    }
}
