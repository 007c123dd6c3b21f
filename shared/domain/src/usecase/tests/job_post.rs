//! A job's plan, guard and posts: what each answer of the PSA does to the run, the connector
//! and the readings; rebuild, alerts, health.

use super::job::*;
use super::job_setup::FailNth;
use super::{G, policy};
use crate::connector::{ConnectorStatus, SettingsPatch, reason};
use crate::ports::{Batch, Ticket};
use crate::sync::{Outcome, RunStatus, TicketState};
use crate::testing::{Fail, SimSlots, World, admin};
use crate::usecase::connectors;
use crate::usecase::sync::{self, JobOutcome, SyncPolicy};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn the_guard_holds_a_big_drop_and_a_release_posts_it() {
    let w = world(&[("a", &["EDR"], 30)]).await;
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    set_devices(&w, "a", 1);
    let job = request(&w).await;
    assert_eq!(run(&w, &job).await, JobOutcome::Done(Some(RunStatus::Held)));
    assert_eq!(outcomes(&w, &job), [o("a", "EDR", Outcome::Held)]);
    assert_eq!(w.psa.sent().len(), 1, "nothing posted");
    let held = the_run(&w, &job);
    assert!(
        held.reason
            .unwrap()
            .starts_with("held by the billing guard")
    );
    let audit = w.store.audit.lock().unwrap().clone();
    assert!(
        audit
            .iter()
            .any(|(_, e)| e.action == crate::AuditAction::SyncHeld)
    );

    sync::release_run(&w.queue_core(), &policy(), &admin("msp"), G, &job.run_id)
        .await
        .unwrap();
    let release = w.store.jobs.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        run(&w, &release).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert_eq!(
        w.psa.sent().last(),
        Some(&("svc-EDR".to_owned(), "a".to_owned(), 1))
    );
}

#[tokio::test]
async fn unchanged_and_disabled_readings_take_no_call() {
    let w = world(&[("a", &["EDR", "NETWORK"], 5)]).await;
    assert_eq!(sync_now(&w).await.counts.posted, 2);
    let job = request(&w).await;
    run(&w, &job).await;
    let unchanged = [
        o("a", "EDR", Outcome::Unchanged),
        o("a", "NETWORK", Outcome::Unchanged),
    ];
    assert_eq!(outcomes(&w, &job), unchanged);
    assert_eq!(calls(&w, "report_count"), 2, "none more");
    for ws in w.store.children.lock().unwrap().values_mut().flatten() {
        ws.services.remove("NETWORK");
    }
    let job = request(&w).await;
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    let disabled = [
        o("a", "EDR", Outcome::Unchanged),
        o("a", "NETWORK", Outcome::SkippedDisabled),
    ];
    assert_eq!(outcomes(&w, &job), disabled);
    assert_eq!(
        calls(&w, "report_count"),
        2,
        "a disabled service is not sent, not even as 0"
    );
}

#[tokio::test]
async fn an_unmapped_last_count_is_followed_by_a_rebuild_with_an_accepted_one() {
    let w = world(&[("a", &["EDR"], 3), ("b", &["EDR"], 4)]).await;
    w.psa.unmapped.lock().unwrap().insert("b".into());
    let job = request(&w).await;
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert_eq!(
        outcomes(&w, &job),
        [
            o("a", "EDR", Outcome::Posted),
            o("b", "EDR", Outcome::Unmapped)
        ]
    );
    let counts = w.psa.counts.lock().unwrap().clone();
    let a = |batch| ("svc-EDR".to_owned(), "a".to_owned(), 3, batch);
    assert_eq!(
        counts,
        [a(Batch::MoreFollow), a(Batch::Last)],
        "a sent again to rebuild"
    );
}

/// Three accounts, the PSA answering the first count and failing the rest as `how`.
async fn failing_after_one(how: Fail) -> (World, crate::ports::SyncJob) {
    let w = world(&[("a", &["EDR"], 1), ("b", &["EDR"], 2), ("c", &["EDR"], 3)]).await;
    w.psa.fail_after("report_count", 1, how);
    let job = request(&w).await;
    run(&w, &job).await;
    (w, job)
}

