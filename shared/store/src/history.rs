//! What runs leave behind in the project's table: run records (listed newest `queuedAt` first
//! through the `byStatus` index), the pair states of a connector
//! incarnation, the workspace's audit trail, and the deployment-wide record of PSA rejections.
//!
//! Every per-connector key carries `<type>#<incarnation>`, so a connector deleted and created
//! again never sees (or is changed by) what an older incarnation wrote.

use crate::connectors::ws_pk;
use crate::error::{is_condition_failed, serde_error, store_error};
use crate::sync::{DynamoSync, n, now_ms, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use psa_domain::ports::{
    AcceptedBy, AlertMemory, AlertRef, AuditLog, KeyHealth, Page, PageError, PairStates,
    PendingTicket, Rejected, Rejection, StoreError, SyncRuns,
};
use psa_domain::{AuditEvent, ConnectorRef, ConnectorType, PairState, RunId, SyncRun, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub(crate) const DAY_S: i64 = 24 * 3600;
/// A run record expires 90 days after it finished (or was queued).
const RUN_RETENTION_S: i64 = 90 * DAY_S;
/// A run's readings are kept 40 days (the contract asks for at least 35).
pub(crate) const READING_RETENTION_S: i64 = 40 * DAY_S;
/// A pair state lives 400 days past its last write; a full resend (at most yearly) renews it.
const PAIR_RETENTION_S: i64 = 400 * DAY_S;
/// Audit entries are kept 401 days (the contract asks for at least 400).
const AUDIT_RETENTION_S: i64 = 401 * DAY_S;
/// Longest cursor accepted.
const MAX_CURSOR_LEN: usize = 600;

/// The partition of one PSA's deployment-wide records (its vendor key's health here).
fn vendor_pk(psa: ConnectorType) -> String {
    format!("VENDOR#{}", psa.as_str())
}
const HEALTH_SK: &str = "KEYHEALTH";

pub(crate) fn now_s() -> i64 {
    (now_ms() / 1000) as i64
}

fn run_sk(c: &ConnectorRef, run: &RunId) -> String {
    format!("RUN#{}#{run}", c.key())
}

fn runs_index_pk(c: &ConnectorRef) -> String {
    format!("RUNS#{}#{}", c.workspace, c.key())
}

fn pairs_prefix(c: &ConnectorRef) -> String {
    format!("PAIR#{}#", c.key())
}

const AUDIT_PREFIX: &str = "AUDIT#";

/// The opaque cursor of a page: URL-safe base64 of the JSON of the last item's key.
pub(crate) fn encode_cursor(key: &HashMap<String, AttributeValue>) -> String {
    let plain: BTreeMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).expect("a string map serialises"))
}

