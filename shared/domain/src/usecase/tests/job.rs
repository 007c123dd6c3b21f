//! What the job tests share: a world with one connected MSP, a run requested, a job run.

use super::{G, connected, policy};
use crate::connector::Connector;
use crate::ports::SyncJob;
use crate::sync::{Outcome, SyncRun};
use crate::testing::{World, admin};
use crate::usecase::sync::{self, JobOutcome, SyncPolicy};
use std::time::{Duration, Instant};

/// An MSP `msp` with managed workspaces `(id, services, protected users and devices)`, its
/// Gradient connector connected (so its accounts exist in the PSA).
pub(super) async fn world(workspaces: &[(&str, &[&str], u64)]) -> World {
    let w = World::new();
    for (id, services, n) in workspaces {
        w.child("msp", id, &format!("Acme {id}"), services, *n);
    }
    connected(&w, G, "tok-1234567890").await;
    w
}

/// An admin's "Sync now": the job it queued.
pub(super) async fn request(w: &World) -> SyncJob {
    sync::request_sync(&w.queue_core(), &policy(), &admin("msp"), G)
        .await
        .unwrap();
    w.store.jobs.lock().unwrap().last().cloned().unwrap()
}

/// Runs `job` with the default policy and an hour left.
pub(super) async fn run(w: &World, job: &SyncJob) -> JobOutcome {
    run_with(w, &policy(), job, far()).await
}

pub(super) async fn run_with(
    w: &World,
    policy: &SyncPolicy,
    job: &SyncJob,
    deadline: Instant,
) -> JobOutcome {
    sync::run_job(&w.core, policy, job, "worker-1", deadline)
        .await
        .unwrap()
}

/// A request and its job run at once: the run's status.
pub(super) async fn sync_now(w: &World) -> SyncRun {
    let job = request(w).await;
    run(w, &job).await;
    the_run(w, &job)
}

pub(super) fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

pub(super) fn the_run(w: &World, job: &SyncJob) -> SyncRun {
    let runs = w.store.runs.lock().unwrap();
    runs.iter()
        .find(|r| r.run_id == job.run_id)
        .cloned()
        .unwrap()
}

/// The run's readings as (account, service, outcome).
pub(super) fn outcomes(w: &World, job: &SyncJob) -> Vec<(String, String, Outcome)> {
    let all = w.store.readings.lock().unwrap();
    let mine = all.iter().find(|((_, run), _)| *run == job.run_id);
    mine.map(|(_, rs)| {
        rs.iter()
            .map(|r| (r.account_id.clone(), r.service.clone(), r.outcome))
            .collect()
    })
    .unwrap_or_default()
}

pub(super) fn connector(w: &World) -> Connector {
    let all = w.store.connectors.lock().unwrap();
    all.values().next().cloned().unwrap()
}

/// Changes the stored connector in place (as another writer would).
pub(super) fn edit_connector(w: &World, change: impl FnOnce(&mut Connector)) {
    let mut all = w.store.connectors.lock().unwrap();
    let c = all.values_mut().next().unwrap();
    change(c);
    c.version += 1;
}

/// The number of `name` calls the PSA has had.
pub(super) fn calls(w: &World, name: &str) -> usize {
    w.psa.calls().iter().filter(|c| **c == name).count()
}

pub(super) fn o(account: &str, service: &str, outcome: Outcome) -> (String, String, Outcome) {
    (account.into(), service.into(), outcome)
}

/// Sets managed workspace `id`'s protected users and devices to `n` (as Coro would report them).
pub(super) fn set_devices(w: &World, id: &str, n: u64) {
    let mut all = w.store.children.lock().unwrap();
    let ws = all
        .values_mut()
        .flatten()
        .find(|ws| ws.id.as_str() == id)
        .unwrap();
    (ws.protected_users, ws.protected_devices) = (n, n);
}
