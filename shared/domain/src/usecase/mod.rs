//! Use cases: what the functions ask the core to do.

pub mod connectors;
pub mod provision;
pub mod sync;

use crate::catalogue::Catalogue;
use crate::ports::{
    ConnectorRepo, JobQueue, LastSent, Psa, RunSlots, ServiceRegistry, SyncRuns, TokenVault,
    WorkspaceDirectory,
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
    pub last: Arc<dyn LastSent>,
    pub queue: Arc<dyn JobQueue>,
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
