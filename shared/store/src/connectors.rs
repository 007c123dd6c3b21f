//! Connectors in the project's table (`WS#<ws>` / `CONNECTOR#<type>`), and the scheduler's page
//! of connected ones through the `byStatus` index.

use crate::error::{is_condition_failed, store_error};
use crate::items::{connector_item, connector_of};
use crate::keys::{
    BY_STATUS, CONNECTORS_PREFIX, connector_sk, connectors_by_status_pk, workspace_pk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{ConnectorRepo, StoreError};
use psa_domain::{Connector, ConnectorStatus, ConnectorType, WorkspaceId};

/// Connectors in the project's table.
#[derive(Clone, Debug)]
pub struct DynamoConnectors {
    pub(crate) client: Client,
    pub(crate) table: String,
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
            .index_name(BY_STATUS)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(connectors_by_status_pk(status)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| store_error("query connectors by status", e))?;
        let connectors = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(connector_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((connectors, out.last_evaluated_key))
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
            .key("pk", AttributeValue::S(workspace_pk(workspace)))
            .key("sk", AttributeValue::S(connector_sk(kind)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("get connector", e))?;
        out.item.map(connector_of).transpose()
    }

    async fn list(&self, workspace: &WorkspaceId) -> Result<Vec<Connector>, StoreError> {
        // At most one item per type: one page always holds them all.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", AttributeValue::S(workspace_pk(workspace)))
            .expression_attribute_values(":s", AttributeValue::S(CONNECTORS_PREFIX.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("list connectors", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(connector_of)
            .collect()
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
            .key("pk", AttributeValue::S(workspace_pk(workspace)))
            .key("sk", AttributeValue::S(connector_sk(kind)))
            .send()
            .await
            .map_err(|e| store_error("delete connector", e))?;
        Ok(())
    }
}
