//! The pacer of one process: how many requests it may send, and when.
//!
//! * **Pacing.** At most `floor(rate)` requests in any sliding window of [`WINDOW`] (1.02 s, so
//!   arrivals may jitter by 20 ms and still fit Gradient's 1-second window), evenly spaced, no
//!   burst. The window holds the instants requests *reach the wire* (`Slot`), not the instants
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

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Length of the pacer's window in seconds: at most `floor(rate)` requests in any such window.
pub const LIMITER_SLACK: f64 = 1.02;
/// The pacer's window ([`LIMITER_SLACK`] seconds).
pub(super) const WINDOW: Duration = Duration::from_millis(1020);
/// A 429 multiplies the congestion factor by this.
const DECREASE: f64 = 0.75;
/// Per second of successful requests the factor grows by this (a share of the full rate).
const INCREASE: f64 = 0.02;
/// Cuts closer together than this count as one congestion signal.
const CUT_SPACING: Duration = Duration::from_millis(1000);
/// The factor never goes below this.
const MIN_FACTOR: f64 = 0.05;
/// Shortest wait of a full window (avoids spinning on a slot that frees in microseconds).
const MIN_WAIT: Duration = Duration::from_millis(1);
/// How often a process whose window is all requests on their way looks again.
const PENDING_WAIT: Duration = Duration::from_millis(2);

/// The pacer's state (kept under the budget's lock).
pub(super) struct Pace {
    /// Requests a second this process may send (its share of the budget).
    pub(super) share_rps: f64,
    /// When the requests of the last [`WINDOW`] went out (see `Slot`), oldest first.
    pub(super) sent: VecDeque<Instant>,
    /// Requests let through whose bytes have not gone out yet: each counts as going out now.
    pub(super) pending: usize,
    pub(super) factor: f64,
    /// Earliest moment of the next request.
    pub(super) next: Instant,
    pub(super) last_cut: Option<Instant>,
    pub(super) last_raise: Instant,
}

impl Pace {
    pub(super) fn new(share_rps: f64, now: Instant) -> Self {
        Self {
            share_rps,
            sent: VecDeque::new(),
            pending: 0,
            factor: 1.0,
            next: now,
            last_cut: None,
            last_raise: now,
        }
    }

    /// The rate this process sends at (its share × the congestion factor).
    pub(super) fn rate(&self) -> f64 {
        self.share_rps * self.factor
    }

    /// Takes the next slot if it is due at `now`; otherwise how long to wait before trying again.
    pub(super) fn try_take(&mut self, now: Instant) -> Option<Duration> {
        let rate = self.rate();
        if rate <= 0.0 {
            return Some(Duration::from_millis(20)); // giving shares back: nothing to send on
        }
        // At least one request a window while any share is held: a rate cut below one never
        // stalls the process (only an answered request lets the rate grow back).
        let cap = (rate + 1e-9).floor().max(1.0) as usize;
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.sent.pop_front();
        }
        // Requests not yet out count as going out now: a window of the instants the bytes
        // leave never holds more than `cap` (see `Slot`).
        let used = self.sent.len() + self.pending;
        if used >= cap {
            if self.pending >= cap {
                return Some(PENDING_WAIT); // a rate cut below the requests on their way
            }
            let oldest = self.sent[used - cap];
            return Some(
                (oldest + WINDOW)
                    .saturating_duration_since(now)
                    .max(MIN_WAIT),
            );
        }
        if self.next > now {
            return Some(self.next - now);
        }
        // Evenly spaced; a waiter that woke a little late keeps the cadence, no burst after a pause.
        let period = WINDOW / cap as u32;
        let base = if now.duration_since(self.next) > period {
            now
        } else {
            self.next
        };
        self.next = base + period;
        self.pending += 1;
        None
    }

    /// A request let through went out at `at`.
    pub(super) fn went_out(&mut self, at: Instant) {
        self.pending = self.pending.saturating_sub(1);
        let i = self.sent.partition_point(|t| *t <= at);
        self.sent.insert(i, at);
    }

    /// For each request sent in the last window, in how many ms it leaves it (rounded up).
    pub(super) fn leaving_ms(&self, now: Instant) -> Vec<u32> {
        let pending = std::iter::repeat_n(now, self.pending);
        self.sent
            .iter()
            .copied()
            .chain(pending)
            .map(|t| (t + WINDOW).saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .map(|d| u32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u32::MAX))
            .collect()
    }

    /// Gradient answered at `now`: a 429 cuts the rate, a success lets it grow back.
    pub(super) fn on_response(&mut self, status: u16, now: Instant) {
        if status == 429 {
            if self
                .last_cut
                .is_none_or(|t| now.duration_since(t) >= CUT_SPACING)
            {
                self.factor = (self.factor * DECREASE).max(MIN_FACTOR);
                self.last_cut = Some(now);
                self.last_raise = now;
                tracing::info!(
                    factor = self.factor,
                    rate = self.share_rps * self.factor,
                    "Gradient answered 429: the request rate drops"
                );
            }
        } else if self.factor < 1.0 {
            let dt = now.duration_since(self.last_raise).as_secs_f64().min(1.0);
            self.factor = (self.factor + INCREASE * dt).min(1.0);
            self.last_raise = now;
        } else {
            self.last_raise = now;
        }
    }

    /// This process holds `shares` of `total`: its part of `max_rps`.
    pub(super) fn set_share(&mut self, max_rps: u32, shares: u32, total: u32) {
        self.share_rps = f64::from(max_rps) * f64::from(shares) / f64::from(total.max(1));
    }
}
