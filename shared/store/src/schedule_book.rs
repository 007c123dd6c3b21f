//! The daily schedule's records: per firing its progress and lease (`SCHEDULE#gradient` /
//! `FIRING#<runId>`), the newest firing (`SCHEDULE#gradient` / `LATEST`), and per run of a
//! firing a marker that its job went out (`WS#<ws>` / `QUEUED#<type>#<inc>#<runId>`). All expire
//! after three days.

use crate::attrs::{attr_s, n, now_ms, s};
use crate::error::{done_unless_failed, is_condition_failed, store_error};
use crate::items::{PROGRESS, RUN_STATUS, progress_from_json, progress_json, run_status_of};
use crate::keys::{LATEST_FIRING_SK, SCHEDULE_PK, firing_sk, queued_sk, run_sk, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest,
};
use psa_domain::ports::StoreError;
use psa_domain::ports::{FiringClaim, ScheduleBook, ScheduleProgress, ScheduledRun};
use psa_domain::{ConnectorRef, RunId, RunStatus};
use std::collections::HashMap;
use time::OffsetDateTime;

const KEEP_S: u64 = 3 * 86_400;
/// Keys per BatchGetItem (the DynamoDB limit).
const GET_BATCH: usize = 100;

fn ms_of(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn ttl() -> u64 {
    now_ms() / 1000 + KEEP_S
}

fn progress_of(
    item: &HashMap<String, AttributeValue>,
) -> Result<Option<ScheduleProgress>, StoreError> {
    attr_s(item, PROGRESS).map(progress_from_json).transpose()
}

#[async_trait]
impl ScheduleBook for DynamoSync {
    async fn claim_firing(
        &self,
        run: &RunId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<FiringClaim, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(SCHEDULE_PK))
            .key("sk", s(firing_sk(run)))
            .update_expression("SET leaseOwner = :o, leaseUntilMs = :u, expiresAt = :ttl")
            .condition_expression(
                "attribute_not_exists(leaseUntilMs) OR leaseUntilMs < :now OR leaseOwner = :o",
            )
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(ms_of(until)))
            .expression_attribute_values(":now", n(now_ms()))
            .expression_attribute_values(":ttl", n(ttl()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match res {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_condition_failed(&e) => return Ok(FiringClaim::Busy),
            Err(e) => return Err(store_error("claim schedule firing", e)),
        };
        // The newest firing, for the resume schedule (never moved back by a late old event).
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(SCHEDULE_PK))
            .item("sk", s(LATEST_FIRING_SK))
            .item("runId", s(run.as_str()))
            .condition_expression("attribute_not_exists(runId) OR runId <= :run")
            .expression_attribute_values(":run", s(run.as_str()))
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(store_error("record latest schedule firing", e)),
        }
        Ok(FiringClaim::Mine(progress_of(&item)?))
    }

    async fn save_firing(
        &self,
        run: &RunId,
        owner: &str,
        until: OffsetDateTime,
        progress: &ScheduleProgress,
    ) -> Result<bool, StoreError> {
        let body = progress_json(progress)?;
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(SCHEDULE_PK))
            .key("sk", s(firing_sk(run)))
            .update_expression("SET #progress = :p, leaseUntilMs = :u")
            .expression_attribute_names("#progress", PROGRESS)
            .condition_expression("leaseOwner = :o")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":p", s(body))
            .expression_attribute_values(":u", n(ms_of(until)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("save schedule progress", e)),
        }
    }

    async fn release_firing(&self, run: &RunId, owner: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(SCHEDULE_PK))
            .key("sk", s(firing_sk(run)))
            .update_expression("REMOVE leaseOwner, leaseUntilMs")
            .condition_expression("leaseOwner = :o")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        done_unless_failed(res, "release schedule firing")
    }

    async fn latest_firing(&self) -> Result<Option<RunId>, StoreError> {
        let item = self
            .get(
                SCHEDULE_PK.into(),
                LATEST_FIRING_SK,
                "read latest schedule firing",
            )
            .await?;
        item.as_ref()
            .and_then(|i| attr_s(i, "runId"))
            .map(|r| {
                RunId::parse(r).map_err(|e| StoreError(format!("latest schedule firing: {e}")))
            })
            .transpose()
    }

    async fn scheduled_runs(
        &self,
        run: &RunId,
        connectors: &[ConnectorRef],
    ) -> Result<HashMap<ConnectorRef, ScheduledRun>, StoreError> {
        let mut by_key: HashMap<(String, String), (ConnectorRef, bool)> = HashMap::new();
        for c in connectors {
            let pk = workspace_pk(&c.workspace);
            by_key.insert((pk.clone(), run_sk(c, run)), (c.clone(), false));
            by_key.insert((pk, queued_sk(c, run)), (c.clone(), true));
        }
        let keys: Vec<HashMap<String, AttributeValue>> = by_key
            .keys()
            .map(|(pk, sk)| HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]))
            .collect();
        let mut found: Vec<HashMap<String, AttributeValue>> = Vec::new();
        for chunk in keys.chunks(GET_BATCH) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .projection_expression("pk, sk, #s")
                    .expression_attribute_names("#s", RUN_STATUS)
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError(format!("batch get keys: {e}")))?,
            );
            for attempt in 0u32.. {
                let Some(req) = pending.take() else { break };
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(|e| store_error("read scheduled runs", e))?;
                if let Some(mut r) = out.responses {
                    found.extend(r.remove(&self.table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    if attempt >= 6 {
                        return Err(StoreError(
                            "read scheduled runs: keys left unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        let mut runs: HashMap<ConnectorRef, (Option<RunStatus>, bool)> = HashMap::new();
        for item in found {
            let (Some(pk), Some(sk)) = (attr_s(&item, "pk"), attr_s(&item, "sk")) else {
                continue;
            };
            let Some((c, marker)) = by_key.get(&(pk.to_owned(), sk.to_owned())) else {
                continue;
            };
            let entry = runs.entry(c.clone()).or_default();
            if *marker {
                entry.1 = true;
            } else {
                let status = run_status_of(&item);
                entry.0 = Some(status.unwrap_or(RunStatus::Queued));
            }
        }
        Ok(runs
            .into_iter()
            .filter_map(|(c, (status, enqueued))| {
                status.map(|status| (c, ScheduledRun { status, enqueued }))
            })
            .collect())
    }

    async fn mark_enqueued(
        &self,
        run: &RunId,
        connectors: &[ConnectorRef],
    ) -> Result<(), StoreError> {
        let expires = ttl();
        let requests = connectors
            .iter()
            .map(|c| {
                let put = PutRequest::builder()
                    .item("pk", s(workspace_pk(&c.workspace)))
                    .item("sk", s(queued_sk(c, run)))
                    .item("expiresAt", n(expires))
                    .build()
                    .map_err(|e| StoreError(format!("queued marker: {e}")))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests, "record queued jobs").await
    }
}
