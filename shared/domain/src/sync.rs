//! Sync runs: what one run of one connector did.

use crate::ids::{ConnectorType, RunId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Scheduled,
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    PartiallyFailed,
    Failed,
    TokenRejected,
}

impl RunStatus {
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// Every reading of a run ends in exactly one of `posted`, `unchanged`, `unmapped`,
/// `skipped_disabled` or `failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCounts {
    pub accounts: u64,
    pub accounts_created: u64,
    pub accounts_renamed: u64,
    pub services_created: u64,
    pub readings: u64,
    pub posted: u64,
    pub unchanged: u64,
    pub unmapped: u64,
    pub skipped_disabled: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub account_id: String,
    pub service: String,
    pub reason: String,
}

/// Most failures a run record keeps (the counts are always complete).
pub const MAX_RECORDED_FAILURES: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRun {
    pub run_id: RunId,
    pub connector_id: ConnectorType,
    pub workspace_id: WorkspaceId,
    pub trigger: Trigger,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub finished_at: Option<OffsetDateTime>,
    pub counts: RunCounts,
    pub failures: Vec<Failure>,
}
