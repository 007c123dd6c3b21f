//! The ports the core needs. Adapters (DynamoDB, Secrets Manager, Gradient) implement them.

use crate::catalogue::Service;
use crate::connector::Connector;
use crate::ids::WorkspaceId;
use crate::secret::ApiToken;
use crate::workspace::Workspace;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// An infrastructure failure of a store; opaque to callers, logged with its cause.
#[derive(Debug, thiserror::Error)]
#[error("store failure: {0}")]
pub struct StoreError(pub String);

/// Connectors, one per (channel workspace, type).
#[async_trait]
pub trait ConnectorRepo: Send + Sync {
    /// The workspace's Gradient connector, if any.
    async fn get(&self, workspace: &WorkspaceId) -> Result<Option<Connector>, StoreError>;
    /// Writes a new connector if the workspace has none; `Ok(false)` if it already has one.
    async fn insert(&self, connector: &Connector) -> Result<bool, StoreError>;
    /// Writes `connector` if the stored version is still `connector.version`, bumping it;
    /// `Ok(false)` if someone else wrote in between (re-read and decide again).
    async fn replace(&self, connector: &mut Connector) -> Result<bool, StoreError>;
    /// Removes the connector (no error if it is already gone).
    async fn delete(&self, workspace: &WorkspaceId) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no token is stored for this connector")]
    NotFound,
    #[error("secret store failure: {0}")]
    Unavailable(String),
}

/// Partner tokens, one secret per connector.
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// Stores the token as the connector's current secret (creating the secret if needed).
    async fn store(&self, workspace: &WorkspaceId, token: &ApiToken) -> Result<(), VaultError>;
    /// The connector's current token.
    async fn load(&self, workspace: &WorkspaceId) -> Result<ApiToken, VaultError>;
    /// Deletes the secret at once, without a recovery window; no error if it is absent.
    async fn delete(&self, workspace: &WorkspaceId) -> Result<(), VaultError>;
}

/// The Coro platform's workspace read model (read only).
#[async_trait]
pub trait WorkspaceDirectory: Send + Sync {
    /// Direct children of a workspace (items that do not parse are skipped and logged).
    async fn children(&self, parent: &WorkspaceId) -> Result<Vec<Workspace>, StoreError>;
}

/// Which Gradient service id each catalogue key has (Gradient services are vendor-wide).
#[async_trait]
pub trait ServiceRegistry: Send + Sync {
    /// Catalogue key → Gradient service id, for every service already created.
    async fn known(&self) -> Result<BTreeMap<String, String>, StoreError>;
    /// Remembers the Gradient id of a catalogue key (first writer wins; later writes are ignored).
    async fn record(&self, key: &str, service_id: &str) -> Result<(), StoreError>;
    /// Takes the vendor-wide "creating services" lock for `ttl`; `Ok(false)` if someone holds it.
    async fn try_lock(&self, owner: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Releases the lock if `owner` still holds it.
    async fn unlock(&self, owner: &str) -> Result<(), StoreError>;
}

/// How a PSA call failed, in the classes the core reacts to differently.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PsaError {
    /// 401: the partner token was regenerated or revoked (or the vendor key is wrong).
    #[error("the PSA rejected the token")]
    TokenRejected,
    /// 403: the PSA stopped us ("anomaly detected").
    #[error("the PSA refused the call: {0}")]
    Forbidden(String),
    /// 404: on a count, the pair is unmapped; on a read, a configuration problem.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: e.g. an account id already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429, 5xx, timeouts, network trouble — after the client's own bounded retries.
    #[error("the PSA is unavailable: {what}")]
    Unavailable {
        what: String,
        retry_after: Option<Duration>,
    },
    /// Anything else (a 400, an unreadable answer): a bug on one side.
    #[error("unexpected PSA answer: {0}")]
    Unexpected(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsaStatus {
    Inactive,
    Pending,
    Active,
    Disabled,
    Error,
}

impl PsaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaOrganization {
    pub id: String,
    pub name: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaAccount {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaService {
    pub id: String,
    pub name: String,
}

/// The PSA middleware (Gradient's Synthesize vendor API), per MSP token.
#[async_trait]
pub trait Psa: Send + Sync {
    /// The MSP's integration; the way to check a token.
    async fn organization(&self, token: &ApiToken) -> Result<PsaOrganization, PsaError>;
    async fn set_status(&self, token: &ApiToken, status: PsaStatus) -> Result<(), PsaError>;
    async fn accounts(&self, token: &ApiToken) -> Result<Vec<PsaAccount>, PsaError>;
    /// Creates accounts in bulk (the adapter chunks large batches).
    async fn create_accounts(
        &self,
        token: &ApiToken,
        accounts: &[PsaAccount],
    ) -> Result<(), PsaError>;
    async fn update_account(&self, token: &ApiToken, account: &PsaAccount) -> Result<(), PsaError>;
    /// The vendor's services (vendor-wide).
    async fn services(&self, token: &ApiToken) -> Result<Vec<PsaService>, PsaError>;
    /// Creates one service; answers the vendor's services afterwards.
    async fn create_service(
        &self,
        token: &ApiToken,
        service: &Service,
    ) -> Result<Vec<PsaService>, PsaError>;
    /// Sets the unit count of one service for one account (a set, not an increment).
    async fn post_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account_id: &str,
        count: u64,
        no_build: bool,
    ) -> Result<(), PsaError>;
}
