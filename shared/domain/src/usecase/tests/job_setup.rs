//! A job's set-up (token check, organization, services, accounts) and its time bound.

use super::job::*;
use super::policy;
use crate::connector::{ConnectorStatus, reason};
use crate::ids::WorkspaceId;
use crate::ports::StoreError;
use crate::sync::{Outcome, RunStatus};
use crate::testing::Fail;
use crate::testing::store::{Call, StoreFault, Tap, Verdict};
use crate::usecase::sync::{self, JobOutcome, SyncPolicy};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Fails the `nth` call (from 1) of store method `op`, before it writes anything.
pub(super) struct FailNth {
    pub op: &'static str,
    pub nth: usize,
    pub seen: AtomicUsize,
}

impl FailNth {
    pub fn new(op: &'static str, nth: usize) -> Arc<Self> {
        Arc::new(Self {
            op,
            nth,
            seen: AtomicUsize::new(0),
        })
    }
}

impl Tap for FailNth {
    fn before(&self, call: &Call) -> Verdict {
        let this = call.op == self.op && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth;
        Verdict {
            delay: Duration::ZERO,
            fault: this.then_some(StoreFault::Before),
        }
    }
    fn applied(&self, _: &Call) {}
}

#[tokio::test]
async fn a_403_at_the_token_check_errors_the_connector() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    w.psa.fail("verify", Fail::Forbidden);
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Failed))
    );
    let why = the_run(&w, &job).reason.unwrap();
    assert_eq!(why, "Fake PSA refused the calls (403, anomaly detected)");
    let c = connector(&w);
    assert_eq!(
        (c.status, c.status_reason.as_deref()),
        (ConnectorStatus::Error, Some(reason::GRADIENT_FORBIDDEN))
    );
}

#[tokio::test]
async fn a_psa_that_does_not_answer_the_set_up_fails_the_run_only() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    w.psa.fail("accounts", Fail::Unavailable);
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Failed))
    );
    let why = the_run(&w, &job).reason.unwrap();
    assert_eq!(
        why,
        "setting up Fake PSA failed: the PSA is unavailable: down"
    );
    assert!(connector(&w).may_sync(), "the connector stays connected");
    assert_eq!(calls(&w, "report_count"), 0);
}

#[tokio::test]
async fn a_set_up_short_of_time_continues_in_a_new_job() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    w.child("msp", "b", "Beta", &["EDR"], 2); // an account to create: set-up has PSA calls left
    let job = request(&w).await;
    let near = Instant::now() + Duration::from_secs(20); // inside the 30 s margin
    assert_eq!(
        run_with(&w, &policy(), &job, near).await,
        JobOutcome::Continued
    );
    let r = the_run(&w, &job);
    assert_eq!((r.status, r.continuations), (RunStatus::Running, 1));
    let queued = w.store.jobs.lock().unwrap().clone();
    assert_eq!(
        queued,
        [job.clone(), job.clone()],
        "the same job, queued again"
    );
    assert_eq!(calls(&w, "create_accounts"), 1, "only the connect's");
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
}

#[tokio::test]
async fn a_job_near_its_deadline_sends_nothing_and_its_continuation_sends_all() {
    let w = world(&[("a", &["EDR"], 3), ("b", &["EDR"], 2)]).await;
    let job = request(&w).await;
    assert_eq!(
        run_with(&w, &policy(), &job, Instant::now()).await,
        JobOutcome::Continued
    );
    assert_eq!(calls(&w, "report_count"), 0);
    assert!(
        outcomes(&w, &job).is_empty(),
        "nothing recorded: all goes to the continuation"
    );
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert_eq!(calls(&w, "report_count"), 2, "each reading sent once");
    assert_eq!(the_run(&w, &job).continuations, 1);
}

#[tokio::test]
async fn what_is_left_after_the_last_continuation_fails() {
    let w = world(&[("a", &["EDR"], 3), ("b", &["EDR"], 2)]).await;
    let job = request(&w).await;
    let none_left = SyncPolicy {
        max_continuations: 0,
        ..policy()
    };
    let end = run_with(&w, &none_left, &job, Instant::now()).await;
    assert_eq!(end, JobOutcome::Done(Some(RunStatus::Failed)));
    assert_eq!(
        outcomes(&w, &job),
        [
            o("a", "EDR", Outcome::Failed),
            o("b", "EDR", Outcome::Failed)
        ]
    );
    let r = the_run(&w, &job);
    assert_eq!(
        r.failures[0].reason,
        "not sent: the run used all 0 continuations"
    );
    assert_eq!(
        r.reason.as_deref(),
        Some("the run ran out of time after 0 continuations; what is left is sent next run")
    );
}

#[tokio::test]
async fn a_token_of_another_organization_fails_the_run() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    edit_connector(&w, |c| c.organization_id = Some("elsewhere".into()));
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Failed))
    );
    let why = the_run(&w, &job).reason.unwrap();
    assert!(
        why.contains("another Fake PSA organization than the connector's"),
        "{why}"
    );
    assert_eq!(calls(&w, "report_count"), 0);
}

#[tokio::test]
async fn a_connector_without_a_binding_binds_its_organization_or_fails_when_taken() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    edit_connector(&w, |c| c.organization_id = None);
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    assert_eq!(
        connector(&w).organization_id.as_deref(),
        Some("org"),
        "bound by the run"
    );

    edit_connector(&w, |c| c.organization_id = None);
    let other = WorkspaceId::parse("other-msp").unwrap();
    w.store
        .orgs
        .lock()
        .unwrap()
        .insert((super::G, "org".into()), other);
    let r = sync_now(&w).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert!(
        r.reason
            .unwrap()
            .contains("connected to another Coro workspace")
    );
}

#[tokio::test]
async fn a_service_the_psa_gives_no_id_fails_the_run() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    w.psa.services.lock().unwrap().remove("EDR");
    w.psa.withheld.lock().unwrap().insert("EDR".into());
    let r = sync_now(&w).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(
        r.reason.as_deref(),
        Some("the PSA answered no id for the catalogue service `EDR`")
    );
}

#[tokio::test]
async fn a_store_failure_in_set_up_brings_the_job_back() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    let job = request(&w).await;
    *w.store.tap.lock().unwrap() = Some(FailNth::new("all_readings", 1));
    let ran = sync::run_job(&w.core, &policy(), &job, "worker-1", far()).await;
    assert!(matches!(ran, Err(StoreError(_))), "{ran:?}");
    assert_eq!(calls(&w, "report_count"), 0);
    *w.store.tap.lock().unwrap() = None;
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
}

#[tokio::test]
async fn an_account_the_psa_refuses_fails_its_readings_only() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    w.child("msp", "b", "Beta", &["EDR", "NETWORK"], 2);
    w.psa.refuse.lock().unwrap().insert("b".into());
    let job = request(&w).await;
    let done = JobOutcome::Done(Some(RunStatus::PartiallyFailed));
    assert_eq!(run(&w, &job).await, done);
    let want = [
        o("a", "EDR", Outcome::Posted),
        o("b", "EDR", Outcome::Failed),
        o("b", "NETWORK", Outcome::Failed),
    ];
    assert_eq!(outcomes(&w, &job), want);
    let r = the_run(&w, &job);
    assert_eq!(
        r.failures[0].reason,
        "Fake PSA refused the account: bad name"
    );
    assert_eq!(w.psa.sent(), [("svc-EDR".to_owned(), "a".to_owned(), 3)]);
}
