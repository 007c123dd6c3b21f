//! The readings of each run, written so that a night costs what changed.
//!
//! A reading whose outcome is `unchanged` (Coro's count equals what the PSA already holds — on a
//! quiet night almost every reading) is not an item of its own: the `unchanged` readings a job
//! records are packed, in reading order, [`CHUNK`] to an item (`RCHUNK#<type>#<inc>#<runId>#<first
//! account>#<first service>`, the readings as deflated JSON), so 2,000 of them cost a few dozen
//! write units instead of 2,000. Every other outcome stays one item per reading (`READING#…`,
//! with the `byOutcome` index), as it is rare or is a change.
//!
//! Pages merge the two in reading order and still cost their size: an unfiltered page (or one of
//! `outcome=unchanged`) is one Query of `limit + 1` reading items plus at most two small Queries
//! of chunks around the cursor; other filters are one Query on `byOutcome`. The cursor is the key
//! of the page's last reading whichever kind held it. A job that records `unchanged` readings
//! when the run already has chunks (a rare continuation) writes them as items, so a run's chunks
//! never overlap.

use crate::connectors::ws_pk;
use crate::error::{serde_error, store_error};
use crate::history::{READING_RETENTION_S, decode_cursor, encode_cursor, now_s};
use crate::sync::{DynamoSync, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{Page, PageError, RunReadings, StoreError};
use psa_domain::{ConnectorRef, Outcome, RunId, RunReading};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

/// Unchanged readings per chunk item: ~25 bytes each once deflated, so a chunk is a few KB.
pub(crate) const CHUNK: usize = 250;

pub(crate) fn readings_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("READING#{}#{run}#", c.key())
}

fn chunks_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("RCHUNK#{}#{run}#", c.key())
}

/// A reading's place in the run: `<account>#<service>` (the order of every listing).
fn key_of(r: &RunReading) -> String {
    format!("{}#{}", r.account_id, r.service)
}

/// The `byOutcome` index's partition of a run's readings with one outcome; its sort key is the
/// reading's `<account>#<service>`, so a filtered page is ordered as the unfiltered one.
fn outcome_index_pk(c: &ConnectorRef, run: &RunId, outcome: Outcome) -> String {
    format!(
        "READINGS#{}#{}#{run}#{}",
        c.workspace,
        c.key(),
        outcome.as_str()
    )
}

#[derive(Serialize, Deserialize)]
struct ReadingItem {
    pk: String,
    sk: String,
    gsi2pk: String,
    gsi2sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    reading: RunReading,
}

/// Packed `unchanged` readings, in reading order.
#[derive(Serialize, Deserialize)]
struct ChunkItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    /// How many readings it holds.
    n: usize,
    /// The key of its last reading.
    last: String,
    /// The readings as JSON, deflated.
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

fn pack(readings: &[RunReading]) -> Result<Vec<u8>, StoreError> {
    let json =
        serde_json::to_vec(readings).map_err(|e| StoreError(format!("pack readings: {e}")))?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&json)
        .and_then(|()| z.finish())
        .map_err(|e| StoreError(format!("pack readings: {e}")))
}

fn unpack(chunk: &ChunkItem) -> Result<Vec<RunReading>, StoreError> {
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(chunk.data.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| StoreError(format!("unpack readings of {}: {e}", chunk.sk)))?;
    serde_json::from_slice(&json).map_err(|e| StoreError(format!("unpack readings: {e}")))
}

