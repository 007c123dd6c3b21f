//! Usage sync state in the project's table: the per-connector run slot with its worker lease, the
//! on-demand cool-down, run records, and the last values Gradient accepted.
//!
//! Times that decide who may run (slot, lease, cool-down) are epoch **milliseconds**
//! (`slotExpiresAtMs`, `leaseExpiresAtMs`, `lastRequestMs`) so that short lease TTLs behave; the
//! TTL attribute `expiresAt` is epoch seconds, as DynamoDB requires.

use crate::connectors::ws_pk;
use crate::error::{is_condition_failed, serde_error, store_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use psa_domain::ports::{LastSent, Lease, RunSlots, SentReading, SlotClaim, StoreError, SyncRuns};
use psa_domain::{RunId, SyncRun, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SLOT_SK: &str = "SLOT#gradient";
const COOLDOWN_SK: &str = "COOLDOWN#gradient";
const RUN_PREFIX: &str = "RUN#";
const LAST_PREFIX: &str = "LAST#";

/// How long past its expiry a slot item lingers before TTL removes it (it is dead data by then).
const SLOT_TTL_SLACK_S: u64 = 24 * 3600;
/// How far past the lease a worker's lease pushes the slot: a worker that drops its lease and
/// enqueues a continuation keeps the slot while the message is in flight; a worker that died
/// blocks the connector at most this long after its lease ends.
const SLOT_GRACE_AFTER_LEASE: Duration = Duration::from_secs(3600);
/// Run history retention: a run record expires 90 days after it finished (or was queued).
const RUN_RETENTION_S: i64 = 90 * 24 * 3600;
/// Longest cursor [`decode_cursor`] accepts.
const MAX_CURSOR_LEN: usize = 200;
/// Items per BatchWriteItem (the DynamoDB limit).
const BATCH: usize = 25;
/// Attempts per batch before unprocessed writes become an error.
const BATCH_ATTEMPTS: u32 = 6;
/// Attempts of the read-after-failed-write loops (the item may change in between).
const RACE_ATTEMPTS: u32 = 3;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// TTL value (epoch seconds) for a slot that expires at `expires_ms`.
fn slot_ttl(expires_ms: u64) -> u64 {
    expires_ms / 1000 + 1 + SLOT_TTL_SLACK_S
}

/// True when a write failed only because its condition did not hold (any operation).
fn attr_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn attr_n(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn run_sk(run: &RunId) -> String {
    format!("{RUN_PREFIX}{run}")
}

fn last_sk(account_id: &str, service_key: &str) -> String {
    format!("{LAST_PREFIX}{account_id}#{service_key}")
}

/// The opaque `nextCursor` of a run page: URL-safe base64 (no padding) of the last sort key.
pub fn encode_cursor(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(sk)
}

/// The sort key (`RUN#<runId>`) a run-list cursor stands for; `None` for anything that is not a
/// cursor this store issued (too long, not base64, not a run key). The API validates cursors with
/// this before calling [`SyncRuns::list_runs`] and answers 400 for `None`.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let sk = String::from_utf8(bytes).ok()?;
    let run = sk.strip_prefix(RUN_PREFIX)?;
    RunId::parse(run).ok()?;
    Some(sk)
}

#[derive(Serialize, Deserialize)]
struct RunItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    run: SyncRun,
}

impl RunItem {
    fn new(run: &SyncRun) -> Self {
        let at = run.finished_at.unwrap_or(run.queued_at);
        Self {
            pk: ws_pk(&run.workspace_id),
            sk: run_sk(&run.run_id),
            expires_at: at.unix_timestamp() + RUN_RETENTION_S,
            run: run.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LastItem {
    pk: String,
    sk: String,
    account_id: String,
    service_key: String,
    service_id: String,
    count: u64,
    run_id: RunId,
}

/// Run slots, leases, cool-downs, run records and last-sent values in the project's table.
#[derive(Clone, Debug)]
pub struct DynamoSync {
    client: Client,
    table: String,
}

impl DynamoSync {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(
        &self,
        pk: String,
        sk: &str,
        what: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(what, e))?;
        Ok(out.item)
    }

    /// Writes `requests` 25 at a time, retrying unprocessed items with a short bounded backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>, what: &str) -> Result<(), StoreError> {
        let mut requests = requests;
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(BATCH));
            let mut pending = std::mem::replace(&mut requests, rest);
            let mut attempt = 0;
            loop {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| store_error(what, e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt >= BATCH_ATTEMPTS {
                    return Err(StoreError(format!(
                        "{what}: {} writes still unprocessed after {BATCH_ATTEMPTS} attempts",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RunSlots for DynamoSync {
    /// Takes the slot when it is absent, or expired with no live lease (the lease fields of the
    /// previous holder are removed); when it is already this run's, pushes its expiry to
    /// now + `ttl` if that is later. Otherwise answers the holder.
    async fn claim_slot(
        &self,
        workspace: &WorkspaceId,
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
                .key("pk", s(ws_pk(workspace)))
                .key("sk", s(SLOT_SK))
                .update_expression(
                    "SET runId = :run, slotExpiresAtMs = :exp, expiresAt = :ttl \
                     REMOVE leaseOwner, leaseExpiresAtMs",
                )
                .condition_expression(
                    "attribute_not_exists(pk) OR (slotExpiresAtMs < :now AND \
                     (attribute_not_exists(leaseExpiresAtMs) OR leaseExpiresAtMs < :now))",
                )
                .expression_attribute_values(":run", s(run.as_str()))
                .expression_attribute_values(":exp", n(expires))
                .expression_attribute_values(":ttl", n(slot_ttl(expires)))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(SlotClaim::Claimed),
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(store_error("claim run slot", e)),
            }
            let Some(item) = self.get(ws_pk(workspace), SLOT_SK, "read run slot").await? else {
                continue; // released in between: try again
            };
            let holder = attr_s(&item, "runId").unwrap_or_default();
            if holder != run.as_str() {
                match RunId::parse(holder) {
                    Ok(other) => return Ok(SlotClaim::Busy(other)),
                    Err(_) => {
                        return Err(StoreError(format!(
                            "run slot of {workspace} holds an invalid run id"
                        )));
                    }
                }
            }
            // Already ours: extend (never shorten) the slot.
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(ws_pk(workspace)))
                .key("sk", s(SLOT_SK))
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
                    let item = self.get(ws_pk(workspace), SLOT_SK, "read run slot").await?;
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
            "run slot of {workspace} kept changing; gave up after {RACE_ATTEMPTS} attempts"
        )))
    }

    async fn release_slot(&self, workspace: &WorkspaceId, run: &RunId) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(ws_pk(workspace)))
            .key("sk", s(SLOT_SK))
            .condition_expression("runId = :run")
            .expression_attribute_values(":run", s(run.as_str()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("release run slot", e)),
        }
    }

    /// One conditional update takes the lease (and creates the slot if there is none); a second
    /// one raises the slot's expiry to lease end + 1 h when it is earlier (DynamoDB has no `max`
    /// in update expressions). A slot with a live lease is never taken over by `claim_slot`, so
    /// the lease holds even between the two writes.
    async fn take_lease(
        &self,
        workspace: &WorkspaceId,
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
                .key("pk", s(ws_pk(workspace)))
                .key("sk", s(SLOT_SK))
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
                        .key("pk", s(ws_pk(workspace)))
                        .key("sk", s(SLOT_SK))
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
            let Some(item) = self.get(ws_pk(workspace), SLOT_SK, "read run slot").await? else {
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
                    "run slot of {workspace} holds an invalid run id"
                ))),
            };
        }
        Err(StoreError(format!(
            "run slot of {workspace} kept changing; gave up after {RACE_ATTEMPTS} attempts"
        )))
    }

    async fn drop_lease(
        &self,
        workspace: &WorkspaceId,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ws_pk(workspace)))
            .key("sk", s(SLOT_SK))
            .update_expression("REMOVE leaseOwner, leaseExpiresAtMs")
            .condition_expression("leaseOwner = :me AND runId = :run")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":run", s(run.as_str()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("drop worker lease", e)),
        }
    }

    /// A request is allowed once `cooldown` has fully elapsed since the last allowed one
    /// (`lastRequestMs <= now - cooldown`); otherwise the exact time left (always > 0).
    async fn claim_cooldown(
        &self,
        workspace: &WorkspaceId,
        cooldown: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let cd = ms(cooldown);
        for _ in 0..RACE_ATTEMPTS {
            let now = now_ms();
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(ws_pk(workspace)))
                .item("sk", s(COOLDOWN_SK))
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
                .get(ws_pk(workspace), COOLDOWN_SK, "read on-demand cool-down")
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
            "on-demand cool-down of {workspace} kept changing; gave up after {RACE_ATTEMPTS} attempts"
        )))
    }
}

