use crate::error::{is_condition_failed, serde_error, store_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{ConnectorRepo, OrganizationBindings, StoreError};
use psa_domain::{Connector, ConnectorStatus, ConnectorType, WorkspaceId};
use serde::{Deserialize, Serialize};

pub(crate) fn ws_pk(ws: &WorkspaceId) -> String {
    format!("WS#{ws}")
}
/// Sort-key prefix of a workspace's connectors: `CONNECTOR#<type>`.
const CONNECTOR_SK: &str = "CONNECTOR#";

fn connector_sk(kind: ConnectorType) -> String {
    format!("{CONNECTOR_SK}{}", kind.as_str())
}

/// GSI partition of connectors with a given status (`byStatus`): the scheduler queries
/// `CONNECTORS#connected`, never scans.
pub fn status_partition(status: ConnectorStatus) -> String {
    format!("CONNECTORS#{}", status.as_str())
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ConnectorItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    pub(crate) connector: Connector,
}

/// The stored item of `connector` (also for tests that seed many connectors at once with batched
/// writes, so the layout is written down once).
pub fn connector_item(
    connector: &Connector,
) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(ConnectorItem::new(connector)).map_err(|e| serde_error("connector", e))
}

impl ConnectorItem {
    fn new(c: &Connector) -> Self {
        Self {
            pk: ws_pk(&c.workspace_id),
            sk: connector_sk(c.kind),
            // A connector whose delete began stays in the scheduler's partition whatever its
            // status, so the next scheduled firing's worker finishes the delete.
            gsi1pk: status_partition(if c.is_deleting() {
                ConnectorStatus::Connected
            } else {
                c.status
            }),
            gsi1sk: ws_pk(&c.workspace_id),
            connector: c.clone(),
        }
    }
}

/// Connectors in the project's table.
#[derive(Clone, Debug)]
pub struct DynamoConnectors {
    client: Client,
    table: String,
}

impl DynamoConnectors {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// One page of connectors with `status`, via the `byStatus` index (a query, never a scan).
    pub async fn page_by_status(
        &self,
        status: ConnectorStatus,
        start: Option<std::collections::HashMap<String, AttributeValue>>,
        limit: i32,
    ) -> Result<
        (
            Vec<Connector>,
            Option<std::collections::HashMap<String, AttributeValue>>,
        ),
        StoreError,
    > {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("byStatus")
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(status_partition(status)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| store_error("query connectors by status", e))?;
        let items: Vec<ConnectorItem> = serde_dynamo::from_items(out.items.unwrap_or_default())
            .map_err(|e| serde_error("connector item", e))?;
        Ok((
            items.into_iter().map(|i| i.connector).collect(),
            out.last_evaluated_key,
        ))
    }
}

#[async_trait]
impl ConnectorRepo for DynamoConnectors {
    async fn get(
        &self,
        workspace: &WorkspaceId,
        kind: ConnectorType,
    ) -> Result<Option<Connector>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(ws_pk(workspace)))
            .key("sk", AttributeValue::S(connector_sk(kind)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("get connector", e))?;
        out.item
            .map(|item| {
                serde_dynamo::from_item::<_, ConnectorItem>(item)
                    .map(|i| i.connector)
                    .map_err(|e| serde_error("connector item", e))
            })
            .transpose()
    }

    async fn list(&self, workspace: &WorkspaceId) -> Result<Vec<Connector>, StoreError> {
        // At most one item per type: one page always holds them all.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", AttributeValue::S(ws_pk(workspace)))
            .expression_attribute_values(":s", AttributeValue::S(CONNECTOR_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("list connectors", e))?;
        let items: Vec<ConnectorItem> = serde_dynamo::from_items(out.items.unwrap_or_default())
            .map_err(|e| serde_error("connector item", e))?;
        Ok(items.into_iter().map(|i| i.connector).collect())
    }

    async fn insert(&self, connector: &Connector) -> Result<bool, StoreError> {
        let item = connector_item(connector)?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("insert connector", e)),
        }
    }

    async fn replace(&self, connector: &mut Connector) -> Result<bool, StoreError> {
        let expected = connector.version;
        let mut next = connector.clone();
        next.version = expected + 1;
        let item = connector_item(&next)?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
            .send()
            .await
        {
            Ok(_) => {
                *connector = next;
                Ok(true)
            }
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("replace connector", e)),
        }
    }

    async fn connected_page(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<Connector>, Option<String>), StoreError> {
        let start = match cursor {
            None => None,
            Some(c) => {
                let keys: std::collections::HashMap<String, String> = serde_json::from_str(&c)
                    .map_err(|e| StoreError(format!("invalid connector cursor: {e}")))?;
                Some(
                    keys.into_iter()
                        .map(|(k, v)| (k, AttributeValue::S(v)))
                        .collect(),
                )
            }
        };
        let (items, last) = self
            .page_by_status(
                ConnectorStatus::Connected,
                start,
                limit.clamp(1, 1000) as i32,
            )
            .await?;
        let next = last.map(|keys| {
            let plain: std::collections::BTreeMap<String, String> = keys
                .into_iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
                .collect();
            serde_json::to_string(&plain).expect("string map serialises")
        });
        Ok((items, next))
    }

    async fn delete(&self, workspace: &WorkspaceId, kind: ConnectorType) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(ws_pk(workspace)))
            .key("sk", AttributeValue::S(connector_sk(kind)))
            .send()
            .await
            .map_err(|e| store_error("delete connector", e))?;
        Ok(())
    }
}

/// The binding of a PSA organization to the one workspace whose connector it backs.
fn organization_pk(kind: ConnectorType, organization: &str) -> String {
    format!("ORG#{}#{organization}", kind.as_str())
}
const BINDING_SK: &str = "BINDING";

#[async_trait]
impl OrganizationBindings for DynamoConnectors {
    async fn bind(
        &self,
        kind: ConnectorType,
        organization: &str,
        workspace: &WorkspaceId,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(organization_pk(kind, organization)))
            .item("sk", AttributeValue::S(BINDING_SK.into()))
            .item("workspaceId", AttributeValue::S(workspace.to_string()))
            .condition_expression("attribute_not_exists(pk) OR workspaceId = :ws")
            .expression_attribute_values(":ws", AttributeValue::S(workspace.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("bind an organization", e)),
        }
    }

    async fn unbind(
        &self,
        kind: ConnectorType,
        organization: &str,
        workspace: &WorkspaceId,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(organization_pk(kind, organization)))
            .key("sk", AttributeValue::S(BINDING_SK.into()))
            .condition_expression("workspaceId = :ws")
            .expression_attribute_values(":ws", AttributeValue::S(workspace.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()), // not (or no longer) this workspace's
            Err(e) => Err(store_error("unbind an organization", e)),
        }
    }
}
