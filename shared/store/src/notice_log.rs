//! Which runs were emailed (contract *Notifications*: at most one email per run id). One item per
//! run, `NOTICE#<type>#<inc>#<runId>`: `state` `sending` (with its `owner` and lease end
//! `leaseExpiresAtMs`) while a delivery sends it, `sent` afterwards. Kept 7 days — far beyond the
//! event's retries (at most a day).

use crate::attrs::{attr_n, attr_s, ms, n, now_ms, s};
use crate::error::{done_unless_failed, is_condition_failed, store_error};
use crate::keys::{notice_sk, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ports::{NoticeClaim, NoticeLog, StoreError};
use psa_domain::{ConnectorRef, RunId};
use std::time::Duration;

const NOTICE_RETENTION_S: u64 = 7 * 24 * 3600;
const SENDING: &str = "sending";
const SENT: &str = "sent";
/// Attempts of the claim-then-read loop (the item may change in between).
const RACE_ATTEMPTS: u32 = 3;

#[async_trait]
impl NoticeLog for DynamoSync {
    async fn claim_notice(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<NoticeClaim, StoreError> {
        let (pk, sk) = (
            workspace_pk(&connector.workspace),
            notice_sk(connector, run),
        );
        for _ in 0..RACE_ATTEMPTS {
            let now = now_ms();
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk.clone()))
                .item("sk", s(sk.clone()))
                .item("state", s(SENDING))
                .item("owner", s(owner))
                .item("leaseExpiresAtMs", n(now.saturating_add(ms(lease))))
                .item("expiresAt", n(now / 1000 + NOTICE_RETENTION_S))
                // Free, or a sender whose lease ended without a word (it died mid-send).
                .condition_expression(
                    "attribute_not_exists(pk) OR (#state = :sending AND leaseExpiresAtMs < :now)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":sending", s(SENDING))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(NoticeClaim::Claimed),
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(store_error("claim a run's email", e)),
            }
            let Some(item) = self.get(pk.clone(), &sk, "read a run's email").await? else {
                continue; // released in between: try again
            };
            match attr_s(&item, "state") {
                Some(SENT) => return Ok(NoticeClaim::Sent),
                _ if attr_n(&item, "leaseExpiresAtMs").is_some_and(|t| t >= now_ms()) => {
                    return Ok(NoticeClaim::Sending);
                }
                _ => {} // the lease ended in between: try again
            }
        }
        Err(StoreError(format!(
            "the claim on the email of run {run} kept changing; gave up after {RACE_ATTEMPTS} attempts"
        )))
    }

    async fn notice_sent(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(notice_sk(connector, run)))
            .update_expression("SET #state = :sent REMOVE leaseExpiresAtMs")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s(SENT))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Released in between (cannot happen to a live owner): nothing to mark.
            Err(e) if is_condition_failed(&e) => {
                tracing::warn!(%run, owner, "the claim on the run's email was gone when it was sent");
                Ok(())
            }
            Err(e) => Err(store_error("mark a run's email sent", e)),
        }
    }

    async fn release_notice(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(notice_sk(connector, run)))
            .condition_expression("#state = :sending AND #owner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":sending", s(SENDING))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        // A failed condition: another owner's now, or sent.
        done_unless_failed(res, "release a run's email")
    }
}
