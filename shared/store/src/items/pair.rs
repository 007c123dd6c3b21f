//! A pair state's item (`PAIR#<type>#<inc>#<accountId>#<serviceKey>`): the last value the PSA
//! accepted for an (account, service) pair and the latest attempt, kept 400 days past its last
//! write (a full resend, at most yearly, renews it). Written as the store's own [`PairRecord`].

use crate::attrs::DAY_S;
use crate::keys::{pair_sk, workspace_pk};
use psa_domain::sync::{Accepted, AttemptOutcome};
use psa_domain::{ConnectorRef, PairState, RunId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A pair state lives 400 days past its last write; a full resend (at most yearly) renews it.
pub(crate) const PAIR_RETENTION_S: i64 = 400 * DAY_S;

#[derive(Serialize, Deserialize)]
pub(crate) struct PairItem {
    pk: String,
    pub(crate) sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    pair: PairRecord,
}

impl PairItem {
    pub(crate) fn into_pair(self) -> PairState {
        self.pair.into()
    }
}

pub(crate) fn pair_item(c: &ConnectorRef, p: &PairState, expires_at: i64) -> PairItem {
    PairItem {
        pk: workspace_pk(&c.workspace),
        sk: pair_sk(c, &p.account_id, &p.service_key),
        expires_at,
        pair: p.into(),
    }
}

#[derive(Serialize, Deserialize)]
struct PairRecord {
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(rename = "serviceKey")]
    service_key: String,
    #[serde(rename = "accountName")]
    account_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted: Option<AcceptedRecord>,
    #[serde(rename = "lastAttempt")]
    last_attempt: AttemptOutcome,
    #[serde(rename = "lastAttemptAt", with = "time::serde::rfc3339")]
    last_attempt_at: OffsetDateTime,
}

impl From<&PairState> for PairRecord {
    fn from(p: &PairState) -> Self {
        Self {
            account_id: p.account_id.clone(),
            service_key: p.service_key.clone(),
            account_name: p.account_name.clone(),
            accepted: p.accepted.as_ref().map(AcceptedRecord::from),
            last_attempt: p.last_attempt,
            last_attempt_at: p.last_attempt_at,
        }
    }
}

impl From<PairRecord> for PairState {
    fn from(p: PairRecord) -> Self {
        Self {
            account_id: p.account_id,
            service_key: p.service_key,
            account_name: p.account_name,
            accepted: p.accepted.map(Accepted::from),
            last_attempt: p.last_attempt,
            last_attempt_at: p.last_attempt_at,
        }
    }
}

/// The last value the PSA accepted for the pair, and where and when.
#[derive(Serialize, Deserialize)]
struct AcceptedRecord {
    value: u64,
    #[serde(rename = "serviceId")]
    service_id: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(rename = "runId")]
    run_id: RunId,
}

impl From<&Accepted> for AcceptedRecord {
    fn from(a: &Accepted) -> Self {
        Self {
            value: a.value,
            service_id: a.service_id.clone(),
            at: a.at,
            run_id: a.run_id.clone(),
        }
    }
}

impl From<AcceptedRecord> for Accepted {
    fn from(a: AcceptedRecord) -> Self {
        Self {
            value: a.value,
            service_id: a.service_id,
            at: a.at,
            run_id: a.run_id,
        }
    }
}