#[async_trait]
impl SyncRuns for DynamoSync {
    async fn create_run(&self, run: &SyncRun) -> Result<bool, StoreError> {
        let item = serde_dynamo::to_item(RunItem::new(run)).map_err(|e| serde_error("run", e))?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("create run", e)),
        }
    }

    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(RunItem::new(run)).map_err(|e| serde_error("run", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("put run", e))?;
        Ok(())
    }

    async fn get_run(
        &self,
        workspace: &WorkspaceId,
        run: &RunId,
    ) -> Result<Option<SyncRun>, StoreError> {
        self.get(ws_pk(workspace), &run_sk(run), "get run")
            .await?
            .map(|item| {
                serde_dynamo::from_item::<_, RunItem>(item)
                    .map(|i| i.run)
                    .map_err(|e| serde_error("run item", e))
            })
            .transpose()
    }

    /// A cursor [`decode_cursor`] rejects is an error whose text starts with `invalid cursor`.
    async fn list_runs(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<SyncRun>, Option<String>), StoreError> {
        let start = match cursor {
            None => None,
            Some(c) => {
                let sk = decode_cursor(c)
                    .ok_or_else(|| StoreError("invalid cursor for the run list".into()))?;
                Some(HashMap::from([
                    ("pk".to_owned(), s(ws_pk(workspace))),
                    ("sk".to_owned(), s(sk)),
                ]))
            }
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :run)")
            .expression_attribute_values(":p", s(ws_pk(workspace)))
            .expression_attribute_values(":run", s(RUN_PREFIX))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| store_error("list runs", e))?;
        let items: Vec<RunItem> = serde_dynamo::from_items(out.items.unwrap_or_default())
            .map_err(|e| serde_error("run item", e))?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| attr_s(k, "sk"))
            .map(encode_cursor);
        Ok((items.into_iter().map(|i| i.run).collect(), next))
    }
}

