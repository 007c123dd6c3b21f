//! The lease on the deployment-wide budget (`psa_domain::budget`): what a process holds, and how
//! it counts the others' give-backs.
//!
//! With `Budget::leased`, the process holds `shares` of the deployment's `total` shares and
//! sends at `max_rps × shares / total`. Before the first request it takes a lease
//! (`Budget::prepare` takes it ahead, beside a job's other set-up); a background task reads the
//! record every `watch_every` while the process is busy and writes it when the process's part
//! changes or every `renew_every`. `Budget::release` gives the shares back at once, at the end of
//! a job or an API request, before Lambda may freeze the process: it writes them as *cooling* for
//! the rest of the window of the last request sent, so they are free to the others exactly when
//! Gradient's window has forgotten that request, and the process itself waits for nothing. A
//! request never goes out under an expired lease, and a share a busy process gives up is written
//! back only a whole window after it stopped using it.

use psa_domain::budget::{BudgetLeases, LeaseRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A give-back frees its shares in at most this many steps (each a read and a write for a
/// process waiting for them).
pub(super) const COOLING_STEPS: u32 = 4;

/// Timing of the lease on the shared budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A lease is written to last this long.
    pub ttl: Duration,
    /// A busy process writes its lease again this often (it stays valid for `ttl`).
    pub renew_every: Duration,
    /// A busy process reads the record this often and writes it only when its part changes:
    /// a newcomer waits at most this long before a holder starts giving back, and a share
    /// given back is taken up at most this long after it has cooled.
    pub watch_every: Duration,
    /// The largest clock difference between processes that is still safe.
    pub skew: Duration,
}

impl Default for LeaseTiming {
    /// 6 s leases written every 2 s, the record read every 0.5 s, safe for clocks up to 2 s
    /// apart: a busy process costs two strongly consistent reads a second and a write every 2 s
    /// (more only while shares move); a crashed one's shares are free again after at most 8 s.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(6),
            renew_every: Duration::from_secs(2),
            watch_every: Duration::from_millis(500),
            skew: Duration::from_secs(2),
        }
    }
}

/// Milliseconds since the epoch by this process's clock (the record's time).
pub(super) fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub(super) struct Lease {
    pub(super) store: Arc<dyn BudgetLeases>,
    pub(super) owner: String,
    pub(super) total: u32,
    pub(super) timing: LeaseTiming,
    /// Serialises renewals.
    pub(super) renewing: tokio::sync::Mutex<()>,
    state: Mutex<LeaseState>,
    /// When this process first saw each of the others' cooling give-backs (by owner and the
    /// version it was written as): the shares are free `ms` after that.
    seen: Mutex<HashMap<(String, u64), Instant>>,
}

pub(super) struct LeaseState {
    /// Shares the record says this process holds (the pacer may use fewer).
    pub(super) shares: u32,
    /// Since when the pacer uses fewer shares than the record says: they are given back once a
    /// whole window has passed.
    pub(super) shrunk_since: Option<Instant>,
    /// The lease may be used until then (by this process's clock); `None`: not in the record.
    pub(super) valid_until: Option<Instant>,
    /// When the first of the others' cooling give-backs has cooled (worth a look at the record).
    pub(super) wake_at: Option<Instant>,
    pub(super) last_use: Instant,
    pub(super) renewer: Option<tokio::task::JoinHandle<()>>,
}

/// Why the lease record is read (and perhaps written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Renewal {
    /// A request is about to go and no lease is in force: take one (always written).
    Ensure,
    /// A look while busy: written only if this process's part changes or the lease is due.
    Watch,
    /// Done or idle: give every share back; they count as the requests sent in the last window
    /// need, until those leave it (see [`psa_domain::budget::Cooling`]).
    GiveBack,
}

impl Lease {
    /// Holds nothing until the first request.
    pub(super) fn new(
        store: Arc<dyn BudgetLeases>,
        owner: String,
        total: u32,
        timing: LeaseTiming,
    ) -> Self {
        Self {
            store,
            owner,
            total: total.max(1),
            timing,
            renewing: tokio::sync::Mutex::new(()),
            state: Mutex::new(LeaseState {
                shares: 0,
                shrunk_since: None,
                valid_until: None,
                wake_at: None,
                last_use: Instant::now(),
                renewer: None,
            }),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shares held under a lease in force (0 once it has expired or was given back).
    pub(super) fn shares_in_force(&self) -> u32 {
        let s = self.state();
        let in_force = s.valid_until.is_some_and(|t| t > Instant::now());
        if in_force { s.shares } else { 0 }
    }

    /// The record as this process may count it: each of the others' cooling give-backs counts
    /// the shares its steps say, from the moment this process first saw it (`read_at`, a moment
    /// after the read returned). Also answers when the next of those counts drops.
    pub(super) fn view(
        &self,
        record: &LeaseRecord,
        read_at: Instant,
    ) -> (LeaseRecord, Option<Instant>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let cooling: Vec<(String, u64)> = record
            .holders
            .iter()
            .filter(|h| h.owner != self.owner)
            .filter_map(|h| h.cooling.as_ref().map(|c| (h.owner.clone(), c.version)))
            .collect();
        seen.retain(|k, _| cooling.contains(k));
        for key in cooling {
            seen.entry(key).or_insert(read_at);
        }
        let mut wake: Option<Instant> = None;
        let view = record.cooling_counted(|h, c| {
            if h.owner == self.owner {
                return 0; // its own give-back: the pacer's window already holds those requests
            }
            let first = seen[&(h.owner.clone(), c.version)];
            let elapsed = read_at.duration_since(first).as_millis() as u64;
            if let Some(ms) = c.next_drop(elapsed) {
                let at = first + Duration::from_millis(ms.into());
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            c.counted(elapsed)
        });
        (view, wake)
    }
}
