//! The run slot of a connector incarnation with its worker lease, and the on-demand cool-down
//! (`SLOT#<type>#<inc>`, `COOLDOWN#<type>`).
//!
//! Times that decide who may run (slot, lease, cool-down) are epoch **milliseconds**
//! (`slotExpiresAtMs`, `leaseExpiresAtMs`, `lastRequestMs`) so that short lease TTLs behave; the
//! TTL attribute `expiresAt` is epoch seconds, as DynamoDB requires.

use crate::attrs::{attr_n, attr_s, ms, n, now_ms, s};
use crate::error::{done_unless_failed, is_condition_failed, store_error};
use crate::keys::{cooldown_sk, slot_sk, slots_prefix, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ports::{Lease, RunSlots, SlotClaim, StoreError};
use psa_domain::{ConnectorRef, RunId};
use std::time::Duration;

/// How long past its expiry a slot item lingers before TTL removes it (it is dead data by then).
const SLOT_TTL_SLACK_S: u64 = 24 * 3600;
/// How far past the lease a worker's lease pushes the slot: a worker that drops its lease and
/// enqueues a continuation keeps the slot while the message is in flight; a worker that died
/// blocks the connector at most this long after its lease ends.
const SLOT_GRACE_AFTER_LEASE: Duration = Duration::from_secs(3600);
/// Attempts of the read-after-failed-write loops (the item may change in between).
const RACE_ATTEMPTS: u32 = 3;

/// TTL value (epoch seconds) for a slot that expires at `expires_ms`.
fn slot_ttl(expires_ms: u64) -> u64 {
    expires_ms / 1000 + 1 + SLOT_TTL_SLACK_S
}

#[async_trait]
impl RunSlots for DynamoSync {
    /// Takes the slot when it is absent, or expired with no live lease (the lease fields of the
    /// previous holder are removed); when it is already this run's, pushes its expiry to
    /// now + `ttl` if that is later. Otherwise answers the holder.
    async fn claim_slot(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        ttl: Duration,
    ) -> Result<SlotClaim, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let now = now_ms();
            let expires = now.saturating_add(ms(ttl));
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(workspace_pk(&connector.workspace)))
                .key("sk", s(slot_sk(connector)))
                .update_expression(
                    "SET runId = :run, slotExpiresAtMs = :exp, expiresAt = :ttl, \
                     claimedAtMs = :now REMOVE leaseOwner, leaseExpiresAtMs",
                )
                .condition_expression(
                    "attribute_not_exists(pk) OR (slotExpiresAtMs < :now AND \
                     (attribute_not_exists(leaseExpiresAtMs) OR leaseExpiresAtMs < :now))",
                )
                .expression_attribute_values(":run", s(run.as_str()))
                .expression_attribute_values(":exp", n(expires))
                .expression_attribute_values(":ttl", n(slot_ttl(expires)))
                .expression_attribute_values(":now", n(now))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
                .await;
            match res {
                Ok(out) => {
                    let before = out.attributes.as_ref().and_then(|a| attr_s(a, "runId"));
                    return Ok(match before {
                        Some(old) if old != run.as_str() => match RunId::parse(old) {
                            Ok(old) => SlotClaim::TookOver(old),
                            Err(_) => SlotClaim::Claimed,
                        },
                        _ => SlotClaim::Claimed,
                    });
                }
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(store_error("claim run slot", e)),
            }
            let Some(item) = self
                .get(
                    workspace_pk(&connector.workspace),
                    &slot_sk(connector),
                    "read run slot",
                )
                .await?
            else {
                continue; // released in between: try again
            };
            let holder = attr_s(&item, "runId").unwrap_or_default();
            if holder != run.as_str() {
                match RunId::parse(holder) {
                    Ok(other) => {
                        let claimed = attr_n(&item, "claimedAtMs").unwrap_or(now);
                        let held = Duration::from_millis(now.saturating_sub(claimed));
                        return Ok(SlotClaim::Busy(other, held));
                    }
                    Err(_) => {
                        return Err(StoreError(format!(
                            "run slot of {} holds an invalid run id",
                            connector.workspace
                        )));
                    }
                }
            }
            // Already ours: extend (never shorten) the slot.
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(workspace_pk(&connector.workspace)))
                .key("sk", s(slot_sk(connector)))
                .update_expression("SET slotExpiresAtMs = :exp, expiresAt = :ttl")
                .condition_expression("runId = :run AND slotExpiresAtMs < :exp")
                .expression_attribute_values(":run", s(run.as_str()))
                .expression_attribute_values(":exp", n(expires))
                .expression_attribute_values(":ttl", n(slot_ttl(expires)))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(SlotClaim::Claimed),
                Err(e) if is_condition_failed(&e) => {
                    // Either it already lasts longer (still ours) or it changed hands: re-check.
                    let item = self
                        .get(
                            workspace_pk(&connector.workspace),
                            &slot_sk(connector),
                            "read run slot",
                        )
                        .await?;
                    if item
                        .as_ref()
                        .and_then(|i| attr_s(i, "runId"))
                        .is_some_and(|h| h == run.as_str())
                    {
                        return Ok(SlotClaim::Claimed);
                    }
                }
                Err(e) => return Err(store_error("extend run slot", e)),
            }
        }
        Err(StoreError(format!(
            "run slot of {} kept changing; gave up after {RACE_ATTEMPTS} attempts",
            connector.workspace
        )))
    }

    async fn release_slot(&self, connector: &ConnectorRef, run: &RunId) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(slot_sk(connector)))
            .condition_expression("runId = :run")
            .expression_attribute_values(":run", s(run.as_str()))
            .send()
            .await;
        done_unless_failed(res, "release run slot")
    }

    /// One conditional update takes the lease (and creates the slot if there is none); a second
    /// one raises the slot's expiry to lease end + 1 h when it is earlier (DynamoDB has no `max`
    /// in update expressions). A slot with a live lease is never taken over by `claim_slot`, so
    /// the lease holds even between the two writes.
    async fn take_lease(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let now = now_ms();
            let lease_end = now.saturating_add(ms(ttl));
            let slot_end = lease_end.saturating_add(ms(SLOT_GRACE_AFTER_LEASE));
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(workspace_pk(&connector.workspace)))
                .key("sk", s(slot_sk(connector)))
                .update_expression(
                    "SET runId = :run, leaseOwner = :me, leaseExpiresAtMs = :lease, \
                     slotExpiresAtMs = if_not_exists(slotExpiresAtMs, :slot), \
                     expiresAt = if_not_exists(expiresAt, :ttl)",
                )
                .condition_expression(
                    "attribute_not_exists(pk) OR (runId = :run AND \
                     (attribute_not_exists(leaseOwner) OR leaseExpiresAtMs < :now OR leaseOwner = :me))",
                )
                .expression_attribute_values(":run", s(run.as_str()))
                .expression_attribute_values(":me", s(owner))
                .expression_attribute_values(":lease", n(lease_end))
                .expression_attribute_values(":slot", n(slot_end))
                .expression_attribute_values(":ttl", n(slot_ttl(slot_end)))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match res {
                Ok(_) => {
                    let res = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .key("pk", s(workspace_pk(&connector.workspace)))
                        .key("sk", s(slot_sk(connector)))
                        .update_expression("SET slotExpiresAtMs = :slot, expiresAt = :ttl")
                        .condition_expression("runId = :run AND slotExpiresAtMs < :slot")
                        .expression_attribute_values(":run", s(run.as_str()))
                        .expression_attribute_values(":slot", n(slot_end))
                        .expression_attribute_values(":ttl", n(slot_ttl(slot_end)))
                        .send()
                        .await;
                    return match res {
                        Ok(_) => Ok(Lease::Acquired),
                        Err(e) if is_condition_failed(&e) => Ok(Lease::Acquired),
                        Err(e) => Err(store_error("extend run slot", e)),
                    };
                }
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(store_error("take worker lease", e)),
            }
            let Some(item) = self
                .get(
                    workspace_pk(&connector.workspace),
                    &slot_sk(connector),
                    "read run slot",
                )
                .await?
            else {
                continue; // released in between: try again
            };
            let holder = attr_s(&item, "runId").unwrap_or_default();
            if holder == run.as_str() {
                let live = attr_s(&item, "leaseOwner").is_some()
                    && attr_n(&item, "leaseExpiresAtMs").is_some_and(|t| t >= now_ms());
                if !live {
                    continue; // the lease ended in between: try again
                }
                return Ok(Lease::HeldByOther);
            }
            return match RunId::parse(holder) {
                Ok(other) => Ok(Lease::OtherRun(other)),
                Err(_) => Err(StoreError(format!(
                    "run slot of {} holds an invalid run id",
                    connector.workspace
                ))),
            };
        }
        Err(StoreError(format!(
            "run slot of {} kept changing; gave up after {RACE_ATTEMPTS} attempts",
            connector.workspace
        )))
    }

    async fn drop_lease(
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
            .key("sk", s(slot_sk(connector)))
            .update_expression("REMOVE leaseOwner, leaseExpiresAtMs")
            .condition_expression("leaseOwner = :me AND runId = :run")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":run", s(run.as_str()))
            .send()
            .await;
        done_unless_failed(res, "drop worker lease")
    }

    /// A request is allowed once `cooldown` has fully elapsed since the last allowed one
    /// (`lastRequestMs <= now - cooldown`); otherwise the exact time left (always > 0).
    async fn claim_cooldown(
        &self,
        connector: &ConnectorRef,
        cooldown: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let cd = ms(cooldown);
        for _ in 0..RACE_ATTEMPTS {
            let now = now_ms();
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(workspace_pk(&connector.workspace)))
                .item("sk", s(cooldown_sk(connector)))
                .item("lastRequestMs", n(now))
                .item("expiresAt", n(slot_ttl(now.saturating_add(cd))))
                .condition_expression("attribute_not_exists(pk) OR lastRequestMs <= :cutoff")
                .expression_attribute_values(":cutoff", n(now.saturating_sub(cd)))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(None),
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(store_error("claim on-demand cool-down", e)),
            }
            let item = self
                .get(
                    workspace_pk(&connector.workspace),
                    &cooldown_sk(connector),
                    "read on-demand cool-down",
                )
                .await?;
            let Some(last) = item.as_ref().and_then(|i| attr_n(i, "lastRequestMs")) else {
                continue;
            };
            let remaining = last.saturating_add(cd).saturating_sub(now_ms());
            if remaining > 0 {
                return Ok(Some(Duration::from_millis(remaining)));
            }
        }
        Err(StoreError(format!(
            "on-demand cool-down of {} kept changing; gave up after {RACE_ATTEMPTS} attempts",
            connector.workspace
        )))
    }

    /// One strongly consistent query of the type's slots (`SLOT#<type>#`): usually one item.
    async fn lease_of_other_incarnation(
        &self,
        connector: &ConnectorRef,
    ) -> Result<Option<Duration>, StoreError> {
        #[derive(serde::Deserialize)]
        struct SlotLease {
            sk: String,
            #[serde(rename = "leaseExpiresAtMs")]
            lease_expires_at_ms: Option<u64>,
        }
        let prefix = slots_prefix(connector.kind);
        let own = slot_sk(connector);
        let slots: Vec<SlotLease> = self
            .query_all(
                workspace_pk(&connector.workspace),
                &prefix,
                "read run slots",
            )
            .await?;
        let now = now_ms();
        Ok(slots
            .into_iter()
            .filter(|slot| slot.sk != own)
            .filter_map(|slot| slot.lease_expires_at_ms)
            .filter(|until| *until >= now)
            .max()
            .map(|until| Duration::from_millis(until - now)))
    }

    /// The slot goes unless a live lease holds it: the job holding it still writes the run, and
    /// ends it (cancelled, when it sees the connector gone), which frees the slot. The cool-down
    /// goes in any case.
    async fn clear(&self, connector: &ConnectorRef) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(slot_sk(connector)))
            .condition_expression(
                "attribute_not_exists(leaseExpiresAtMs) OR leaseExpiresAtMs < :now",
            )
            .expression_attribute_values(":now", n(now_ms()))
            .send()
            .await;
        done_unless_failed(res, "clear run slot")?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(cooldown_sk(connector)))
            .send()
            .await
            .map_err(|e| store_error("clear cool-down", e))?;
        Ok(())
    }
}
