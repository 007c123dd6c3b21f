//! What the core tells the world besides its answers: events for other systems (contract
//! "Events", on EventBridge) and measurements for operators (contract "Metrics", CloudWatch EMF).
//! Both are ports ([`crate::ports::Events`], [`crate::ports::Metrics`]); neither may fail a run or a request: a failure to emit is logged at warn.

use crate::calls::Calls;
use crate::connector::{Connector, ConnectorStatus};
use crate::ids::{ConnectorType, RunId, WorkspaceId};
use crate::sync::{RunCounts, RunStatus, SyncRun, Trigger};
use serde::Serialize;
use time::OffsetDateTime;

/// `Source` of every event of this project.
pub const EVENT_SOURCE: &str = "coro.psa";

/// Detail of `PSA Sync Finished`: once per finished run, whatever its final status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncFinished {
    pub workspace_id: WorkspaceId,
    pub connector_id: ConnectorType,
    pub run_id: RunId,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub counts: RunCounts,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

/// Detail of `PSA Connector Status Changed`: whenever a connector's status changes. `from` is
/// `null` for a connector that did not exist before (a connect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    pub workspace_id: WorkspaceId,
    pub connector_id: ConnectorType,
    pub from: Option<ConnectorStatus>,
    pub to: ConnectorStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An event of the contract. Never carries a token (neither detail has a place for one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SyncFinished(SyncFinished),
    ConnectorStatusChanged(StatusChanged),
}

impl Event {
    pub fn sync_finished(run: &SyncRun) -> Self {
        Self::SyncFinished(SyncFinished {
            workspace_id: run.workspace_id.clone(),
            connector_id: run.connector_id,
            run_id: run.run_id.clone(),
            trigger: run.trigger,
            status: run.status,
            counts: run.counts.clone(),
            queued_at: run.queued_at,
            finished_at: run.finished_at.unwrap_or(run.queued_at),
        })
    }

    /// `connector` as it is now, coming from status `from`.
    pub fn status_changed(from: Option<ConnectorStatus>, connector: &Connector) -> Self {
        Self::ConnectorStatusChanged(StatusChanged {
            workspace_id: connector.workspace_id.clone(),
            connector_id: connector.kind,
            from,
            to: connector.status,
            status_reason: connector.status_reason.clone(),
            at: connector.updated_at,
        })
    }

    /// `DetailType` on the bus.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::SyncFinished(_) => "PSA Sync Finished",
            Self::ConnectorStatusChanged(_) => "PSA Connector Status Changed",
        }
    }

    /// `Detail` on the bus (a JSON object).
    pub fn detail(&self) -> serde_json::Value {
        let detail = match self {
            Self::SyncFinished(d) => serde_json::to_value(d),
            Self::ConnectorStatusChanged(d) => serde_json::to_value(d),
        };
        detail.unwrap_or_default()
    }

    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Self::SyncFinished(d) => &d.workspace_id,
            Self::ConnectorStatusChanged(d) => &d.workspace_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// One metrics record: values that belong together, the dimensions they are aggregated by
/// (low-cardinality only: never a workspace id) and properties for reading the record in the
/// logs (ids: searchable, not aggregated).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub values: Vec<(&'static str, f64, Unit)>,
    pub dimensions: Vec<(&'static str, String)>,
    pub properties: Vec<(&'static str, String)>,
}

impl Measurement {
    /// The record of a finished run (contract "Metrics"). `calls` are all the run's PSA calls,
    /// across its continuations. `DurationMs` is from the run's start (its queueing when it never
    /// started) to its end.
    pub fn run_finished(run: &SyncRun, calls: Calls) -> Self {
        let c = &run.counts;
        let count = |n: u64| n as f64;
        let ended = run.finished_at.unwrap_or_else(OffsetDateTime::now_utc);
        let began = run.started_at.unwrap_or(run.queued_at);
        let duration = (ended - began).whole_milliseconds().max(0) as f64;
        Self {
            values: vec![
                ("Readings", count(c.readings), Unit::Count),
                ("Posted", count(c.posted), Unit::Count),
                ("Unchanged", count(c.unchanged), Unit::Count),
                ("Unmapped", count(c.unmapped), Unit::Count),
                ("SkippedDisabled", count(c.skipped_disabled), Unit::Count),
                ("Failed", count(c.failed), Unit::Count),
                ("Held", count(c.held), Unit::Count),
                ("GradientCalls", count(calls.calls), Unit::Count),
                ("Throttled", count(calls.throttled), Unit::Count),
                ("DurationMs", duration, Unit::Milliseconds),
            ],
            dimensions: vec![("Status", run.status.as_str().to_owned())],
            properties: vec![
                ("workspaceId", run.workspace_id.to_string()),
                ("connectorId", run.connector_id.as_str().to_owned()),
                ("runId", run.run_id.to_string()),
                ("trigger", trigger_str(run.trigger).to_owned()),
            ],
        }
    }

    /// Several connectors rejected at once: Coro's vendor key is at fault (alarm `VendorKeyFault`).
    pub fn vendor_key_fault(connectors: usize, kind: &str) -> Self {
        Self {
            values: vec![
                ("VendorKeyFault", 1.0, Unit::Count),
                ("RejectedConnectors", connectors as f64, Unit::Count),
            ],
            dimensions: vec![],
            properties: vec![("rejection", kind.to_owned())],
        }
    }

    /// A connector went to `disconnected` (`Disconnections`) or `error` (`ConnectorErrors`);
    /// `None` for any other status.
    pub fn status_changed(connector: &Connector) -> Option<Self> {
        let name = match connector.status {
            ConnectorStatus::Disconnected => "Disconnections",
            ConnectorStatus::Error => "ConnectorErrors",
            ConnectorStatus::Connected => return None,
        };
        let mut properties = vec![
            ("workspaceId", connector.workspace_id.to_string()),
            ("connectorId", connector.kind.as_str().to_owned()),
        ];
        if let Some(why) = &connector.status_reason {
            properties.push(("statusReason", why.clone()));
        }
        Some(Self {
            values: vec![(name, 1.0, Unit::Count)],
            dimensions: vec![],
            properties,
        })
    }

    /// One firing of the daily schedule: index pages read, connectors seen, jobs queued.
    pub fn scheduled(pages: u64, connectors: u64, queued: u64, busy: u64, duplicates: u64) -> Self {
        let count = |n: u64| n as f64;
        Self {
            values: vec![
                ("SchedulerPages", count(pages), Unit::Count),
                ("SchedulerConnectors", count(connectors), Unit::Count),
                ("ConnectorsQueued", count(queued), Unit::Count),
                ("SchedulerBusy", count(busy), Unit::Count),
                ("SchedulerDuplicates", count(duplicates), Unit::Count),
            ],
            dimensions: vec![],
            properties: vec![],
        }
    }

    /// The value named `name`, if the record has it.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.0 == name).map(|v| v.1)
    }
}

fn trigger_str(t: Trigger) -> &'static str {
    match t {
        Trigger::Scheduled => "scheduled",
        Trigger::OnDemand => "on_demand",
        Trigger::Release => "release",
    }
}
