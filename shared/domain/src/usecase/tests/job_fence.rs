//! The four engine bugs the simulation found (issue 19), each pinned where it was: what a job
//! that takes a run over, a duplicate delivery, a lost enqueue and a deleted incarnation's job
//! still going must not do.

use super::job::*;
use super::job_setup::FailNth;
use super::{G, policy};
use crate::connector::ConnectorRef;
use crate::ports::RunSlots;
use crate::sync::{Outcome, RunStatus};
use crate::testing::store::{Call, Tap, Verdict};
use crate::testing::{SimSlots, admin};
use crate::usecase::sync::{self, JobOutcome, RequestError, SyncPolicy};
use std::sync::Arc;
use std::time::Duration;

/// Held after posting (seeds 170, 180, 211 before the fix): the guard's decision is saved before
/// the first count goes out, so the job that takes over after a crash does not decide again on
/// pair states and a tree that moved, and never holds a run that has posted.
#[tokio::test]
async fn a_job_taking_over_a_run_that_posted_keeps_the_guards_decision() {
    let w = world(&[("a", &["EDR"], 30), ("b", &["EDR"], 30)]).await;
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    set_devices(&w, "a", 31);
    set_devices(&w, "b", 32);
    let job = request(&w).await;
    // The first `put_readings` records the decided readings; the second, the first checkpoint,
    // fails: the counts are in the PSA (and the pair states moved), the job dies.
    *w.store.tap.lock().unwrap() = Some(FailNth::new("put_readings", 2));
    let each = SyncPolicy {
        checkpoint_every: 1,
        in_flight: 1,
        ..policy()
    };
    let died = sync::run_job(&w.core, &each, &job, "worker-1", far()).await;
    assert!(died.is_err(), "{died:?}");
    *w.store.tap.lock().unwrap() = None;
    assert!(the_run(&w, &job).guard.is_some(), "the decision was saved");
    assert!(
        w.psa.sent().contains(&("svc-EDR".into(), "a".into(), 31)),
        "a's count went out: {:?}",
        w.psa.sent()
    );

    // Before the run is taken over, b drops far below the guard: deciding again (on a's moved
    // pair state) would hold a run whose counts are already in the PSA.
    set_devices(&w, "b", 1);
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert!(w.psa.sent().contains(&("svc-EDR".into(), "b".into(), 1)));
    assert!(outcomes(&w, &job).iter().all(|r| r.2 != Outcome::Held));
}

/// A count an earlier job of the run posted but could not record, the count then changed back
/// to the value the pair state holds (seed 17392): the job that resumes the run sends it again,
/// since the PSA may hold the unrecorded one.
#[tokio::test]
async fn a_resumed_run_resends_what_an_earlier_job_may_have_posted_unrecorded() {
    let w = world(&[("a", &["EDR"], 13)]).await;
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    set_devices(&w, "a", 23);
    let job = request(&w).await;
    // The second `put_pairs` (the first records the decided readings), the checkpoint's first
    // write, fails: 23 is in the PSA, recorded nowhere.
    *w.store.tap.lock().unwrap() = Some(FailNth::new("put_pairs", 2));
    let died = sync::run_job(&w.core, &policy(), &job, "worker-1", far()).await;
    assert!(died.is_err(), "{died:?}");
    *w.store.tap.lock().unwrap() = None;
    assert_eq!(w.psa.sent().last().map(|s| s.2), Some(23));

    set_devices(&w, "a", 13); // back to what the pair state says the PSA has
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert_eq!(
        w.psa.sent().last().map(|s| s.2),
        Some(13),
        "the PSA holds Coro's count"
    );
}

/// Two workers on one run (seeds 437, 3871): a finished run's duplicate delivery reads the run
/// under its lease, so it finds it finished, and leaves no slot behind.
#[tokio::test]
async fn a_finished_runs_duplicate_leaves_no_slot_behind() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    let slots = Arc::new(SimSlots::new(None));
    w.core.slots = slots.clone();
    let job = request(&w).await;
    let done = JobOutcome::Done(Some(RunStatus::Succeeded));
    assert_eq!(run(&w, &job).await, done);
    assert!(
        slots.slots.lock().unwrap().is_empty(),
        "the run freed its slot"
    );
    let finished = the_run(&w, &job);
    assert_eq!(
        sync::run_job(&w.core, &policy(), &job, "worker-2", far())
            .await
            .unwrap(),
        done
    );
    assert_eq!(the_run(&w, &job), finished, "the run is not written again");
    assert!(
        slots.slots.lock().unwrap().is_empty(),
        "the duplicate's lease made a slot and freed it"
    );
}