#[tokio::test]
async fn a_401_while_posting_stops_the_run_and_disconnects_the_connector() {
    let (w, job) = failing_after_one(Fail::Token).await;
    let r = the_run(&w, &job);
    assert_eq!(r.status, RunStatus::TokenRejected);
    let failed = [
        o("a", "EDR", Outcome::Posted),
        o("b", "EDR", Outcome::Failed),
        o("c", "EDR", Outcome::Failed),
    ];
    assert_eq!(outcomes(&w, &job), failed);
    assert_eq!(r.failures[0].reason, "Fake PSA rejected the token (401)");
    assert_eq!(r.failures[1].reason, "not sent: the run stopped");
    assert_eq!(calls(&w, "report_count"), 2, "no call after the 401");
    let c = connector(&w);
    assert_eq!(
        (c.status, c.status_reason.as_deref()),
        (ConnectorStatus::Disconnected, Some(reason::TOKEN_REJECTED))
    );
}

#[tokio::test]
async fn a_403_while_posting_stops_the_run_and_errors_the_connector() {
    let (w, job) = failing_after_one(Fail::Forbidden).await;
    assert_eq!(the_run(&w, &job).status, RunStatus::Failed);
    assert_eq!(calls(&w, "report_count"), 2);
    let c = connector(&w);
    assert_eq!(
        (c.status, c.status_reason.as_deref()),
        (ConnectorStatus::Error, Some(reason::GRADIENT_FORBIDDEN))
    );
}

#[tokio::test]
async fn a_count_the_psa_does_not_take_fails_that_reading_only() {
    let (w, job) = failing_after_one(Fail::Unavailable).await;
    let r = the_run(&w, &job);
    assert_eq!(r.status, RunStatus::PartiallyFailed);
    assert_eq!((r.counts.posted, r.counts.failed), (1, 2));
    assert_eq!(r.failures[0].reason, "the PSA is unavailable: down");
    let c = connector(&w);
    assert!(c.may_sync());
    assert_eq!(c.failed_streak, 1);
}

#[tokio::test]
async fn a_re_token_while_posting_cancels_the_run() {
    let w = world(&[("a", &["EDR"], 1), ("b", &["EDR"], 2), ("c", &["EDR"], 3)]).await;
    let store = w.store.clone();
    *w.psa.on_call.lock().unwrap() = Some(Box::new(move |name| {
        if name == "report_count" {
            let mut all = store.connectors.lock().unwrap();
            let c = all.values_mut().next().unwrap();
            c.token_version = 2; // re-tokened by an admin
        }
    }));
    let job = request(&w).await;
    let every_count = SyncPolicy {
        cancel_check_every: 1,
        ..policy()
    };
    let end = run_with(&w, &every_count, &job, far()).await;
    assert_eq!(end, JobOutcome::Done(Some(RunStatus::Cancelled)));
    let want = [
        o("a", "EDR", Outcome::Posted),
        o("b", "EDR", Outcome::Failed),
        o("c", "EDR", Outcome::Failed),
    ];
    assert_eq!(outcomes(&w, &job), want);
    assert_eq!(
        the_run(&w, &job).failures[0].reason,
        "not sent: the connector was deleted or re-tokened"
    );
    assert_eq!(calls(&w, "report_count"), 1);
}

#[tokio::test]
async fn a_lease_lost_at_a_checkpoint_leaves_the_run_to_the_other_worker() {
    let mut w = world(&[("a", &["EDR"], 1), ("b", &["EDR"], 2)]).await;
    let slots = Arc::new(SimSlots::new(None));
    w.core.slots = slots.clone();
    let job = request(&w).await;
    let key = format!("msp/{}", job.connector().key());
    *w.psa.on_call.lock().unwrap() = Some(Box::new(move |name| {
        if name == "report_count" {
            let mut all = slots.slots.lock().unwrap();
            let until = tokio::time::Instant::now() + Duration::from_secs(3600);
            all.get_mut(&key).unwrap().lease = Some(("other-worker".into(), until));
        }
    }));
    let each = SyncPolicy {
        checkpoint_every: 1,
        in_flight: 1,
        ..policy()
    };
    assert_eq!(run_with(&w, &each, &job, far()).await, JobOutcome::Busy);
    assert_eq!(
        the_run(&w, &job).status,
        RunStatus::Running,
        "the other worker finishes it"
    );
    assert_eq!(
        outcomes(&w, &job),
        [
            o("a", "EDR", Outcome::Posted),
            o("b", "EDR", Outcome::Posted)
        ],
        "what was posted is recorded"
    );
}

