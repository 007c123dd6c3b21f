//! The usage sync: the job queue, run slots and leases, run records, readings, pair states.

use super::StoreError;
use crate::connector::ConnectorRef;
use crate::ids::{ConnectorType, RunId, WorkspaceId};
use crate::sync::{Outcome, PairState, RunReading, SyncRun};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One message on the sync queue: run `run_id` of one incarnation of the workspace's connector.
/// A continuation of a run is the same job again (progress lives in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJob {
    pub workspace_id: WorkspaceId,
    /// The connector's type. Left out for the default type, so a job reads the same before and
    /// after types were carried (a job queued by an older build is a Gradient job).
    #[serde(default, skip_serializing_if = "ConnectorType::is_default")]
    pub connector_id: ConnectorType,
    pub run_id: RunId,
    pub incarnation: String,
}

impl SyncJob {
    pub fn for_run(run: &SyncRun) -> Self {
        Self {
            workspace_id: run.workspace_id.clone(),
            connector_id: run.connector_id,
            run_id: run.run_id.clone(),
            incarnation: run.incarnation.clone(),
        }
    }

    pub fn connector(&self) -> ConnectorRef {
        ConnectorRef {
            workspace: self.workspace_id.clone(),
            kind: self.connector_id,
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
    /// Another run holds it, claimed this long ago (zero when unknown: a slot a worker's lease
    /// made).
    Busy(RunId, Duration),
    /// The slot is now held for this run; it was `RunId`'s, whose slot and lease had expired
    /// (its job died or was never sent): that run will not end by itself.
    TookOver(RunId),
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
    /// How long the live worker lease of *another* incarnation of the connector (same workspace
    /// and type: one deleted, or being deleted) still runs, if one does. A new incarnation's run
    /// waits it out, so that an old job still posting cannot land a count over the new one's.
    async fn lease_of_other_incarnation(
        &self,
        connector: &ConnectorRef,
    ) -> Result<Option<Duration>, StoreError>;
    /// Removes the cool-down of a deleted connector incarnation, and its slot unless a live lease
    /// holds it (that job ends the run and frees the slot).
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
    /// Writes the run record, unless the stored one has finished: a finished run never changes
    /// (a second job that ends the same run loses). False then, and nothing is written.
    async fn put_run(&self, run: &SyncRun) -> Result<bool, StoreError>;
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
