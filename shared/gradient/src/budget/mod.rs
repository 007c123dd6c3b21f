//! The request budget of a process towards Gradient: an adaptive pacer (module `pace`),
//! optionally driven by a lease on the deployment-wide budget (module `lease`,
//! `psa_domain::budget`).

mod lease;
mod pace;
#[cfg(test)]
mod tests;

pub use lease::LeaseTiming;
pub use pace::LIMITER_SLACK;

use lease::{COOLING_STEPS, Lease, Renewal, epoch_ms};
use pace::{Pace, WINDOW};
use psa_domain::budget::{BudgetLeases, LeaseError, allocate, cooling_steps, fair_part};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request the pacer let through. It counts in the window from the moment its bytes leave,
/// and as leaving *now* until then: so the bound holds for the instants requests reach the wire,
/// not only for the instants they were let through (a request held up between the two — an
/// unscheduled task, a busy core, a connection being opened — would otherwise put one more into
/// some second at Gradient). Pace is kept at the wire because Gradient counts arrivals.
///
/// [`Slot::sent`] marks the moment (the request's body calls it when the HTTP connection first
/// asks for it, just before the write); a slot dropped unmarked counts from the drop, which is
/// never before its bytes left (a request without a body is dropped when its answer comes).
#[derive(Debug)]
pub struct Slot {
    budget: Option<Arc<Budget>>,
}