/// The exclusive start key a cursor stands for, if it is one this store handed out for this list:
/// exactly the attributes `names`, `pk` equal to `pk`, `sk` starting with `sk_prefix`.
pub(crate) fn decode_cursor(
    cursor: &str,
    names: &[&str],
    pk: &str,
    sk_prefix: &str,
) -> Result<HashMap<String, AttributeValue>, PageError> {
    let bad = || PageError::InvalidCursor;
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let ok = map.len() == names.len()
        && names.iter().all(|k| map.contains_key(*k))
        && map.get("pk").map(String::as_str) == Some(pk)
        && map.get("sk").is_some_and(|v| v.starts_with(sk_prefix))
        // DynamoDB refuses an empty key attribute (a 500 otherwise, e.g. an edited gsi1sk)
        && map.values().all(|v| !v.is_empty());
    if !ok {
        return Err(bad());
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[derive(Serialize, Deserialize)]
pub(crate) struct RunItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    pub(crate) run: SyncRun,
}

impl RunItem {
    pub(crate) fn new(run: &SyncRun) -> Self {
        let c = run.connector();
        let at = run.finished_at.unwrap_or(run.queued_at);
        let queued_ms = run.queued_at.unix_timestamp_nanos() / 1_000_000;
        Self {
            pk: ws_pk(&run.workspace_id),
            sk: run_sk(&c, &run.run_id),
            gsi1pk: runs_index_pk(&c),
            gsi1sk: format!("{queued_ms:015}#{}", run.run_id),
            expires_at: at.unix_timestamp() + RUN_RETENTION_S,
            run: run.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PairItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    pair: PairState,
}

pub(crate) fn pair_item(c: &ConnectorRef, p: &PairState, expires_at: i64) -> PairItem {
    PairItem {
        pk: ws_pk(&c.workspace),
        sk: format!("{}{}#{}", pairs_prefix(c), p.account_id, p.service_key),
        expires_at,
        pair: p.clone(),
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct AuditItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    event: AuditEvent,
}

pub(crate) fn audit_item(ws: &WorkspaceId, sk: &str, event: &AuditEvent) -> AuditItem {
    AuditItem {
        pk: ws_pk(ws),
        sk: sk.to_owned(),
        expires_at: event.at.unix_timestamp() + AUDIT_RETENTION_S,
        event: event.clone(),
    }
}

fn put(item: HashMap<String, AttributeValue>) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError(format!("put request: {e}")))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

impl DynamoSync {
    /// Writes one item, replacing what was there.
    async fn put_one<T: Serialize>(&self, item: T, what: &str) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(item).map_err(|e| serde_error(what, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error(what, e))?;
        Ok(())
    }

    /// Writes `items` in batches; an item whose sort key repeats replaces the earlier one (DynamoDB
    /// refuses two writes of one key in a batch).
    pub(crate) async fn put_keyed<T: Serialize>(
        &self,
        items: impl Iterator<Item = T>,
        sk: impl Fn(&T) -> &String,
        what: &str,
    ) -> Result<(), StoreError> {
        let mut by_key = BTreeMap::new();
        for item in items {
            by_key.insert(sk(&item).clone(), item);
        }
        let mut requests = Vec::with_capacity(by_key.len());
        for item in by_key.into_values() {
            requests.push(put(
                serde_dynamo::to_item(item).map_err(|e| serde_error(what, e))?
            )?);
        }
        self.batch_write(requests, what).await
    }

    /// Every item of `pk` whose `sk` starts with `prefix`, in key order (strongly consistent).
    pub(crate) async fn query_all<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":p", s(pk.clone()))
                .expression_attribute_values(":s", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error(what, e))?;
            out.extend(
                serde_dynamo::from_items::<_, T>(page.items.unwrap_or_default())
                    .map_err(|e| serde_error(what, e))?,
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// One page of `limit` items of `pk`/`prefix` (optionally on the runs index, newest first),
    /// `next` is the key of the last item returned, present only when more items follow. Nothing
    /// is filtered after the query, so a page costs its size (one request of `limit + 1` items,
    /// more only when DynamoDB's 1 MB cap cuts a response).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn page<T: serde::de::DeserializeOwned>(
        &self,
        index: Option<&str>,
        pk: (&str, String),
        prefix: Option<(&str, String)>,
        key_names: &[&str],
        limit: u32,
        start: Option<HashMap<String, AttributeValue>>,
        forward: bool,
        what: &str,
    ) -> Result<Page<T>, StoreError> {
        let limit = limit.clamp(1, 1000) as usize;
        let mut items: Vec<(T, HashMap<String, AttributeValue>)> = Vec::new();
        let mut start = start;
        let condition = match &prefix {
            Some((name, _)) => format!("{} = :p AND begins_with({name}, :s)", pk.0),
            None => format!("{} = :p", pk.0),
        };
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&condition)
                .expression_attribute_values(":p", s(pk.1.clone()))
                .scan_index_forward(forward)
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            if let Some((_, p)) = &prefix {
                q = q.expression_attribute_values(":s", s(p.clone()));
            }
            match index {
                Some(i) => q = q.index_name(i),
                None => q = q.consistent_read(true),
            }
            let out = q.send().await.map_err(|e| store_error(what, e))?;
            for raw in out.items.unwrap_or_default() {
                let key: HashMap<String, AttributeValue> = key_names
                    .iter()
                    .filter_map(|k| raw.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect();
                let item: T = serde_dynamo::from_item(raw).map_err(|e| serde_error(what, e))?;
                items.push((item, key));
            }
            start = out.last_evaluated_key;
            if items.len() > limit || start.is_none() {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|(_, k)| encode_cursor(k))
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|(i, _)| i).collect(),
            next,
        })
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
        self.put_one(RunItem::new(run), "put run").await
    }

    async fn get_run(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
    ) -> Result<Option<SyncRun>, StoreError> {
        self.get(
            ws_pk(&connector.workspace),
            &run_sk(connector, run),
            "get run",
        )
        .await?
        .map(|item| {
            serde_dynamo::from_item::<_, RunItem>(item)
                .map(|i| i.run)
                .map_err(|e| serde_error("run item", e))
        })
        .transpose()
    }

    async fn list_runs(
        &self,
        connector: &ConnectorRef,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<SyncRun>, PageError> {
        const NAMES: [&str; 4] = ["pk", "sk", "gsi1pk", "gsi1sk"];
        let index_pk = runs_index_pk(connector);
        let start = cursor
            .map(|c| {
                let key = decode_cursor(
                    c,
                    &NAMES,
                    &ws_pk(&connector.workspace),
                    &format!("RUN#{}#", connector.key()),
                )?;
                if key.get("gsi1pk").and_then(|v| v.as_s().ok()) != Some(&index_pk) {
                    return Err(PageError::InvalidCursor);
                }
                Ok(key)
            })
            .transpose()?;
        let page: Page<RunItem> = self
            .page(
                Some("byStatus"),
                ("gsi1pk", index_pk),
                None,
                &NAMES,
                limit,
                start,
                false,
                "list runs",
            )
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|i| i.run).collect(),
            next: page.next,
        })
    }
}

