//! Posting counts: a continuous window of several in flight within the shared rate budget (a
//! new count starts as soon as one finishes), each checked against the deadline, the
//! connector's incarnation and the stop reasons before it goes out; the outcomes are
//! checkpointed in the background, never blocking the senders.

use super::SyncPolicy;
use super::plan::Reading;
use super::record::Recorder;
use super::sent::Sent;
use crate::connector::ConnectorRef;
use crate::ports::{Batch, CountOutcome, Lease, PsaError, StoreError};
use crate::secret::ApiToken;
use crate::usecase::Core;
use crate::usecase::WorkerCore;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a job stopped posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Go,
    /// 401: no further calls with this token.
    Token,
    /// 403: the PSA stopped us.
    Forbidden,
    /// The connector was deleted or re-tokened.
    Cancelled,
    /// Too little time is left in this invocation: the rest goes to a continuation.
    Deadline,
    /// Another worker took the run's lease: it finishes the run.
    LeaseLost,
    /// The store failed at a checkpoint: the job fails (nothing more is recorded) and its
    /// message comes back, as after a crash.
    StoreFailed,
}

pub(super) struct Sender<'a> {
    pub core: &'a WorkerCore,
    pub token: &'a ApiToken,
    pub connector: &'a ConnectorRef,
    pub token_version: u64,
    pub deadline: Instant,
    pub margin: Duration,
    pub in_flight: usize,
    pub check_every: usize,
    /// The first reason to stop; unset while the job goes on.
    stop: OnceLock<Stop>,
    started: AtomicUsize,
    /// An accepted count was sent with `no_build=false`: the PSA rebuilds its billing view.
    pub built: AtomicBool,
    /// Until when the job's lease surely runs (`lease_ttl` from before the call that took or
    /// last renewed it). A lease that lapsed is lost: another worker may have taken the run, or
    /// a new incarnation may be posting, so no count starts and the lease is not renewed.
    lease_until: Mutex<tokio::time::Instant>,
    lease_ttl: Duration,
}

impl<'a> Sender<'a> {
    /// Posts with `token` (of version `token_version`) for `connector` until `deadline`, as
    /// `policy` says: its margin, counts in flight and how often the connector is re-read.
    pub fn new(
        core: &'a WorkerCore,
        token: &'a ApiToken,
        connector: &'a ConnectorRef,
        token_version: u64,
        deadline: Instant,
        lease_until: tokio::time::Instant,
        policy: &SyncPolicy,
    ) -> Self {
        Self {
            core,
            token,
            connector,
            token_version,
            deadline,
            margin: policy.deadline_margin,
            in_flight: policy.in_flight.max(1),
            check_every: policy.cancel_check_every.max(1),
            stop: OnceLock::new(),
            started: AtomicUsize::new(0),
            built: AtomicBool::new(false),
            lease_until: Mutex::new(lease_until),
            lease_ttl: policy.lease_ttl,
        }
    }

    pub fn stop(&self) -> Stop {
        self.stop.get().copied().unwrap_or(Stop::Go)
    }

    /// Records the first reason to stop (later ones do not replace it).
    pub fn halt(&self, why: Stop) {
        let _ = self.stop.set(why);
    }

    /// At least half the lease is left: a count started now lands while the lease runs (a post
    /// is bounded far below that in production, where the lease is renewed every
    /// `checkpoint_interval`).
    fn lease_ample(&self) -> bool {
        let until = *self.lease_until.lock().unwrap();
        tokio::time::Instant::now() + self.lease_ttl / 2 < until
    }

    /// Before posting, when less than half the lease is left (a long set-up): takes the
    /// lease again even if it lapsed, since the connector is re-read after it (the caller's
    /// [`Sender::check_connector`]) and a new incarnation waits for a live lease. False when
    /// another worker holds it now.
    pub async fn refresh_lease(&self, window: &Window<'_>) -> Result<bool, StoreError> {
        if self.lease_ample() {
            return Ok(true);
        }
        let asked = tokio::time::Instant::now();
        if !window.renew_lease().await? {
            return Ok(false);
        }
        *self.lease_until.lock().unwrap() = asked + self.lease_ttl;
        Ok(true)
    }

