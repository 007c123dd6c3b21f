//! The usage sync, by step: requesting runs ([`request`], the daily [`schedule`]), planning
//! readings ([`plan`]), running one job of a run ([`run`]: lease, set-up, plan, send, record), posting counts ([`send`]), and
//! finishing a run ([`finish`]: tally, connector, vendor-key faults).

mod alerts;
mod continuation;
mod finish;
mod guard;
mod health;
mod job;
mod plan;
mod rebuild;
mod record;
mod request;
mod schedule;
mod send;
mod sent;
mod setup;

pub use alerts::UNMAPPED_SERVICES;
pub use finish::full_due;
pub use job::run_job;
pub use plan::{Plan, Reading, guard_figures, plan_readings};
#[cfg(test)]
pub(crate) use request::new_run;
pub use request::{RequestError, release_run, request_sync};
pub use schedule::{
    FiringClaim, ScheduleBook, ScheduleError, ScheduleOptions, ScheduleProgress, ScheduleReport,
    ScheduledRun, resume_latest, schedule_all,
};

pub use crate::policy::SyncPolicy;
use crate::sync::RunStatus;

/// How a job ended, for the queue: acknowledge it, or let it come back later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished (or nothing to do): acknowledge the message.
    Done(Option<RunStatus>),
    /// Deadline near: progress saved and a continuation enqueued; acknowledge the message.
    Continued,
    /// Another worker holds this run's lease: leave the message to come back.
    Busy,
}
