//! When time runs short: the job saves its progress and enqueues the run's next job, unless the
//! run has used its continuations.

use super::JobOutcome;
use super::finish;
use super::job::Job;
use super::plan::Reading;
use super::record::Recorder;
use crate::ports::StoreError;
use crate::sync::{RunStatus, SyncRun};

impl Job<'_> {
    /// Time is short: saves progress and enqueues the run's next job — unless the run has used
    /// its continuations, then what is left (`rest`, or nothing planned yet) ends `failed`.
    pub(super) async fn continue_or_give_up(
        &self,
        run: &mut SyncRun,
        recorder: Option<&Recorder<'_>>,
        rest: &[Reading],
    ) -> Result<JobOutcome, StoreError> {
        let (core, cref) = (self.core, run.connector());
        if run.continuations >= self.policy.max_continuations {
            let why = format!(
                "not sent: the run used all {} continuations",
                self.policy.max_continuations
            );
            if let Some(recorder) = recorder {
                recorder.not_sent(rest, &why).await?;
            }
            tracing::warn!(left = rest.len(), "continuations used up; the rest fails");
            // Nothing left to send means set-up itself did not finish: the run failed.
            let status = rest.is_empty().then_some(RunStatus::Failed);
            run.reason = Some(format!(
                "the run ran out of time after {} continuations; what is left is sent next run",
                self.policy.max_continuations
            ));
            let readings = recorder.map(Recorder::readings);
            return finish::finish(core, run, status, readings).await;
        }
        run.continuations += 1;
        run.calls = run.calls + crate::calls::current();
        let readings = match recorder {
            Some(recorder) => recorder.readings(),
            None => core.readings.all_readings(&cref, &run.run_id).await?,
        };
        run.counts.tally(readings.iter().map(|r| &r.outcome));
        if !core.runs.put_run(run).await? {
            return Ok(JobOutcome::Busy); // another job ended the run: nothing to continue
        }
        core.slots
            .drop_lease(&cref, &run.run_id, self.owner)
            .await?;
        core.queue.enqueue(std::slice::from_ref(self.job)).await?;
        tracing::info!(
            left = rest.len(),
            continuation = run.continuations,
            "deadline near: continuing in a new job"
        );
        Ok(JobOutcome::Continued)
    }
}