    /// The lease still runs (from this job's point of view): no other worker can have the run.
    pub fn holds_lease(&self) -> bool {
        tokio::time::Instant::now() < *self.lease_until.lock().unwrap()
    }

    /// Renews the run's lease at a checkpoint; false when it is lost (it lapsed, or another
    /// worker holds it now).
    async fn renew_lease(&self, window: &Window<'_>) -> Result<bool, StoreError> {
        let asked = tokio::time::Instant::now();
        if asked >= *self.lease_until.lock().unwrap() {
            return Ok(false);
        }
        if !window.renew_lease().await? {
            return Ok(false);
        }
        *self.lease_until.lock().unwrap() = asked + self.lease_ttl;
        Ok(true)
    }

    pub fn deadline_near(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < self.margin
    }

    /// Re-reads the connector; stops the job when its incarnation is gone or re-tokened.
    pub async fn check_connector(&self) -> Result<(), StoreError> {
        let current = self
            .core
            .connectors
            .get(&self.connector.workspace, self.connector.kind)
            .await?;
        if !current.is_some_and(|c| c.owns(&self.connector.incarnation, self.token_version)) {
            tracing::warn!("the connector was deleted or re-tokened: the run stops");
            self.halt(Stop::Cancelled);
        }
        Ok(())
    }

