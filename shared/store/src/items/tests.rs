//! The layout of every item this crate writes with serde, pinned on a sample: each attribute's
//! name, DynamoDB type and value. A change here changes the table (and what older records read
//! as), so it is a decision, never a side effect of renaming a field of a domain or API type.

use super::{
    HealthItem, RUN_STATUS, ReadingItem, RunItem, accepted_by_value, audit_item, budget_item,
    chunk_item, connector_item, connector_of, pair_item, progress_from_json, progress_json,
    reading_item, run_status_of, ticket_item, unpack,
};
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::audit::{Actor, AuditAction};
use psa_domain::budget::{Cooling, CoolingStep, Holder, LeaseRecord};
use psa_domain::catalogue::Unit;
use psa_domain::connector::{LastSync, NotifyOn, NotifySettings};
use psa_domain::ports::{AcceptedBy, AlertRef, PendingTicket};
use psa_domain::sync::{
    Accepted, AttemptOutcome, Failure, GuardFigures, RunCounts, RunTicket, TicketState, Trigger,
};
use psa_domain::{
    AuditEvent, Connector, ConnectorRef, ConnectorSettings, ConnectorStatus, ConnectorType,
    Outcome, PairState, RunId, RunReading, RunStatus, SyncRun, UserId, WorkspaceId,
};
use std::collections::{BTreeMap, HashMap};
use time::macros::datetime;

type Item = HashMap<String, AttributeValue>;

/// `path: TYPE = value` per attribute, nested maps and lists flattened (`a.b`, `a[0]`), sorted.
fn shape(item: &Item) -> Vec<String> {
    fn walk(path: &str, v: &AttributeValue, out: &mut Vec<String>) {
        match v {
            AttributeValue::S(s) => out.push(format!("{path}: S = {s}")),
            AttributeValue::N(n) => out.push(format!("{path}: N = {n}")),
            AttributeValue::Bool(b) => out.push(format!("{path}: BOOL = {b}")),
            AttributeValue::Null(_) => out.push(format!("{path}: NULL")),
            AttributeValue::B(b) => out.push(format!("{path}: B ({} bytes)", b.as_ref().len())),
            AttributeValue::Ss(ss) => out.push(format!("{path}: SS = {}", ss.join(","))),
            AttributeValue::Ns(ns) => out.push(format!("{path}: NS = {}", ns.join(","))),
            AttributeValue::M(m) => {
                if m.is_empty() {
                    out.push(format!("{path}: M = {{}}"));
                }
                for (k, v) in m {
                    walk(&format!("{path}.{k}"), v, out);
                }
            }
            AttributeValue::L(l) => {
                if l.is_empty() {
                    out.push(format!("{path}: L = []"));
                }
                for (i, v) in l.iter().enumerate() {
                    walk(&format!("{path}[{i}]"), v, out);
                }
            }
            other => out.push(format!("{path}: {other:?}")),
        }
    }
    let mut out = Vec::new();
    for (k, v) in item {
        walk(k, v, &mut out);
    }
    out.sort();
    out
}

#[track_caller]
fn assert_layout(item: &Item, expected: &[&str]) {
    let got = shape(item);
    let want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(got, want, "item layout changed:\n{}", got.join("\n"));
}

fn to_item<T: serde::Serialize>(t: T) -> Item {
    serde_dynamo::to_item(t).expect("serialises")
}

fn ws() -> WorkspaceId {
    WorkspaceId::parse("acme_TX7T_u").unwrap()
}

fn connector_ref() -> ConnectorRef {
    ConnectorRef {
        workspace: ws(),
        kind: ConnectorType::Gradient,
        incarnation: "0123456789abcdef".into(),
    }
}

fn run_id() -> RunId {
    RunId::parse("20250102T030405.678Z-abc").unwrap()
}

fn counts() -> RunCounts {
    RunCounts {
        accounts: 1,
        accounts_created: 2,
        accounts_renamed: 3,
        services_created: 4,
        readings: 21,
        posted: 5,
        unchanged: 6,
        unmapped: 7,
        skipped_disabled: 1,
        failed: 1,
        held: 1,
    }
}

