//! Posting counts: several in flight within the shared rate budget, each checked against the
//! deadline, the connector's incarnation and the stop reasons before it goes out.

use super::plan::Reading;
use crate::connector::ConnectorRef;
use crate::ports::{Batch, CountOutcome, PsaError, StoreError};
use crate::secret::ApiToken;
use crate::usecase::Core;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why a job stopped posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Stop {
    Go = 0,
    /// 401: no further calls with this token.
    Token = 1,
    /// 403: the PSA stopped us.
    Forbidden = 2,
    /// The connector was deleted or re-tokened.
    Cancelled = 3,
    /// Too little time is left in this invocation: the rest goes to a continuation.
    Deadline = 4,
}

/// How one posted reading ended.
pub(super) enum Sent {
    Accepted(Reading),
    Unmapped(Reading),
    Failed(Reading, String),
    /// Not sent: the job stopped before it (see [`Sender::stop`]).
    Unsent(Reading),
}

pub(super) struct Sender<'a> {
    pub core: &'a Core,
    pub token: &'a ApiToken,
    pub connector: &'a ConnectorRef,
    pub token_version: u64,
    pub deadline: Instant,
    pub margin: Duration,
    pub in_flight: usize,
    pub check_every: usize,
    stop: AtomicU8,
    started: AtomicUsize,
    /// An accepted count was sent with `no_build=false`: the PSA rebuilds its billing view.
    pub built: AtomicBool,
}

impl<'a> Sender<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: &'a Core,
        token: &'a ApiToken,
        connector: &'a ConnectorRef,
        token_version: u64,
        deadline: Instant,
        margin: Duration,
        in_flight: usize,
        check_every: usize,
    ) -> Self {
        Self {
            core,
            token,
            connector,
            token_version,
            deadline,
            margin,
            in_flight: in_flight.max(1),
            check_every: check_every.max(1),
            stop: AtomicU8::new(Stop::Go as u8),
            started: AtomicUsize::new(0),
            built: AtomicBool::new(false),
        }
    }

    pub fn stop(&self) -> Stop {
        match self.stop.load(Ordering::SeqCst) {
            1 => Stop::Token,
            2 => Stop::Forbidden,
            3 => Stop::Cancelled,
            4 => Stop::Deadline,
            _ => Stop::Go,
        }
    }

    /// Records the first reason to stop (later ones do not replace it).
    fn halt(&self, why: Stop) {
        let _ = self.stop.compare_exchange(
            Stop::Go as u8,
            why as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    pub fn deadline_near(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < self.margin
    }

    /// Re-reads the connector; stops the job when its incarnation is gone or re-tokened.
    pub async fn check_connector(&self) -> Result<(), StoreError> {
        let current = self.core.connectors.get(&self.connector.workspace).await?;
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
        let batch = if no_build {
            Batch::MoreFollow
        } else {
            Batch::Last
        };
        let result = self
            .core
            .psa
            .report_count(
                self.token,
                &reading.service_id,
                &reading.account_id,
                reading.count,
                batch,
            )
            .await;
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
                Sent::Failed(reading, "Gradient rejected the token (401)".into())
            }
            Err(PsaError::Forbidden(m)) => {
                self.halt(Stop::Forbidden);
                Sent::Failed(reading, format!("Gradient refused the call (403): {m}"))
            }
            Err(e) => Sent::Failed(reading, e.to_string()),
        }
    }

    /// Posts `chunk` with several counts in flight, all with `no_build=true`; with `last`, its
    /// final reading goes alone and last with `no_build=false`, so the PSA rebuilds once.
    pub async fn post_chunk(&self, chunk: &[Reading], last: bool) -> Vec<Sent> {
        let (bulk, final_one) = match chunk.split_last() {
            Some((f, rest)) if last => (rest, Some(f)),
            _ => (chunk, None),
        };
        let mut out: Vec<Sent> = futures::stream::iter(bulk.iter().cloned())
            .map(|r| self.post(r, true))
            .buffer_unordered(self.in_flight)
            .collect()
            .await;
        if let Some(f) = final_one {
            out.push(self.post(f.clone(), false).await);
        }
        out
    }
}