#[async_trait]
impl LastSent for DynamoSync {
    async fn last_sent(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<BTreeMap<(String, String), SentReading>, StoreError> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":p", s(ws_pk(workspace)))
                .expression_attribute_values(":s", s(LAST_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("query last-sent values", e))?;
            let items: Vec<LastItem> = serde_dynamo::from_items(page.items.unwrap_or_default())
                .map_err(|e| serde_error("last-sent item", e))?;
            for i in items {
                out.insert(
                    (i.account_id.clone(), i.service_key.clone()),
                    SentReading {
                        account_id: i.account_id,
                        service_key: i.service_key,
                        service_id: i.service_id,
                        count: i.count,
                        run_id: i.run_id,
                    },
                );
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn record_sent(
        &self,
        workspace: &WorkspaceId,
        readings: &[SentReading],
    ) -> Result<(), StoreError> {
        // One write per key per batch (DynamoDB rejects duplicates): the last reading wins.
        let mut by_key = BTreeMap::new();
        for r in readings {
            let item = LastItem {
                pk: ws_pk(workspace),
                sk: last_sk(&r.account_id, &r.service_key),
                account_id: r.account_id.clone(),
                service_key: r.service_key.clone(),
                service_id: r.service_id.clone(),
                count: r.count,
                run_id: r.run_id.clone(),
            };
            by_key.insert(item.sk.clone(), item);
        }
        let mut requests = Vec::with_capacity(by_key.len());
        for item in by_key.into_values() {
            let item = serde_dynamo::to_item(item).map_err(|e| serde_error("last-sent", e))?;
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError(format!("last-sent put request: {e}")))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests, "record last-sent values").await
    }

    async fn forget_sent(
        &self,
        workspace: &WorkspaceId,
        keys: &[(String, String)],
    ) -> Result<(), StoreError> {
        let sks: std::collections::BTreeSet<String> =
            keys.iter().map(|(a, k)| last_sk(a, k)).collect();
        let mut requests = Vec::with_capacity(sks.len());
        for sk in sks {
            let del = DeleteRequest::builder()
                .key("pk", s(ws_pk(workspace)))
                .key("sk", s(sk))
                .build()
                .map_err(|e| StoreError(format!("last-sent delete request: {e}")))?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        self.batch_write(requests, "forget last-sent values").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = encode_cursor("RUN#20260101T000000.000Z-abc");
        assert_eq!(
            decode_cursor(&c).as_deref(),
            Some("RUN#20260101T000000.000Z-abc")
        );
        assert!(!c.contains('='));
        assert_eq!(decode_cursor(""), None);
        assert_eq!(decode_cursor("!!!"), None);
        assert_eq!(decode_cursor(&encode_cursor("CONNECTOR#gradient")), None);
        assert_eq!(decode_cursor(&encode_cursor("RUN#")), None);
        assert_eq!(decode_cursor(&encode_cursor("RUN#a b")), None);
        assert_eq!(decode_cursor(&"A".repeat(201)), None);
    }
}