fn full_run() -> SyncRun {
    SyncRun {
        run_id: run_id(),
        connector_id: ConnectorType::Gradient,
        workspace_id: ws(),
        incarnation: "0123456789abcdef".into(),
        trigger: Trigger::OnDemand,
        status: RunStatus::PartiallyFailed,
        requested_by: Some(UserId::parse("auth0|u1").unwrap()),
        queued_at: datetime!(2025-01-02 03:04:05.678 UTC),
        started_at: Some(datetime!(2025-01-02 03:04:06 UTC)),
        finished_at: Some(datetime!(2025-01-02 03:05:00 UTC)),
        counts: counts(),
        failures: vec![Failure {
            account_id: "acc-1".into(),
            service: "edr".into(),
            reason: "HTTP 500".into(),
        }],
        reason: Some("some failed".into()),
        token_version: 3,
        continuations: 2,
        full: true,
        guard: Some(GuardFigures {
            before: 100,
            after: 90,
        }),
        release_of: Some(RunId::parse("20250101T000000.000Z-held").unwrap()),
        calls: psa_domain::calls::Calls {
            calls: 12,
            throttled: 1,
        },
        tickets: vec![RunTicket {
            account_id: "acc-1".into(),
            account_name: Some("Acme One".into()),
            state: TicketState::Created,
            detail: Some("T-1".into()),
            earlier: true,
        }],
    }
}

fn minimal_run() -> SyncRun {
    SyncRun {
        trigger: Trigger::Scheduled,
        status: RunStatus::Queued,
        requested_by: None,
        started_at: None,
        finished_at: None,
        counts: RunCounts::default(),
        failures: vec![],
        reason: None,
        token_version: 0,
        continuations: 0,
        full: false,
        guard: None,
        release_of: None,
        calls: psa_domain::calls::Calls::default(),
        tickets: vec![],
        ..full_run()
    }
}

#[test]
fn a_run_item_is_laid_out_as_it_always_was() {
    let item = to_item(RunItem::new(&full_run()));
    assert_layout(
        &item,
        &[
            "calls.calls: N = 12",
            "calls.throttled: N = 1",
            "connectorId: S = gradient",
            "continuations: N = 2",
            "counts.accounts: N = 1",
            "counts.accountsCreated: N = 2",
            "counts.accountsRenamed: N = 3",
            "counts.failed: N = 1",
            "counts.held: N = 1",
            "counts.posted: N = 5",
            "counts.readings: N = 21",
            "counts.servicesCreated: N = 4",
            "counts.skippedDisabled: N = 1",
            "counts.unchanged: N = 6",
            "counts.unmapped: N = 7",
            "expiresAt: N = 1743563100",
            "failures[0].accountId: S = acc-1",
            "failures[0].reason: S = HTTP 500",
            "failures[0].service: S = edr",
            "finishedAt: S = 2025-01-02T03:05:00Z",
            "full: BOOL = true",
            "gsi1pk: S = RUNS#acme_TX7T_u#gradient#0123456789abcdef",
            "gsi1sk: S = 001735787045678#20250102T030405.678Z-abc",
            "guard.after: N = 90",
            "guard.before: N = 100",
            "incarnation: S = 0123456789abcdef",
            "pk: S = WS#acme_TX7T_u",
            "queuedAt: S = 2025-01-02T03:04:05.678Z",
            "reason: S = some failed",
            "releaseOf: S = 20250101T000000.000Z-held",
            "requestedBy: S = auth0|u1",
            "runId: S = 20250102T030405.678Z-abc",
            "sk: S = RUN#gradient#0123456789abcdef#20250102T030405.678Z-abc",
            "startedAt: S = 2025-01-02T03:04:06Z",
            "status: S = partially_failed",
            "tickets[0].accountId: S = acc-1",
            "tickets[0].accountName: S = Acme One",
            "tickets[0].detail: S = T-1",
            "tickets[0].earlier: BOOL = true",
            "tickets[0].state: S = created",
            "tokenVersion: N = 3",
            "trigger: S = on_demand",
            "workspaceId: S = acme_TX7T_u",
        ],
    );
    let item = to_item(RunItem::new(&minimal_run()));
    assert_layout(
        &item,
        &[
            "connectorId: S = gradient",
            "continuations: N = 0",
            "counts.accounts: N = 0",
            "counts.accountsCreated: N = 0",
            "counts.accountsRenamed: N = 0",
            "counts.failed: N = 0",
            "counts.held: N = 0",
            "counts.posted: N = 0",
            "counts.readings: N = 0",
            "counts.servicesCreated: N = 0",
            "counts.skippedDisabled: N = 0",
            "counts.unchanged: N = 0",
            "counts.unmapped: N = 0",
            "expiresAt: N = 1743563045",
            "failures: L = []",
            "full: BOOL = false",
            "gsi1pk: S = RUNS#acme_TX7T_u#gradient#0123456789abcdef",
            "gsi1sk: S = 001735787045678#20250102T030405.678Z-abc",
            "incarnation: S = 0123456789abcdef",
            "pk: S = WS#acme_TX7T_u",
            "queuedAt: S = 2025-01-02T03:04:05.678Z",
            "runId: S = 20250102T030405.678Z-abc",
            "sk: S = RUN#gradient#0123456789abcdef#20250102T030405.678Z-abc",
            "status: S = queued",
            "tokenVersion: N = 0",
            "trigger: S = scheduled",
            "workspaceId: S = acme_TX7T_u",
        ],
    );
}

