use super::{G, connected, policy};
use crate::ids::RunId;
use crate::sync::{Accepted, AttemptOutcome, PairState};
use crate::testing::{World, admin};
use crate::usecase::views::{self, UsageState, ViewError};

fn accepted(account: &str, service: &str, value: u64, last: AttemptOutcome) -> PairState {
    PairState {
        account_id: account.into(),
        service_key: service.into(),
        account_name: account.into(),
        accepted: Some(Accepted {
            value,
            service_id: format!("svc-{service}"),
            at: time::OffsetDateTime::UNIX_EPOCH,
            run_id: RunId::parse("r1").unwrap(),
        }),
        last_attempt: last,
        last_attempt_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn views_need_the_callers_connector_and_run() {
    let w = World::new();
    let caller = admin("msp");
    let r = views::runs(&w.core, &caller, G, 20, None).await;
    assert!(matches!(r, Err(ViewError::ConnectorNotFound)), "{r:?}");
    connected(&w, G, "tok-1-0000000").await;
    assert!(
        views::runs(&w.core, &caller, G, 20, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let run = RunId::parse("20261124T050000.000Z-x").unwrap();
    let r = views::readings(&w.core, &caller, G, &run, None, 20, None).await;
    assert!(matches!(r, Err(ViewError::RunNotFound)), "{r:?}");
    let r = views::runs(&w.core, &caller, G, 20, Some("not-a-cursor")).await;
    assert!(matches!(r, Err(ViewError::InvalidCursor)), "{r:?}");
}

#[tokio::test]
async fn usage_reconciles_every_pair_without_a_psa_call() {
    let w = World::new();
    let caller = admin("msp");
    w.child("msp", "a", "Acme", &["EDR", "EMAIL_SECURITY", "ZTNA"], 5);
    w.child("msp", "b", "Beta", &["EDR", "NETWORK"], 2);
    let (c, _) = connected(&w, G, "tok-1-0000000").await;
    let cref = c.reference();
    let states = [
        accepted("a", "EDR", 5, AttemptOutcome::Posted), // in sync
        accepted("a", "EMAIL_SECURITY", 4, AttemptOutcome::Posted), // 4 → 5: pending
        accepted("b", "EDR", 2, AttemptOutcome::Unmapped), // unmapped
        accepted("b", "NETWORK", 2, AttemptOutcome::Failed), // failed
        accepted("b", "CLOUD_SECURITY", 7, AttemptOutcome::Posted), // disabled since
    ];
    w.core.pairs.put_pairs(&cref, &states).await.unwrap();
    let before = w.psa.calls().len();

    let mut p = policy();
    p.guard_min_units = 1;
    let usage = views::usage(&w.core, &p, &caller, G, None, 100, None)
        .await
        .unwrap();
    assert_eq!(
        w.psa.calls().len(),
        before,
        "the usage view makes no PSA call"
    );
    let states: Vec<(&str, &str, UsageState)> = usage
        .page
        .items
        .iter()
        .map(|l| (l.account_id.as_str(), l.service.as_str(), l.state))
        .collect();
    assert_eq!(
        states,
        [
            ("a", "EDR", UsageState::InSync),
            ("a", "EMAIL_SECURITY", UsageState::Pending),
            ("a", "ZTNA", UsageState::New),
            ("b", "CLOUD_SECURITY", UsageState::Disabled),
            ("b", "EDR", UsageState::Unmapped),
            ("b", "NETWORK", UsageState::Failed),
        ]
    );
    let s = &usage.summary;
    assert_eq!((s.accounts, s.lines, s.in_sync, s.disabled), (2, 6, 1, 1));
    // A new connector carries a full resend: every enabled pair would be sent.
    assert!(s.full_resend_due);
    assert_eq!(s.would_post, 5);
    // Over pairs accepted above 0 and enabled now: 5 + 4 + 2 + 2 before, 5 + 5 + 2 + 2 after.
    assert_eq!(
        (s.guard.before, s.guard.after, s.guard.would_hold),
        (13, 14, false)
    );

    // Paged by one state, with a cursor that resumes after the last line.
    let first = views::usage(&w.core, &p, &caller, G, Some(UsageState::InSync), 1, None)
        .await
        .unwrap();
    assert_eq!(first.page.items.len(), 1);
    assert_eq!(first.page.next, None);
    let page1 = views::usage(&w.core, &p, &caller, G, None, 4, None)
        .await
        .unwrap();
    let page2 = views::usage(&w.core, &p, &caller, G, None, 4, page1.page.next.as_deref())
        .await
        .unwrap();
    assert_eq!(page2.page.items.len(), 2);
    assert_eq!(page2.page.items[0].service, "EDR");
    let bad = views::usage(&w.core, &p, &caller, G, None, 4, Some("zz")).await;
    assert!(matches!(bad, Err(ViewError::InvalidCursor)), "{bad:?}");
}