#[tokio::test]
async fn a_failed_checkpoint_brings_the_job_back_and_the_next_sends_the_rest() {
    let w = world(&[("a", &["EDR"], 1), ("b", &["EDR"], 2)]).await;
    let job = request(&w).await;
    // The first `put_readings` records the (no) decided readings; the second is a checkpoint.
    *w.store.tap.lock().unwrap() = Some(FailNth::new("put_readings", 2));
    let ran = sync::run_job(&w.core, &policy(), &job, "worker-1", far()).await;
    assert!(ran.is_err(), "{ran:?}");
    *w.store.tap.lock().unwrap() = None;
    assert_eq!(
        run(&w, &job).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert_eq!(
        outcomes(&w, &job),
        [
            o("a", "EDR", Outcome::Posted),
            o("b", "EDR", Outcome::Posted)
        ]
    );
}

#[tokio::test]
async fn unmapped_services_of_a_billed_account_raise_one_psa_alert() {
    let w = world(&[("a", &["EDR", "NETWORK"], 3)]).await;
    let alerts_on = SettingsPatch {
        psa_alerts: Some(true),
        ..SettingsPatch::default()
    };
    connectors::update_settings(&w.core, &policy(), &admin("msp"), G, alerts_on)
        .await
        .unwrap();
    assert_eq!(sync_now(&w).await.status, RunStatus::Succeeded);
    assert!(
        w.psa.alerts.lock().unwrap().is_empty(),
        "nothing unmapped yet"
    );

    w.psa.unmapped.lock().unwrap().insert("a".into());
    *w.psa.ticket.lock().unwrap() = Some(Ticket::Pending);
    set_devices(&w, "a", 4);
    let r = sync_now(&w).await;
    assert_eq!((r.status, r.counts.unmapped), (RunStatus::Succeeded, 2));
    assert_eq!(
        w.psa.alerts.lock().unwrap().len(),
        1,
        "one alert for the account"
    );
    assert_eq!(r.tickets.len(), 1);
    assert_eq!(r.tickets[0].state, TicketState::Pending);
    assert_eq!(
        w.store.tickets.lock().unwrap().values().flatten().count(),
        1,
        "asked again later"
    );

    // The next run finds the ticket created and says so on the alert's audit entry.
    *w.psa.ticket.lock().unwrap() = None;
    let r = sync_now(&w).await;
    assert!(
        r.tickets
            .iter()
            .any(|t| t.earlier && t.state == TicketState::Created)
    );
    assert_eq!(
        w.store.tickets.lock().unwrap().values().flatten().count(),
        0
    );
}

#[tokio::test]
async fn the_psa_shows_failing_after_failed_runs_and_healthy_after_a_success() {
    let w = world(&[("a", &["EDR"], 3)]).await;
    w.psa.fail("report_count", Fail::Unavailable);
    let two = SyncPolicy {
        error_after: 2,
        ..policy()
    };
    for _ in 0..2 {
        let job = request(&w).await;
        assert_eq!(
            run_with(&w, &two, &job, far()).await,
            JobOutcome::Done(Some(RunStatus::Failed))
        );
    }
    assert_eq!(calls(&w, "report_health:failing"), 1);
    assert!(connector(&w).psa_failing);
    w.psa.fail.lock().unwrap().clear();
    let job = request(&w).await;
    assert_eq!(
        run_with(&w, &two, &job, far()).await,
        JobOutcome::Done(Some(RunStatus::Succeeded))
    );
    assert_eq!(calls(&w, "report_health:healthy"), 1);
    assert!(!connector(&w).psa_failing);
}