fn full_connector() -> Connector {
    Connector {
        workspace_id: ws(),
        kind: ConnectorType::Gradient,
        status: ConnectorStatus::Error,
        status_reason: Some("token_rejected".into()),
        token_hint: "…abcd".into(),
        created_at: datetime!(2025-01-01 00:00:00 UTC),
        updated_at: datetime!(2025-01-02 00:00:00 UTC),
        created_by: UserId::parse("auth0|u1").unwrap(),
        last_sync: Some(LastSync {
            run_id: run_id(),
            status: RunStatus::Succeeded,
            finished_at: datetime!(2025-01-02 03:05:00 UTC),
            counts: counts(),
        }),
        token_version: 2,
        full_resend_due: true,
        last_full_resend_at: Some(datetime!(2024-12-01 00:00:00 UTC)),
        full_resend_deferred_until: Some(datetime!(2025-01-03 00:00:00 UTC)),
        settings: ConnectorSettings {
            guard_drop_percent: Some(40),
            psa_alerts: true,
            notify: NotifySettings {
                emails: vec!["ops@acme.example".into()],
                on: NotifyOn::Problems,
            },
        },
        failed_streak: 2,
        psa_failing: true,
        organization_id: Some("org-9".into()),
        deleting_since: Some(datetime!(2025-01-04 00:00:00 UTC)),
        incarnation: "0123456789abcdef".into(),
        version: 7,
    }
}

fn minimal_connector() -> Connector {
    Connector {
        status: ConnectorStatus::Connected,
        status_reason: None,
        last_sync: None,
        last_full_resend_at: None,
        full_resend_deferred_until: None,
        settings: ConnectorSettings {
            guard_drop_percent: None,
            psa_alerts: false,
            notify: NotifySettings::default(),
        },
        organization_id: None,
        deleting_since: None,
        ..full_connector()
    }
}

