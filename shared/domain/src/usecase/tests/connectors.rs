use super::{G, connected, policy};
use crate::audit::AuditAction;
use crate::connector::{ConnectorStatus, reason};
use crate::testing::{Fail, World, admin, token};
use crate::usecase::connectors::{self, ConnectorError};
use std::time::Duration;

fn actions(w: &World) -> Vec<AuditAction> {
    w.store
        .audit
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e)| e.action)
        .collect()
}

#[tokio::test]
async fn connect_verifies_then_claims_stores_and_sets_the_psa_up() {
    let w = World::new();
    w.child("msp", "c1", " Acme ", &["EDR"], 3);
    w.child("msp", "c2", "Beta", &[], 1);
    let (c, report) = connected(&w, G, "tok-1234567890").await;
    assert_eq!(c.status, ConnectorStatus::Connected);
    assert_eq!(c.status_reason, None);
    assert_eq!(
        w.psa.calls(),
        [
            "verify",
            "begin_setup",
            "publish_services",
            "accounts",
            "create_accounts"
        ]
    );
    assert_eq!(report.services_created as usize, w.core.catalogue.len());
    assert_eq!((report.accounts, report.accounts_created), (2, 2));
    assert_eq!(
        w.psa.accounts.lock().unwrap()["c1"].name,
        "Acme",
        "names are trimmed"
    );
    assert!(
        w.store
            .tokens
            .lock()
            .unwrap()
            .contains_key(&(c.workspace_id.clone(), G))
    );
    assert_eq!(actions(&w), [AuditAction::ConnectorCreated]);

    // A second connect is refused before any PSA call.
    let again =
        connectors::connect(&w.core, &policy(), &admin("msp"), G, token("tok-other-000")).await;
    assert!(matches!(again, Err(ConnectorError::Exists)), "{again:?}");
    assert_eq!(w.psa.calls().len(), 5);
}

#[tokio::test]
async fn a_rejected_or_unanswered_token_check_writes_nothing() {
    let w = World::new();
    w.psa.fail("verify", Fail::Token);
    let r = connectors::connect(&w.core, &policy(), &admin("msp"), G, token("tok-bad-0000")).await;
    assert!(matches!(r, Err(ConnectorError::TokenRejected)), "{r:?}");

    w.psa.fail.lock().unwrap().clear();
    *w.psa.verify_delay.lock().unwrap() = Duration::from_millis(200);
    let mut quick = policy();
    quick.verify_deadline = Duration::from_millis(20);
    let r = connectors::connect(&w.core, &quick, &admin("msp"), G, token("tok-slow-0000")).await;
    assert!(matches!(r, Err(ConnectorError::PsaUnavailable(_))), "{r:?}");

    assert!(w.store.connectors.lock().unwrap().is_empty());
    assert!(w.store.tokens.lock().unwrap().is_empty());
    assert!(actions(&w).is_empty());
}

#[tokio::test]
async fn token_checks_are_limited_per_workspace() {
    let w = World::new();
    w.psa.fail("verify", Fail::Token);
    let mut p = policy();
    p.verify_attempts = 2;
    for _ in 0..2 {
        let r = connectors::connect(&w.core, &p, &admin("msp"), G, token("tok-bad-0000")).await;
        assert!(matches!(r, Err(ConnectorError::TokenRejected)), "{r:?}");
    }
    let r = connectors::connect(&w.core, &p, &admin("msp"), G, token("tok-bad-0000")).await;
    assert!(
        matches!(r, Err(ConnectorError::TooManyAttempts(_))),
        "{r:?}"
    );
    assert_eq!(
        w.psa.calls(),
        ["verify", "verify"],
        "the third check never reached the PSA"
    );
    // Another workspace has its own attempts.
    let r = connectors::connect(&w.core, &p, &admin("other"), G, token("tok-bad-0000")).await;
    assert!(matches!(r, Err(ConnectorError::TokenRejected)), "{r:?}");
}

