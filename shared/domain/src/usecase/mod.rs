//! Use cases: what the functions ask the core to do.

pub mod connectors;
pub mod provision;
pub mod sync;
pub mod views;

use crate::audit::AuditEvent;
use crate::catalogue::Catalogue;
use crate::connector::Connector;
use crate::ids::WorkspaceId;
use crate::ports::{
    AlertMemory, AttemptCounter, AuditLog, ConnectorRepo, JobQueue, KeyHealth, PairStates, Psa,
    RunReadings, RunSlots, ServiceRegistry, StoreError, SyncRuns, TokenVault, WorkspaceDirectory,
};
use std::sync::Arc;
use time::OffsetDateTime;

/// Everything a use case may touch, built once per process in `main`.
#[derive(Clone)]
pub struct Core {
    pub connectors: Arc<dyn ConnectorRepo>,
    pub vault: Arc<dyn TokenVault>,
    pub directory: Arc<dyn WorkspaceDirectory>,
    pub registry: Arc<dyn ServiceRegistry>,
    pub psa: Arc<dyn Psa>,
    pub catalogue: Arc<Catalogue>,
    pub slots: Arc<dyn RunSlots>,
    pub runs: Arc<dyn SyncRuns>,
    pub readings: Arc<dyn RunReadings>,
    pub pairs: Arc<dyn PairStates>,
    pub audit: Arc<dyn AuditLog>,
    pub key_health: Arc<dyn KeyHealth>,
    pub alerts: Arc<dyn AlertMemory>,
    pub attempts: Arc<dyn AttemptCounter>,
    pub queue: Arc<dyn JobQueue>,
    /// The daily schedule's progress per firing and which of its jobs went out.
    pub schedule: Arc<dyn sync::ScheduleBook>,
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Appends to the audit trail. The trail must not undo what it records: a failed write is logged
/// at error level and the action stands.
pub(crate) async fn audit(core: &Core, workspace: &WorkspaceId, event: AuditEvent) {
    if let Err(e) = core.audit.record(workspace, &event).await {
        tracing::error!(error = %e, action = ?event.action, "could not write the audit trail");
    }
}

/// The one way the core changes a stored connector: `change` edits a fresh copy and answers
/// whether to write it; a write race re-reads and asks again. `Ok(None)` when the connector is
/// gone or `change` declined.
pub(crate) async fn update_connector(
    core: &Core,
    workspace: &WorkspaceId,
    mut change: impl FnMut(&mut Connector) -> bool,
) -> Result<Option<Connector>, StoreError> {
    for _ in 0..8 {
        let Some(mut c) = core.connectors.get(workspace).await? else {
            return Ok(None);
        };
        if !change(&mut c) {
            return Ok(None);
        }
        if core.connectors.replace(&mut c).await? {
            return Ok(Some(c));
        }
    }
    Err(StoreError(
        "the connector kept changing while it was being updated".into(),
    ))
}
