//! Use cases: what the functions ask the core to do.

pub mod connectors;
pub mod notice;
pub mod provision;
pub mod sync;
pub mod views;

#[cfg(test)]
mod tests;

use crate::audit::AuditEvent;
use crate::catalogue::Catalogue;
use crate::connector::Connector;
use crate::ids::{ConnectorType, WorkspaceId};
use crate::ports::{
    AlertMemory, AttemptCounter, AuditLog, ConnectorRepo, JobQueue, KeyHealth,
    OrganizationBindings, PairStates, Psa, RunReadings, RunSlots, StoreError, SyncRuns, TokenVault,
    WorkspaceDirectory,
};
use crate::ports::{Events, Metrics};
mod not_served;
use crate::telemetry::{Event, Measurement};
pub use not_served::NotServed;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// The ports every function has (the store, the catalogue, events and metrics), built once per
/// process in `main`. What only some functions have comes on top, in a deps struct per family of
/// use cases, so a function cannot call a use case it has no ports for: [`PsaCore`] (the
/// partner tokens and the PSA: connect, re-token, delete, the usage view), [`QueueCore`] (the sync
/// queue: request, release, the daily schedule) and [`WorkerCore`] (both: a sync job).
#[derive(Clone)]
pub struct Core {
    pub connectors: Arc<dyn ConnectorRepo>,
    /// Which workspace each PSA organization is bound to (one connector per organization).
    pub orgs: Arc<dyn OrganizationBindings>,
    pub directory: Arc<dyn WorkspaceDirectory>,
    pub catalogue: Arc<Catalogue>,
    pub slots: Arc<dyn RunSlots>,
    pub runs: Arc<dyn SyncRuns>,
    pub readings: Arc<dyn RunReadings>,
    pub pairs: Arc<dyn PairStates>,
    pub audit: Arc<dyn AuditLog>,
    pub key_health: Arc<dyn KeyHealth>,
    pub alerts: Arc<dyn AlertMemory>,
    pub attempts: Arc<dyn AttemptCounter>,
    /// Contract events (`EVENT_BUS_NAME`; none when unset).
    pub events: Arc<dyn Events>,
    /// EMF metrics on stdout.
    pub metrics: Arc<dyn Metrics>,
    /// The daily schedule's progress per firing and which of its jobs went out.
    pub schedule: Arc<dyn sync::ScheduleBook>,
}

/// The core with the partner tokens and the PSAs: the connectors API's and the worker's.
#[derive(Clone)]
pub struct PsaCore {
    pub core: Core,
    pub vault: Arc<dyn TokenVault>,
    /// The PSA adapter of each connector type this deployment serves; use cases reach them
    /// through [`PsaCore::psa`] with the type of the connector at hand.
    pub psas: Psas,
}

impl PsaCore {
    /// The PSA of connectors of type `kind`.
    pub fn psa(&self, kind: ConnectorType) -> &dyn Psa {
        self.psas.get(kind)
    }
}

impl std::ops::Deref for PsaCore {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::ops::DerefMut for PsaCore {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// The core with the sync queue: on-demand sync, release, the daily schedule.
#[derive(Clone)]
pub struct QueueCore {
    pub core: Core,
    pub queue: Arc<dyn JobQueue>,
}

impl std::ops::Deref for QueueCore {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::ops::DerefMut for QueueCore {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// Everything a sync job touches: the store, the tokens and the PSA, and the queue (its
/// continuations).
#[derive(Clone)]
pub struct WorkerCore {
    pub with_psa: PsaCore,
    pub queue: Arc<dyn JobQueue>,
}

impl WorkerCore {
    /// The same ports seen as the queue's family (request, release, schedule).
    pub fn queue_core(&self) -> QueueCore {
        QueueCore {
            core: self.with_psa.core.clone(),
            queue: self.queue.clone(),
        }
    }

    pub fn new(
        core: Core,
        vault: Arc<dyn TokenVault>,
        psas: Psas,
        queue: Arc<dyn JobQueue>,
    ) -> Self {
        Self {
            with_psa: PsaCore { core, vault, psas },
            queue,
        }
    }
}

impl std::ops::Deref for WorkerCore {
    type Target = PsaCore;
    fn deref(&self) -> &PsaCore {
        &self.with_psa
    }
}

impl std::ops::DerefMut for WorkerCore {
    fn deref_mut(&mut self) -> &mut PsaCore {
        &mut self.with_psa
    }
}

/// One PSA adapter per connector type this deployment serves. A connector of a type it does not
/// serve (one wired out of the deployment after it was connected) gets [`NotServed`]: every call
/// is refused with a reason the run records.
#[derive(Clone)]
pub struct Psas {
    by_type: HashMap<ConnectorType, Arc<dyn Psa>>,
    fallback: Arc<dyn Psa>,
}

impl Default for Psas {
    fn default() -> Self {
        Self::new()
    }
}

impl Psas {
    /// No type served yet.
    pub fn new() -> Self {
        Self {
            by_type: HashMap::new(),
            fallback: Arc::new(NotServed),
        }
    }

