//! Workspaces of the read model and the Lambda payloads the functions receive.

use psa_store::WorkspaceItem;
use serde_json::Value;

/// A workspace item of the read model (contract shape).
#[allow(clippy::too_many_arguments)]
pub fn workspace(
    id: &str,
    parent: Option<&str>,
    kind: &str,
    name: &str,
    status: &str,
    services: &[&str],
    users: u64,
    devices: u64,
) -> WorkspaceItem {
    let catalogue = psa_domain::Catalogue::builtin();
    let (mut modules, mut addons) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for s in services {
        match catalogue.get(s).map(|s| s.kind) {
            Some(psa_domain::catalogue::ServiceKind::Addon) => addons.insert(s.to_string()),
            _ => modules.insert(s.to_string()),
        };
    }
    WorkspaceItem {
        workspace_id: id.into(),
        parent_workspace_id: parent.map(str::to_owned),
        kind: kind.into(),
        name: name.into(),
        domain: Some(format!("{id}.example.com")),
        status: status.into(),
        modules: (!modules.is_empty()).then_some(modules),
        addons: (!addons.is_empty()).then_some(addons),
        protected_users: users,
        protected_devices: devices,
        updated_at: "2026-11-24T04:00:00Z".into(),
    }
}

// ---- the queue and the worker, driven with real SQS event payloads ---------------------------

/// A real SQS → Lambda event (`aws:sqs` records) for messages received from the local queue.
/// The EventBridge "Scheduled Event" of the daily rule, as Lambda receives it (05:00 UTC,
/// 2026-11-24).
pub fn scheduled_event() -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-24T05:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/psa-daily-sync"],
        "detail": {}
    })
}

pub fn sqs_event(
    messages: &[aws_sdk_sqs::types::Message],
) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795496400000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1795496400001"
                },
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:psa-sync",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("SQS event shape")
}
