//! A job's claim: the run, its lease, the connector and the token — each way it ends there.

use super::job::*;
use super::{G, policy};
use crate::connector::{ConnectorStatus, reason};
use crate::ids::RunId;
use crate::sync::RunStatus;
use crate::testing::{SimSlots, World, admin, token};
use crate::usecase::connectors;
use crate::usecase::sync::{self, JobOutcome};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_job_of_an_unknown_run_is_dropped() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let mut job = request(&w).await;
    job.run_id = RunId::parse("20260101T000000.000Z-nope").unwrap();
    let before = w.psa.calls().len();
    assert_eq!(run(&w, &job).await, JobOutcome::Done(None));
    assert_eq!(w.psa.calls().len(), before, "no PSA call");
}

#[tokio::test]
async fn a_finished_runs_duplicate_delivery_does_nothing() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    let done = JobOutcome::Done(Some(RunStatus::Succeeded));
    assert_eq!(run(&w, &job).await, done);
    let (calls, finished) = (w.psa.calls(), the_run(&w, &job));
    assert_eq!(run(&w, &job).await, done);
    assert_eq!(w.psa.calls(), calls);
    assert_eq!(the_run(&w, &job), finished);
}

#[tokio::test]
async fn a_run_whose_lease_another_worker_holds_comes_back_later() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    w.core.slots = Arc::new(SimSlots::new(None));
    let job = request(&w).await;
    let c = job.connector();
    let lease = Duration::from_secs(90);
    w.core
        .slots
        .take_lease(&c, &job.run_id, "other-worker", lease)
        .await
        .unwrap();
    assert_eq!(run(&w, &job).await, JobOutcome::Busy);
    assert_eq!(calls(&w, "report_count"), 0);
    assert_eq!(the_run(&w, &job).status, RunStatus::Queued, "untouched");
}

#[tokio::test]
async fn a_run_whose_slot_another_run_holds_fails() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    let other = RunId::parse("20260101T000000.000Z-other").unwrap();
    w.store
        .slots
        .lock()
        .unwrap()
        .insert(job.connector().key(), other.clone());
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Failed))
    );
    let reason = the_run(&w, &job).reason.unwrap();
    assert_eq!(
        reason,
        format!("already running: run {other} holds the connector")
    );
    let slots = w.store.slots.lock().unwrap();
    assert_eq!(
        slots.get(&job.connector().key()),
        Some(&other),
        "the other run keeps its slot"
    );
}

#[tokio::test]
async fn a_deleted_connector_cancels_its_queued_run() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    connectors::delete(&w.core, &policy(), &admin("msp"), G)
        .await
        .unwrap();
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Cancelled))
    );
    assert_eq!(
        the_run(&w, &job).reason.as_deref(),
        Some("cancelled: the connector was deleted")
    );
    assert_eq!(calls(&w, "report_count"), 0);
}

#[tokio::test]
async fn the_worker_finishes_a_delete_that_stopped_half_way() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    edit_connector(&w, |c| {
        c.deleting_since = Some(time::OffsetDateTime::now_utc())
    });
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Cancelled))
    );
    assert!(
        w.store.connectors.lock().unwrap().is_empty(),
        "the connector is gone"
    );
    assert!(w.store.tokens.lock().unwrap().is_empty(), "and its token");
    assert!(
        w.store.orgs.lock().unwrap().is_empty(),
        "and its organization's binding"
    );
    assert_eq!(calls(&w, "disconnect"), 1, "the PSA was told");
}

#[tokio::test]
async fn a_re_token_between_two_jobs_of_a_run_cancels_it() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    // Out of time before the first count: the run goes on in a continuation.
    assert_eq!(
        run_with(&w, &policy(), &job, Instant::now()).await,
        JobOutcome::Continued
    );
    let started = the_run(&w, &job);
    assert_eq!(
        (started.status, started.token_version),
        (RunStatus::Running, 1)
    );
    let t = token("tok-0987654321");
    connectors::retoken(&w.core, &policy(), &admin("msp"), G, t)
        .await
        .unwrap();
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Cancelled))
    );
    let why = the_run(&w, &job).reason.unwrap();
    assert_eq!(
        why,
        "cancelled: the connector's token was replaced while the run was going"
    );
    assert_eq!(calls(&w, "report_count"), 0);
}

#[tokio::test]
async fn a_disconnected_or_errored_connector_ends_its_run_at_once() {
    for (status, why, ends) in [
        (
            ConnectorStatus::Disconnected,
            reason::TOKEN_REJECTED,
            RunStatus::TokenRejected,
        ),
        (
            ConnectorStatus::Error,
            reason::GRADIENT_FORBIDDEN,
            RunStatus::Failed,
        ),
    ] {
        let w = world(&[("a", &["EDR"], 3)]).await;
        let job = request(&w).await;
        edit_connector(&w, |c| c.set_status(status, Some(why), c.updated_at));
        assert_eq!(run(&w, &job).await, JobOutcome::Done(Some(ends)));
        let reason = the_run(&w, &job).reason.unwrap();
        assert_eq!(reason, format!("the connector is {}", status.as_str()));
        assert_eq!(calls(&w, "report_count"), 0);
    }
}

#[tokio::test]
async fn a_missing_token_fails_the_run_and_says_so_on_the_connector() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    w.store.tokens.lock().unwrap().clear();
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Failed))
    );
    let why = the_run(&w, &job).reason;
    assert_eq!(why.as_deref(), Some("no token is stored for the connector"));
    let c = connector(&w);
    assert_eq!(
        (c.status, c.status_reason.as_deref()),
        (ConnectorStatus::Error, Some(reason::TOKEN_MISSING))
    );
}

/// A world of several MSPs, each with its own organization: used by the vendor-key tests.
pub(super) async fn msps(names: &[&str]) -> World {
    let w = World::new();
    for (i, msp) in names.iter().enumerate() {
        w.child(msp, &format!("{msp}-a"), "Acme", &["EDR"], 3);
        let raw = format!("tok-{msp}-1234567");
        w.psa
            .org_of
            .lock()
            .unwrap()
            .insert(raw.clone(), format!("org-{i}"));
        connectors::connect(&w.core, &policy(), &admin(msp), G, token(&raw))
            .await
            .unwrap();
    }
    w
}

#[tokio::test]
async fn rejections_of_many_msps_at_once_are_the_vendor_keys_and_disconnect_no_one() {
    let w = msps(&["msp", "msp2", "msp3"]).await;
    w.psa.fail("verify", crate::testing::Fail::Token);
    let mut ends = Vec::new();
    for msp in ["msp", "msp2", "msp3"] {
        sync::request_sync(&w.queue_core(), &policy(), &admin(msp), G)
            .await
            .unwrap();
        let job = w.store.jobs.lock().unwrap().last().cloned().unwrap();
        ends.push(run(&w, &job).await);
    }
    let rejected = JobOutcome::Done(Some(RunStatus::TokenRejected));
    assert_eq!(
        ends,
        [
            rejected.clone(),
            rejected,
            JobOutcome::Done(Some(RunStatus::Failed))
        ]
    );
    let all = w.store.connectors.lock().unwrap();
    assert!(
        all.values().all(|c| c.may_sync()),
        "the first two are restored: {all:?}"
    );
}