#[async_trait]
impl PairStates for DynamoSync {
    async fn pairs(
        &self,
        connector: &ConnectorRef,
    ) -> Result<BTreeMap<(String, String), PairState>, StoreError> {
        let items: Vec<PairItem> = self
            .query_all(
                ws_pk(&connector.workspace),
                &pairs_prefix(connector),
                "query pair states",
            )
            .await?;
        Ok(items.into_iter().map(|i| (i.pair.key(), i.pair)).collect())
    }

    async fn put_pairs(
        &self,
        connector: &ConnectorRef,
        pairs: &[PairState],
    ) -> Result<(), StoreError> {
        let expires_at = now_s() + PAIR_RETENTION_S;
        let items = pairs.iter().map(|p| pair_item(connector, p, expires_at));
        self.put_keyed(items, |i| &i.sk, "record pair states").await
    }

    async fn delete_pairs(
        &self,
        connector: &ConnectorRef,
        keys: &[(String, String)],
    ) -> Result<(), StoreError> {
        let prefix = pairs_prefix(connector);
        let sks: std::collections::BTreeSet<String> = keys
            .iter()
            .map(|(a, k)| format!("{prefix}{a}#{k}"))
            .collect();
        let mut requests = Vec::with_capacity(sks.len());
        for sk in sks {
            let del = DeleteRequest::builder()
                .key("pk", s(ws_pk(&connector.workspace)))
                .key("sk", s(sk))
                .build()
                .map_err(|e| StoreError(format!("pair delete request: {e}")))?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        self.batch_write(requests, "forget pair states").await
    }
}

#[async_trait]
impl AuditLog for DynamoSync {
    async fn record(
        &self,
        workspace: &WorkspaceId,
        event: &AuditEvent,
    ) -> Result<String, StoreError> {
        let at_ms = event.at.unix_timestamp_nanos() / 1_000_000;
        // A random suffix keeps two events of the same millisecond apart.
        let sk = format!(
            "{AUDIT_PREFIX}{at_ms:015}#{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.put_one(audit_item(workspace, &sk, event), "record audit event")
            .await?;
        Ok(sk)
    }

    /// One `UpdateItem` setting `detail.<k>` for each entry, only on an existing entry of the
    /// workspace's trail (a key of another list is refused, nothing is created).
    async fn annotate(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        detail: &[(&str, String)],
    ) -> Result<(), StoreError> {
        if detail.is_empty() || !key.starts_with(AUDIT_PREFIX) {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ws_pk(workspace)))
            .key("sk", s(key))
            .condition_expression("attribute_exists(detail)")
            .expression_attribute_names("#d", "detail");
        let mut sets = Vec::with_capacity(detail.len());
        for (i, (k, v)) in detail.iter().enumerate() {
            sets.push(format!("#d.#k{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#k{i}"), *k)
                .expression_attribute_values(format!(":v{i}"), s(v.clone()));
        }
        match update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()), // expired or never there
            Err(e) => Err(store_error("annotate an audit event", e)),
        }
    }

    async fn audit_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>, PageError> {
        const NAMES: [&str; 2] = ["pk", "sk"];
        let pk = ws_pk(workspace);
        let start = cursor
            .map(|c| decode_cursor(c, &NAMES, &pk, AUDIT_PREFIX))
            .transpose()?;
        let page: Page<AuditItem> = self
            .page(
                None,
                ("pk", pk),
                Some(("sk", AUDIT_PREFIX.to_owned())),
                &NAMES,
                limit,
                start,
                false,
                "list audit events",
            )
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|i| i.event).collect(),
            next: page.next,
        })
    }
}

