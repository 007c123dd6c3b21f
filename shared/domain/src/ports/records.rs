//! What the deployment remembers besides runs: the audit trail, PSA rejections, alerts sent,
//! attempts counted.

use super::{Page, PageError, StoreError};
use crate::audit::AuditEvent;
use crate::connector::ConnectorRef;
use crate::ids::{ConnectorType, WorkspaceId};
use async_trait::async_trait;
use std::time::Duration;

/// The audit trail of a workspace (kept at least 400 days, survives the connector).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `event`; answers its key (for [`AuditLog::annotate`]).
    async fn record(
        &self,
        workspace: &WorkspaceId,
        event: &AuditEvent,
    ) -> Result<String, StoreError>;
    /// Sets `detail` entries of the event recorded under `key` (what became of an alert).
    async fn annotate(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        detail: &[(&str, String)],
    ) -> Result<(), StoreError>;
    /// Newest first.
    async fn audit_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>, PageError>;
}

/// What a wave of rejections is about: 401 (token) or 403 (anomaly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Unauthorized,
    Forbidden,
}

/// One connector in a wave of rejections, and the MSP it belongs to (the topmost channel
/// workspace above it: a channel and its subchannels are one MSP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub workspace: WorkspaceId,
    pub msp: WorkspaceId,
}

/// A connector incarnation and token version whose call a PSA accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedBy {
    pub connector: ConnectorRef,
    pub token_version: u64,
}

/// Deployment-wide record of PSA rejections, one per PSA (each has its own vendor key), to tell
/// a bad vendor key from MSPs' bad tokens.
#[async_trait]
pub trait KeyHealth: Send + Sync {
    /// A call to `psa` with its vendor key was accepted (with `by`'s token): any wave of
    /// rejections is over, and `by` is the connector a suspected vendor-key fault is checked with.
    async fn accepted(&self, psa: ConnectorType, by: &AcceptedBy) -> Result<(), StoreError>;
    /// The connector whose call to `psa` was accepted last, if any.
    async fn last_accepted(&self, psa: ConnectorType) -> Result<Option<AcceptedBy>, StoreError>;
    /// Records that `rejected.workspace`'s connector to `psa` was rejected and answers the
    /// distinct connectors rejected by `psa` (this kind) within `window` with no accepted call
    /// since, this one included, each with its MSP.
    async fn rejected(
        &self,
        psa: ConnectorType,
        kind: Rejection,
        rejected: &Rejected,
        window: Duration,
    ) -> Result<Vec<Rejected>, StoreError>;
}

/// An accepted alert whose ticket was still pending: asked again on later runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTicket {
    pub account_id: String,
    pub kind: String,
    pub alert: crate::ports::AlertRef,
    /// The key of the alert's `psa.alert_sent` audit entry.
    pub audit_key: String,
}

/// When each account of a connector was last alerted about, per kind of alert, and the alerts
/// whose tickets are pending.
#[async_trait]
pub trait AlertMemory: Send + Sync {
    /// Forgets that `account` was alerted about (its ticket failed: the next run raises again).
    async fn forget_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
    ) -> Result<(), StoreError>;
    async fn remember_ticket(
        &self,
        connector: &ConnectorRef,
        ticket: &PendingTicket,
    ) -> Result<(), StoreError>;
    async fn pending_tickets(
        &self,
        connector: &ConnectorRef,
    ) -> Result<Vec<PendingTicket>, StoreError>;
    async fn forget_ticket(
        &self,
        connector: &ConnectorRef,
        alert: &crate::ports::AlertRef,
    ) -> Result<(), StoreError>;
    async fn last_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
    ) -> Result<Option<time::OffsetDateTime>, StoreError>;
    /// Remembers an alert for at least `keep`.
    async fn record_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
        keep: Duration,
    ) -> Result<(), StoreError>;
}

/// Counts attempts per workspace in fixed windows (e.g. token verifications, each a PSA call).
#[async_trait]
pub trait AttemptCounter: Send + Sync {
    /// Counts one attempt in the current `window`; answers the attempts counted in it so far
    /// (this one included) and the time left until the window ends.
    async fn attempt(
        &self,
        workspace: &WorkspaceId,
        what: &str,
        window: Duration,
    ) -> Result<(u64, Duration), StoreError>;
}