#[test]
fn a_connector_item_is_laid_out_as_it_always_was() {
    assert_layout(
        &connector_item(&full_connector()).unwrap(),
        &[
            "createdAt: S = 2025-01-01T00:00:00Z",
            "createdBy: S = auth0|u1",
            "deletingSince: S = 2025-01-04T00:00:00Z",
            "failedStreak: N = 2",
            "fullResendDeferredUntil: S = 2025-01-03T00:00:00Z",
            "fullResendDue: BOOL = true",
            "gsi1pk: S = CONNECTORS#connected",
            "gsi1sk: S = WS#acme_TX7T_u",
            "incarnation: S = 0123456789abcdef",
            "lastFullResendAt: S = 2024-12-01T00:00:00Z",
            "lastSync.counts.accounts: N = 1",
            "lastSync.counts.accountsCreated: N = 2",
            "lastSync.counts.accountsRenamed: N = 3",
            "lastSync.counts.failed: N = 1",
            "lastSync.counts.held: N = 1",
            "lastSync.counts.posted: N = 5",
            "lastSync.counts.readings: N = 21",
            "lastSync.counts.servicesCreated: N = 4",
            "lastSync.counts.skippedDisabled: N = 1",
            "lastSync.counts.unchanged: N = 6",
            "lastSync.counts.unmapped: N = 7",
            "lastSync.finishedAt: S = 2025-01-02T03:05:00Z",
            "lastSync.runId: S = 20250102T030405.678Z-abc",
            "lastSync.status: S = succeeded",
            "organizationId: S = org-9",
            "pk: S = WS#acme_TX7T_u",
            "psaFailing: BOOL = true",
            "settings.guardDropPercent: N = 40",
            "settings.notify.emails[0]: S = ops@acme.example",
            "settings.notify.on: S = problems",
            "settings.psaAlerts: BOOL = true",
            "sk: S = CONNECTOR#gradient",
            "status: S = error",
            "statusReason: S = token_rejected",
            "tokenHint: S = …abcd",
            "tokenVersion: N = 2",
            "type: S = gradient",
            "updatedAt: S = 2025-01-02T00:00:00Z",
            "version: N = 7",
            "workspaceId: S = acme_TX7T_u",
        ],
    );
    assert_layout(
        &connector_item(&minimal_connector()).unwrap(),
        &[
            "createdAt: S = 2025-01-01T00:00:00Z",
            "createdBy: S = auth0|u1",
            "failedStreak: N = 2",
            "fullResendDue: BOOL = true",
            "gsi1pk: S = CONNECTORS#connected",
            "gsi1sk: S = WS#acme_TX7T_u",
            "incarnation: S = 0123456789abcdef",
            "pk: S = WS#acme_TX7T_u",
            "psaFailing: BOOL = true",
            "settings.guardDropPercent: NULL",
            "settings.notify.emails: L = []",
            "settings.notify.on: S = always",
            "settings.psaAlerts: BOOL = false",
            "sk: S = CONNECTOR#gradient",
            "status: S = connected",
            "tokenHint: S = …abcd",
            "tokenVersion: N = 2",
            "type: S = gradient",
            "updatedAt: S = 2025-01-02T00:00:00Z",
            "version: N = 7",
            "workspaceId: S = acme_TX7T_u",
        ],
    );
}

fn reading(outcome: Outcome, account: &str) -> RunReading {
    RunReading {
        account_id: account.into(),
        account_name: format!("Name of {account}"),
        service: "edr".into(),
        unit: Unit::ProtectedDevices,
        value: 42,
        previous: Some(40),
        outcome,
        reason: Some("why".into()),
    }
}

