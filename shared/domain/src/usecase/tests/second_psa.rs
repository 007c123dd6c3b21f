//! A second PSA type beside Gradient, served by the same use cases: the check that adding a PSA
//! touches no use case. `ConnectorType::Second` exists only in these tests; the world wires a
//! [`crate::testing::FakePsa`] for each type, and nothing in a use case names either.

use super::{G, connected, policy};
use crate::ConnectorType;
use crate::audit::AuditAction;
use crate::ports::SyncJob;
use crate::sync::RunStatus;
use crate::testing::{World, admin, token};
use crate::usecase::connectors::{self, ConnectorError};
use crate::usecase::sync::{self, JobOutcome};
use crate::usecase::views;
use std::time::{Duration, Instant};

const S: ConnectorType = ConnectorType::Second;

fn token_of(w: &World, kind: ConnectorType) -> Option<String> {
    let tokens = w.store.tokens.lock().unwrap();
    let ws = crate::WorkspaceId::parse("msp").unwrap();
    tokens
        .get(&(ws, kind))
        .map(|t| t.expose_secret().to_owned())
}

#[tokio::test]
async fn a_workspace_holds_one_connector_of_each_type_and_each_reaches_only_its_own_psa() {
    let w = World::new();
    let caller = admin("msp");
    w.child("msp", "a", "Acme", &["EDR"], 5);
    w.child("msp", "b", "Beta", &["EDR", "NETWORK"], 2);

    let (g, _) = connected(&w, G, "tok-gradient-01").await;
    let gradient_calls = w.psa.calls();
    assert!(
        w.second.calls().is_empty(),
        "connecting Gradient set up only Gradient"
    );
    let (s, report) = connected(&w, S, "tok-second-001").await;
    assert_eq!(report.error, None);
    assert_eq!((g.kind, s.kind), (G, S));
    assert_ne!(g.incarnation, s.incarnation);
    assert_eq!(
        w.psa.calls(),
        gradient_calls,
        "Gradient was not called again"
    );
    assert_eq!(
        w.second.calls(),
        gradient_calls,
        "the second PSA was set up the same way"
    );
    assert_eq!(w.second.accounts.lock().unwrap().len(), 2);
    assert_eq!(token_of(&w, G).as_deref(), Some("tok-gradient-01"));
    assert_eq!(token_of(&w, S).as_deref(), Some("tok-second-001"));
    let kinds: Vec<_> = connectors::list(&w.core, &caller)
        .await
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [G, S]);
    for kind in [G, S] {
        let again =
            connectors::connect(&w.core, &policy(), &caller, kind, token("tok-again-0001")).await;
        assert!(matches!(again, Err(ConnectorError::Exists)), "{again:?}");
    }

    // A sync of the second connector: its job names its type, its counts go to its PSA only.
    let run = sync::request_sync(&w.queue_core(), &policy(), &caller, S)
        .await
        .unwrap();
    assert_eq!(run.connector_id, S);
    let job = w.store.jobs.lock().unwrap().last().cloned().unwrap();
    assert_eq!(job.connector_id, S);
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = sync::run_job(&w.core, &policy(), &job, "worker-1", deadline)
        .await
        .unwrap();
    assert_eq!(out, JobOutcome::Done(Some(RunStatus::Succeeded)));
    let mut counts: Vec<(String, String, u64)> = w
        .second
        .counts
        .lock()
        .unwrap()
        .iter()
        .map(|(service, account, n, _)| (service.clone(), account.clone(), *n))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("svc-EDR".into(), "a".into(), 5),
            ("svc-EDR".into(), "b".into(), 2),
            ("svc-NETWORK".into(), "b".into(), 2),
        ]
    );
    assert!(
        w.psa.counts.lock().unwrap().is_empty(),
        "nothing went to Gradient"
    );
    let second_runs = views::runs(&w.core, &caller, S, 20, None).await.unwrap();
    assert_eq!(second_runs.items.len(), 1);
    assert_eq!(second_runs.items[0].status, RunStatus::Succeeded);
    let gradient_runs = views::runs(&w.core, &caller, G, 20, None).await.unwrap();
    assert!(gradient_runs.items.is_empty());
    let after = connectors::get(&w.core, &caller, S).await.unwrap();
    assert!(after.last_sync.is_some() && !after.full_resend_due);
    let gradient = connectors::get(&w.core, &caller, G).await.unwrap();
    assert!(gradient.last_sync.is_none() && gradient.full_resend_due);

    // Deleting the second connector leaves Gradient's alone.
    connectors::delete(&w.core, &policy(), &caller, S)
        .await
        .unwrap();
    assert_eq!(w.second.calls().last(), Some(&"disconnect"));
    assert!(!w.psa.calls().contains(&"disconnect"));
    assert!(matches!(
        connectors::get(&w.core, &caller, S).await,
        Err(ConnectorError::NotFound)
    ));
    assert_eq!(
        connectors::get(&w.core, &caller, G).await.unwrap(),
        gradient
    );
    assert_eq!(token_of(&w, S), None);
    assert_eq!(token_of(&w, G).as_deref(), Some("tok-gradient-01"));

    let audit = w.store.audit.lock().unwrap();
    let by_type = |kind: ConnectorType| -> Vec<AuditAction> {
        audit
            .iter()
            .filter(|(_, e)| e.connector_id == kind)
            .map(|(_, e)| e.action)
            .collect()
    };
    assert_eq!(by_type(G), [AuditAction::ConnectorCreated]);
    assert_eq!(
        by_type(S),
        [
            AuditAction::ConnectorCreated,
            AuditAction::SyncRequested,
            AuditAction::SyncFinished,
            AuditAction::ConnectorDeleted,
        ]
    );
}

