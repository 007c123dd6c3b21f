//! What the MSP can look at: sync history, each run's readings, the usage reconciliation and
//! billing preview ([`usage`]), and the audit trail. Reads only — no view makes a PSA call.

mod usage;

pub use usage::{
    LastAccepted, SyncRef, Usage, UsageGuard, UsageLine, UsageState, UsageSummary, usage,
};

use super::Core;
use crate::audit::AuditEvent;
use crate::caller::Caller;
use crate::connector::Connector;
use crate::ids::{ConnectorType, RunId};
use crate::ports::{Page, PageError, PsaError, StoreError};
use crate::sync::{Outcome, RunReading, SyncRun};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("the workspace has no such connector")]
    ConnectorNotFound,
    #[error("the connector has no such run")]
    RunNotFound,
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// The PSA adapter's own records could not be read.
    #[error("the PSA adapter failed")]
    Psa(#[from] PsaError),
}

impl From<PageError> for ViewError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::InvalidCursor => Self::InvalidCursor,
            PageError::Store(e) => e.into(),
        }
    }
}

pub(super) async fn connector(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
) -> Result<Connector, ViewError> {
    core.connectors
        .get(&caller.workspace, kind)
        .await?
        .filter(|c| !c.is_deleting())
        .ok_or(ViewError::ConnectorNotFound)
}

/// The connector's runs, newest `queuedAt` first.
pub async fn runs(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<SyncRun>, ViewError> {
    let c = connector(core, caller, kind).await?;
    Ok(core.runs.list_runs(&c.reference(), limit, cursor).await?)
}

pub async fn run(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
    run: &RunId,
) -> Result<SyncRun, ViewError> {
    let c = connector(core, caller, kind).await?;
    core.runs
        .get_run(&c.reference(), run)
        .await?
        .ok_or(ViewError::RunNotFound)
}

/// One page of a run's readings, ordered by account id then service key.
pub async fn readings(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
    run: &RunId,
    outcome: Option<Outcome>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<RunReading>, ViewError> {
    let c = connector(core, caller, kind).await?.reference();
    if core.runs.get_run(&c, run).await?.is_none() {
        return Err(ViewError::RunNotFound);
    }
    Ok(core
        .readings
        .readings_page(&c, run, outcome, limit, cursor)
        .await?)
}

/// Every reading of a run (with `outcome`, only those), ordered by account id then service key:
/// the export's lines (one strongly consistent query per 1 MB of readings).
pub async fn all_readings(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
    run: &RunId,
    outcome: Option<Outcome>,
) -> Result<Vec<RunReading>, ViewError> {
    let c = connector(core, caller, kind).await?.reference();
    if core.runs.get_run(&c, run).await?.is_none() {
        return Err(ViewError::RunNotFound);
    }
    let mut all = core.readings.all_readings(&c, run).await?;
    all.retain(|r| outcome.is_none_or(|o| r.outcome == o));
    Ok(all)
}

/// The workspace's audit trail, newest first (it outlives its connectors).
pub async fn audit(
    core: &Core,
    caller: &Caller,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<AuditEvent>, ViewError> {
    Ok(core
        .audit
        .audit_page(&caller.workspace, limit, cursor)
        .await?)
}
