//! The daily schedule's own records (the use case is `usecase::sync::schedule`).

use super::StoreError;
use crate::capacity::DayPlan;
use crate::connector::ConnectorRef;
use crate::ids::RunId;
use crate::sync::RunStatus;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;

/// Saved progress of one firing (its run id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleProgress {
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    pub plan: DayPlan,
    /// The index position of the next page; `None` = from the start.
    pub cursor: Option<String>,
    /// Every page was done once.
    pub complete: bool,
}

/// Taking the lease of a firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FiringClaim {
    /// Ours until the lease expires; the progress saved so far, if any.
    Mine(Option<ScheduleProgress>),
    /// Another invocation holds an unexpired lease on the firing.
    Busy,
}

/// A run of a firing as the store has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledRun {
    pub status: RunStatus,
    /// Its job was recorded as sent to the queue.
    pub enqueued: bool,
}

/// The schedule's own records: progress and lease per firing, which runs of a firing exist and
/// which of their jobs went out.
#[async_trait]
pub trait ScheduleBook: Send + Sync {
    /// Takes (or renews) the lease of firing `run` for `owner` until `until`.
    async fn claim_firing(
        &self,
        run: &RunId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<FiringClaim, StoreError>;
    /// Saves progress and renews the lease if `owner` still holds it; `Ok(false)` if it lost it.
    async fn save_firing(
        &self,
        run: &RunId,
        owner: &str,
        until: OffsetDateTime,
        progress: &ScheduleProgress,
    ) -> Result<bool, StoreError>;
    /// Ends `owner`'s lease early (the progress stays).
    async fn release_firing(&self, run: &RunId, owner: &str) -> Result<(), StoreError>;
    /// The newest firing claimed so far.
    async fn latest_firing(&self) -> Result<Option<RunId>, StoreError>;
    /// The runs `run` of `connectors` that exist (batched reads).
    async fn scheduled_runs(
        &self,
        run: &RunId,
        connectors: &[ConnectorRef],
    ) -> Result<HashMap<ConnectorRef, ScheduledRun>, StoreError>;
    /// Records that the jobs of runs `run` of `connectors` are on the queue (batched writes).
    async fn mark_enqueued(
        &self,
        run: &RunId,
        connectors: &[ConnectorRef],
    ) -> Result<(), StoreError>;
}
