//! What the API returns (contract shapes). The token is never part of any view.

use psa_domain::catalogue::Catalogue;
use psa_domain::{Connector, LastSync, RunCounts};
use serde::Serialize;
use time::OffsetDateTime;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    pub id: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub workspace_id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub token_hint: String,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<LastSyncView>,
    pub settings: psa_domain::ConnectorSettings,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSyncView {
    pub run_id: String,
    pub status: psa_domain::RunStatus,
    pub finished_at: String,
    pub counts: RunCounts,
}

impl From<&LastSync> for LastSyncView {
    fn from(l: &LastSync) -> Self {
        Self {
            run_id: l.run_id.to_string(),
            status: l.status,
            finished_at: rfc3339(l.finished_at),
            counts: l.counts.clone(),
        }
    }
}

impl From<&Connector> for ConnectorView {
    fn from(c: &Connector) -> Self {
        Self {
            id: c.kind.as_str(),
            kind: c.kind.as_str(),
            workspace_id: c.workspace_id.to_string(),
            status: c.status.as_str(),
            status_reason: c.status_reason.clone(),
            token_hint: c.token_hint.clone(),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            created_by: c.created_by.to_string(),
            last_sync: c.last_sync.as_ref().map(LastSyncView::from),
            settings: c.settings.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub key: String,
    pub name: String,
    pub kind: psa_domain::catalogue::ServiceKind,
    pub unit: psa_domain::Unit,
    pub gradient_name: String,
    pub gradient_description: String,
    pub category: String,
    pub subcategory: String,
}

pub fn services(catalogue: &Catalogue) -> Vec<ServiceView> {
    catalogue
        .iter()
        .map(|s| ServiceView {
            key: s.key.clone(),
            name: s.name.clone(),
            kind: s.kind,
            unit: s.unit,
            gradient_name: s.gradient_name(),
            gradient_description: s.gradient_description(),
            category: s.category.clone(),
            subcategory: s.subcategory.clone(),
        })
        .collect()
}

/// A sync run as the contract shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub run_id: String,
    pub connector_id: &'static str,
    pub trigger: psa_domain::Trigger,
    pub status: psa_domain::RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    pub queued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub counts: RunCounts,
    pub failures: Vec<psa_domain::Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_of: Option<String>,
}

/// The billing guard's figures as the contract shows them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardView {
    pub before: u64,
    pub after: u64,
    pub drop_percent: f64,
}

impl From<&psa_domain::sync::GuardFigures> for GuardView {
    fn from(g: &psa_domain::sync::GuardFigures) -> Self {
        Self {
            before: g.before,
            after: g.after,
            drop_percent: g.drop_percent(),
        }
    }
}

impl From<&psa_domain::SyncRun> for RunView {
    fn from(r: &psa_domain::SyncRun) -> Self {
        Self {
            run_id: r.run_id.to_string(),
            connector_id: r.connector_id.as_str(),
            trigger: r.trigger,
            status: r.status,
            requested_by: r.requested_by.as_ref().map(|u| u.to_string()),
            queued_at: rfc3339(r.queued_at),
            started_at: r.started_at.map(rfc3339),
            finished_at: r.finished_at.map(rfc3339),
            counts: r.counts.clone(),
            failures: r.failures.clone(),
            reason: r.reason.clone(),
            guard: r.guard.as_ref().map(GuardView::from),
            release_of: r.release_of.as_ref().map(|r| r.to_string()),
        }
    }
}
