//! The simulator: one seeded world (store, PSA, queue, slots with their faults), the actors that
//! act on it — jobs of the worker, admins' requests, firings of the schedule — and a step log.
//! Actors are futures on tokio's paused clock: a step advances one (or all) for a random span of
//! virtual time, so each stops at any await point; one left suspended is a slow worker, one
//! dropped is a crashed one.

use super::seen::Seen;
use super::world::Tree;
use crate::ids::ConnectorType;
use crate::ports::StoreError;
use crate::testing::{Faults, Memory, Rates, SimBook, SimPsa, SimQueue, SimSlots};
use crate::usecase::sync::{JobOutcome, SyncPolicy};
use crate::usecase::{Psas, QueueCore, WorkerCore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub const G: ConnectorType = ConnectorType::Gradient;

/// A fault planted in the simulation, to show that the checks catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    None,
    /// The PSA answers every fifth landed count accepted and keeps nothing.
    DropCounts,
    /// A count of a run that has ended is written to the PSA again later.
    StaleReplay,
    /// The store loses one reading of the first run that finishes with any.
    LoseReading,
}

pub enum Role {
    Job { msg: u64 },
    Other,
}

pub enum Ended {
    Job(Result<JobOutcome, StoreError>),
    Other(String),
}

pub struct Actor {
    pub role: Role,
    pub label: String,
    pub fut: Pin<Box<dyn Future<Output = Ended>>>,
    /// When it last made progress.
    pub since: Instant,
}

pub struct Sim {
    pub rng: StdRng,
    pub plant: Plant,
    pub log: Vec<String>,
    pub step: usize,
    pub t0: Instant,
    /// Every port: a job's deps (and, by deref, the connectors use cases').
    pub core: WorkerCore,
    /// The deps of request, release and the schedule.
    pub qcore: QueueCore,
    pub store: Arc<Memory>,
    pub psa: Arc<SimPsa>,
    pub queue: Arc<SimQueue>,
    pub faults: Arc<Faults>,
    pub policy: SyncPolicy,
    pub tree: Tree,
    pub actors: BTreeMap<u32, Actor>,
    pub next_actor: u32,
    pub seen: Seen,
    /// Raw ids (runs, incarnations) → the short labels the log shows.
    pub labels: BTreeMap<String, String>,
    pub day: i64,
    /// Steps left with the vendor key broken.
    pub key_broken: u32,
    /// The quiet end: deadlines far off.
    pub calm: bool,
    pub book: Arc<SimBook>,
    /// Known bugs run into (see `known`).
    pub known: Vec<super::known::Known>,
    /// `Plant::StaleReplay`: a count that landed, kept to be written again.
    pub replay: Option<crate::testing::sim_psa::Post>,
    /// `Plant::LoseReading`: done.
    pub lost: bool,
    pub stats: BTreeMap<&'static str, u64>,
}

/// Fault rates for a seed: a quarter calm, the rest light to stormy.
fn rates(rng: &mut StdRng) -> Rates {
    let k = [0.0, 0.02, 0.06, 0.12][rng.random_range(0..4)];
    Rates {
        store_latency_ms: rng.random_range(0..=4),
        store_error: k * 0.5,
        store_ambiguous: k * 0.3,
        conflict: k * 2.0,
        psa_slow: k * 2.0,
        psa_slow_ms: 15_000,
        psa_throttled: k,
        psa_5xx: k,
        psa_lost_answer: k * 0.5,
        psa_forbidden: k * 0.05,
        queue_duplicate: k * 2.0,
    }
}

