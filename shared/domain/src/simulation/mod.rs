//! A seeded, deterministic simulation of the sync engine (TigerBeetle's VOPR and FoundationDB's
//! simulation testing are the models): many MSPs with random workspaces, services and counts;
//! the real use cases (`run_job`, `request_sync`, `release_run`, `schedule_all`, connect,
//! re-token, delete, settings) over in-memory ports that fail, delay, duplicate and reorder
//! ([`crate::testing`]); jobs crashed at any await point and delivered again; all on tokio's
//! paused clock, so a seed takes milliseconds and replays exactly. After every step the
//! invariants of [`checks`] hold; at the quiet end the PSA equals the oracle ([`quiesce`]).
//!
//! `cargo test -p psa-domain simulation` runs [`SEEDS`] seeds (`SIM_SEEDS=n` for another number,
//! `SIM_FROM=k` to start at seed k); `SIM_SEED=n` replays one and prints its step log. A failing
//! seed prints itself and its log. Known engine bugs ([`known`]) end a seed without failing it;
//! `SIM_STRICT=1` fails on them too.
//!
//! Where the engine cannot be simulated more closely without a production hook: its deadlines
//! (`run_job`'s `deadline`, `crate::deadline`, the window's checkpoint interval) are
//! `std::time::Instant`s, which the paused clock does not move; so a job's deadline is either far
//! off, near (nothing posted, the run continues) or passed, never crossed half-way through its
//! posts, and checkpoints come by count only. Timestamps are `OffsetDateTime::now_utc()`.

mod actors;
mod checks;
mod known;
mod posts;
mod quiesce;
mod seen;
mod sim;
mod steps;
mod world;

pub use sim::Plant;
use sim::Sim;
use std::collections::BTreeMap;

/// Seeds the test command runs.
pub const SEEDS: u64 = 1000;

/// What one seed did.
pub struct Report {
    pub seed: u64,
    pub violations: Vec<String>,
    /// Known bugs the seed ran into (not failures unless `SIM_STRICT=1`).
    pub known: Vec<known::Known>,
    pub log: Vec<String>,
    pub stats: BTreeMap<&'static str, u64>,
}

impl Report {
    pub fn failed(&self) -> bool {
        let strict = std::env::var("SIM_STRICT").is_ok_and(|v| v == "1");
        !self.violations.is_empty() || (strict && !self.known.is_empty())
    }

    /// What a failing seed prints: how to replay it, what broke, and every step.
    pub fn explain(&self) -> String {
        format!(
            "SIM_SEED={seed} cargo test -p psa-domain simulation::tests::seeds -- --nocapture\n\
             violations:\n  {}\nknown bugs: {:?}\nstep log:\n{}",
            self.violations.join("\n  "),
            self.known,
            self.log.join("\n"),
            seed = self.seed
        )
    }
}

/// Runs seed `seed` (with `plant` planted) on its own paused clock.
pub fn run_seed(seed: u64, plant: Plant) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut sim = Sim::new(seed, plant);
        let violations = sim.run().await;
        Report {
            seed,
            violations,
            known: std::mem::take(&mut sim.known),
            log: std::mem::take(&mut sim.log),
            stats: std::mem::take(&mut sim.stats),
        }
    })
}

impl Sim {
    async fn run(&mut self) -> Vec<String> {
        use rand::Rng;
        let steps = self.rng.random_range(60..=160);
        for step in 1..=steps {
            self.step = step;
            self.step().await;
            if let Some(v) = self.checked() {
                return v;
            }
        }
        self.step += 1;
        let v = self.quiesce().await;
        match known::recognise(&v) {
            Some(known) => {
                self.known(known, &v);
                Vec::new()
            }
            None => v,
        }
    }

    /// The checks after a step: `None` to go on, else the violations to stop with (none when
    /// they are a known bug, noted: what follows from it would only repeat it).
    pub(super) fn checked(&mut self) -> Option<Vec<String>> {
        let v = self.check();
        if v.is_empty() {
            return None;
        }
        if let Some(known) = known::recognise(&v) {
            self.known(known, &v);
            return Some(Vec::new());
        }
        Some(v)
    }
}

/// Runs seeds `from..to` on two threads; answers every report, in seed order.
pub fn run_seeds(from: u64, to: u64, plant: Plant) -> Vec<Report> {
    let threads = 2;
    let mut reports: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (from..to)
                        .filter(|seed| seed % threads == t)
                        .map(|seed| run_seed(seed, plant))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    reports.sort_by_key(|r| r.seed);
    reports
}

#[cfg(test)]
mod tests;
