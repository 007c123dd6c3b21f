use super::G;
use crate::caller::WorkspaceType;
use crate::ids::WorkspaceId;
use crate::ports::PsaAccount;
use crate::sync::{AttemptOutcome, PairState};
use crate::testing::{World, token};
use crate::usecase::provision::{
    ProvisionError, ensure_accounts, ensure_services, managed_workspaces,
};
use crate::workspace::WorkspaceStatus;

fn account(id: &str, name: &str, description: Option<&str>) -> PsaAccount {
    PsaAccount {
        id: id.into(),
        name: name.into(),
        description: description.map(str::to_owned),
    }
}

fn pair(account: &str, service: &str) -> PairState {
    PairState {
        account_id: account.into(),
        service_key: service.into(),
        account_name: account.into(),
        accepted: None,
        last_attempt: AttemptOutcome::Posted,
        last_attempt_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn accounts_are_created_renamed_refused_and_lost_ones_forgotten() {
    let w = World::new();
    let mut a = w.child("msp", "a", "Acme", &["EDR"], 1);
    a.domain = Some(" acme.example ".into());
    let b = w.child("msp", "b", "Beta Inc", &["EDR"], 1);
    let c = w.child("msp", "c", "Gamma", &["EDR"], 1);
    let bad = w.child("msp", "bad", "Bad", &["EDR"], 1);
    let mut gone = w.child("msp", "gone", "Gone", &[], 0);
    gone.status = WorkspaceStatus::Archived;
    {
        let mut held = w.psa.accounts.lock().unwrap();
        // Same after normalising: no rename.
        held.insert("a".into(), account("a", "Acme ", Some("acme.example")));
        held.insert("b".into(), account("b", "Beta", None)); // renamed in Coro
    }
    w.psa.refuse.lock().unwrap().insert("bad".into());
    let cref = crate::connector::ConnectorRef {
        workspace: WorkspaceId::parse("msp").unwrap(),
        kind: crate::ConnectorType::Gradient,
        incarnation: "i1".into(),
    };
    // "c" was accepted before and is missing in the PSA now: its pair states are stale.
    w.core
        .pairs
        .put_pairs(&cref, &[pair("c", "EDR"), pair("a", "EDR")])
        .await
        .unwrap();

    let all = [a, b, c, bad, gone];
    let report = ensure_accounts(&w.core, &token("tok-1"), &all, &cref, &|| false)
        .await
        .unwrap();
    assert_eq!(report.accounts, 4, "the archived workspace is not reported");
    assert_eq!((report.created, report.renamed), (1, 1));
    assert_eq!(report.refused.keys().collect::<Vec<_>>(), ["bad"]);
    let held = w.psa.accounts.lock().unwrap().clone();
    assert_eq!(
        held["a"],
        account("a", "Acme ", Some("acme.example")),
        "untouched"
    );
    assert_eq!(held["b"].name, "Beta Inc");
    assert!(held.contains_key("c") && !held.contains_key("gone"));
    let pairs = w.core.pairs.pairs(&cref).await.unwrap();
    assert_eq!(
        pairs.keys().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
}

#[tokio::test]
async fn account_set_up_stops_between_calls_when_told() {
    let w = World::new();
    let ws = [w.child("msp", "a", "Acme", &["EDR"], 1)];
    let cref = crate::connector::ConnectorRef {
        workspace: ws[0].parent.clone().unwrap(),
        kind: G,
        incarnation: "i1".into(),
    };
    let r = ensure_accounts(&w.core, &token("tok-1"), &ws, &cref, &|| true).await;
    assert!(matches!(r, Err(ProvisionError::Deadline)), "{r:?}");
    assert_eq!(w.psa.calls(), ["accounts"], "nothing was created");
}

#[tokio::test]
async fn every_catalogue_service_needs_an_id() {
    let w = World::new();
    let msp = WorkspaceId::parse("msp").unwrap();
    let (ids, created) = ensure_services(&w.core, G, &token("tok-1"), &msp)
        .await
        .unwrap();
    assert_eq!(ids.len(), w.core.catalogue.len());
    assert_eq!(created as usize, ids.len());
    let (_, again) = ensure_services(&w.core, G, &token("tok-1"), &msp)
        .await
        .unwrap();
    assert_eq!(again, 0);

    let w = World::new();
    w.psa.withheld.lock().unwrap().insert("EDR".into());
    let r = ensure_services(&w.core, G, &token("tok-1"), &msp).await;
    assert!(
        matches!(r, Err(ProvisionError::ServiceMissing(ref k)) if k == "EDR"),
        "{r:?}"
    );
}

#[tokio::test]
async fn managed_workspaces_descend_subchannels_without_their_own_connector() {
    let w = World::new();
    w.child("msp", "c1", "One", &[], 1);
    w.child("msp", "sub", "Sub", &[], 0);
    let own = w.child("msp", "own", "Own", &[], 0);
    w.child("msp", "reg", "Regular", &[], 0);
    {
        let mut children = w.store.children.lock().unwrap();
        for ws in children
            .get_mut(&WorkspaceId::parse("msp").unwrap())
            .unwrap()
        {
            match ws.id.as_str() {
                "sub" | "own" => ws.kind = WorkspaceType::Channel,
                "reg" => ws.kind = WorkspaceType::Regular,
                _ => {}
            }
        }
    }
    w.child("sub", "c2", "Two", &[], 1);
    w.child("sub", "c1", "One again", &[], 1); // a duplicate in the read model
    w.child("own", "c3", "Three", &[], 1);
    // "own" has its own connector: its subtree is that connector's.
    let c = crate::connector::Connector::new(
        crate::ConnectorType::Gradient,
        own.id.clone(),
        crate::ids::UserId::parse("u").unwrap(),
        "…".into(),
        Default::default(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    w.store
        .connectors
        .lock()
        .unwrap()
        .insert((own.id.clone(), G), c);
    let found = managed_workspaces(&w.core, &WorkspaceId::parse("msp").unwrap())
        .await
        .unwrap();
    let ids: Vec<&str> = found.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
}
