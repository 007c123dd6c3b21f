//! Connectors, their tokens, and the platform's workspace read model.

use super::StoreError;
use crate::connector::{Connector, ConnectorRef};
use crate::ids::{ConnectorType, WorkspaceId};
use crate::secret::ApiToken;
use crate::workspace::Workspace;
use async_trait::async_trait;

/// Connectors, one per (channel workspace, type).
#[async_trait]
pub trait ConnectorRepo: Send + Sync {
    /// The workspace's connector of type `kind`, if any.
    async fn get(
        &self,
        workspace: &WorkspaceId,
        kind: ConnectorType,
    ) -> Result<Option<Connector>, StoreError>;
    /// Every connector of the workspace (at most one per type), ordered by type id.
    async fn list(&self, workspace: &WorkspaceId) -> Result<Vec<Connector>, StoreError>;
    /// Writes a new connector if the workspace has none of its type; `Ok(false)` if it already
    /// has one.
    async fn insert(&self, connector: &Connector) -> Result<bool, StoreError>;
    /// Writes `connector` if the stored version is still `connector.version`, bumping it;
    /// `Ok(false)` if someone else wrote in between (re-read and decide again).
    async fn replace(&self, connector: &mut Connector) -> Result<bool, StoreError>;
    /// Removes the workspace's connector of type `kind` (no error if it is already gone).
    async fn delete(&self, workspace: &WorkspaceId, kind: ConnectorType) -> Result<(), StoreError>;
    /// One page of connected connectors (an index query, never a scan); `cursor` is the opaque
    /// continuation of the previous page.
    async fn connected_page(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<Connector>, Option<String>), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no token is stored for this connector")]
    NotFound,
    #[error("secret store failure: {0}")]
    Unavailable(String),
}

/// Partner tokens, one secret per connector (workspace and type).
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// Stores the token as the current secret of the workspace's connector of type `kind`
    /// (creating the secret if needed).
    async fn store(
        &self,
        workspace: &WorkspaceId,
        kind: ConnectorType,
        token: &ApiToken,
    ) -> Result<(), VaultError>;
    /// The connector's current token as of `token_version` of incarnation `connector` (an
    /// adapter may cache by both, never serving a replaced token for a newer version or a token
    /// of a deleted incarnation to a new one).
    async fn load(
        &self,
        connector: &ConnectorRef,
        token_version: u64,
    ) -> Result<ApiToken, VaultError>;
    /// Deletes the secret at once, without a recovery window; no error if it is absent.
    async fn delete(&self, workspace: &WorkspaceId, kind: ConnectorType) -> Result<(), VaultError>;
}

/// The Coro platform's workspace read model (read only).
#[async_trait]
pub trait WorkspaceDirectory: Send + Sync {
    /// Direct children of a workspace (items that do not parse are skipped and logged).
    async fn children(&self, parent: &WorkspaceId) -> Result<Vec<Workspace>, StoreError>;
    /// One workspace, if the read model has it (and it parses).
    async fn workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError>;
}

/// Which workspace's connector each PSA organization backs: at most one in the whole deployment,
/// so no workspace can post into, deactivate or re-point another's organization.
#[async_trait]
pub trait OrganizationBindings: Send + Sync {
    /// Binds `organization` of PSA `kind` to `workspace` (a conditional write); `Ok(true)` when
    /// it is now (or already was) bound to `workspace`, `Ok(false)` when another workspace holds
    /// it (nothing written).
    async fn bind(
        &self,
        kind: ConnectorType,
        organization: &str,
        workspace: &WorkspaceId,
    ) -> Result<bool, StoreError>;
    /// Frees `organization` if `workspace` holds it (no error if it does not).
    async fn unbind(
        &self,
        kind: ConnectorType,
        organization: &str,
        workspace: &WorkspaceId,
    ) -> Result<(), StoreError>;
}