/// A queued run never sent (seeds 0, 102, 158): the function that created an admin's run died
/// before the queue answered. The admin's next "Sync now" still answers "in progress", and, once
/// the run has waited two minutes (clicks at once or in a row send no duplicates), sends the
/// run's job again.
#[tokio::test(start_paused = true)]
async fn sync_now_again_sends_the_job_of_a_run_stuck_queued() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    w.core.slots = Arc::new(SimSlots::new(None));
    let job = request(&w).await;
    w.store.jobs.lock().unwrap().clear(); // it never reached the queue
    let (queue, p, admin) = (w.queue_core(), policy(), admin("msp"));
    let click = || sync::request_sync(&queue, &p, &admin, G);
    let again = click().await;
    assert!(
        matches!(&again, Err(RequestError::InProgress(r)) if *r == job.run_id),
        "{again:?}"
    );
    assert!(
        w.store.jobs.lock().unwrap().is_empty(),
        "within the cool-down"
    );
    tokio::time::advance(policy().cooldown).await;
    assert!(matches!(click().await, Err(RequestError::InProgress(_))));
    let resent = w.store.jobs.lock().unwrap().clone();
    assert_eq!(resent, std::slice::from_ref(&job));
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );

    // A run that started is not sent again.
    tokio::time::advance(policy().cooldown).await;
    let running = request(&w).await;
    w.store.jobs.lock().unwrap().clear();
    let mut r = the_run(&w, &running);
    r.status = RunStatus::Running;
    r.started_at = Some(r.queued_at);
    w.store
        .runs
        .lock()
        .unwrap()
        .retain(|x| x.run_id != r.run_id);
    w.store.runs.lock().unwrap().push(r);
    tokio::time::advance(policy().cooldown).await;
    assert!(matches!(click().await, Err(RequestError::InProgress(_))));
    assert!(w.store.jobs.lock().unwrap().is_empty());
}

/// A release that could not be queued is marked failed (so that no run stays queued for
/// ever); the held run can still be released.
#[tokio::test]
async fn a_release_that_could_not_be_queued_leaves_the_held_run_releasable() {
    let w = world(&[("a", &["EDR"], 30)]).await;
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    set_devices(&w, "a", 1);
    let job = request(&w).await;
    assert_eq!(run(&w, &job).await, JobOutcome::Done(Some(RunStatus::Held)));
    let (queue, p, admin) = (w.queue_core(), policy(), admin("msp"));
    let release = || sync::release_run(&queue, &p, &admin, G, &job.run_id);
    *w.store.tap.lock().unwrap() = Some(FailNth::new("enqueue", 1));
    assert!(matches!(release().await, Err(RequestError::Store(_))));
    *w.store.tap.lock().unwrap() = None;
    let failed = w.store.runs.lock().unwrap().last().cloned().unwrap();
    assert_eq!(failed.release_of.as_ref(), Some(&job.run_id));
    assert_eq!(failed.status, RunStatus::Failed);
    let again = release()
        .await
        .expect("the held run is still the one to release");
    let job2 = w.store.jobs.lock().unwrap().last().cloned().unwrap();
    assert_eq!(job2.run_id, again.run_id);
    assert_eq!(
        run(&w, &job2).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
}

/// An old incarnation's count over a newer one (seed 3061): while a job of the deleted
/// incarnation holds its lease, the new incarnation's run waits; once it is gone, it runs.
#[tokio::test]
async fn a_new_incarnation_waits_for_the_deleted_ones_live_lease() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    let slots = Arc::new(SimSlots::new(None));
    w.core.slots = slots.clone();
    let job = request(&w).await;
    let old = ConnectorRef {
        incarnation: "the-deleted-one".into(),
        ..job.connector()
    };
    let other_run = crate::ids::RunId::parse("20260101T000000.000Z-old").unwrap();
    let lease = Duration::from_secs(90);
    slots
        .take_lease(&old, &other_run, "old-worker", lease)
        .await
        .unwrap();
    assert_eq!(run(&w, &job).await, JobOutcome::Busy);
    assert_eq!(calls(&w, "report_count"), 0);
    assert_eq!(the_run(&w, &job).status, RunStatus::Queued, "untouched");

    slots
        .drop_lease(&old, &other_run, "old-worker")
        .await
        .unwrap();
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded)),
        "its own lease was dropped when it waited: the next delivery runs it"
    );
}

