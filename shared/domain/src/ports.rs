//! The ports the core needs, by what they serve. Adapters (DynamoDB, SQS, Secrets Manager, a PSA)
//! implement them; every port is re-exported here, so `crate::ports::X` names any of them.

mod connectors;
mod notices;
mod psa;
mod records;
mod registry;
mod schedule;
mod sync;
mod telemetry;

pub use connectors::{
    ConnectorRepo, OrganizationBindings, TokenVault, VaultError, WorkspaceDirectory,
};
pub use notices::{MailError, Mailer, NoticeClaim, NoticeLog};
pub use psa::{
    AccountWrite, AccountsCreated, AlertRef, AlertService, Batch, BudgetShare, CountOutcome,
    Health, Psa, PsaAccount, PsaAlert, PsaError, PsaIntegration, PublishedServices, Ticket,
};
pub use records::{
    AcceptedBy, AlertMemory, AttemptCounter, AuditLog, KeyHealth, PendingTicket, Rejected,
    Rejection,
};
pub use registry::ServiceRegistry;
pub use schedule::{FiringClaim, ScheduleBook, ScheduleProgress, ScheduledRun};
pub use sync::{
    JobQueue, Lease, Page, PageError, PairStates, RunReadings, RunSlots, SlotClaim, SyncJob,
    SyncRuns,
};
/// The event bus and the metrics sink (see [`crate::telemetry`]).
pub use telemetry::{Events, Metrics, NoEvents, NoMetrics};

/// An infrastructure failure of a store; opaque to callers, logged with its cause.
#[derive(Debug, thiserror::Error)]
#[error("store failure: {0}")]
pub struct StoreError(pub String);
