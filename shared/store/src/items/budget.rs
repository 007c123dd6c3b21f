//! The lease record of the deployment-wide request budget of a PSA (`VENDOR#<psa>` / `BUDGET`):
//! its version and holders, each with its shares and lease end, or a cooling give-back.

use crate::keys::{BUDGET_SK, vendor_pk};
use psa_domain::budget::{Cooling, CoolingStep, Holder, LeaseRecord};
use serde::{Deserialize, Serialize};

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

/// The record `record` is written as: its next version.
pub(crate) fn budget_item(psa: &str, record: &LeaseRecord) -> BudgetItem {
    BudgetItem {
        pk: vendor_pk(psa),
        sk: BUDGET_SK.into(),
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

impl From<BudgetItem> for LeaseRecord {
    fn from(item: BudgetItem) -> Self {
        LeaseRecord {
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
        }
    }
}
