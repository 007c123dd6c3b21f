//! A sync run's item (`RUN#<type>#<inc>#<runId>`, on `byStatus` under its connector incarnation,
//! newest `queuedAt` first), kept 90 days after it finished (or was queued).
//!
//! The run is written as the store's own [`RunRecord`], not as the API's `SyncRun`: the
//! attribute names below are the table's, whatever the API calls its fields.

use crate::attrs::{DAY_S, attr_s};
use crate::keys::{run_sk, runs_index_pk, runs_index_sk, workspace_pk};
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::calls::Calls;
use psa_domain::sync::{Failure, GuardFigures, RunCounts, RunTicket, TicketState, Trigger};
use psa_domain::{ConnectorType, RunId, RunStatus, SyncRun, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;

/// The attribute of a run's status (read alone by the schedule).
pub(crate) const RUN_STATUS: &str = "status";

/// The status of a run item read with only some of its attributes; `None` if it has none the
/// store knows.
pub(crate) fn run_status_of(item: &HashMap<String, AttributeValue>) -> Option<RunStatus> {
    attr_s(item, RUN_STATUS).and_then(|v| serde_json::from_value(serde_json::Value::from(v)).ok())
}

/// A run record expires 90 days after it finished (or was queued).
const RUN_RETENTION_S: i64 = 90 * DAY_S;

#[derive(Serialize, Deserialize)]
pub(crate) struct RunItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    run: RunRecord,
}

impl RunItem {
    pub(crate) fn new(run: &SyncRun) -> Self {
        let c = run.connector();
        let at = run.finished_at.unwrap_or(run.queued_at);
        Self {
            pk: workspace_pk(&run.workspace_id),
            sk: run_sk(&c, &run.run_id),
            gsi1pk: runs_index_pk(&c),
            gsi1sk: runs_index_sk(run.queued_at, &run.run_id),
            expires_at: at.unix_timestamp() + RUN_RETENTION_S,
            run: RunRecord::from(run),
        }
    }

    /// The run the item holds.
    pub(crate) fn into_run(self) -> SyncRun {
        self.run.into()
    }
}

#[derive(Serialize, Deserialize)]
struct RunRecord {
    #[serde(rename = "runId")]
    run_id: RunId,
    #[serde(rename = "connectorId")]
    connector_id: ConnectorType,
    #[serde(rename = "workspaceId")]
    workspace_id: WorkspaceId,
    incarnation: String,
    trigger: Trigger,
    status: RunStatus,
    #[serde(
        rename = "requestedBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    requested_by: Option<UserId>,
    #[serde(rename = "queuedAt", with = "time::serde::rfc3339")]
    queued_at: OffsetDateTime,
    #[serde(
        rename = "startedAt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    started_at: Option<OffsetDateTime>,
    #[serde(
        rename = "finishedAt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    finished_at: Option<OffsetDateTime>,
    counts: CountsRecord,
    failures: Vec<FailureRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(rename = "tokenVersion", default)]
    token_version: u64,
    #[serde(default)]
    continuations: u32,
    #[serde(default)]
    full: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guard: Option<GuardRecord>,
    #[serde(rename = "releaseOf", default, skip_serializing_if = "Option::is_none")]
    release_of: Option<RunId>,
    #[serde(default, skip_serializing_if = "CallsRecord::is_zero")]
    calls: CallsRecord,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tickets: Vec<TicketRecord>,
}

impl From<&SyncRun> for RunRecord {
    fn from(r: &SyncRun) -> Self {
        Self {
            run_id: r.run_id.clone(),
            connector_id: r.connector_id,
            workspace_id: r.workspace_id.clone(),
            incarnation: r.incarnation.clone(),
            trigger: r.trigger,
            status: r.status,
            requested_by: r.requested_by.clone(),
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            counts: (&r.counts).into(),
            failures: r.failures.iter().map(FailureRecord::from).collect(),
            reason: r.reason.clone(),
            token_version: r.token_version,
            continuations: r.continuations,
            full: r.full,
            guard: r.guard.map(GuardRecord::from),
            release_of: r.release_of.clone(),
            calls: r.calls.into(),
            tickets: r.tickets.iter().map(TicketRecord::from).collect(),
        }
    }
}