#[test]
fn a_reading_item_is_laid_out_as_it_always_was() {
    let c = connector_ref();
    let item = to_item(reading_item(
        &c,
        &run_id(),
        &reading(Outcome::Failed, "acc-1"),
        1_800_000_000,
        1_700_000_000_000_001,
    ));
    assert_layout(
        &item,
        &[
            "accountId: S = acc-1",
            "accountName: S = Name of acc-1",
            "expiresAt: N = 1800000000",
            "gsi2pk: S = READINGS#acme_TX7T_u#gradient#0123456789abcdef#20250102T030405.678Z-abc#failed",
            "gsi2sk: S = acc-1#edr",
            "outcome: S = failed",
            "pk: S = WS#acme_TX7T_u",
            "previous: N = 40",
            "reason: S = why",
            "recordedAt: N = 1700000000000001",
            "service: S = edr",
            "sk: S = READING#gradient#0123456789abcdef#20250102T030405.678Z-abc#acc-1#edr",
            "unit: S = protected_devices",
            "value: N = 42",
        ],
    );
    let posted = RunReading {
        previous: None,
        reason: None,
        unit: Unit::ProtectedUsers,
        ..reading(Outcome::Posted, "acc-2")
    };
    let item = to_item(reading_item(&c, &run_id(), &posted, 1, 2));
    assert_layout(
        &item,
        &[
            "accountId: S = acc-2",
            "accountName: S = Name of acc-2",
            "expiresAt: N = 1",
            "outcome: S = posted",
            "pk: S = WS#acme_TX7T_u",
            "recordedAt: N = 2",
            "service: S = edr",
            "sk: S = RPOSTED#gradient#0123456789abcdef#20250102T030405.678Z-abc#acc-2#edr",
            "unit: S = protected_users",
            "value: N = 42",
        ],
    );
}

#[test]
fn a_chunk_of_readings_is_laid_out_as_it_always_was() {
    let part = [
        reading(Outcome::Unchanged, "acc-1"),
        RunReading {
            previous: None,
            reason: None,
            ..reading(Outcome::Unchanged, "acc-2")
        },
    ];
    let chunk = chunk_item(&connector_ref(), &run_id(), &part, 1_800_000_000, 7).unwrap();
    let json = String::from_utf8(
        std::io::Read::bytes(flate2::read::DeflateDecoder::new(chunk.data.as_slice()))
            .collect::<Result<Vec<u8>, _>>()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        json,
        r#"[{"accountId":"acc-1","accountName":"Name of acc-1","service":"edr","unit":"protected_devices","value":42,"previous":40,"outcome":"unchanged","reason":"why"},{"accountId":"acc-2","accountName":"Name of acc-2","service":"edr","unit":"protected_devices","value":42,"outcome":"unchanged"}]"#
    );
    assert_eq!(unpack(&chunk).unwrap(), part);
    let item = to_item(chunk);
    assert_layout(
        &item,
        &[
            "data: B (134 bytes)",
            "expiresAt: N = 1800000000",
            "last: S = acc-2#edr",
            "n: N = 2",
            "pk: S = WS#acme_TX7T_u",
            "recordedAt: N = 7",
            "sk: S = RCHUNK#gradient#0123456789abcdef#20250102T030405.678Z-abc#acc-1#edr",
        ],
    );
}

#[test]
fn a_pair_item_is_laid_out_as_it_always_was() {
    let pair = PairState {
        account_id: "acc-1".into(),
        service_key: "edr".into(),
        account_name: "Acme One".into(),
        accepted: Some(Accepted {
            value: 42,
            service_id: "svc-7".into(),
            at: datetime!(2025-01-02 03:05:00 UTC),
            run_id: run_id(),
        }),
        last_attempt: AttemptOutcome::Failed,
        last_attempt_at: datetime!(2025-01-03 03:05:00 UTC),
    };
    let c = connector_ref();
    assert_layout(
        &to_item(pair_item(&c, &pair, 1_800_000_000)),
        &[
            "accepted.at: S = 2025-01-02T03:05:00Z",
            "accepted.runId: S = 20250102T030405.678Z-abc",
            "accepted.serviceId: S = svc-7",
            "accepted.value: N = 42",
            "accountId: S = acc-1",
            "accountName: S = Acme One",
            "expiresAt: N = 1800000000",
            "lastAttempt: S = failed",
            "lastAttemptAt: S = 2025-01-03T03:05:00Z",
            "pk: S = WS#acme_TX7T_u",
            "serviceKey: S = edr",
            "sk: S = PAIR#gradient#0123456789abcdef#acc-1#edr",
        ],
    );
    let fresh = PairState {
        accepted: None,
        last_attempt: AttemptOutcome::Unmapped,
        ..pair
    };
    assert_layout(
        &to_item(pair_item(&c, &fresh, 1_800_000_000)),
        &[
            "accountId: S = acc-1",
            "accountName: S = Acme One",
            "expiresAt: N = 1800000000",
            "lastAttempt: S = unmapped",
            "lastAttemptAt: S = 2025-01-03T03:05:00Z",
            "pk: S = WS#acme_TX7T_u",
            "serviceKey: S = edr",
            "sk: S = PAIR#gradient#0123456789abcdef#acc-1#edr",
        ],
    );
}

