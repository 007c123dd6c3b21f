//! In-memory port fakes for the core's unit tests (fast, no servers): [`Memory`] for every store
//! port, [`FakePsa`] for the PSA. Integration tests use the real adapters against local servers;
//! these only stand in for them where a test is about the core's own logic.
//!
//! For the simulation (`crate::simulation`) the fakes also inject faults, drawn from one seeded
//! [`Faults`]: `Memory`'s [`store::Tap`], [`SimSlots`] (leases and expiries on tokio's clock),
//! [`SimQueue`] (at-least-once, unordered), [`SimBook`] (the schedule's records) and [`SimPsa`]
//! (organizations, tokens, mapped pairs, 429/5xx/401/403/404 and slow answers).

pub mod faults;
mod psa;
pub mod queue;
pub mod sim_psa;
pub mod slots;
pub mod store;

pub use faults::{Faults, Rates, as_actor};
pub use psa::{Fail, FakePsa};
pub use queue::SimQueue;
pub use sim_psa::SimPsa;
pub use slots::{SimBook, SimSlots};
pub use store::Memory;

use crate::caller::{Caller, Role, WorkspaceType};
use crate::catalogue::Catalogue;
use crate::ids::{ConnectorType, UserId, WorkspaceId};
use crate::secret::ApiToken;
use crate::usecase::{Core, Psas, QueueCore, WorkerCore};
use crate::workspace::{Workspace, WorkspaceStatus};
use std::sync::Arc;

/// A core over [`Memory`] and two [`FakePsa`]s, all kept for the test to look into: `psa` serves
/// Gradient connectors, `second` connectors of [`ConnectorType::Second`].
pub struct World {
    /// Every port (the store, the vault, the PSAs, the queue); it passes as `&Core`, `&PsaCore`
    /// and `&WorkerCore`, and [`World::queue_core`] gives the queue's family its own.
    pub core: WorkerCore,
    pub store: Arc<Memory>,
    pub psa: Arc<FakePsa>,
    pub second: Arc<FakePsa>,
}

impl World {
    pub fn new() -> Self {
        let store = Arc::new(Memory::default());
        let psa = Arc::new(FakePsa::default());
        let second = Arc::new(FakePsa::default());
        let psas = Psas::new()
            .with(ConnectorType::Gradient, psa.clone())
            .with(ConnectorType::Second, second.clone());
        let core = core_over(&store, store.clone(), Arc::new(NoScheduleBook));
        Self {
            core: WorkerCore::new(core, store.clone(), psas, store.clone()),
            store,
            psa,
            second,
        }
    }

    /// The core with the queue, for the use cases that enqueue (request, release, schedule).
    pub fn queue_core(&self) -> QueueCore {
        QueueCore {
            core: self.core.core.clone(),
            queue: self.core.queue.clone(),
        }
    }

    /// Adds a managed workspace under `parent`.
    pub fn child(
        &self,
        parent: &str,
        id: &str,
        name: &str,
        services: &[&str],
        users: u64,
    ) -> Workspace {
        let ws = Workspace {
            id: WorkspaceId::parse(id).unwrap(),
            parent: Some(WorkspaceId::parse(parent).unwrap()),
            kind: WorkspaceType::Child,
            name: name.into(),
            domain: None,
            status: WorkspaceStatus::Subscription,
            services: services.iter().map(|s| s.to_string()).collect(),
            protected_users: users,
            protected_devices: users,
        };
        let mut children = self.store.children.lock().unwrap();
        children
            .entry(WorkspaceId::parse(parent).unwrap())
            .or_default()
            .push(ws.clone());
        ws
    }
}

/// An admin of channel workspace `ws`.
pub fn admin(ws: &str) -> Caller {
    Caller {
        user: UserId::parse("u-admin").unwrap(),
        workspace: WorkspaceId::parse(ws).unwrap(),
        workspace_type: WorkspaceType::Channel,
        role: Role::Admin,
        email: Some("admin@msp.example".into()),
    }
}

pub fn token(raw: &str) -> ApiToken {
    ApiToken::parse(raw).unwrap()
}

/// The unit tests here do not schedule (the scheduler is tested against DynamoDB Local in
/// `tests/tests/schedule.rs`): every call says so.
/// A `Core` whose store ports are all `store` but `slots` and `schedule`; no events or metrics.
pub fn core_over(
    store: &Arc<Memory>,
    slots: Arc<dyn crate::ports::RunSlots>,
    schedule: Arc<dyn crate::usecase::sync::ScheduleBook>,
) -> Core {
    Core {
        connectors: store.clone(),
        orgs: store.clone(),
        directory: store.clone(),
        catalogue: Arc::new(Catalogue::builtin()),
        slots,
        runs: store.clone(),
        readings: store.clone(),
        pairs: store.clone(),
        audit: store.clone(),
        key_health: store.clone(),
        alerts: store.clone(),
        attempts: store.clone(),
        events: Arc::new(crate::ports::NoEvents),
        metrics: Arc::new(crate::ports::NoMetrics),
        schedule,
    }
}

pub struct NoScheduleBook;

fn not_here() -> crate::ports::StoreError {
    crate::ports::StoreError("the unit-test world keeps no schedule".into())
}

#[async_trait::async_trait]
impl crate::usecase::sync::ScheduleBook for NoScheduleBook {
    async fn claim_firing(
        &self,
        _: &crate::ids::RunId,
        _: &str,
        _: time::OffsetDateTime,
    ) -> Result<crate::usecase::sync::FiringClaim, crate::ports::StoreError> {
        Err(not_here())
    }
    async fn save_firing(
        &self,
        _: &crate::ids::RunId,
        _: &str,
        _: time::OffsetDateTime,
        _: &crate::usecase::sync::ScheduleProgress,
    ) -> Result<bool, crate::ports::StoreError> {
        Err(not_here())
    }
    async fn release_firing(
        &self,
        _: &crate::ids::RunId,
        _: &str,
    ) -> Result<(), crate::ports::StoreError> {
        Err(not_here())
    }
    async fn latest_firing(&self) -> Result<Option<crate::ids::RunId>, crate::ports::StoreError> {
        Err(not_here())
    }
    async fn scheduled_runs(
        &self,
        _: &crate::ids::RunId,
        _: &[crate::connector::ConnectorRef],
    ) -> Result<
        std::collections::HashMap<
            crate::connector::ConnectorRef,
            crate::usecase::sync::ScheduledRun,
        >,
        crate::ports::StoreError,
    > {
        Err(not_here())
    }
    async fn mark_enqueued(
        &self,
        _: &crate::ids::RunId,
        _: &[crate::connector::ConnectorRef],
    ) -> Result<(), crate::ports::StoreError> {
        Err(not_here())
    }
}