#[tokio::test]
async fn a_rejected_token_disconnects_only_the_connector_of_that_psa() {
    let w = World::new();
    let caller = admin("msp");
    w.child("msp", "a", "Acme", &["EDR"], 5);
    for (kind, t) in [(G, "tok-gradient-01"), (S, "tok-second-001")] {
        connected(&w, kind, t).await;
    }
    w.second.fail("verify", crate::testing::Fail::Token);
    sync::request_sync(&w.queue_core(), &policy(), &caller, S)
        .await
        .unwrap();
    let job = w.store.jobs.lock().unwrap().last().cloned().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = sync::run_job(&w.core, &policy(), &job, "worker-1", deadline)
        .await
        .unwrap();
    assert_eq!(out, JobOutcome::Done(Some(RunStatus::TokenRejected)));
    let run = views::run(&w.core, &caller, S, &job.run_id).await.unwrap();
    assert_eq!(
        run.reason.as_deref(),
        Some("Fake PSA rejected the token (401): paste the new API token to reconnect"),
        "the reason names the PSA that rejected it"
    );
    let second = connectors::get(&w.core, &caller, S).await.unwrap();
    assert!(!second.may_sync());
    let gradient = connectors::get(&w.core, &caller, G).await.unwrap();
    assert!(gradient.may_sync(), "Gradient's connector is untouched");
}

#[test]
fn a_job_names_its_type_except_the_default_so_queued_gradient_jobs_read_the_same() {
    let old = r#"{"workspaceId":"msp","runId":"20261124T050000.000Z-a","incarnation":"i1"}"#;
    let job: SyncJob = serde_json::from_str(old).unwrap();
    assert_eq!(
        job.connector_id, G,
        "a job queued before types were carried is Gradient's"
    );
    assert_eq!(
        serde_json::to_string(&job).unwrap(),
        old,
        "and is written the same"
    );
    let second = SyncJob {
        connector_id: S,
        ..job
    };
    let json = serde_json::to_string(&second).unwrap();
    assert!(json.contains(r#""connectorId":"second""#), "{json}");
    assert_eq!(serde_json::from_str::<SyncJob>(&json).unwrap(), second);
    assert_eq!(second.connector().kind, S);
}