#[tokio::test]
async fn a_failed_set_up_leaves_the_connector_connected_and_incomplete() {
    let w = World::new();
    w.child("msp", "c1", "Acme", &["EDR"], 3);
    w.psa.fail("create_accounts", Fail::Unavailable);
    let (c, report) = connected(&w, G, "tok-1234567890").await;
    assert!(report.error.is_some());
    assert_eq!(c.status, ConnectorStatus::Connected);
    assert_eq!(c.status_reason.as_deref(), Some(reason::SETUP_INCOMPLETE));

    // A rejected token in set-up disconnects.
    let w = World::new();
    w.psa.fail("publish_services", Fail::Token);
    let (c, _) = connected(&w, G, "tok-1234567890").await;
    assert_eq!(c.status, ConnectorStatus::Disconnected);
    assert_eq!(c.status_reason.as_deref(), Some(reason::TOKEN_REJECTED));
}

#[tokio::test]
async fn retoken_reconnects_with_a_new_version_and_a_full_resend() {
    let w = World::new();
    let missing =
        connectors::retoken(&w.core, &policy(), &admin("msp"), G, token("tok-2-0000000")).await;
    assert!(
        matches!(missing, Err(ConnectorError::NotFound)),
        "{missing:?}"
    );
    assert!(
        w.psa.calls().is_empty(),
        "no token check without a connector"
    );

    w.psa.fail("publish_services", Fail::Token);
    let (c, _) = connected(&w, G, "tok-1-0000000").await;
    assert_eq!(c.status, ConnectorStatus::Disconnected);
    w.psa.fail.lock().unwrap().clear();
    let mut stored = w.store.connectors.lock().unwrap()[&(c.workspace_id.clone(), G)].clone();
    stored.full_resend_due = false;
    w.store
        .connectors
        .lock()
        .unwrap()
        .insert((c.workspace_id.clone(), G), stored);

    let (c2, report) =
        connectors::retoken(&w.core, &policy(), &admin("msp"), G, token("tok-2-0000000"))
            .await
            .unwrap();
    assert_eq!(report.error, None);
    assert_eq!(c2.status, ConnectorStatus::Connected);
    assert_eq!(c2.token_version, c.token_version + 1);
    assert!(c2.full_resend_due);
    assert_eq!(c2.incarnation, c.incarnation);
    let tokens = w.store.tokens.lock().unwrap();
    assert_eq!(
        tokens[&(c.workspace_id.clone(), G)].expose_secret(),
        "tok-2-0000000"
    );
    assert_eq!(
        actions(&w),
        [AuditAction::ConnectorCreated, AuditAction::TokenReplaced]
    );
}

#[tokio::test]
async fn delete_tells_the_psa_and_removes_everything_even_when_the_psa_fails() {
    for psa_down in [false, true] {
        let w = World::new();
        w.child("msp", "c1", "Acme", &["EDR"], 3);
        let (c, _) = connected(&w, G, "tok-1-0000000").await;
        let cref = c.reference();
        let pair = crate::sync::PairState {
            account_id: "c1".into(),
            service_key: "EDR".into(),
            account_name: "Acme".into(),
            accepted: None,
            last_attempt: crate::sync::AttemptOutcome::Posted,
            last_attempt_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        w.core.pairs.put_pairs(&cref, &[pair]).await.unwrap();
        if psa_down {
            w.psa.fail("disconnect", Fail::Unavailable);
        }
        connectors::delete(&w.core, &policy(), &admin("msp"), G)
            .await
            .unwrap();
        assert_eq!(w.psa.calls().last(), Some(&"disconnect"));
        assert!(
            w.store.connectors.lock().unwrap().is_empty(),
            "psa down: {psa_down}"
        );
        assert!(w.store.tokens.lock().unwrap().is_empty());
        assert!(w.core.pairs.pairs(&cref).await.unwrap().is_empty());
        assert_eq!(actions(&w).last(), Some(&AuditAction::ConnectorDeleted));
        let again = connectors::delete(&w.core, &policy(), &admin("msp"), G).await;
        assert!(matches!(again, Err(ConnectorError::NotFound)), "{again:?}");
    }
}
