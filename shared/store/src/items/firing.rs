//! A firing of the daily schedule (`SCHEDULE#gradient` / `FIRING#<runId>`): its lease
//! (`leaseOwner`, `leaseUntilMs`) and its saved progress, the JSON of the store's own
//! [`ProgressRecord`] in the string attribute `progress`.

use psa_domain::capacity::{Cutoff, DayPlan};
use psa_domain::ports::{ScheduleProgress, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The attribute holding a firing's progress.
pub(crate) const PROGRESS: &str = "progress";

/// The value of `progress`.
pub(crate) fn progress_json(progress: &ScheduleProgress) -> Result<String, StoreError> {
    serde_json::to_string(&ProgressRecord::from(progress))
        .map_err(|e| StoreError(format!("schedule progress: {e}")))
}

/// The progress a `progress` value holds.
pub(crate) fn progress_from_json(json: &str) -> Result<ScheduleProgress, StoreError> {
    serde_json::from_str::<ProgressRecord>(json)
        .map(ScheduleProgress::from)
        .map_err(|e| StoreError(format!("schedule progress: {e}")))
}

#[derive(Serialize, Deserialize)]
struct ProgressRecord {
    #[serde(rename = "scheduledAt", with = "time::serde::rfc3339")]
    scheduled_at: OffsetDateTime,
    plan: PlanRecord,
    /// Written as `null` at the start.
    cursor: Option<String>,
    complete: bool,
}

#[derive(Serialize, Deserialize)]
struct PlanRecord {
    budget: u64,
    #[serde(rename = "baseCalls")]
    base_calls: u64,
    due: u64,
    #[serde(rename = "dueCalls")]
    due_calls: u64,
    admitted: u64,
    #[serde(rename = "admittedCalls")]
    admitted_calls: u64,
    cutoff: CutoffRecord,
}

/// `{"admit": "all" | "nothing"}` or `{"admit": "up_to", "late": …, "hash": …}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "admit")]
enum CutoffRecord {
    #[serde(rename = "all")]
    All,
    #[serde(rename = "up_to")]
    UpTo { late: i64, hash: u64 },
    #[serde(rename = "nothing")]
    Nothing,
}

impl From<&ScheduleProgress> for ProgressRecord {
    fn from(p: &ScheduleProgress) -> Self {
        let plan = &p.plan;
        Self {
            scheduled_at: p.scheduled_at,
            plan: PlanRecord {
                budget: plan.budget,
                base_calls: plan.base_calls,
                due: plan.due,
                due_calls: plan.due_calls,
                admitted: plan.admitted,
                admitted_calls: plan.admitted_calls,
                cutoff: match plan.cutoff {
                    Cutoff::All => CutoffRecord::All,
                    Cutoff::UpTo { late, hash } => CutoffRecord::UpTo { late, hash },
                    Cutoff::Nothing => CutoffRecord::Nothing,
                },
            },
            cursor: p.cursor.clone(),
            complete: p.complete,
        }
    }
}

impl From<ProgressRecord> for ScheduleProgress {
    fn from(p: ProgressRecord) -> Self {
        let plan = p.plan;
        Self {
            scheduled_at: p.scheduled_at,
            plan: DayPlan {
                budget: plan.budget,
                base_calls: plan.base_calls,
                due: plan.due,
                due_calls: plan.due_calls,
                admitted: plan.admitted,
                admitted_calls: plan.admitted_calls,
                cutoff: match plan.cutoff {
                    CutoffRecord::All => Cutoff::All,
                    CutoffRecord::UpTo { late, hash } => Cutoff::UpTo { late, hash },
                    CutoffRecord::Nothing => Cutoff::Nothing,
                },
            },
            cursor: p.cursor,
            complete: p.complete,
        }
    }
}
