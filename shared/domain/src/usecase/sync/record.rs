//! Recording what a job did: checkpoints of posted counts (readings and pair states, batched,
//! written while the window keeps sending) and readings decided without a post. The recorder
//! also keeps the run's readings as the job knows them (those of earlier jobs, read once at its
//! start, and its own), so ending the run tallies them without reading them again.

use super::plan::Reading;
use super::sent::Sent;
use crate::connector::ConnectorRef;
use crate::ids::RunId;
use crate::ports::StoreError;
use crate::sync::{Accepted, AttemptOutcome, Outcome, PairState, RunReading, SyncRun};
use crate::usecase::{Core, now};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How many accepted readings of the job are kept for a rebuild count (see `Job::rebuild`).
const KEEP_ACCEPTED: usize = 3;

/// Writes the outcomes of one job's posts.
pub(super) struct Recorder<'a> {
    core: &'a Core,
    connector: ConnectorRef,
    run_id: RunId,
    /// Pair states as the job read them before posting.
    pairs: &'a BTreeMap<(String, String), PairState>,
    /// The last few readings this job had accepted, newest last.
    accepted: Mutex<Vec<Reading>>,
    /// The run's recorded readings by (account, service): a reading recorded again replaces the
    /// earlier one, as in the store.
    known: Mutex<BTreeMap<(String, String), RunReading>>,
}

impl<'a> Recorder<'a> {
    /// `recorded`: the run's readings recorded by earlier jobs.
    pub fn new(
        core: &'a Core,
        run: &SyncRun,
        pairs: &'a BTreeMap<(String, String), PairState>,
        recorded: Vec<RunReading>,
    ) -> Self {
        let recorder = Self {
            core,
            connector: run.connector(),
            run_id: run.run_id.clone(),
            pairs,
            accepted: Mutex::new(Vec::new()),
            known: Mutex::new(BTreeMap::new()),
        };
        recorder.know(recorded);
        recorder
    }

    fn know(&self, readings: impl IntoIterator<Item = RunReading>) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for r in readings {
            known.insert((r.account_id.clone(), r.service.clone()), r);
        }
    }

    /// Every recorded reading of the run so far, ordered by account id then service key (what
    /// `RunReadings::all_readings` would answer now).
    pub fn readings(&self) -> Vec<RunReading> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.values().cloned().collect()
    }

    /// The newest readings accepted by this job (at most a few), newest first.
    pub fn accepted_newest_first(&self) -> Vec<Reading> {
        let kept = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().rev().cloned().collect()
    }

    /// A pair's new state after `attempt`, or `None` when it is what the job read.
    fn state(
        &self,
        r: &Reading,
        attempt: AttemptOutcome,
        accepted: Option<Accepted>,
        at: time::OffsetDateTime,
    ) -> Option<PairState> {
        let before = self.pairs.get(&r.key());
        let accepted = accepted.or_else(|| before.and_then(|p| p.accepted.clone()));
        let same = before.is_some_and(|p| p.last_attempt == attempt && p.accepted == accepted);
        (!same).then(|| PairState {
            account_id: r.account_id.clone(),
            service_key: r.service_key.clone(),
            account_name: r.account_name.clone(),
            accepted,
            last_attempt: attempt,
            last_attempt_at: at,
        })
    }

    /// Records posted results (pair states, then readings). [`Sent::Unsent`] is not a result and
    /// is ignored here.
    pub async fn checkpoint(&self, results: Vec<Sent>) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let cref = &self.connector;
        let at = now();
        let mut readings = Vec::with_capacity(results.len());
        let mut states = Vec::with_capacity(results.len());
        let mut accepted_now = Vec::new();
        for sent in results {
            let (r, outcome, attempt, accepted, why) = match sent {
                Sent::Accepted(r) => {
                    let accepted = Accepted {
                        value: r.count,
                        service_id: r.service_id.clone(),
                        at,
                        run_id: self.run_id.clone(),
                    };
                    (
                        r,
                        Outcome::Posted,
                        AttemptOutcome::Posted,
                        Some(accepted),
                        None,
                    )
                }
                Sent::Unmapped(r) => (r, Outcome::Unmapped, AttemptOutcome::Unmapped, None, None),
                Sent::Failed(r, why) => {
                    (r, Outcome::Failed, AttemptOutcome::Failed, None, Some(why))
                }
                Sent::Unsent(_) => continue,
            };
            states.extend(self.state(&r, attempt, accepted, at));
            readings.push(r.ended(outcome, why.as_deref()));
            if outcome == Outcome::Posted {
                accepted_now.push(r);
            }
        }
        // Pair states first: a reading recorded for this run is never attempted again in it.
        self.core.pairs.put_pairs(cref, &states).await?;
        self.core
            .readings
            .put_readings(cref, &self.run_id, &readings)
            .await?;
        self.know(readings);
        let mut kept = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend(accepted_now);
        let extra = kept.len().saturating_sub(KEEP_ACCEPTED);
        kept.drain(..extra);
        Ok(())
    }

    /// Records readings decided without a post; those that `failed` (a refused account, a run
    /// that stopped or ran out of continuations) also mark their pair's latest attempt failed, so
    /// the usage view says so and the next run sends them.
    pub async fn decided(&self, readings: &[RunReading]) -> Result<(), StoreError> {
        let cref = &self.connector;
        let at = now();
        let states: Vec<PairState> = readings
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .filter_map(|r| {
                let before = self.pairs.get(&(r.account_id.clone(), r.service.clone()));
                if before.is_some_and(|p| p.last_attempt == AttemptOutcome::Failed) {
                    return None;
                }
                Some(PairState {
                    account_id: r.account_id.clone(),
                    service_key: r.service.clone(),
                    account_name: r.account_name.clone(),
                    accepted: before.and_then(|p| p.accepted.clone()),
                    last_attempt: AttemptOutcome::Failed,
                    last_attempt_at: at,
                })
            })
            .collect();
        self.core.pairs.put_pairs(cref, &states).await?;
        self.as_is(readings).await
    }

    /// Records readings as they are, with no pair state (a held run).
    pub async fn as_is(&self, readings: &[RunReading]) -> Result<(), StoreError> {
        self.core
            .readings
            .put_readings(&self.connector, &self.run_id, readings)
            .await?;
        self.know(readings.iter().cloned());
        Ok(())
    }

    /// Readings that were not sent, recorded `failed` with `why` (sent next run).
    pub async fn not_sent(&self, rest: &[Reading], why: &str) -> Result<(), StoreError> {
        let failed: Vec<RunReading> = rest
            .iter()
            .map(|r| r.ended(Outcome::Failed, Some(why)))
            .collect();
        self.decided(&failed).await
    }
}
