//! Use cases: what the functions ask the core to do.

pub mod connectors;
pub mod provision;

use crate::catalogue::Catalogue;
use crate::ports::{ConnectorRepo, Psa, ServiceRegistry, TokenVault, WorkspaceDirectory};
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
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
