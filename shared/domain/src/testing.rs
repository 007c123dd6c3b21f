//! In-memory port fakes for the core's unit tests (fast, no servers): [`Memory`] for every store
//! port, [`FakePsa`] for the PSA. Integration tests use the real adapters against local servers;
//! these only stand in for them where a test is about the core's own logic.

mod psa;
mod store;

pub use psa::{Fail, FakePsa};
pub use store::Memory;

use crate::caller::{Caller, Role, WorkspaceType};
use crate::catalogue::Catalogue;
use crate::ids::{UserId, WorkspaceId};
use crate::secret::ApiToken;
use crate::usecase::Core;
use crate::workspace::{Workspace, WorkspaceStatus};
use std::sync::Arc;

/// A core over [`Memory`] and a [`FakePsa`], both kept for the test to look into.
pub struct World {
    pub core: Core,
    pub store: Arc<Memory>,
    pub psa: Arc<FakePsa>,
}

impl World {
    pub fn new() -> Self {
        let store = Arc::new(Memory::default());
        let psa = Arc::new(FakePsa::default());
        let core = Core {
            connectors: store.clone(),
            vault: store.clone(),
            directory: store.clone(),
            psa: psa.clone(),
            catalogue: Arc::new(Catalogue::builtin()),
            slots: store.clone(),
            runs: store.clone(),
            readings: store.clone(),
            pairs: store.clone(),
            audit: store.clone(),
            key_health: store.clone(),
            alerts: store.clone(),
            attempts: store.clone(),
            queue: store.clone(),
            events: Arc::new(crate::telemetry::NoEvents),
            metrics: Arc::new(crate::telemetry::NoMetrics),
        };
        Self { core, store, psa }
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
    }
}

pub fn token(raw: &str) -> ApiToken {
    ApiToken::parse(raw).unwrap()
}
