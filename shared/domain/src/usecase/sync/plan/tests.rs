use super::*;
use crate::caller::WorkspaceType;
use crate::ids::{RunId, WorkspaceId};
use crate::sync::Accepted;
use crate::workspace::WorkspaceStatus;

fn ws(id: &str, status: WorkspaceStatus, services: &[&str], users: u64, dev: u64) -> Workspace {
    Workspace {
        id: WorkspaceId::parse(id).unwrap(),
        parent: None,
        kind: WorkspaceType::Child,
        name: format!("{id} name"),
        domain: None,
        status,
        services: services.iter().map(|s| s.to_string()).collect(),
        protected_users: users,
        protected_devices: dev,
    }
}

fn state(acc: &str, key: &str, value: u64, last: AttemptOutcome) -> ((String, String), PairState) {
    (
        (acc.into(), key.into()),
        PairState {
            account_id: acc.into(),
            service_key: key.into(),
            account_name: format!("{acc} name"),
            accepted: Some(Accepted {
                value,
                service_id: format!("svc_{key}"),
                at: time::OffsetDateTime::UNIX_EPOCH,
                run_id: RunId::parse("r1").unwrap(),
            }),
            last_attempt: last,
            last_attempt_at: time::OffsetDateTime::UNIX_EPOCH,
        },
    )
}

fn ids(c: &Catalogue) -> BTreeMap<String, String> {
    c.iter()
        .map(|s| (s.key.clone(), format!("svc_{}", s.key)))
        .collect()
}

fn outcomes(plan: &Plan) -> Vec<(&str, &str, Outcome)> {
    plan.decided
        .iter()
        .map(|r| (r.account_id.as_str(), r.service.as_str(), r.outcome))
        .collect()
}

#[test]
fn counts_by_unit_skip_unchanged_and_account_for_disabled() {
    let c = Catalogue::builtin();
    let workspaces = vec![
        ws(
            "a",
            WorkspaceStatus::Subscription,
            &["EDR", "EMAIL_SECURITY"],
            10,
            4,
        ),
        ws("b", WorkspaceStatus::Inactive, &["EDR"], 3, 3),
        ws("c", WorkspaceStatus::Trial, &["ZTNA"], 0, 0),
    ];
    let pairs: BTreeMap<_, _> = [
        state("a", "EDR", 4, AttemptOutcome::Posted), // unchanged
        state("a", "CLOUD_SECURITY", 9, AttemptOutcome::Posted), // disabled since
        state("b", "EDR", 3, AttemptOutcome::Posted), // workspace inactive now
    ]
    .into_iter()
    .collect();
    let none = BTreeSet::new();
    let plan = plan_readings(
        &c,
        &workspaces,
        &ids(&c),
        &pairs,
        &none,
        &BTreeMap::new(),
        false,
    );
    let send: Vec<_> = plan
        .send
        .iter()
        .map(|r| (r.account_id.as_str(), r.service_key.as_str(), r.count))
        .collect();
    // Email Security counts users, ZTNA devices; an enabled service with 0 is still sent.
    assert_eq!(send, vec![("a", "EMAIL_SECURITY", 10), ("c", "ZTNA", 0)]);
    assert_eq!(
        outcomes(&plan),
        vec![
            ("a", "EDR", Outcome::Unchanged),
            ("a", "CLOUD_SECURITY", Outcome::SkippedDisabled),
            ("b", "EDR", Outcome::SkippedDisabled),
        ]
    );
    assert_eq!(plan.decided[1].value, 9);

    let full = plan_readings(
        &c,
        &workspaces,
        &ids(&c),
        &pairs,
        &none,
        &BTreeMap::new(),
        true,
    );
    // A full resend sends the unchanged pair too, after the changed and new ones.
    let order: Vec<_> = full
        .send
        .iter()
        .map(|r| (r.account_id.as_str(), r.service_key.as_str(), r.previous))
        .collect();
    assert_eq!(
        order,
        vec![
            ("a", "EMAIL_SECURITY", None),
            ("c", "ZTNA", None),
            ("a", "EDR", Some(4)),
        ]
    );
}

#[test]
fn a_value_is_valid_only_for_the_same_service_and_after_an_accepted_attempt() {
    let c = Catalogue::builtin();
    let workspaces = vec![ws(
        "a",
        WorkspaceStatus::Subscription,
        &["EDR", "NETWORK", "ZTNA"],
        1,
        4,
    )];
    let mut pairs: BTreeMap<_, _> = [
        state("a", "EDR", 4, AttemptOutcome::Unmapped),
        state("a", "NETWORK", 4, AttemptOutcome::Posted),
        state("a", "ZTNA", 4, AttemptOutcome::Failed),
    ]
    .into_iter()
    .collect();
    // NETWORK's service was created again in the PSA under a new id.
    pairs
        .get_mut(&("a".into(), "NETWORK".into()))
        .unwrap()
        .accepted
        .as_mut()
        .unwrap()
        .service_id = "old".into();
    let plan = plan_readings(
        &c,
        &workspaces,
        &ids(&c),
        &pairs,
        &BTreeSet::new(),
        &BTreeMap::new(),
        false,
    );
    assert_eq!(plan.send.len(), 3, "{plan:?}");
    assert_eq!(
        plan.send
            .iter()
            .find(|r| r.service_key == "NETWORK")
            .unwrap()
            .previous,
        None
    );
}

#[test]
fn the_guard_compares_totals_over_previously_accepted_pairs() {
    let c = Catalogue::builtin();
    let workspaces = vec![
        ws(
            "a",
            WorkspaceStatus::Subscription,
            &["EDR", "EMAIL_SECURITY", "ZTNA"],
            2,
            4,
        ),
        ws("b", WorkspaceStatus::Subscription, &["EDR"], 0, 1),
    ];
    let pairs: BTreeMap<_, _> = [
        state("a", "EDR", 10, AttemptOutcome::Posted), // 10 → 4
        state("a", "EMAIL_SECURITY", 0, AttemptOutcome::Posted), // 0 before: not counted
        state("b", "EDR", 6, AttemptOutcome::Unmapped), // 6 → 1
        state("c", "EDR", 50, AttemptOutcome::Posted), // not reported now
    ]
    .into_iter()
    .collect();
    // a/ZTNA was never accepted: not counted.
    let g = guard_figures(&c, &workspaces, &ids(&c), &pairs);
    assert_eq!(
        g,
        GuardFigures {
            before: 16,
            after: 5
        }
    );
}

#[test]
fn recorded_pairs_are_left_out_and_refused_accounts_fail() {
    let c = Catalogue::builtin();
    let workspaces = vec![
        ws(
            "a",
            WorkspaceStatus::Subscription,
            &["EDR", "EMAIL_SECURITY"],
            10,
            4,
        ),
        ws("b", WorkspaceStatus::Subscription, &["EDR"], 1, 1),
    ];
    let recorded: BTreeSet<_> = [("a".to_string(), "EDR".to_string())].into_iter().collect();
    let refused: BTreeMap<_, _> = [("b".to_string(), "bad name".to_string())]
        .into_iter()
        .collect();
    let plan = plan_readings(
        &c,
        &workspaces,
        &ids(&c),
        &BTreeMap::new(),
        &recorded,
        &refused,
        true,
    );
    assert_eq!(plan.send.len(), 1);
    assert_eq!(plan.send[0].service_key, "EMAIL_SECURITY");
    assert_eq!(outcomes(&plan), vec![("b", "EDR", Outcome::Failed)]);
    assert!(
        plan.decided[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("bad name")
    );
}
