//! The lease record of the deployment-wide request budget (`psa_domain::budget`): one item, read
//! strongly consistent and written conditionally on its version.

use crate::error::{is_condition_failed, serde_error, store_error};
use crate::items::{BudgetItem, budget_item};
use crate::keys::{BUDGET_SK, vendor_pk};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::budget::{BudgetLeases, LeaseError, LeaseRecord};

/// The lease record at `pk = VENDOR#<psa>`, `sk = BUDGET`.
#[derive(Clone, Debug)]
pub struct DynamoBudgetLeases {
    client: Client,
    table: String,
    psa: String,
}

impl DynamoBudgetLeases {
    /// The record of `psa`'s budget (e.g. `gradient`).
    pub fn new(client: Client, table: impl Into<String>, psa: &str) -> Self {
        Self {
            client,
            table: table.into(),
            psa: psa.to_owned(),
        }
    }
}

fn store(e: psa_domain::ports::StoreError) -> LeaseError {
    LeaseError::Store(e.0)
}

#[async_trait]
impl BudgetLeases for DynamoBudgetLeases {
    async fn read(&self) -> Result<LeaseRecord, LeaseError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(vendor_pk(&self.psa)))
            .key("sk", AttributeValue::S(BUDGET_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store(store_error("read the budget lease", e)))?;
        let Some(item) = out.item else {
            return Ok(LeaseRecord::default());
        };
        let item: BudgetItem =
            serde_dynamo::from_item(item).map_err(|e| store(serde_error("budget lease", e)))?;
        Ok(item.into())
    }

    async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError> {
        let item = serde_dynamo::to_item(budget_item(&self.psa, record))
            .map_err(|e| store(serde_error("budget lease", e)))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = if record.version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(record.version.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(LeaseError::Conflict),
            Err(e) => Err(store(store_error("write the budget lease", e))),
        }
    }
}
