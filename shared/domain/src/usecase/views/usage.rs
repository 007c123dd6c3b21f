//! The usage reconciliation and billing preview: what Coro would report now against what the PSA
//! last accepted, and what the next sync would send — from the read model and our own store only.

use super::{ViewError, connector};
use crate::caller::Caller;
use crate::catalogue::Unit;
use crate::ids::{ConnectorType, RunId};
use crate::ports::Page;
use crate::sync::{AttemptOutcome, RunStatus};
use crate::usecase::PsaCore;
use crate::usecase::provision::managed_workspaces;
use crate::usecase::sync::{SyncPolicy, full_due, guard_figures, plan_readings};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Where a pair stands between Coro and the PSA (contract `UsageLine.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageState {
    InSync,
    Pending,
    New,
    Unmapped,
    Failed,
    Disabled,
}

impl UsageState {
    pub const ALL: [UsageState; 6] = [
        Self::InSync,
        Self::Pending,
        Self::New,
        Self::Unmapped,
        Self::Failed,
        Self::Disabled,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in_sync",
            Self::Pending => "pending",
            Self::New => "new",
            Self::Unmapped => "unmapped",
            Self::Failed => "failed",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAccepted {
    pub value: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub run_id: RunId,
}

/// One (managed account, service) pair: what Coro would report now and what the PSA last accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageLine {
    pub account_id: String,
    pub account_name: String,
    pub service: String,
    pub unit: Unit,
    /// `None` (JSON null) when the service is disabled now.
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accepted: Option<LastAccepted>,
    pub state: UsageState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRef {
    pub run_id: RunId,
    pub status: RunStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

/// What the billing guard would say about the next sync (contract `UsageSummary.guard`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageGuard {
    pub before: u64,
    pub after: u64,
    pub drop_percent: f64,
    pub would_hold: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageSummary {
    pub accounts: u64,
    pub lines: u64,
    pub in_sync: u64,
    pub pending: u64,
    pub new: u64,
    pub unmapped: u64,
    pub failed: u64,
    pub disabled: u64,
    /// Counts the next sync would send.
    pub would_post: u64,
    pub full_resend_due: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<SyncRef>,
    pub guard: UsageGuard,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub summary: UsageSummary,
    pub page: Page<UsageLine>,
}

/// The reconciliation and billing preview: every pair enabled now or accepted before, with its
/// state, and what the next sync would send — from the read model and our own store only.
pub async fn usage(
    core: &PsaCore,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    state: Option<UsageState>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Usage, ViewError> {
    let after = cursor.map(decode_cursor).transpose()?;
    let c = connector(core, caller, kind).await?;
    let cref = c.reference();
    let workspaces = managed_workspaces(core, &caller.workspace).await?;
    let known = core.psa(kind).published_services().await?;
    let pairs = core.pairs.pairs(&cref).await?;
    // A service the PSA does not hold yet is created by the next run: its readings all go out.
    let ids: BTreeMap<String, String> = core
        .catalogue
        .iter()
        .map(|s| {
            (
                s.key.clone(),
                known.get(&s.key).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let full = full_due(&c, policy);
    let plan = plan_readings(
        &core.catalogue,
        &workspaces,
        &ids,
        &pairs,
        &BTreeSet::new(),
        &BTreeMap::new(),
        full,
    );
    let figures = guard_figures(&core.catalogue, &workspaces, &known, &pairs);
    let guard = UsageGuard {
        before: figures.before,
        after: figures.after,
        drop_percent: figures.drop_percent(),
        would_hold: figures.holds(c.settings.guard_drop_percent, policy.guard_min_units),
    };
    let mut lines = Vec::new();
    let mut enabled = BTreeSet::new();
    let mut accounts = 0;
    for ws in &workspaces {
        let services = ws.enabled_services(&core.catalogue);
        if ws.status.is_reported() {
            accounts += 1;
        }
        for s in services {
            let key = (ws.id.as_str().to_owned(), s.key.clone());
            let current = ws.count_for(s.unit);
            let pair = pairs.get(&key);
            let accepted = pair
                .and_then(|p| p.accepted.as_ref())
                .filter(|a| known.get(&s.key).is_none_or(|id| *id == a.service_id));
            let state = match pair.map(|p| p.last_attempt) {
                Some(AttemptOutcome::Unmapped) => UsageState::Unmapped,
                Some(AttemptOutcome::Failed) => UsageState::Failed,
                _ => match accepted {
                    None => UsageState::New,
                    Some(a) if a.value == current => UsageState::InSync,
                    Some(_) => UsageState::Pending,
                },
            };
            lines.push(UsageLine {
                account_id: key.0.clone(),
                account_name: ws.name.trim().to_owned(),
                service: s.key.clone(),
                unit: s.unit,
                current: Some(current),
                last_accepted: accepted.map(|a| LastAccepted {
                    value: a.value,
                    at: a.at,
                    run_id: a.run_id.clone(),
                }),
                state,
            });
            enabled.insert(key);
        }
    }
    for (key, p) in &pairs {
        let Some(a) = &p.accepted else { continue };
        if enabled.contains(key) {
            continue;
        }
        lines.push(UsageLine {
            account_id: p.account_id.clone(),
            account_name: p.account_name.clone(),
            service: p.service_key.clone(),
            unit: core
                .catalogue
                .get(&p.service_key)
                .map_or(Unit::ProtectedUsers, |s| s.unit),
            current: None,
            last_accepted: Some(LastAccepted {
                value: a.value,
                at: a.at,
                run_id: a.run_id.clone(),
            }),
            state: UsageState::Disabled,
        });
    }
    lines.sort_by(|a, b| (&a.account_id, &a.service).cmp(&(&b.account_id, &b.service)));
    let mut summary = UsageSummary {
        accounts,
        lines: lines.len() as u64,
        would_post: plan.send.len() as u64,
        full_resend_due: full,
        last_sync: c.last_sync.as_ref().map(|l| SyncRef {
            run_id: l.run_id.clone(),
            status: l.status,
            finished_at: l.finished_at,
        }),
        guard,
        ..Default::default()
    };
    for l in &lines {
        *match l.state {
            UsageState::InSync => &mut summary.in_sync,
            UsageState::Pending => &mut summary.pending,
            UsageState::New => &mut summary.new,
            UsageState::Unmapped => &mut summary.unmapped,
            UsageState::Failed => &mut summary.failed,
            UsageState::Disabled => &mut summary.disabled,
        } += 1;
    }
    let mut matching = lines
        .into_iter()
        .filter(|l| state.is_none_or(|s| l.state == s))
        .filter(|l| {
            after
                .as_ref()
                .is_none_or(|(a, s)| (&l.account_id, &l.service) > (a, s))
        })
        .take(limit.max(1) as usize + 1)
        .collect::<Vec<_>>();
    let next = (matching.len() > limit.max(1) as usize).then(|| {
        matching.truncate(limit.max(1) as usize);
        let last = matching.last().expect("a full page");
        encode_cursor(&last.account_id, &last.service)
    });
    Ok(Usage {
        summary,
        page: Page {
            items: matching,
            next,
        },
    })
}

/// The usage cursor: the hex of `account\u{1f}service` of the last line of a page.
fn encode_cursor(account: &str, service: &str) -> String {
    format!("{account}\u{1f}{service}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(raw: &str) -> Result<(String, String), ViewError> {
    let bad = || ViewError::InvalidCursor;
    if raw.is_empty() || raw.len() > 600 || !raw.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..raw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(raw.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (a, s) = text.split_once('\u{1f}').ok_or_else(bad)?;
    crate::ids::WorkspaceId::parse(a).map_err(|_| bad())?;
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return Err(bad());
    }
    Ok((a.to_owned(), s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor("acme_w1", "EDR");
        assert_eq!(decode_cursor(&c).unwrap(), ("acme_w1".into(), "EDR".into()));
        for bad in ["", "zz", "abc", "6162", &"0".repeat(700)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        for s in UsageState::ALL {
            assert_eq!(UsageState::parse(s.as_str()), Some(s));
        }
    }
}
