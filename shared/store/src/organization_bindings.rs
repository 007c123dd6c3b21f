//! The binding of a PSA organization to the one workspace whose connector it backs
//! (`ORG#<type>#<organizationId>` / `BINDING`).

use crate::connectors::DynamoConnectors;
use crate::error::{done_unless_failed, is_condition_failed, store_error};
use crate::keys::{BINDING_SK, organization_pk};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{OrganizationBindings, StoreError};
use psa_domain::{ConnectorType, WorkspaceId};

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
        // A failed condition: not (or no longer) this workspace's.
        done_unless_failed(res, "unbind an organization")
    }
}