#[test]
fn an_audit_item_is_laid_out_as_it_always_was() {
    let event = AuditEvent {
        at: datetime!(2025-01-02 03:04:05.678 UTC),
        actor: Actor::User(UserId::parse("auth0|u1").unwrap()),
        action: AuditAction::SettingsChanged,
        connector_id: ConnectorType::Gradient,
        run_id: Some(run_id()),
        detail: BTreeMap::from([("psaAlerts".into(), "true".into())]),
    };
    let sk = "AUDIT#001735787045678#0a1b2c3d";
    assert_layout(
        &to_item(audit_item(&ws(), sk, &event)),
        &[
            "action: S = connector.settings_changed",
            "actor: S = auth0|u1",
            "at: S = 2025-01-02T03:04:05.678Z",
            "connectorId: S = gradient",
            "detail.psaAlerts: S = true",
            "expiresAt: N = 1770433445",
            "pk: S = WS#acme_TX7T_u",
            "runId: S = 20250102T030405.678Z-abc",
            "sk: S = AUDIT#001735787045678#0a1b2c3d",
        ],
    );
    let system = AuditEvent {
        actor: Actor::System,
        action: AuditAction::SyncFinished,
        run_id: None,
        detail: BTreeMap::new(),
        ..event
    };
    assert_layout(
        &to_item(audit_item(&ws(), sk, &system)),
        &[
            "action: S = sync.finished",
            "actor: S = system",
            "at: S = 2025-01-02T03:04:05.678Z",
            "connectorId: S = gradient",
            "expiresAt: N = 1770433445",
            "pk: S = WS#acme_TX7T_u",
            "sk: S = AUDIT#001735787045678#0a1b2c3d",
        ],
    );
}

#[test]
fn the_key_health_item_is_laid_out_as_it_always_was() {
    let item = HealthItem {
        last_accepted_ms: 1_700_000_000_000,
        unauthorized: BTreeMap::from([("msp/acme_TX7T_u".into(), 1_700_000_000_001)]),
        forbidden: BTreeMap::new(),
        version: 4,
        last_accepted_by: Some(
            (&AcceptedBy {
                connector: connector_ref(),
                token_version: 2,
            })
                .into(),
        ),
    };
    assert_layout(
        &to_item(&item),
        &[
            "forbidden: M = {}",
            "lastAcceptedBy.connector.incarnation: S = 0123456789abcdef",
            "lastAcceptedBy.connector.kind: S = gradient",
            "lastAcceptedBy.connector.workspace: S = acme_TX7T_u",
            "lastAcceptedBy.tokenVersion: N = 2",
            "lastAcceptedMs: N = 1700000000000",
            "unauthorized.msp/acme_TX7T_u: N = 1700000000001",
            "version: N = 4",
        ],
    );
    let written = item.item("gradient").unwrap();
    assert_eq!(
        written.get("pk"),
        Some(&AttributeValue::S("VENDOR#gradient".into()))
    );
    assert_eq!(
        written.get("sk"),
        Some(&AttributeValue::S("KEYHEALTH".into()))
    );
    let back = HealthItem::read(written).unwrap();
    assert_eq!(
        back.last_accepted_by(),
        Some(AcceptedBy {
            connector: connector_ref(),
            token_version: 2,
        })
    );
    // What `accepted` sets `lastAcceptedBy` to: the same map.
    let by = accepted_by_value(&AcceptedBy {
        connector: connector_ref(),
        token_version: 2,
    })
    .unwrap();
    assert_layout(
        &HashMap::from([("lastAcceptedBy".to_owned(), by)]),
        &[
            "lastAcceptedBy.connector.incarnation: S = 0123456789abcdef",
            "lastAcceptedBy.connector.kind: S = gradient",
            "lastAcceptedBy.connector.workspace: S = acme_TX7T_u",
            "lastAcceptedBy.tokenVersion: N = 2",
        ],
    );
}

