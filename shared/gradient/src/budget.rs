//! The request budget of a process towards Gradient: an adaptive pacer, optionally driven by a
//! lease on the deployment-wide budget (`psa_domain::budget`).
//!
//! * **Pacing.** At most `floor(rate)` requests in any sliding window of [`WINDOW`] (1.02 s, so
//!   arrivals may jitter by 20 ms and still fit Gradient's 1-second window), evenly spaced, no
//!   burst. The window holds the instants requests *reach the wire* ([`Slot`]), not the instants
//!   they were let through, so a request held up in this process never adds one to a second.
//!   A strict window (not only a spacing) matters when several processes share the budget:
//!   spacing alone lets each one put `rate + 1` requests into some second, and ten processes
//!   would overrun by ten. `rate = share × factor`, where `share` is this process's
//!   part of the budget (the whole `max_rps` without a lease) and `factor` the congestion factor
//!   below. The rate can change at any moment and applies to the very next request (nothing is
//!   reserved ahead), which governor's fixed quotas cannot do.
//! * **Adaptive rate (AIMD).** A 429 means Gradient allows less than we thought: `factor` drops
//!   to `DECREASE ×` itself (at most once per `CUT_SPACING`, so the 429s of requests already in
//!   flight count as one congestion signal), and grows back by `INCREASE` of the share per second
//!   while requests succeed. The rejected request itself waits for `Retry-After` before it goes
//!   again (the retry policy of the client). The factor is the process's own: every process that
//!   meets 429s slows down on its own, as TCP senders do.
//! * **Shared budget.** With [`Budget::leased`], the process holds `shares` of the deployment's
//!   `total` shares and sends at `max_rps × shares / total`. Before the first request it takes a
//!   lease ([`Budget::prepare`] takes it ahead, beside a job's other set-up); a background task
//!   reads the record every `watch_every` while the process is busy and writes it when the
//!   process's part changes or every `renew_every`. [`Budget::release`] gives the shares back
//!   at once, at the end of a job or an API request, before Lambda may freeze the process: it
//!   writes them as *cooling* for the rest of the window of the last request sent, so they are
//!   free to the others exactly when Gradient's window has forgotten that request, and the
//!   process itself waits for nothing. A request never goes out under an expired lease, and a
//!   share a busy process gives up is written back only a whole [`WINDOW`] after it stopped
//!   using it.

use psa_domain::budget::{
    BudgetLeases, LeaseError, LeaseRecord, allocate, cooling_steps, fair_part,
};
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of the pacer's window in seconds: at most `floor(rate)` requests in any such window.
pub const LIMITER_SLACK: f64 = 1.02;
/// The pacer's window ([`LIMITER_SLACK`] seconds).
pub const WINDOW: Duration = Duration::from_millis(1020);
/// A 429 multiplies the congestion factor by this.
pub const DECREASE: f64 = 0.75;
/// Per second of successful requests the factor grows by this (a share of the full rate).
pub const INCREASE: f64 = 0.02;
/// Cuts closer together than this count as one congestion signal.
pub const CUT_SPACING: Duration = Duration::from_millis(1000);
/// The factor never goes below this.
pub const MIN_FACTOR: f64 = 0.05;
/// A give-back frees its shares in at most this many steps (each a read and a write for a
/// process waiting for them).
const COOLING_STEPS: u32 = 4;
/// Shortest wait of a full window (avoids spinning on a slot that frees in microseconds).
const MIN_WAIT: Duration = Duration::from_millis(1);
/// How often a process whose window is all requests on their way looks again.
const PENDING_WAIT: Duration = Duration::from_millis(2);

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
            budget.went_out(Instant::now());
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.sent();
    }
}

struct Pace {
    /// Requests a second this process may send (its share of the budget).
    share_rps: f64,
    /// When the requests of the last [`WINDOW`] went out (see [`Slot`]), oldest first.
    sent: std::collections::VecDeque<Instant>,
    /// Requests let through whose bytes have not gone out yet: each counts as going out now.
    pending: usize,
    factor: f64,
    /// Earliest moment of the next request.
    next: Instant,
    last_cut: Option<Instant>,
    last_raise: Instant,
}

