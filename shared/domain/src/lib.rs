//! The pure core of the Coro PSA connectors: ids, secrets, the connector and its status machine,
//! the service catalogue, workspaces, sync runs, the ports the core needs, and the use cases.
//! No AWS or HTTP types live here.

pub mod audit;
pub mod budget;
pub mod caller;
pub mod calls;
pub mod capacity;
pub mod catalogue;
pub mod connector;
pub mod deadline;
pub mod ids;
pub mod notify;
pub mod policy;
pub mod ports;
pub mod secret;
#[cfg(test)]
mod simulation;
pub mod sync;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod usecase;
pub mod workspace;

pub use audit::{Actor, AuditAction, AuditEvent};
pub use caller::{AccessError, Caller, Role, WorkspaceType};
pub use catalogue::{Catalogue, Service, Unit};
pub use connector::{
    Connector, ConnectorRef, ConnectorSettings, ConnectorStatus, LastSync, SettingsPatch,
};
pub use ids::{ConnectorType, RunId, UserId, WorkspaceId};
pub use secret::{ApiToken, TokenError, VendorKey};
pub use sync::{
    Accepted, AttemptOutcome, Failure, Outcome, PairState, RunCounts, RunReading, RunStatus,
    RunTicket, SyncRun, TicketState, Trigger,
};
pub use workspace::{Workspace, WorkspaceStatus};
