//! What the checks remember between steps (a type of its own, so the simulator holds it without
//! depending on the checks that read it).

use crate::connector::ConnectorRef;
use crate::ids::RunId;
use crate::ports::SyncJob;
use crate::sync::{Outcome, SyncRun};
use std::collections::{BTreeMap, BTreeSet};

/// What the checks remember between steps.
#[derive(Default)]
pub struct Seen {
    /// The run each job actor works on.
    pub jobs: BTreeMap<u32, (ConnectorRef, RunId)>,
    pub ended: BTreeSet<u32>,
    /// The tree version when a run's first job started.
    pub run_start: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<(String, String, String), Outcome>,
    pub finished: BTreeMap<String, SyncRun>,
    /// Count calls per run.
    /// The jobs that sent counts, per run.
    pub count_calls: BTreeMap<String, BTreeSet<u32>>,
    /// The newest (incarnation, token version) that landed a count, per org and pair.
    pub landed: BTreeMap<(String, String, String), (Generation, u32)>,
    /// Incarnations in the order they were created.
    pub incarnations: BTreeMap<String, u32>,
    pub violations: Vec<String>,
    /// The step being checked; when each job started; when each run was first seen finished
    /// (with its record then); the job that last wrote each run's record or readings.
    pub step: usize,
    pub started: BTreeMap<u32, usize>,
    pub finished_at: BTreeMap<String, usize>,
    pub last_writer: BTreeMap<String, u32>,
    /// The job that finished each run (its last writer when it was first seen finished).
    pub finisher: BTreeMap<String, u32>,
    /// The PSA's log, taken before an actor is marked ended (so what it sent before counts as
    /// sent before).
    /// Each with whether its actor had ended when it was logged.
    pub posts: Vec<(crate::testing::sim_psa::Post, bool)>,
    pub calls: Vec<(Option<u32>, &'static str)>,
    pub most: BTreeMap<u32, usize>,
}

/// (incarnation in the order created, token version): later ones are newer.
pub type Generation = (u32, u64);

pub fn run_key(c: &ConnectorRef, run: &RunId) -> String {
    format!("{}/{}/{run}", c.workspace, c.key())
}

impl Seen {
    pub fn job_started(&mut self, actor: u32, job: &SyncJob, version: u64) {
        let c = job.connector();
        let start = self
            .run_start
            .entry(run_key(&c, &job.run_id))
            .or_insert(version);
        *start = (*start).min(version);
        self.jobs.insert(actor, (c, job.run_id.clone()));
        self.started.insert(actor, self.step);
    }

    pub fn actor_ended(&mut self, actor: u32) {
        self.ended.insert(actor);
    }

    pub fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    pub(super) fn incarnation(&mut self, inc: &str) -> u32 {
        let n = self.incarnations.len() as u32;
        *self.incarnations.entry(inc.to_owned()).or_insert(n)
    }
}
