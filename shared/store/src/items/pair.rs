//! A pair state's item (`PAIR#<type>#<inc>#<accountId>#<serviceKey>`): the last value the PSA
//! accepted for an (account, service) pair and the latest attempt, kept 400 days past its last
//! write (a full resend, at most yearly, renews it).

use crate::attrs::DAY_S;
use crate::keys::{pair_sk, workspace_pk};
use psa_domain::{ConnectorRef, PairState};
use serde::{Deserialize, Serialize};

/// A pair state lives 400 days past its last write; a full resend (at most yearly) renews it.
pub(crate) const PAIR_RETENTION_S: i64 = 400 * DAY_S;

#[derive(Serialize, Deserialize)]
pub(crate) struct PairItem {
    pk: String,
    pub(crate) sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    pub(crate) pair: PairState,
}

pub(crate) fn pair_item(c: &ConnectorRef, p: &PairState, expires_at: i64) -> PairItem {
    PairItem {
        pk: workspace_pk(&c.workspace),
        sk: pair_sk(c, &p.account_id, &p.service_key),
        expires_at,
        pair: p.clone(),
    }
}