/// Stalls the job (on the paused clock) when it reads the pair states, in set-up; `then` runs
/// at that moment (another worker's doing).
struct StallAtPairs {
    stall: Duration,
    then: Box<dyn Fn() + Send + Sync>,
}

impl Tap for StallAtPairs {
    fn before(&self, call: &Call) -> Verdict {
        let here = call.op == "pairs";
        if here {
            (self.then)();
        }
        Verdict {
            delay: if here { self.stall } else { Duration::ZERO },
            fault: None,
        }
    }
    fn applied(&self, _: &Call) {}
}

fn short_lease() -> SyncPolicy {
    SyncPolicy {
        lease_ttl: Duration::from_secs(60),
        ..policy()
    }
}

/// A long set-up leaves less than half the lease: the job takes it again before the first count
/// (nobody else did), and posts.
#[tokio::test(start_paused = true)]
async fn a_long_set_up_takes_the_lease_again_before_posting() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    w.core.slots = Arc::new(SimSlots::new(None));
    let job = request(&w).await;
    *w.store.tap.lock().unwrap() = Some(Arc::new(StallAtPairs {
        stall: Duration::from_secs(45),
        then: Box::new(|| ()),
    }));
    let ran = sync::run_job(&w.core, &short_lease(), &job, "worker-1", far()).await;
    assert_eq!(ran.unwrap(), JobOutcome::Done(Some(RunStatus::Succeeded)));
    assert_eq!(calls(&w, "report_count"), 1);
}

/// ... also when there is nothing to send: a set-up longer than the whole lease does not make
/// every delivery of the run give up at its end.
#[tokio::test(start_paused = true)]
async fn a_set_up_longer_than_the_lease_with_nothing_to_send_still_ends_the_run() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    w.core.slots = Arc::new(SimSlots::new(None));
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    tokio::time::advance(policy().cooldown).await;
    let job = request(&w).await;
    *w.store.tap.lock().unwrap() = Some(Arc::new(StallAtPairs {
        stall: Duration::from_secs(70),
        then: Box::new(|| ()),
    }));
    let ran = sync::run_job(&w.core, &short_lease(), &job, "worker-1", far()).await;
    assert_eq!(ran.unwrap(), JobOutcome::Done(Some(RunStatus::Succeeded)));
    assert_eq!(outcomes(&w, &job), [o("a", "EDR", Outcome::Unchanged)]);
}

/// A worker that stalled past its lease while another took the run over posts nothing.
#[tokio::test(start_paused = true)]
async fn a_job_whose_lapsed_lease_another_worker_took_posts_nothing() {
    let mut w = world(&[("a", &["EDR"], 3)]).await;
    let slots = Arc::new(SimSlots::new(None));
    w.core.slots = slots.clone();
    let job = request(&w).await;
    let key = format!("msp/{}", job.connector().key());
    *w.store.tap.lock().unwrap() = Some(Arc::new(StallAtPairs {
        stall: Duration::from_secs(70),
        then: Box::new(move || {
            let mut all = slots.slots.lock().unwrap();
            let until = tokio::time::Instant::now() + Duration::from_secs(3600);
            all.get_mut(&key).unwrap().lease = Some(("worker-2".into(), until));
        }),
    }));
    let ran = sync::run_job(&w.core, &short_lease(), &job, "worker-1", far()).await;
    assert_eq!(ran.unwrap(), JobOutcome::Busy);
    assert_eq!(calls(&w, "report_count"), 0, "worker-2 finishes the run");
}
