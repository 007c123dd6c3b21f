//! The billing guard's hold: a run whose billed units would drop more than allowed posts nothing;
//! what it would have posted is recorded `held` until an admin releases the run.

use super::JobOutcome;
use super::finish;
use super::job::Job;
use super::plan::Plan;
use super::record::Recorder;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::ports::StoreError;
use crate::sync::{Outcome, RunReading, RunStatus, SyncRun};
use crate::usecase::audit;

impl Job<'_> {
    /// The billing guard holds the run: nothing is posted; what would have been posted is `held`.
    pub(super) async fn hold(
        &self,
        run: &mut SyncRun,
        recorder: &Recorder<'_>,
        plan: Plan,
        threshold: u8,
    ) -> Result<JobOutcome, StoreError> {
        let core = self.core;
        let g = run.guard.unwrap_or_default();
        let held: Vec<RunReading> = plan
            .send
            .iter()
            .map(|r| r.ended(Outcome::Held, None))
            .collect();
        recorder.as_is(&plan.decided).await?;
        recorder.as_is(&held).await?;
        tracing::warn!(
            before = g.before,
            after = g.after,
            "billing guard: run held"
        );
        run.reason = Some(format!(
            "held by the billing guard: the units billed for previously billed services would \
             drop {}% ({} → {}), more than the {threshold}% allowed. Nothing was sent; check the \
             numbers, then release this run or wait for the next sync",
            g.drop_percent(),
            g.before,
            g.after
        ));
        let event = AuditEvent::new(Actor::System, AuditAction::SyncHeld, run.connector_id)
            .run(&run.run_id)
            .with("before", g.before.to_string())
            .with("after", g.after.to_string())
            .with("dropPercent", g.drop_percent().to_string());
        audit(core, &run.workspace_id, event).await;
        let readings = recorder.readings();
        finish::finish(core, run, Some(RunStatus::Held), Some(readings)).await
    }
}