#[test]
fn a_pending_ticket_item_is_laid_out_as_it_always_was() {
    let ticket = PendingTicket {
        account_id: "acc-1".into(),
        kind: "unmapped".into(),
        alert: AlertRef("msg-1".into()),
        audit_key: "AUDIT#001735787045678#0a1b2c3d".into(),
    };
    assert_layout(
        &to_item(ticket_item(&connector_ref(), &ticket, 1_800_000_000)),
        &[
            "accountId: S = acc-1",
            "alert: S = msg-1",
            "auditKey: S = AUDIT#001735787045678#0a1b2c3d",
            "expiresAt: N = 1800000000",
            "kind: S = unmapped",
            "pk: S = WS#acme_TX7T_u",
            "sk: S = TICKET#gradient#0123456789abcdef#msg-1",
        ],
    );
}

#[test]
fn the_budget_lease_item_is_laid_out_as_it_always_was() {
    let record = LeaseRecord {
        version: 8,
        holders: vec![
            Holder {
                owner: "p-1".into(),
                shares: 3,
                until_ms: 1_700_000_000_000,
                cooling: None,
            },
            Holder {
                owner: "p-2".into(),
                shares: 2,
                until_ms: 1_700_000_000_500,
                cooling: Some(Cooling {
                    steps: vec![CoolingStep { ms: 500, shares: 1 }],
                    version: 7,
                }),
            },
        ],
    };
    assert_layout(
        &to_item(budget_item("gradient", &record)),
        &[
            "holders[0].owner: S = p-1",
            "holders[0].shares: N = 3",
            "holders[0].untilMs: N = 1700000000000",
            "holders[1].coolSteps[0].ms: N = 500",
            "holders[1].coolSteps[0].shares: N = 1",
            "holders[1].coolVersion: N = 7",
            "holders[1].owner: S = p-2",
            "holders[1].shares: N = 2",
            "holders[1].untilMs: N = 1700000000500",
            "pk: S = VENDOR#gradient",
            "sk: S = BUDGET",
            "version: N = 9",
        ],
    );
}

fn read<T: serde::de::DeserializeOwned>(item: Item) -> T {
    serde_dynamo::from_item(item).expect("reads")
}

#[test]
fn every_item_reads_back_as_written() {
    for run in [full_run(), minimal_run()] {
        assert_eq!(read::<RunItem>(to_item(RunItem::new(&run))).into_run(), run);
    }
    for c in [full_connector(), minimal_connector()] {
        assert_eq!(connector_of(connector_item(&c).unwrap()).unwrap(), c);
    }
    let c = connector_ref();
    for r in [
        reading(Outcome::Failed, "acc-1"),
        reading(Outcome::Posted, "acc-2"),
    ] {
        let back: ReadingItem = read(to_item(reading_item(&c, &run_id(), &r, 1, 5)));
        assert_eq!(back.into_reading(), (r, 5));
    }
}