impl From<RunRecord> for SyncRun {
    fn from(r: RunRecord) -> Self {
        Self {
            run_id: r.run_id,
            connector_id: r.connector_id,
            workspace_id: r.workspace_id,
            incarnation: r.incarnation,
            trigger: r.trigger,
            status: r.status,
            requested_by: r.requested_by,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            counts: r.counts.into(),
            failures: r.failures.into_iter().map(Failure::from).collect(),
            reason: r.reason,
            token_version: r.token_version,
            continuations: r.continuations,
            full: r.full,
            guard: r.guard.map(GuardFigures::from),
            release_of: r.release_of,
            calls: r.calls.into(),
            tickets: r.tickets.into_iter().map(RunTicket::from).collect(),
        }
    }
}

/// A run's tallies (also the connector's `lastSync.counts`); a tally missing from an older
/// record reads as 0.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub(super) struct CountsRecord {
    accounts: u64,
    #[serde(rename = "accountsCreated")]
    accounts_created: u64,
    #[serde(rename = "accountsRenamed")]
    accounts_renamed: u64,
    #[serde(rename = "servicesCreated")]
    services_created: u64,
    readings: u64,
    posted: u64,
    unchanged: u64,
    unmapped: u64,
    #[serde(rename = "skippedDisabled")]
    skipped_disabled: u64,
    failed: u64,
    held: u64,
}

impl Default for CountsRecord {
    fn default() -> Self {
        (&RunCounts::default()).into()
    }
}

impl From<&RunCounts> for CountsRecord {
    fn from(c: &RunCounts) -> Self {
        Self {
            accounts: c.accounts,
            accounts_created: c.accounts_created,
            accounts_renamed: c.accounts_renamed,
            services_created: c.services_created,
            readings: c.readings,
            posted: c.posted,
            unchanged: c.unchanged,
            unmapped: c.unmapped,
            skipped_disabled: c.skipped_disabled,
            failed: c.failed,
            held: c.held,
        }
    }
}

impl From<CountsRecord> for RunCounts {
    fn from(c: CountsRecord) -> Self {
        Self {
            accounts: c.accounts,
            accounts_created: c.accounts_created,
            accounts_renamed: c.accounts_renamed,
            services_created: c.services_created,
            readings: c.readings,
            posted: c.posted,
            unchanged: c.unchanged,
            unmapped: c.unmapped,
            skipped_disabled: c.skipped_disabled,
            failed: c.failed,
            held: c.held,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FailureRecord {
    #[serde(rename = "accountId")]
    account_id: String,
    service: String,
    reason: String,
}

impl From<&Failure> for FailureRecord {
    fn from(f: &Failure) -> Self {
        Self {
            account_id: f.account_id.clone(),
            service: f.service.clone(),
            reason: f.reason.clone(),
        }
    }
}

impl From<FailureRecord> for Failure {
    fn from(f: FailureRecord) -> Self {
        Self {
            account_id: f.account_id,
            service: f.service,
            reason: f.reason,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct GuardRecord {
    before: u64,
    after: u64,
}

impl From<GuardFigures> for GuardRecord {
    fn from(g: GuardFigures) -> Self {
        Self {
            before: g.before,
            after: g.after,
        }
    }
}

impl From<GuardRecord> for GuardFigures {
    fn from(g: GuardRecord) -> Self {
        Self {
            before: g.before,
            after: g.after,
        }
    }
}

/// PSA calls of the run; either number missing from a record reads as 0.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct CallsRecord {
    calls: u64,
    throttled: u64,
}

impl CallsRecord {
    fn is_zero(&self) -> bool {
        self.calls == 0 && self.throttled == 0
    }
}

impl From<Calls> for CallsRecord {
    fn from(c: Calls) -> Self {
        Self {
            calls: c.calls,
            throttled: c.throttled,
        }
    }
}

impl From<CallsRecord> for Calls {
    fn from(c: CallsRecord) -> Self {
        Self {
            calls: c.calls,
            throttled: c.throttled,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TicketRecord {
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(
        rename = "accountName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    account_name: Option<String>,
    state: TicketState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    earlier: bool,
}

impl From<&RunTicket> for TicketRecord {
    fn from(t: &RunTicket) -> Self {
        Self {
            account_id: t.account_id.clone(),
            account_name: t.account_name.clone(),
            state: t.state,
            detail: t.detail.clone(),
            earlier: t.earlier,
        }
    }
}

impl From<TicketRecord> for RunTicket {
    fn from(t: TicketRecord) -> Self {
        Self {
            account_id: t.account_id,
            account_name: t.account_name,
            state: t.state,
            detail: t.detail,
            earlier: t.earlier,
        }
    }
}
