//! The audit trail: who did what to a workspace's connectors, and what the system did.

use crate::ids::{ConnectorType, RunId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What happened (contract `AuditEvent.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    #[serde(rename = "connector.created")]
    ConnectorCreated,
    #[serde(rename = "connector.token_replaced")]
    TokenReplaced,
    #[serde(rename = "connector.deleted")]
    ConnectorDeleted,
    #[serde(rename = "connector.disconnected")]
    ConnectorDisconnected,
    #[serde(rename = "connector.errored")]
    ConnectorErrored,
    #[serde(rename = "connector.restored")]
    ConnectorRestored,
    #[serde(rename = "connector.settings_changed")]
    SettingsChanged,
    #[serde(rename = "sync.requested")]
    SyncRequested,
    #[serde(rename = "sync.finished")]
    SyncFinished,
    #[serde(rename = "sync.held")]
    SyncHeld,
    #[serde(rename = "sync.released")]
    SyncReleased,
    #[serde(rename = "psa.alert_sent")]
    PsaAlertSent,
    /// The PSA integration status this project set (detail `from`, `to`).
    #[serde(rename = "psa.status_set")]
    PsaStatusSet,
}

/// Who did it: a user (the caller's `sub`) or the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    System,
}

impl Actor {
    pub fn as_str(&self) -> &str {
        match self {
            Self::User(u) => u.as_str(),
            Self::System => "system",
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw == "system" {
            return Ok(Self::System);
        }
        UserId::parse(&raw)
            .map(Self::User)
            .map_err(serde::de::Error::custom)
    }
}

/// One entry of the trail (contract `AuditEvent`). `detail` never holds a token or a token hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub action: AuditAction,
    pub connector_id: ConnectorType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: AuditAction, connector_id: ConnectorType) -> Self {
        Self {
            at: OffsetDateTime::now_utc(),
            actor,
            action,
            connector_id,
            run_id: None,
            detail: BTreeMap::new(),
        }
    }

    pub fn run(mut self, run: &RunId) -> Self {
        self.run_id = Some(run.clone());
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_contract_says() {
        let e = AuditEvent::new(
            Actor::User(UserId::parse("u1").unwrap()),
            AuditAction::TokenReplaced,
            ConnectorType::Gradient,
        )
        .with("reason", "x");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["action"], "connector.token_replaced");
        assert_eq!(v["actor"], "u1");
        assert_eq!(v["connectorId"], "gradient");
        assert_eq!(v["detail"]["reason"], "x");
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        let sys = serde_json::to_value(AuditEvent::new(
            Actor::System,
            AuditAction::SyncFinished,
            ConnectorType::Gradient,
        ))
        .unwrap();
        assert_eq!(sys["actor"], "system");
        assert!(sys.get("detail").is_none());
    }
}
