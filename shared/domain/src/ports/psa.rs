//! The PSA in the core's own terms: check a token, publish services and accounts, report counts
//! (with their outcomes), raise alerts, and say when an integration starts and ends.
//!
//! A PSA type implements [`Psa`] in its own crate (Gradient: `psa-gradient`); its API — status
//! names, batching flags, vendor-wide records and locks, headers — stays behind that adapter.

use super::StoreError;
use crate::catalogue::{Catalogue, Service};
use crate::ids::WorkspaceId;
use crate::secret::ApiToken;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a PSA call failed, in the classes the core reacts to differently.
#[derive(Debug, thiserror::Error)]
pub enum PsaError {
    /// The PSA rejected the token (regenerated or revoked, or the vendor's own key is wrong).
    #[error("the PSA rejected the token")]
    TokenRejected,
    /// The PSA stopped us (e.g. "anomaly detected"): no further calls with this token.
    #[error("the PSA refused the call: {0}")]
    Forbidden(String),
    /// Something the call needs does not exist in the PSA: a configuration problem.
    #[error("not found: {0}")]
    NotFound(String),
    /// The call clashes with what the PSA holds.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The PSA (or what the adapter needs to reach it) is unavailable — after the adapter's own
    /// bounded retries.
    #[error("the PSA is unavailable: {what}")]
    Unavailable {
        what: String,
        retry_after: Option<Duration>,
    },
    /// Anything else (a refused request, an unreadable answer): a bug on one side.
    #[error("unexpected PSA answer: {0}")]
    Unexpected(String),
    /// The records the adapter keeps in our own store failed: a store failure like any other.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The MSP's integration as the PSA sees it, answered by a token check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaIntegration {
    pub id: String,
    pub name: String,
    /// The PSA already treats the integration as live (set-up need not announce it again).
    pub live: bool,
}

/// One account (a managed workspace) as the PSA holds it; `id` is the Coro workspace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaAccount {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

/// What creating accounts did: how many the PSA holds now, and those it refused, with its reason
/// (their readings fail; the others go on).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountsCreated {
    pub created: u64,
    pub refused: BTreeMap<String, String>,
}

/// How an account update ended when the PSA answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountWrite {
    Written,
    /// The PSA refused this account, with its reason.
    Refused(String),
}

/// The catalogue as published in the PSA.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishedServices {
    /// Catalogue key → the PSA's id of the service.
    pub ids: BTreeMap<String, String>,
    /// Services this call created in the PSA.
    pub created: u64,
}

/// Where a count stands in its run. A PSA may defer expensive work until the last count
/// (Gradient rebuilds its billing view only then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// More counts of this run follow.
    MoreFollow,
    /// The run's last count: the PSA brings its billing up to date now.
    Last,
}

/// How a reported count ended when the PSA answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountOutcome {
    /// The PSA holds the count (it bills it).
    Accepted,
    /// The PSA has nothing to bill the pair against yet (the MSP has not mapped it): normal; the
    /// count is sent again next run.
    Unmapped,
}

/// A service of an alert: the catalogue key, the service (if the catalogue still lists it), and
/// the count Coro reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertService {
    pub key: String,
    pub service: Option<Service>,
    pub value: u64,
}

/// Something the MSP should act on, raised in its PSA (e.g. as a ticket). The core says what it
/// is about; the adapter words it in the PSA's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsaAlert {
    /// An account billed through the PSA has services the PSA answered "unmapped" for.
    UnmappedServices {
        account_id: String,
        account_name: String,
        services: Vec<AlertService>,
        /// The PSA's id of the service, when the alert is about exactly one.
        service_id: Option<String>,
    },
}

/// What the MSP is shown of Coro's side of the integration (see `usecase::sync::health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Syncs succeed.
    Healthy,
    /// `SYNC_ERROR_AFTER` runs in a row failed.
    Failing,
}

/// A PSA, per MSP token.
#[async_trait]
pub trait Psa: Send + Sync {
    /// The PSA's name as the MSP knows it (`Gradient`), for the reasons a run or reading records.
    fn name(&self) -> &'static str;
    /// Checks the token: the MSP's integration, or why not.
    async fn verify(&self, token: &ApiToken) -> Result<PsaIntegration, PsaError>;
    /// Tells the PSA the integration is being set up (after a connect or a re-token).
    async fn begin_setup(
        &self,
        token: &ApiToken,
        integration: &PsaIntegration,
    ) -> Result<(), PsaError>;
    /// Tells the PSA the connector is gone.
    async fn disconnect(&self, token: &ApiToken) -> Result<(), PsaError>;
    /// Shows the MSP, in the PSA, whether Coro's side of the integration is healthy.
    async fn report_health(&self, token: &ApiToken, health: Health) -> Result<(), PsaError>;
    /// The PSA's own name of the status a [`Health`] is shown as (for the audit).
    fn health_name(&self, health: Health) -> &'static str;
    /// Makes the PSA hold every catalogue service (creating what is missing, never twice, also
    /// when several MSPs publish at once); `by` is the MSP publishing.
    async fn publish_services(
        &self,
        token: &ApiToken,
        catalogue: &Catalogue,
        by: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError>;
    /// Catalogue key → the PSA's id for the services published so far, from the adapter's own
    /// records (no PSA call): what a preview may assume.
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError>;
    /// The accounts the PSA holds for this MSP (names and descriptions trimmed, blank = `None`).
    async fn accounts(&self, token: &ApiToken) -> Result<Vec<PsaAccount>, PsaError>;
    /// Creates accounts the PSA does not hold; one the PSA refuses does not stop the others.
    async fn create_accounts(
        &self,
        token: &ApiToken,
        accounts: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError>;
    /// Makes an existing account's name and description what `account` says.
    async fn update_account(
        &self,
        token: &ApiToken,
        account: &PsaAccount,
    ) -> Result<AccountWrite, PsaError>;
    /// Reports the unit count of one service for one account (a set, not an increment).
    async fn report_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account_id: &str,
        count: u64,
        batch: Batch,
    ) -> Result<CountOutcome, PsaError>;
    /// Raises an alert about an account the PSA bills; answers the PSA's handle of it.
    async fn raise_alert(&self, token: &ApiToken, alert: &PsaAlert) -> Result<AlertRef, PsaError>;
    /// Whether an accepted alert became a ticket in the MSP's PSA.
    async fn ticket(&self, token: &ApiToken, alert: &AlertRef) -> Result<Ticket, PsaError>;
}

/// The PSA's handle of an accepted alert (Gradient: its `messageId`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertRef(pub String);

/// What became of an accepted alert in the MSP's PSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ticket {
    /// A ticket exists: the PSA's id of it.
    Created { id: String },
    /// Not yet a ticket; asked again on later runs.
    Pending,
    /// It will not become one: the first error (at most 200 characters).
    Failed { error: String },
}

/// This process's share of the deployment's request budget towards a PSA (the vendor's rate
/// limit is deployment-wide). A function takes it ahead of its calls and gives it back before
/// Lambda may freeze the process, so an idle process holds nothing another could use.
#[async_trait]
pub trait BudgetShare: Send + Sync {
    /// Takes the share now if none is in force, so the first call need not wait for it.
    async fn prepare(&self);
    /// Gives the share back at once (the end of a batch or a request).
    async fn release(&self);
}