/// The deployment-wide rejection record: `lastAcceptedMs` and, per kind, workspace → time of its
/// latest rejection. Rejections are rare; each is a read and a conditional write (`version`).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthItem {
    #[serde(default)]
    pub(crate) last_accepted_ms: u64,
    #[serde(default)]
    pub(crate) unauthorized: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) forbidden: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_accepted_by: Option<AcceptedBy>,
}

#[async_trait]
impl KeyHealth for DynamoSync {
    async fn last_accepted(&self, psa: ConnectorType) -> Result<Option<AcceptedBy>, StoreError> {
        let Some(mut raw) = self
            .get(vendor_pk(psa), HEALTH_SK, "read key health")
            .await?
        else {
            return Ok(None);
        };
        raw.remove("pk");
        raw.remove("sk");
        let item: HealthItem =
            serde_dynamo::from_item(raw).map_err(|e| serde_error("key health", e))?;
        Ok(item.last_accepted_by)
    }

    async fn accepted(&self, psa: ConnectorType, by: &AcceptedBy) -> Result<(), StoreError> {
        let by = serde_dynamo::to_attribute_value(by).map_err(|e| serde_error("accepted by", e))?;
        let now = now_ms();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(vendor_pk(psa)))
            .key("sk", s(HEALTH_SK))
            // Bumps `version` too, so a concurrent read-modify-write of `rejected` retries
            // instead of putting back an older `lastAcceptedMs`.
            .update_expression("SET lastAcceptedMs = :now, lastAcceptedBy = :by ADD version :one")
            .condition_expression("attribute_not_exists(lastAcceptedMs) OR lastAcceptedMs < :now")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":by", by)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("record an accepted call", e)),
        }
    }

    /// The wave's entries are keyed `<msp>/<workspace>` (a workspace id holds no `/`); an entry
    /// written before MSPs were recorded is its own MSP.
    async fn rejected(
        &self,
        psa: ConnectorType,
        kind: Rejection,
        rejected: &Rejected,
        window: Duration,
    ) -> Result<Vec<Rejected>, StoreError> {
        let pk = vendor_pk(psa);
        for _ in 0..8 {
            let raw = self.get(pk.clone(), HEALTH_SK, "read key health").await?;
            let mut item: HealthItem = match raw {
                Some(mut raw) => {
                    raw.remove("pk");
                    raw.remove("sk");
                    serde_dynamo::from_item(raw).map_err(|e| serde_error("key health", e))?
                }
                None => HealthItem::default(),
            };
            let now = now_ms();
            let since = item
                .last_accepted_ms
                .max(now.saturating_sub(window.as_millis() as u64));
            let map = match kind {
                Rejection::Unauthorized => &mut item.unauthorized,
                Rejection::Forbidden => &mut item.forbidden,
            };
            map.retain(|_, at| *at > since);
            map.insert(format!("{}/{}", rejected.msp, rejected.workspace), now);
            let wave: Vec<Rejected> = map
                .keys()
                .filter_map(|entry| {
                    let (msp, ws) = entry.split_once('/').unwrap_or((entry, entry));
                    Some(Rejected {
                        workspace: WorkspaceId::parse(ws).ok()?,
                        msp: WorkspaceId::parse(msp).ok()?,
                    })
                })
                .collect();
            let expected = item.version;
            item.version += 1;
            let mut attrs: HashMap<String, AttributeValue> =
                serde_dynamo::to_item(&item).map_err(|e| serde_error("key health", e))?;
            attrs.insert("pk".into(), s(&pk));
            attrs.insert("sk".into(), s(HEALTH_SK));
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attrs))
                .condition_expression("attribute_not_exists(pk) OR version = :v")
                .expression_attribute_values(":v", n(expected))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(wave),
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(store_error("record a rejection", e)),
            }
        }
        Err(StoreError("the key health record kept changing".into()))
    }
}

fn alert_sk(c: &ConnectorRef, account: &str, kind: &str) -> String {
    format!("ALERT#{}#{account}#{kind}", c.key())
}