struct Lease {
    store: Arc<dyn BudgetLeases>,
    owner: String,
    total: u32,
    timing: LeaseTiming,
    /// Serialises renewals.
    renewing: tokio::sync::Mutex<()>,
    state: Mutex<LeaseState>,
    /// When this process first saw each of the others' cooling give-backs (by owner and the
    /// version it was written as): the shares are free `ms` after that.
    seen: Mutex<HashMap<(String, u64), Instant>>,
}

struct LeaseState {
    /// Shares the record says this process holds (the pacer may use fewer).
    shares: u32,
    /// Since when the pacer uses fewer shares than the record says: they are given back once a
    /// whole window has passed.
    shrunk_since: Option<Instant>,
    /// The lease may be used until then (by this process's clock); `None`: not in the record.
    valid_until: Option<Instant>,
    /// When the first of the others' cooling give-backs has cooled (worth a look at the record).
    wake_at: Option<Instant>,
    last_use: Instant,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// Why the lease record is read (and perhaps written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    /// A request is about to go and no lease is in force: take one (always written).
    Ensure,
    /// A look while busy: written only if this process's part changes or the lease is due.
    Watch,
    /// Done or idle: give every share back; they count as the requests sent in the last window
    /// need, until those leave it (see [`psa_domain::budget::Cooling`]).
    GiveBack,
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

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
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
        let lease = Lease {
            store,
            owner: owner.into(),
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
        };
        Arc::new(Self::new(max_rps, 0.0, Some(lease)))
    }

    fn new(max_rps: u32, share_rps: f64, lease: Option<Lease>) -> Self {
        let now = Instant::now();
        Self {
            max_rps,
            pace: Mutex::new(Pace {
                share_rps,
                sent: std::collections::VecDeque::new(),
                pending: 0,
                factor: 1.0,
                next: now,
                last_cut: None,
                last_raise: now,
            }),
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
        let p = lock(&self.pace);
        p.share_rps * p.factor
    }

    /// Shares of the deployment's budget this process holds under a lease in force (0 once its
    /// lease has expired or was given back; `None` without a lease).
    pub fn shares(&self) -> Option<u32> {
        self.lease.as_ref().map(|l| {
            let s = lock(&l.state);
            let in_force = s.valid_until.is_some_and(|t| t > Instant::now());
            if in_force { s.shares } else { 0 }
        })
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

    /// A request let through went out at `at`.
    fn went_out(&self, at: Instant) {
        let mut p = lock(&self.pace);
        p.pending = p.pending.saturating_sub(1);
        let i = p.sent.partition_point(|t| *t <= at);
        p.sent.insert(i, at);
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
        let mut p = lock(&self.pace);
        let rate = p.share_rps * p.factor;
        if rate <= 0.0 {
            return Some(Duration::from_millis(20)); // giving shares back: nothing to send on
        }
        // At least one request a window while any share is held: a rate cut below one never
        // stalls the process (only an answered request lets the rate grow back).
        let cap = (rate + 1e-9).floor().max(1.0) as usize;
        let now = Instant::now();
        while p
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            p.sent.pop_front();
        }
        // Requests not yet out count as going out now: a window of the instants the bytes
        // leave never holds more than `cap` (see `Slot`).
        let used = p.sent.len() + p.pending;
        if used >= cap {
            if p.pending >= cap {
                return Some(PENDING_WAIT); // a rate cut below the requests on their way
            }
            let oldest = p.sent[used - cap];
            return Some(
                (oldest + WINDOW)
                    .saturating_duration_since(now)
                    .max(MIN_WAIT),
            );
        }
        if p.next > now {
            return Some(p.next - now);
        }
        // Evenly spaced; a waiter that woke a little late keeps the cadence, no burst after a pause.
        let period = WINDOW / cap as u32;
        let base = if now.duration_since(p.next) > period {
            now
        } else {
            p.next
        };
        p.next = base + period;
        p.pending += 1;
        None
    }

    /// For each request sent in the last window, in how many ms it leaves it (rounded up).
    fn leaving_ms(&self) -> Vec<u32> {
        let p = lock(&self.pace);
        let now = Instant::now();
        let pending = std::iter::repeat_n(now, p.pending);
        p.sent
            .iter()
            .copied()
            .chain(pending)
            .map(|t| (t + WINDOW).saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .map(|d| u32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u32::MAX))
            .collect()
    }

    /// Gradient answered: a 429 cuts the rate, a success lets it grow back.
    pub fn on_response(&self, status: u16) {
        let mut p = lock(&self.pace);
        let now = Instant::now();
        if status == 429 {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            if p.last_cut
                .is_none_or(|t| now.duration_since(t) >= CUT_SPACING)
            {
                p.factor = (p.factor * DECREASE).max(MIN_FACTOR);
                p.last_cut = Some(now);
                p.last_raise = now;
                tracing::info!(
                    factor = p.factor,
                    rate = p.share_rps * p.factor,
                    "Gradient answered 429: the request rate drops"
                );
            }
        } else if p.factor < 1.0 {
            let dt = now.duration_since(p.last_raise).as_secs_f64().min(1.0);
            p.factor = (p.factor + INCREASE * dt).min(1.0);
            p.last_raise = now;
        } else {
            p.last_raise = now;
        }
    }

    fn set_share(&self, shares: u32, total: u32) {
        let mut p = lock(&self.pace);
        p.share_rps = f64::from(self.max_rps) * f64::from(shares) / f64::from(total.max(1));
    }

    /// Makes sure a valid lease is held and a renewer runs.
    async fn ensure_lease(self: &Arc<Self>) {
        let Some(lease) = &self.lease else { return };
        let valid = {
            let mut s = lock(&lease.state);
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
            let s = lock(&lease.state);
            s.shares > 0 || s.valid_until.is_some()
        };
        if !in_record {
            return;
        }
        self.set_share(0, lease.total);
        self.renew(Renewal::GiveBack).await;
    }

    /// The record as this process may count it: each of the others' cooling give-backs counts
    /// the shares its steps say, from the moment this process first saw it (`read_at`, a moment
    /// after the read returned). Also answers when the next of those counts drops.
    fn view(
        &self,
        lease: &Lease,
        record: &LeaseRecord,
        read_at: Instant,
    ) -> (LeaseRecord, Option<Instant>) {
        let mut seen = lock(&lease.seen);
        let cooling: Vec<(String, u64)> = record
            .holders
            .iter()
            .filter(|h| h.owner != lease.owner)
            .filter_map(|h| h.cooling.as_ref().map(|c| (h.owner.clone(), c.version)))
            .collect();
        seen.retain(|k, _| cooling.contains(k));
        for key in cooling {
            seen.entry(key).or_insert(read_at);
        }
        let mut wake: Option<Instant> = None;
        let view = record.cooling_counted(|h, c| {
            if h.owner == lease.owner {
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

    /// Reads the lease record, works out this process's shares and writes them if needed (see
    /// [`Renewal`]). Shrinks the pacer before a write, grows it after.
    async fn renew(&self, how: Renewal) {
        let Some(lease) = &self.lease else { return };
        let _one = lease.renewing.lock().await;
        let timing = lease.timing;
        if how == Renewal::Ensure
            && lock(&lease.state)
                .valid_until
                .is_some_and(|t| t > Instant::now() + timing.renew_every / 2)
        {
            return; // renewed by a concurrent caller meanwhile
        }
        if how == Renewal::Watch && lock(&lease.state).valid_until.is_none() {
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
            let (view, wake_at) = self.view(lease, &record, Instant::now());
            let now_ms = epoch_ms();
            let fair = fair_part(lease.total, &view, &lease.owner, now_ms, skew);
            let (held, shrunk_since, valid_until) = {
                let s = lock(&lease.state);
                (s.shares, s.shrunk_since, s.valid_until)
            };
            let (new, mine, written, since) = match how {
                Renewal::GiveBack => {
                    let per_share = f64::from(self.max_rps) / f64::from(lease.total);
                    let steps = cooling_steps(&self.leaving_ms(), per_share, COOLING_STEPS);
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
                        let mut s = lock(&lease.state);
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
                    let mut s = lock(&lease.state);
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
        let mut s = lock(&lease.state);
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
            let mut s = lock(&lease.state);
            s.shares = 0;
            s.valid_until = None;
            return;
        }
        tracing::warn!(error = %e, "the Gradient budget lease cannot be renewed: sending at one share");
        self.set_share(1, lease.total);
        let mut s = lock(&lease.state);
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
            let s = lock(&lease.state);
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
            let s = lock(&lease.state);
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    /// A lease record in memory (unit tests of the pacing logic only; the DynamoDB store has its
    /// own integration test).
    #[derive(Default)]
    struct MemLeases(Mutex<LeaseRecord>);

    #[async_trait]
    impl BudgetLeases for MemLeases {
        async fn read(&self) -> Result<LeaseRecord, LeaseError> {
            Ok(lock(&self.0).clone())
        }
        async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError> {
            let mut cur = lock(&self.0);
            if cur.version != record.version {
                return Err(LeaseError::Conflict);
            }
            *cur = record.clone();
            cur.version += 1;
            Ok(())
        }
    }

    #[test]
    fn a_429_cuts_the_rate_once_per_signal_and_success_restores_it() {
        let b = Budget::local(80);
        assert!((b.rate() - 80.0).abs() < 1e-9);
        b.on_response(429);
        b.on_response(429); // same congestion signal
        assert!((b.rate() - 60.0).abs() < 1e-9, "{}", b.rate());
        assert_eq!(b.throttled(), 2);
        {
            let mut p = lock(&b.pace);
            p.last_raise -= Duration::from_secs(1);
        }
        b.on_response(200);
        assert!((b.rate() - 61.6).abs() < 1e-6, "{}", b.rate());
        for _ in 0..100 {
            {
                let mut p = lock(&b.pace);
                p.last_raise -= Duration::from_secs(1);
            }
            b.on_response(200);
        }
        assert!((b.rate() - 80.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn a_rate_cut_below_one_request_a_window_never_stalls() {
        let b = Budget::local(2);
        for _ in 0..20 {
            lock(&b.pace).last_cut = None;
            b.on_response(429);
        }
        assert!(b.rate() < 1.0, "{}", b.rate());
        tokio::time::timeout(Duration::from_secs(3), b.acquire())
            .await
            .expect("one request a window still goes");
    }

    #[tokio::test]
    async fn pacing_spaces_requests() {
        let b = Budget::local(100);
        let t = Instant::now();
        for _ in 0..21 {
            b.acquire().await;
        }
        // 20 gaps of 10.2 ms
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(200), "{e:?}");
    }

    /// Every 21st request is held up 80 ms between being let through and going out (a busy
    /// core). Counted when let through, the 21st after it goes 1.02 s after it, on time, while
    /// it went out 80 ms late: 21 within 1.02 s. Counted when out: never.
    #[tokio::test]
    async fn the_window_bounds_the_instants_requests_go_out() {
        let b = Budget::local(20);
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..42 {
            let mut slot = b.acquire().await;
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                if i % 21 == 0 {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                }
                lock(&out).push(Instant::now());
                slot.sent();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut out = lock(&out).clone();
        out.sort();
        for (i, t) in out.iter().enumerate() {
            let n = out[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < WINDOW)
                .count();
            assert!(
                n <= 20,
                "{n} requests went out within {WINDOW:?} of request {i}"
            );
        }
    }

    #[tokio::test]
    async fn two_leased_budgets_share_and_a_release_gives_everything_back() {
        let store: Arc<dyn BudgetLeases> = Arc::new(MemLeases::default());
        let timing = LeaseTiming {
            ttl: Duration::from_millis(600),
            renew_every: Duration::from_millis(200),
            watch_every: Duration::from_millis(50),
            skew: Duration::from_millis(100),
        };
        let a = Budget::leased(80, store.clone(), "a", 20, timing);
        let b = Budget::leased(80, store.clone(), "b", 20, timing);
        a.acquire().await;
        assert_eq!(a.shares(), Some(20));
        assert!((a.rate() - 80.0).abs() < 1e-9);
        // b waits until a gives back half at a renewal
        let keep_a_busy = {
            let a = a.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    a.acquire().await;
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(3), b.acquire())
            .await
            .expect("b gets a share");
        let (sa, sb) = (a.shares().unwrap(), b.shares().unwrap());
        assert!(sa + sb <= 20, "{sa} + {sb}");
        assert_eq!(sb, 10, "b took its fair part once a gave it back");
        // b, idle for a renewal period, gives its shares back by itself
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(b.shares(), Some(0));
        keep_a_busy.abort();
        let _ = keep_a_busy.await;
        let released = Instant::now();
        let last_sent = lock(&a.pace).sent.back().copied().expect("a sent");
        a.release().await;
        assert!(
            last_sent.elapsed() < WINDOW,
            "the release waited for the window to pass"
        );
        let record = store.read().await.unwrap();
        let given = record.holders.iter().find(|h| h.owner == "a").unwrap();
        assert!(given.cooling.is_some(), "{given:?}");
        // A look of the renewer that was waiting its turn during the release takes nothing.
        a.renew(Renewal::Watch).await;
        assert_eq!(a.shares(), Some(0));
        let record = store.read().await.unwrap();
        let given = record.holders.iter().find(|h| h.owner == "a").unwrap();
        assert!(given.cooling.is_some(), "a took a lease again: {given:?}");
        assert_eq!(a.shares(), Some(0));
        assert_eq!(a.rate(), 0.0);
        // a's shares still count while its last requests are in the window: b, busy again,
        // gets at once only what those requests leave free, and the rest as they leave.
        let keep_b_busy = {
            let b = b.clone();
            tokio::spawn(async move {
                loop {
                    b.acquire().await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let in_window = lock(&a.pace)
            .sent
            .iter()
            .filter(|t| t.elapsed() < WINDOW)
            .count() as u32;
        assert!(in_window > 0);
        assert!(
            b.shares().unwrap() <= 20 - in_window.div_ceil(4),
            "b holds {:?} while {in_window} of a's requests are in the window",
            b.shares()
        );
        while b.shares() != Some(20) {
            assert!(
                released.elapsed() < Duration::from_secs(2),
                "{:?}",
                b.shares()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            last_sent.elapsed() >= WINDOW,
            "a's shares were taken {:?} after its last request, before its window ended",
            last_sent.elapsed()
        );
        keep_b_busy.abort();
    }

    /// A lease store whose writes fail from a moment on (DynamoDB unreachable).
    struct Breaks {
        inner: MemLeases,
        broken: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl BudgetLeases for Breaks {
        async fn read(&self) -> Result<LeaseRecord, LeaseError> {
            self.inner.read().await
        }
        async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(LeaseError::Store("unreachable".into()));
            }
            self.inner.write(record).await
        }
    }

    #[tokio::test]
    async fn a_give_back_that_cannot_be_written_still_holds_nothing() {
        let store = Arc::new(Breaks {
            inner: MemLeases::default(),
            broken: false.into(),
        });
        let timing = LeaseTiming::default();
        let a = Budget::leased(80, store.clone(), "a", 20, timing);
        a.acquire().await;
        assert_eq!(a.shares(), Some(20));
        store.broken.store(true, Ordering::SeqCst);
        a.release().await;
        assert_eq!(a.shares(), Some(0));
        assert_eq!(a.rate(), 0.0);
        // the record still names "a" as a live holder: the others wait for its expiry
        let record = store.read().await.unwrap();
        assert_eq!(record.holders[0].shares, 20);
        assert!(record.holders[0].cooling.is_none());
    }
}
