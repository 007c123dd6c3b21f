//! Planning the readings of a run (pure): what to send, what is unchanged, what is disabled now.

use crate::catalogue::{Catalogue, Unit};
use crate::sync::{AttemptOutcome, GuardFigures, Outcome, PairState, RunReading, bounded_reason};
use crate::workspace::Workspace;
use std::collections::{BTreeMap, BTreeSet};

/// One reading to send: the count of one enabled service of one managed workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub account_id: String,
    pub account_name: String,
    pub service_key: String,
    pub service_id: String,
    pub unit: Unit,
    pub count: u64,
    /// The last value the PSA accepted for this pair (for the same PSA service).
    pub previous: Option<u64>,
}

impl Reading {
    pub fn key(&self) -> (String, String) {
        (self.account_id.clone(), self.service_key.clone())
    }

    /// The record of this reading with `outcome`.
    pub fn ended(&self, outcome: Outcome, reason: Option<&str>) -> RunReading {
        RunReading {
            account_id: self.account_id.clone(),
            account_name: self.account_name.clone(),
            service: self.service_key.clone(),
            unit: self.unit,
            value: self.count,
            previous: self.previous,
            outcome,
            reason: reason.map(bounded_reason),
        }
    }
}

/// The readings of a run not yet recorded for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// To post now: changed and new readings first, then resends of unchanged values; each part
    /// ordered by account id then service key.
    pub send: Vec<Reading>,
    /// Decided without a call: `unchanged`, `skipped_disabled`, and `failed` for the accounts the
    /// PSA refused. Recorded as they are.
    pub decided: Vec<RunReading>,
}

/// Plans the readings of a run.
///
/// * One reading per (reported workspace, enabled service with a PSA id), counted in the
///   service's unit; an enabled service with 0 is sent as 0.
/// * Sent unless the PSA's last accepted value equals it for the same PSA service and the last
///   attempt was accepted — or always, with `full`.
/// * A pair the PSA accepted before that is not enabled now is `skipped_disabled` (the PSA keeps
///   its last value; nothing is sent).
/// * Readings of an account in `refused` fail with its reason.
/// * Pairs in `recorded` (already decided by this run before an interruption) are left out.
/// * `send` has the changed and new readings first, then the resends of values the PSA already
///   has (a full resend), each part by account id then service key: a run cut short by its
///   deadline or continuations has sent what matters to the bill.
pub fn plan_readings(
    catalogue: &Catalogue,
    workspaces: &[Workspace],
    service_ids: &BTreeMap<String, String>,
    pairs: &BTreeMap<(String, String), PairState>,
    recorded: &BTreeSet<(String, String)>,
    refused: &BTreeMap<String, String>,
    full: bool,
) -> Plan {
    let mut plan = Plan::default();
    let mut enabled = BTreeSet::new();
    let mut sorted: Vec<&Workspace> = workspaces.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for ws in sorted {
        let mut services = ws.enabled_services(catalogue);
        services.sort_by(|a, b| a.key.cmp(&b.key));
        for service in services {
            let Some(service_id) = service_ids.get(&service.key) else {
                continue;
            };
            let key = (ws.id.as_str().to_owned(), service.key.clone());
            enabled.insert(key.clone());
            if recorded.contains(&key) {
                continue;
            }
            let state = pairs.get(&key);
            let accepted = state
                .and_then(|p| p.accepted.as_ref())
                .filter(|a| &a.service_id == service_id);
            let reading = Reading {
                account_id: key.0,
                account_name: ws.name.trim().to_owned(),
                service_key: key.1,
                service_id: service_id.clone(),
                unit: service.unit,
                count: ws.count_for(service.unit),
                previous: accepted.map(|a| a.value),
            };
            if let Some(why) = refused.get(&reading.account_id) {
                let why = format!("Gradient refused the account: {why}");
                plan.decided
                    .push(reading.ended(Outcome::Failed, Some(&why)));
                continue;
            }
            let in_sync = accepted.is_some_and(|a| a.value == reading.count)
                && state.is_some_and(|p| p.last_attempt == AttemptOutcome::Posted);
            if in_sync && !full {
                plan.decided.push(reading.ended(Outcome::Unchanged, None));
            } else {
                plan.send.push(reading);
            }
        }
    }
    plan.send.sort_by_key(|r| r.previous == Some(r.count));
    for (key, state) in pairs {
        let Some(accepted) = &state.accepted else {
            continue;
        };
        if enabled.contains(key) || recorded.contains(key) {
            continue;
        }
        let unit = catalogue
            .get(&state.service_key)
            .map_or(Unit::ProtectedUsers, |s| s.unit);
        plan.decided.push(RunReading {
            account_id: state.account_id.clone(),
            account_name: state.account_name.clone(),
            service: state.service_key.clone(),
            unit,
            value: accepted.value,
            previous: Some(accepted.value),
            outcome: Outcome::SkippedDisabled,
            reason: None,
        });
    }
    plan
}

/// The billing guard's figures (contract "Billing guard"): over the pairs a run would report now
/// whose last value accepted by the PSA (for the same PSA service) is above 0, the sum of those
/// values and the sum of what the run would report for the same pairs.
pub fn guard_figures(
    catalogue: &Catalogue,
    workspaces: &[Workspace],
    service_ids: &BTreeMap<String, String>,
    pairs: &BTreeMap<(String, String), PairState>,
) -> GuardFigures {
    let mut g = GuardFigures::default();
    for ws in workspaces {
        for service in ws.enabled_services(catalogue) {
            let Some(id) = service_ids.get(&service.key) else {
                continue;
            };
            let key = (ws.id.as_str().to_owned(), service.key.clone());
            if let Some(a) = pairs
                .get(&key)
                .and_then(|p| p.accepted.as_ref())
                .filter(|a| &a.service_id == id && a.value > 0)
            {
                g.before += a.value;
                g.after += ws.count_for(service.unit);
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
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

    fn state(
        acc: &str,
        key: &str,
        value: u64,
        last: AttemptOutcome,
    ) -> ((String, String), PairState) {
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
}
