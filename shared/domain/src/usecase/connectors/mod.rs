//! Connector lifecycle: connect, re-token, change settings, delete, read.

mod connect;
mod delete;
mod settings;
mod setup;

pub use connect::{connect, retoken};
pub use delete::{delete, finish_delete};
pub use settings::update_settings;

use super::Core;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::caller::Caller;
use crate::connector::Connector;
use crate::ids::ConnectorType;
use crate::ports::{PsaError, StoreError, VaultError};

/// Why a connector operation failed. The HTTP layer maps each variant to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("the workspace has no such connector")]
    NotFound,
    #[error("the workspace already has a connector of this type")]
    Exists,
    #[error("the PSA rejected the API token")]
    TokenRejected,
    /// The PSA answered the token check with a refusal other than a rejected token.
    #[error("the PSA refused the token check")]
    PsaRefused(#[source] PsaError),
    /// The PSA did not answer the token check (in time).
    #[error("the PSA is unavailable")]
    PsaUnavailable(#[source] PsaError),
    #[error("too many token checks; try again in {0:?}")]
    TooManyAttempts(std::time::Duration),
    #[error("too many settings changes; try again in {0:?}")]
    TooManyChanges(std::time::Duration),
    /// The token reaches a PSA organization bound to another workspace's connector.
    #[error("the PSA organization is connected to another workspace")]
    OrganizationInUse,
    /// A re-token whose token reaches another organization than the connector's own.
    #[error("the token reaches another PSA organization than the connector's")]
    OrganizationMismatch,
    #[error("the connector store failed")]
    Store(#[from] StoreError),
    #[error("the token vault failed")]
    Vault(#[from] VaultError),
}

/// What setting up the PSA after a connect or re-token did; failures leave the connector
/// connected with reason `setup_incomplete` (every sync repeats the setup).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SetupReport {
    pub services_created: u64,
    pub accounts: u64,
    pub accounts_created: u64,
    pub accounts_renamed: u64,
    pub error: Option<String>,
}

/// The caller's connector of type `kind` (one being deleted is gone).
pub async fn get(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
) -> Result<Connector, ConnectorError> {
    core.connectors
        .get(&caller.workspace, kind)
        .await?
        .filter(|c| !c.is_deleting())
        .ok_or(ConnectorError::NotFound)
}

/// The caller's connectors, one per type it connected.
pub async fn list(core: &Core, caller: &Caller) -> Result<Vec<Connector>, ConnectorError> {
    let mut all = core.connectors.list(&caller.workspace).await?;
    all.retain(|c| !c.is_deleting());
    Ok(all)
}

pub(super) fn by(caller: &Caller, action: AuditAction, kind: ConnectorType) -> AuditEvent {
    AuditEvent::new(Actor::User(caller.user.clone()), action, kind)
}
