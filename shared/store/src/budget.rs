//! The lease record of the deployment-wide Gradient request budget (`psa_domain::budget`): one
//! item, read strongly consistent and written conditionally on its version.

use crate::error::{is_condition_failed, serde_error, store_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::budget::{BudgetLeases, Cooling, CoolingStep, Holder, LeaseError, LeaseRecord};
use serde::{Deserialize, Serialize};

const SK: &str = "BUDGET";

#[derive(Serialize, Deserialize)]
pub(crate) struct HolderItem {
    owner: String,
    shares: u32,
    #[serde(rename = "untilMs")]
    until_ms: i64,
    /// A cooling give-back: its steps and the version it was written as.
    #[serde(rename = "coolSteps", default, skip_serializing_if = "Option::is_none")]
    cool_steps: Option<Vec<StepItem>>,
    #[serde(
        rename = "coolVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    cool_version: Option<u64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StepItem {
    ms: u32,
    shares: u32,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct BudgetItem {
    pk: String,
    sk: String,
    version: u64,
    holders: Vec<HolderItem>,
}

/// The lease record at `pk = VENDOR#<psa>`, `sk = BUDGET`.
#[derive(Clone, Debug)]
pub struct DynamoBudgetLeases {
    client: Client,
    table: String,
    pk: String,
}

impl DynamoBudgetLeases {
    /// The record of `psa`'s budget (e.g. `gradient`).
    pub fn new(client: Client, table: impl Into<String>, psa: &str) -> Self {
        Self {
            client,
            table: table.into(),
            pk: format!("VENDOR#{psa}"),
        }
    }
}

/// The record `record` is written as: its next version.
pub(crate) fn budget_item(pk: &str, record: &LeaseRecord) -> BudgetItem {
    BudgetItem {
        pk: pk.to_owned(),
        sk: SK.into(),
        version: record.version + 1,
        holders: record
            .holders
            .iter()
            .map(|h| HolderItem {
                owner: h.owner.clone(),
                shares: h.shares,
                until_ms: h.until_ms,
                cool_steps: h.cooling.as_ref().map(|c| {
                    c.steps
                        .iter()
                        .map(|s| StepItem {
                            ms: s.ms,
                            shares: s.shares,
                        })
                        .collect()
                }),
                cool_version: h.cooling.as_ref().map(|c| c.version),
            })
            .collect(),
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
            .key("pk", AttributeValue::S(self.pk.clone()))
            .key("sk", AttributeValue::S(SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store(store_error("read the budget lease", e)))?;
        let Some(item) = out.item else {
            return Ok(LeaseRecord::default());
        };
        let item: BudgetItem =
            serde_dynamo::from_item(item).map_err(|e| store(serde_error("budget lease", e)))?;
        Ok(LeaseRecord {
            version: item.version,
            holders: item
                .holders
                .into_iter()
                .map(|h| Holder {
                    owner: h.owner,
                    shares: h.shares,
                    until_ms: h.until_ms,
                    cooling: h
                        .cool_steps
                        .zip(h.cool_version)
                        .map(|(steps, version)| Cooling {
                            steps: steps
                                .into_iter()
                                .map(|s| CoolingStep {
                                    ms: s.ms,
                                    shares: s.shares,
                                })
                                .collect(),
                            version,
                        }),
                })
                .collect(),
        })
    }

    async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError> {
        let item = budget_item(&self.pk, record);
        let item =
            serde_dynamo::to_item(item).map_err(|e| store(serde_error("budget lease", e)))?;
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
