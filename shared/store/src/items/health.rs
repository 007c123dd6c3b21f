//! The deployment-wide record of PSA rejections (`VENDOR#<psa>` / `KEYHEALTH`): `lastAcceptedMs`
//! and who made that call, and, per kind, `<msp>/<workspace>` → time of its latest rejection.
//! Rejections are rare; each is a read and a conditional write (`version`).

use crate::attrs::s;
use crate::error::serde_error;
use crate::keys::{KEY_HEALTH_SK, vendor_pk};
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{AcceptedBy, Rejected, StoreError};
use psa_domain::{ConnectorRef, ConnectorType, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthItem {
    #[serde(default)]
    pub(crate) last_accepted_ms: u64,
    #[serde(default)]
    pub(crate) unauthorized: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) forbidden: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_accepted_by: Option<AcceptedByRecord>,
}

impl HealthItem {
    /// The connector whose call was accepted last, if any.
    pub(crate) fn last_accepted_by(self) -> Option<AcceptedBy> {
        self.last_accepted_by.map(AcceptedBy::from)
    }

    /// The record as read (its key attributes aside).
    pub(crate) fn read(mut raw: HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        raw.remove("pk");
        raw.remove("sk");
        serde_dynamo::from_item(raw).map_err(|e| serde_error("key health", e))
    }

    /// The item of `psa`'s record.
    pub(crate) fn item(&self, psa: &str) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut attrs: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(self).map_err(|e| serde_error("key health", e))?;
        attrs.insert("pk".into(), s(vendor_pk(psa)));
        attrs.insert("sk".into(), s(KEY_HEALTH_SK));
        Ok(attrs)
    }
}

/// The value of `lastAcceptedBy`.
pub(crate) fn accepted_by_value(by: &AcceptedBy) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(AcceptedByRecord::from(by))
        .map_err(|e| serde_error("accepted by", e))
}

/// A rejection's entry: `<msp>/<workspace>` (a workspace id holds no `/`).
pub(crate) fn rejection_entry(rejected: &Rejected) -> String {
    format!("{}/{}", rejected.msp, rejected.workspace)
}

/// The connector an entry names; an entry written before MSPs were recorded is its own MSP.
pub(crate) fn rejected_of(entry: &str) -> Option<Rejected> {
    let (msp, ws) = entry.split_once('/').unwrap_or((entry, entry));
    Some(Rejected {
        workspace: WorkspaceId::parse(ws).ok()?,
        msp: WorkspaceId::parse(msp).ok()?,
    })
}

/// `lastAcceptedBy`: a connector incarnation and the token version its accepted call had.
#[derive(Serialize, Deserialize)]
pub(super) struct AcceptedByRecord {
    connector: ConnectorRefRecord,
    #[serde(rename = "tokenVersion")]
    token_version: u64,
}

#[derive(Serialize, Deserialize)]
struct ConnectorRefRecord {
    workspace: WorkspaceId,
    kind: ConnectorType,
    incarnation: String,
}

impl From<&AcceptedBy> for AcceptedByRecord {
    fn from(by: &AcceptedBy) -> Self {
        Self {
            connector: ConnectorRefRecord {
                workspace: by.connector.workspace.clone(),
                kind: by.connector.kind,
                incarnation: by.connector.incarnation.clone(),
            },
            token_version: by.token_version,
        }
    }
}

impl From<AcceptedByRecord> for AcceptedBy {
    fn from(by: AcceptedByRecord) -> Self {
        Self {
            connector: ConnectorRef {
                workspace: by.connector.workspace,
                kind: by.connector.kind,
                incarnation: by.connector.incarnation,
            },
            token_version: by.token_version,
        }
    }
}
