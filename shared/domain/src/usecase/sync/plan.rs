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
                plan.decided.push(reading.ended(Outcome::Failed, Some(why)));
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
mod tests;