    /// The adapter of connectors of type `kind`.
    pub fn with(mut self, kind: ConnectorType, psa: Arc<dyn Psa>) -> Self {
        self.by_type.insert(kind, psa);
        self
    }

    /// Wires `psa` for `kind` (replacing what was there).
    pub fn set(&mut self, kind: ConnectorType, psa: Arc<dyn Psa>) {
        self.by_type.insert(kind, psa);
    }

    pub fn get(&self, kind: ConnectorType) -> &dyn Psa {
        self.by_type.get(&kind).unwrap_or(&self.fallback).as_ref()
    }

    /// Whether an adapter is wired for `kind`.
    pub fn serves(&self, kind: ConnectorType) -> bool {
        self.by_type.contains_key(&kind)
    }
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Appends to the audit trail. The trail must not undo what it records: a failed write is logged
/// at error level and the action stands.
pub(crate) async fn audit(core: &Core, workspace: &WorkspaceId, event: AuditEvent) {
    audit_keyed(core, workspace, event).await;
}

/// [`audit`], answering the entry's key when it was written.
pub(crate) async fn audit_keyed(
    core: &Core,
    workspace: &WorkspaceId,
    event: AuditEvent,
) -> Option<String> {
    match core.audit.record(workspace, &event).await {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::error!(error = %e, action = ?event.action, "could not write the audit trail");
            None
        }
    }
}

/// The one way the core changes a stored connector (the workspace's of type `kind`): `change`
/// edits a fresh copy and answers whether to write it; a write race re-reads and asks again.
/// `Ok(None)` when the connector is gone or `change` declined.
pub(crate) async fn update_connector(
    core: &Core,
    workspace: &WorkspaceId,
    kind: ConnectorType,
    mut change: impl FnMut(&mut Connector) -> bool,
) -> Result<Option<Connector>, StoreError> {
    for _ in 0..8 {
        let Some(mut c) = core.connectors.get(workspace, kind).await? else {
            return Ok(None);
        };
        let from = c.status;
        if !change(&mut c) {
            return Ok(None);
        }
        if core.connectors.replace(&mut c).await? {
            if c.status != from {
                status_changed(core, Some(from), &c).await;
            }
            return Ok(Some(c));
        }
    }
    Err(StoreError(
        "the connector kept changing while it was being updated".into(),
    ))
}

/// How long a publish may take before it is given up (it must never hold up a run or a request).
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Publishes contract events. Emitting never fails the action: a failure or a bus that does not
/// answer within [`PUBLISH_TIMEOUT`] is logged at warn and the action stands.
pub(crate) async fn publish(core: &Core, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let kinds: Vec<&str> = events.iter().map(Event::detail_type).collect();
    match tokio::time::timeout(PUBLISH_TIMEOUT, core.events.publish(&events)).await {
        Ok(Ok(())) => tracing::debug!(?kinds, "events published"),
        Ok(Err(e)) => tracing::warn!(error = %e, ?kinds, "could not publish events"),
        Err(_) => tracing::warn!(
            ?kinds,
            "the event bus did not answer in time; events dropped"
        ),
    }
}

/// A connector's status changed from `from` (`None`: it did not exist) to `connector.status`:
/// the contract event, and a metric when it is now disconnected or errored.
pub(crate) async fn status_changed(
    core: &Core,
    from: Option<crate::connector::ConnectorStatus>,
    connector: &Connector,
) {
    if let Some(m) = Measurement::status_changed(connector) {
        core.metrics.record(&m);
    }
    publish(core, vec![Event::status_changed(from, connector)]).await;
}

/// A run ended (any final status): its metrics record and the contract event.
pub(crate) async fn run_finished(core: &Core, run: &crate::sync::SyncRun) {
    core.metrics
        .record(&Measurement::run_finished(run, run.calls));
    publish(core, vec![Event::sync_finished(run)]).await;
}
