//! The invariants, checked after every step (those about what the PSA was sent in
//! [`super::posts`]):
//!
//! * each reading of each run has exactly one outcome: once recorded it never changes, and a
//!   finished run's record never changes;
//! * a run's tallies add up to its readings, and a finished run's equal its recorded readings;
//! * nothing of an old incarnation is written after it ends: a job writes only its own
//!   incarnation's records, changes the connector only while it owns it (same incarnation and
//!   token, no delete begun), and no count of an older incarnation or token lands in the PSA
//!   over one of a newer — nor any count of a job that has ended;
//! * no held run posts: no count call by its jobs, no `posted` reading, no pair state it set;
//! * the PSA's pacing the engine owns: never more counts of a job in flight than `in_flight`;
//! * every count sent is one Coro reported while the run went on (that account and enabled
//!   service, that value), sent to the organization of the connector's own MSP.

use super::seen::run_key;
use super::sim::Sim;
use crate::sync::{Outcome, RunCounts, RunReading, RunStatus, SyncRun};
use std::collections::BTreeMap;

fn tally(readings: &[RunReading]) -> RunCounts {
    let mut c = RunCounts::default();
    c.tally(readings.iter().map(|r| &r.outcome));
    c
}

fn same_tally(a: &RunCounts, b: &RunCounts) -> bool {
    (a.readings, a.posted, a.unchanged, a.unmapped)
        == (b.readings, b.posted, b.unchanged, b.unmapped)
        && (a.skipped_disabled, a.failed, a.held) == (b.skipped_disabled, b.failed, b.held)
}

