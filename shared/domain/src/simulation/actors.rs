//! The actors: futures on the paused clock, advanced for a span of virtual time (so each
//! stops at any await point), left suspended (a slow worker) or dropped (a crashed one).

use super::sim::{Actor, Ended, Role, Sim};
use crate::ports::SyncJob;
use crate::testing::as_actor;
use crate::usecase::sync::{JobOutcome, run_job};
use rand::Rng;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

impl Sim {
    fn new_actor(
        &mut self,
        role: Role,
        label: String,
        fut: impl Future<Output = Ended> + 'static,
    ) -> u32 {
        let id = self.next_actor;
        self.next_actor += 1;
        let actor = Actor {
            role,
            label,
            fut: Box::pin(as_actor(id, fut)),
            since: Instant::now(),
        };
        self.actors.insert(id, actor);
        id
    }

    /// Starts a worker's job for message `msg`, with a deadline far off, near, or passed.
    pub fn start_job(&mut self, msg: u64, job: SyncJob) -> u32 {
        let std_now = std::time::Instant::now();
        let tokio_now = Instant::now().into_std();
        let margin = self.policy.deadline_margin;
        let roll = if self.calm {
            19
        } else {
            self.rng.random_range(0..20)
        };
        let (regime, deadline) = match roll {
            // The deadline arithmetic mixes `std::time::Instant` (which the paused clock does
            // not move) with tokio's timers: only these three regimes mean the same on both.
            0 | 1 => ("passed", std_now.min(tokio_now)),
            2 | 3 => ("near", std_now + margin * 3 / 4),
            _ => (
                "far",
                std_now.max(tokio_now) + Duration::from_secs(24 * 3600),
            ),
        };
        let id = self.next_actor;
        self.seen.job_started(id, &job, self.tree.version);
        let (core, policy, j) = (self.core.clone(), self.policy.clone(), job.clone());
        let owner = format!("w{id}");
        let fut = async move {
            let run = run_job(&core, &policy, &j, &owner, deadline);
            Ended::Job(crate::calls::scope(run).await)
        };
        let label = format!("A{id} job {} of {} ({regime})", job.run_id, job.incarnation);
        self.note(format!("{label}: starts (message m{msg})"));
        self.count("jobs");
        self.new_actor(Role::Job { msg }, label, fut)
    }

    /// Starts an admin's (or the scheduler's) action.
    pub fn start_other(
        &mut self,
        label: String,
        fut: impl Future<Output = String> + 'static,
    ) -> u32 {
        let id = self.next_actor;
        let label = format!("A{id} {label}");
        self.note(format!("{label}: starts"));
        self.new_actor(Role::Other, label, async move { Ended::Other(fut.await) })
    }

    /// Advances actor `id` for `span` of virtual time (`None`: until it ends).
    pub async fn advance(&mut self, id: u32, span: Option<Duration>) {
        let Some(actor) = self.actors.get_mut(&id) else {
            return;
        };
        let cap = span.unwrap_or(Duration::from_secs(12 * 3600));
        let r = tokio::time::timeout(cap, &mut actor.fut).await;
        actor.since = Instant::now();
        match r {
            Ok(out) => self.ended(id, out),
            Err(_) if span.is_none() => {
                let label = actor.label.clone();
                self.seen
                    .violation(format!("{label} made no progress for 12 h of virtual time"));
            }
            Err(_) => {}
        }
    }

    /// Advances every actor at once for `span`.
    pub async fn advance_all(&mut self, span: Duration) {
        let ids: Vec<u32> = self.actors.keys().copied().collect();
        let outs = futures::future::join_all(
            self.actors
                .values_mut()
                .map(|a| tokio::time::timeout(span, &mut a.fut)),
        )
        .await;
        let now = Instant::now();
        for (id, out) in ids.into_iter().zip(outs) {
            if let Some(a) = self.actors.get_mut(&id) {
                a.since = now;
            }
            if let Ok(out) = out {
                self.ended(id, out);
            }
        }
    }

    /// How long the queue keeps a message away after a job gave it back or died.
    pub fn visibility(&mut self) -> Duration {
        Duration::from_secs([5, 30, 120, 900][self.rng.random_range(0..4)])
    }

    fn ended(&mut self, id: u32, out: Ended) {
        let Some(actor) = self.actors.remove(&id) else {
            return;
        };
        self.collect_psa();
        self.seen.actor_ended(id);
        match (actor.role, out) {
            (Role::Job { msg, .. }, Ended::Job(r)) => {
                let acked = matches!(r, Ok(JobOutcome::Done(_) | JobOutcome::Continued));
                if acked {
                    self.queue.delete(msg);
                } else {
                    let after = self.visibility();
                    self.queue.give_back(msg, after);
                }
                self.learn_ids();
                let how = match &r {
                    Ok(o) => format!("{o:?}"),
                    Err(e) => format!("error: {e}"),
                };
                self.note(format!("{}: ends {how}", actor.label));
            }
            (_, Ended::Other(summary)) => {
                self.learn_ids();
                self.note(format!("{}: ends {summary}", actor.label));
            }
            (Role::Other, Ended::Job(_)) => unreachable!("only jobs answer job outcomes"),
        }
    }

    /// Drops actor `id` where it stands, as a crashed process; a job's message comes back.
    pub fn crash(&mut self, id: u32) {
        let Some(actor) = self.actors.remove(&id) else {
            return;
        };
        self.collect_psa();
        self.seen.actor_ended(id);
        self.count("crashes");
        if let Role::Job { msg, .. } = actor.role {
            let after = self.visibility();
            self.queue.give_back(msg, after);
        }
        self.note(format!("{}: crashes", actor.label));
        drop(actor.fut);
    }
}