fn ticket_prefix(c: &ConnectorRef) -> String {
    format!("TICKET#{}#", c.key())
}

/// A pending ticket is asked about for at most this long (then forgotten by its TTL).
const TICKET_RETENTION_S: i64 = 30 * DAY_S;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TicketItem {
    pk: String,
    sk: String,
    account_id: String,
    kind: String,
    alert: String,
    audit_key: String,
    expires_at: i64,
}

pub(crate) fn ticket_item(c: &ConnectorRef, ticket: &PendingTicket, expires_at: i64) -> TicketItem {
    TicketItem {
        pk: ws_pk(&c.workspace),
        sk: format!("{}{}", ticket_prefix(c), ticket.alert.0),
        account_id: ticket.account_id.clone(),
        kind: ticket.kind.clone(),
        alert: ticket.alert.0.clone(),
        audit_key: ticket.audit_key.clone(),
        expires_at,
    }
}

#[async_trait]
impl AlertMemory for DynamoSync {
    async fn last_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
    ) -> Result<Option<time::OffsetDateTime>, StoreError> {
        let item = self
            .get(
                ws_pk(&connector.workspace),
                &alert_sk(connector, account_id, kind),
                "read the last alert",
            )
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| crate::sync::attr_n(i, "atMs"))
            .and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            }))
    }

    async fn record_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(ws_pk(&connector.workspace)))
            .item("sk", s(alert_sk(connector, account_id, kind)))
            .item("atMs", n(now))
            .item("expiresAt", n(now / 1000 + keep.as_secs() + 86_400))
            .send()
            .await
            .map_err(|e| store_error("record an alert", e))?;
        Ok(())
    }

    async fn forget_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(ws_pk(&connector.workspace)))
            .key("sk", s(alert_sk(connector, account_id, kind)))
            .send()
            .await
            .map_err(|e| store_error("forget an alert", e))?;
        Ok(())
    }

    async fn remember_ticket(
        &self,
        connector: &ConnectorRef,
        ticket: &PendingTicket,
    ) -> Result<(), StoreError> {
        let item = ticket_item(connector, ticket, now_s() + TICKET_RETENTION_S);
        self.put_one(item, "remember a pending ticket").await
    }

    async fn pending_tickets(
        &self,
        connector: &ConnectorRef,
    ) -> Result<Vec<PendingTicket>, StoreError> {
        let items: Vec<TicketItem> = self
            .query_all(
                ws_pk(&connector.workspace),
                &ticket_prefix(connector),
                "query pending tickets",
            )
            .await?;
        Ok(items
            .into_iter()
            .map(|i| PendingTicket {
                account_id: i.account_id,
                kind: i.kind,
                alert: AlertRef(i.alert),
                audit_key: i.audit_key,
            })
            .collect())
    }

    async fn forget_ticket(
        &self,
        connector: &ConnectorRef,
        alert: &AlertRef,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(ws_pk(&connector.workspace)))
            .key("sk", s(format!("{}{}", ticket_prefix(connector), alert.0)))
            .send()
            .await
            .map_err(|e| store_error("forget a pending ticket", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_what_this_list_did_not_issue() {
        let key: HashMap<String, AttributeValue> = [
            ("pk".to_string(), s("WS#a")),
            ("sk".to_string(), s("AUDIT#0001#x")),
        ]
        .into_iter()
        .collect();
        let c = encode_cursor(&key);
        assert_eq!(
            decode_cursor(&c, &["pk", "sk"], "WS#a", "AUDIT#").unwrap(),
            key
        );
        assert!(decode_cursor(&c, &["pk", "sk"], "WS#b", "AUDIT#").is_err());
        assert!(decode_cursor(&c, &["pk", "sk"], "WS#a", "READING#").is_err());
        assert!(decode_cursor(&c, &["pk", "sk", "gsi1pk"], "WS#a", "AUDIT#").is_err());
        for bad in ["", "!!!", "e30", &"A".repeat(700)] {
            assert!(decode_cursor(bad, &["pk", "sk"], "WS#a", "AUDIT#").is_err());
        }
        let mut edited = key.clone();
        edited.insert("gsi1sk".into(), s(""));
        let names = ["pk", "sk", "gsi1sk"];
        assert!(decode_cursor(&encode_cursor(&edited), &names, "WS#a", "AUDIT#").is_err());
    }
}