impl Sim {
    /// Checks every invariant; answers the violations found (also those noted while stepping).
    pub fn check(&mut self) -> Vec<String> {
        self.seen.step = self.step;
        let runs: BTreeMap<String, SyncRun> = self
            .store
            .runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| (run_key(&r.connector(), &r.run_id), r.clone()))
            .collect();
        self.check_writes(&runs);
        self.check_psa(&runs);
        self.check_runs(&runs);
        std::mem::take(&mut self.seen.violations)
    }

    /// Every write applied since the last step, against the actor that made it.
    fn check_writes(&mut self, runs: &BTreeMap<String, SyncRun>) {
        for (actor, call) in self.faults.take_writes() {
            if call.op == "insert_connector"
                && let Some(inc) = &call.incarnation
            {
                self.seen.incarnation(inc);
            }
            let Some((cref, run)) = actor.and_then(|a| self.seen.jobs.get(&a)).cloned() else {
                continue;
            };
            if matches!(call.op, "put_run" | "put_readings")
                && let (Some(a), Some(r)) = (actor, &call.run)
            {
                self.seen.last_writer.insert(run_key(&cref, r), a);
            }
            let who = format!("job A{} of {run}", actor.unwrap_or_default());
            let own_workspace = call.workspace.as_ref() == Some(&cref.workspace);
            if own_workspace
                && let Some(inc) = &call.incarnation
                && *inc != cref.incarnation
            {
                let what = format!(
                    "{who} ({}) wrote {} of incarnation {inc}",
                    cref.incarnation, call.op
                );
                self.seen.violation(what);
            }
            let Some(new) = call
                .connector
                .as_ref()
                .filter(|_| call.op == "replace_connector")
            else {
                continue;
            };
            let tv = runs.get(&run_key(&cref, &run)).map(|r| r.token_version);
            let owned = new.incarnation == cref.incarnation
                && Some(new.token_version) == tv
                && new.deleting_since.is_none();
            if own_workspace && !owned {
                let what = format!(
                    "{who} changed connector {} (token {}) it does not own (token {tv:?})",
                    new.incarnation, new.token_version
                );
                self.seen.violation(what);
            }
            if !own_workspace && new.status != crate::connector::ConnectorStatus::Connected {
                let what = format!("{who} changed another MSP's connector other than restoring it");
                self.seen.violation(what);
            }
        }
    }

    /// Tallies, one outcome per reading, finished runs frozen, held runs never posting.
    fn check_runs(&mut self, runs: &BTreeMap<String, SyncRun>) {
        let readings = self.store.readings.lock().unwrap().clone();
        let mut held = BTreeMap::new();
        for (key, run) in runs {
            let c = &run.counts;
            let sum = c.posted + c.unchanged + c.unmapped + c.skipped_disabled + c.failed + c.held;
            if c.readings != sum {
                self.seen.violation(format!(
                    "run {key}: readings {} ≠ outcomes {sum}",
                    c.readings
                ));
            }
            let cref = run.connector();
            let stored = readings
                .get(&(cref.key(), run.run_id.clone()))
                .cloned()
                .unwrap_or_default();
            for r in &stored {
                let k = (key.clone(), r.account_id.clone(), r.service.clone());
                match self.seen.outcomes.get(&k) {
                    Some(o) if *o != r.outcome => {
                        let what = format!(
                            "run {key}: reading {}/{} was {o:?}, is {:?} now",
                            r.account_id, r.service, r.outcome
                        );
                        self.seen.violation(what);
                    }
                    Some(_) => {}
                    None => {
                        self.seen.outcomes.insert(k, r.outcome);
                    }
                }
            }
            if run.status.is_active() {
                if let Some(before) = self.seen.finished.get(key) {
                    let what = format!(
                        "run {key} was {:?}, is {:?} again",
                        before.status, run.status
                    );
                    let what = self.by_whom(key, what);
                    self.seen.violation(what);
                }
                continue;
            }
            if !same_tally(&tally(&stored), c) {
                let what = format!(
                    "run {key} ({:?}): counts {c:?} ≠ its readings {:?}",
                    run.status,
                    tally(&stored)
                );
                let what = self.by_whom(key, what);
                self.seen.violation(what);
            }
            match self.seen.finished.get(key) {
                Some(before) if before != run => {
                    let what = format!("run {key} changed after it finished: {before:?} → {run:?}");
                    let what = self.by_whom(key, what);
                    self.seen.violation(what);
                }
                Some(_) => {}
                None => {
                    self.seen.finished.insert(key.clone(), run.clone());
                    self.seen.finished_at.insert(key.clone(), self.seen.step);
                    if let Some(a) = self.seen.last_writer.get(key).copied() {
                        self.seen.finisher.insert(key.clone(), a);
                    }
                    if self.plant == super::sim::Plant::LoseReading && !self.lost {
                        self.lose_a_reading(&cref, &run.run_id);
                    }
                    self.count(match run.status {
                        RunStatus::Succeeded => "runs succeeded",
                        RunStatus::PartiallyFailed => "runs partially failed",
                        RunStatus::Failed => "runs failed",
                        RunStatus::TokenRejected => "runs token rejected",
                        RunStatus::Cancelled => "runs cancelled",
                        RunStatus::Held => "runs held",
                        RunStatus::Queued | RunStatus::Running => "runs active",
                    });
                    if run.continuations > 0 {
                        self.count("runs continued");
                    }
                    if run.release_of.is_some() {
                        self.count("runs releasing a held one");
                    }
                }
            }
            if run.status == RunStatus::Held {
                held.insert((cref.key(), run.run_id.clone()), self.earlier(key));
                if stored.iter().any(|r| r.outcome == Outcome::Posted) {
                    let what = format!("held run {key} has posted readings{}", self.earlier(key));
                    self.seen.violation(what);
                }
                if self
                    .seen
                    .count_calls
                    .get(key)
                    .is_some_and(|s| !s.is_empty())
                {
                    let what = format!("held run {key} sent counts{}", self.earlier(key));
                    self.seen.violation(what);
                }
            }
        }
        let pairs = self.store.pairs.lock().unwrap();
        for (ckey, states) in pairs.iter() {
            for p in states.values() {
                if let Some(a) = &p.accepted
                    && let Some(earlier) = held.get(&(ckey.clone(), a.run_id.clone()))
                {
                    let what = format!(
                        "held run {} set pair {}/{}{earlier}",
                        a.run_id, p.account_id, p.service_key
                    );
                    self.seen.violation(what);
                }
            }
        }
    }

    /// `Plant::LoseReading`: the store loses one reading of a run just finished.
    fn lose_a_reading(&mut self, c: &crate::connector::ConnectorRef, run: &crate::ids::RunId) {
        let mut all = self.store.readings.lock().unwrap();
        if let Some(lost) = all.get_mut(&(c.key(), run.clone())).and_then(|rs| rs.pop()) {
            self.lost = true;
            drop(all);
            let what = format!(
                "planted: the store loses reading {}/{}",
                lost.account_id, lost.service
            );
            self.note(what);
        }
    }

    /// Of a held run: `" in an earlier job"` when the job that held it (wrote it last) sent no
    /// count itself — what it sent came from a job before, which never decided to hold.
    fn earlier(&self, key: &str) -> &'static str {
        let holder = self.seen.last_writer.get(key);
        let senders = self.seen.count_calls.get(key);
        match holder {
            Some(h) if !senders.is_some_and(|s| s.contains(h)) => " in an earlier job",
            _ => "",
        }
    }

    /// `what`, saying when a job other than the one that finished run `key`, which read the run
    /// before it finished, wrote it afterwards.
    fn by_whom(&self, key: &str, what: String) -> String {
        let writer = self.seen.last_writer.get(key);
        let started = writer.and_then(|a| self.seen.started.get(a));
        let finished = self.seen.finished_at.get(key);
        let finisher = self.seen.finisher.get(key);
        match (writer, started, finished) {
            (Some(a), Some(s), Some(f)) if s <= f && Some(a) != finisher => {
                format!("{what} — written by job A{a}, which read the run before it finished")
            }
            _ => what,
        }
    }
}