    /// Posts one count, unless the job must stop first.
    pub async fn post(&self, reading: Reading, no_build: bool) -> Sent {
        if self.stop() != Stop::Go {
            return Sent::Unsent(reading);
        }
        if self.deadline_near() {
            self.halt(Stop::Deadline);
            return Sent::Unsent(reading);
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(self.check_every) {
            if let Err(e) = self.check_connector().await {
                tracing::warn!(error = %e, "could not re-read the connector; posting goes on");
            }
            if self.stop() != Stop::Go {
                return Sent::Unsent(reading);
            }
        }
        // Checked last, with no await before the post goes out.
        if !self.lease_ample() {
            tracing::warn!("the run's lease runs out; another worker finishes the run");
            self.halt(Stop::LeaseLost);
            return Sent::Unsent(reading);
        }
        let batch = if no_build {
            Batch::MoreFollow
        } else {
            Batch::Last
        };
        let posted = self.core.psa(self.connector.kind).report_count(
            self.token,
            &reading.service_id,
            &reading.account_id,
            reading.count,
            batch,
        );
        // The client ends every call by the job's bound (`crate::deadline`); the timeout is the
        // belt to those braces. A count cut by it has no outcome: the continuation sends it.
        let calls_end = self.deadline.checked_sub(self.margin / 2);
        let result = match calls_end {
            Some(end) => match tokio::time::timeout_at(end.into(), posted).await {
                Ok(r) => r,
                Err(_) => Err(PsaError::Unavailable {
                    what: "the job's time bound".into(),
                    retry_after: None,
                }),
            },
            None => posted.await,
        };
        let out_of_time = calls_end.is_some_and(|end| Instant::now() >= end)
            || crate::deadline::remaining() == Some(Duration::ZERO);
        if out_of_time && matches!(result, Err(PsaError::Unavailable { .. })) {
            tracing::warn!("a count ran into the job's time bound: the continuation sends it");
            self.halt(Stop::Deadline);
            return Sent::Unsent(reading);
        }
        match result {
            Ok(CountOutcome::Accepted) => {
                if !no_build {
                    self.built.store(true, Ordering::SeqCst);
                }
                Sent::Accepted(reading)
            }
            Ok(CountOutcome::Unmapped) => Sent::Unmapped(reading),
            Err(PsaError::TokenRejected) => {
                self.halt(Stop::Token);
                let psa = self.core.psa(self.connector.kind).name();
                Sent::Failed(reading, format!("{psa} rejected the token (401)"))
            }
            Err(PsaError::Forbidden(m)) => {
                self.halt(Stop::Forbidden);
                let psa = self.core.psa(self.connector.kind).name();
                Sent::Failed(reading, format!("{psa} refused the call (403): {m}"))
            }
            Err(e) => Sent::Failed(reading, e.to_string()),
        }
    }

    /// Posts `bulk` with `in_flight` counts in flight, all with `no_build=true`, then `last` alone
    /// with `no_build=false` (the PSA rebuilds once). Outcomes go to `recorder` in checkpoints
    /// (`window.every` results or `window.interval`, whichever comes first, once the bulk is done
    /// — while `last` is on its way — and at the end), written while the posting goes on; at
    /// each checkpoint the run's lease is renewed. Answers the readings that were not sent (the
    /// job stopped: see [`Sender::stop`]).
    pub async fn send_all(
        &self,
        recorder: &Recorder<'_>,
        bulk: &[Reading],
        last: Option<&Reading>,
        window: &Window<'_>,
    ) -> Result<Vec<Reading>, StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Note>();
        let send = async move {
            let mut posts = futures::stream::iter(bulk.iter().cloned())
                .map(|r| self.post(r, true))
                .buffer_unordered(self.in_flight);
            while let Some(sent) = posts.next().await {
                let _ = tx.send(Note::Result(sent));
            }
            if let Some(f) = last {
                let _ = tx.send(Note::BulkDone);
                let _ = tx.send(Note::Result(self.post(f.clone(), false).await));
            }
        };
        let record = async {
            let mut pending = Vec::new();
            let mut unsent = Vec::new();
            let mut since = Instant::now();
            loop {
                let next = tokio::time::timeout_at((since + window.interval).into(), rx.recv());
                let (closed, bulk_done) = match next.await {
                    Ok(Some(Note::Result(Sent::Unsent(r)))) => {
                        unsent.push(r);
                        (false, false)
                    }
                    Ok(Some(Note::Result(sent))) => {
                        pending.push(sent);
                        (false, false)
                    }
                    Ok(Some(Note::BulkDone)) => (false, true),
                    Ok(None) => (true, false),
                    Err(_) => (false, false), // the interval passed
                };
                let due = pending.len() >= window.every
                    || since.elapsed() >= window.interval
                    || (bulk_done && !pending.is_empty());
                if (closed || due) && !self.holds_lease() {
                    // Another worker may have the run: what this job learnt is not written (the
                    // counts not recorded go out again, the same values).
                    self.halt(Stop::LeaseLost);
                    pending.clear();
                }
                if closed || due {
                    let written = recorder.checkpoint(std::mem::take(&mut pending)).await;
                    if written.is_err() {
                        self.halt(Stop::StoreFailed); // the job fails; its message comes back
                    }
                    written?;
                    since = Instant::now();
                    if !closed
                        && !self
                            .renew_lease(window)
                            .await
                            .inspect_err(|_| self.halt(Stop::StoreFailed))?
                    {
                        tracing::warn!("lease lost: another worker finishes the run");
                        self.halt(Stop::LeaseLost);
                    }
                }
                if closed {
                    return Ok(unsent);
                }
            }
        };
        let ((), unsent) = tokio::join!(send, record);
        unsent
    }
}

/// What the senders tell the recorder.
enum Note {
    Result(Sent),
    /// Every count of the bulk has its result: what is pending is written while the last count
    /// is on its way, so the run's tail is a checkpoint of one.
    BulkDone,
}

/// Checkpoint cadence and the run lease the window renews at each checkpoint.
pub(super) struct Window<'a> {
    pub core: &'a Core,
    pub connector: &'a ConnectorRef,
    pub run_id: &'a crate::ids::RunId,
    pub owner: &'a str,
    pub lease_ttl: Duration,
    /// A checkpoint after this many results...
    pub every: usize,
    /// ... or after this long, whichever comes first.
    pub interval: Duration,
}

impl Window<'_> {
    /// Renews the run's lease in the store; false when another worker holds it now.
    async fn renew_lease(&self) -> Result<bool, StoreError> {
        let lease = self
            .core
            .slots
            .take_lease(self.connector, self.run_id, self.owner, self.lease_ttl)
            .await?;
        Ok(lease == Lease::Acquired)
    }
}
