//! The deployment-wide record of PSA rejections (`VENDOR#<psa>` / `KEYHEALTH`): `lastAcceptedMs`
//! and who made that call, and, per kind, `<msp>/<workspace>` → time of its latest rejection.
//! Rejections are rare; each is a read and a conditional write (`version`).

use crate::attrs::s;
use crate::error::serde_error;
use crate::keys::{KEY_HEALTH_SK, vendor_pk};
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::WorkspaceId;
use psa_domain::ports::{AcceptedBy, Rejected, StoreError};
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
    pub(crate) last_accepted_by: Option<AcceptedBy>,
}

impl HealthItem {
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
    serde_dynamo::to_attribute_value(by).map_err(|e| serde_error("accepted by", e))
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
