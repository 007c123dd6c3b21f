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

/// Partner tokens, one secret per connector.
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// Stores the token as the connector's current secret (creating the secret if needed).
    async fn store(&self, workspace: &WorkspaceId, token: &ApiToken) -> Result<(), VaultError>;
    /// The connector's current token as of `token_version` of incarnation `connector` (an
    /// adapter may cache by both, never serving a replaced token for a newer version or a token
    /// of a deleted incarnation to a new one).
    async fn load(
        &self,
        connector: &crate::connector::ConnectorRef,
        token_version: u64,
    ) -> Result<ApiToken, VaultError>;
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

/// An alert for the MSP's PSA (a ticket), about one account and optionally one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaAlert {
    pub title: String,
    pub description: String,
    /// The PSA's id of the service it is about, when it is about one.
    pub service_id: Option<String>,
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
    /// Raises an alert that the PSA turns into a ticket on the company the account is mapped to.
    async fn raise_alert(
        &self,
        token: &ApiToken,
        account_id: &str,
        alert: &PsaAlert,
    ) -> Result<(), PsaError>;
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

// ---- usage sync ----------------------------------------------------------------------------

use crate::audit::AuditEvent;
use crate::connector::ConnectorRef;
use crate::ids::RunId;
use crate::sync::{Outcome, PairState, RunReading, SyncRun};
use serde::{Deserialize, Serialize};

/// One message on the sync queue: run `run_id` of one incarnation of the workspace's connector.
/// A continuation of a run is the same job again (progress lives in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJob {
    pub workspace_id: WorkspaceId,
    pub run_id: RunId,
    pub incarnation: String,
}

impl SyncJob {
    pub fn for_run(run: &SyncRun) -> Self {
        Self {
            workspace_id: run.workspace_id.clone(),
            run_id: run.run_id.clone(),
            incarnation: run.incarnation.clone(),
        }
    }

    pub fn connector(&self) -> ConnectorRef {
        ConnectorRef {
            workspace: self.workspace_id.clone(),
            kind: crate::ids::ConnectorType::Gradient,
            incarnation: self.incarnation.clone(),
        }
    }
}

/// The sync job queue.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues jobs (the adapter batches them, 10 per SendMessageBatch).
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), StoreError>;
}

/// Outcome of claiming a connector's run slot (one queued-or-running run per connector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotClaim {
    /// The slot is now (or already was) held for this run.
    Claimed,
    /// Another run holds it.
    Busy(RunId),
}

/// Outcome of taking the worker lease inside the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This owner holds the lease until it expires or is renewed.
    Acquired,
    /// Another worker holds an unexpired lease for the same run (a duplicate delivery).
    HeldByOther,
    /// The slot belongs to another run: this run must not execute.
    OtherRun(RunId),
}

/// Per-connector run slot (queued or running run), worker lease, on-demand cool-down.
#[async_trait]
pub trait RunSlots: Send + Sync {
    /// Claims the slot for `run` if it is free, expired, or already this run's; `ttl` bounds how
    /// long a queued run may hold it without a worker.
    async fn claim_slot(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        ttl: Duration,
    ) -> Result<SlotClaim, StoreError>;
    /// Frees the slot if `run` still holds it.
    async fn release_slot(&self, connector: &ConnectorRef, run: &RunId) -> Result<(), StoreError>;
    /// Takes (or renews) the worker lease of `run` for `owner` until now + `ttl`; creates the slot
    /// for `run` if there is none. Also pushes the slot's expiry past the lease.
    async fn take_lease(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError>;
    /// Ends `owner`'s lease of `run` early (the slot stays: the run continues in another job).
    async fn drop_lease(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError>;
    /// Records an on-demand request if the last one is older than `cooldown`; otherwise answers
    /// how long to wait.
    async fn claim_cooldown(
        &self,
        connector: &ConnectorRef,
        cooldown: Duration,
    ) -> Result<Option<Duration>, StoreError>;
    /// Removes the slot and the cool-down of a deleted connector incarnation.
    async fn clear(&self, connector: &ConnectorRef) -> Result<(), StoreError>;
}

/// One page of a list and the opaque cursor of the next (absent on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The cursor is not one this store handed out.
    #[error("invalid cursor")]
    InvalidCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sync run records (kept 90 days).
#[async_trait]
pub trait SyncRuns: Send + Sync {
    /// Writes a new run; `Ok(false)` if a run with this id already exists.
    async fn create_run(&self, run: &SyncRun) -> Result<bool, StoreError>;
    /// Overwrites the run record.
    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError>;
    async fn get_run(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
    ) -> Result<Option<SyncRun>, StoreError>;
    /// Newest `queuedAt` first; `cursor` is the opaque `next` of the previous page.
    async fn list_runs(
        &self,
        connector: &ConnectorRef,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<SyncRun>, PageError>;
}

/// The readings of each run and their outcomes (kept at least 35 days).
#[async_trait]
pub trait RunReadings: Send + Sync {
    /// Records readings (a reading recorded again replaces the earlier record).
    async fn put_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        readings: &[RunReading],
    ) -> Result<(), StoreError>;
    /// Every recorded reading of the run, ordered by account id then service key.
    async fn all_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
    ) -> Result<Vec<RunReading>, StoreError>;
    /// One page of the run's readings in the same order, optionally of one outcome only.
    async fn readings_page(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        outcome: Option<Outcome>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<RunReading>, PageError>;
}

/// What the project knows about each (account, service) pair: the last accepted value, for the
/// delta, and the latest attempt, for the usage view.
#[async_trait]
pub trait PairStates: Send + Sync {
    /// Everything recorded for the connector incarnation, keyed by (account id, service key).
    async fn pairs(
        &self,
        connector: &ConnectorRef,
    ) -> Result<BTreeMap<(String, String), PairState>, StoreError>;
    /// Writes pair states (batched; the last state of a key wins).
    async fn put_pairs(
        &self,
        connector: &ConnectorRef,
        pairs: &[PairState],
    ) -> Result<(), StoreError>;
    /// Forgets pairs (e.g. every pair of an account the PSA lost and that was created again).
    async fn delete_pairs(
        &self,
        connector: &ConnectorRef,
        keys: &[(String, String)],
    ) -> Result<(), StoreError>;
}

/// The audit trail of a workspace (kept at least 400 days, survives the connector).
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, workspace: &WorkspaceId, event: &AuditEvent) -> Result<(), StoreError>;
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

/// Deployment-wide record of PSA rejections, to tell a bad vendor key from MSPs' bad tokens.
#[async_trait]
pub trait KeyHealth: Send + Sync {
    /// A PSA call with the vendor key was accepted: any wave of rejections is over.
    async fn accepted(&self) -> Result<(), StoreError>;
    /// Records that `workspace`'s connector was rejected and answers the distinct workspaces
    /// rejected (this kind) within `window` with no accepted call since, this one included.
    async fn rejected(
        &self,
        kind: Rejection,
        workspace: &WorkspaceId,
        window: Duration,
    ) -> Result<Vec<WorkspaceId>, StoreError>;
}

/// When each account of a connector was last alerted about, per kind of alert.
#[async_trait]
pub trait AlertMemory: Send + Sync {
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

// ---- telemetry -----------------------------------------------------------------------------

/// The event bus and the metrics sink (see [`crate::telemetry`]).
pub use crate::telemetry::{Events, Metrics};
