use crate::error::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{StoreError, WorkspaceDirectory};
use psa_domain::{Workspace, WorkspaceId, WorkspaceStatus, WorkspaceType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One item of the platform's workspace read model (contract; we only read it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceItem {
    pub workspace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_workspace_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub status: String,
    /// String sets (`SS`); DynamoDB has no empty sets, so absent means none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_dynamo::string_set"
    )]
    pub modules: Option<BTreeSet<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_dynamo::string_set"
    )]
    pub addons: Option<BTreeSet<String>>,
    pub protected_users: u64,
    pub protected_devices: u64,
    pub updated_at: String,
}

impl WorkspaceItem {
    /// The domain view; `None` (and a warning) for an item that breaks the contract.
    pub fn into_domain(self) -> Option<Workspace> {
        let parsed = (|| {
            Some(Workspace {
                id: WorkspaceId::parse(&self.workspace_id).ok()?,
                parent: match &self.parent_workspace_id {
                    Some(p) => Some(WorkspaceId::parse(p).ok()?),
                    None => None,
                },
                kind: WorkspaceType::parse(&self.kind)?,
                name: self.name.clone(),
                domain: self.domain.clone().filter(|d| !d.is_empty()),
                status: WorkspaceStatus::parse(&self.status)?,
                services: self
                    .modules
                    .iter()
                    .chain(self.addons.iter())
                    .flatten()
                    .cloned()
                    .collect(),
                protected_users: self.protected_users,
                protected_devices: self.protected_devices,
            })
        })();
        if parsed.is_none() {
            tracing::warn!(workspace_id = %self.workspace_id, "workspace item breaks the read-model contract; skipped");
        }
        parsed
    }
}

/// The platform's workspace table, read through its `byParent` index.
#[derive(Clone, Debug)]
pub struct DynamoWorkspaces {
    client: Client,
    table: String,
}

impl DynamoWorkspaces {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl WorkspaceDirectory for DynamoWorkspaces {
    async fn children(&self, parent: &WorkspaceId) -> Result<Vec<Workspace>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("byParent")
                .key_condition_expression("parentWorkspaceId = :p")
                .expression_attribute_values(":p", AttributeValue::S(parent.as_str().into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("query workspaces by parent", e))?;
            for item in page.items.unwrap_or_default() {
                match serde_dynamo::from_item::<_, WorkspaceItem>(item) {
                    Ok(w) => out.extend(w.into_domain()),
                    Err(e) => tracing::warn!(error = %e, "unreadable workspace item skipped"),
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("workspaceId", AttributeValue::S(id.as_str().into()))
            .send()
            .await
            .map_err(|e| store_error("get workspace", e))?;
        Ok(match out.item {
            None => None,
            Some(item) => match serde_dynamo::from_item::<_, WorkspaceItem>(item) {
                Ok(w) => w.into_domain(),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable workspace item skipped");
                    None
                }
            },
        })
    }
}