impl DynamoSync {
    async fn has_chunks(&self, c: &ConnectorRef, run: &RunId) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", s(ws_pk(&c.workspace)))
            .expression_attribute_values(":s", s(chunks_prefix(c, run)))
            .projection_expression("pk")
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(|e| store_error("look for packed readings", e))?;
        Ok(out.count > 0)
    }

    /// Up to `max` chunks of the run from key `after` on (exclusive; `None`: from the start),
    /// plus the chunk that holds `after` itself; `true` when more chunks follow.
    async fn chunks_from(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<ChunkItem>, bool), StoreError> {
        let (pk, prefix) = (ws_pk(&c.workspace), chunks_prefix(c, run));
        let query = |cond: &str| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression(cond)
                .expression_attribute_values(":p", s(pk.clone()))
                .consistent_read(true)
        };
        let mut chunks = Vec::new();
        let forward = match after {
            None => query("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":s", s(prefix.clone())),
            Some(key) => {
                // The chunk that starts at or before the cursor may hold readings after it.
                let holding = query("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(prefix.clone()))
                    .expression_attribute_values(":hi", s(format!("{prefix}{key}")))
                    .scan_index_forward(false)
                    .limit(1)
                    .send()
                    .await
                    .map_err(|e| store_error("read packed readings", e))?;
                chunks.extend(
                    serde_dynamo::from_items::<_, ChunkItem>(holding.items.unwrap_or_default())
                        .map_err(|e| serde_error("read packed readings", e))?,
                );
                // The prefix with its final `#` raised to `$`: just past this run's chunks.
                let end = format!("{}$", &prefix[..prefix.len() - 1]);
                query("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(format!("{prefix}{key}\u{1}")))
                    .expression_attribute_values(":hi", s(end))
            }
        };
        let out = forward
            .limit(i32::try_from(max).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("read packed readings", e))?;
        let more = out.last_evaluated_key.is_some();
        chunks.extend(
            serde_dynamo::from_items::<_, ChunkItem>(out.items.unwrap_or_default())
                .map_err(|e| serde_error("read packed readings", e))?,
        );
        Ok((chunks, more))
    }
}

#[async_trait]
impl RunReadings for DynamoSync {
    async fn put_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        readings: &[RunReading],
    ) -> Result<(), StoreError> {
        let (mut unchanged, mut single): (Vec<&RunReading>, Vec<&RunReading>) = readings
            .iter()
            .partition(|r| r.outcome == Outcome::Unchanged);
        if !unchanged.is_empty() && self.has_chunks(connector, run).await? {
            single.append(&mut unchanged);
        }
        let pk = ws_pk(&connector.workspace);
        let expires_at = now_s() + READING_RETENTION_S;
        if !unchanged.is_empty() {
            let mut by_key: BTreeMap<String, RunReading> = BTreeMap::new();
            for r in unchanged {
                by_key.insert(key_of(r), r.clone());
            }
            let sorted: Vec<RunReading> = by_key.into_values().collect();
            let prefix = chunks_prefix(connector, run);
            let mut items = Vec::new();
            for part in sorted.chunks(CHUNK) {
                items.push(ChunkItem {
                    pk: pk.clone(),
                    sk: format!("{prefix}{}", key_of(&part[0])),
                    expires_at,
                    n: part.len(),
                    last: key_of(&part[part.len() - 1]),
                    data: pack(part)?,
                });
            }
            self.put_keyed(items.into_iter(), |i| &i.sk, "record packed readings")
                .await?;
        }
        let prefix = readings_prefix(connector, run);
        let items = single.into_iter().map(|r| ReadingItem {
            pk: pk.clone(),
            sk: format!("{prefix}{}", key_of(r)),
            gsi2pk: outcome_index_pk(connector, run, r.outcome),
            gsi2sk: key_of(r),
            expires_at,
            reading: r.clone(),
        });
        self.put_keyed(items, |i| &i.sk, "record readings").await
    }

    async fn all_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
    ) -> Result<Vec<RunReading>, StoreError> {
        let pk = ws_pk(&connector.workspace);
        let chunks: Vec<ChunkItem> = self
            .query_all(
                pk.clone(),
                &chunks_prefix(connector, run),
                "query packed readings",
            )
            .await?;
        let items: Vec<ReadingItem> = self
            .query_all(pk, &readings_prefix(connector, run), "query readings")
            .await?;
        let mut all: BTreeMap<String, RunReading> = BTreeMap::new();
        for chunk in &chunks {
            for r in unpack(chunk)? {
                all.insert(key_of(&r), r);
            }
        }
        // A reading recorded again as an item replaces its packed record.
        for i in items {
            all.insert(key_of(&i.reading), i.reading);
        }
        Ok(all.into_values().collect())
    }

    async fn readings_page(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        outcome: Option<Outcome>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<RunReading>, PageError> {
        let pk = ws_pk(&connector.workspace);
        let prefix = readings_prefix(connector, run);
        let limit = limit.clamp(1, 1000);
        // Items: one Query of `limit + 1` (on the table, or on `byOutcome` for a filter).
        const TABLE: [&str; 2] = ["pk", "sk"];
        const INDEX: [&str; 4] = ["pk", "sk", "gsi2pk", "gsi2sk"];
        let index_pk = outcome.map(|o| outcome_index_pk(connector, run, o));
        let start = match (cursor, &index_pk) {
            (None, _) => None,
            (Some(c), None) => Some(decode_cursor(c, &TABLE, &pk, &prefix)?),
            (Some(c), Some(ipk)) => {
                let key = decode_cursor(c, &INDEX, &pk, &prefix)?;
                if key.get("gsi2pk").and_then(|v| v.as_s().ok()) != Some(ipk) {
                    return Err(PageError::InvalidCursor);
                }
                Some(key)
            }
        };
        let after: Option<String> = start.as_ref().and_then(|k| {
            k.get("sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix(&prefix))
                .map(str::to_owned)
        });
        let items: Page<ReadingItem> = match &index_pk {
            None => {
                self.page(
                    None,
                    ("pk", pk.clone()),
                    Some(("sk", prefix.clone())),
                    &TABLE,
                    limit,
                    start,
                    true,
                    "list readings",
                )
                .await?
            }
            Some(ipk) => {
                self.page(
                    Some("byOutcome"),
                    ("gsi2pk", ipk.clone()),
                    None,
                    &INDEX,
                    limit,
                    start,
                    true,
                    "list readings by outcome",
                )
                .await?
            }
        };
        let mut merged: BTreeMap<String, RunReading> = BTreeMap::new();
        let mut more = items.next.is_some();
        // Packed readings, when the page may hold unchanged ones.
        if matches!(outcome, None | Some(Outcome::Unchanged)) {
            let want = limit as usize + 1;
            let (chunks, more_chunks) = self
                .chunks_from(connector, run, after.as_deref(), want.div_ceil(CHUNK) + 1)
                .await?;
            let mut packed = 0;
            for chunk in &chunks {
                if after.as_deref().is_some_and(|a| chunk.last.as_str() <= a) {
                    continue;
                }
                for r in unpack(chunk)? {
                    let key = key_of(&r);
                    if after.as_deref().is_none_or(|a| key.as_str() > a) {
                        merged.insert(key, r);
                        packed += 1;
                    }
                }
            }
            more |= more_chunks && packed <= limit as usize;
        }
        for i in items.items {
            merged.insert(key_of(&i.reading), i.reading);
        }
        more |= merged.len() > limit as usize;
        let page: Vec<(String, RunReading)> = merged.into_iter().take(limit as usize).collect();
        let next = match (more, page.last()) {
            (true, Some((key, _))) => {
                let mut k: HashMap<String, AttributeValue> = HashMap::new();
                k.insert("pk".into(), s(pk.clone()));
                k.insert("sk".into(), s(format!("{prefix}{key}")));
                if let Some(ipk) = &index_pk {
                    k.insert("gsi2pk".into(), s(ipk.clone()));
                    k.insert("gsi2sk".into(), s(key.clone()));
                }
                Some(encode_cursor(&k))
            }
            _ => None,
        };
        Ok(Page {
            items: page.into_iter().map(|(_, r)| r).collect(),
            next,
        })
    }
}
