//! The project's table (`PSA_TABLE`) and the operations every port on it is built from: one read
//! by key, a put, batched writes with their retries, a query of every item under a prefix, and a
//! page of items with its cursor. The ports themselves live in their own modules.

use crate::attrs::s;
use crate::cursor::encode_cursor;
use crate::error::{serde_error, store_error};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use psa_domain::ports::{Page, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Items per BatchWriteItem (the DynamoDB limit).
const BATCH: usize = 25;
/// Attempts per batch before unprocessed writes become an error.
const BATCH_ATTEMPTS: u32 = 6;

fn put_request(item: HashMap<String, AttributeValue>) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError(format!("put request: {e}")))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// Run slots, leases, cool-downs, run records and last-sent values in the project's table.
#[derive(Clone, Debug)]
pub struct DynamoSync {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl DynamoSync {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub(crate) async fn get(
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
    pub(crate) async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
        what: &str,
    ) -> Result<(), StoreError> {
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

    /// Writes one item, replacing what was there.
    pub(crate) async fn put_one<T: Serialize>(
        &self,
        item: T,
        what: &str,
    ) -> Result<(), StoreError> {
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
            requests.push(put_request(
                serde_dynamo::to_item(item).map_err(|e| serde_error(what, e))?,
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