impl Slot {
    /// The request's bytes are leaving now.
    pub fn sent(&mut self) {
        if let Some(budget) = self.budget.take() {
            lock(&budget.pace).went_out(Instant::now());
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.sent();
    }
}

/// A process's request budget towards Gradient (see the module doc).
pub struct Budget {
    max_rps: u32,
    pace: Mutex<Pace>,
    lease: Option<Lease>,
    throttled: AtomicU64,
    renewals: AtomicU64,
    reads: AtomicU64,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("max_rps", &self.max_rps)
            .field("rate", &self.rate())
            .field("leased", &self.lease.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Budget {
    /// The whole `max_rps` for this process alone (tests, tools, a single-process deployment).
    pub fn local(max_rps: u32) -> Arc<Self> {
        Arc::new(Self::new(max_rps, f64::from(max_rps), None))
    }

    /// A part of the deployment's `max_rps`, leased from `store` in `total` shares as `owner`
    /// (unique per process). Holds nothing until the first request.
    pub fn leased(
        max_rps: u32,
        store: Arc<dyn BudgetLeases>,
        owner: impl Into<String>,
        total: u32,
        timing: LeaseTiming,
    ) -> Arc<Self> {
        let lease = Lease::new(store, owner.into(), total, timing);
        Arc::new(Self::new(max_rps, 0.0, Some(lease)))
    }

    fn new(max_rps: u32, share_rps: f64, lease: Option<Lease>) -> Self {
        Self {
            max_rps,
            pace: Mutex::new(Pace::new(share_rps, Instant::now())),
            lease,
            throttled: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    /// The deployment's budget (requests a second).
    pub fn max_rps(&self) -> u32 {
        self.max_rps
    }

    /// The rate this process sends at now (its share × the congestion factor).
    pub fn rate(&self) -> f64 {
        lock(&self.pace).rate()
    }

    /// Shares of the deployment's budget this process holds under a lease in force (0 once its
    /// lease has expired or was given back; `None` without a lease).
    pub fn shares(&self) -> Option<u32> {
        self.lease.as_ref().map(Lease::shares_in_force)
    }

    /// 429s seen by this budget.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Writes of the lease record (each after a read of it).
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// Reads of the lease record (strongly consistent), with or without a write after them.
    pub fn lease_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Waits until this process may send one request. The request counts in the window from
    /// the moment its bytes leave: call [`Slot::sent`] then, or drop the slot once they surely
    /// have (its answer came, or it failed).
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            if self.lease.is_some() {
                self.ensure_lease().await;
            }
            match self.try_take() {
                None => {
                    return Slot {
                        budget: Some(self.clone()),
                    };
                }
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Takes the lease now if none is in force (e.g. at the start of a job, beside its other
    /// set-up), so the first request need not wait for it.
    pub async fn prepare(self: &Arc<Self>) {
        if self.lease.is_some() {
            self.ensure_lease().await;
        }
    }

    /// Takes the next slot if it is due; otherwise how long to wait before trying again.
    fn try_take(&self) -> Option<Duration> {
        if self.shares() == Some(0) {
            return Some(Duration::from_millis(20)); // no share in force: waiting for one
        }
        lock(&self.pace).try_take(Instant::now())
    }

    /// Gradient answered: a 429 cuts the rate, a success lets it grow back.
    pub fn on_response(&self, status: u16) {
        let mut p = lock(&self.pace);
        if status == 429 {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        p.on_response(status, Instant::now());
    }

    fn set_share(&self, shares: u32, total: u32) {
        lock(&self.pace).set_share(self.max_rps, shares, total);
    }

    /// Makes sure a valid lease is held and a renewer runs.
    async fn ensure_lease(self: &Arc<Self>) {
        let Some(lease) = &self.lease else { return };
        let valid = {
            let mut s = lease.state();
            s.last_use = Instant::now();
            if s.renewer.as_ref().is_none_or(|h| h.is_finished()) {
                let me = Arc::downgrade(self);
                s.renewer = Some(tokio::spawn(async move { renewer(me).await }));
            }
            s.valid_until
                .is_some_and(|t| t > Instant::now() + Duration::from_millis(100))
        };
        if !valid {
            self.renew(Renewal::Ensure).await;
        }
    }

    /// Gives this process's shares back at once (at the end of a job or a request, before the
    /// process may be frozen): the pacer stops, and the record says the shares are free once
    /// what was sent under them has left Gradient's window. No waiting. The next request takes
    /// a new lease.
    pub async fn release(&self) {
        let Some(lease) = &self.lease else { return };
        let in_record = {
            let s = lease.state();
            s.shares > 0 || s.valid_until.is_some()
        };
        if !in_record {
            return;
        }
        self.set_share(0, lease.total);
        self.renew(Renewal::GiveBack).await;
    }

    /// Reads the lease record, works out this process's shares and writes them if needed (see
    /// [`Renewal`]). Shrinks the pacer before a write, grows it after.
    async fn renew(&self, how: Renewal) {
        let Some(lease) = &self.lease else { return };
        let _one = lease.renewing.lock().await;
        let timing = lease.timing;
        if how == Renewal::Ensure
            && lease
                .state()
                .valid_until
                .is_some_and(|t| t > Instant::now() + timing.renew_every / 2)
        {
            return; // renewed by a concurrent caller meanwhile
        }
        if how == Renewal::Watch && lease.state().valid_until.is_none() {
            return; // given back while this look waited its turn: only a request takes a lease
        }
        let busy = how != Renewal::GiveBack;
        let skew = timing.skew.as_millis() as i64;
        for attempt in 0..6u32 {
            let started = Instant::now();
            self.reads.fetch_add(1, Ordering::Relaxed);
            let record = match lease.store.read().await {
                Ok(r) => r,
                Err(e) => {
                    self.lease_unavailable(lease, how, &e);
                    return;
                }
            };
            let (view, wake_at) = lease.view(&record, Instant::now());
            let now_ms = epoch_ms();
            let fair = fair_part(lease.total, &view, &lease.owner, now_ms, skew);
            let (held, shrunk_since, valid_until) = {
                let s = lease.state();
                (s.shares, s.shrunk_since, s.valid_until)
            };
            let (new, mine, written, since) = match how {
                Renewal::GiveBack => {
                    let per_share = f64::from(self.max_rps) / f64::from(lease.total);
                    let leaving = lock(&self.pace).leaving_ms(Instant::now());
                    let steps = cooling_steps(&leaving, per_share, COOLING_STEPS);
                    let new = view.cooling(&lease.owner, steps, now_ms, skew);
                    (new, 0, 0, None)
                }
                Renewal::Ensure | Renewal::Watch => {
                    let mine = allocate(lease.total, &view, &lease.owner, now_ms, skew);
                    // Fewer shares: the pacer slows at once; the record keeps the old number
                    // until a whole window has passed since (what was sent under them must
                    // leave the window first).
                    let since = (mine < held).then(|| shrunk_since.unwrap_or(started));
                    if since.is_some() {
                        self.set_share(mine, lease.total);
                    }
                    let drained = since.is_none_or(|t| t.elapsed() >= WINDOW);
                    let written = if drained { mine } else { held };
                    let due = valid_until.is_none_or(|t| {
                        t < started + timing.ttl.saturating_sub(timing.renew_every)
                    });
                    if how == Renewal::Watch && written == held && !due {
                        // Nothing to write: the record already says what this process holds.
                        let mut s = lease.state();
                        s.shrunk_since = since;
                        s.wake_at = wake_at;
                        return;
                    }
                    let until = now_ms + timing.ttl.as_millis() as i64;
                    let new = view.with(&lease.owner, Some((written, until)), now_ms, skew);
                    (new, mine, written, since)
                }
            };
            match lease.store.write(&new).await {
                Ok(()) => {
                    self.renewals.fetch_add(1, Ordering::Relaxed);
                    // More shares: used only now that the record says so.
                    self.set_share(mine, lease.total);
                    let mut s = lease.state();
                    if written != s.shares {
                        tracing::debug!(
                            shares = written,
                            total = lease.total,
                            fair,
                            holders = new.holders.len(),
                            "Gradient budget share changed"
                        );
                    }
                    s.shares = written;
                    s.shrunk_since = since.filter(|_| written > mine);
                    s.valid_until = busy.then(|| started + timing.ttl);
                    s.wake_at = wake_at;
                    return;
                }
                Err(LeaseError::Conflict) => {
                    let ms = rand::rng().random_range(5..=20u64 << attempt.min(3));
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(e) => {
                    self.lease_unavailable(lease, how, &e);
                    return;
                }
            }
        }
        // Lost every race: what is held stays valid only as long as the lease last written says;
        // past it, send nothing until a renewal succeeds.
        let mut s = lease.state();
        if !busy || s.valid_until.is_none_or(|t| t <= Instant::now()) {
            s.shares = 0;
            s.valid_until = None;
            drop(s);
            self.set_share(0, lease.total);
        }
    }

    /// The lease record cannot be read or written: send at one share (a safe floor — at most
    /// `total` processes exist) and try again soon. A give-back holds nothing either way (the
    /// record keeps the old lease until it expires, which only makes the others wait).
    fn lease_unavailable(&self, lease: &Lease, how: Renewal, e: &LeaseError) {
        if how == Renewal::GiveBack {
            tracing::warn!(error = %e, "the Gradient budget lease cannot be given back: it expires");
            self.set_share(0, lease.total);
            let mut s = lease.state();
            s.shares = 0;
            s.valid_until = None;
            return;
        }
        tracing::warn!(error = %e, "the Gradient budget lease cannot be renewed: sending at one share");
        self.set_share(1, lease.total);
        let mut s = lease.state();
        s.shares = 1;
        s.valid_until = Some(Instant::now() + lease.timing.renew_every);
    }
}

/// Watches the record while the process is busy; gives the shares back once idle for a renewal
/// period (a process that ends its work calls [`Budget::release`] itself, sooner).
async fn renewer(budget: std::sync::Weak<Budget>) {
    loop {
        let Some(b) = budget.upgrade() else { return };
        let Some(lease) = &b.lease else { return };
        let now = Instant::now();
        let (idle, give_back_at, wake_at) = {
            let s = lease.state();
            (
                s.last_use.elapsed() > lease.timing.renew_every,
                s.shrunk_since.map(|t| t + WINDOW),
                s.wake_at,
            )
        };
        if idle {
            b.release().await;
            return;
        }
        // A look every `watch_every`, jittered so processes that started together do not read
        // together; sooner when shares are to be given back (their window has passed) or
        // another's give-back has cooled.
        let mut pause = lease
            .timing
            .watch_every
            .mul_f64(rand::rng().random_range(0.8..1.0));
        for t in [give_back_at, wake_at].into_iter().flatten() {
            pause = pause.min(t.saturating_duration_since(now) + Duration::from_millis(2));
        }
        drop(b);
        tokio::time::sleep(pause).await;
        let Some(b) = budget.upgrade() else { return };
        let Some(lease) = &b.lease else { return };
        let (busy, in_record) = {
            let s = lease.state();
            (
                s.last_use.elapsed() <= lease.timing.renew_every,
                s.valid_until.is_some(),
            )
        };
        if busy && in_record {
            b.renew(Renewal::Watch).await;
        } else if !in_record {
            return; // given back: the next request starts a renewer again
        }
    }
}