#[test]
fn older_records_read_with_their_defaults() {
    // A run written before tokenVersion, continuations, full, calls and tickets, with counts
    // written before `held`.
    let mut item = to_item(RunItem::new(&minimal_run()));
    for gone in ["tokenVersion", "continuations", "full"] {
        item.remove(gone).expect("written today");
    }
    let AttributeValue::M(counts) = item.get_mut("counts").unwrap() else {
        panic!("counts is a map")
    };
    counts.remove("held").expect("written today");
    assert_eq!(read::<RunItem>(item).into_run(), minimal_run());

    // A connector written before its settings, failure streak and PSA flag.
    let mut item = connector_item(&minimal_connector()).unwrap();
    for gone in ["settings", "failedStreak", "psaFailing"] {
        item.remove(gone).expect("written today");
    }
    let c = connector_of(item).unwrap();
    assert_eq!(c.settings, ConnectorSettings::default());
    assert_eq!((c.failed_streak, c.psa_failing), (0, false));

    // A connector whose settings predate `notify`.
    let mut item = connector_item(&full_connector()).unwrap();
    let AttributeValue::M(settings) = item.get_mut("settings").unwrap() else {
        panic!("settings is a map")
    };
    settings.remove("notify").expect("written today");
    let c = connector_of(item).unwrap();
    assert_eq!(c.settings.notify, NotifySettings::default());

    // A reading recorded before `recordedAt`.
    let r = reading(Outcome::Failed, "acc-1");
    let mut item = to_item(reading_item(&connector_ref(), &run_id(), &r, 1, 5));
    item.remove("recordedAt").expect("written today");
    let back: ReadingItem = read(item);
    assert_eq!(back.into_reading(), (r, 0));

    // An empty key-health record (only its key).
    let item: Item = HashMap::new();
    let health: HealthItem = read(item);
    assert_eq!(
        (health.last_accepted_ms, health.version),
        (0, 0),
        "every field defaults"
    );
    assert!(health.last_accepted_by().is_none());
}

#[test]
fn a_firings_progress_is_written_as_it_always_was() {
    use psa_domain::capacity::{Cutoff, DayPlan};
    use psa_domain::ports::ScheduleProgress;
    let plan = |cutoff| DayPlan {
        budget: 1000,
        base_calls: 100,
        due: 5,
        due_calls: 50,
        admitted: 4,
        admitted_calls: 40,
        cutoff,
    };
    let cases = [
        (
            ScheduleProgress {
                scheduled_at: datetime!(2025-01-02 02:00:00 UTC),
                plan: plan(Cutoff::UpTo { late: 3, hash: 77 }),
                cursor: Some("{\"pk\":\"WS#a\"}".into()),
                complete: false,
            },
            r#"{"scheduledAt":"2025-01-02T02:00:00Z","plan":{"budget":1000,"baseCalls":100,"due":5,"dueCalls":50,"admitted":4,"admittedCalls":40,"cutoff":{"admit":"up_to","late":3,"hash":77}},"cursor":"{\"pk\":\"WS#a\"}","complete":false}"#,
        ),
        (
            ScheduleProgress {
                scheduled_at: datetime!(2025-01-02 02:00:00 UTC),
                plan: plan(Cutoff::All),
                cursor: None,
                complete: true,
            },
            r#"{"scheduledAt":"2025-01-02T02:00:00Z","plan":{"budget":1000,"baseCalls":100,"due":5,"dueCalls":50,"admitted":4,"admittedCalls":40,"cutoff":{"admit":"all"}},"cursor":null,"complete":true}"#,
        ),
        (
            ScheduleProgress {
                scheduled_at: datetime!(2025-01-02 02:00:00.5 UTC),
                plan: plan(Cutoff::Nothing),
                cursor: None,
                complete: false,
            },
            r#"{"scheduledAt":"2025-01-02T02:00:00.5Z","plan":{"budget":1000,"baseCalls":100,"due":5,"dueCalls":50,"admitted":4,"admittedCalls":40,"cutoff":{"admit":"nothing"}},"cursor":null,"complete":false}"#,
        ),
    ];
    for (progress, json) in cases {
        assert_eq!(progress_json(&progress).unwrap(), json);
        assert_eq!(progress_from_json(json).unwrap(), progress);
    }
}

#[test]
fn a_runs_status_reads_from_its_item_alone() {
    let item = to_item(RunItem::new(&full_run()));
    let only: Item = item
        .into_iter()
        .filter(|(k, _)| ["pk", "sk", RUN_STATUS].contains(&k.as_str()))
        .collect();
    assert_eq!(run_status_of(&only), Some(RunStatus::PartiallyFailed));
    assert_eq!(run_status_of(&HashMap::new()), None);
}
