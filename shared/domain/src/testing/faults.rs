//! Fault injection for the simulation, kept out of every production type: which actor (a job, an
//! admin's request, a firing of the schedule) makes a call, a seeded source of faults the fakes
//! draw from, and the ledger of applied writes the simulation checks after every step.

use super::store::{Call, StoreFault, Tap, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

tokio::task_local! {
    static ACTOR: u32;
}

/// Runs `fut` as actor `id`: every call the fakes see from inside it is attributed to it.
pub async fn as_actor<F: Future>(id: u32, fut: F) -> F::Output {
    ACTOR.scope(id, fut).await
}

/// The actor making the current call, if any.
pub fn actor() -> Option<u32> {
    ACTOR.try_with(|a| *a).ok()
}

/// How often each fault happens (probabilities per call; 0 = never). Drawn per seed.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    /// A store call takes up to this long (each one draws its own).
    pub store_latency_ms: u64,
    /// A store call fails before it writes anything.
    pub store_error: f64,
    /// A store write lands, then answers an error.
    pub store_ambiguous: f64,
    /// A conditional write of the connector answers "lost the race".
    pub conflict: f64,
    /// A PSA call answers after up to `psa_slow_ms`.
    pub psa_slow: f64,
    pub psa_slow_ms: u64,
    /// A PSA call is throttled (429): the adapter's retries win after a backoff, or give up.
    pub psa_throttled: f64,
    /// A PSA call fails (5xx after the adapter's retries).
    pub psa_5xx: f64,
    /// A count lands in the PSA, then the answer is lost (a 5xx or timeout after the write).
    pub psa_lost_answer: f64,
    /// The PSA refuses a call (403, "anomaly detected").
    pub psa_forbidden: f64,
    /// The queue delivers a message twice.
    pub queue_duplicate: f64,
}

/// What happens to one PSA call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsaFault {
    /// Throttled, retried and answered after the backoff.
    Retried,
    /// Throttled, and the adapter gave up.
    Throttled,
    ServerError,
    /// Applied, then the answer was lost (counts only; other calls fail as `ServerError`).
    LostAnswer,
    Forbidden,
}

/// The seeded source of faults every simulated port draws from, and the ledger of writes.
pub struct Faults {
    on: AtomicBool,
    rng: Mutex<StdRng>,
    pub rates: Rates,
    writes: Mutex<Vec<(Option<u32>, Call)>>,
}

impl Faults {
    pub fn new(seed: u64, rates: Rates) -> Self {
        Self {
            on: AtomicBool::new(true),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates,
            writes: Mutex::new(Vec::new()),
        }
    }

    /// No more faults or delays from now on (the simulation's quiet end).
    pub fn calm(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// True with probability `p` while faults are on (draws nothing otherwise).
    pub fn chance(&self, p: f64) -> bool {
        self.is_on() && p > 0.0 && self.rng.lock().unwrap().random_bool(p.min(1.0))
    }

    /// A uniform draw in `0..=max` while faults are on, else 0.
    pub fn upto(&self, max: u64) -> u64 {
        if !self.is_on() || max == 0 {
            return 0;
        }
        self.rng.lock().unwrap().random_range(0..=max)
    }

    /// How long a PSA call takes and how it fails, if it does.
    pub fn psa_call(&self, is_count: bool) -> (Duration, Option<PsaFault>) {
        let r = self.rates.clone();
        let mut delay = Duration::ZERO;
        if self.chance(r.psa_slow) {
            delay += Duration::from_millis(100 * self.upto(r.psa_slow_ms / 100).max(1));
        }
        let fault = if self.chance(r.psa_throttled) {
            if self.chance(0.5) {
                delay += Duration::from_millis(500 * (1 + self.upto(6)));
                Some(PsaFault::Retried)
            } else {
                Some(PsaFault::Throttled)
            }
        } else if self.chance(r.psa_5xx) {
            Some(PsaFault::ServerError)
        } else if is_count && self.chance(r.psa_lost_answer) {
            Some(PsaFault::LostAnswer)
        } else if self.chance(r.psa_forbidden) {
            Some(PsaFault::Forbidden)
        } else {
            None
        };
        (delay, fault)
    }

    /// The writes applied since the last call, each with its actor.
    pub fn take_writes(&self) -> Vec<(Option<u32>, Call)> {
        std::mem::take(&mut self.writes.lock().unwrap())
    }
}

impl Tap for Faults {
    fn before(&self, call: &Call) -> Verdict {
        let r = &self.rates;
        let delay = Duration::from_millis(self.upto(r.store_latency_ms));
        let fault = if call.op == "replace_connector" && self.chance(r.conflict) {
            Some(StoreFault::Conflict)
        } else if self.chance(r.store_error) {
            Some(StoreFault::Before)
        } else if call.write && self.chance(r.store_ambiguous) {
            Some(StoreFault::After)
        } else {
            None
        };
        Verdict { delay, fault }
    }

    fn applied(&self, call: &Call) {
        self.writes.lock().unwrap().push((actor(), call.clone()));
    }
}
