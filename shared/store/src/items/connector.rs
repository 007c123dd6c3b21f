//! A connector's item (`WS#<ws>` / `CONNECTOR#<type>`, on `byStatus` under its status).

use crate::error::serde_error;
use crate::keys::{connector_sk, connectors_by_status_pk, connectors_by_status_sk, workspace_pk};
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::StoreError;
use psa_domain::{Connector, ConnectorStatus};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
pub(crate) struct ConnectorItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    pub(crate) connector: Connector,
}

impl ConnectorItem {
    fn new(c: &Connector) -> Self {
        Self {
            pk: workspace_pk(&c.workspace_id),
            sk: connector_sk(c.kind),
            // A connector whose delete began stays in the scheduler's partition whatever its
            // status, so the next scheduled firing's worker finishes the delete.
            gsi1pk: connectors_by_status_pk(if c.is_deleting() {
                ConnectorStatus::Connected
            } else {
                c.status
            }),
            gsi1sk: connectors_by_status_sk(&c.workspace_id),
            connector: c.clone(),
        }
    }
}

/// The stored item of `connector` (also for tests that seed many connectors at once with batched
/// writes, so the layout is written down once).
pub fn connector_item(
    connector: &Connector,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(ConnectorItem::new(connector)).map_err(|e| serde_error("connector", e))
}

/// The connector of a stored item.
pub(crate) fn connector_of(item: HashMap<String, AttributeValue>) -> Result<Connector, StoreError> {
    serde_dynamo::from_item::<_, ConnectorItem>(item)
        .map(|i| i.connector)
        .map_err(|e| serde_error("connector item", e))
}