impl Sim {
    pub fn new(seed: u64, plant: Plant) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let faults = Arc::new(Faults::new(seed ^ 0x5eed_fa17, rates(&mut rng)));
        let store = Arc::new(Memory::default());
        *store.tap.lock().unwrap() = Some(faults.clone());
        let psa = Arc::new(SimPsa::new(faults.clone()));
        let slots = Arc::new(SimSlots::new(Some(faults.clone())));
        let queue = Arc::new(SimQueue::new(faults.clone()));
        let book = Arc::new(SimBook::new(store.clone(), Some(faults.clone())));
        let core = crate::testing::core_over(&store, slots.clone(), book.clone());
        let qcore = QueueCore {
            core: core.clone(),
            queue: queue.clone(),
        };
        let psas = Psas::new().with(G, psa.clone());
        let core = WorkerCore::new(core, store.clone(), psas, queue.clone());
        let policy = SyncPolicy {
            in_flight: rng.random_range(1..=4),
            checkpoint_every: rng.random_range(1..=4),
            // The window's interval is measured with `std::time::Instant`, which the paused
            // clock does not move: checkpoints come by count here (see the module docs).
            checkpoint_interval: Duration::from_secs(10 * 365 * 24 * 3600),
            cancel_check_every: rng.random_range(1..=8),
            max_continuations: rng.random_range(0..=3),
            key_fault_connectors: rng.random_range(2..=3),
            verify_attempts: u64::MAX / 2,
            settings_changes: u64::MAX / 2,
            ..SyncPolicy::default()
        };
        let tree = Tree::new(&mut rng, &store);
        let mut sim = Self {
            rng,
            plant,
            log: Vec::new(),
            step: 0,
            t0: Instant::now(),
            core,
            qcore,
            store,
            psa,
            queue,
            faults,
            policy,
            tree,
            actors: BTreeMap::new(),
            next_actor: 1,
            seen: Seen::default(),
            labels: BTreeMap::new(),
            day: 0,
            key_broken: 0,
            calm: false,
            book: book.clone(),
            known: Vec::new(),
            replay: None,
            lost: false,
            stats: BTreeMap::new(),
        };
        sim.setup_psa();
        if plant == Plant::DropCounts {
            sim.psa.state.lock().unwrap().drop_every = 5;
        }
        let p = &sim.policy;
        let line = format!(
            "seed {seed}: {} MSPs, {} workspaces, rates {:?}, in_flight {}, checkpoint_every {}, \
             cancel_check_every {}, max_continuations {}",
            sim.tree.msps.len(),
            Tree::workspaces(&sim.store).len(),
            sim.faults.rates,
            p.in_flight,
            p.checkpoint_every,
            p.cancel_check_every,
            p.max_continuations
        );
        sim.note(line);
        sim
    }

    /// Each MSP's organization and first token; a few pairs the MSP has not mapped.
    fn setup_psa(&mut self) {
        for m in 0..self.tree.msps.len() {
            self.issue_token(m);
            for w in Tree::workspaces(&self.store) {
                if self.tree.owner.get(w.id.as_str()) != Some(&m) {
                    continue;
                }
                for key in &w.services {
                    if self.rng.random_bool(0.15) {
                        self.unmap(m, w.id.as_str(), key);
                    }
                }
            }
        }
    }

    pub fn unmap(&mut self, m: usize, account: &str, key: &str) {
        let org = self.tree.msps[m].org.clone();
        let mut st = self.psa.state.lock().unwrap();
        let o = st.orgs.entry(org).or_default();
        let pair = (account.to_owned(), key.to_owned());
        if !o.unmapped.remove(&pair) {
            o.unmapped.insert(pair);
        }
    }

    /// The MSP makes a new token in the PSA (the earlier ones stay accepted).
    pub fn issue_token(&mut self, m: usize) -> String {
        let msp = &mut self.tree.msps[m];
        msp.tokens_issued += 1;
        msp.token = format!("tok-{}-{}", msp.id, msp.tokens_issued);
        self.psa.issue(&msp.org, &msp.token);
        msp.token.clone()
    }

    /// Notes a known bug run into.
    pub fn known(&mut self, known: super::known::Known, seen: &[String]) {
        self.note(format!("{}: {}", known.name(), seen.join("; ")));
        self.known.push(known);
        self.count(known.name());
    }

    pub fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    /// Virtual seconds since the start.
    pub fn clock(&self) -> f64 {
        (Instant::now() - self.t0).as_secs_f64()
    }

    /// Short, stable labels for ids that differ between replays (uuids, wall-clock run ids).
    pub fn learn_ids(&mut self) {
        let runs: Vec<(String, String)> = self
            .store
            .runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.run_id.to_string(), r.incarnation.clone()))
            .collect();
        let incs: Vec<(String, String)> = self
            .store
            .connectors
            .lock()
            .unwrap()
            .values()
            .map(|c| (c.incarnation.clone(), c.workspace_id.to_string()))
            .collect();
        for (inc, ws) in incs {
            let n = self.labels.len();
            self.labels
                .entry(inc)
                .or_insert_with(|| format!("{ws}.i{n}"));
        }
        for (run, inc) in runs {
            let n = self.labels.len();
            self.labels.entry(inc).or_insert_with(|| format!("i{n}"));
            let n = self.labels.len();
            self.labels.entry(run).or_insert_with(|| format!("r{n}"));
        }
    }

    /// Adds a line to the step log, with known ids replaced by their labels.
    pub fn note(&mut self, text: impl Into<String>) {
        let mut text = text.into();
        for (raw, label) in &self.labels {
            if text.contains(raw.as_str()) {
                text = text.replace(raw.as_str(), label);
            }
        }
        let line = format!("[{:>3}] t={:>9.3}s {text}", self.step, self.clock());
        self.log.push(line);
    }
}
